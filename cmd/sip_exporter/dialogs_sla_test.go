package main

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestScriptedSLA replays generated captures of the SLA cases of issue 19
// (items 3 and 4) through the report pipeline with the default flags
// (--sip.invite-timeout=180s), each checked at checkpoints: the capture
// cut after its first n messages. The expectations are every non-zero
// transaction value, from the script.
//
//   - A session-timer re-INVITE answered 481 (Call/Transaction Does Not
//     Exist: the callee restarted) ends the session, reason no_dialog; an
//     UPDATE answered 408 (Request Timeout), reason request_timeout (RFC
//     3261 §12.2.1.2). Neither is active until --sip.session-max-age.
//   - A call answered after 175 s of ringing whose ACK is lost: the 200
//     is retransmitted on the UAS's schedule (T1 doubling to T2, RFC 3261
//     §13.3.1.4), up to 11.5 s after the first, past the 180 s from the
//     INVITE: retransmissions of a transaction kept 64*T1 after its final
//     response (RFC 6026 Timer L), not unmatched responses.
//   - A call ringing 200 s with a 180 every 60 s (RFC 3261 §13.3.1.1),
//     then answered: each 180 restarts the 180 s wait (Timer C, §16.7
//     step 2), so it is a session, not a timeout. The repeated 180s are
//     on the wire what a retransmission is (same code, same To tag) and
//     count as such.
func TestScriptedSLA(t *testing.T) {
	answeredCall := map[string]float64{
		"sip_session_attempts_total":                               1,
		"sip_session_outcomes_total{code=200}":                     1,
		"sip_session_request_delay_seconds_count{outcome=success}": 1,
		"sip_session_request_delay_seconds_sum{outcome=success}":   0.05,
	}
	with := func(more map[string]float64) map[string]float64 {
		out := maps.Clone(answeredCall)
		maps.Copy(out, more)
		return out
	}
	// A's request inside the dialog, and B's response to it.
	fromA := func(ms int, method string, cseq int, branch string, code int, extra string) []sipMsg {
		return []sipMsg{
			{ms: ms, method: method, cseq: cseq, branch: branch, fromTag: "a1", toTag: "b1", extra: extra},
			{ms: ms + 10, fromB: true, method: method, code: code, cseq: cseq, branch: branch, fromTag: "a1", toTag: "b1"},
		}
	}
	inv := func(ms, code int) sipMsg {
		return sipMsg{ms: ms, fromB: true, method: "INVITE", code: code, cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "b1"}
	}
	ringing := []sipMsg{
		{ms: 0, method: "INVITE", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
		{ms: 10, fromB: true, method: "INVITE", code: 100, cseq: 1, branch: "z9hG4bKi1", fromTag: "a1"},
		inv(50, 180),
	}
	ack := func(ms int) sipMsg {
		return sipMsg{ms: ms, method: "ACK", cseq: 1, branch: "z9hG4bKack", fromTag: "a1", toTag: "b1"}
	}
	// The 200 at 175 s, then again 0.5, 1.5, 3.5, 7.5 and 11.5 s later.
	lateAnswer := slices.Concat(ringing, []sipMsg{inv(175_000, 200)})
	for _, d := range []int{500, 1500, 3500, 7500, 11_500} {
		lateAnswer = append(lateAnswer, inv(175_000+d, 200))
	}
	lateAnswer = slices.Concat(lateAnswer, []sipMsg{ack(186_510)}, byeFromB(200_000, ""))
	// A 180 at 50 ms, 60.05, 120.05 and 180.05 s; the 200 at 200 s.
	longRing := slices.Clone(ringing)
	for _, ms := range []int{60_050, 120_050, 180_050} {
		longRing = append(longRing, inv(ms, 180))
	}
	longRing = slices.Concat(longRing, []sipMsg{inv(200_000, 200), ack(200_010)}, byeFromB(230_000, ""))

	type checkpoint struct {
		n    int // messages of the script written; 0 all
		want map[string]float64
	}
	tests := []struct {
		name   string
		msgs   []sipMsg
		checks []checkpoint
	}{
		{"re-INVITE answered 481", slices.Concat(answered(),
			fromA(900_000, "INVITE", 2, "z9hG4bKre", 481, "Session-Expires: 1800;refresher=uac\r\n"),
			[]sipMsg{{ms: 900_020, method: "ACK", cseq: 2, branch: "z9hG4bKre", fromTag: "a1", toTag: "b1"}}), []checkpoint{
			// The re-INVITE sent, its transaction open at the end of the
			// file (ended then: a timeout); the session is up.
			{6, with(map[string]float64{"sip_sessions_active": 1, "sip_exporter_dialogs": 1,
				"sip_exporter_transactions_timed_out_total{kind=invite}": 1})},
			{0, with(map[string]float64{"sip_sessions_ended_total{reason=no_dialog}": 1})},
		}},
		{"UPDATE from the callee answered 408", slices.Concat(answered(), []sipMsg{
			{ms: 60_000, fromB: true, method: "UPDATE", cseq: 1, branch: "z9hG4bKup", fromTag: "b1", toTag: "a1"},
			{ms: 60_010, method: "UPDATE", code: 408, cseq: 1, branch: "z9hG4bKup", fromTag: "b1", toTag: "a1"},
		}), []checkpoint{
			{6, with(map[string]float64{"sip_sessions_active": 1, "sip_exporter_dialogs": 1,
				"sip_exporter_transactions_timed_out_total{kind=non_invite}": 1})},
			{0, with(map[string]float64{"sip_sessions_ended_total{reason=request_timeout}": 1})},
		}},
		{"2xx retransmitted after a lost ACK, 175 s into ringing", lateAnswer, []checkpoint{
			{4, with(map[string]float64{"sip_sessions_active": 1, "sip_exporter_dialogs": 1})}, // the first 200
			{0, with(map[string]float64{
				"sip_response_retransmissions_total{code=200,method=INVITE}": 5,
				"sip_sessions_ended_total{reason=bye}":                       1,
				"sip_session_duration_seconds_count":                         1,
				"sip_session_duration_seconds_sum":                           25,
				"sip_session_disconnect_delay_seconds_count":                 1,
				"sip_session_disconnect_delay_seconds_sum":                   0.02,
			})},
		}},
		{"ringing 200 s with a 180 every minute, then answered", longRing, []checkpoint{
			{6, map[string]float64{ // ringing for 180.05 s, open at the end of the file: a timeout then
				"sip_session_attempts_total":                                 1,
				"sip_session_timeouts_total":                                 1,
				"sip_exporter_transactions_timed_out_total{kind=invite}":     1,
				"sip_response_retransmissions_total{code=180,method=INVITE}": 3,
				"sip_session_request_delay_seconds_count{outcome=success}":   1,
				"sip_session_request_delay_seconds_sum{outcome=success}":     0.05,
			}},
			{0, with(map[string]float64{
				"sip_response_retransmissions_total{code=180,method=INVITE}": 3,
				"sip_sessions_ended_total{reason=bye}":                       1,
				"sip_session_duration_seconds_count":                         1,
				"sip_session_duration_seconds_sum":                           30,
				"sip_session_disconnect_delay_seconds_count":                 1,
				"sip_session_disconnect_delay_seconds_sum":                   0.02,
			})},
		}},
	}
	for _, tc := range tests {
		for _, cp := range tc.checks {
			n := cp.n
			if n == 0 {
				n = len(tc.msgs)
			}
			t.Run(fmt.Sprintf("%s/%d of %d messages", tc.name, n, len(tc.msgs)), func(t *testing.T) {
				path := writeScript(t, "sla-"+strings.ReplaceAll(tc.name, " ", "-")+"@example.com", tc.msgs[:n])
				compareTx(t, txValues(t, path), cp.want)
			})
		}
	}
}

// TestScriptedAORSpellings: three phones register one address of record,
// each with its own Call-ID and its own spelling of the To URI (host
// case, user=phone, an escaped "a"), and a fourth removes every binding
// with "Contact: *" in a fourth spelling: one registration, then none
// (RFC 3261 §10.3 step 5, §19.1.4), with one shard and with four (a
// REGISTER's shard is that of its address of record).
func TestScriptedAORSpellings(t *testing.T) {
	a, b := netip.MustParseAddrPort("192.0.2.1:5060"), netip.MustParseAddrPort("192.0.2.2:5060")
	spellings := []string{"<sip:alice@EXAMPLE.com>", "<sip:alice@example.com;user=phone>", "<sip:%61lice@example.com>", "<SIP:alice@Example.COM;transport=tcp>"}
	var pkts []dupPacket
	for i, to := range spellings {
		req, resp := "Contact: <sip:alice@192.0.2.1>;expires=3600\r\n", "Contact: <sip:alice@192.0.2.1>;expires=3600\r\n"
		if i == 3 {
			req, resp = "Contact: *\r\nExpires: 0\r\n", ""
		}
		callID := fmt.Sprintf("reg-%d@192.0.2.1", i)
		for _, m := range registerMsgs(i*1000, 1, req, resp) {
			src, dst := a, b
			if m.fromB {
				src, dst = b, a
			}
			payload := strings.Replace(string(m.bytes(callID)), "To: <sip:bob@192.0.2.2>", "To: "+to, 1)
			pkts = append(pkts, dupPacket{at: time.Duration(m.ms) * time.Millisecond, src: src, dst: dst, ipID: uint16(len(pkts)), payload: []byte(payload)})
		}
	}
	reg := func(n int) map[string]float64 {
		return map[string]float64{
			"sip_registration_attempts_total":                               float64(n),
			"sip_registration_request_delay_seconds_count{outcome=success}": float64(n),
			"sip_registration_request_delay_seconds_sum{outcome=success}":   0.02 * float64(n),
		}
	}
	registered := reg(3)
	registered["sip_registrations_active"], registered["sip_exporter_registrations"] = 1, 1
	for _, shards := range []int{1, 4} {
		for _, cp := range []struct {
			n    int // REGISTER transactions written
			want map[string]float64
		}{{3, registered}, {4, reg(4)}} {
			t.Run(fmt.Sprintf("%d shards/%d registers", shards, cp.n), func(t *testing.T) {
				cfg := defaultPipelineConfig()
				cfg.Shards = shards
				path := writeDupCapture(t, t.TempDir(), "aor.pcap", pkts[:2*cp.n])
				compareTx(t, txValuesWith(t, cfg, path), cp.want)
			})
		}
	}
}
