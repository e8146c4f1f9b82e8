package collector

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// NonInviteTimeout is how long a non-INVITE transaction is tracked: 64*T1
// with T1 = 500 ms, the lifetime of a non-INVITE client transaction
// (RFC 3261 §17.1.2.2, Timer F).
const NonInviteTimeout = 64 * 500 * time.Millisecond

// TxEventFlags qualify a [TxEvent].
type TxEventFlags uint8

const (
	// TxResponse marks a response; without it the event is a request.
	TxResponse TxEventFlags = 1 << iota
	// TxToTag marks a message whose To header has a tag: a request inside a
	// dialog (RFC 3261 §12.2.1.1), such as a re-INVITE or a BYE.
	TxToTag
)

// TxEvent is one SIP message as the transaction tracker sees it: hashes
// instead of the wire bytes, so that it is a small value that can be queued
// without allocation. Build it with [TxKey], [DialogKey] and [TagHash].
type TxEvent struct {
	// Time is the capture time, nanoseconds since the Unix epoch.
	Time int64
	// Key identifies the transaction (RFC 3261 §17.1.3, §17.2.3): [TxKey]
	// of Call-ID, CSeq number, CSeq method and the branch of the top Via.
	Key uint64
	// Dialog identifies the dialog: [DialogKey] of Call-ID, From tag and To
	// tag; it is the same in both directions.
	Dialog uint64
	// Node is the counters' node of the message.
	Node *Node
	// ToTag is [TagHash] of the To tag, 0 without one; responses to one
	// request from different forks differ in it (RFC 3261 §16.7).
	ToTag uint32
	// Code is the status code of a response (100..699); 0 for a request.
	Code uint16
	// Q850Cause and SIPCause are the causes of the message's Reason header
	// (RFC 3326): 0..127 and 100..699, or -1 when absent or out of range.
	Q850Cause, SIPCause int16
	// Method is the CSeq method.
	Method Method
	Flags  TxEventFlags
}

// hashSeed seeds every hash of the package; made once per process.
var hashSeed = maphash.MakeSeed()

// mix64 is the finaliser of SplitMix64: it spreads the bits of x.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// TxKey returns the key of the transaction of a message (RFC 3261 §17.1.3):
// Call-ID, CSeq number, CSeq method token and the branch parameter of the
// topmost Via (empty for RFC 2543 clients, which then rely on Call-ID and
// CSeq). The method is part of the key, so a CANCEL or the ACK of a non-2xx
// response, which share the INVITE's branch, are transactions of their own
// (§9.1, §17.1.1.3). It does not allocate.
func TxKey(callID []byte, cseq uint32, method, branch []byte) uint64 {
	h := maphash.Bytes(hashSeed, callID)
	h ^= bits.RotateLeft64(maphash.Bytes(hashSeed, branch), 21)
	h ^= bits.RotateLeft64(maphash.Bytes(hashSeed, method), 42)
	return mix64(h ^ uint64(cseq)*0x9e3779b97f4a7c15)
}

// TagHash returns a 32-bit hash of a From or To tag, 0 for an empty tag and
// never 0 otherwise. It does not allocate.
func TagHash(tag []byte) uint32 {
	if len(tag) == 0 {
		return 0
	}
	h := uint32(maphash.Bytes(hashSeed, tag))
	if h == 0 {
		h = 1
	}
	return h
}

// DialogKey returns the key of the dialog of a message: Call-ID and the two
// tags (RFC 3261 §12), the same whichever side sends (From and To swap).
func DialogKey(callID []byte, fromTag, toTag uint32) uint64 {
	return mix64(maphash.Bytes(hashSeed, callID) ^ (uint64(fromTag)+uint64(toTag))*0xff51afd7ed558ccd)
}

// TrackerConfig configures a [Tracker].
type TrackerConfig struct {
	// MaxTransactions bounds the open transactions, and separately the
	// answered dialogs waiting for their BYE. Past it the oldest is evicted.
	MaxTransactions int
	// InviteTimeout is how long an INVITE transaction is tracked (long
	// enough for ringing); non-INVITE transactions last NonInviteTimeout.
	InviteTimeout time.Duration
	// SIP is the collector whose label sets ([Node]) the events carry: its
	// label names (node, and peer and direction with peers) head every
	// family. Nil means the node label only.
	SIP *SIP
}

// DefaultTrackerConfig returns the defaults of the flags.
func DefaultTrackerConfig() TrackerConfig {
	return TrackerConfig{MaxTransactions: 1_000_000, InviteTimeout: 180 * time.Second}
}

// Histogram buckets, seconds.
var (
	// DelayBuckets suit RFC 6076 delays: 10 ms .. 60 s.
	DelayBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// DurationBuckets suit call durations: 1 s .. 2 h.
	DurationBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}
)

// Entry flags.
const (
	txInitial uint8 = 1 << iota // INVITE without To tag: a session attempt
	txFinal                     // a final response was seen
	txSRD                       // the SRD was measured
	txNoReply                   // ACK: no response expected, never times out
)

// seenSlots is how many distinct (code, To tag) responses a transaction
// remembers to tell retransmissions: enough for 100, 180, 183 and 200.
const seenSlots = 4

// txEntry is one open transaction: 32 bytes, no pointers.
type txEntry struct {
	start  int64             // request capture time, ns
	seen   [seenSlots]uint32 // fingerprints of responses seen; 0 free
	node   uint32            // index into Tracker.nodes
	method Method
	flags  uint8
	next   uint8 // next seen slot to write
}

// dialogEntry is one answered dialog waiting for its BYE.
type dialogEntry struct {
	answered int64 // capture time of the 2xx, ns
	node     uint32
}

// txItem is a transaction in a ring, with its start so that expiry needs
// no table lookup.
type txItem struct {
	key   uint64
	start int64
}

type dialogItem struct {
	key      uint64
	answered int64
}

// ring is a FIFO that grows by doubling.
type ring[T any] struct {
	buf     []T
	head, n int
}

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		nb := make([]T, max(16, 2*len(r.buf)))
		for i := 0; i < r.n; i++ {
			nb[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

func (r *ring[T]) front() T { return r.buf[r.head] }

func (r *ring[T]) pop() {
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
}

// txNode holds the transaction metrics of one Node.
type txNode struct {
	node        *Node
	lv          []string
	attempts    atomic.Uint64
	timeouts    atomic.Uint64
	outcomes    [numCodes]atomic.Uint64
	respRetrans codeCounts // allocated per status code retransmitted
	reqRetrans  [numMethods]atomic.Uint64
	q850        [128]atomic.Uint64
	sipCause    [numCodes]atomic.Uint64
	srd         [2]prometheus.Observer // success, failure
	rrd         [3]prometheus.Observer // success, failure, challenge
	sdd         prometheus.Observer
	duration    prometheus.Observer
}

// Tracker follows SIP transactions (RFC 3261 §17) and dialogs to count
// retransmissions, session attempts and outcomes, Reason causes (RFC 3326)
// and the RFC 6076 delays. It is a [prometheus.Collector] of the families
// sip_session_*, sip_registration_request_delay_seconds,
// sip_*_retransmissions_total and sip_reason_causes_total, and of the
// sip_exporter_transaction* self-metrics.
//
// Events come in capture-time order from one goroutine (the time-ordered
// merge of all sources): [Tracker.Observe] handles one, [Tracker.Advance]
// moves the tracker's time to the merge's watermark, and [Tracker.End]
// ends every transaction after the last (the report command).
//
// Time is the events' capture time, so delays are exact in capture files,
// and the tracker's time is the merge's watermark: transactions expire
// when it passes their start plus their timeout. A late event (older than
// the watermark) does not move time back, and one source's clock cannot
// expire another's transactions, since the watermark waits for every
// source. The tables are open-addressing hash tables ([txTable])
// that start small and double up to MaxTransactions × 4/3 slots rounded up
// to a power of two, so that handling events allocates nothing once they
// have grown. With 1,000,000 open, a transaction costs 101 bytes of heap
// (a 40-byte slot at under 3/4 load plus 16 bytes in its ring; measured by
// BenchmarkTrackerMemory) and an answered dialog 67 bytes
// (BenchmarkTrackerDialogMemory); the tables hold at most MaxTransactions
// each.
type Tracker struct {
	cfg TrackerConfig

	// Owned by the handling goroutine.
	table     *txTable[txEntry]
	invites   ring[txItem] // INVITE transactions in order of start
	others    ring[txItem] // the other transactions in order of start
	dialogs   *txTable[dialogEntry]
	dialogQ   ring[dialogItem]
	nodeIndex map[*Node]uint32
	nodes     []*txNode
	lastNode  *Node
	lastIndex uint32
	clock     int64 // the tracker's time: the latest watermark or event time, ns

	mu        sync.Mutex // guards published
	published []*txNode

	open, openDialogs                   atomic.Int64
	evicted, dialogsEvicted             atomic.Uint64
	timedOutInvite, timedOutNonInvite   atomic.Uint64
	unmatched                           atomic.Uint64
	srdVec, rrdVec, sddVec, durationVec *prometheus.HistogramVec

	attemptsDesc, outcomesDesc, timeoutsDesc, respRetransDesc, reqRetransDesc, causesDesc *prometheus.Desc
	openDesc, evictedDesc, timedOutDesc, dialogsDesc, dialogsEvictedDesc                  *prometheus.Desc
	unmatchedDesc                                                                         *prometheus.Desc
}

// ErrTrackerConfig is wrapped by the configuration errors of NewTracker.
var ErrTrackerConfig = errors.New("bad transaction tracker configuration")

// NewTracker returns a tracker; it fails when MaxTransactions is below 1
// or InviteTimeout is not positive.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	switch {
	case cfg.MaxTransactions < 1:
		return nil, fmt.Errorf("max transactions %d: must be at least 1: %w", cfg.MaxTransactions, ErrTrackerConfig)
	case cfg.InviteTimeout <= 0:
		return nil, fmt.Errorf("invite timeout %v: must be positive: %w", cfg.InviteTimeout, ErrTrackerConfig)
	}
	series := []string{"node"}
	if cfg.SIP != nil {
		series = cfg.SIP.seriesLabelNames()
	}
	lbl := func(extra ...string) []string { return append(slices.Clone(series), extra...) }
	hist := func(name, help string, buckets []float64, extra ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: name, Help: help, Buckets: buckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, lbl(extra...))
	}
	t := &Tracker{
		cfg:       cfg,
		table:     newTxTable[txEntry](cfg.MaxTransactions),
		dialogs:   newTxTable[dialogEntry](cfg.MaxTransactions),
		nodeIndex: map[*Node]uint32{},
		srdVec: hist("sip_session_request_delay_seconds",
			"Session request delay (SRD, RFC 6076 §4.1): from an initial INVITE to its first 18x or 2xx (outcome=\"success\"), else to its final failure response (outcome=\"failure\").",
			DelayBuckets, "outcome"),
		rrdVec: hist("sip_registration_request_delay_seconds",
			"Registration request delay (RRD, RFC 6076 §4.2): from a REGISTER to its final response; outcome is success (2xx), challenge (401, 407) or failure.",
			DelayBuckets, "outcome"),
		sddVec: hist("sip_session_disconnect_delay_seconds",
			"Session disconnect delay (SDD, RFC 6076 §4.3): from a BYE to its final response.",
			DelayBuckets),
		durationVec: hist("sip_session_duration_seconds",
			"Session duration (RFC 6076 §4.5): from the 2xx of an initial INVITE to the first BYE of that dialog.",
			DurationBuckets),
		attemptsDesc: prometheus.NewDesc("sip_session_attempts_total",
			"Initial INVITE transactions (no To tag), each counted once (RFC 6076 §4.6).", lbl(), nil),
		outcomesDesc: prometheus.NewDesc("sip_session_outcomes_total",
			"Initial INVITE transactions by their final response, the first one seen (RFC 6076 §4.6-4.8).", lbl("code", "class", "reason"), nil),
		timeoutsDesc: prometheus.NewDesc("sip_session_timeouts_total",
			"Initial INVITE transactions that ended (timeout, or end of the capture files) without a final response.", lbl(), nil),
		respRetransDesc: prometheus.NewDesc("sip_response_retransmissions_total",
			"SIP responses that repeat a response of an open transaction (same code and To tag), the retransmitted subset of sip_responses_total (RFC 3261 §17).",
			lbl("method", "code", "class", "reason"), nil),
		reqRetransDesc: prometheus.NewDesc("sip_request_retransmissions_total",
			"SIP requests of a transaction that is open already, the retransmitted subset of sip_requests_total (RFC 3261 §17).", lbl("method"), nil),
		causesDesc: prometheus.NewDesc("sip_reason_causes_total",
			"Causes in the Reason header (RFC 3326) of responses, BYE and CANCEL requests, retransmissions not counted: protocol Q.850 (cause 0-127) or SIP (100-699).",
			lbl("protocol", "cause"), nil),
		openDesc: prometheus.NewDesc("sip_exporter_transactions",
			"SIP transactions being tracked.", nil, nil),
		evictedDesc: prometheus.NewDesc("sip_exporter_transactions_evicted_total",
			"SIP transactions forgotten before their timeout because the table was full (the oldest goes).", nil, nil),
		timedOutDesc: prometheus.NewDesc("sip_exporter_transactions_timed_out_total",
			"SIP transactions that expired without a final response, by kind (invite, non_invite); ACKs excluded.", []string{"kind"}, nil),
		dialogsDesc: prometheus.NewDesc("sip_exporter_dialogs",
			"Answered SIP dialogs tracked until their BYE, for sip_session_duration_seconds.", nil, nil),
		dialogsEvictedDesc: prometheus.NewDesc("sip_exporter_dialogs_evicted_total",
			"Answered dialogs forgotten before their BYE because the dialog table was full (the oldest goes).", nil, nil),
		unmatchedDesc: prometheus.NewDesc("sip_exporter_transaction_responses_unmatched_total",
			"SIP responses whose request was not seen or no longer tracked.", nil, nil),
	}
	return t, nil
}

// Advance moves the tracker's time on to now (ns since the Unix epoch;
// the merge's watermark) and expires the transactions whose timeout has
// passed. Time never moves back. Not concurrently with Observe or End.
func (t *Tracker) Advance(now int64) {
	if now <= t.clock {
		return
	}
	t.clock = now
	t.expire(now)
	t.publish()
}

// End expires every open transaction and forgets the dialogs, as if their
// timeouts had passed: initial INVITEs without a final response count as
// sip_session_timeouts_total. The report command calls it at the end of
// its files. Not concurrently with Observe or Advance.
func (t *Tracker) End() {
	t.expire(math.MaxInt64)
	t.dialogs.clear()
	t.dialogQ = ring[dialogItem]{}
	t.publish()
}

func (t *Tracker) publish() {
	t.open.Store(int64(t.table.len()))
	t.openDialogs.Store(int64(t.dialogs.len()))
}

// nodeOf returns the index of the txNode of n, creating it on first use.
func (t *Tracker) nodeOf(n *Node) uint32 {
	if n == t.lastNode {
		return t.lastIndex
	}
	i, ok := t.nodeIndex[n]
	if !ok {
		i = uint32(len(t.nodes))
		tn := &txNode{node: n, lv: n.labelValues()}
		for k, o := range []string{"success", "failure"} {
			tn.srd[k] = t.srdVec.WithLabelValues(append(slices.Clone(tn.lv), o)...)
		}
		for k, o := range []string{"success", "failure", "challenge"} {
			tn.rrd[k] = t.rrdVec.WithLabelValues(append(slices.Clone(tn.lv), o)...)
		}
		tn.sdd = t.sddVec.WithLabelValues(tn.lv...)
		tn.duration = t.durationVec.WithLabelValues(tn.lv...)
		t.nodes = append(t.nodes, tn)
		t.nodeIndex[n] = i
		t.mu.Lock()
		t.published = append(t.published, tn)
		t.mu.Unlock()
	}
	t.lastNode, t.lastIndex = n, i
	return i
}

// seconds converts a delay in ns to seconds; negative (clock skew between
// sources) is 0.
func seconds(d int64) float64 {
	if d < 0 {
		return 0
	}
	return float64(d) / 1e9
}

// Observe handles one event. It is for a single goroutine (not
// concurrently with Advance or End), does not allocate in the steady state
// (the table and rings grow by doubling up to their bound) and takes no
// lock except when a node is first seen.
func (t *Tracker) Observe(ev *TxEvent) {
	if ev.Time > t.clock {
		t.clock = ev.Time
		t.expire(t.clock)
	}
	idx := t.nodeOf(ev.Node)
	if ev.Flags&TxResponse != 0 {
		t.response(ev, t.nodes[idx])
	} else {
		t.request(ev, idx)
	}
	t.open.Store(int64(t.table.len()))
}

func (t *Tracker) request(ev *TxEvent, idx uint32) {
	mine := t.nodes[idx]
	if t.table.get(ev.Key) != nil {
		mine.reqRetrans[ev.Method].Add(1)
		return
	}
	if t.table.len() >= t.cfg.MaxTransactions {
		t.evictOldest()
	}
	e := txEntry{start: ev.Time, node: idx, method: ev.Method}
	switch {
	case ev.Method == MethodINVITE && ev.Flags&TxToTag == 0:
		e.flags |= txInitial
		mine.attempts.Add(1)
	case ev.Method == MethodACK:
		e.flags |= txNoReply
	}
	t.table.put(ev.Key, e)
	if ev.Method == MethodINVITE {
		t.invites.push(txItem{ev.Key, ev.Time})
	} else {
		t.others.push(txItem{ev.Key, ev.Time})
	}
	if ev.Method == MethodBYE || ev.Method == MethodCANCEL {
		t.causes(ev, mine)
	}
	if ev.Method == MethodBYE {
		if d, ok := t.dialogs.del(ev.Dialog); ok {
			t.nodes[d.node].duration.Observe(seconds(ev.Time - d.answered))
			t.openDialogs.Store(int64(t.dialogs.len()))
		}
	}
}

func (t *Tracker) causes(ev *TxEvent, mine *txNode) {
	if ev.Q850Cause >= 0 && ev.Q850Cause < 128 {
		mine.q850[ev.Q850Cause].Add(1)
	}
	if sipstatus.Valid(int(ev.SIPCause)) {
		mine.sipCause[int(ev.SIPCause)-sipstatus.MinCode].Add(1)
	}
}

func (t *Tracker) response(ev *TxEvent, mine *txNode) {
	code := int(ev.Code)
	if !sipstatus.Valid(code) {
		return
	}
	e := t.table.get(ev.Key) // updated in place: nothing below puts into t.table
	if e == nil {
		t.unmatched.Add(1)
		t.causes(ev, mine)
		return
	}
	fp := uint32(mix64(uint64(ev.ToTag)<<16|uint64(code))) | 1
	for _, s := range e.seen {
		if s == fp {
			mine.respRetrans.add(code, ev.Method)
			return
		}
	}
	e.seen[e.next] = fp
	e.next = (e.next + 1) % seenSlots
	t.causes(ev, mine)
	owner := t.nodes[e.node]
	delay := seconds(ev.Time - e.start)
	final := code >= 200
	if e.flags&txInitial != 0 {
		if e.flags&txSRD == 0 && (code >= 180 && code < 300) {
			owner.srd[0].Observe(delay)
			e.flags |= txSRD
		}
		if final && e.flags&txFinal == 0 {
			owner.outcomes[code-sipstatus.MinCode].Add(1)
			if e.flags&txSRD == 0 {
				owner.srd[1].Observe(delay)
				e.flags |= txSRD
			}
		}
		if code >= 200 && code < 300 {
			t.answered(ev, e.node)
		}
	}
	if final && e.flags&txFinal == 0 {
		switch e.method {
		case MethodREGISTER:
			switch {
			case code < 300:
				owner.rrd[0].Observe(delay)
			case code == 401 || code == 407:
				owner.rrd[2].Observe(delay)
			default:
				owner.rrd[1].Observe(delay)
			}
		case MethodBYE:
			owner.sdd.Observe(delay)
		}
		e.flags |= txFinal
	}
}

// answered remembers the dialog of a 2xx to an initial INVITE (one per
// fork) until its BYE.
func (t *Tracker) answered(ev *TxEvent, node uint32) {
	if t.dialogs.get(ev.Dialog) != nil {
		return
	}
	for t.dialogQ.n >= t.cfg.MaxTransactions { // stale items (dialogs ended by BYE) go too
		it := t.dialogQ.front()
		t.dialogQ.pop()
		if d := t.dialogs.get(it.key); d != nil && d.answered == it.answered {
			t.dialogs.del(it.key)
			t.dialogsEvicted.Add(1)
		}
	}
	t.dialogs.put(ev.Dialog, dialogEntry{answered: ev.Time, node: node})
	t.dialogQ.push(dialogItem{ev.Dialog, ev.Time})
	t.openDialogs.Store(int64(t.dialogs.len()))
}

// expire ends the transactions whose timeout has passed at now.
func (t *Tracker) expire(now int64) {
	t.expireRing(&t.invites, now-int64(t.cfg.InviteTimeout), true)
	t.expireRing(&t.others, now-int64(NonInviteTimeout), false)
}

func (t *Tracker) expireRing(r *ring[txItem], before int64, invite bool) {
	for r.n > 0 && r.front().start <= before {
		k := r.front().key
		r.pop()
		e, _ := t.table.del(k)
		t.timedOut(&e, invite)
	}
}

func (t *Tracker) timedOut(e *txEntry, invite bool) {
	if e.flags&(txFinal|txNoReply) != 0 {
		return
	}
	if invite {
		t.timedOutInvite.Add(1)
	} else {
		t.timedOutNonInvite.Add(1)
	}
	if e.flags&txInitial != 0 {
		t.nodes[e.node].timeouts.Add(1)
	}
}

// evictOldest forgets the transaction that started first.
func (t *Tracker) evictOldest() {
	r := &t.others
	if t.invites.n > 0 && (t.others.n == 0 || t.invites.front().start <= t.others.front().start) {
		r = &t.invites
	}
	if r.n == 0 {
		return
	}
	t.table.del(r.front().key)
	r.pop()
	t.evicted.Add(1)
}

// Describe implements [prometheus.Collector].
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{t.attemptsDesc, t.outcomesDesc, t.timeoutsDesc, t.respRetransDesc, t.reqRetransDesc,
		t.causesDesc, t.openDesc, t.evictedDesc, t.timedOutDesc, t.dialogsDesc, t.dialogsEvictedDesc, t.unmatchedDesc} {
		ch <- d
	}
	t.srdVec.Describe(ch)
	t.rrdVec.Describe(ch)
	t.sddVec.Describe(ch)
	t.durationVec.Describe(ch)
}

// q850Labels are the decimal label values of the Q.850 causes.
var q850Labels = func() (l [128]string) {
	for i := range l {
		l[i] = fmt.Sprint(i)
	}
	return l
}()

// outcomeShown are the session outcomes exported at zero, as
// sip_responses_total pre-initialises the INVITE final responses.
var outcomeShown = func() (s [numCodes]bool) {
	for _, code := range preinitialised[MethodINVITE] {
		if code >= 200 {
			s[code-sipstatus.MinCode] = true
		}
	}
	return s
}()

// responseShown are the (code, method) pairs of response retransmissions
// exported at zero: those of sip_responses_total.
var responseShown = func() (s [numCodes][numMethods]bool) {
	for m, codes := range preinitialised {
		for _, code := range codes {
			s[code-sipstatus.MinCode][m] = true
		}
	}
	return s
}()

// Collect implements [prometheus.Collector]. Retransmission counters are
// exported at zero for the (method, code) pairs that sip_responses_total
// pre-initialises, so that the difference of the two always has a series.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	nodes := slices.Clone(t.published)
	t.mu.Unlock()
	slices.SortFunc(nodes, func(a, b *txNode) int { return slices.Compare(a.lv, b.lv) })
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	for _, n := range nodes {
		lv := n.lv
		with := func(extra ...string) []string { return append(slices.Clone(lv), extra...) }
		counter(t.attemptsDesc, n.attempts.Load(), lv...)
		counter(t.timeoutsDesc, n.timeouts.Load(), lv...)
		for i := range n.outcomes {
			if v := n.outcomes[i].Load(); v > 0 || outcomeShown[i] {
				code := i + sipstatus.MinCode
				counter(t.outcomesDesc, v, with(codeLabels[i], sipstatus.Class(code), sipstatus.Text(code))...)
			}
		}
		n.respRetrans.each(&responseShown, func(i int, m Method, v uint64) {
			code := i + sipstatus.MinCode
			counter(t.respRetransDesc, v, with(Methods[m], codeLabels[i], sipstatus.Class(code), sipstatus.Text(code))...)
		})
		for m := range n.reqRetrans {
			counter(t.reqRetransDesc, n.reqRetrans[m].Load(), with(Methods[m])...)
		}
		for c := range n.q850 {
			if v := n.q850[c].Load(); v > 0 {
				counter(t.causesDesc, v, with("Q.850", q850Labels[c])...)
			}
		}
		for i := range n.sipCause {
			if v := n.sipCause[i].Load(); v > 0 {
				counter(t.causesDesc, v, with("SIP", codeLabels[i])...)
			}
		}
	}
	t.srdVec.Collect(ch)
	t.rrdVec.Collect(ch)
	t.sddVec.Collect(ch)
	t.durationVec.Collect(ch)
	ch <- prometheus.MustNewConstMetric(t.openDesc, prometheus.GaugeValue, float64(t.open.Load()))
	ch <- prometheus.MustNewConstMetric(t.dialogsDesc, prometheus.GaugeValue, float64(t.openDialogs.Load()))
	counter(t.evictedDesc, t.evicted.Load())
	counter(t.dialogsEvictedDesc, t.dialogsEvicted.Load())
	counter(t.timedOutDesc, t.timedOutInvite.Load(), "invite")
	counter(t.timedOutDesc, t.timedOutNonInvite.Load(), "non_invite")
	counter(t.unmatchedDesc, t.unmatched.Load())
}
