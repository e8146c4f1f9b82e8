package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fleetSpan is how long each node's capture takes to replay in real time:
// long enough for the agent to scrape the counters growing several times.
const fleetSpan = 8 * time.Second

// fleetNode is one node of the fleet: a capture replayed by its own
// exporter as --capture.node-name.
type fleetNode struct {
	name    string
	capture string
	report  sipCounts // what `report --format=prometheus` counts in the capture
	e       *exporterProcess
}

// TestFleet proves the deployment of deploy/README.md "Scaling out" on one machine,
// on loopback only: three exporters, each replaying a capture in real time
// as its own node (the demo capture and two generated ones, their
// timestamps compressed to fleetSpan) and listening for HEP on
// 127.0.14.0/24, a Prometheus in agent mode scraping
// them every second and remote-writing to a central Prometheus with the
// remote-write receiver, which evaluates the recording rules and alerts of
// deploy/prometheus/rules. Then, on the central server:
//
//   - sip_responses_total summed by (code, method) over the fleet equals the
//     sum of the three `report --format=prometheus` outputs, and by (node,
//     code, method) each node's own;
//   - the recording rules hold every node;
//   - every query of every dashboard panel returns data, with All and with
//     the first value of each variable, and every rule evaluates without
//     error.
//
// Each Prometheus is the Debian package's binary with its own configuration,
// data directory and port, never the system service.
func TestFleet(t *testing.T) {
	requireFleet(t)
	start := time.Now()
	agentFlag := prometheusAgentFlag(t)
	bin := buildExporter(t)
	dir := t.TempDir()

	nodes := []*fleetNode{{name: "sbc-a"}, {name: "sbc-b"}, {name: "sbc-c"}}
	// sbc-a replays the demo capture, sbc-b and sbc-c generated traffic.
	demo := filepath.Join(dir, "sbc-a-source.pcap")
	data, err := os.ReadFile(demoCapture)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(demo, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sources := []string{demo,
		writeFleetCapture(t, filepath.Join(dir, "sbc-b-source.pcap"), 2, 60, net.IPv4(192, 0, 2, 20)),
		writeFleetCapture(t, filepath.Join(dir, "sbc-c-source.pcap"), 3, 90, net.IPv4(192, 0, 2, 30))}
	total := newSIPCounts()
	for i, n := range nodes {
		n.capture = filepath.Join(dir, n.name+".pcap")
		compressCapture(t, sources[i], n.capture, fleetSpan)
		n.report = reportCounts(t, bin, n.name, n.capture)
		total.add(n.report)
	}
	t.Logf("fleet: %d responses in %d (code, method) pairs over %d nodes", total.sum(), len(total.responses), len(nodes))

	// The central Prometheus: remote-write receiver, rules, no scraping.
	centralDir := filepath.Join(dir, "central")
	if err := os.Mkdir(centralDir, 0o755); err != nil {
		t.Fatal(err)
	}
	central := runPrometheus(t, centralDir, map[string]any{
		"global":     map[string]any{"evaluation_interval": "1s"},
		"rule_files": promRuleFiles(t),
	}, "--storage.tsdb.path="+filepath.Join(centralDir, "data"), "--web.enable-remote-write-receiver")

	// The agent scrapes the exporters' addresses from before they start,
	// so that it sees every capture from its first packet.
	addrs := make([]string, len(nodes))
	for i := range nodes {
		addrs[i] = freeLocalAddr(t)
	}
	agentDir := filepath.Join(dir, "agent")
	if err := os.Mkdir(agentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	runPrometheus(t, agentDir, map[string]any{
		"global": map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s",
			"external_labels": map[string]string{"site": "e2e"}},
		"scrape_configs": []any{map[string]any{
			"job_name":       "sip_exporter",
			"static_configs": []any{map[string]any{"targets": addrs}},
		}},
		"remote_write": []any{map[string]any{
			"url": central.api + "/api/v1/write",
			"queue_config": map[string]any{"batch_send_deadline": "500ms",
				"min_backoff": "100ms", "max_backoff": "1s"},
		}},
	}, agentFlag, "--storage.agent.path="+filepath.Join(agentDir, "wal"))

	t0 := time.Now()
	for i, n := range nodes {
		// Each also listens for HEP, as a member of a HEP pool would (no
		// sender here): the exporter health dashboard's HEP panels.
		n.e = startExporterAt(t, bin, addrs[i],
			"--capture.pcap-file="+n.capture,
			"--capture.pcap-speed=realtime",
			"--capture.node-name="+n.name,
			"--hep.listen-address="+freeAddrOn(t, fmt.Sprintf("127.0.14.%d", i+1)))
	}
	// Each exporter counts what report counted, once its capture has
	// been replayed and merged.
	for _, n := range nodes {
		if diff, ok := waitCounts(t, n.e, n.report, fleetSpan+15*time.Second); !ok {
			t.Fatalf("node %s: /metrics differs from report:\n%s", n.name, diff)
		}
	}
	t.Logf("the exporters replayed their captures in %s", time.Since(t0).Round(time.Millisecond))

	// The central server has the fleet's totals once the agent has
	// scraped the settled counters and sent them.
	byCode := `sum by (code, method) (sip_responses_total{job="sip_exporter"})`
	if err := waitFleetCounts(central, byCode, func(map[string]string) string { return "" },
		map[string]sipCounts{"": total}, 20*time.Second); err != nil {
		t.Fatalf("fleet totals by (code, method) on the central server: %v", err)
	}
	perNode := map[string]sipCounts{}
	for _, n := range nodes {
		perNode[n.name] = n.report
	}
	if err := waitFleetCounts(central, `sum by (node, code, method) (sip_responses_total{job="sip_exporter"})`,
		func(l map[string]string) string { return l["node"] }, perNode, 5*time.Second); err != nil {
		t.Errorf("totals by (node, code, method) on the central server: %v", err)
	}
	t.Logf("central server: fleet totals by (code, method) equal the sum of the three reports (%s after start)",
		time.Since(start).Round(time.Millisecond))

	// Rule evaluations of the settled data, then everything at one time.
	time.Sleep(2500 * time.Millisecond)
	window := int(math.Ceil(time.Since(t0).Seconds()))
	at := t0.Add(time.Duration(window) * time.Second)
	if wait := time.Until(at); wait > 0 {
		time.Sleep(wait)
	}
	for _, rule := range []string{"node_peer_method_code:sip_responses:rate5m", "node:sip_messages:rate5m"} {
		s, err := central.query(`count by (node) (`+rule+`)`, at)
		if err != nil {
			t.Errorf("%s: %v", rule, err)
			continue
		}
		var got []string
		for _, x := range s {
			got = append(got, x.Metric["node"])
		}
		sort.Strings(got)
		if strings.Join(got, ",") != "sbc-a,sbc-b,sbc-c" {
			t.Errorf("recording rule %s on the central server has nodes %v, want sbc-a, sbc-b, sbc-c", rule, got)
		}
	}
	checker := newExprChecker(t, central, at)
	checker.dashboards(map[string]string{
		"__rate_interval": "1m", "__interval": "5s",
		"__range": strconv.Itoa(window) + "s", "__range_s": strconv.Itoa(window), "__range_ms": strconv.Itoa(window * 1000),
	})
	checker.rules()
	checker.ruleHealth()
	checker.report()
	t.Logf("fleet end-to-end test took %s", time.Since(start).Round(time.Millisecond))
}

// requireFleet skips the test (fails it when CI=true) unless prometheus is
// on PATH; outside CI it also skips in -short mode. It needs no root: the
// exporters read files and everything listens on 127.0.0.1.
func requireFleet(t *testing.T) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if testing.Short() && !ci {
		t.Skip("fleet end-to-end test skipped in -short mode")
	}
	if _, err := exec.LookPath("prometheus"); err != nil {
		msg := "fleet test needs prometheus on PATH (Debian package prometheus)"
		if ci {
			t.Fatal(msg + " (CI=true: never skipped)")
		}
		t.Skip(msg)
	}
}

var promVersionRE = regexp.MustCompile(`prometheus, version (\d+)\.(\d+)\.`)

// prometheusAgentFlag returns the flag that starts the installed Prometheus
// in agent mode: --enable-feature=agent from 2.32 (Debian 12 has 2.42),
// --agent from 3.0.
func prometheusAgentFlag(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("prometheus", "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("prometheus --version: %v\n%s", err, out)
	}
	m := promVersionRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("prometheus --version: no version in %q", out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	switch {
	case major >= 3:
		return "--agent"
	case major == 2 && minor >= 32:
		return "--enable-feature=agent"
	}
	t.Fatalf("prometheus %d.%d has no agent mode (2.32 or later)", major, minor)
	return ""
}

// writeFleetCapture writes a capture of SIP traffic between user agents
// and two proxies at proxy and the next address (UDP, and a TCP trunk for a
// quarter of the dialogs) with dialogs exchanges of the demo's kinds
// (REGISTER, OPTIONS, INVITE with every outcome), from its own seed, and
// returns its path.
func writeFleetCapture(t *testing.T, path string, seed uint64, dialogs int, proxy net.IP) string {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	d := &demoWriter{w: w, t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), rng: rand.New(rand.NewPCG(seed, 15)),
		seqs: map[string]uint32{}, want: map[string]int{},
		tx: demoTx{outcomes: map[int]int{}, delays: map[string][]time.Duration{}}}
	p4 := proxy.To4()
	udp := endpoint{net.IPv4(p4[0], p4[1], p4[2], p4[3]).To16(), 5060, false}
	tcp := endpoint{net.IPv4(p4[0], p4[1], p4[2], p4[3]+1).To16(), 5060, true}
	for i := range dialogs {
		ua := endpoint{net.IPv4(198, 51, 100, byte(100+i%50)).To16(), 5060, false}
		target := udp
		if i%4 == 3 {
			ua = endpoint{net.IPv4(203, 0, 113, p4[3]).To16(), 35060, true}
			target = tcp
		}
		d.dialog(ua, target, d.rng.IntN(8))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// compressCapture copies the pcap file src to dst with its timestamps
// scaled so that the capture lasts span, in the same order.
func compressCapture(t *testing.T, src, dst string, span time.Duration) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	type packet struct {
		ts   time.Time
		orig int
		data []byte
	}
	var pkts []packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		pkts = append(pkts, packet{ci.Timestamp, ci.Length, data})
	}
	if len(pkts) < 2 {
		t.Fatalf("%s: %d packets", src, len(pkts))
	}
	first, last := pkts[0].ts, pkts[len(pkts)-1].ts
	scale := float64(span) / float64(last.Sub(first))
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(r.Snaplen(), r.LinkType()); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		ts := first.Add(time.Duration(float64(p.ts.Sub(first)) * scale))
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(p.data), Length: p.orig}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reportCounts runs `bin report --format=prometheus` on capture as node
// and returns its sip_responses_total and sip_requests_total; every series
// must carry the node.
func reportCounts(t *testing.T, bin, node, capture string) sipCounts {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "report", "--format=prometheus", "--capture.node-name="+node, capture)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s report %s: %v\n%s", bin, capture, err, stderr.String())
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&stdout)
	if err != nil {
		t.Fatalf("report %s: %v", capture, err)
	}
	for _, name := range []string{"sip_responses_total", "sip_requests_total"} {
		for _, m := range mfs[name].GetMetric() {
			if got := labelValue(m, "node"); got != node {
				t.Fatalf("report %s: %s with node %q, want %q", capture, name, got, node)
			}
		}
	}
	c := countsOfExposition(mfs)
	if c.sum() == 0 {
		t.Fatalf("report %s: no responses", capture)
	}
	return c
}

// sum returns the number of responses.
func (c sipCounts) sum() int64 {
	var n int64
	for _, v := range c.responses {
		n += v
	}
	return n
}

// waitFleetCounts polls expr, a sum of sip_responses_total by code and method
// and possibly more labels, on p until its samples, grouped by group(labels),
// equal want's responses, or until timeout.
func waitFleetCounts(p *promProcess, expr string, group func(map[string]string) string, want map[string]sipCounts, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		s, err := p.query(expr, time.Time{})
		got := map[string]sipCounts{}
		if err == nil {
			for _, x := range s {
				g := group(x.Metric)
				if _, ok := got[g]; !ok {
					got[g] = newSIPCounts()
				}
				if v := x.value(); v != 0 {
					got[g].responses[responseKey{code: x.Metric["code"], method: x.Metric["method"]}] += int64(v)
				}
			}
		}
		var diffs []string
		for g, w := range want {
			c, ok := got[g]
			if !ok {
				c = newSIPCounts()
			}
			w := sipCounts{responses: w.responses, requests: map[string]int64{}}
			if diff, ok := compareCounts(w, c); !ok {
				diffs = append(diffs, fmt.Sprintf("%s:\n%s", g, diff))
			}
		}
		if err == nil && len(diffs) == 0 && len(got) == len(want) {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("after %s, %s: %d groups, want %d\n%s", timeout, expr, len(got), len(want), strings.Join(diffs, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
