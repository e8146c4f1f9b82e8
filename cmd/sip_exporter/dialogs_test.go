package main

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// sipMsg is one scripted SIP message between the caller (A, 192.0.2.1) and
// the callee (B, 192.0.2.2), sent at ms milliseconds into the dialog.
type sipMsg struct {
	ms      int
	fromB   bool   // sent by B
	method  string // request method, or the CSeq method of a response
	code    int    // 0 for a request
	cseq    int
	branch  string
	fromTag string // From tag (the dialog initiator's tag on A's requests)
	toTag   string
	extra   string // more header lines, CRLF-terminated
}

func (m sipMsg) bytes(callID string) []byte {
	to := "<sip:bob@192.0.2.2>"
	if m.toTag != "" {
		to += ";tag=" + m.toTag
	}
	from := "<sip:alice@192.0.2.1>;tag=" + m.fromTag
	var b strings.Builder
	if m.code == 0 {
		fmt.Fprintf(&b, "%s sip:bob@192.0.2.2 SIP/2.0\r\n", m.method)
	} else {
		fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", m.code, reasons[m.code])
	}
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP 192.0.2.%d:5060;branch=%s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n%sContent-Length: 0\r\n\r\n",
		map[bool]int{false: 1, true: 2}[m.fromB != (m.code != 0)], m.branch, from, to, callID, m.cseq, m.method, m.extra)
	return []byte(b.String())
}

// writeScript writes msgs as UDP packets to a pcap file and returns its path.
func writeScript(t *testing.T, callID string, msgs []sipMsg) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dialog.pcap")
	pkts := make([]scriptPacket, len(msgs))
	for i, m := range msgs {
		pkts[i] = scriptPacket{time.Duration(m.ms) * time.Millisecond, m.fromB, m.bytes(callID)}
	}
	if err := writeScriptPackets(path, pkts); err != nil {
		t.Fatal(err)
	}
	return path
}

// scriptPacket is one UDP packet between A (192.0.2.1) and B (192.0.2.2),
// port 5060 both, at a time into the capture.
type scriptPacket struct {
	at      time.Duration
	fromB   bool // sent by B
	payload []byte
}

// writeScriptPackets writes pkts, in their order, to a pcap file at path
// (nanosecond timestamps from 2026-11-01 12:00 UTC).
func writeScriptPackets(path string, pkts []scriptPacket) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a, b := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	for _, p := range pkts {
		src, dst := a, b
		if p.fromB {
			src, dst = b, a
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst, Protocol: layers.IPProtocolUDP}
		udp := &layers.UDP{SrcPort: 5060, DstPort: 5060}
		_ = udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(p.payload)); err != nil {
			return err
		}
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: start.Add(p.at), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}, buf.Bytes()); err != nil {
			return err
		}
	}
	return f.Close()
}

// txValues runs files through the report pipeline and returns every
// non-zero sample of the tracker's families, histograms as their _count
// and _sum, keyed by name and labels without node, class and reason.
func txValues(t *testing.T, files ...string) map[string]float64 {
	t.Helper()
	return txValuesWith(t, defaultPipelineConfig(), files...)
}

// txValuesWith is txValues with the pipeline configured by cfg.
func txValuesWith(t *testing.T, cfg pipeline.Config, files ...string) map[string]float64 {
	t.Helper()
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := readFiles(p, files, testWorkers, new(decode.Stats), func(err error) { t.Error(err) }); err != nil {
		t.Fatal(err)
	}
	return trackerValues(t, p)
}

// trackerValues ends p's tracker and returns the non-zero values of its
// families, as txValues.
func trackerValues(t *testing.T, p *pipeline.Pipeline) map[string]float64 {
	t.Helper()
	p.Tracker().End()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Tracker())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				// reason is the registry text of a code (dropped) beside
				// class, else a value of its own (sip_sessions_ended_total).
				switch l.GetName() {
				case "node", "class":
				case "reason":
					if labelValue(m, "class") == "" {
						ls = append(ls, l.GetName()+"="+l.GetValue())
					}
				default:
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
			}
			sort.Strings(ls)
			key := mf.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			put := func(k string, v float64) {
				if v != 0 {
					out[k] = v
				}
			}
			switch {
			case m.GetHistogram() != nil:
				put(strings.Replace(key, "{", "_count{", 1)+map[bool]string{true: "_count"}[!strings.Contains(key, "{")], float64(m.GetHistogram().GetSampleCount()))
				put(strings.Replace(key, "{", "_sum{", 1)+map[bool]string{true: "_sum"}[!strings.Contains(key, "{")], m.GetHistogram().GetSampleSum())
			case m.GetCounter() != nil:
				put(key, m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				put(key, m.GetGauge().GetValue())
			}
		}
	}
	// The STIR/SHAKEN families count initial INVITE transactions by what
	// their Identity and verstat carry (their own tests: TestObserveSTIR,
	// TestSTIRSIPp). No scripted message carries either, so every INVITE
	// they count is under none in both, at least one per attempt (a
	// re-send after a challenge is another); then they are left out.
	attest, verstat := out["sip_stir_attestations_total{attest=none}"], out["sip_stir_verifications_total{verstat=none}"]
	if attest != verstat || attest < out["sip_session_attempts_total"] {
		t.Errorf("STIR/SHAKEN: %v INVITEs with attest none, %v with verstat none, %v attempts", attest, verstat, out["sip_session_attempts_total"])
	}
	for k := range out {
		if strings.HasPrefix(k, "sip_stir_") {
			if !strings.HasSuffix(k, "=none}") {
				t.Errorf("STIR/SHAKEN: %s = %v, but no scripted INVITE carries Identity or verstat", k, out[k])
			}
			delete(out, k)
		}
	}
	return out
}

// answered is an answered call from A to B: INVITE, 100, 180 at 50 ms,
// 200 at 1 s, ACK, and B hangs up at 5 s with a Q.850 cause.
func answered() []sipMsg {
	return []sipMsg{
		{ms: 0, method: "INVITE", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
		{ms: 10, fromB: true, method: "INVITE", code: 100, cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
		{ms: 50, fromB: true, method: "INVITE", code: 180, cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "b1"},
		{ms: 1000, fromB: true, method: "INVITE", code: 200, cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "b1"},
		{ms: 1010, method: "ACK", cseq: 1, branch: "z9hG4bKack", fromTag: "a1", toTag: "b1"},
	}
}

// byeFromB is B's BYE at ms and its 200 20 ms later (From and To swap).
func byeFromB(ms int, extra string) []sipMsg {
	return []sipMsg{
		{ms: ms, fromB: true, method: "BYE", cseq: 1, branch: "z9hG4bKbye", fromTag: "b1", toTag: "a1", extra: extra},
		{ms: ms + 20, method: "BYE", code: 200, cseq: 1, branch: "z9hG4bKbye", fromTag: "b1", toTag: "a1"},
	}
}

// TestScriptedDialogs replays generated captures of the typical dialogs
// through the report pipeline and checks every non-zero transaction
// counter and histogram count (and the sums that are exact).
func TestScriptedDialogs(t *testing.T) {
	inv := func(ms, code int, toTag string, extra string) sipMsg {
		return sipMsg{ms: ms, fromB: true, method: "INVITE", code: code, cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: toTag, extra: extra}
	}
	tests := []struct {
		name string
		msgs []sipMsg
		want map[string]float64
	}{
		{"answered", slices.Concat(answered(), byeFromB(5000, "Reason: Q.850 ;cause=16 ;text=\"Normal call clearing\"\r\n")), map[string]float64{
			"sip_session_attempts_total":                               1,
			"sip_session_outcomes_total{code=200}":                     1,
			"sip_session_request_delay_seconds_count{outcome=success}": 1,
			"sip_session_request_delay_seconds_sum{outcome=success}":   0.05,
			"sip_session_disconnect_delay_seconds_count":               1,
			"sip_session_disconnect_delay_seconds_sum":                 0.02,
			"sip_session_duration_seconds_count":                       1,
			"sip_sessions_ended_total{reason=bye}":                     1,
			"sip_session_duration_seconds_sum":                         4,
			"sip_reason_causes_total{cause=16,protocol=Q.850}":         1,
		}},
		{"busy", []sipMsg{
			{ms: 0, method: "INVITE", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
			inv(10, 100, "", ""),
			inv(100, 486, "b1", "Reason: Q.850;cause=17\r\n"),
			{ms: 110, method: "ACK", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "b1"},
		}, map[string]float64{
			"sip_session_attempts_total":                               1,
			"sip_session_outcomes_total{code=486}":                     1,
			"sip_session_request_delay_seconds_count{outcome=failure}": 1,
			"sip_session_request_delay_seconds_sum{outcome=failure}":   0.1,
			"sip_reason_causes_total{cause=17,protocol=Q.850}":         1,
		}},
		{"cancelled", []sipMsg{
			{ms: 0, method: "INVITE", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
			inv(10, 100, "", ""),
			inv(50, 180, "b1", ""),
			{ms: 2000, method: "CANCEL", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", extra: "Reason: SIP;cause=600;text=\"Busy Everywhere\"\r\n"},
			{ms: 2010, fromB: true, method: "CANCEL", code: 200, cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "b1"},
			inv(2020, 487, "b1", ""),
			{ms: 2030, method: "ACK", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "b1"},
		}, map[string]float64{
			"sip_session_attempts_total":                               1,
			"sip_session_outcomes_total{code=487}":                     1,
			"sip_session_request_delay_seconds_count{outcome=success}": 1,
			"sip_session_request_delay_seconds_sum{outcome=success}":   0.05,
			"sip_reason_causes_total{cause=600,protocol=SIP}":          1,
		}},
		{"challenged register", []sipMsg{
			{ms: 0, method: "REGISTER", cseq: 1, branch: "z9hG4bKr1", fromTag: "a1"},
			{ms: 20, fromB: true, method: "REGISTER", code: 401, cseq: 1, branch: "z9hG4bKr1", fromTag: "a1", toTag: "b1"},
			{ms: 100, method: "REGISTER", cseq: 2, branch: "z9hG4bKr2", fromTag: "a1"},
			{ms: 130, fromB: true, method: "REGISTER", code: 200, cseq: 2, branch: "z9hG4bKr2", fromTag: "a1", toTag: "b1"},
		}, map[string]float64{
			// One attempt, its RRD from the first REGISTER to the 200,
			// the challenge within (RFC 6076 §4.1).
			"sip_registration_request_delay_seconds_count{outcome=success}": 1,
			"sip_registration_request_delay_seconds_sum{outcome=success}":   0.13,
			"sip_registration_attempts_total":                               1,
			"sip_registration_challenges_total{code=401}":                   1,
		}},
		{"re-invite", slices.Concat(answered(), []sipMsg{
			{ms: 3000, method: "INVITE", cseq: 2, branch: "z9hG4bKre", fromTag: "a1", toTag: "b1"},
			{ms: 3100, fromB: true, method: "INVITE", code: 200, cseq: 2, branch: "z9hG4bKre", fromTag: "a1", toTag: "b1"},
			{ms: 3110, method: "ACK", cseq: 2, branch: "z9hG4bKack2", fromTag: "a1", toTag: "b1"},
		}, byeFromB(5000, "")), map[string]float64{
			"sip_session_attempts_total":                               1,
			"sip_session_outcomes_total{code=200}":                     1,
			"sip_session_request_delay_seconds_count{outcome=success}": 1,
			"sip_session_request_delay_seconds_sum{outcome=success}":   0.05,
			"sip_session_disconnect_delay_seconds_count":               1,
			"sip_session_disconnect_delay_seconds_sum":                 0.02,
			"sip_session_duration_seconds_count":                       1,
			"sip_sessions_ended_total{reason=bye}":                     1,
			"sip_session_duration_seconds_sum":                         4,
		}},
		{"forked", []sipMsg{
			{ms: 0, method: "INVITE", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
			inv(10, 100, "", ""),
			inv(40, 180, "fa", ""),
			inv(60, 180, "fb", ""),
			inv(1000, 200, "fa", ""),
			inv(1100, 200, "fb", ""),
			{ms: 1010, method: "ACK", cseq: 1, branch: "z9hG4bKacka", fromTag: "a1", toTag: "fa"},
			{ms: 1110, method: "ACK", cseq: 1, branch: "z9hG4bKackb", fromTag: "a1", toTag: "fb"},
			{ms: 1120, method: "BYE", cseq: 2, branch: "z9hG4bKbyeb", fromTag: "a1", toTag: "fb"},
			{ms: 1130, fromB: true, method: "BYE", code: 200, cseq: 2, branch: "z9hG4bKbyeb", fromTag: "a1", toTag: "fb"},
			{ms: 9000, method: "BYE", cseq: 2, branch: "z9hG4bKbyea", fromTag: "a1", toTag: "fa"},
			{ms: 9010, fromB: true, method: "BYE", code: 200, cseq: 2, branch: "z9hG4bKbyea", fromTag: "a1", toTag: "fa"},
		}, map[string]float64{
			"sip_session_attempts_total":                               1,
			"sip_session_outcomes_total{code=200}":                     1,
			"sip_session_request_delay_seconds_count{outcome=success}": 1,
			"sip_session_request_delay_seconds_sum{outcome=success}":   0.04,
			"sip_session_disconnect_delay_seconds_count":               2,
			"sip_session_disconnect_delay_seconds_sum":                 0.02,
			"sip_session_duration_seconds_count":                       2,
			"sip_sessions_ended_total{reason=bye}":                     2,
			"sip_session_duration_seconds_sum":                         8 + 0.02,
		}},
		{"lost ack", slices.Concat(answered()[:4], []sipMsg{
			inv(1500, 200, "b1", ""),
			inv(2500, 200, "b1", ""),
			{ms: 2510, method: "ACK", cseq: 1, branch: "z9hG4bKack", fromTag: "a1", toTag: "b1"},
		}, byeFromB(5000, "")), map[string]float64{
			"sip_session_attempts_total":                                 1,
			"sip_session_outcomes_total{code=200}":                       1,
			"sip_response_retransmissions_total{code=200,method=INVITE}": 2,
			"sip_session_request_delay_seconds_count{outcome=success}":   1,
			"sip_session_request_delay_seconds_sum{outcome=success}":     0.05,
			"sip_session_disconnect_delay_seconds_count":                 1,
			"sip_session_disconnect_delay_seconds_sum":                   0.02,
			"sip_session_duration_seconds_count":                         1,
			"sip_sessions_ended_total{reason=bye}":                       1,
			"sip_session_duration_seconds_sum":                           4,
		}},
		// The 180 (at 50 ms) is lost on its way to A, which retransmits
		// its INVITE; the capture's times go forward (a file whose times
		// step back is counted at the latest time before: input.File).
		{"retransmitted invite", slices.Concat(answered()[:3], []sipMsg{
			{ms: 500, method: "INVITE", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
			inv(510, 100, "", ""),
		}, answered()[3:], byeFromB(5000, "")), map[string]float64{
			"sip_session_attempts_total":                                 1,
			"sip_session_outcomes_total{code=200}":                       1,
			"sip_request_retransmissions_total{method=INVITE}":           1,
			"sip_response_retransmissions_total{code=100,method=INVITE}": 1,
			"sip_session_request_delay_seconds_count{outcome=success}":   1,
			"sip_session_request_delay_seconds_sum{outcome=success}":     0.05,
			"sip_session_disconnect_delay_seconds_count":                 1,
			"sip_session_disconnect_delay_seconds_sum":                   0.02,
			"sip_session_duration_seconds_count":                         1,
			"sip_sessions_ended_total{reason=bye}":                       1,
			"sip_session_duration_seconds_sum":                           4,
		}},
		{"no final response", []sipMsg{
			{ms: 0, method: "INVITE", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
			inv(10, 100, "", ""),
			inv(50, 180, "b1", ""),
		}, map[string]float64{
			"sip_session_attempts_total":                               1,
			"sip_session_timeouts_total":                               1,
			"sip_exporter_transactions_timed_out_total{kind=invite}":   1,
			"sip_session_request_delay_seconds_count{outcome=success}": 1,
			"sip_session_request_delay_seconds_sum{outcome=success}":   0.05,
		}},
		{"timeout within the capture", []sipMsg{
			{ms: 0, method: "INVITE", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
			{ms: 1, method: "OPTIONS", cseq: 1, branch: "z9hG4bKo1", fromTag: "a1"},
			{ms: 181_000, method: "OPTIONS", cseq: 1, branch: "z9hG4bKo2", fromTag: "a2"},
			{ms: 181_010, fromB: true, method: "OPTIONS", code: 200, cseq: 1, branch: "z9hG4bKo2", fromTag: "a2", toTag: "b2"},
			// The INVITE's transaction is gone: its late 200 matches nothing.
			inv(181_020, 200, "b1", ""),
		}, map[string]float64{
			"sip_session_attempts_total":                                 1,
			"sip_session_timeouts_total":                                 1,
			"sip_exporter_transactions_timed_out_total{kind=invite}":     1,
			"sip_exporter_transactions_timed_out_total{kind=non_invite}": 1,
			"sip_exporter_transaction_responses_unmatched_total":         1,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			compareTx(t, txValues(t, writeScript(t, "call-"+strings.ReplaceAll(tc.name, " ", "-")+"@example.com", tc.msgs)), tc.want)
		})
	}
}

// compareTx reports every value of want that got lacks or differs in, and
// every value of got that want does not list.
func compareTx(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok || (g != want[k] && fmt.Sprintf("%.6f", g) != fmt.Sprintf("%.6f", want[k])) {
			t.Errorf("%s = %v, want %v", k, got[k], want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %v", k, got[k])
		}
	}
}

// TestObserveTxAllocs: classifying a message with its transaction event
// and counting and tracking it after the merge allocate nothing.
func TestObserveTxAllocs(t *testing.T) {
	cfg := defaultPipelineConfig()
	cfg.DedupWindow = 0 // the same message again and again
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var m sip.Message
	msg := sipMsg{method: "BYE", cseq: 2, branch: "z9hG4bKb", fromTag: "a1", toTag: "b1", extra: "Reason: Q.850;cause=16\r\n"}.bytes("c1@example.com")
	if err := sip.Parse(msg, &m); err != nil {
		t.Fatal(err)
	}
	o := &decode.Origin{Time: 1}
	if a := testing.AllocsPerRun(1000, func() { p.Observe(p.SourceNode(""), o, &m) }); a != 0 {
		t.Errorf("observe: %v allocs per message", a)
	}
}
