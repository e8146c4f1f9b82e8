package collector

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// within runs transaction k of the dialog of call i (answered by answer):
// a request of method m with a To tag (flags added) at ms and, unless
// code is 0, its final response 10 ms later.
func within(tr *Tracker, n *Node, i, k uint64, m Method, ms int64, code uint16, flags TxEventFlags) {
	req := ev(n, i|k<<40, ms, 0, m, TxToTag|flags)
	req.Dialog = mix64(i + 7)
	tr.Observe(&req)
	if code != 0 {
		resp := ev(n, i|k<<40, ms+10, code, m, TxToTag)
		resp.Dialog = req.Dialog
		tr.Observe(&resp)
	}
}

// TestTrackerDialogGone: a final 481 (Call/Transaction Does Not Exist)
// or 408 (Request Timeout) to a request inside a dialog ends its session
// (RFC 3261 §12.2.1.2: "If the response for a request within a dialog is
// a 481 ... or a 408 ..., the UAC SHOULD terminate the dialog"), under
// reasons no_dialog and request_timeout, with no duration (no BYE was
// seen). Other final responses to it, a 481 to a CANCEL (no transaction
// to cancel, §9.2), one whose request was not seen, or one to a BYE
// leave the count as it was.
func TestTrackerDialogGone(t *testing.T) {
	n := NewSIP(1).Node([]byte("sbc1"))
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100, InviteTimeout: time.Minute, SessionMaxAge: time.Hour})
	for i := uint64(1); i <= 6; i++ {
		answer(tr, n, i, 0)
	}
	const refresh = 900_000                                   // a session-timer refresh after 900 s (RFC 4028)
	within(tr, n, 1, 1, MethodINVITE, refresh, 481, 0)        // the far end restarted: no_dialog
	within(tr, n, 2, 1, MethodUPDATE, refresh, 408, 0)        // no answer on the way: request_timeout
	within(tr, n, 3, 1, MethodINVITE, refresh, 491, 0)        // Request Pending: up
	within(tr, n, 4, 1, MethodINVITE, refresh, 0, 0)          // a re-INVITE ...
	within(tr, n, 4, 2, MethodCANCEL, refresh+5, 481, 0)      // ... whose CANCEL comes too late: up
	lost := ev(n, 5|1<<40, refresh, 481, MethodINFO, TxToTag) // its request not captured: up
	lost.Dialog = mix64(5 + 7)
	tr.Observe(&lost)
	bye(tr, n, 6, refresh) // ended by BYE ...
	resp := ev(n, 6|1<<40, refresh+10, 481, MethodBYE, TxToTag)
	resp.Dialog = mix64(6 + 7)
	tr.Observe(&resp) // ... the 481 to it changes nothing
	// Retransmissions of the 481 and 408 count once.
	within(tr, n, 1, 1, MethodINVITE, refresh+500, 0, 0)
	r := ev(n, 1|1<<40, refresh+510, 481, MethodINVITE, TxToTag)
	r.Dialog = mix64(1 + 7)
	tr.Observe(&r)
	tr.Advance(at(refresh + 1000))

	for series, want := range map[string]float64{
		`sip_sessions_active/node="sbc1"`:       3,
		`sip_sessions_ended_total/reason="bye"`: 1, `sip_sessions_ended_total/reason="no_dialog"`: 1,
		`sip_sessions_ended_total/reason="request_timeout"`: 1, `sip_sessions_ended_total/reason="max_age"`: 0,
		`sip_sessions_ended_total/reason="evicted"`: 0,
	} {
		family, label, _ := strings.Cut(series, "/")
		if got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
			collectMatching(tr, ch, family, label)
		})); got != want {
			t.Errorf("%s{%s} = %v, want %v", family, label, got, want)
		}
	}
	if got := histogramCount(t, tr.durationVec, "sbc1"); got != 1 {
		t.Errorf("durations observed %d, want 1 (the BYE's)", got)
	}
	if tr.unmatched.Load() != 1 || tr.dialogs.len() != 3 {
		t.Errorf("unmatched %d, dialogs %d; want 1 (the 481 without request), 3", tr.unmatched.Load(), tr.dialogs.len())
	}
	// The dialogs that ended do not end again at the max age.
	tr.Advance(at(2 * int64(time.Hour/time.Millisecond)))
	if e := tr.nodes[0].ended[endMaxAge].Load(); e != 3 {
		t.Errorf("ended at the max age %d, want 3 (calls 3, 4, 5)", e)
	}
}

// histogramCount returns the observations of the series of vec with label
// values lv.
func histogramCount(t *testing.T, vec *prometheus.HistogramVec, lv ...string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := vec.WithLabelValues(lv...).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// histogramSum returns the sum, seconds, of the series of vec with label
// values lv, as the exposition gives it.
func histogramSum(t *testing.T, tr *Tracker, family string, lv ...string) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() { tr.exact.collect(ch); close(ch) }()
	sum, found := 0.0, false
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range d.GetLabel() {
			got = append(got, l.GetValue())
		}
		if strings.Contains(m.Desc().String(), `"`+family+`"`) && fmt.Sprint(got) == fmt.Sprint(lv) {
			sum, found = d.GetHistogram().GetSampleSum(), true
		}
	}
	if !found {
		t.Fatalf("no %s%v", family, lv)
	}
	return sum
}

// TestTrackerInviteAfterFinal: an INVITE transaction is kept 64*T1 = 32 s
// after its final response (RFC 6026 §8.7, Timer L, after a 2xx; RFC
// 3261 §17.2.1, Timer H, after another), however short the invite
// timeout: the final response retransmitted while the ACK is lost, on
// the UAS's schedule (T1 doubling up to T2, RFC 3261 §13.3.1.4 and
// §17.2.1), and the INVITE retransmitted after the 2xx count as
// retransmissions, not as unmatched responses and a new transaction. It
// goes exactly 32 s after its final response.
func TestTrackerInviteAfterFinal(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100, InviteTimeout: 10 * time.Second})
	// Call 1 answered at 8 s; call 2 refused (486) at 5 s; the INVITE of
	// call 1 again at 12 s, its 2xx lost.
	es := []TxEvent{
		ev(n, 1, 0, 0, MethodINVITE, 0), ev(n, 2, 0, 0, MethodINVITE, 0), ev(n, 1, 1000, 180, MethodINVITE, 0),
		ev(n, 2, 5000, 486, MethodINVITE, 0), ev(n, 1, 8000, 200, MethodINVITE, 0), ev(n, 1, 12_000, 0, MethodINVITE, 0),
	}
	// Timer G: 0.5, 1, 2, 4, 4, 4 ... s apart until the ACK comes: 0.5,
	// 1.5, 3.5, 7.5, 11.5 ... 27.5 s after the first.
	retransmitted := 0
	for when, gap := int64(0), int64(500); when+gap < 28_000; gap = min(2*gap, 4000) {
		when += gap
		es = append(es, ev(n, 1, 8000+when, 200, MethodINVITE, 0), ev(n, 2, 5000+when, 486, MethodINVITE, 0))
		retransmitted++
	}
	slices.SortStableFunc(es, func(a, b TxEvent) int { return cmp.Compare(a.Time, b.Time) })
	for _, e := range es {
		tr.Observe(&e)
	}
	observe := func(e TxEvent) { tr.Observe(&e) }
	tn := tr.nodes[0]
	if a, b := tn.respRetrans.load(200, MethodINVITE), tn.respRetrans.load(486, MethodINVITE); a != uint64(retransmitted) || b != uint64(retransmitted) {
		t.Errorf("retransmitted 200 %d, 486 %d; want %d each", a, b, retransmitted)
	}
	if tn.reqRetrans[MethodINVITE].Load() != 1 || tn.attempts.Load() != 2 {
		t.Errorf("INVITE retransmitted %d, attempts %d; want 1, 2", tn.reqRetrans[MethodINVITE].Load(), tn.attempts.Load())
	}
	tr.Advance(at(36_999)) // 1 ms before 486's 5 s + 32 s
	if tr.table.len() != 2 || tr.unmatched.Load() != 0 {
		t.Errorf("at 36.999 s: open %d, unmatched %d; want 2, 0", tr.table.len(), tr.unmatched.Load())
	}
	tr.Advance(at(37_000))
	if tr.table.len() != 1 {
		t.Errorf("at 37 s: open %d, want 1 (call 2 ended by Timer H)", tr.table.len())
	}
	tr.Advance(at(39_999))
	if tr.table.len() != 1 {
		t.Errorf("at 39.999 s: open %d, want 1", tr.table.len())
	}
	tr.Advance(at(40_000)) // 8 s + 32 s
	if tr.table.len() != 0 || tr.timedOutInvite.Load() != 0 || tn.timeouts.Load() != 0 {
		t.Errorf("at 40 s: open %d, timed out %d, session timeouts %d; want 0, 0, 0", tr.table.len(), tr.timedOutInvite.Load(), tn.timeouts.Load())
	}
	observe(ev(n, 1, 40_500, 200, MethodINVITE, 0)) // past Timer L: unmatched
	tr.Advance(at(41_000))
	if tr.unmatched.Load() != 1 || tn.outcomes[200-100].Load() != 1 || tn.outcomes[486-100].Load() != 1 || tn.sessions.Load() != 1 {
		t.Errorf("unmatched %d, outcomes 200 %d 486 %d, sessions %d; want 1, 1, 1, 1",
			tr.unmatched.Load(), tn.outcomes[200-100].Load(), tn.outcomes[486-100].Load(), tn.sessions.Load())
	}
}

// TestTrackerInviteProvisional: a provisional response but 100 restarts
// the wait of an INVITE for its final response, as it resets a proxy's
// Timer C (RFC 3261 §16.7 step 2), so that a call ringing longer than the
// invite timeout with a 180 every minute (§13.3.1.1) and answered becomes
// a session; a 100 restarts nothing; the SRD still counts from the
// INVITE.
func TestTrackerInviteProvisional(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100, InviteTimeout: 180 * time.Second})
	observe := func(es ...TxEvent) {
		for _, e := range es {
			tr.Observe(&e)
		}
	}
	const s = 1000 // ms
	// Call 1 rings 200 s, a 180 every 60 s (the same To tag: counted as
	// retransmitted), then is answered.
	observe(ev(n, 1, 0, 0, MethodINVITE, 0), ev(n, 1, 10, 100, MethodINVITE, 0), ev(n, 1, 50, 180, MethodINVITE, 0))
	// Call 2 gets a 100 only: it times out 180 s after the INVITE.
	observe(ev(n, 2, 0, 0, MethodINVITE, 0), ev(n, 2, 10, 100, MethodINVITE, 0))
	// Call 3 gets a 183 at 60 s, then nothing: it times out at 240 s.
	observe(ev(n, 3, 0, 0, MethodINVITE, 0), ev(n, 3, 60*s, 183, MethodINVITE, 0))
	// Call 4 gets a 110 (below 180, none registered) at 100 s and a 180
	// at 150 s: SRD 150 s, from the INVITE; it times out at 330 s.
	observe(ev(n, 4, 0, 0, MethodINVITE, 0), ev(n, 4, 100*s, 110, MethodINVITE, 0))
	for _, ms := range []int64{60 * s, 120 * s} {
		observe(ev(n, 1, ms, 180, MethodINVITE, 0))
	}
	observe(ev(n, 4, 150*s, 180, MethodINVITE, 0))
	tr.Advance(at(180*s - 1))
	tn := tr.nodes[0]
	if tn.timeouts.Load() != 0 {
		t.Errorf("at 179.999 s: %d timed out, want 0", tn.timeouts.Load())
	}
	observe(ev(n, 1, 180*s, 180, MethodINVITE, 0)) // call 2 times out first
	if tn.timeouts.Load() != 1 || tr.table.len() != 3 {
		t.Errorf("at 180 s: %d timed out, %d open; want 1 (call 2), 3", tn.timeouts.Load(), tr.table.len())
	}
	observe(ev(n, 1, 200*s, 200, MethodINVITE, 0))
	tr.Advance(at(240*s - 1))
	if tn.timeouts.Load() != 1 {
		t.Errorf("at 239.999 s: %d timed out, want 1", tn.timeouts.Load())
	}
	tr.Advance(at(240 * s))
	if tn.timeouts.Load() != 2 {
		t.Errorf("at 240 s: %d timed out, want 2 (call 3)", tn.timeouts.Load())
	}
	tr.Advance(at(330*s - 1))
	if tn.timeouts.Load() != 2 {
		t.Errorf("at 329.999 s: %d timed out, want 2", tn.timeouts.Load())
	}
	tr.Advance(at(330 * s))
	if tn.timeouts.Load() != 3 || tn.sessions.Load() != 1 || tn.outcomes[200-100].Load() != 1 || tr.table.len() != 0 {
		t.Errorf("at 330 s: %d timed out, %d sessions, %d answered, %d open; want 3, 1 (call 1), 1, 0",
			tn.timeouts.Load(), tn.sessions.Load(), tn.outcomes[200-100].Load(), tr.table.len())
	}
	if got := tn.respRetrans.load(180, MethodINVITE); got != 3 {
		t.Errorf("180 repeated %d, want 3", got)
	}
	// SRD of calls 1, 3 and 4: 0.05 + 60 + 150 s.
	if got := histogramSum(t, tr, "sip_session_request_delay_seconds", "", "success"); got != 210.05 {
		t.Errorf("SRD sum %v s, want 210.05", got)
	}
}

// TestTrackerRestartBound: a transaction restarted again and again (a
// provisional every millisecond) stays one live item in a queue held
// under twice the live items, and no other is evicted for it.
func TestTrackerRestartBound(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 4, InviteTimeout: time.Minute})
	for i := range uint64(4) {
		e := ev(n, i, 0, 0, MethodINVITE, 0)
		tr.Observe(&e)
	}
	for ms := int64(1); ms <= 100_000; ms++ {
		e := ev(n, uint64(ms%4), ms, 183, MethodINVITE, 0)
		tr.Observe(&e)
		if q := tr.txQ.held(); q > 2*tr.txQ.len()+1 {
			t.Fatalf("at %d ms: %d items held for %d live", ms, q, tr.txQ.len())
		}
	}
	if tr.evicted.Load() != 0 || tr.table.len() != 4 || tr.txQ.len() != 4 || tr.timedOutInvite.Load() != 0 {
		t.Errorf("evicted %d, open %d, live items %d, timed out %d; want 0, 4, 4, 0", tr.evicted.Load(), tr.table.len(), tr.txQ.len(), tr.timedOutInvite.Load())
	}
}

// TestAORKey: AORKey is one key for the spellings of one address of
// record and another for another: the URI in the canonical form of RFC
// 3261 §10.3 step 5 (parameters removed, the user-param included;
// escapes unescaped) compared as §19.1.4 compares (userinfo case-
// sensitive, the rest not). The sets are §19.1.4's examples, those it
// calls different only for a URI parameter or header being one AOR here.
func TestAORKey(t *testing.T) {
	same := [][]string{
		{"sip:alice@example.com", "sip:alice@EXAMPLE.com", "sip:alice@example.com;user=phone", "sip:%61lice@example.com",
			"SIP:alice@Example.COM", "sip:%61lic%65@example.com;transport=tcp", "sip:alice@ex%61mple.com"},
		// §19.1.4, equivalent.
		{"sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp",
			// Equivalent too, and to the above once the headers go.
			"sip:alice@atlanta.com?subject=project%20x&priority=urgent", "sip:alice@atlanta.com?priority=urgent&subject=project%20x"},
		{"sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on",
			// §19.1.4, different only for a header component: one AOR.
			"sip:carol@chicago.com?Subject=next%20meeting"},
		{"sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
			"sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com", "sip:biloxi.com"},
		// §19.1.4, different only for a transport parameter: one AOR.
		{"sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"},
		// The userinfo may hold ";" and "?" (user-unreserved, §25.1).
		{"sip:+1-212-555-0100;phone-context=x@example.com;user=phone", "sip:+1-212-555-0100%3Bphone-context=x@EXAMPLE.COM"},
		{"sips:alice@example.com", "SIPS:alice@example.com;lr"},
		{"tel:+1-201-555-0123"},
	}
	different := [][2]string{
		// §19.1.4, not equivalent.
		{"SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"}, // different usernames
		{"sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"},                              // can resolve to different ports
		{"sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"},
		{"sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"},
		{"sip:alice@example.com", "sips:alice@example.com"}, // a SIP and SIPS URI are never equivalent
		{"sip:alice@example.com", "sip:Alice@example.com"},
		{"sip:alice:secret@example.com", "sip:alice:Secret@example.com"},
		{"sip:alice@example.com", "sip:example.com"},
		{"tel:+1-201-555-0123", "TEL:+1-201-555-0123"}, // another scheme: as sent
	}
	keys := map[uint64]string{}
	for _, set := range same {
		k := AORKey([]byte(set[0]))
		if other, ok := keys[k]; ok {
			t.Errorf("%q and %q: one key", set[0], other)
		}
		keys[k] = set[0]
		for _, uri := range set[1:] {
			if AORKey([]byte(uri)) != k {
				t.Errorf("%q and %q: two keys, want one", set[0], uri)
			}
		}
	}
	for _, d := range different {
		if AORKey([]byte(d[0])) == AORKey([]byte(d[1])) {
			t.Errorf("%q and %q: one key, want two", d[0], d[1])
		}
	}
	for _, uri := range []string{"", "sip:", "sip:%", "sip:a%4", "sip:%zz@x", ":", "sip:@"} {
		if AORKey([]byte(uri)) == 0 {
			t.Errorf("AORKey(%q) = 0", uri)
		}
	}
	if AORKey([]byte("sip:a%4")) == AORKey([]byte("sip:a")) || AORKey([]byte("sip:%zz@x")) == AORKey([]byte("sip:zz@x")) {
		t.Error("an incomplete escape is not an escape")
	}
	uri := []byte("sip:%61lice@EXAMPLE.com;user=phone")
	if a := testing.AllocsPerRun(1000, func() { _ = AORKey(uri) }); a != 0 {
		t.Errorf("AORKey: %v allocs", a)
	}
}

// TestTrackerAORSpellings: three spellings of one address of record
// register one AOR, and an unregistration in a fourth removes it.
func TestTrackerAORSpellings(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, DefaultTrackerConfig())
	reg := func(i uint64, uri string, ms int64, flags TxEventFlags, expires int32) {
		req := ev(n, i, ms, 0, MethodREGISTER, flags)
		req.Dialog = AORKey([]byte(uri))
		resp := ev(n, i, ms+20, 200, MethodREGISTER, 0)
		resp.Dialog, resp.Expires = req.Dialog, expires
		tr.Observe(&req)
		tr.Observe(&resp)
	}
	for i, uri := range []string{"sip:alice@EXAMPLE.com", "sip:alice@example.com;user=phone", "sip:%61lice@example.com"} {
		reg(uint64(i), uri, int64(i)*1000, 0, 3600)
	}
	if got := tr.nodes[0].registrations.Load(); got != 1 || tr.regs.len() != 1 {
		t.Errorf("three spellings: %d registrations (table %d), want 1", got, tr.regs.len())
	}
	reg(3, "SIP:alice@Example.COM;transport=tcp", 5000, TxUnregister, NoExpiry)
	if got := tr.nodes[0].registrations.Load(); got != 0 || tr.regs.len() != 0 {
		t.Errorf("unregistered in a fourth spelling: %d registrations (table %d), want 0", got, tr.regs.len())
	}
}

// BenchmarkTrackerRingingMemory opens 1,000,000 INVITE transactions that
// each get a 180 (restarting their wait: a stale item left in the queue)
// and no final response, and reports the heap they hold, in bytes per
// transaction (B/transaction): BenchmarkTrackerMemory's worst case, the
// queue holding a stale item per live one.
func BenchmarkTrackerRingingMemory(b *testing.B) {
	const open = 1_000_000
	for b.Loop() {
		n := NewSIP(1).Node(nil)
		var before, full runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := newTestTracker(b, TrackerConfig{MaxTransactions: open, InviteTimeout: time.Hour})
		for i := uint64(0); i < open; i++ {
			ms := int64(i / 1000)
			for _, e := range []TxEvent{ev(n, i, ms, 0, MethodINVITE, 0), ev(n, i, ms+1, 180, MethodINVITE, 0)} {
				tr.Observe(&e)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&full)
		if tr.table.len() != open || tr.evicted.Load() != 0 {
			b.Fatalf("table %d, evicted %d", tr.table.len(), tr.evicted.Load())
		}
		b.ReportMetric(float64(full.HeapAlloc-before.HeapAlloc)/open, "B/transaction")
		b.ReportMetric(float64(tr.txQ.held())/open, "items/transaction")
		runtime.KeepAlive(tr)
	}
}
