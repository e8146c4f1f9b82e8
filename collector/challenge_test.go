package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// attempt is one request of a challenge scenario: transaction key k,
// Call-ID and From tag call, leg, CSeq number, sent at ms, and its
// responses (code at ms), all of method m.
type attempt struct {
	k, call   uint64
	leg, cseq uint32
	m         Method
	ms        int64
	responses [][2]int64 // code, ms
}

// play feeds a's request and responses to tr under label set n.
func (a attempt) play(tr *Tracker, n *Node) {
	mk := func(code uint16, ms int64) TxEvent {
		e := ev(n, a.k, ms, code, a.m, 0)
		e.Retry, e.Leg = uint32(mix64(a.call)), a.leg
		e.Dialog = mix64(a.call) // for REGISTER its address of record
		if a.m == MethodREGISTER {
			e.Expires = 60
		}
		return e
	}
	req := mk(0, a.ms)
	tr.Observe(&req)
	for _, r := range a.responses {
		resp := mk(uint16(r[0]), r[1])
		tr.Observe(&resp)
	}
}

// TestTrackerChallenges: an initial INVITE or a REGISTER challenged with
// 401 or 407 and re-sent with credentials (same Call-ID, From tag and
// leg, CSeq + 1, a new transaction) is one attempt, whose outcome is the
// re-send's final response and whose SRD or RRD runs from the first
// request (RFC 6076 §4.1, §4.3); the challenges count apart, by code. A
// challenge that no re-send answers within 64*T1 = 32 s ends the attempt
// with the challenge as its outcome (SRD and RRD outcome "challenge"),
// not a millisecond before. A request that differs in Call-ID or From
// tag, leg or CSeq number is an attempt of its own.
func TestTrackerChallenges(t *testing.T) {
	n := NewSIP(1).Node([]byte("sbc1"))
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100, InviteTimeout: 5 * time.Second})
	for _, a := range []attempt{
		// Call 1: 407, re-sent, 180 at 60 ms, 200: SRD success 60 ms.
		{k: 1, call: 1, cseq: 1, m: MethodINVITE, ms: 0, responses: [][2]int64{{100, 2}, {407, 30}}},
		{k: 2, call: 1, cseq: 2, m: MethodINVITE, ms: 40, responses: [][2]int64{{100, 42}, {180, 60}, {200, 100}}},
		// Call 2: 401, re-sent, 486 at 1,150 ms: SRD failure 150 ms.
		{k: 3, call: 2, cseq: 7, m: MethodINVITE, ms: 1000, responses: [][2]int64{{401, 1010}}},
		{k: 4, call: 2, cseq: 8, m: MethodINVITE, ms: 1020, responses: [][2]int64{{486, 1150}}},
		// Call 3: 407 on two legs, re-sent on both: two attempts.
		{k: 5, call: 3, leg: 1, cseq: 1, m: MethodINVITE, ms: 2000, responses: [][2]int64{{407, 2010}}},
		{k: 6, call: 3, leg: 2, cseq: 1, m: MethodINVITE, ms: 2001, responses: [][2]int64{{407, 2009}}},
		{k: 7, call: 3, leg: 1, cseq: 2, m: MethodINVITE, ms: 2020, responses: [][2]int64{{180, 2050}, {200, 2080}}},
		{k: 8, call: 3, leg: 2, cseq: 2, m: MethodINVITE, ms: 2021, responses: [][2]int64{{180, 2040}, {200, 2070}}},
		// Call 4: 407, then an INVITE of another From tag (another call),
		// then none: the 407 is the outcome 32 s after it.
		{k: 9, call: 4, cseq: 1, m: MethodINVITE, ms: 3000, responses: [][2]int64{{407, 3025}}},
		{k: 10, call: 40, cseq: 2, m: MethodINVITE, ms: 3030, responses: [][2]int64{{200, 3050}}},
		// Call 5: 407, re-sent, never answered: a timeout.
		{k: 11, call: 5, cseq: 1, m: MethodINVITE, ms: 4000, responses: [][2]int64{{407, 4010}}},
		{k: 12, call: 5, cseq: 2, m: MethodINVITE, ms: 4020},
		// REGISTER: 401, re-sent, 200: RRD success 80 ms.
		{k: 13, call: 6, cseq: 1, m: MethodREGISTER, ms: 5000, responses: [][2]int64{{401, 5010}}},
		{k: 14, call: 6, cseq: 2, m: MethodREGISTER, ms: 5020, responses: [][2]int64{{200, 5080}}},
		// REGISTER: 401, 401 again (a stale nonce), then 403: RRD
		// failure 100 ms, two challenges.
		{k: 15, call: 7, cseq: 1, m: MethodREGISTER, ms: 6000, responses: [][2]int64{{401, 6010}}},
		{k: 16, call: 7, cseq: 2, m: MethodREGISTER, ms: 6020, responses: [][2]int64{{401, 6030}}},
		{k: 17, call: 7, cseq: 3, m: MethodREGISTER, ms: 6040, responses: [][2]int64{{403, 6100}}},
		// REGISTER: 407, never re-sent: RRD challenge 15 ms at 32 s.
		{k: 18, call: 8, cseq: 1, m: MethodREGISTER, ms: 7000, responses: [][2]int64{{407, 7015}}},
	} {
		a.play(tr, n)
	}
	tn := tr.nodes[0]
	check := func(when string, attempts, timeouts, o200, o486, o407, regAttempts uint64) {
		t.Helper()
		got := [6]uint64{tn.attempts.Load(), tn.timeouts.Load(), tn.outcomes[200-100].Load(), tn.outcomes[486-100].Load(),
			tn.outcomes[407-100].Load(), tn.regAttempts.Load()}
		if want := [6]uint64{attempts, timeouts, o200, o486, o407, regAttempts}; got != want {
			t.Errorf("%s: attempts, timeouts, outcomes 200, 486, 407, REGISTER attempts %v, want %v", when, got, want)
		}
	}
	check("after the traffic", 7, 0, 4, 1, 0, 3)
	tr.Advance(at(4020 + 5000))
	check("call 5's re-send timed out", 7, 1, 4, 1, 0, 3)
	tr.Advance(at(3025 + 32_000 - 1))
	check("1 ms before call 4's challenge expires", 7, 1, 4, 1, 0, 3)
	tr.Advance(at(3025 + 32_000))
	check("call 4's challenge expired", 7, 1, 4, 1, 1, 3)
	tr.Advance(at(7015 + 32_000))

	want := `
# HELP sip_registration_challenges_total Digest challenges (401 Unauthorized, 407 Proxy Authentication Required; RFC 3261 §22) to REGISTERs, each counted once; the REGISTER re-sent with credentials is the same registration attempt.
# TYPE sip_registration_challenges_total counter
sip_registration_challenges_total{code="401",node="sbc1"} 3
sip_registration_challenges_total{code="407",node="sbc1"} 1
# HELP sip_session_challenges_total Digest challenges (401 Unauthorized, 407 Proxy Authentication Required; RFC 3261 §22) to the INVITEs of session attempts, each counted once; not outcomes: the INVITE re-sent with credentials is the same attempt.
# TYPE sip_session_challenges_total counter
sip_session_challenges_total{code="401",node="sbc1"} 1
sip_session_challenges_total{code="407",node="sbc1"} 5
`
	if err := testutil.CollectAndCompare(tr, strings.NewReader(want), "sip_session_challenges_total", "sip_registration_challenges_total"); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		family, outcome string
		count           uint64
		sum             float64
	}{
		// 60 ms (call 1), 50 and 39 ms (call 3's legs), 20 ms (the other
		// From tag of call 4).
		{"sip_session_request_delay_seconds", "success", 4, 0.060 + 0.050 + 0.039 + 0.020},
		{"sip_session_request_delay_seconds", "failure", 1, 0.150},
		{"sip_session_request_delay_seconds", "challenge", 1, 0.025},
		{"sip_registration_request_delay_seconds", "success", 1, 0.080},
		{"sip_registration_request_delay_seconds", "failure", 1, 0.100},
		{"sip_registration_request_delay_seconds", "challenge", 1, 0.015},
	} {
		vec := tr.srdVec
		if strings.HasPrefix(c.family, "sip_registration") {
			vec = tr.rrdVec
		}
		if got := histogramCount(t, vec, "sbc1", c.outcome); got != c.count {
			t.Errorf("%s{outcome=%q}: count %d, want %d", c.family, c.outcome, got, c.count)
		}
		if got := histogramSum(t, tr, c.family, "sbc1", c.outcome); !near(got, c.sum) {
			t.Errorf("%s{outcome=%q}: sum %v, want %v", c.family, c.outcome, got, c.sum)
		}
	}
	if tn.registrations.Load() != 1 {
		t.Errorf("registrations %d, want 1", tn.registrations.Load())
	}
	if tr.challenges.len() != 0 || tr.challengeQ.len() != 0 {
		t.Errorf("challenges left: table %d, queue %d", tr.challenges.len(), tr.challengeQ.len())
	}
}

// near reports whether two sums of seconds agree to a nanosecond.
func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestTrackerChallengeEnd: at the end of the files (End) a challenge
// still waiting for its re-send ends its attempt with the challenge as
// its outcome; a re-send still open is a timeout.
func TestTrackerChallengeEnd(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, DefaultTrackerConfig())
	for _, a := range []attempt{
		{k: 1, call: 1, cseq: 1, m: MethodINVITE, ms: 0, responses: [][2]int64{{407, 30}}},
		{k: 2, call: 2, cseq: 1, m: MethodINVITE, ms: 100, responses: [][2]int64{{486, 150}}},
		{k: 3, call: 3, cseq: 1, m: MethodINVITE, ms: 200, responses: [][2]int64{{401, 210}}},
		{k: 4, call: 4, cseq: 1, m: MethodINVITE, ms: 300, responses: [][2]int64{{401, 310}}},
		{k: 5, call: 4, cseq: 2, m: MethodINVITE, ms: 320},
		{k: 6, call: 5, cseq: 1, m: MethodREGISTER, ms: 400, responses: [][2]int64{{401, 420}}},
	} {
		a.play(tr, n)
	}
	tn := tr.nodes[0]
	if tn.outcomes[407-100].Load() != 0 || tn.outcomes[401-100].Load() != 0 {
		t.Errorf("before End: outcomes 407 %d, 401 %d; want 0, 0", tn.outcomes[407-100].Load(), tn.outcomes[401-100].Load())
	}
	tr.End()
	if got, want := [5]uint64{tn.attempts.Load(), tn.outcomes[407-100].Load(), tn.outcomes[401-100].Load(), tn.timeouts.Load(), tn.regAttempts.Load()},
		[5]uint64{4, 1, 1, 1, 1}; got != want {
		t.Errorf("attempts, outcomes 407, 401, timeouts, REGISTER attempts %v, want %v", got, want)
	}
	if got := histogramCount(t, tr.srdVec, "", "challenge"); got != 2 {
		t.Errorf("SRD challenge count %d, want 2", got)
	}
	if got := histogramCount(t, tr.rrdVec, "", "challenge"); got != 1 {
		t.Errorf("RRD challenge count %d, want 1", got)
	}
}
