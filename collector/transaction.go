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

// EarlyResponseWindow is how long, in capture time, a response whose
// request has not been seen is held for it. A response cannot precede its
// request on the wire, but it can in the capture when the two come from
// sources whose clocks disagree: two NICs or two tap ports time-stamping
// one direction each, two HEP agents a few milliseconds apart (the merge
// corrects an agent's clock only past half of --capture.max-lateness). A
// response matched this way counts in
// sip_exporter_transaction_responses_early_total and its delay as 0; one
// whose request does not come within the window counts as unmatched.
const EarlyResponseWindow = 100 * time.Millisecond

// earlySlots bounds the responses held for their request; when more are
// waiting the oldest counts as unmatched at once.
const earlySlots = 64

// TxEventFlags qualify a [TxEvent].
type TxEventFlags uint8

const (
	// TxResponse marks a response; without it the event is a request.
	TxResponse TxEventFlags = 1 << iota
	// TxToTag marks a message whose To header has a tag: a request inside a
	// dialog (RFC 3261 §12.2.1.1), such as a re-INVITE or a BYE.
	TxToTag
	// TxUnregister marks a REGISTER request that removes bindings: its
	// Contact is "*", or its expiry (the Contact's expires parameter, else
	// the Expires header) is 0 (RFC 3261 §10.2.2). A 2xx to it that gives
	// no expiry of its own removes the address of record.
	TxUnregister
)

// NoExpiry is [TxEvent.Expires] of a message that gives no expiry.
const NoExpiry = -1

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
	// Expires is, for a response to REGISTER, the expiry it grants in
	// seconds: the largest expires parameter of its Contact values, else
	// its Expires header (RFC 3261 §10.3 step 8), capped at 2^31-1;
	// [NoExpiry] when it gives none.
	Expires int32
	// Code is the status code of a response (100..699); 0 for a request.
	Code uint16
	// Q850Cause and SIPCause are the causes of the message's Reason header
	// (RFC 3326): 0..127 and 100..699, or -1 when absent or out of range.
	Q850Cause, SIPCause int16
	// Method is the CSeq method.
	Method Method
	Flags  TxEventFlags
	// AOR is, for REGISTER and its responses, [AORKey] of the To URI: the
	// address of record (RFC 3261 §10.2); 0 otherwise.
	AOR uint64
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

// AORKey returns the key of an address of record, the To URI of a
// REGISTER as sent (RFC 3261 §10.2), never 0. It does not allocate.
func AORKey(uri []byte) uint64 {
	return mix64(maphash.Bytes(hashSeed, uri)) | 1
}

// DialogKey returns the key of the dialog of a message: Call-ID and the two
// tags (RFC 3261 §12), the same whichever side sends (From and To swap).
func DialogKey(callID []byte, fromTag, toTag uint32) uint64 {
	return mix64(maphash.Bytes(hashSeed, callID) ^ (uint64(fromTag)+uint64(toTag))*0xff51afd7ed558ccd)
}

// TrackerConfig configures a [Tracker].
type TrackerConfig struct {
	// MaxTransactions bounds the open transactions, and separately the
	// answered dialogs waiting for their BYE (the established sessions).
	// Past it the oldest is evicted.
	MaxTransactions int
	// SessionMaxAge ends an established session whose BYE is never seen
	// this long after its 2xx (sip_sessions_ended_total{reason="max_age"});
	// 0 selects DefaultSessionMaxAge.
	SessionMaxAge time.Duration
	// MaxRegistrations bounds the addresses of record with an unexpired
	// registration; past it the one expiring soonest is evicted. 0 selects
	// DefaultMaxRegistrations.
	MaxRegistrations int
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
	return TrackerConfig{MaxTransactions: 1_000_000, InviteTimeout: 180 * time.Second,
		SessionMaxAge: DefaultSessionMaxAge, MaxRegistrations: DefaultMaxRegistrations}
}

const (
	// DefaultSessionMaxAge is the default of TrackerConfig.SessionMaxAge:
	// 4 h, longer than all but a few calls (many switches cap a call at 2
	// to 4 h) and short enough that a lost BYE does not leave a session
	// counted for a day.
	DefaultSessionMaxAge = 4 * time.Hour
	// DefaultMaxRegistrations is the default of
	// TrackerConfig.MaxRegistrations: 1,000,000 addresses of record, as
	// many as the largest registrar clusters serve and as the default
	// bound of transactions, at 85 bytes each measured with all refreshed
	// once (BenchmarkTrackerRegistrationMemory), so 85 MB at most; the
	// table only grows as far as it is used.
	DefaultMaxRegistrations = 1_000_000
)

// Histogram buckets, seconds.
var (
	// DelayBuckets suit RFC 6076 delays: 10 ms .. 60 s.
	DelayBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// DurationBuckets suit call durations: 1 s .. 2 h.
	DurationBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}
)

// Entry flags.
const (
	txInitial    uint8 = 1 << iota // INVITE without To tag: a session attempt
	txFinal                        // a final response was seen
	txSRD                          // the SRD was measured
	txNoReply                      // ACK: no response expected, never times out
	txUnregister                   // REGISTER removing bindings (TxUnregister)
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

// regEntry is one address of record with an unexpired registration.
type regEntry struct {
	expires int64 // capture time of its expiry, ns
	node    uint32
}

// regItem is an expiry in the registrations' heap; stale when the entry
// of key has another expiry (refreshed, removed or evicted since).
type regItem struct {
	expires int64
	key     uint64
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
	srd         [3]prometheus.Observer // success, failure, challenge
	rrd         [3]prometheus.Observer // success, failure, challenge
	sdd         prometheus.Observer
	duration    prometheus.Observer
	// Established sessions (answered dialogs without BYE) and how they
	// ended: ended[endBye], ended[endMaxAge], ended[endEvicted].
	sessions atomic.Int64
	ended    [3]atomic.Uint64
	// Addresses of record with an unexpired registration of this label
	// set, REGISTER transactions, and those without a final response.
	registrations atomic.Int64
	regAttempts   atomic.Uint64
	regTimeouts   atomic.Uint64
	// Capture times (ns; 0 never) of the last OPTIONS transaction that
	// got a 2xx, and of the last that got another final response or none.
	optionsOK, optionsFailed atomic.Int64
}

// How sessions end: the label values of sip_sessions_ended_total.
const (
	endBye = iota
	endMaxAge
	endEvicted
)

var endReasons = [...]string{endBye: "bye", endMaxAge: "max_age", endEvicted: "evicted"}

// Tracker follows SIP transactions (RFC 3261 §17), dialogs and
// registrations to count retransmissions, session attempts and outcomes,
// established sessions, registered addresses of record, OPTIONS
// keepalives, Reason causes (RFC 3326) and the RFC 6076 delays. It is a
// [prometheus.Collector] of the families sip_session_*, sip_sessions_*,
// sip_registration_*, sip_registrations_active, sip_peer_options_*,
// sip_*_retransmissions_total and sip_reason_causes_total, and of the
// sip_exporter_transaction*, sip_exporter_dialogs* and
// sip_exporter_registrations* self-metrics.
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
//
// An answered dialog is an established session (sip_sessions_active)
// until a BYE from either side, SessionMaxAge after its 2xx, or its
// eviction. A registration is kept per address of record (a hash of the
// To URI) in a table of at most MaxRegistrations, with a min-heap of
// expiries; a refresh pushes a new expiry and leaves the old one to be
// skipped when it comes up, and the heap is compacted when stale items
// outnumber the live ones, so that it stays within twice the table.
type Tracker struct {
	cfg TrackerConfig

	// Owned by the handling goroutine.
	table     *txTable[txEntry]
	invites   ring[txItem] // INVITE transactions in order of start
	others    ring[txItem] // the other transactions in order of start
	dialogs   *txTable[dialogEntry]
	dialogQ   ring[dialogItem]
	regs      *txTable[regEntry]
	regHeap   []regItem // min-heap by expires
	nodeIndex map[*Node]uint32
	nodes     []*txNode
	lastNode  *Node
	lastIndex uint32
	clock     int64 // the tracker's time: the latest watermark or event time, ns
	held      earlyResponses

	mu        sync.Mutex // guards published
	published []*txNode

	open, openDialogs                   atomic.Int64
	evicted, dialogsEvicted             atomic.Uint64
	openRegs                            atomic.Int64
	regsEvicted                         atomic.Uint64
	timedOutInvite, timedOutNonInvite   atomic.Uint64
	unmatched, early                    atomic.Uint64
	srdVec, rrdVec, sddVec, durationVec *prometheus.HistogramVec

	attemptsDesc, outcomesDesc, timeoutsDesc, respRetransDesc, reqRetransDesc, causesDesc *prometheus.Desc
	openDesc, evictedDesc, timedOutDesc, dialogsDesc, dialogsEvictedDesc                  *prometheus.Desc
	unmatchedDesc, earlyDesc                                                              *prometheus.Desc
	sessionsDesc, endedDesc, regsDesc, regAttemptsDesc, regTimeoutsDesc                   *prometheus.Desc
	optionsOKDesc, optionsFailedDesc, regsTrackedDesc, regsEvictedDesc                    *prometheus.Desc
	// peerLabels: the label sets have a peer (--config.file): the
	// sip_peer_options_* families are exported.
	peerLabels bool
}

// ErrTrackerConfig is wrapped by the configuration errors of NewTracker.
var ErrTrackerConfig = errors.New("bad transaction tracker configuration")

// NewTracker returns a tracker; it fails when MaxTransactions is below 1,
// InviteTimeout is not positive, or SessionMaxAge or MaxRegistrations is
// negative.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	if cfg.SessionMaxAge == 0 {
		cfg.SessionMaxAge = DefaultSessionMaxAge
	}
	if cfg.MaxRegistrations == 0 {
		cfg.MaxRegistrations = DefaultMaxRegistrations
	}
	switch {
	case cfg.MaxTransactions < 1:
		return nil, fmt.Errorf("max transactions %d: must be at least 1: %w", cfg.MaxTransactions, ErrTrackerConfig)
	case cfg.InviteTimeout <= 0:
		return nil, fmt.Errorf("invite timeout %v: must be positive: %w", cfg.InviteTimeout, ErrTrackerConfig)
	case cfg.SessionMaxAge <= 0:
		return nil, fmt.Errorf("session max age %v: must be positive: %w", cfg.SessionMaxAge, ErrTrackerConfig)
	case cfg.MaxRegistrations < 1:
		return nil, fmt.Errorf("max registrations %d: must be at least 1: %w", cfg.MaxRegistrations, ErrTrackerConfig)
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
		regs:      newTxTable[regEntry](cfg.MaxRegistrations),
		nodeIndex: map[*Node]uint32{},
		srdVec: hist("sip_session_request_delay_seconds",
			"Session request delay (SRD, RFC 6076 §4.3), seconds: from an initial INVITE to its first 18x or 2xx (outcome=\"success\"), else to its final response: 401 or 407 (outcome=\"challenge\": re-sent with credentials in a new transaction) or another failure (outcome=\"failure\").",
			DelayBuckets, "outcome"),
		rrdVec: hist("sip_registration_request_delay_seconds",
			"Registration request delay (RRD, RFC 6076 §4.1), seconds: from a REGISTER to its final response; outcome is success (2xx), challenge (401, 407) or failure.",
			DelayBuckets, "outcome"),
		sddVec: hist("sip_session_disconnect_delay_seconds",
			"Session disconnect delay (SDD, RFC 6076 §4.4), seconds: from a BYE to its final response.",
			DelayBuckets),
		durationVec: hist("sip_session_duration_seconds",
			"Session duration (SDT, RFC 6076 §4.5), seconds: from the 2xx of an initial INVITE to the first BYE of that dialog.",
			DurationBuckets),
		attemptsDesc: prometheus.NewDesc("sip_session_attempts_total",
			"Initial INVITE transactions (no To tag), each counted once, challenged ones included: the attempts of SER, SEER, ISA and SCR (RFC 6076 §4.6-4.9).", lbl(), nil),
		outcomesDesc: prometheus.NewDesc("sip_session_outcomes_total",
			"Initial INVITE transactions by their final response, the first one seen (SER, SEER, ISA: RFC 6076 §4.6-4.8).", lbl("code", "class", "reason"), nil),
		sessionsDesc: prometheus.NewDesc("sip_sessions_active",
			"Established sessions: dialogs whose initial INVITE got a 2xx (each fork's dialog once) and that have not ended by a BYE from either side, --sip.session-max-age or eviction.", lbl(), nil),
		endedDesc: prometheus.NewDesc("sip_sessions_ended_total",
			"Established sessions that ended, by reason: bye (a BYE from either side), max_age (no BYE seen within --sip.session-max-age of the 2xx), evicted (the dialog table was full).", lbl("reason"), nil),
		regsDesc: prometheus.NewDesc("sip_registrations_active",
			"Addresses of record (To URI of REGISTER) with an unexpired registration: a 2xx to REGISTER granting a positive expiry (its Contact's expires parameter, else its Expires header, seconds; RFC 3261 §10.3) until then; an expiry of 0 removes it.", lbl(), nil),
		regAttemptsDesc: prometheus.NewDesc("sip_registration_attempts_total",
			"REGISTER transactions, each counted once, challenged ones included: the denominator of IRA (RFC 6076 §4.2).", lbl(), nil),
		regTimeoutsDesc: prometheus.NewDesc("sip_registration_timeouts_total",
			"REGISTER transactions that ended (64*T1 = 32 s, or end of the capture files) without a final response: ineffective registration attempts (IRA, RFC 6076 §4.2) with the failure outcomes of sip_registration_request_delay_seconds.", lbl(), nil),
		optionsOKDesc: prometheus.NewDesc("sip_peer_options_last_success_timestamp_seconds",
			"Capture time, Unix seconds, of the last 2xx to an OPTIONS request (a keepalive) of this peer and direction; with --config.file only, absent until one is seen.", lbl(), nil),
		optionsFailedDesc: prometheus.NewDesc("sip_peer_options_last_failure_timestamp_seconds",
			"Capture time, Unix seconds, of the last OPTIONS transaction of this peer and direction that failed: a final response other than 2xx, or none within 64*T1 = 32 s (the time it timed out); with --config.file only, absent until one is seen.", lbl(), nil),
		regsTrackedDesc: prometheus.NewDesc("sip_exporter_registrations",
			"Addresses of record with an unexpired registration, tracked for sip_registrations_active.", nil, nil),
		regsEvictedDesc: prometheus.NewDesc("sip_exporter_registrations_evicted_total",
			"Registrations forgotten before they expired because the table was full (--sip.max-registrations; the one expiring soonest goes).", nil, nil),
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
			"Answered SIP dialogs tracked until their BYE, for sip_session_duration_seconds and sip_sessions_active.", nil, nil),
		dialogsEvictedDesc: prometheus.NewDesc("sip_exporter_dialogs_evicted_total",
			"Answered dialogs forgotten before their BYE because the dialog table was full (the oldest goes).", nil, nil),
		unmatchedDesc: prometheus.NewDesc("sip_exporter_transaction_responses_unmatched_total",
			"SIP responses whose request was not seen within 100 ms of capture time after them, or is no longer tracked.", nil, nil),
		earlyDesc: prometheus.NewDesc("sip_exporter_transaction_responses_early_total",
			"SIP responses captured before their request (by at most 100 ms) and matched when it came: the capture clocks of two sources disagree; their delays count as 0.", nil, nil),
	}
	t.peerLabels = len(series) > 1
	return t, nil
}

// Advance moves the tracker's time on to now (ns since the Unix epoch;
// the merge's watermark) and expires the transactions whose timeout has
// passed, the sessions older than SessionMaxAge and the registrations
// whose expiry has come. Time never moves back. now = math.MaxInt64, the
// merge's word that every input has ended (files, no live source), is
// [Tracker.End]. Not concurrently with Observe or End.
func (t *Tracker) Advance(now int64) {
	if now == math.MaxInt64 {
		t.End()
		return
	}
	if now <= t.clock {
		return
	}
	t.clock = now
	t.expire(now)
	t.publish()
}

// End expires every open transaction as if its timeout had passed:
// initial INVITEs without a final response count as
// sip_session_timeouts_total, REGISTERs as sip_registration_timeouts_total,
// OPTIONS as failures at the tracker's time. Sessions and registrations
// are left as they were at the tracker's time (the last capture time):
// the report command, which calls End at the end of its files, shows the
// sessions still up and the registrations not yet expired when the files
// end, and sip_sessions_ended_total does not count them; the tracker's
// time stays at the last capture time. Not concurrently with Observe or
// Advance.
func (t *Tracker) End() {
	t.expireTx(math.MaxInt64)
	t.publish()
}

func (t *Tracker) publish() {
	t.open.Store(int64(t.table.len()))
	t.openDialogs.Store(int64(t.dialogs.len()))
	t.openRegs.Store(int64(t.regs.len()))
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
		for k, o := range []string{"success", "failure", "challenge"} {
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

// unixSeconds converts a time in ns since the Unix epoch to seconds, the
// float64 nearest to the exact value.
func unixSeconds(ns int64) float64 {
	return float64(ns/1e9) + float64(ns%1e9)/1e9
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
	case ev.Method == MethodREGISTER:
		mine.regAttempts.Add(1)
		if ev.Flags&TxUnregister != 0 {
			e.flags |= txUnregister
		}
	}
	t.table.put(ev.Key, e)
	if ev.Method == MethodINVITE {
		t.invites.push(txItem{ev.Key, ev.Time})
	} else {
		t.others.push(txItem{ev.Key, ev.Time})
	}
	if t.held.waiting(ev.Key) {
		t.matchHeld(ev.Key)
	}
	if ev.Method == MethodBYE || ev.Method == MethodCANCEL {
		t.causes(ev, mine)
	}
	if ev.Method == MethodBYE {
		if d, ok := t.dialogs.del(ev.Dialog); ok {
			owner := t.nodes[d.node]
			owner.duration.Observe(seconds(ev.Time - d.answered))
			owner.sessions.Add(-1)
			owner.ended[endBye].Add(1)
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
		t.hold(ev)
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
				if code == 401 || code == 407 {
					owner.srd[2].Observe(delay)
				} else {
					owner.srd[1].Observe(delay)
				}
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
				t.registered(ev, e)
			case code == 401 || code == 407:
				owner.rrd[2].Observe(delay)
			default:
				owner.rrd[1].Observe(delay)
			}
		case MethodBYE:
			owner.sdd.Observe(delay)
		case MethodOPTIONS:
			if code < 300 {
				latest(&owner.optionsOK, ev.Time)
			} else {
				latest(&owner.optionsFailed, ev.Time)
			}
		}
		e.flags |= txFinal
	}
}

// earlyResponses holds, in capture-time order, the responses whose
// request has not been seen yet (see [EarlyResponseWindow]): a ring of
// earlySlots events, a mark on those matched already, and, per key&255,
// how many unmatched ones have that key, so that a request finds in one
// load whether any wait for it.
type earlyResponses struct {
	evs     [earlySlots]TxEvent
	matched [earlySlots]bool
	head, n int
	keys    [256]uint8
}

func (h *earlyResponses) waiting(key uint64) bool { return h.keys[key&255] != 0 }

func (h *earlyResponses) front() *TxEvent { return &h.evs[h.head] }

// push adds ev; the ring must not be full.
func (h *earlyResponses) push(ev *TxEvent) {
	i := (h.head + h.n) % earlySlots
	h.evs[i], h.matched[i] = *ev, false
	h.n++
	h.keys[ev.Key&255]++
}

// pop removes the oldest and reports whether it is still unmatched.
func (h *earlyResponses) pop() (TxEvent, bool) {
	ev, unmatched := h.evs[h.head], !h.matched[h.head]
	h.head = (h.head + 1) % earlySlots
	h.n--
	if unmatched {
		h.keys[ev.Key&255]--
	}
	return ev, unmatched
}

// hold keeps a response without a transaction for its request; when
// earlySlots wait already, the oldest is given up.
func (t *Tracker) hold(ev *TxEvent) {
	if t.held.n == earlySlots {
		t.unheld(t.held.pop())
	}
	t.held.push(ev)
}

// unheld counts a held response whose request did not come.
func (t *Tracker) unheld(ev TxEvent, unmatched bool) {
	if !unmatched {
		return
	}
	t.unmatched.Add(1)
	t.causes(&ev, t.nodes[t.nodeOf(ev.Node)])
}

// matchHeld handles, in their order, the held responses to the transaction
// key, which has just been opened.
func (t *Tracker) matchHeld(key uint64) {
	h := &t.held
	for i := 0; i < h.n; i++ {
		j := (h.head + i) % earlySlots
		if h.matched[j] || h.evs[j].Key != key {
			continue
		}
		h.matched[j] = true
		h.keys[key&255]--
		t.early.Add(1)
		ev := h.evs[j]
		t.response(&ev, t.nodes[t.nodeOf(ev.Node)])
	}
}

// latest stores ns in v unless v holds a later time.
func latest(v *atomic.Int64, ns int64) {
	if ns > v.Load() {
		v.Store(ns)
	}
}

// registered handles the first 2xx to a REGISTER transaction e: the
// address of record ev.AOR is registered until the expiry the 2xx grants,
// or removed by an expiry of 0. A 2xx that grants none removes it when
// the request removed bindings (TxUnregister), else changes nothing.
func (t *Tracker) registered(ev *TxEvent, e *txEntry) {
	if ev.AOR == 0 {
		return
	}
	exp := int64(ev.Expires)
	if exp < 0 {
		if e.flags&txUnregister == 0 {
			return
		}
		exp = 0
	}
	if r := t.regs.get(ev.AOR); r != nil {
		t.nodes[r.node].registrations.Add(-1)
		if exp == 0 {
			t.regs.del(ev.AOR)
			t.openRegs.Store(int64(t.regs.len()))
			return
		}
		r.expires, r.node = ev.Time+exp*int64(time.Second), e.node
	} else {
		if exp == 0 {
			return
		}
		if t.regs.len() >= t.cfg.MaxRegistrations {
			t.expireRegs(math.MaxInt64, true)
		}
		t.regs.put(ev.AOR, regEntry{expires: ev.Time + exp*int64(time.Second), node: e.node})
	}
	t.nodes[e.node].registrations.Add(1)
	t.pushReg(regItem{ev.Time + exp*int64(time.Second), ev.AOR})
	t.openRegs.Store(int64(t.regs.len()))
}

// pushReg adds an expiry to the heap, first dropping the stale items when
// they outnumber the live ones (so that the heap holds at most twice the
// table, plus slack).
func (t *Tracker) pushReg(it regItem) {
	if len(t.regHeap) >= 2*t.regs.len()+1024 {
		live := t.regHeap[:0]
		for _, x := range t.regHeap {
			if r := t.regs.get(x.key); r != nil && r.expires == x.expires {
				live = append(live, x)
			}
		}
		t.regHeap = live
		for i := len(live)/2 - 1; i >= 0; i-- {
			t.siftDown(i)
		}
	}
	t.regHeap = append(t.regHeap, it)
	h := t.regHeap
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].expires <= h[i].expires {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (t *Tracker) siftDown(i int) {
	h := t.regHeap
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].expires < h[c].expires {
			c++
		}
		if h[i].expires <= h[c].expires {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// expireRegs removes the registrations whose expiry is at or before now;
// with one, only the first live one (an eviction: counted).
func (t *Tracker) expireRegs(now int64, one bool) {
	for len(t.regHeap) > 0 && t.regHeap[0].expires <= now {
		it := t.regHeap[0]
		last := len(t.regHeap) - 1
		t.regHeap[0] = t.regHeap[last]
		t.regHeap = t.regHeap[:last]
		t.siftDown(0)
		r := t.regs.get(it.key)
		if r == nil || r.expires != it.expires {
			continue // stale: refreshed or removed since
		}
		t.nodes[r.node].registrations.Add(-1)
		t.regs.del(it.key)
		if one {
			t.regsEvicted.Add(1)
			return
		}
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
		t.endDialog(it, endEvicted)
	}
	t.dialogs.put(ev.Dialog, dialogEntry{answered: ev.Time, node: node})
	t.dialogQ.push(dialogItem{ev.Dialog, ev.Time})
	t.nodes[node].sessions.Add(1)
	t.openDialogs.Store(int64(t.dialogs.len()))
}

// endDialog ends the session of a dialog item taken from dialogQ, unless
// the item is stale (the dialog ended by a BYE already).
func (t *Tracker) endDialog(it dialogItem, reason int) {
	d := t.dialogs.get(it.key)
	if d == nil || d.answered != it.answered {
		return
	}
	n := t.nodes[d.node]
	t.dialogs.del(it.key)
	n.sessions.Add(-1)
	n.ended[reason].Add(1)
	if reason == endEvicted {
		t.dialogsEvicted.Add(1)
	}
}

// expire ends the transactions whose timeout has passed at now, the
// sessions answered SessionMaxAge or longer before now and the
// registrations whose expiry is at or before now.
func (t *Tracker) expire(now int64) {
	t.expireTx(now)
	for before := now - int64(t.cfg.SessionMaxAge); t.dialogQ.n > 0 && t.dialogQ.front().answered <= before; {
		it := t.dialogQ.front()
		t.dialogQ.pop()
		t.endDialog(it, endMaxAge)
	}
	t.expireRegs(now, false)
	t.publish()
}

// expireTx ends the transactions whose timeout has passed at now and the
// wait of the responses held since EarlyResponseWindow or longer.
func (t *Tracker) expireTx(now int64) {
	for t.held.n > 0 && t.held.front().Time <= now-int64(EarlyResponseWindow) {
		t.unheld(t.held.pop())
	}
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
	n := t.nodes[e.node]
	switch {
	case e.flags&txInitial != 0:
		n.timeouts.Add(1)
	case e.method == MethodREGISTER:
		n.regTimeouts.Add(1)
	case e.method == MethodOPTIONS:
		// It timed out at its start plus Timer F, or, ended by End, at the
		// tracker's time.
		latest(&n.optionsFailed, min(e.start+int64(NonInviteTimeout), t.clock))
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
		t.causesDesc, t.openDesc, t.evictedDesc, t.timedOutDesc, t.dialogsDesc, t.dialogsEvictedDesc, t.unmatchedDesc, t.earlyDesc,
		t.sessionsDesc, t.endedDesc, t.regsDesc, t.regAttemptsDesc, t.regTimeoutsDesc, t.optionsOKDesc, t.optionsFailedDesc,
		t.regsTrackedDesc, t.regsEvictedDesc} {
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
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	for _, n := range nodes {
		lv := n.lv
		with := func(extra ...string) []string { return append(slices.Clone(lv), extra...) }
		counter(t.attemptsDesc, n.attempts.Load(), lv...)
		counter(t.timeoutsDesc, n.timeouts.Load(), lv...)
		gauge(t.sessionsDesc, float64(n.sessions.Load()), lv...)
		for r := range n.ended {
			counter(t.endedDesc, n.ended[r].Load(), with(endReasons[r])...)
		}
		gauge(t.regsDesc, float64(n.registrations.Load()), lv...)
		counter(t.regAttemptsDesc, n.regAttempts.Load(), lv...)
		counter(t.regTimeoutsDesc, n.regTimeouts.Load(), lv...)
		if t.peerLabels && n.node.Peer() != OtherPeer {
			if ns := n.optionsOK.Load(); ns != 0 {
				gauge(t.optionsOKDesc, unixSeconds(ns), lv...)
			}
			if ns := n.optionsFailed.Load(); ns != 0 {
				gauge(t.optionsFailedDesc, unixSeconds(ns), lv...)
			}
		}
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
	ch <- prometheus.MustNewConstMetric(t.regsTrackedDesc, prometheus.GaugeValue, float64(t.openRegs.Load()))
	counter(t.regsEvictedDesc, t.regsEvicted.Load())
	counter(t.timedOutDesc, t.timedOutInvite.Load(), "invite")
	counter(t.timedOutDesc, t.timedOutNonInvite.Load(), "non_invite")
	counter(t.unmatchedDesc, t.unmatched.Load())
	counter(t.earlyDesc, t.early.Load())
}
