package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// liveInterface is the interface the live tests capture on.
const liveInterface = "lo"

// TestLiveCaptureSIPp runs the real binary capturing on lo while SIPp plays
// the scenarios of testdata/sipp over UDP and then over TCP, and checks that
// sip_responses_total and sip_requests_total grew by exactly what SIPp says
// it put on the wire (its -trace_counts files: messages sent plus
// retransmissions), then lints the exposition with promtool.
//
// The SIPp pairs use addresses of sippCIDR only, and the exporter captures
// through a BPF filter for that block: lo is shared with whatever else runs
// on the machine (another test sending SIP over loopback at the same time
// did change the counts before the filter). The counters are compared as
// deltas from a scrape taken before the traffic of each transport.
func TestLiveCaptureSIPp(t *testing.T) {
	requireLive(t, "sipp", "promtool")
	start := time.Now()

	bin := buildExporter(t)
	_, sippNet, err := net.ParseCIDR(sippCIDR)
	if err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, bin,
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, sippNet))
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}

	var exposition []byte
	for _, tc := range []struct {
		name, transport string
		firstIP         int // last octet of the first UAS address, 127.0.0.x
	}{
		{name: "udp", transport: "u1", firstIP: 129},
		{name: "tcp", transport: "t1", firstIP: 161},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := net.IPv4(127, 0, 0, byte(tc.firstIP+2*len(sippMix)-1))
			if !sippNet.Contains(net.IPv4(127, 0, 0, byte(tc.firstIP))) || !sippNet.Contains(last) {
				t.Fatalf("addresses from 127.0.0.%d to %s are not all in %s", tc.firstIP, last, sippNet)
			}
			_, before := e.settle(t, 5*time.Second)
			want := runSIPpSet(t, tc.transport, "127.0.0", tc.firstIP, sippCalls)
			raw, after := e.settle(t, 5*time.Second)
			exposition = raw
			got := after.sub(before)
			table, ok := compareCounts(want, got)
			if !ok {
				t.Errorf("exporter counts differ from what SIPp sent (want = SIPp sent+retransmitted, got = counter delta):\n%s", table)
			} else {
				t.Logf("exporter counts equal what SIPp sent:\n%s", table)
			}
		})
	}
	if exposition == nil {
		t.Fatal("no exposition scraped")
	}
	checkResponseLabels(t, exposition)
	checkPromtool(t, exposition)
	t.Logf("live test took %s", time.Since(start).Round(time.Millisecond))
}

// requireLive skips the test (fails it when CI=true) unless it runs as
// root, lo exists and every tool is on PATH. Outside CI it also skips in
// -short mode.
func requireLive(t *testing.T, tools ...string) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if testing.Short() && !ci {
		t.Skip("live capture test skipped in -short mode")
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (AF_PACKET capture)")
	}
	if _, err := net.InterfaceByName(liveInterface); err != nil {
		missing = append(missing, fmt.Sprintf("interface %q", liveInterface))
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" on PATH")
		}
	}
	if len(missing) == 0 {
		return
	}
	skipOrFail(t, "live capture test needs "+strings.Join(missing, ", "))
}

// skipOrFail skips the test with msg, or fails it when CI=true: what a
// live test needs is always there in CI.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: never skipped)")
	}
	t.Skip(msg)
}

// buildExporter builds the binary of this package into a temporary
// directory and returns its path.
func buildExporter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), program)
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeNetFilter writes a classic BPF program that keeps the IPv4 packets
// whose source and destination are both in ipnet, for Ethernet framing (as
// AF_PACKET presents lo), in the `tcpdump -ddd` text that
// --capture.bpf-file reads, and returns the file's path.
func writeNetFilter(t *testing.T, ipnet *net.IPNet) string {
	t.Helper()
	if ipnet.IP.To4() == nil || net.IP(ipnet.Mask).To4() == nil {
		t.Fatalf("not an IPv4 network: %s", ipnet)
	}
	prog, err := bpf.Assemble(netFilter(ipnet))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", len(prog))
	for _, in := range prog {
		fmt.Fprintf(&b, "%d %d %d %d\n", in.Op, in.Jt, in.Jf, in.K)
	}
	path := filepath.Join(t.TempDir(), "filter.bpf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// netFilter returns the classic BPF instructions that keep (snap length
// 256 KiB) the IPv4 packets whose source and destination are both in the
// IPv4 network ipnet, for Ethernet framing, and drop the others. Its last
// instruction drops: a program that puts instructions before it jumps
// there with len-1 to drop.
func netFilter(ipnet *net.IPNet) []bpf.Instruction {
	ip, mask := ipnet.IP.To4(), net.IP(ipnet.Mask).To4()
	netVal, maskVal := binary.BigEndian.Uint32(ip), binary.BigEndian.Uint32(mask)
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800, SkipTrue: 7},
		bpf.LoadAbsolute{Off: 14 + 12, Size: 4}, // IPv4 source
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskVal},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: netVal, SkipTrue: 4},
		bpf.LoadAbsolute{Off: 14 + 16, Size: 4}, // IPv4 destination
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: maskVal},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: netVal, SkipTrue: 1},
		bpf.RetConstant{Val: 1 << 18},
		bpf.RetConstant{Val: 0},
	}
}

// freeLocalAddr returns 127.0.0.1:PORT with a TCP port that was free a
// moment ago.
func freeLocalAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// exporterProcess is a running sip_exporter binary.
type exporterProcess struct {
	cmd     *exec.Cmd
	metrics string     // URL of /metrics
	output  syncBuffer // stdout and stderr
	exited  chan struct{}
	err     error // result of Wait, once exited is closed
}

// startExporter starts bin with args and a free --web.listen-address. A
// cleanup stops it with SIGTERM, fails the test unless it exits 0 within
// 10 s, and logs its output if the test failed.
func startExporter(t *testing.T, bin string, args ...string) *exporterProcess {
	t.Helper()
	return startExporterAt(t, bin, freeLocalAddr(t), args...)
}

// startExporterAt is startExporter with --web.listen-address=addr.
func startExporterAt(t *testing.T, bin, addr string, args ...string) *exporterProcess {
	t.Helper()
	e := &exporterProcess{metrics: "http://" + addr + "/metrics", exited: make(chan struct{})}
	e.cmd = exec.Command(bin, append(args, "--web.listen-address="+addr)...)
	e.cmd.Stderr = &e.output
	e.cmd.Stdout = &e.output
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		e.err = e.cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-e.exited:
			t.Errorf("exporter exited before the end of the test: %v", e.err)
		default:
			if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Errorf("SIGTERM exporter: %v", err)
			}
			select {
			case <-e.exited:
				if e.err != nil {
					t.Errorf("exporter after SIGTERM: %v", e.err)
				}
			case <-time.After(10 * time.Second):
				_ = e.cmd.Process.Kill()
				<-e.exited
				t.Errorf("exporter still running 10s after SIGTERM, killed")
			}
		}
		if t.Failed() {
			t.Logf("exporter output:\n%s", e.output.String())
		}
	})
	return e
}

// scrape fetches and parses the text exposition.
func (e *exporterProcess) scrape() ([]byte, map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequest(http.MethodGet, e.metrics, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: %s: %s", e.metrics, resp.Status, raw)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return raw, nil, fmt.Errorf("parse exposition of %s: %w", e.metrics, err)
	}
	return raw, mfs, nil
}

// waitSourceUp polls until sip_exporter_source_up{source,type} is 1.
func (e *exporterProcess) waitSourceUp(source, typ string, timeout time.Duration) error {
	return e.waitSourceValue(map[string]string{"source": source, "type": typ}, 1, timeout)
}

// waitSourceValue polls until sip_exporter_source_up of source (its source
// and type labels) is want.
func (e *exporterProcess) waitSourceValue(source map[string]string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		select {
		case <-e.exited:
			return fmt.Errorf("exporter exited: %v", e.err)
		default:
		}
		_, mfs, err := e.scrape()
		if err == nil {
			v, ok := gaugeValue(mfs, "sip_exporter_source_up", source)
			if ok && v == want {
				return nil
			}
			err = fmt.Errorf("sip_exporter_source_up%s = %v (present %v), want %v", fmtLabels(source), v, ok, want)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fmtLabels renders source and type labels for a message.
func fmtLabels(l map[string]string) string {
	return fmt.Sprintf("{source=%q,type=%q}", l["source"], l["type"])
}

// settle scrapes until the SIP counters have not changed for 500 ms and
// the time-ordered merge holds no message, or until timeout, and returns
// the last exposition and its counts. The live source hands packets over
// in blocks, so the last ones reach the merge some tens of milliseconds
// after they were sent, and the merge holds them for --capture.max-lateness
// (1 s) before they are counted.
func (e *exporterProcess) settle(t *testing.T, timeout time.Duration) ([]byte, sipCounts) {
	t.Helper()
	return settleBy(t, e, timeout, countsOfExposition, sipCounts.equal)
}

// settleBy is settle for counts of any shape: countsOf reads them from a
// scrape and equal compares two.
func settleBy[C any](t *testing.T, e *exporterProcess, timeout time.Duration, countsOf func(map[string]*dto.MetricFamily) C, equal func(C, C) bool) ([]byte, C) {
	t.Helper()
	const quiet = 500 * time.Millisecond
	deadline := time.Now().Add(timeout)
	var (
		raw     []byte
		counts  C
		changed time.Time
	)
	for {
		r, mfs, err := e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		c := countsOf(mfs)
		if pending, _ := gaugeValue(mfs, "sip_exporter_merge_pending_messages", nil); raw == nil || !equal(c, counts) || pending > 0 {
			changed = time.Now()
		}
		raw, counts = r, c
		if time.Since(changed) >= quiet {
			return raw, counts
		}
		if time.Now().After(deadline) {
			t.Logf("counters still changing after %s", timeout)
			return raw, counts
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gaugeValue returns the value of the gauge or counter of family name whose
// labels include labels.
func gaugeValue(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetUntyped() != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

func labelValue(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// responseKey identifies a response series by status code and CSeq method.
type responseKey struct{ code, method string }

// sipCounts are SIP messages per kind: responses by code and CSeq method,
// requests by method.
type sipCounts struct {
	responses map[responseKey]int64
	requests  map[string]int64
}

func newSIPCounts() sipCounts {
	return sipCounts{responses: map[responseKey]int64{}, requests: map[string]int64{}}
}

// add adds each of others to c.
func (c sipCounts) add(others ...sipCounts) {
	for _, o := range others {
		for k, v := range o.responses {
			c.responses[k] += v
		}
		for k, v := range o.requests {
			c.requests[k] += v
		}
	}
}

// sub returns c minus o, without the entries that become zero.
func (c sipCounts) sub(o sipCounts) sipCounts {
	d := newSIPCounts()
	for k, v := range c.responses {
		d.responses[k] += v
	}
	for k, v := range o.responses {
		d.responses[k] -= v
	}
	for k, v := range c.requests {
		d.requests[k] += v
	}
	for k, v := range o.requests {
		d.requests[k] -= v
	}
	for k, v := range d.responses {
		if v == 0 {
			delete(d.responses, k)
		}
	}
	for k, v := range d.requests {
		if v == 0 {
			delete(d.requests, k)
		}
	}
	return d
}

func (c sipCounts) equal(o sipCounts) bool {
	d := c.sub(o)
	return len(d.responses) == 0 && len(d.requests) == 0
}

// countsOfExposition reads sip_responses_total and sip_requests_total.
func countsOfExposition(mfs map[string]*dto.MetricFamily) sipCounts {
	c := newSIPCounts()
	for _, m := range mfs["sip_responses_total"].GetMetric() {
		k := responseKey{code: labelValue(m, "code"), method: labelValue(m, "method")}
		c.responses[k] += int64(m.GetCounter().GetValue())
	}
	for _, m := range mfs["sip_requests_total"].GetMetric() {
		c.requests[labelValue(m, "method")] += int64(m.GetCounter().GetValue())
	}
	return c
}

// sortedUnion returns the strings of every seq, sorted, each once: the
// rows of a table that compares maps by key.
func sortedUnion(seqs ...iter.Seq[string]) []string {
	var all []string
	for _, seq := range seqs {
		all = slices.AppendSeq(all, seq)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// compareCounts renders want and got side by side, marking the rows that
// differ, and reports whether they are equal.
func compareCounts(want, got sipCounts) (string, bool) {
	var keys []responseKey
	seen := map[responseKey]bool{}
	for _, m := range []map[responseKey]int64{want.responses, got.responses} {
		for k, v := range m {
			if v != 0 && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].code != keys[j].code {
			return keys[i].code < keys[j].code
		}
		return keys[i].method < keys[j].method
	})
	var methods []string
	seenMethod := map[string]bool{}
	for _, m := range []map[string]int64{want.requests, got.requests} {
		for k, v := range m {
			if v != 0 && !seenMethod[k] {
				seenMethod[k] = true
				methods = append(methods, k)
			}
		}
	}
	sort.Strings(methods)

	var b strings.Builder
	ok := true
	row := func(kind, code, method string, w, g int64) {
		mark := ""
		if w != g {
			mark = "  <-- differs"
			ok = false
		}
		fmt.Fprintf(&b, "  %-8s %-4s %-9s %6d %6d%s\n", kind, code, method, w, g, mark)
	}
	fmt.Fprintf(&b, "  %-8s %-4s %-9s %6s %6s\n", "series", "code", "method", "want", "got")
	for _, k := range keys {
		row("response", k.code, k.method, want.responses[k], got.responses[k])
	}
	for _, m := range methods {
		row("request", "", m, want.requests[m], got.requests[m])
	}
	return b.String(), ok
}

// checkResponseLabels checks that every sip_responses_total series carries
// the class and the registry reason of its code (SIPp sends 486 with a
// phrase that is not the registry's).
func checkResponseLabels(t *testing.T, exposition []byte) {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mfs["sip_responses_total"].GetMetric() {
		code, err := strconv.Atoi(labelValue(m, "code"))
		if err != nil {
			t.Errorf("sip_responses_total series %v: code: %v", m.GetLabel(), err)
			continue
		}
		if got, want := labelValue(m, "reason"), sipstatus.Text(code); got != want {
			t.Errorf("sip_responses_total{code=%q}: reason %q, want %q", labelValue(m, "code"), got, want)
		}
		if got, want := labelValue(m, "class"), sipstatus.Class(code); got != want {
			t.Errorf("sip_responses_total{code=%q}: class %q, want %q", labelValue(m, "code"), got, want)
		}
	}
}

// checkPromtool runs `promtool check metrics` on the exposition: lines that
// report an error fail the test, lint warnings are logged.
func checkPromtool(t *testing.T, exposition []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metrics.prom")
	if err := os.WriteFile(path, exposition, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.Contains(strings.ToLower(line), "error"):
			t.Errorf("promtool check metrics: %s", line)
		default:
			t.Logf("promtool check metrics warning: %s", line)
		}
	}
	// promtool exits 3 for lint problems only, logged above.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 3) {
		t.Errorf("promtool check metrics: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// SIPp side.

const (
	sippCIDR  = "127.0.0.128/26" // the addresses of the live SIPp pairs
	sippDir   = "testdata/sipp"
	sippPort  = 5060
	sippCalls = 10 // calls per pair and transport
	sippRate  = 20 // calls per second per UAC
)

// sippPair is a UAS scenario and its UAC peer from testdata/sipp.
type sippPair struct {
	name     string
	uas, uac string
	uasArgs  []string
	uacArgs  []string // before the remote address; -r sippRate comes first
}

// sippMix is the traffic of one transport; see testdata/sipp/README.md.
var sippMix = []sippPair{
	{name: "invite-200", uas: "uas_invite.xml", uac: "uac_invite.xml", uasArgs: []string{"-set", "code", "200"}},
	{name: "invite-404", uas: "uas_invite.xml", uac: "uac_invite.xml", uasArgs: []string{"-set", "code", "404"}},
	{name: "invite-486", uas: "uas_invite.xml", uac: "uac_invite.xml", uasArgs: []string{"-set", "code", "486"}},
	{name: "invite-503", uas: "uas_invite.xml", uac: "uac_invite.xml", uasArgs: []string{"-set", "code", "503"}},
	{name: "invite-603", uas: "uas_invite.xml", uac: "uac_invite.xml", uasArgs: []string{"-set", "code", "603"}},
	{name: "register", uas: "uas_register.xml", uac: "uac_register.xml"},
	{name: "options", uas: "uas_options.xml", uac: "uac_options.xml"},
}

// runSIPpSet runs every pair of sippMix at once over transport (-t u1 or
// t1), pair i with its UAS on NET.(firstIP+2i) (net is the first three
// octets, e.g. "127.0.0") and its UAC on the next address, and returns what
// they sent according to SIPp.
func runSIPpSet(t *testing.T, transport, net string, firstIP, calls int) sipCounts {
	t.Helper()
	dir := t.TempDir()
	counts := make([]sipCounts, len(sippMix))
	runEach(t, len(sippMix), func(i int) error {
		p := sippMix[i]
		uasIP := fmt.Sprintf("%s.%d", net, firstIP+2*i)
		uacIP := fmt.Sprintf("%s.%d", net, firstIP+2*i+1)
		c, err := runSIPpPair(filepath.Join(dir, p.name), p, transport, uasIP, uacIP, calls)
		if err != nil {
			return fmt.Errorf("%s over %s: %w", p.name, transport, err)
		}
		counts[i] = c
		return nil
	})
	total := newSIPCounts()
	total.add(counts...)
	return total
}

// runEach runs f(0) to f(n-1) at once and, once all have returned, fails
// the test with every error they returned.
func runEach(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// runSIPpPair starts the UAS, waits until it listens, runs the UAC for
// calls calls, waits for both to exit 0 and returns the messages both sent
// (first transmissions and retransmissions) from their -trace_counts files.
func runSIPpPair(dir string, p sippPair, transport, uasIP, uacIP string, calls int) (sipCounts, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uas, err := startSIPp(ctx, "", filepath.Join(dir, "uas"), p.uas, transport, uasIP, calls, p.uasArgs...)
	if err != nil {
		return sipCounts{}, err
	}
	proto := "udp"
	if transport[0] == 't' {
		proto = "tcp"
	}
	if err := waitListening(uas.cmd.Process.Pid, proto, uasIP, sippPort, uas.exited, 5*time.Second); err != nil {
		cancel()
		uas.wait()
		return sipCounts{}, fmt.Errorf("UAS: %w%s", err, uas.details())
	}
	uac, err := startSIPp(ctx, "", filepath.Join(dir, "uac"), p.uac, transport, uacIP, calls,
		slices.Concat([]string{"-r", strconv.Itoa(sippRate)}, p.uacArgs, []string{net.JoinHostPort(uasIP, strconv.Itoa(sippPort))})...)
	if err != nil {
		cancel()
		uas.wait()
		return sipCounts{}, err
	}
	var failed []error
	if err := uac.wait(); err != nil {
		failed = append(failed, fmt.Errorf("UAC %s: %w%s", p.uac, err, uac.details()))
	}
	if err := uas.wait(); err != nil {
		failed = append(failed, fmt.Errorf("UAS %s: %w%s", p.uas, err, uas.details()))
	}
	if len(failed) > 0 {
		return sipCounts{}, errors.Join(failed...)
	}
	total := newSIPCounts()
	for _, s := range []*sippProcess{uas, uac} {
		c, err := sippSent(s.scenario, s.dir)
		if err != nil {
			return sipCounts{}, err
		}
		total.add(c)
	}
	return total, nil
}

// sippProcess is a running SIPp.
type sippProcess struct {
	cmd      *exec.Cmd
	dir      string // working directory, where its trace files go
	scenario string
	out      syncBuffer
	exited   chan struct{}
	err      error
}

// startSIPp starts SIPp on scenario (a file of sippDir) in dir, bound to
// ip:sippPort, for calls calls, in network namespace ns ("" for the test's
// own; `ip netns exec` execs SIPp in the same process); ctx kills it.
func startSIPp(ctx context.Context, ns, dir, scenario, transport, ip string, calls int, args ...string) (*sippProcess, error) {
	abs, err := filepath.Abs(filepath.Join(sippDir, scenario))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &sippProcess{dir: dir, scenario: abs, exited: make(chan struct{})}
	var argv []string
	if ns != "" {
		argv = []string{"ip", "netns", "exec", ns}
	}
	argv = append(argv, "sipp",
		"-sf", abs,
		"-t", transport,
		"-i", ip, "-p", strconv.Itoa(sippPort), "-bind_local")
	if net.ParseIP(ip).To4() != nil {
		// Control socket: one per address, no collisions. SIPp binds it
		// over IPv4 only (an IPv6 -ci fails with EAFNOSUPPORT), so an IPv6
		// run keeps SIPp's default.
		argv = append(argv, "-ci", ip, "-cp", "8888")
	}
	argv = append(argv,
		"-m", strconv.Itoa(calls),
		"-timeout", "40s", "-timeout_error", // generous: SIPp on a loaded 2-core machine with 20 % loss
		"-nostdin",
		"-trace_counts", "-trace_err")
	s.cmd = exec.CommandContext(ctx, argv[0], append(argv[1:], args...)...)
	s.cmd.Dir = dir
	s.cmd.Stdout = &s.out
	s.cmd.Stderr = &s.out
	s.cmd.WaitDelay = time.Second
	if err := s.cmd.Start(); err != nil {
		if ns != "" {
			return nil, fmt.Errorf("start sipp %s in %s: %w", scenario, ns, err)
		}
		return nil, fmt.Errorf("start sipp %s: %w", scenario, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

func (s *sippProcess) wait() error {
	<-s.exited
	return s.err
}

// details returns the tail of SIPp's screen and its error log, for an
// error message.
func (s *sippProcess) details() string {
	var b strings.Builder
	lines := strings.Split(strings.TrimSpace(s.out.String()), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	fmt.Fprintf(&b, "\n--- sipp %s (in %s), last output:\n%s", strings.Join(s.cmd.Args[1:], " "), s.dir, strings.Join(lines, "\n"))
	logs, _ := filepath.Glob(filepath.Join(s.dir, "*_errors.log"))
	for _, l := range logs {
		if data, err := os.ReadFile(l); err == nil && len(data) > 0 {
			if len(data) > 4000 {
				data = data[:4000]
			}
			fmt.Fprintf(&b, "\n--- %s:\n%s", filepath.Base(l), data)
		}
	}
	return b.String()
}

// waitListening polls /proc/PID/net/{udp,tcp} (udp6, tcp6 for an IPv6
// address), the sockets of the network namespace of process pid, until one
// is bound to ip:port (listening, for TCP), without sending anything that
// the capture would see. Matching the address, not only the port, keeps
// the moment before `ip netns exec` has switched namespaces (when
// /proc/PID/net still shows the test's namespace, where other SIPp may
// listen on port 5060) from passing.
func waitListening(pid int, proto, ip string, port int, exited <-chan struct{}, timeout time.Duration) error {
	a := net.ParseIP(ip)
	if a == nil {
		return fmt.Errorf("not an IP address: %s", ip)
	}
	// /proc/net shows an address as the hex of its 32-bit words, each in
	// host byte order (little-endian on every platform this test runs on).
	file, raw := proto, a.To4()
	if raw == nil {
		file, raw = proto+"6", a.To16()
	}
	var local strings.Builder
	for i := 0; i < len(raw); i += 4 {
		fmt.Fprintf(&local, "%02X%02X%02X%02X", raw[i+3], raw[i+2], raw[i+1], raw[i])
	}
	fmt.Fprintf(&local, ":%04X", port)
	state := "07" // UDP: unconnected
	if proto == "tcp" {
		state = "0A" // TCP_LISTEN
	}
	path := fmt.Sprintf("/proc/%d/net/%s", pid, file)
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	deadline := time.Now().Add(timeout)
	for {
		// No file once the process has exited and been reaped: exited
		// says so below.
		if data, err := os.ReadFile(path); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) > 3 && f[1] == local.String() && f[3] == state {
					return nil
				}
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before listening on %s %s", proto, addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s %s after %s", proto, addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sippScenario is the part of a SIPp scenario the tests read: the messages
// it sends and receives, in order.
type sippScenario struct {
	Sends []struct {
		Text string `xml:",chardata"`
	} `xml:"send"`
	Recvs []sippRecv `xml:"recv"`
}

// sippRecv is a <recv> of a scenario: a request, or a response with the
// transaction it belongs to.
type sippRecv struct {
	Request  string `xml:"request,attr"`
	Response string `xml:"response,attr"`
	Txn      string `xml:"response_txn,attr"`
}

// readScenario parses the SIPp scenario file path.
func readScenario(path string) (sippScenario, error) {
	var sc sippScenario
	data, err := os.ReadFile(path)
	if err != nil {
		return sc, err
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	// The scenarios are ASCII, declared ISO-8859-1 as SIPp's own are.
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := dec.Decode(&sc); err != nil {
		return sc, fmt.Errorf("parse %s: %w", path, err)
	}
	return sc, nil
}

// sippMessage is what a <send> of a scenario puts on the wire: a request
// (method) or a response (code and CSeq method).
type sippMessage struct {
	method string // request method, or CSeq method of a response
	code   string // "" for a request
}

// name is how SIPp names the message in its -trace_counts columns.
func (m sippMessage) name() string {
	if m.code != "" {
		return m.code
	}
	return m.method
}

// sippSends returns the messages of the <send> elements of a scenario. A
// response must spell its CSeq method (CSeq: [last_cseq_number] INVITE).
func sippSends(path string) ([]sippMessage, error) {
	sc, err := readScenario(path)
	if err != nil {
		return nil, err
	}
	msgs := make([]sippMessage, 0, len(sc.Sends))
	for i, s := range sc.Sends {
		var first, cseq string
		for _, line := range strings.Split(s.Text, "\n") {
			line = strings.TrimSpace(line)
			if first == "" {
				first = line
			}
			if strings.HasPrefix(line, "CSeq:") {
				cseq = line
			}
		}
		f, c := strings.Fields(first), strings.Fields(cseq)
		if len(f) < 2 || len(c) < 3 {
			return nil, fmt.Errorf("%s: <send> %d: no start line or no CSeq method", path, i)
		}
		m := sippMessage{method: c[len(c)-1]}
		if f[0] == "SIP/2.0" {
			m.code = f[1]
		} else if f[0] != m.method {
			return nil, fmt.Errorf("%s: <send> %d: %s request with CSeq method %s", path, i, f[0], m.method)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// sippSent reads the -trace_counts file SIPp left in dir for scenario and
// returns the messages it sent, each first transmission and each
// retransmission (columns N_NAME_Sent and N_NAME_Retrans of the last line).
func sippSent(scenario, dir string) (sipCounts, error) {
	sends, err := sippSends(scenario)
	if err != nil {
		return sipCounts{}, err
	}
	file, header, last, err := sippCountsOf(dir)
	if err != nil {
		return sipCounts{}, err
	}
	value := map[string]int64{}
	for i, h := range header {
		if i < len(last) && h != "" {
			n, err := strconv.ParseInt(last[i], 10, 64)
			if err == nil {
				value[h] = n
			}
		}
	}
	var sent []string // column prefixes "N_NAME" of sent messages, in order
	for _, h := range header {
		if p, ok := strings.CutSuffix(h, "_Sent"); ok {
			sent = append(sent, p)
		}
	}
	if len(sent) != len(sends) {
		return sipCounts{}, fmt.Errorf("%s: %d sent-message columns for the %d <send> of %s", file, len(sent), len(sends), scenario)
	}
	c := newSIPCounts()
	for i, p := range sent {
		m := sends[i]
		if _, name, _ := strings.Cut(p, "_"); name != m.name() {
			return sipCounts{}, fmt.Errorf("%s: column %s_Sent is not <send> %d (%s)", file, p, i, m.name())
		}
		retrans, ok := value[p+"_Retrans"]
		if !ok {
			return sipCounts{}, fmt.Errorf("%s: no column %s_Retrans", file, p)
		}
		n := value[p+"_Sent"] + retrans
		if m.code != "" {
			c.responses[responseKey{code: m.code, method: m.method}] += n
		} else {
			c.requests[m.method] += n
		}
	}
	return c, nil
}

// sippFile finds the one file of dir whose name ends in suffix, a trace
// file SIPp left there, and returns its name and contents.
func sippFile(dir, suffix string) (string, []byte, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if len(files) != 1 {
		return "", nil, fmt.Errorf("%s: want one *%s, found %d", dir, suffix, len(files))
	}
	data, err := os.ReadFile(files[0])
	return files[0], data, err
}

// sippCountsOf reads the -trace_counts file SIPp left in dir and returns
// its name, its header and its last line (the counts at the end), split
// into columns.
func sippCountsOf(dir string) (file string, header, last []string, err error) {
	file, data, err := sippFile(dir, "_counts.csv")
	if err != nil {
		return "", nil, nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		return "", nil, nil, fmt.Errorf("%s: no counts", file)
	}
	return file, strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";"), nil
}
