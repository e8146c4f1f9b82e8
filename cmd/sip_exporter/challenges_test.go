package main

import (
	"strings"
	"testing"
)

// TestScriptedChallenges replays generated captures of challenged
// requests through the report pipeline (every figure from the script):
// an INVITE challenged with 407 and re-sent with credentials (same Call-ID
// and From tag, CSeq + 1, a new branch: RFC 3261 §22.2) is one attempt
// whose outcome is the re-send's final response and whose SRD runs from
// the first INVITE, the challenge within (RFC 6076 §4.3); a challenge
// answered by no re-send is an attempt whose outcome is the challenge
// (SRD outcome "challenge"); a REGISTER challenged twice (a stale nonce)
// and then accepted is one registration attempt with two challenges and
// its RRD from the first REGISTER (§4.1).
func TestScriptedChallenges(t *testing.T) {
	inv := func(ms, cseq int, branch string) sipMsg {
		return sipMsg{ms: ms, method: "INVITE", cseq: cseq, branch: branch, fromTag: "a1"}
	}
	resp := func(ms, code, cseq int, method, branch, toTag string) sipMsg {
		return sipMsg{ms: ms, fromB: true, method: method, code: code, cseq: cseq, branch: branch, fromTag: "a1", toTag: toTag}
	}
	tests := []struct {
		name string
		msgs []sipMsg
		want map[string]float64
	}{
		{"invite challenged, re-sent, answered", []sipMsg{
			inv(0, 1, "z9hG4bKi1"),
			resp(20, 407, 1, "INVITE", "z9hG4bKi1", "p1"),
			{ms: 25, method: "ACK", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "p1"},
			inv(30, 2, "z9hG4bKi2"),
			resp(32, 100, 2, "INVITE", "z9hG4bKi2", ""),
			resp(80, 180, 2, "INVITE", "z9hG4bKi2", "b1"),
			resp(1000, 200, 2, "INVITE", "z9hG4bKi2", "b1"),
			{ms: 1010, method: "ACK", cseq: 2, branch: "z9hG4bKa2", fromTag: "a1", toTag: "b1"},
			{ms: 3000, method: "BYE", cseq: 3, branch: "z9hG4bKb3", fromTag: "a1", toTag: "b1"},
			resp(3020, 200, 3, "BYE", "z9hG4bKb3", "b1"),
		}, map[string]float64{
			"sip_session_attempts_total":                               1,
			"sip_session_challenges_total{code=407}":                   1,
			"sip_session_outcomes_total{code=200}":                     1,
			"sip_session_request_delay_seconds_count{outcome=success}": 1,
			"sip_session_request_delay_seconds_sum{outcome=success}":   0.08, // from the first INVITE
			"sip_session_disconnect_delay_seconds_count":               1,
			"sip_session_disconnect_delay_seconds_sum":                 0.02,
			"sip_session_duration_seconds_count":                       1,
			"sip_session_duration_seconds_sum":                         2,
			"sip_sessions_ended_total{reason=bye}":                     1,
		}},
		{"invite challenged, re-sent, busy", []sipMsg{
			inv(0, 1, "z9hG4bKi1"),
			resp(20, 401, 1, "INVITE", "z9hG4bKi1", "p1"),
			{ms: 25, method: "ACK", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "p1"},
			inv(30, 2, "z9hG4bKi2"),
			resp(150, 486, 2, "INVITE", "z9hG4bKi2", "b1"),
			{ms: 160, method: "ACK", cseq: 2, branch: "z9hG4bKi2", fromTag: "a1", toTag: "b1"},
		}, map[string]float64{
			"sip_session_attempts_total":                               1,
			"sip_session_challenges_total{code=401}":                   1,
			"sip_session_outcomes_total{code=486}":                     1,
			"sip_session_request_delay_seconds_count{outcome=failure}": 1,
			"sip_session_request_delay_seconds_sum{outcome=failure}":   0.15,
		}},
		{"invite challenged, never re-sent", []sipMsg{
			inv(0, 1, "z9hG4bKi1"),
			resp(25, 407, 1, "INVITE", "z9hG4bKi1", "p1"),
			{ms: 30, method: "ACK", cseq: 1, branch: "z9hG4bKi1", fromTag: "a1", toTag: "p1"},
		}, map[string]float64{
			"sip_session_attempts_total":                                 1,
			"sip_session_challenges_total{code=407}":                     1,
			"sip_session_outcomes_total{code=407}":                       1,
			"sip_session_request_delay_seconds_count{outcome=challenge}": 1,
			"sip_session_request_delay_seconds_sum{outcome=challenge}":   0.025,
		}},
		{"register challenged twice, accepted", []sipMsg{
			{ms: 0, method: "REGISTER", cseq: 1, branch: "z9hG4bKr1", fromTag: "a1"},
			resp(20, 401, 1, "REGISTER", "z9hG4bKr1", "b1"),
			{ms: 40, method: "REGISTER", cseq: 2, branch: "z9hG4bKr2", fromTag: "a1"},
			resp(60, 401, 2, "REGISTER", "z9hG4bKr2", "b1"),
			{ms: 80, method: "REGISTER", cseq: 3, branch: "z9hG4bKr3", fromTag: "a1"},
			resp(130, 200, 3, "REGISTER", "z9hG4bKr3", "b1"),
		}, map[string]float64{
			"sip_registration_attempts_total":                               1,
			"sip_registration_challenges_total{code=401}":                   2,
			"sip_registration_request_delay_seconds_count{outcome=success}": 1,
			"sip_registration_request_delay_seconds_sum{outcome=success}":   0.13,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			compareTx(t, txValues(t, writeScript(t, "call-"+strings.ReplaceAll(tc.name, " ", "-")+"@example.com", tc.msgs)), tc.want)
		})
	}
}
