//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The split-direction test (issue 11): a SIPp UAC calls over TCP through
// Kamailio, a stateful proxy (testdata/kamailio/split-proxy.cfg), which
// relays over UDP to a SIPp UAS (testdata/sipp/split-uas.xml) that picks
// each call's final response from testdata/sipp/split-outcomes.csv.
const (
	splitCalls         = 120
	splitRate          = 30 // calls per second: Kamailio drops UDP 180s under load at 60 on a busy 2-core machine
	splitProxyConfig   = "testdata/kamailio/split-proxy.cfg"
	splitUASScenario   = "split-uas.xml"      // in sippDir
	splitOutcomesFile  = "split-outcomes.csv" // in sippDir
	splitInviteTimeout = 2 * time.Second      // --sip.invite-timeout of the serve runs
	// splitExpiry is how long after the last message of a serve run every
	// INVITE transaction without a final response has been counted as
	// timed out: the invite timeout, the default --capture.max-lateness
	// (1 s; the flag is left at its default so that the test runs the same
	// command line on the code before it) by which the tracker's time
	// trails a live capture, and the 1 s tick that moves that time on once
	// the traffic has stopped, with some slack.
	splitExpiry = splitInviteTimeout + time.Second + 1500*time.Millisecond

	// On the host's lo.
	splitCIDR    = "127.0.9.0/24"
	splitProxyIP = "127.0.9.1"
	splitUACIP   = "127.0.9.2"
	splitUASIP   = "127.0.9.3"

	// In the namespaces of the live run, which only the test's own
	// namespaces can reach.
	splitNetProxyIP = "10.209.0.1"
	splitNetUACIP   = "10.209.0.2"
	splitNetUASIP   = "10.209.0.3"
)

// TestSplitDirection checks that the transaction tracker sees a stateful
// proxy's traffic in capture order when it comes from two sources, one per
// direction, as from a tap with one port per direction. Every call crosses
// the proxy as two INVITE transactions (UAC -> proxy, proxy -> UAS) with
// their own Via branches, and each of them has its request in one direction
// and its responses in the other: a tracker that handles one source before
// the other, or interleaves them in arrival order, sees responses before
// their request and reports the transactions as timed out.
//
// Only the command line is used: `report` in-process through run, and the
// binary of buildExporter. The expected figures come from SIPp's own
// -trace_counts files (first transmissions and receptions of each scenario
// message), never from the exporter:
//
//   - sip_session_attempts_total: the INVITEs the UAC sent plus those the
//     UAS received (one transaction per hop);
//   - sip_session_outcomes_total{code}: the final responses the UAS sent
//     plus those the UAC received, per code;
//   - sip_session_timeouts_total: 0;
//   - sip_session_request_delay_seconds_count{outcome="success"}: the 180s
//     the UAS sent plus those the UAC received (every answered call rings
//     first in split-uas.xml), outcome="failure" the other final responses;
//   - sip_session_duration_seconds_count: the 200 OKs of INVITE the UAS
//     sent plus those the UAC received: a session per leg (the proxy keeps
//     Call-ID and tags, but each hop is a leg of its own, between its own
//     two hosts), each ended by the BYE of its leg.
//
// Subtest files: the traffic runs on lo (127.0.9.0/24) while the test
// captures it with its own AF_PACKET socket into merged.pcap (kernel
// timestamps, nanosecond pcap), which it splits by the proxy's address into
// A (packets to the proxy) and B (packets from the proxy), timestamps kept.
// `report merged`, `report A B` and `report B A` must give the expected
// figures, and so must serve with --capture.pcap-file=A
// --capture.pcap-file=B (and B then A), scraped once every message has
// been counted and every INVITE transaction has had time to time out
// (splitExpiry).
//
// Subtest live: the proxy runs in a network namespace of its own, joined
// to the SIPp endpoints' namespace by a veth pair; tc mirrors what enters
// the proxy's veth to one veth pair and what leaves it to another, whose
// far ends are in a third namespace, the tap, where the exporter captures
// both (--capture.interface twice). The scrape after the traffic must show
// the expected figures.
//
// Every serve run must also have matched every response to its request
// (sip_exporter_transaction_responses_unmatched_total 0). In the live
// subtest the two tap interfaces time-stamp their copies apart, so a
// response the proxy sends at once (its 100 Trying) can be captured a few
// microseconds before the request: the tracker holds it for the request
// (sip_exporter_transaction_responses_early_total, logged). Every round
// checks too that sip_responses_total and sip_requests_total equal what
// the two SIPp sent and received (-trace_msg), so that a capture that lost
// packets cannot pass for a tracker error. About 20 s, plus the build.
func TestSplitDirection(t *testing.T) {
	requireLive(t, "sipp", "kamailio", "tc", "ip")
	start := time.Now()
	bin := buildExporter(t)
	t.Run("files", func(t *testing.T) { testSplitFiles(t, bin) })
	t.Run("live", func(t *testing.T) { testSplitLive(t, bin) })
	t.Logf("split-direction test took %s", time.Since(start).Round(time.Millisecond))
}

func testSplitFiles(t *testing.T, bin string) {
	start := time.Now()
	_, ipnet, err := net.ParseCIDR(splitCIDR)
	if err != nil {
		t.Fatal(err)
	}
	k := startSplitProxy(t, "", splitProxyIP, splitUASIP)
	for _, proto := range []string{"udp", "tcp"} {
		if err := waitListening(k.cmd.Process.Pid, proto, splitProxyIP, sippPort, k.exited, 10*time.Second); err != nil {
			t.Fatalf("kamailio: %v", err)
		}
	}
	c := startLoCapture(t, ipnet)
	sipp := runSplitCalls(t, "", splitProxyIP, splitUACIP, splitUASIP)
	time.Sleep(200 * time.Millisecond) // the last ACK and BYE 200 OK reach the socket
	pkts := c.stop(t)
	want := sipp.figures()
	t.Logf("SIPp: %s", sipp.summary())

	dir := t.TempDir()
	merged, a, b := filepath.Join(dir, "merged.pcap"), filepath.Join(dir, "A-to-proxy.pcap"), filepath.Join(dir, "B-from-proxy.pcap")
	nA, nB := writeSplitCaptures(t, pkts, net.ParseIP(splitProxyIP), merged, a, b)
	t.Logf("captured %d packets on %s: %d to the proxy (A), %d from it (B)", len(pkts), liveInterface, nA, nB)

	// Every message on the wire, as the two SIPp saw them: what `report`
	// counts in sip_requests_total and sip_responses_total must be that,
	// or the capture lost something.
	runs := []struct {
		name  string
		files []string
	}{
		{"report merged", []string{merged}},
		{"report A B", []string{a, b}},
		{"report B A", []string{b, a}},
	}
	cols := []string{"SIPp"}
	got := []map[string]float64{want}
	for _, r := range runs {
		mfs := splitReport(t, r.files...)
		if table, ok := compareCounts(sipp.wire, countsOfExposition(mfs)); !ok {
			t.Errorf("%s: SIP messages differ from what the two SIPp sent and received (-trace_msg):\n%s", r.name, table)
		}
		cols = append(cols, r.name)
		got = append(got, sessionFigures(mfs))
	}

	// serve, both orders at once: it starts its sources one after the
	// other, so the order can matter.
	serves := []struct {
		name  string
		files []string
		e     *exporterProcess
	}{
		{name: "serve A B", files: []string{a, b}},
		{name: "serve B A", files: []string{b, a}},
	}
	for i, s := range serves {
		serves[i].e = startExporter(t, bin,
			"--capture.pcap-file="+s.files[0], "--capture.pcap-file="+s.files[1],
			"--sip.invite-timeout="+splitInviteTimeout.String())
	}
	for _, s := range serves {
		if table, ok := waitCounts(t, s.e, sipp.wire, 15*time.Second); !ok {
			t.Errorf("%s: SIP messages differ from what the two SIPp sent and received:\n%s", s.name, table)
		}
	}
	// Then, by capture/README.md, the tracker's time moves on by the wall time
	// since the files ended, and every INVITE transaction still without a
	// final response is counted as timed out.
	time.Sleep(splitExpiry)
	for _, s := range serves {
		_, mfs, err := s.e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, s.name)
		got = append(got, sessionFigures(mfs))
		checkUnmatched(t, s.name, mfs)
	}

	if table, ok := compareFigures(cols, got); !ok {
		t.Errorf("session figures differ from SIPp's (first column):\n%s", table)
	} else {
		t.Logf("session figures equal SIPp's:\n%s", table)
	}
	t.Logf("files run took %s", time.Since(start).Round(time.Millisecond))
}

func testSplitLive(t *testing.T, bin string) {
	start := time.Now()
	n := newSplitNetns(t)
	e := startExporterInNetns(t, n.tap, bin,
		"--capture.interface="+n.tapA, "--capture.interface="+n.tapB,
		"--capture.promiscuous",
		"--sip.invite-timeout="+splitInviteTimeout.String())
	for _, iface := range []string{n.tapA, n.tapB} {
		if err := e.waitSourceUp(iface, "interface", 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	k := startSplitProxy(t, n.proxy, splitNetProxyIP, splitNetUASIP)
	for _, proto := range []string{"udp", "tcp"} {
		if err := waitListening(k.cmd.Process.Pid, proto, splitNetProxyIP, sippPort, k.exited, 10*time.Second); err != nil {
			t.Fatalf("kamailio: %v", err)
		}
	}
	sipp := runSplitCalls(t, n.ends, splitNetProxyIP, splitNetUACIP, splitNetUASIP)
	want := sipp.figures()
	t.Logf("SIPp: %s", sipp.summary())
	if table, ok := waitCounts(t, e, sipp.wire, 15*time.Second); !ok {
		t.Errorf("SIP messages counted from %s and %s differ from what the two SIPp sent and received:\n%s", n.tapA, n.tapB, table)
	}
	time.Sleep(splitExpiry)
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	checkUnmatched(t, "live", mfs)
	if table, ok := compareFigures([]string{"SIPp", "live A+B"}, []map[string]float64{want, sessionFigures(mfs)}); !ok {
		t.Errorf("session figures differ from SIPp's (first column):\n%s", table)
	} else {
		t.Logf("session figures equal SIPp's:\n%s", table)
	}
	t.Logf("live run took %s", time.Since(start).Round(time.Millisecond))
}

// splitReport runs `report --format=prometheus FILES...` in-process and
// parses its output.
func splitReport(t *testing.T, files ...string) map[string]*dto.MetricFamily {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"report", "--format=prometheus"}, files...), &stdout, &stderr); code != 0 {
		t.Fatalf("report %v: exit code %d: %s", files, code, stderr.String())
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&stdout)
	if err != nil {
		t.Fatalf("report %v: parse output: %v", files, err)
	}
	return mfs
}

// waitCounts polls the exporter (which may still be starting) until its
// sip_responses_total and sip_requests_total equal want, or until timeout;
// it returns the comparison table of the last scrape and whether they were
// equal.
func waitCounts(t *testing.T, e *exporterProcess, want sipCounts, timeout time.Duration) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-e.exited:
			t.Fatalf("exporter exited: %v", e.err)
		default:
		}
		_, mfs, err := e.scrape()
		if err == nil {
			table, ok := compareCounts(want, countsOfExposition(mfs))
			if ok || time.Now().After(deadline) {
				return table, ok
			}
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Keys of the session figures.
const (
	figAttempts = "sip_session_attempts_total"
	figTimeouts = "sip_session_timeouts_total"
	figDuration = "sip_session_duration_seconds_count"
)

func figOutcome(code string) string { return `sip_session_outcomes_total{code="` + code + `"}` }
func figSRD(outcome string) string {
	return `sip_session_request_delay_seconds_count{outcome="` + outcome + `"}`
}

// sessionFigures reads the session figures of an exposition, summed over
// node (and peer and direction): attempts, timeouts, the SRD counts by
// outcome and the duration count always, outcomes by code where not 0.
func sessionFigures(mfs map[string]*dto.MetricFamily) map[string]float64 {
	f := map[string]float64{figAttempts: 0, figTimeouts: 0, figSRD("success"): 0, figSRD("failure"): 0, figDuration: 0}
	for _, m := range mfs["sip_session_attempts_total"].GetMetric() {
		f[figAttempts] += m.GetCounter().GetValue()
	}
	for _, m := range mfs["sip_session_timeouts_total"].GetMetric() {
		f[figTimeouts] += m.GetCounter().GetValue()
	}
	for _, m := range mfs["sip_session_outcomes_total"].GetMetric() {
		if v := m.GetCounter().GetValue(); v != 0 {
			f[figOutcome(labelValue(m, "code"))] += v
		}
	}
	for _, m := range mfs["sip_session_request_delay_seconds"].GetMetric() {
		f[figSRD(labelValue(m, "outcome"))] += float64(m.GetHistogram().GetSampleCount())
	}
	for _, m := range mfs["sip_session_duration_seconds"].GetMetric() {
		f[figDuration] += float64(m.GetHistogram().GetSampleCount())
	}
	return f
}

// checkUnmatched fails the test unless the tracker of a serve run matched
// every response to its request
// (sip_exporter_transaction_responses_unmatched_total is 0: every request
// was captured, so a response counted there came before its request), and
// logs the tracker's other self-metrics that say why figures differ.
func checkUnmatched(t *testing.T, what string, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	sum := func(name string) float64 {
		var v float64
		for _, m := range mfs[name].GetMetric() {
			v += m.GetCounter().GetValue()
		}
		return v
	}
	const unmatched = "sip_exporter_transaction_responses_unmatched_total"
	if _, ok := mfs[unmatched]; !ok {
		t.Errorf("%s: no %s", what, unmatched)
	} else if v := sum(unmatched); v != 0 {
		t.Errorf("%s: %s = %v, want 0: responses came before their request", what, unmatched, v)
	}
	var parts []string
	for _, name := range []string{"sip_exporter_transaction_responses_early_total", "sip_exporter_transaction_events_dropped_total", "sip_exporter_transactions_timed_out_total", "sip_exporter_messages_late_total", "sip_exporter_duplicates_removed_total"} {
		if _, ok := mfs[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", name, sum(name)))
		}
	}
	t.Logf("%s: %s %v, %s", what, unmatched, sum(unmatched), strings.Join(parts, ", "))
}

// compareFigures renders the figures of each column side by side, the first
// column being the expected one, marks the rows where a column differs
// from it and reports whether none does.
func compareFigures(cols []string, figs []map[string]float64) (string, bool) {
	keys := make([]iter.Seq[string], len(figs))
	for i, f := range figs {
		keys[i] = maps.Keys(f)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %-62s", "")
	for _, c := range cols {
		fmt.Fprintf(&b, " %14s", c)
	}
	b.WriteString("\n")
	ok := true
	for _, k := range sortedUnion(keys...) {
		fmt.Fprintf(&b, "  %-62s", k)
		mark := ""
		for _, f := range figs {
			fmt.Fprintf(&b, " %14v", f[k])
			if f[k] != figs[0][k] {
				mark = "  <- differs"
				ok = false
			}
		}
		b.WriteString(mark + "\n")
	}
	return b.String(), ok
}

// SIPp side.

// sippTally is what one SIPp counted in -trace_counts: first transmissions
// of its <send> messages and first receptions of its <recv> messages.
type sippTally struct {
	sent, recv map[sippMessage]int64
}

// splitResult is what the two SIPp of a round counted.
type splitResult struct {
	uac, uas sippTally
	wire     sipCounts // every message either SIPp sent or received (-trace_msg), retransmissions included
}

// figures returns the session figures the exporter must show for the
// round; see TestSplitDirection.
func (r splitResult) figures() map[string]float64 {
	invite := func(code string) sippMessage { return sippMessage{method: "INVITE", code: code} }
	f := map[string]float64{
		figAttempts: float64(r.uac.sent[sippMessage{method: "INVITE"}] + r.uas.recv[sippMessage{method: "INVITE"}]),
		figTimeouts: 0,
		figDuration: float64(r.uas.sent[invite("200")] + r.uac.recv[invite("200")]),
	}
	var finals float64
	for _, tally := range []map[sippMessage]int64{r.uac.recv, r.uas.sent} {
		for k, n := range tally {
			if k.method == "INVITE" && k.code >= "200" && n > 0 {
				f[figOutcome(k.code)] += float64(n)
				finals += float64(n)
			}
		}
	}
	f[figSRD("success")] = float64(r.uac.recv[invite("180")] + r.uas.sent[invite("180")])
	f[figSRD("failure")] = finals - f[figSRD("success")]
	return f
}

// summary renders the calls per final response as both SIPp counted them.
func (r splitResult) summary() string {
	var codes []string
	for k := range r.uas.sent {
		if k.method == "INVITE" && k.code >= "200" {
			codes = append(codes, k.code)
		}
	}
	sort.Strings(codes)
	var b strings.Builder
	fmt.Fprintf(&b, "UAC sent %d INVITEs, UAS received %d;", r.uac.sent[sippMessage{method: "INVITE"}], r.uas.recv[sippMessage{method: "INVITE"}])
	for _, c := range codes {
		k := sippMessage{method: "INVITE", code: c}
		fmt.Fprintf(&b, " %s: UAS sent %d, UAC received %d;", c, r.uas.sent[k], r.uac.recv[k])
	}
	k := sippMessage{method: "INVITE", code: "180"}
	fmt.Fprintf(&b, " 180: UAS sent %d, UAC received %d", r.uas.sent[k], r.uac.recv[k])
	return b.String()
}

// runSplitCalls runs the UAS (UDP, uasIP) and then the UAC (TCP, uacIP,
// splitCalls calls to proxyIP) in network namespace ns ("" for the test's
// own), waits for both to exit 0 and returns their counts. The proxy must
// pass every call: the UAC's and the UAS's counts of INVITEs and of each
// final response must agree.
func runSplitCalls(t *testing.T, ns, proxyIP, uacIP, uasIP string) splitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	dir := t.TempDir()
	inf, err := filepath.Abs(filepath.Join(sippDir, splitOutcomesFile))
	if err != nil {
		t.Fatal(err)
	}
	uas, err := startSIPp(ctx, ns, filepath.Join(dir, "uas"), splitUASScenario, "u1", uasIP, splitCalls, "-inf", inf, "-trace_msg")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitListening(uas.cmd.Process.Pid, "udp", uasIP, sippPort, uas.exited, 5*time.Second); err != nil {
		cancel()
		uas.wait()
		t.Fatalf("UAS: %v%s", err, uas.details())
	}
	uac, err := startSIPp(ctx, ns, filepath.Join(dir, "uac"), "uac_invite.xml", "t1", uacIP, splitCalls,
		"-r", strconv.Itoa(splitRate), "-trace_msg", net.JoinHostPort(proxyIP, strconv.Itoa(sippPort)))
	if err != nil {
		cancel()
		uas.wait()
		t.Fatal(err)
	}
	var failed []error
	if err := uac.wait(); err != nil {
		failed = append(failed, fmt.Errorf("UAC: %w%s", err, uac.details()))
	}
	if err := uas.wait(); err != nil {
		failed = append(failed, fmt.Errorf("UAS: %w%s", err, uas.details()))
	}
	if len(failed) > 0 {
		t.Fatal(errors.Join(failed...))
	}
	var r splitResult
	r.wire = newSIPCounts()
	for _, s := range []struct {
		p     *sippProcess
		tally *sippTally
	}{{uac, &r.uac}, {uas, &r.uas}} {
		if *s.tally, err = sippTallyOf(s.p.scenario, s.p.dir); err != nil {
			t.Fatal(err)
		}
		w, err := sippWire(s.p.dir)
		if err != nil {
			t.Fatal(err)
		}
		r.wire.add(w)
	}
	// The proxy relays every INVITE and every final response.
	var mismatch []string
	if a, b := r.uac.sent[sippMessage{method: "INVITE"}], r.uas.recv[sippMessage{method: "INVITE"}]; a != splitCalls || b != splitCalls {
		mismatch = append(mismatch, fmt.Sprintf("INVITE: UAC sent %d, UAS received %d, want %d", a, b, splitCalls))
	}
	var outcomes int
	for k, n := range r.uas.sent {
		if k.method == "INVITE" && k.code >= "180" && n > 0 {
			if k.code >= "200" {
				outcomes++
			}
			if m := r.uac.recv[k]; m != n {
				mismatch = append(mismatch, fmt.Sprintf("%s: UAS sent %d, UAC received %d", k.code, n, m))
			}
		}
	}
	if outcomes < 3 {
		mismatch = append(mismatch, fmt.Sprintf("%d distinct final responses, want 3 (200, 486, 603)", outcomes))
	}
	if len(mismatch) > 0 {
		t.Fatalf("SIPp counts do not show every call through the proxy: %s%s%s", strings.Join(mismatch, "; "), uac.details(), uas.details())
	}
	return r
}

// sippRecvs returns the messages of the <recv> elements of a scenario. A
// response must name its transaction (response_txn="invite"), whose name,
// upper-cased, is taken as its CSeq method.
func sippRecvs(path string) ([]sippMessage, error) {
	sc, err := readScenario(path)
	if err != nil {
		return nil, err
	}
	msgs := make([]sippMessage, 0, len(sc.Recvs))
	for i, r := range sc.Recvs {
		switch {
		case r.Request != "":
			msgs = append(msgs, sippMessage{method: r.Request})
		case r.Response != "" && r.Txn != "":
			msgs = append(msgs, sippMessage{method: strings.ToUpper(r.Txn), code: r.Response})
		default:
			return nil, fmt.Errorf("%s: <recv> %d: neither a request nor a response with response_txn", path, i)
		}
	}
	return msgs, nil
}

// sippTallyOf reads the -trace_counts file SIPp left in dir for scenario:
// the N_NAME_Sent columns of the last line, in order, are its <send>
// elements, the N_NAME_Recv columns its <recv> elements. Retransmissions
// (the _Retrans columns) are left out: they open no transaction.
func sippTallyOf(scenario, dir string) (sippTally, error) {
	sends, err := sippSends(scenario)
	if err != nil {
		return sippTally{}, err
	}
	recvs, err := sippRecvs(scenario)
	if err != nil {
		return sippTally{}, err
	}
	file, header, last, err := sippCountsOf(dir)
	if err != nil {
		return sippTally{}, err
	}
	tally := sippTally{sent: map[sippMessage]int64{}, recv: map[sippMessage]int64{}}
	var ns, nr int
	for i, h := range header {
		var (
			msgs []sippMessage
			n    *int
			into map[sippMessage]int64
		)
		prefix, ok := strings.CutSuffix(h, "_Sent")
		if ok {
			msgs, n, into = sends, &ns, tally.sent
		} else if prefix, ok = strings.CutSuffix(h, "_Recv"); ok {
			msgs, n, into = recvs, &nr, tally.recv
		} else {
			continue
		}
		if *n >= len(msgs) {
			return sippTally{}, fmt.Errorf("%s: column %s has no scenario message", file, h)
		}
		m := msgs[*n]
		*n++
		if _, name, _ := strings.Cut(prefix, "_"); name != m.name() {
			return sippTally{}, fmt.Errorf("%s: column %s is not %s", file, h, m.name())
		}
		if i >= len(last) {
			return sippTally{}, fmt.Errorf("%s: no value for column %s", file, h)
		}
		v, err := strconv.ParseInt(last[i], 10, 64)
		if err != nil {
			return sippTally{}, fmt.Errorf("%s: column %s: %w", file, h, err)
		}
		into[m] += v
	}
	if ns != len(sends) || nr != len(recvs) {
		return sippTally{}, fmt.Errorf("%s: %d sent and %d received columns for the %d <send> and %d <recv> of %s", file, ns, nr, len(sends), len(recvs), scenario)
	}
	return tally, nil
}

// Kamailio side.

// startSplitProxy starts Kamailio with split-proxy.cfg in network
// namespace ns ("" for the test's own), listening on ip:sippPort over UDP
// and TCP and relaying to uasIP:sippPort over UDP.
func startSplitProxy(t *testing.T, ns, ip, uasIP string) *kamailioProcess {
	t.Helper()
	cfg, err := filepath.Abs(splitProxyConfig)
	if err != nil {
		t.Fatal(err)
	}
	return startKamailio(t, ns, cfg, ip,
		fmt.Sprintf("UAS_URI=%q", "sip:"+net.JoinHostPort(uasIP, strconv.Itoa(sippPort))+";transport=udp"))
}

// Network namespaces of the live run.

// splitNetns is the topology of the live run, all of it made by the test:
//
//	netns sxsplit-PID-ends       netns sxsplit-PID-proxy              netns sxsplit-PID-tap
//	  SIPp UAC 10.209.0.2          Kamailio 10.209.0.1                  sip_exporter
//	  SIPp UAS 10.209.0.3          sxsPIDp (tc clsact:
//	  sxsPIDe  <------------------>   ingress: mirred -> sxsaPIDm  <-->  sxsaPIDt (A)
//	                                  egress:  mirred -> sxsbPIDm  <-->  sxsbPIDt (B))
type splitNetns struct {
	ends, proxy, tap string // namespace names
	tapA, tapB       string // capture interfaces in tap: to the proxy, from the proxy
}

// newSplitNetns builds the topology of splitNetns. A cleanup deletes the
// namespaces (and so every interface in them). When namespaces or the tc
// mirror cannot be set up the test is skipped, or failed under CI=true.
func newSplitNetns(t *testing.T) splitNetns {
	t.Helper()
	pid := os.Getpid()
	n := splitNetns{
		ends:  fmt.Sprintf("sxsplit-%d-ends", pid),
		proxy: fmt.Sprintf("sxsplit-%d-proxy", pid),
		tap:   fmt.Sprintf("sxsplit-%d-tap", pid),
		tapA:  fmt.Sprintf("sxsa%dt", pid),
		tapB:  fmt.Sprintf("sxsb%dt", pid),
	}
	vethE, vethP := fmt.Sprintf("sxs%de", pid), fmt.Sprintf("sxs%dp", pid)
	mirA, mirB := fmt.Sprintf("sxsa%dm", pid), fmt.Sprintf("sxsb%dm", pid)
	const need = "split-direction live run needs network namespaces, veth and tc clsact with u32 and mirred"
	addNetns(t, need, n.ends, n.proxy, n.tap)
	steps := [][]string{
		{"link", "add", vethP, "netns", n.proxy, "type", "veth", "peer", "name", vethE, "netns", n.ends},
		{"link", "add", mirA, "netns", n.proxy, "type", "veth", "peer", "name", n.tapA, "netns", n.tap},
		{"link", "add", mirB, "netns", n.proxy, "type", "veth", "peer", "name", n.tapB, "netns", n.tap},
		{"-n", n.ends, "addr", "add", splitNetUACIP + "/24", "dev", vethE},
		{"-n", n.ends, "addr", "add", splitNetUASIP + "/24", "dev", vethE},
		{"-n", n.proxy, "addr", "add", splitNetProxyIP + "/24", "dev", vethP},
	}
	for _, l := range []struct{ ns, dev string }{
		{n.ends, "lo"}, {n.proxy, "lo"}, {n.tap, "lo"},
		{n.ends, vethE}, {n.proxy, vethP}, {n.proxy, mirA}, {n.proxy, mirB}, {n.tap, n.tapA}, {n.tap, n.tapB},
	} {
		steps = append(steps, []string{"-n", l.ns, "link", "set", l.dev, "up"})
	}
	ipSteps(t, steps)
	// tc has no -n on older iproute2; `ip netns exec` works everywhere.
	// u32 matching nothing in particular is the classic match-all (the
	// matchall classifier is not built into every kernel).
	tc := [][]string{
		{"qdisc", "add", "dev", vethP, "clsact"},
		{"filter", "add", "dev", vethP, "ingress", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", mirA},
		{"filter", "add", "dev", vethP, "egress", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", mirB},
	}
	for _, s := range tc {
		if err := runCmd("ip", append([]string{"netns", "exec", n.proxy, "tc"}, s...)...); err != nil {
			skipOrFail(t, need+": "+err.Error())
		}
	}
	return n
}

// Capture on lo.

// capturedPacket is a frame with its kernel receive timestamp.
type capturedPacket struct {
	ts   time.Time
	data []byte
}

// loCapture is an AF_PACKET socket on lo that keeps the IPv4 packets
// between addresses of one network, once each.
type loCapture struct {
	fd      int
	stopped atomic.Bool
	done    chan struct{}
	pkts    []capturedPacket
	err     error
}

// startLoCapture opens a raw AF_PACKET socket on lo that keeps, in the
// kernel, the IPv4 packets whose source and destination are both in ipnet
// and are not lo's PACKET_OUTGOING copy (lo shows every packet twice: as
// sent and as received, PACKET_HOST), with nanosecond kernel timestamps
// (SO_TIMESTAMPNS), and reads them until stop.
func startLoCapture(t *testing.T, ipnet *net.IPNet) *loCapture {
	t.Helper()
	ifi, err := net.InterfaceByName(liveInterface)
	if err != nil {
		t.Fatal(err)
	}
	// lo has a zeroed Ethernet header, so netFilter applies; the outgoing
	// copy jumps to its last instruction, which drops.
	keep := netFilter(ipnet)
	prog, err := bpf.Assemble(append([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: uint8(len(keep) - 1)},
	}, keep...))
	if err != nil {
		t.Fatal(err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	// Protocol 0 receives nothing until bind, so no packet is queued
	// before the filter is attached.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_PACKET socket: %v", err)
	}
	setup := []error{
		unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}),
		unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}),
	}
	if err := errors.Join(setup...); err != nil {
		unix.Close(fd)
		t.Fatalf("AF_PACKET socket on %s: %v", liveInterface, err)
	}
	c := &loCapture{fd: fd, done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() {
		if !c.stopped.Load() {
			c.stopped.Store(true)
			<-c.done
			unix.Close(c.fd)
		}
	})
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *loCapture) read() {
	defer close(c.done)
	buf := make([]byte, 1<<18)
	oob := make([]byte, 256)
	for !c.stopped.Load() {
		n, oobn, flags, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			c.err = fmt.Errorf("recvmsg: %w", err)
			return
		}
		if flags&unix.MSG_TRUNC != 0 {
			c.err = fmt.Errorf("a packet of more than %d bytes", len(buf))
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // the filter drops them already
		}
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			c.err = fmt.Errorf("control messages: %w", err)
			return
		}
		var ts time.Time
		for _, m := range cmsgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
				ts = time.Unix(int64(binary.NativeEndian.Uint64(m.Data)), int64(binary.NativeEndian.Uint64(m.Data[8:])))
			}
		}
		if ts.IsZero() {
			c.err = errors.New("a packet without SO_TIMESTAMPNS timestamp")
			return
		}
		c.pkts = append(c.pkts, capturedPacket{ts: ts, data: bytes.Clone(buf[:n])})
	}
}

// stop ends the capture and returns the packets in the order the kernel
// queued them. It fails the test if the kernel dropped any.
func (c *loCapture) stop(t *testing.T) []capturedPacket {
	t.Helper()
	c.stopped.Store(true)
	<-c.done
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	unix.Close(c.fd)
	if c.err != nil {
		t.Fatalf("capture on %s: %v", liveInterface, c.err)
	}
	if err != nil {
		t.Fatalf("capture on %s: PACKET_STATISTICS: %v", liveInterface, err)
	}
	if st.Drops != 0 {
		t.Fatalf("capture on %s: the kernel dropped %d packets", liveInterface, st.Drops)
	}
	if len(c.pkts) == 0 {
		t.Fatalf("capture on %s: no packet", liveInterface)
	}
	return c.pkts
}

// writeSplitCaptures writes pkts to merged, and split by direction to
// toProxy (destination proxy) and fromProxy (source proxy), all as
// nanosecond pcap with the capture timestamps, in timestamp order (stable:
// equal timestamps keep the order the socket read them in). It returns the
// packet counts of the two directions and fails the test for a packet that
// is neither.
//
// The order in which lo's packets reach the socket is not quite their
// timestamp order: the timestamp is taken when a packet enters lo's
// receive backlog, and with two CPUs an unrelated packet taken a few
// microseconds later can be delivered first. Both orders respect cause
// and effect (a request is delivered to the socket before the proxy can
// read it and answer); sorting makes the three files agree with each other
// and with a merge by timestamp, as mergecap writes.
func writeSplitCaptures(t *testing.T, pkts []capturedPacket, proxy net.IP, merged, toProxy, fromProxy string) (int, int) {
	t.Helper()
	var disorder int
	var worst time.Duration
	for i := 1; i < len(pkts); i++ {
		if d := pkts[i-1].ts.Sub(pkts[i].ts); d > 0 {
			disorder++
			worst = max(worst, d)
		}
	}
	if disorder > 0 {
		t.Logf("%d packets reached the socket after a packet with a later timestamp (at most %s later); written in timestamp order", disorder, worst)
		sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].ts.Before(pkts[j].ts) })
	}
	p4 := proxy.To4()
	type out struct {
		f *os.File
		w *pcapgo.Writer
		n int
	}
	var outs [3]*out
	for i, path := range []string{merged, toProxy, fromProxy} {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriterNanos(f)
		if err := w.WriteFileHeader(1<<18, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		outs[i] = &out{f: f, w: w}
	}
	for i, p := range pkts {
		if len(p.data) < 14+20 {
			t.Fatalf("packet %d: %d bytes, no IPv4 header", i, len(p.data))
		}
		src, dst := net.IP(p.data[14+12:14+16]), net.IP(p.data[14+16:14+20])
		var dir *out
		switch {
		case dst.Equal(p4) && !src.Equal(p4):
			dir = outs[1]
		case src.Equal(p4) && !dst.Equal(p4):
			dir = outs[2]
		default:
			t.Fatalf("packet %d from %s to %s: neither to nor from the proxy %s", i, src, dst, proxy)
		}
		ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: len(p.data)}
		for _, o := range []*out{outs[0], dir} {
			if err := o.w.WritePacket(ci, p.data); err != nil {
				t.Fatal(err)
			}
			o.n++
		}
	}
	for _, o := range outs {
		if err := o.f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return outs[1].n, outs[2].n
}
