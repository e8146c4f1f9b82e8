package collector

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// ev builds an event of transaction i at ms milliseconds.
func ev(n *Node, i uint64, ms int64, code uint16, m Method, flags TxEventFlags) TxEvent {
	e := TxEvent{Time: 1_800_000_000e9 + ms*1e6, Key: mix64(i + 1), Dialog: mix64(i + 7), Retry: uint32(mix64(i + 11)), Node: n, Code: code, Method: m, Flags: flags, Q850Cause: -1, SIPCause: -1}
	if code != 0 {
		e.Flags |= TxResponse
		e.ToTag = 42
	}
	return e
}

func newTestTracker(t testing.TB, cfg TrackerConfig) *Tracker {
	t.Helper()
	tr, err := NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestNewTrackerErrors(t *testing.T) {
	for _, cfg := range []TrackerConfig{
		{MaxTransactions: 0, InviteTimeout: time.Second},
		{MaxTransactions: 1, InviteTimeout: 0},
		{MaxTransactions: 1, InviteTimeout: time.Second, SessionMaxAge: -time.Second},
		{MaxTransactions: 1, InviteTimeout: time.Second, MaxRegistrations: -1},
	} {
		if _, err := NewTracker(cfg); !errors.Is(err, ErrTrackerConfig) {
			t.Errorf("NewTracker(%+v) = %v, want ErrTrackerConfig", cfg, err)
		}
	}
}

func TestTxKey(t *testing.T) {
	base := TxKey(CallIDHash([]byte("c1")), 1, []byte("INVITE"), []byte("z9hG4bK1"))
	if base != TxKey(CallIDHash([]byte("c1")), 1, []byte("INVITE"), []byte("z9hG4bK1")) {
		t.Fatal("TxKey is not deterministic")
	}
	for name, k := range map[string]uint64{
		"call-id": TxKey(CallIDHash([]byte("c2")), 1, []byte("INVITE"), []byte("z9hG4bK1")),
		"cseq":    TxKey(CallIDHash([]byte("c1")), 2, []byte("INVITE"), []byte("z9hG4bK1")),
		"method":  TxKey(CallIDHash([]byte("c1")), 1, []byte("CANCEL"), []byte("z9hG4bK1")),
		"branch":  TxKey(CallIDHash([]byte("c1")), 1, []byte("INVITE"), []byte("z9hG4bK2")),
	} {
		if k == base {
			t.Errorf("another %s gives the same key", name)
		}
	}
	a, b := TagHash([]byte("a")), TagHash([]byte("b"))
	if DialogKey(CallIDHash([]byte("c")), a, b) != DialogKey(CallIDHash([]byte("c")), b, a) {
		t.Error("DialogKey depends on the direction")
	}
	if TagHash(nil) != 0 || a == 0 {
		t.Error("TagHash: 0 only for no tag")
	}
}

// TestTrackerCollect checks the exposition of a small exchange and lints it.
func TestTrackerCollect(t *testing.T) {
	c := NewSIP(4)
	n := c.Node([]byte("sbc1"))
	tr := newTestTracker(t, DefaultTrackerConfig())
	events := []TxEvent{
		ev(n, 1, 0, 0, MethodINVITE, 0),
		ev(n, 1, 100, 486, MethodINVITE, 0),
		ev(n, 1, 600, 486, MethodINVITE, 0), // retransmitted
		ev(n, 2, 0, 0, MethodBYE, TxToTag),
		ev(n, 2, 0, 0, MethodBYE, TxToTag), // retransmitted
	}
	events[1].Q850Cause = 17
	events[3].SIPCause = 200
	for i := range events {
		tr.Observe(&events[i])
	}
	tr.End()
	want := `
# HELP sip_exporter_transactions_timed_out_total SIP transactions that expired without a final response, by kind (invite, non_invite); ACKs excluded.
# TYPE sip_exporter_transactions_timed_out_total counter
sip_exporter_transactions_timed_out_total{kind="invite"} 0
sip_exporter_transactions_timed_out_total{kind="non_invite"} 1
# HELP sip_reason_causes_total Causes in the Reason header (RFC 3326) of responses, BYE and CANCEL requests, retransmissions not counted: protocol Q.850 (cause 0-127) or SIP (100-699).
# TYPE sip_reason_causes_total counter
sip_reason_causes_total{cause="17",node="sbc1",protocol="Q.850"} 1
sip_reason_causes_total{cause="200",node="sbc1",protocol="SIP"} 1
# HELP sip_session_attempts_total Session attempts: initial INVITE transactions (no To tag), each counted once; one challenged with 401 or 407 and the INVITE re-sent with credentials (same Call-ID and From tag, on the same leg, within 32 s) are one attempt. The attempts of SER, SEER, ISA and SCR (RFC 6076 §4.6-4.9).
# TYPE sip_session_attempts_total counter
sip_session_attempts_total{node="sbc1"} 1
# HELP sip_session_timeouts_total Session attempts whose (last) initial INVITE transaction ended (timeout, or end of the capture files) without a final response.
# TYPE sip_session_timeouts_total counter
sip_session_timeouts_total{node="sbc1"} 0
`
	if err := testutil.CollectAndCompare(tr, strings.NewReader(want), "sip_exporter_transactions_timed_out_total",
		"sip_reason_causes_total", "sip_session_attempts_total", "sip_session_timeouts_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		collectMatching(tr, ch, "sip_response_retransmissions_total", `code="486"`)
	})); got != 1 {
		t.Errorf("486 retransmissions = %v, want 1", got)
	}
	if got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		collectMatching(tr, ch, "sip_request_retransmissions_total", `method="BYE"`)
	})); got != 1 {
		t.Errorf("BYE retransmissions = %v, want 1", got)
	}
	problems, err := testutil.CollectAndLint(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// collectMatching passes on the metrics of tr whose description names
// family and whose labels contain label.
func collectMatching(tr *Tracker, out chan<- prometheus.Metric, family, label string) {
	ch := make(chan prometheus.Metric)
	go func() { tr.Collect(ch); close(ch) }()
	for m := range ch {
		if strings.Contains(m.Desc().String(), `"`+family+`"`) && strings.Contains(metricString(m), label) {
			out <- m
		}
	}
}

func metricString(m prometheus.Metric) string {
	var b strings.Builder
	var d dto.Metric
	_ = m.Write(&d)
	for _, l := range d.GetLabel() {
		b.WriteString(l.GetName() + `="` + l.GetValue() + `",`)
	}
	return b.String()
}

// TestTrackerEviction fills the table past its bound: the oldest go, are
// counted, and the table stays at the bound.
func TestTrackerEviction(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100, InviteTimeout: time.Minute})
	for i := uint64(0); i < 1000; i++ {
		e := ev(n, i, int64(i), 0, MethodINVITE, 0)
		tr.Observe(&e)
	}
	if tr.table.len() != 100 || tr.evicted.Load() != 900 || tr.table.len() != 100 {
		t.Errorf("table %d, evicted %d, gauge %d; want 100, 900, 100", tr.table.len(), tr.evicted.Load(), tr.table.len())
	}
	// The survivors are the newest: their responses match.
	e := ev(n, 999, 2000, 200, MethodINVITE, 0)
	tr.Observe(&e)
	e = ev(n, 0, 2000, 200, MethodINVITE, 0)
	tr.Observe(&e)
	tr.Advance(e.Time + int64(EarlyResponseWindow)) // no request came for it
	if tr.unmatched.Load() != 1 || tr.nodes[0].outcomes[200-100].Load() != 1 {
		t.Errorf("unmatched %d, outcomes 200 %d; want 1, 1", tr.unmatched.Load(), tr.nodes[0].outcomes[100].Load())
	}
}

// TestTrackerEarlyResponses: responses captured before their request (two
// sources whose clocks disagree) are held for EarlyResponseWindow and
// matched in their order when the request comes, with delays of 0; those
// whose request comes later, or never, or that overflow the hold, count as
// unmatched, with their Reason causes.
func TestTrackerEarlyResponses(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 1 << 10, InviteTimeout: time.Minute, maxHeld: heldBound})
	observe := func(es ...TxEvent) {
		for _, e := range es {
			tr.Observe(&e)
		}
	}
	const window = int64(EarlyResponseWindow / time.Millisecond)
	// Transaction 1: 100, 180 and 200 up to 3 ms before the INVITE, and
	// the 200 again after it (a retransmission).
	observe(ev(n, 1, 10, 100, MethodINVITE, 0), ev(n, 1, 11, 180, MethodINVITE, 0), ev(n, 1, 12, 200, MethodINVITE, 0),
		ev(n, 1, 13, 0, MethodINVITE, 0), ev(n, 1, 14, 200, MethodINVITE, 0))
	// Transaction 2: its 486 comes a whole window before the INVITE.
	late := ev(n, 2, 20, 486, MethodINVITE, 0)
	late.Q850Cause = 17
	observe(late, ev(n, 2, 20+window, 0, MethodINVITE, 0))
	if got := tr.early.Load(); got != 3 {
		t.Errorf("early %d, want 3", got)
	}
	if got := tr.unmatched.Load(); got != 1 {
		t.Errorf("unmatched %d, want 1 (the 486 a whole window early)", got)
	}
	tn := tr.nodes[0]
	if tn.outcomes[200-100].Load() != 1 || tn.outcomes[486-100].Load() != 0 || tn.respRetrans.load(200, MethodINVITE) != 1 {
		t.Errorf("outcomes 200 %d, 486 %d, retransmitted 200 %d; want 1, 0, 1",
			tn.outcomes[200-100].Load(), tn.outcomes[486-100].Load(), tn.respRetrans.load(200, MethodINVITE))
	}
	if tn.q850[17].Load() != 1 {
		t.Errorf("Q.850 cause 17 of the unmatched 486: %d, want 1", tn.q850[17].Load())
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tr)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var srd uint64
	for _, mf := range mfs {
		if mf.GetName() != "sip_session_request_delay_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			srd += h.GetSampleCount()
			if h.GetSampleSum() != 0 {
				t.Errorf("SRD %v: observations sum to %v s, want 0 (the 180 came first)", m.GetLabel(), h.GetSampleSum())
			}
		}
	}
	if srd != 1 {
		t.Errorf("SRD observations %d, want 1", srd)
	}
	// More than the bound waiting: the oldest are given up at once; End
	// gives up the rest.
	for i := range uint64(heldBound + 10) {
		observe(ev(n, 100+i, 200*window, 200, MethodOPTIONS, 0))
	}
	if got := tr.unmatched.Load(); got != 1+10 {
		t.Errorf("after overflowing the hold: unmatched %d, want 11", got)
	}
	tr.End()
	if got := tr.unmatched.Load(); got != 1+heldBound+10 {
		t.Errorf("after End: unmatched %d, want %d", got, 1+heldBound+10)
	}
	if tr.held.q.held() != 0 || tr.held.keys.len() != 0 {
		t.Errorf("after End: %d held, %d keys", tr.held.q.held(), tr.held.keys.len())
	}
}

// TestTrackerDialogBound keeps answered dialogs within the bound.
func TestTrackerDialogBound(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 10, InviteTimeout: time.Minute})
	for i := uint64(0); i < 50; i++ {
		for _, e := range []TxEvent{ev(n, i, int64(i), 0, MethodINVITE, 0), ev(n, i, int64(i)+1, 200, MethodINVITE, 0)} {
			tr.Observe(&e)
		}
	}
	if tr.dialogs.len() != 10 || tr.dialogsEvicted.Load() != 40 || tr.dialogQ.n > 10 {
		t.Errorf("dialogs %d, evicted %d, queue %d; want 10, 40, <= 10", tr.dialogs.len(), tr.dialogsEvicted.Load(), tr.dialogQ.n)
	}
}

// TestTrackerAdvance: the tracker's time is the watermark it is given:
// transactions expire when it passes their timeout, not before, and time
// never moves back.
func TestTrackerAdvance(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 1 << 10, InviteTimeout: time.Minute})
	const base, s = int64(1_800_000_000e9), int64(time.Second)
	for i := range 10 {
		e := ev(n, uint64(i), int64(i)*1000, 0, MethodINVITE, 0)
		tr.Observe(&e)
	}
	tr.Advance(base + 60*s) // INVITE 0 started at 0: 60 s is its timeout
	if got := tr.timedOutInvite.Load(); got != 1 {
		t.Errorf("after 60 s: %d timed out, want 1", got)
	}
	tr.Advance(base + 30*s) // back: nothing happens
	if got := tr.timedOutInvite.Load(); got != 1 {
		t.Errorf("after moving back: %d timed out, want 1", got)
	}
	tr.Advance(base + 65*s)
	if got := tr.timedOutInvite.Load(); got != 6 {
		t.Errorf("after 65 s: %d timed out, want 6", got)
	}
	if got := tr.table.len(); got != 4 {
		t.Errorf("after 65 s: %d open, want 4", got)
	}
}

// TestTrackerAllocs: once the table has grown, Observe allocates nothing.
func TestTrackerAllocs(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 1000, InviteTimeout: time.Second})
	i := uint64(0)
	// Fill to the bound so that the map and rings have their final size.
	for ; i < 5000; i++ {
		e := ev(n, i, int64(i), 0, MethodOPTIONS, 0)
		tr.Observe(&e)
	}
	steps := []TxEvent{}
	observe := func() {
		i++
		steps = steps[:0]
		steps = append(steps, ev(n, i, int64(i), 0, MethodOPTIONS, 0), ev(n, i, int64(i), 200, MethodOPTIONS, 0), ev(n, i, int64(i), 200, MethodOPTIONS, 0))
		for k := range steps {
			tr.Observe(&steps[k])
		}
	}
	steps = make([]TxEvent, 0, 3)
	if a := testing.AllocsPerRun(1000, observe); a != 0 {
		t.Errorf("Observe: %v allocs per run", a)
	}
	// A response before its request: held, then matched.
	early := func() {
		i++
		steps = steps[:0]
		steps = append(steps, ev(n, i, int64(i), 200, MethodOPTIONS, 0), ev(n, i, int64(i), 0, MethodOPTIONS, 0))
		for k := range steps {
			tr.Observe(&steps[k])
		}
	}
	if a := testing.AllocsPerRun(1000, early); a != 0 {
		t.Errorf("Observe, response first: %v allocs per run", a)
	}
	key := func() {
		_ = TxKey(CallIDHash([]byte("a84b4c76e66710@pc33.atlanta.example.com")), 1, []byte("INVITE"), []byte("z9hG4bK776asdhds"))
		_ = DialogKey(CallIDHash([]byte("a84b4c76e66710@pc33.atlanta.example.com")), TagHash([]byte("1928301774")), TagHash([]byte("a6c85cf")))
	}
	if a := testing.AllocsPerRun(1000, key); a != 0 {
		t.Errorf("TxKey/DialogKey: %v allocs per run", a)
	}
}

// TestTrackerSteadyStateAllocs churns the tracker at a fixed size by
// expiry: every step opens an INVITE, answers it (a dialog), ACKs it and
// ends the dialog with a BYE, while the clock expires as many as open. Once
// warm, handling events allocates nothing at all (not even rarely: the
// malloc count over 100,000 steps does not move) and the tables do not
// grow: with every message of a step in one millisecond, and with the 180
// and the 200 a millisecond apart each (the 180 restarts the INVITE's
// wait, the 200 moves it to the other class: items left stale).
func TestTrackerSteadyStateAllocs(t *testing.T) {
	for _, gap := range []int64{0, 1} {
		t.Run(fmt.Sprintf("gap %d ms", gap), func(t *testing.T) {
			n := NewSIP(1).Node(nil)
			// About 96,000 stay open (the INVITE NonInviteTimeout after its
			// 200, ACK and BYE NonInviteTimeout after their request): below
			// the bound, so nothing is evicted.
			tr := newTestTracker(t, TrackerConfig{MaxTransactions: 120_000, InviteTimeout: time.Second})
			i := uint64(0)
			var steps [6]TxEvent
			step := func() {
				ms := int64(i)
				steps[0] = ev(n, i, ms, 0, MethodINVITE, 0)
				steps[1] = ev(n, i, ms+gap, 180, MethodINVITE, 0)
				steps[2] = ev(n, i, ms+2*gap, 200, MethodINVITE, 0)
				steps[3] = ev(n, i, ms+2*gap, 0, MethodACK, TxToTag)
				steps[3].Key ^= 1
				steps[4] = ev(n, i|1<<40, ms+2*gap, 0, MethodBYE, TxToTag)
				steps[4].Dialog = steps[0].Dialog
				steps[5] = ev(n, i|1<<40, ms+2*gap, 200, MethodBYE, 0)
				for k := range steps {
					tr.Observe(&steps[k])
				}
				i++
			}
			// Warm up past NonInviteTimeout (one step per ms), from when
			// INVITE, ACK and BYE transactions expire as fast as they open,
			// and past MaxTransactions dialogs, from when the dialog ring
			// drops as many old items (dialogs ended by their BYE) as it
			// takes.
			for i < 130_000 {
				step()
			}
			open, slots, dialogSlots, qCap := tr.table.len(), tr.table.cap(), tr.dialogs.cap(), tr.txQ.capacity()
			timedOut := tr.timedOutInvite.Load() + tr.timedOutNonInvite.Load()
			noMallocs(t, step)
			if tr.table.cap() != slots || tr.dialogs.cap() != dialogSlots || tr.txQ.capacity() != qCap {
				t.Errorf("table grew from %d to %d slots, dialogs from %d to %d, queue from %d to %d items",
					slots, tr.table.cap(), dialogSlots, tr.dialogs.cap(), qCap, tr.txQ.capacity())
			}
			if d := tr.table.len() - open; d < -2 || d > 2 || open < 60_000 {
				t.Errorf("open transactions %d, then %d: not a steady state", open, tr.table.len())
			}
			if tr.evicted.Load() != 0 || tr.dialogs.len() != 0 || tr.timedOutInvite.Load()+tr.timedOutNonInvite.Load() != timedOut {
				t.Errorf("evicted %d, dialogs %d, timed out %d (was %d): want 0, 0, no change (all answered)",
					tr.evicted.Load(), tr.dialogs.len(), tr.timedOutInvite.Load()+tr.timedOutNonInvite.Load(), timedOut)
			}
		})
	}
}

// noMallocs asserts that step, once warm, allocates nothing: neither on
// average (AllocsPerRun over 10,000 steps) nor ever (the malloc count over
// 100,000 more does not move).
func noMallocs(t *testing.T, step func()) {
	t.Helper()
	if a := testing.AllocsPerRun(10_000, step); a != 0 {
		t.Errorf("Observe: %v allocs per step", a)
	}
	if raceEnabled {
		return // the race runtime allocates beside the code (CI saw 7 in 100,000 steps)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100_000 {
		step()
	}
	runtime.ReadMemStats(&after)
	if m := after.Mallocs - before.Mallocs; m != 0 {
		t.Errorf("%d mallocs (%d bytes) in 100,000 steps, want 0", m, after.TotalAlloc-before.TotalAlloc)
	}
}

// BenchmarkTrackerObserve is the tracker's cost per message: a transaction
// of INVITE, 100, 180, 200 and ACK, with the table at 100,000 open: a
// message every 0.1 ms, so that the INVITE and ACK transactions of the
// last 32 s (64*T1 after the 200 and the ACK) are more than the bound.
func BenchmarkTrackerObserve(b *testing.B) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(b, TrackerConfig{MaxTransactions: 100_000, InviteTimeout: time.Hour})
	seq := []struct {
		code uint16
		m    Method
	}{{0, MethodINVITE}, {100, MethodINVITE}, {180, MethodINVITE}, {200, MethodINVITE}, {0, MethodACK}}
	i := uint64(0)
	step := func() {
		s := seq[i%5]
		e := ev(n, i/5, 0, s.code, s.m, 0)
		e.Time += int64(i) * 100_000
		if s.m == MethodACK {
			e.Key ^= 1
		}
		tr.Observe(&e)
		i++
	}
	// Warm up: fill the table to its bound (two transactions per call) and
	// churn at it, so that the table and rings have their final size.
	for i < 5*100_000 {
		step()
	}
	if tr.table.len() != 100_000 {
		b.Fatalf("%d open, want the bound", tr.table.len())
	}
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
}

// BenchmarkTxKey is the hashing the reader does per message.
func BenchmarkTxKey(b *testing.B) {
	callID, method, branch := []byte("a84b4c76e66710@pc33.atlanta.example.com"), []byte("INVITE"), []byte("z9hG4bK776asdhds")
	b.ReportAllocs()
	for b.Loop() {
		_ = TxKey(CallIDHash(callID), 314159, method, branch)
		_ = DialogKey(CallIDHash(callID), TagHash([]byte("1928301774")), TagHash([]byte("a6c85cf")))
	}
}

// BenchmarkTrackerMemory opens 1,000,000 INVITE transactions that are never
// answered and reports the heap they hold, in bytes per transaction
// (B/transaction), then floods 2,000,000 more past the bound: evictions are
// counted and the heap stays put.
func BenchmarkTrackerMemory(b *testing.B) {
	const open = 1_000_000
	for b.Loop() {
		n := NewSIP(1).Node(nil)
		var before, full, flooded runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := newTestTracker(b, TrackerConfig{MaxTransactions: open, InviteTimeout: time.Hour})
		for i := uint64(0); i < open; i++ {
			e := ev(n, i, int64(i/1000), 0, MethodINVITE, 0)
			tr.Observe(&e)
		}
		runtime.GC()
		runtime.ReadMemStats(&full)
		for i := uint64(open); i < 3*open; i++ {
			e := ev(n, i, int64(i/1000), 0, MethodINVITE, 0)
			tr.Observe(&e)
		}
		runtime.GC()
		runtime.ReadMemStats(&flooded)
		if tr.table.len() != open || tr.evicted.Load() != 2*open {
			b.Fatalf("table %d, evicted %d", tr.table.len(), tr.evicted.Load())
		}
		b.ReportMetric(float64(full.HeapAlloc-before.HeapAlloc)/open, "B/transaction")
		b.ReportMetric(float64(flooded.HeapAlloc-before.HeapAlloc)/open, "B/transaction-after-flood")
		b.ReportMetric(float64(tr.table.cap()), "slots")
		runtime.KeepAlive(tr)
	}
}

// BenchmarkTrackerDialogMemory answers 1,000,000 initial INVITEs whose BYE
// never comes, one every 33 s (each transaction expires, 64*T1 after its
// 2xx, before the next call; the sessions are kept a year) and reports the
// heap the dialogs hold, in bytes per dialog (B/dialog).
func BenchmarkTrackerDialogMemory(b *testing.B) {
	const open = 1_000_000
	for b.Loop() {
		n := NewSIP(1).Node(nil)
		var before, full runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := newTestTracker(b, TrackerConfig{MaxTransactions: open, InviteTimeout: time.Millisecond, SessionMaxAge: 400 * 24 * time.Hour})
		for i := uint64(0); i < open; i++ {
			ms := int64(i) * 33_000
			for _, e := range []TxEvent{ev(n, i, ms, 0, MethodINVITE, 0), ev(n, i, ms, 200, MethodINVITE, 0)} {
				tr.Observe(&e)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&full)
		if tr.dialogs.len() != open || tr.table.len() > 2 {
			b.Fatalf("dialogs %d, transactions %d", tr.dialogs.len(), tr.table.len())
		}
		b.ReportMetric(float64(full.HeapAlloc-before.HeapAlloc)/open, "B/dialog")
		runtime.KeepAlive(tr)
	}
}

// heldBound is the bound of held responses of the tests that reach it.
const heldBound = 64

// TestTrackerEarlyResponsesPerKey: at most heldPerKey responses of one
// transaction wait; the oldest of them is given up for a newer one, and
// the rest are matched, in their order, when the request comes. Other
// transactions' held responses stay.
func TestTrackerEarlyResponsesPerKey(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 1 << 10, InviteTimeout: time.Minute})
	observe := func(e TxEvent) { tr.Observe(&e) }
	observe(ev(n, 7, 10, 100, MethodINVITE, 0)) // another transaction's
	for i := range int64(heldPerKey + 2) {      // six of one: two given up
		observe(ev(n, 1, 11+i, 180, MethodINVITE, 0))
	}
	if got := tr.unmatched.Load(); got != 2 || tr.held.q.len() != 1+heldPerKey {
		t.Errorf("unmatched %d, waiting %d; want 2, %d", got, tr.held.q.len(), 1+heldPerKey)
	}
	observe(ev(n, 1, 20, 0, MethodINVITE, 0))
	if got := tr.early.Load(); got != heldPerKey || tr.held.q.len() != 1 || tr.held.keys.len() != 1 {
		t.Errorf("early %d, waiting %d, keys %d; want %d, 1, 1", got, tr.held.q.len(), tr.held.keys.len(), heldPerKey)
	}
	tr.End()
	if got := tr.unmatched.Load(); got != 3 {
		t.Errorf("after End: unmatched %d, want 3", got)
	}
}

// TestTrackerEarlyResponsesBound: only the responses still waiting for
// their request count against the bound; those matched already do not
// push one out, wherever they sit in the hold.
func TestTrackerEarlyResponsesBound(t *testing.T) {
	n := NewSIP(1).Node(nil)
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 1 << 10, InviteTimeout: time.Minute, maxHeld: heldBound})
	observe := func(e TxEvent) { tr.Observe(&e) }
	for i := range uint64(heldBound) {
		observe(ev(n, i, 10, 200, MethodOPTIONS, 0))
	}
	for i := uint64(20); i < 30; i++ { // ten in the middle are matched
		observe(ev(n, i, 11, 0, MethodOPTIONS, 0))
	}
	for i := range uint64(10) { // ten more wait: the hold is full again
		observe(ev(n, 1000+i, 12, 200, MethodOPTIONS, 0))
	}
	if got := tr.unmatched.Load(); got != 0 || tr.held.q.len() != heldBound || tr.early.Load() != 10 {
		t.Errorf("unmatched %d, waiting %d, early %d; want 0, %d, 10", got, tr.held.q.len(), tr.early.Load(), heldBound)
	}
	observe(ev(n, 2000, 13, 200, MethodOPTIONS, 0)) // one too many: the oldest waiting, 0, goes
	observe(ev(n, 0, 14, 0, MethodOPTIONS, 0))      // its request comes too late
	if got := tr.unmatched.Load(); got != 1 || tr.early.Load() != 10 {
		t.Errorf("unmatched %d, early %d; want 1, 10", got, tr.early.Load())
	}
}
