package collector

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// at is the capture time of ms milliseconds into the tests' scenarios,
// as ev stamps it.
func at(ms int64) int64 { return 1_800_000_000e9 + ms*1e6 }

// answer opens initial INVITE i at ms and answers it with a 2xx 10 ms
// later: an established session of dialog key mix64(i+7).
func answer(tr *Tracker, n *Node, i uint64, ms int64) {
	for _, e := range []TxEvent{ev(n, i, ms, 0, MethodINVITE, 0), ev(n, i, ms+10, 200, MethodINVITE, 0)} {
		tr.Observe(&e)
	}
}

// bye sends a BYE in dialog i at ms (transaction key of its own).
func bye(tr *Tracker, n *Node, i uint64, ms int64) {
	e := ev(n, i|1<<40, ms, 0, MethodBYE, TxToTag)
	e.Dialog = mix64(i + 7)
	tr.Observe(&e)
}

// TestTrackerSessions follows sip_sessions_active and
// sip_sessions_ended_total through a call ended by BYE, one whose BYE is
// never seen (ended at the max age, not a millisecond before), two forks
// of one INVITE, and one still up when End is called: End leaves it
// active and does not count it as ended.
func TestTrackerSessions(t *testing.T) {
	n := NewSIP(1).Node([]byte("sbc1"))
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100, InviteTimeout: time.Minute, SessionMaxAge: 10 * time.Second})
	check := func(when string, active int64, byBye, byAge, byEviction uint64) {
		t.Helper()
		tn := tr.nodes[0]
		if tn.sessions.Load() != active || tn.ended[endBye].Load() != byBye || tn.ended[endMaxAge].Load() != byAge || tn.ended[endEvicted].Load() != byEviction {
			t.Errorf("%s: active %d, ended bye %d max_age %d evicted %d; want %d, %d, %d, %d", when, tn.sessions.Load(),
				tn.ended[endBye].Load(), tn.ended[endMaxAge].Load(), tn.ended[endEvicted].Load(), active, byBye, byAge, byEviction)
		}
	}
	answer(tr, n, 1, 0) // answered at 10 ms
	check("call 1 answered", 1, 0, 0, 0)
	answer(tr, n, 2, 1000) // answered at 1,010 ms; never ended
	check("call 2 answered", 2, 0, 0, 0)
	bye(tr, n, 1, 5000)
	check("call 1 ended by BYE", 1, 1, 0, 0)
	bye(tr, n, 1, 5500) // a BYE retransmitted, or the other side's: nothing more
	check("second BYE", 1, 1, 0, 0)
	tr.Advance(at(11_009))
	check("1 ms before the max age of call 2", 1, 1, 0, 0)
	tr.Advance(at(11_010))
	check("max age of call 2", 0, 1, 1, 0)
	bye(tr, n, 2, 12_000) // its BYE after all: the session has ended already
	check("BYE after the max age", 0, 1, 1, 0)

	// Two forks answer one INVITE: two dialogs, two sessions.
	inv := ev(n, 3, 20_000, 0, MethodINVITE, 0)
	tr.Observe(&inv)
	for k, tag := range []uint32{31, 32} {
		e := ev(n, 3, 20_100+int64(k), 200, MethodINVITE, 0)
		e.ToTag, e.Dialog = tag, uint64(tag)
		tr.Observe(&e)
	}
	check("two forks answered", 2, 1, 1, 0)
	b := ev(n, 4, 20_200, 0, MethodBYE, TxToTag)
	b.Dialog = 31
	tr.Observe(&b)
	check("one fork ended", 1, 2, 1, 0)
	tr.End()
	check("End", 1, 2, 1, 0)

	want := `
# HELP sip_sessions_active Established sessions: dialogs whose initial INVITE got a 2xx (each fork's dialog once, on each leg once: both sides of a proxy are two sessions, each under the label set of its own INVITE) and that have not ended (sip_sessions_ended_total).
# TYPE sip_sessions_active gauge
sip_sessions_active{node="sbc1"} 1
# HELP sip_sessions_ended_total Established sessions that ended, by reason: bye (a BYE from either side), no_dialog (a 481 Call/Transaction Does Not Exist to a request inside the dialog: the far end no longer has it, RFC 3261 §12.2.1.2), request_timeout (a 408 Request Timeout to a request inside the dialog, likewise), max_age (no BYE seen within --sip.session-max-age of the 2xx), evicted (the dialog table was full).
# TYPE sip_sessions_ended_total counter
sip_sessions_ended_total{node="sbc1",reason="bye"} 2
sip_sessions_ended_total{node="sbc1",reason="evicted"} 0
sip_sessions_ended_total{node="sbc1",reason="max_age"} 1
sip_sessions_ended_total{node="sbc1",reason="no_dialog"} 0
sip_sessions_ended_total{node="sbc1",reason="request_timeout"} 0
`
	if err := testutil.CollectAndCompare(tr, strings.NewReader(want), "sip_sessions_active", "sip_sessions_ended_total"); err != nil {
		t.Error(err)
	}
}

// TestTrackerSessionEviction: past MaxTransactions answered dialogs the
// oldest sessions are evicted and counted as such.
func TestTrackerSessionEviction(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 10, InviteTimeout: time.Minute})
	for i := uint64(0); i < 50; i++ {
		answer(tr, n, i, int64(i))
	}
	tn := tr.nodes[0]
	if tn.sessions.Load() != 10 || tn.ended[endEvicted].Load() != 40 || tr.dialogsEvicted.Load() != 40 {
		t.Errorf("active %d, ended evicted %d, dialogs evicted %d; want 10, 40, 40", tn.sessions.Load(), tn.ended[endEvicted].Load(), tr.dialogsEvicted.Load())
	}
}

// register runs REGISTER transaction i for aor at ms: the request (with
// flags), and a final response code 20 ms later granting expires seconds
// (NoExpiry: none); code 0 sends no response.
func register(tr *Tracker, n *Node, i, aor uint64, ms int64, flags TxEventFlags, code uint16, expires int32) {
	aor = mix64(aor) // a hash, as AORKey makes
	req := ev(n, i, ms, 0, MethodREGISTER, flags)
	req.Dialog = aor
	tr.Observe(&req)
	if code == 0 {
		return
	}
	resp := ev(n, i, ms+20, code, MethodREGISTER, 0)
	resp.Dialog, resp.Expires = aor, expires
	tr.Observe(&resp)
}

// TestTrackerRegistrations follows sip_registrations_active: a
// registration for 60 s, refreshed, removed by an expiry of 0; one that
// expires by time, exactly at its expiry; a "Contact: *" removal answered
// by a 2xx without expiry; a 2xx without expiry to a plain REGISTER (no
// change); a challenge (no change); a registration moving to another
// label set. Attempts count every REGISTER transaction, timeouts those
// without a final response.
func TestTrackerRegistrations(t *testing.T) {
	c := NewSIP(4)
	n, m := c.Node([]byte("a")), c.Node([]byte("b"))
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100, InviteTimeout: time.Minute})
	active := func(when string, wantA, wantB int64) {
		t.Helper()
		var got [2]int64
		for _, tn := range tr.nodes {
			got[map[*Node]int{n: 0, m: 1}[tn.node]] = tn.registrations.Load()
		}
		if got != [2]int64{wantA, wantB} || tr.regs.len() != int(wantA+wantB) {
			t.Errorf("%s: active a=%d b=%d (table %d), want %d, %d", when, got[0], got[1], tr.regs.len(), wantA, wantB)
		}
	}
	const alice, bob, carol = 101, 102, 103
	register(tr, n, 1, alice, 0, 0, 401, NoExpiry)
	active("challenged", 0, 0)
	register(tr, n, 2, alice, 100, 0, 200, 60) // until 60.12 s
	active("alice registered", 1, 0)
	register(tr, n, 3, alice, 30_000, 0, 200, 60) // refreshed: until 90.02 s
	tr.Advance(at(60_120))
	active("alice past her first expiry, refreshed", 1, 0)
	register(tr, n, 4, alice, 40_000, 0, 200, 0) // de-registered
	active("alice de-registered", 0, 0)

	register(tr, n, 5, bob, 41_000, 0, 200, 60) // until 101.02 s
	register(tr, n, 6, bob, 42_000, 0, 200, NoExpiry)
	active("a 2xx without expiry changes nothing", 1, 0)
	tr.Advance(at(101_019))
	active("1 ms before bob's expiry", 1, 0)
	tr.Advance(at(101_020))
	active("bob expired", 0, 0)

	register(tr, n, 7, carol, 110_000, 0, 200, 3600)
	register(tr, m, 8, carol, 111_000, 0, 200, 3600) // refreshed through the other label set
	active("carol moved to b", 0, 1)
	register(tr, m, 9, carol, 112_000, TxUnregister, 200, NoExpiry) // Contact: *, Expires: 0
	active("carol removed by Contact: *", 0, 0)
	register(tr, n, 10, carol, 113_000, 0, 0, 0) // never answered
	tr.End()
	active("End", 0, 0)

	want := `
# HELP sip_registration_attempts_total Registration attempts: REGISTER transactions, each counted once; one challenged with 401 or 407 and the REGISTER re-sent with credentials (same Call-ID and From tag, on the same leg, within 32 s) are one attempt. The denominator of IRA (RFC 6076 §4.2).
# TYPE sip_registration_attempts_total counter
sip_registration_attempts_total{node="a"} 8
sip_registration_attempts_total{node="b"} 2
# HELP sip_registration_timeouts_total Registration attempts whose (last) REGISTER transaction ended (64*T1 = 32 s, or end of the capture files) without a final response: ineffective registration attempts (IRA, RFC 6076 §4.2) with the failure outcomes of sip_registration_request_delay_seconds.
# TYPE sip_registration_timeouts_total counter
sip_registration_timeouts_total{node="a"} 1
sip_registration_timeouts_total{node="b"} 0
# HELP sip_registrations_active Addresses of record (To URI of REGISTER) with an unexpired registration: a 2xx to REGISTER granting a positive expiry (its Contact's expires parameter, else its Expires header, seconds; RFC 3261 §10.3) until then; an expiry of 0 removes it.
# TYPE sip_registrations_active gauge
sip_registrations_active{node="a"} 0
sip_registrations_active{node="b"} 0
`
	if err := testutil.CollectAndCompare(tr, strings.NewReader(want), "sip_registration_attempts_total", "sip_registration_timeouts_total", "sip_registrations_active"); err != nil {
		t.Error(err)
	}

	// End leaves an unexpired registration active.
	register(tr, n, 11, alice, 120_000, 0, 200, 3600)
	tr.End()
	active("End with alice registered", 1, 0)
}

// TestTrackerRegistrationBound: past MaxRegistrations the registration
// expiring soonest is evicted and counted; refreshing one address of
// record again and again keeps the expiry heap within its bound.
func TestTrackerRegistrationBound(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 1000, InviteTimeout: time.Minute, MaxRegistrations: 10})
	for i := uint64(0); i < 50; i++ {
		register(tr, n, i, 1000+i, int64(i), 0, 200, int32(3600-i)) // later ones expire sooner
	}
	if got := tr.nodes[0].registrations.Load(); got != 10 || tr.regsEvicted.Load() != 40 || tr.regs.len() != 10 {
		t.Errorf("active %d, evicted %d, table %d; want 10, 40, 10", got, tr.regsEvicted.Load(), tr.regs.len())
	}
	// Each new one evicted the one expiring soonest before it came in:
	// the survivors are the nine expiring last (AORs 1000..1008) and the
	// newest (1049).
	for _, aor := range []uint64{1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1049} {
		if tr.regs.get(mix64(aor)) == nil {
			t.Errorf("AOR %d was evicted, want kept", aor)
		}
	}
	for i := uint64(0); i < 100_000; i++ {
		register(tr, n, 100+i, 1000, 100+int64(i), 0, 200, 3600)
	}
	if l := tr.regQ.held(); l > 2*tr.regs.len()+1024 {
		t.Errorf("expiry heap %d items for %d registrations", l, tr.regs.len())
	}
	if got := tr.nodes[0].registrations.Load(); got != 10 || tr.regsEvicted.Load() != 40 {
		t.Errorf("after refreshes: active %d, evicted %d; want 10, 40", got, tr.regsEvicted.Load())
	}
}

// TestTrackerOptions: with peer labels, the OPTIONS keepalives of a peer
// set its last success (2xx) and last failure (another final response,
// or no response within 64*T1: stamped at the timeout) in capture time;
// the "other" peer and a collector without peers export neither.
func TestTrackerOptions(t *testing.T) {
	c := carrierASIP(t, 1)
	ours, theirs, stranger := netip.MustParseAddrPort("203.0.113.1:5060"), netip.MustParseAddrPort("192.0.2.1:5060"), netip.MustParseAddrPort("198.51.100.9:5060")
	out, in := c.Lookup(nil, ours, theirs), c.Lookup(nil, theirs, ours)
	other := c.Lookup(nil, ours, stranger)
	cfg := DefaultTrackerConfig()
	cfg.SIP = c
	tr := newTestTracker(t, cfg)
	options := func(n *Node, i uint64, ms int64, code uint16) {
		req := ev(n, i, ms, 0, MethodOPTIONS, 0)
		tr.Observe(&req)
		if code != 0 {
			resp := ev(n, i, ms+5, code, MethodOPTIONS, 0)
			tr.Observe(&resp)
		}
	}
	options(out, 1, 0, 200)      // success at 5 ms
	options(out, 2, 10_000, 200) // success at 10.005 s
	options(out, 3, 20_000, 503) // failure at 20.005 s
	options(out, 4, 30_000, 0)   // no answer: failure at 62 s
	options(in, 5, 40_000, 200)  // the peer pings us
	options(other, 6, 0, 503)    // not a configured peer: not exported
	tr.Advance(at(61_999))
	if got := tr.nodes[0].optionsFailed.Load(); got != at(20_005) {
		t.Errorf("before the timeout: last failure %d, want %d", got, at(20_005))
	}
	tr.Advance(at(63_000))
	want := `
# HELP sip_peer_options_last_failure_timestamp_seconds Capture time, Unix seconds, of the last OPTIONS transaction of this peer and direction that failed: a final response other than 2xx, or none within 64*T1 = 32 s (the time it timed out); with --config.file only, absent until one is seen.
# TYPE sip_peer_options_last_failure_timestamp_seconds gauge
sip_peer_options_last_failure_timestamp_seconds{direction="outbound",node="",peer="carrier-a"} 1.800000062e+09
# HELP sip_peer_options_last_success_timestamp_seconds Capture time, Unix seconds, of the last 2xx to an OPTIONS request (a keepalive) of this peer and direction; with --config.file only, absent until one is seen.
# TYPE sip_peer_options_last_success_timestamp_seconds gauge
sip_peer_options_last_success_timestamp_seconds{direction="inbound",node="",peer="carrier-a"} 1.800000040005e+09
sip_peer_options_last_success_timestamp_seconds{direction="outbound",node="",peer="carrier-a"} 1.800000010005e+09
`
	if err := testutil.CollectAndCompare(tr, strings.NewReader(want), "sip_peer_options_last_success_timestamp_seconds", "sip_peer_options_last_failure_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}

	// An OPTIONS open when End is called fails at the tracker's time.
	options(out, 7, 70_000, 0)
	tr.End()
	if got := tr.nodes[0].optionsFailed.Load(); got != at(70_000) {
		t.Errorf("End: last failure %d, want %d", got, at(70_000))
	}

	// Without peer labels: no sip_peer_options_ family.
	plain := newTestTracker(t, DefaultTrackerConfig())
	n := NewSIP(1).Node(nil)
	for _, e := range []TxEvent{ev(n, 1, 0, 0, MethodOPTIONS, 0), ev(n, 1, 5, 200, MethodOPTIONS, 0)} {
		plain.Observe(&e)
	}
	if got := testutil.CollectAndCount(plain, "sip_peer_options_last_success_timestamp_seconds", "sip_peer_options_last_failure_timestamp_seconds"); got != 0 {
		t.Errorf("without peers: %d sip_peer_options_ series, want 0", got)
	}
}

// TestTrackerNocSteadyStateAllocs churns sessions that end by max age,
// registrations refreshed before they expire, and OPTIONS pings: once
// warm, handling them allocates nothing and the tables do not grow.
func TestTrackerNocSteadyStateAllocs(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100_000, InviteTimeout: time.Second, SessionMaxAge: 5 * time.Second, MaxRegistrations: 2000})
	i := uint64(0)
	var steps [6]TxEvent
	step := func() {
		ms := int64(i)
		steps[0] = ev(n, i, ms, 0, MethodINVITE, 0)
		steps[1] = ev(n, i, ms, 200, MethodINVITE, 0) // never ended: max age
		steps[2] = ev(n, i|1<<40, ms, 0, MethodREGISTER, 0)
		steps[2].Dialog = mix64(1 + i%1000) // each AOR refreshed every second
		steps[3] = ev(n, i|1<<40, ms, 200, MethodREGISTER, 0)
		steps[3].Dialog, steps[3].Expires = steps[2].Dialog, 60
		steps[4] = ev(n, i|1<<41, ms, 0, MethodOPTIONS, 0)
		steps[5] = ev(n, i|1<<41, ms, 200, MethodOPTIONS, 0)
		for k := range steps {
			tr.Observe(&steps[k])
		}
		i++
	}
	for i < 100_000 {
		step()
	}
	slots, dialogSlots, regSlots, heapCap := tr.table.cap(), tr.dialogs.cap(), tr.regs.cap(), tr.regQ.capacity()
	noMallocs(t, step)
	if tr.table.cap() != slots || tr.dialogs.cap() != dialogSlots || tr.regs.cap() != regSlots || tr.regQ.capacity() != heapCap {
		t.Errorf("grew: table %d->%d, dialogs %d->%d, registrations %d->%d, heap %d->%d", slots, tr.table.cap(),
			dialogSlots, tr.dialogs.cap(), regSlots, tr.regs.cap(), heapCap, tr.regQ.capacity())
	}
	tn := tr.nodes[0]
	if tn.sessions.Load() != 5000 || tn.registrations.Load() != 1000 || tr.regsEvicted.Load() != 0 || tn.ended[endEvicted].Load() != 0 {
		t.Errorf("active sessions %d, registrations %d, evicted %d, %d; want 5000, 1000, 0, 0",
			tn.sessions.Load(), tn.registrations.Load(), tr.regsEvicted.Load(), tn.ended[endEvicted].Load())
	}
}

// BenchmarkTrackerRegistrationMemory registers 1,000,000 addresses of
// record and reports the heap they hold, in bytes per registration
// (B/registration), each refreshed once (two expiries in the heap).
func BenchmarkTrackerRegistrationMemory(b *testing.B) {
	const aors = 1_000_000
	for b.Loop() {
		n := NewSIP(1).Node(nil)
		var before, full runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := newTestTracker(b, TrackerConfig{MaxTransactions: 16, InviteTimeout: time.Millisecond, MaxRegistrations: aors})
		for round := range 2 {
			for i := uint64(0); i < aors; i++ {
				register(tr, n, uint64(round)<<32|i, 1+i, int64(round), 0, 200, 3600)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&full)
		if tr.regs.len() != aors {
			b.Fatalf("registrations %d", tr.regs.len())
		}
		b.ReportMetric(float64(full.HeapAlloc-before.HeapAlloc)/aors, "B/registration")
		runtime.KeepAlive(tr)
	}
}

// TestTrackerLongCall: a call that stays up while many more calls than
// MaxTransactions are answered and ended after it ends by its BYE, with
// its duration, not by eviction: only open dialogs count against the
// bound, and the queue of dialogs stays within twice the open ones.
func TestTrackerLongCall(t *testing.T) {
	n := NewSIP(1).Node(nil)
	const max, short = 10, 1000
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: max, InviteTimeout: time.Minute})
	answer(tr, n, 0, 0) // the long call, answered at 10 ms
	for i := uint64(1); i <= short; i++ {
		ms := int64(i) * 100
		answer(tr, n, i, ms)
		bye(tr, n, i, ms+50)
		if q := tr.dialogQ.held(); q > 2*tr.dialogs.len()+1 {
			t.Fatalf("call %d: %d dialogs queued for %d open", i, q, tr.dialogs.len())
		}
	}
	bye(tr, n, 0, short*100+1000) // its BYE, 101 s after its 2xx
	tn := tr.nodes[0]
	if tn.sessions.Load() != 0 || tn.ended[endBye].Load() != short+1 || tn.ended[endEvicted].Load() != 0 || tr.dialogsEvicted.Load() != 0 {
		t.Errorf("active %d, ended bye %d, evicted %d (dialogs evicted %d); want 0, %d, 0, 0",
			tn.sessions.Load(), tn.ended[endBye].Load(), tn.ended[endEvicted].Load(), tr.dialogsEvicted.Load(), short+1)
	}
	var m dto.Metric
	if err := tr.durationVec.WithLabelValues("").(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	if h := m.GetHistogram(); h.GetSampleCount() != short+1 || h.GetSampleSum() < 100.99 {
		t.Errorf("durations: %d observed, sum %v s; want %d, the long call's 100.99 s included", h.GetSampleCount(), h.GetSampleSum(), short+1)
	}
}
