package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sip-exporter/sip_exporter/capture/hep"
)

// The skew test uses 127.0.17.0/24: the exporter's HEP listener and the
// two agents' sending sockets.
const (
	skewHEPIP = "127.0.17.1"
	skewNodeA = 1701 // reports every message, stamped skewOffset ahead
	skewNodeB = 1702 // reports the responses only, stamped skewOffset behind
	// skewOffset is each agent's clock error: within the time model's clock
	// threshold (100 ms at the default lateness), so neither is corrected,
	// and the two are 2*skewOffset apart, within its skew window (200 ms).
	skewOffset = 80 * time.Millisecond
	skewCalls  = 10
)

// TestClockAgentsSkewed runs the real binary with a HEP listener fed by two
// agents that see the same calls, one clock 80 ms ahead and one 80 ms
// behind (160 ms apart: under the old model's 100 ms windows, neither
// corrected, matched nor deduplicated). Agent A reports every message,
// agent B only the responses, so that each response is seen twice 160 ms
// apart and B's copy of a 100 Trying, 180 Ringing or BYE's 200 precedes
// the request A reported. Every count must be that of the calls as
// generated: each message once (the later copy removed), every response
// matched to its transaction (early, delay 0, where B's copy comes first),
// none unmatched, every call answered and ended by its BYE.
func TestClockAgentsSkewed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildExporter(t)
	hepAddr := freeAddrOn(t, skewHEPIP)
	e := startExporter(t, bin, "--hep.listen-address="+hepAddr, "--hep.transport=udp")
	if err := e.waitSourceUp("udp://"+hepAddr, "hep", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := sendSkewedCalls(hepAddr); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1300 * time.Millisecond) // the lateness, then the last messages are counted
	e.settle(t, 5*time.Second)
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	// Expected from the generator: per call INVITE, 100, 180, 200, ACK,
	// BYE, 200 (aheadCall), each counted once.
	want := map[string]float64{
		`sip_requests_total{method="INVITE"}`:                            skewCalls,
		`sip_requests_total{method="ACK"}`:                               skewCalls,
		`sip_requests_total{method="BYE"}`:                               skewCalls,
		`sip_responses_total{code="100",method="INVITE"}`:                skewCalls,
		`sip_responses_total{code="180",method="INVITE"}`:                skewCalls,
		`sip_responses_total{code="200",method="INVITE"}`:                skewCalls,
		`sip_responses_total{code="200",method="BYE"}`:                   skewCalls,
		`sip_session_attempts_total`:                                     skewCalls,
		`sip_session_outcomes_total{code="200"}`:                         skewCalls,
		`sip_session_timeouts_total`:                                     0,
		`sip_sessions_ended_total{reason="bye"}`:                         skewCalls,
		`sip_exporter_duplicates_removed_total`:                          4 * skewCalls, // A's copy of each response
		`sip_exporter_transaction_responses_unmatched_total`:             0,
		`sip_exporter_transaction_responses_early_total`:                 3 * skewCalls, // 100, 180 and BYE's 200
		`sip_response_retransmissions_total{code="200",method="INVITE"}`: 0,
	}
	for series, w := range want {
		if got := sumSeries(mfs, series); got != w {
			t.Errorf("%s = %v, want %v", series, got, w)
		}
	}
}

// sumSeries returns the sum of the samples of a series written
// `family{label="value",...}` (labels it does not name are summed over).
func sumSeries(mfs map[string]*dto.MetricFamily, series string) float64 {
	name, labels := series, map[string]string{}
	if i := slices.Index([]byte(series), '{'); i >= 0 {
		name = series[:i]
		for _, kv := range splitLabels(series[i+1 : len(series)-1]) {
			labels[kv[0]] = kv[1]
		}
	}
	var sum float64
	for _, m := range mfs[name].GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

// splitLabels splits `a="x",b="y"` into pairs.
func splitLabels(s string) [][2]string {
	var out [][2]string
	for s != "" {
		eq := slices.Index([]byte(s), '=')
		v, rest, _ := cutQuoted(s[eq+1:])
		out = append(out, [2]string{s[:eq], v})
		s = rest
		if len(s) > 0 && s[0] == ',' {
			s = s[1:]
		}
	}
	return out
}

func cutQuoted(s string) (string, string, bool) {
	v, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	u, _ := strconv.Unquote(v)
	return u, s[len(v):], true
}

// sendSkewedCalls sends skewCalls calls (aheadCall), one every 150 ms, each
// message when its schedule comes: agent A (from 127.0.17.2, capture ID
// skewNodeA) every message stamped skewOffset ahead, agent B (from
// 127.0.17.3, skewNodeB) each response stamped skewOffset behind.
func sendSkewedCalls(hepAddr string) error {
	raddr, err := net.ResolveUDPAddr("udp", hepAddr)
	if err != nil {
		return err
	}
	var conns [2]*net.UDPConn
	for i, ip := range []string{"127.0.17.2", "127.0.17.3"} {
		if conns[i], err = net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, raddr); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	type scheduled struct {
		at  time.Duration
		msg sipMsg
		id  string
	}
	var all []scheduled
	for i := range skewCalls {
		for _, m := range aheadCall(i) {
			all = append(all, scheduled{at: time.Duration(i)*150*time.Millisecond + time.Duration(m.ms)*time.Millisecond, msg: m,
				id: fmt.Sprintf("skew-%d@127.0.17.2", i)})
		}
	}
	slices.SortStableFunc(all, func(a, b scheduled) int { return int(a.at - b.at) })
	a, b := []byte{192, 0, 2, 1}, []byte{192, 0, 2, 2}
	base := time.Now().Add(100 * time.Millisecond)
	var buf []byte
	for _, s := range all {
		time.Sleep(time.Until(base.Add(s.at)))
		src, dst := a, b
		if s.msg.fromB {
			src, dst = b, a
		}
		payload := s.msg.bytes(s.id)
		for agent, offset := range []time.Duration{skewOffset, -skewOffset} {
			if agent == 1 && s.msg.code == 0 {
				continue // B reports the responses only
			}
			stamp := base.Add(s.at + offset)
			buf, err = hep.AppendV3(buf[:0], &hep.Packet{
				IPFamily: hep.FamilyIPv4, IPProtocol: 17,
				SrcIP: src, DstIP: dst, SrcPort: 5060, DstPort: 5060,
				TimestampSeconds: uint32(stamp.Unix()), TimestampMicros: uint32(stamp.Nanosecond() / 1000),
				ProtocolType: hep.ProtocolSIP, CaptureAgentID: uint32(skewNodeA + agent),
				Payload: payload,
			})
			if err != nil {
				return err
			}
			if _, err := conns[agent].Write(buf); err != nil {
				return err
			}
		}
	}
	return nil
}
