package main

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sip-exporter/sip_exporter/capture/hep"
)

// The clock test uses 127.0.11.0/24 only: the exporter's HEP listener,
// Kamailio (agent A), agent B's sending socket and the SIPp UACs.
const (
	clockHEPIP      = "127.0.11.1"
	clockKamailioIP = "127.0.11.2"
	clockSenderIP   = "127.0.11.3" // agent B's socket
	clockFirstUAC   = 10           // UAC i runs on 127.0.11.(10+i)
	// clockNodeA is the capture agent ID Kamailio (agent A) is started
	// with, clockNodeB the one agent B sends; without a node name chunk,
	// the node label (and the clock key) is the ID in decimal.
	clockNodeA = 1101
	clockNodeB = 1102
	// clockAhead is how far agent B's clock is ahead of the exporter's.
	clockAhead = 300 * time.Second
	// clockCallsB is the number of calls agent B reports, one started
	// every clockCallGapB.
	clockCallsB   = 8
	clockCallGapB = 400 * time.Millisecond
	// clockTolerance bounds the error of the exported offset estimate.
	clockTolerance = 2.0 // seconds
)

// clockMixA is agent A's traffic: SIPp UACs calling Kamailio, one final
// response per UAC, different call counts per code.
var clockMixA = []hepUAC{
	{name: "invite-200", scenario: "uac_invite.xml", service: "ok", calls: 6},
	{name: "invite-486", scenario: "uac_invite.xml", service: "busy", calls: 5},
	{name: "invite-603", scenario: "uac_invite.xml", service: "decline", calls: 4},
}

// TestClockAgentAhead runs the real binary with a HEP listener fed by two
// agents whose clocks differ by 300 s (issue 11):
//
//   - agent A, a real Kamailio mirroring with siptrace (HEPv3 over UDP,
//     capture ID 1101) the calls SIPp UACs make to it, stamped with the
//     real clock;
//   - agent B, this test, sending HEPv3 over UDP (hep.AppendV3, capture ID
//     1102) of 8 complete answered calls (INVITE, 100, 180, 200, ACK, BYE,
//     200) stamped 300 s ahead of the wall clock, started before A's
//     traffic and sent interleaved with it, at the pace of their stamps.
//
// It checks, per node: A's sip_session_attempts_total equals the INVITEs
// SIPp's UACs sent (their -trace_counts), sip_session_outcomes_total per
// code the final responses they received, sip_session_timeouts_total 0,
// and sip_responses_total / sip_requests_total what their -trace_msg logs
// show on the wire; B's sessions are all counted (8 attempts, 8 outcomes
// 200, 0 timeouts, every message) and its delays are exact to its own
// stamps (SRD 50 ms, SDD 20 ms, duration 500 ms per call);
// sip_exporter_clock_offset_seconds is 300±2 s for B's node and 0±2 s for
// A's; sip_exporter_messages_late_total and messages_dropped_total are 0
// and no response is unmatched.
//
// Negative control (by hand, not run here): with the correction disabled
// (in merge's Input.correct, return t unchanged), B's messages, stamped
// 300 s ahead, stay in the merge until the wall clock passes their stamps
// plus the lateness, so none of B's sessions or messages is counted within
// the test and B's assertions fail; and if they reached the transaction
// tracker uncorrected, its time (which follows event times) would jump
// 300 s, beyond the 180 s INVITE timeout, and A's INVITEs that arrive
// afterwards would expire at once as timeouts, their outcomes unmatched.
func TestClockAgentAhead(t *testing.T) {
	requireLive(t, "kamailio", "sipp")
	start := time.Now()
	bin := buildExporter(t)
	cfg, err := filepath.Abs(kamailioConfig)
	if err != nil {
		t.Fatal(err)
	}
	hepAddr := freeAddrOn(t, clockHEPIP)
	e := startExporter(t, bin, "--hep.listen-address="+hepAddr, "--hep.transport=udp")
	source := "udp://" + hepAddr
	if err := e.waitSourceUp(source, "hep", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	k := startKamailio(t, "", cfg, clockKamailioIP, hepDefines("sip:"+hepAddr, clockNodeA)...)
	if err := waitListening(k.cmd.Process.Pid, "udp", clockKamailioIP, sippPort, k.exited, 10*time.Second); err != nil {
		t.Fatalf("kamailio: %v", err)
	}

	// Agent B starts first, so that its clock is known before A's traffic,
	// and goes on during it.
	bDone := make(chan error, 1)
	go func() { bDone <- sendAheadCalls(hepAddr) }()
	time.Sleep(300 * time.Millisecond)
	want := runClockMixA(t, net.JoinHostPort(clockKamailioIP, strconv.Itoa(sippPort)))
	if err := <-bDone; err != nil {
		t.Fatalf("agent B: %v", err)
	}
	// The last messages are released by the merge a lateness (1 s) after
	// they were received.
	time.Sleep(1200 * time.Millisecond)
	raw, _ := e.settle(t, 5*time.Second)
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	nodeA, nodeB := strconv.Itoa(clockNodeA), strconv.Itoa(clockNodeB)

	// Agent A: the calls SIPp made, as SIPp counted them.
	t.Run("agent A", func(t *testing.T) {
		checkSessions(t, mfs, nodeA, want.attempts, want.outcomes)
		got := countsOfExpositionNode(mfs, nodeA)
		if table, ok := compareCounts(want.wire, got); !ok {
			t.Errorf("node %s: exporter counts differ from SIPp's wire logs:\n%s", nodeA, table)
		} else {
			t.Logf("node %s: attempts %d, outcomes %v; messages equal SIPp's:\n%s", nodeA, want.attempts, want.outcomes, table)
		}
	})

	// Agent B: every call it reported, with its own delays.
	t.Run("agent B", func(t *testing.T) {
		checkSessions(t, mfs, nodeB, clockCallsB, map[string]int64{"200": clockCallsB})
		wantB := newSIPCounts()
		for _, m := range aheadCall(0) {
			if m.code != 0 {
				wantB.responses[responseKey{code: strconv.Itoa(m.code), method: m.method}] += clockCallsB
			} else {
				wantB.requests[m.method] += clockCallsB
			}
		}
		if table, ok := compareCounts(wantB, countsOfExpositionNode(mfs, nodeB)); !ok {
			t.Errorf("node %s: exporter counts differ from what agent B sent:\n%s", nodeB, table)
		}
		// Delays between B's own messages are kept exactly: the
		// correction moves all of them by one step.
		for _, h := range []struct {
			name   string
			labels map[string]string
			each   float64 // seconds per call
		}{
			{"sip_session_request_delay_seconds", map[string]string{"outcome": "success"}, 0.050},
			{"sip_session_disconnect_delay_seconds", nil, 0.020},
			{"sip_session_duration_seconds", nil, 0.500},
		} {
			labels := map[string]string{"node": nodeB}
			for k, v := range h.labels {
				labels[k] = v
			}
			hist := histogramOf(mfs, h.name, labels)
			if hist == nil {
				t.Errorf("no %s with labels %v", h.name, labels)
				continue
			}
			if n, sum := hist.GetSampleCount(), hist.GetSampleSum(); n != clockCallsB || math.Abs(sum-clockCallsB*h.each) > 1e-6 {
				t.Errorf("%s %v: count %d sum %.6f s, want %d and %.6f s (B's stamps)", h.name, labels, n, sum, clockCallsB, clockCallsB*h.each)
			}
		}
	})

	t.Run("offsets", func(t *testing.T) {
		for _, c := range []struct {
			node string
			want float64
		}{{nodeA, 0}, {nodeB, clockAhead.Seconds()}} {
			got, ok := gaugeValue(mfs, "sip_exporter_clock_offset_seconds", map[string]string{"source": source, "node": c.node})
			switch {
			case !ok:
				t.Errorf("no sip_exporter_clock_offset_seconds{source=%q,node=%q}", source, c.node)
			case math.Abs(got-c.want) > clockTolerance:
				t.Errorf("sip_exporter_clock_offset_seconds{node=%q} = %.6f, want %.0f±%.0f", c.node, got, c.want, clockTolerance)
			default:
				t.Logf("sip_exporter_clock_offset_seconds{node=%q} = %.6f", c.node, got)
			}
		}
	})

	t.Run("self-metrics", func(t *testing.T) {
		for _, name := range []string{"sip_exporter_messages_late_total", "sip_exporter_messages_dropped_total"} {
			mf, ok := mfs[name]
			if !ok {
				t.Errorf("no %s", name)
				continue
			}
			for _, m := range mf.GetMetric() {
				if v := m.GetCounter().GetValue(); v != 0 {
					t.Errorf("%s%s = %v, want 0", name, labelString(m), v)
				}
			}
		}
		if v, ok := gaugeValue(mfs, "sip_exporter_messages_late_total", map[string]string{"source": source}); !ok {
			t.Errorf("no sip_exporter_messages_late_total{source=%q}", source)
		} else if v != 0 {
			t.Errorf("sip_exporter_messages_late_total{source=%q} = %v, want 0", source, v)
		}
		if v, ok := gaugeValue(mfs, "sip_exporter_transaction_responses_unmatched_total", nil); !ok || v != 0 {
			t.Errorf("sip_exporter_transaction_responses_unmatched_total = %v (present %v), want 0", v, ok)
		}
	})
	if t.Failed() {
		t.Logf("exposition:\n%s", sipFamiliesAndClock(raw))
	}
	t.Logf("clock test took %s", time.Since(start).Round(time.Millisecond))
}

// checkSessions checks the session counters of node: attempts, outcomes
// per code (codes with a zero count are not listed in outcomes), and no
// timeout.
func checkSessions(t *testing.T, mfs map[string]*dto.MetricFamily, node string, attempts int64, outcomes map[string]int64) {
	t.Helper()
	if got, ok := gaugeValue(mfs, "sip_session_attempts_total", map[string]string{"node": node}); !ok || int64(got) != attempts {
		t.Errorf("sip_session_attempts_total{node=%q} = %v (present %v), want %d", node, got, ok, attempts)
	}
	gotOutcomes := map[string]int64{}
	for _, m := range mfs["sip_session_outcomes_total"].GetMetric() {
		if labelValue(m, "node") == node && m.GetCounter().GetValue() != 0 {
			gotOutcomes[labelValue(m, "code")] += int64(m.GetCounter().GetValue())
		}
	}
	for code, n := range outcomes {
		if gotOutcomes[code] != n {
			t.Errorf("sip_session_outcomes_total{node=%q,code=%q} = %d, want %d", node, code, gotOutcomes[code], n)
		}
	}
	for code, n := range gotOutcomes {
		if _, ok := outcomes[code]; !ok {
			t.Errorf("sip_session_outcomes_total{node=%q,code=%q} = %d, want 0", node, code, n)
		}
	}
	if got, ok := gaugeValue(mfs, "sip_session_timeouts_total", map[string]string{"node": node}); !ok || got != 0 {
		t.Errorf("sip_session_timeouts_total{node=%q} = %v (present %v), want 0", node, got, ok)
	}
}

// countsOfExpositionNode reads sip_responses_total and sip_requests_total of node.
func countsOfExpositionNode(mfs map[string]*dto.MetricFamily, node string) sipCounts {
	c := newSIPCounts()
	for _, m := range mfs["sip_responses_total"].GetMetric() {
		if labelValue(m, "node") == node {
			c.responses[responseKey{code: labelValue(m, "code"), method: labelValue(m, "method")}] += int64(m.GetCounter().GetValue())
		}
	}
	for _, m := range mfs["sip_requests_total"].GetMetric() {
		if labelValue(m, "node") == node {
			c.requests[labelValue(m, "method")] += int64(m.GetCounter().GetValue())
		}
	}
	return c
}

// histogramOf returns the histogram of family name whose labels include
// labels, or nil.
func histogramOf(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Histogram {
	for _, m := range mfs[name].GetMetric() {
		if hasLabels(m, labels) && m.GetHistogram() != nil {
			return m.GetHistogram()
		}
	}
	return nil
}

// sipFamiliesAndClock returns the lines of the exposition of the sip_
// families and of the merge's self-metrics, for a failure message.
func sipFamiliesAndClock(raw []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if (strings.HasPrefix(line, "sip_") && !strings.HasPrefix(line, "sip_exporter_")) ||
			strings.HasPrefix(line, "sip_exporter_clock_") || strings.HasPrefix(line, "sip_exporter_messages_") {
			if !strings.HasSuffix(line, " 0") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// clockWant is what SIPp says about agent A's calls.
type clockWant struct {
	attempts int64            // INVITEs first sent (-trace_counts)
	outcomes map[string]int64 // final responses to them, by code
	wire     sipCounts        // every message on the wire (-trace_msg)
}

// runClockMixA runs every UAC of clockMixA at once against target and
// returns what SIPp counted.
func runClockMixA(t *testing.T, target string) clockWant {
	t.Helper()
	dir := t.TempDir()
	each := make([]clockWant, len(clockMixA))
	runEach(t, len(clockMixA), func(i int) error {
		u := clockMixA[i]
		udir := filepath.Join(dir, u.name)
		wire, err := runHEPUAC(udir, u, fmt.Sprintf("127.0.11.%d", clockFirstUAC+i), target)
		var attempts int64
		var finals map[string]int64
		if err == nil {
			attempts, finals, err = sippInviteOutcomes(udir)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
		each[i] = clockWant{attempts: attempts, outcomes: finals, wire: wire}
		return nil
	})
	want := clockWant{outcomes: map[string]int64{}, wire: newSIPCounts()}
	for _, w := range each {
		want.wire.add(w.wire)
		want.attempts += w.attempts
		for code, n := range w.outcomes {
			want.outcomes[code] += n
		}
	}
	return want
}

// sippInviteOutcomes reads the -trace_counts file of a uac_invite.xml run
// in dir: the INVITEs sent (first transmissions: one per session attempt)
// and the final responses received to them by code (the <recv> columns
// before the first ACK is sent; the later 200 is the BYE's).
func sippInviteOutcomes(dir string) (int64, map[string]int64, error) {
	file, header, last, err := sippCountsOf(dir)
	if err != nil {
		return 0, nil, err
	}
	var attempts int64 = -1
	finals := map[string]int64{}
	for i, h := range header {
		if i >= len(last) {
			break
		}
		f := strings.Split(h, "_") // N_NAME_Column
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseInt(last[i], 10, 64)
		if err != nil {
			return 0, nil, fmt.Errorf("%s: column %s: %w", file, h, err)
		}
		switch {
		case f[1] == "INVITE" && f[2] == "Sent":
			attempts = n
		case f[1] == "ACK":
			return attempts, finals, nil
		case f[2] == "Recv":
			if code, err := strconv.Atoi(f[1]); err == nil && code >= 200 && n > 0 {
				finals[f[1]] += n
			}
		}
	}
	return 0, nil, fmt.Errorf("%s: no INVITE_Sent or ACK column in %q", file, strings.Join(header, ";"))
}

// aheadCall is one call of agent B, numbered i: an answered call (INVITE,
// 100, 180 at 50 ms, 200 at 1 s, ACK) and B's BYE at 1.5 s with its 200
// 20 ms later, as the scripted dialogs of dialogs_test.go.
func aheadCall(i int) []sipMsg {
	msgs := slices.Concat(answered(), byeFromB(1500, ""))
	for j := range msgs {
		msgs[j].fromTag += "-" + strconv.Itoa(i)
		if msgs[j].toTag != "" {
			msgs[j].toTag += "-" + strconv.Itoa(i)
		}
	}
	return msgs
}

// sendAheadCalls sends agent B's calls to the HEP listener at hepAddr
// over UDP from clockSenderIP, each message when its schedule comes (call
// i starts at i*clockCallGapB), stamped with the schedule clockAhead
// ahead of the wall clock, with capture agent ID clockNodeB.
func sendAheadCalls(hepAddr string) error {
	raddr, err := net.ResolveUDPAddr("udp", hepAddr)
	if err != nil {
		return err
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(clockSenderIP)}, raddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	type scheduled struct {
		at  time.Duration
		msg sipMsg
		id  string // Call-ID
	}
	var all []scheduled
	for i := range clockCallsB {
		for _, m := range aheadCall(i) {
			all = append(all, scheduled{at: time.Duration(i)*clockCallGapB + time.Duration(m.ms)*time.Millisecond, msg: m,
				id: fmt.Sprintf("clock-b-%d@127.0.11.3", i)})
		}
	}
	slices.SortStableFunc(all, func(a, b scheduled) int { return int(a.at - b.at) })
	a, b := []byte{192, 0, 2, 1}, []byte{192, 0, 2, 2}
	base := time.Now()
	var buf []byte
	for _, s := range all {
		time.Sleep(time.Until(base.Add(s.at)))
		stamp := base.Add(clockAhead + s.at)
		src, dst := a, b
		if s.msg.fromB {
			src, dst = b, a
		}
		buf, err = hep.AppendV3(buf[:0], &hep.Packet{
			IPFamily: hep.FamilyIPv4, IPProtocol: 17,
			SrcIP: src, DstIP: dst, SrcPort: 5060, DstPort: 5060,
			TimestampSeconds: uint32(stamp.Unix()), TimestampMicros: uint32(stamp.Nanosecond() / 1000),
			ProtocolType: hep.ProtocolSIP, CaptureAgentID: clockNodeB,
			Payload: s.msg.bytes(s.id),
		})
		if err != nil {
			return err
		}
		if _, err := conn.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
