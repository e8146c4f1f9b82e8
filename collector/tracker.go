package collector

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// NonInviteTimeout is how long a non-INVITE transaction is tracked: 64*T1
// with T1 = 500 ms, the lifetime of a non-INVITE client transaction
// (RFC 3261 §17.1.2.2, Timer F). It is also how long an INVITE
// transaction is kept after its final response, the time within which
// that response is retransmitted: after a 2xx, Timer L of the accepted
// server transaction and Timer M of the client one, which also waits for
// the 2xx of other forks (RFC 6026 §8.7); after another final response,
// Timer H of the completed server transaction (RFC 3261 §17.2.1).
const NonInviteTimeout = 64 * 500 * time.Millisecond

// EarlyResponseWindow is the default of [TrackerConfig.EarlyResponseWindow]:
// the skew window of the merge's time model at its default lateness
// (merge.Config.SkewWindow).
const EarlyResponseWindow = 200 * time.Millisecond

// MaxHeldResponses bounds the responses held for their request
// ([TrackerConfig.EarlyResponseWindow]), shared out among the shards as
// the other bounds are ([NewTrackers]); past it the oldest counts as
// unmatched at once. 16,384 in a window of 200 ms is 81,920 unmatched
// responses a second (a capture that sees only one direction); a shard's
// hold takes at most about 4.5 MiB (its queue of up to twice its bound
// in items of 88 bytes, and its index of keys). Of one transaction at
// most heldPerKey are held (a
// retransmitted response whose request never comes): that bound is the
// same whatever the shards, so that the counts are too.
const MaxHeldResponses = 1 << 14

// heldPerKey bounds the responses held for one transaction: its 100, 18x
// and final response, and one more.
const heldPerKey = 4

// TrackerConfig configures a [Tracker].
type TrackerConfig struct {
	// MaxTransactions bounds the open transactions, separately the
	// answered dialogs waiting for their BYE (the established sessions,
	// one per leg), and separately the challenges waiting for their
	// re-send or its final response. Past it the oldest is evicted.
	MaxTransactions int
	// SessionMaxAge ends an established session whose BYE is never seen
	// this long after its 2xx (sip_sessions_ended_total{reason="max_age"});
	// 0 selects DefaultSessionMaxAge.
	SessionMaxAge time.Duration
	// MaxRegistrations bounds the addresses of record with an unexpired
	// registration; past it the one expiring soonest is evicted. 0 selects
	// DefaultMaxRegistrations.
	MaxRegistrations int
	// InviteTimeout is how long an INVITE transaction waits for its final
	// response (long enough for ringing), from the INVITE and again from
	// each provisional response but 100, as a proxy's Timer C is reset
	// (RFC 3261 §16.7 step 2; a UAS that rings longer sends one every
	// minute, §13.3.1.1). After its final response an INVITE transaction
	// lasts NonInviteTimeout more, as non-INVITE transactions last from
	// their request.
	InviteTimeout time.Duration
	// EarlyResponseWindow is how long, in capture time, a response whose
	// request has not been seen is held for it; 0 selects
	// [EarlyResponseWindow]. A response cannot precede its request on the
	// wire, but it can in the capture when the two come from sources whose
	// clocks disagree: two NICs or two tap ports time-stamping one
	// direction each, two HEP agents that the merge leaves uncorrected (up
	// to its skew window apart: give that window here). A response matched
	// this way counts in sip_exporter_transaction_responses_early_total and
	// its delay as 0; one whose request does not come within the window
	// counts as unmatched.
	EarlyResponseWindow time.Duration
	// ClassicHistograms keeps the delay and duration histograms without
	// their native (sparse) buckets, which only the protobuf and
	// OpenMetrics expositions carry: for a tracker read in the text format
	// or by its classic buckets alone (the report command), which then
	// saves their cost per observation. Counts, sums and classic buckets
	// are the same.
	ClassicHistograms bool
	// maxHeld bounds the held responses of this shard: 0 for
	// MaxHeldResponses (one shard), else its share (NewTrackers).
	maxHeld int
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

// Entry flags.
const (
	txInitial    uint8 = 1 << iota // INVITE without To tag: a session attempt
	txFinal                        // a final response was seen
	txSRD                          // the SRD was measured
	txNoReply                      // ACK: no response expected, never times out
	txUnregister                   // REGISTER removing bindings (TxUnregister)
	txInDialog                     // a request with a To tag, not CANCEL: inside a dialog (RFC 3261 §12.2.1.1)
	txResent                       // an initial INVITE or REGISTER re-sent with credentials: its challenge is in Tracker.challenges
)

// seenSlots is how many distinct (code, To tag) responses a transaction
// remembers to tell retransmissions: enough for 100, 180, 183 and 200.
const seenSlots = 4

// txEntry is one open transaction: 32 bytes, no pointers.
type txEntry struct {
	// start is the time, ns, its timeout counts from: its request's
	// capture time, from which its delays are measured; for an INVITE,
	// once no delay is measured from the request any more, that of its
	// last provisional response (but 100), then of its final response
	// ([Tracker.restart]).
	start  int64
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

// dialogEntry is one answered leg of a dialog waiting for its BYE: an
// established session. 16 bytes, no pointers.
type dialogEntry struct {
	answered int64  // capture time of the 2xx, ns
	node     uint32 // the label set of the leg's INVITE
	leg      uint32 // TxEvent.Leg of the 2xx: the leg's two hosts
}

// maxLegs bounds the answered legs of one dialog that are tracked as
// sessions: a capture point sees a dialog on one leg, on two (both sides
// of a proxy), or on a few more when the request spirals through
// application servers. Leg i of dialog key d is kept under legKey(d, i).
const maxLegs = 4

// legKey returns the key of slot i of the legs of dialog d: d itself for
// the first, a hash of d and i for the others (not d xored with a
// constant, which the salts of a looped file's passes could undo).
func legKey(d uint64, i int) uint64 {
	if i == 0 {
		return d
	}
	return mix64(d + uint64(i)*0xd1b54a32d192ed03)
}

// The timeout classes of the transactions' queue.
const (
	txInvite = iota // InviteTimeout: an INVITE without final response
	txOther         // NonInviteTimeout: any other, and an INVITE after its final response
)

// class returns the timeout class the expiry of e counts in.
func (e *txEntry) class() int {
	if e.method == MethodINVITE && e.flags&txFinal == 0 {
		return txInvite
	}
	return txOther
}

// observer takes the delays and durations, in ns, of one shard: its part
// of a histogram series of the exposition ([exactHistogram]), and its
// exemplar of it.
type observer struct {
	h  *histPart
	ex *exemplar
}

// observe records a delay of ns (a negative one counts as 0) that ended
// at capture time at and makes it, with the Call-ID id, the exemplar of
// the series ([exemplar.record]); a nil id (none known) leaves the
// exemplar as it was.
func (o observer) observe(ns int64, id *CallID, at int64) {
	ns = max(ns, 0)
	o.h.observe(ns)
	o.ex.record(id, float64(ns)/1e9, at)
}

// txNode holds the counts of one Node, kept here as they happen and read
// by the exposition ([Tracker.Collect]).
type txNode struct {
	node     *Node
	lv       []string // its label values
	attempts atomic.Uint64
	timeouts atomic.Uint64
	outcomes [numCodes]atomic.Uint64
	// Exemplars of the session outcomes other than 2xx, by code (made on
	// the first of each code), and of the timeouts.
	outcomeEx [numCodes]atomic.Pointer[exemplar]
	timeoutEx exemplar
	// Digest challenges to session attempts and REGISTERs, by
	// challengeIndex (401, 407).
	challenges, regChallenges [2]atomic.Uint64
	respRetrans               codeCounts // allocated per status code retransmitted
	reqRetrans                [numMethods]atomic.Uint64
	q850                      [128]atomic.Uint64
	sipCause                  [numCodes]atomic.Uint64
	srd                       [3]observer // success, failure, challenge (never re-sent)
	rrd                       [3]observer // success, failure, challenge (never re-sent)
	sdd                       observer
	duration                  observer
	// Established sessions (answered dialogs without BYE) and how they
	// ended, indexed by endBye etc.
	sessions atomic.Int64
	ended    [numEnds]atomic.Uint64
	// Addresses of record with an unexpired registration of this label
	// set, REGISTER transactions, and those without a final response.
	registrations atomic.Int64
	regAttempts   atomic.Uint64
	regTimeouts   atomic.Uint64
	// Capture times (ns; 0 never) of the last OPTIONS transaction that
	// got a 2xx, and of the last that got another final response or none.
	optionsOK, optionsFailed atomic.Int64
	// keepalive is the peer's reachability from those outcomes
	// (sip_peer_up).
	keepalive keepalive
	stir      stirCounts // initial INVITEs by attestation and verstat
}

// The reachability of a peer: the values of keepalive.state.
const (
	peerUnknown int32 = iota // no run of outcomes has reached its threshold yet
	peerDown
	peerUp
)

// keepalive is the reachability of one label set's peer from its OPTIONS
// keepalives, as the SIP address reachability services of session border
// controllers judge it: downAfter consecutive failed keepalives turn it
// down, upAfter consecutive successful ones up, and from the start
// (unknown) the first of the two runs to complete decides. The outcomes
// come in the order the tracker learns them: a 2xx or another final
// response when it is seen, a timeout 64*T1 after the request. run is the
// handling goroutine's; state is read at scrape.
type keepalive struct {
	run   int32 // > 0: that many successes in a row; < 0: failures
	state atomic.Int32
}

// observe counts one keepalive outcome, ok a success, under the
// thresholds downAfter and upAfter (1..MaxKeepaliveRun).
func (k *keepalive) observe(ok bool, downAfter, upAfter int) {
	switch {
	case ok:
		k.run = min(max(k.run, 0)+1, MaxKeepaliveRun)
	default:
		k.run = max(min(k.run, 0)-1, -MaxKeepaliveRun)
	}
	switch {
	case int(k.run) >= upAfter:
		k.state.Store(peerUp)
	case int(-k.run) >= downAfter:
		k.state.Store(peerDown)
	}
}

// How sessions end: the index of txNode.ended, and of endReasons.
const (
	endBye            = iota // a BYE from either side
	endMaxAge                // SessionMaxAge after the 2xx, no BYE seen
	endEvicted               // the dialog table was full
	endNoDialog              // a 481 to a request inside the dialog (RFC 3261 §12.2.1.2)
	endRequestTimeout        // a 408 to a request inside the dialog (RFC 3261 §12.2.1.2)
	numEnds
)

// Tracker follows SIP transactions (RFC 3261 §17), dialogs and
// registrations to count retransmissions, session attempts and outcomes,
// established sessions, registered addresses of record, OPTIONS
// keepalives, Reason causes (RFC 3326) and the RFC 6076 delays. It is a
// [prometheus.Collector] of the families sip_session_*, sip_sessions_*,
// sip_registration_*, sip_registrations_active, sip_peer_options_*,
// sip_peer_up, sip_*_retransmissions_total, sip_reason_causes_total and sip_stir_*
// (initial INVITEs by STIR/SHAKEN attestation and verstat), and of the
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
// (a 40-byte slot at under 3/4 load plus 16 bytes in its queue; measured
// by BenchmarkTrackerMemory), up to 117 when each has left a stale item
// in the queue (its wait restarted by a provisional response: measured by
// BenchmarkTrackerRingingMemory), and an answered dialog 67 bytes
// (BenchmarkTrackerDialogMemory); the tables hold at most MaxTransactions
// each.
//
// Transactions, dialogs, registrations and held responses each have one
// [expiryQueue]: transactions in two FIFO classes (an INVITE waiting for
// its final response, by its request or its last provisional response;
// any other, by its request or, an INVITE, its final response), answered
// dialogs by the time of their 2xx, held responses by capture time,
// registrations ordered by expiry. What ends or moves before its expiry
// (a dialog by BYE, a registration refreshed or removed, a held response
// matched, a transaction's timeout restarted) is deleted lazily and the
// queue compacted when such items outnumber the live ones, so that only
// the open entries count against the bounds.
//
// An INVITE transaction waits InviteTimeout for its final response, from
// the INVITE and again from each provisional response but 100 (RFC 3261
// §16.7 step 2, Timer C), and is kept NonInviteTimeout (64*T1) after it
// (RFC 6026 §8.7, Timer L; RFC 3261 §17.2.1, Timer H), so that the
// retransmissions of its final response, a 2xx whose ACK was lost
// included, count as such (sip_response_retransmissions_total) and not as
// unmatched.
//
// An answered dialog is an established session (sip_sessions_active) on
// each leg it was answered on (the two hosts its 2xx travels between,
// [TxEvent.Leg]: both sides of a proxy, which keeps Call-ID and tags, are
// two sessions, each under the label set of its own INVITE), until a BYE
// from either side on that leg, a 481 (Call/Transaction Does Not Exist)
// or 408 (Request Timeout) to a request inside it (RFC 3261 §12.2.1.2:
// the UAC ends the dialog), SessionMaxAge after its 2xx, or its eviction,
// when MaxTransactions other sessions are open; a BYE on no answered leg
// of its dialog (one that bypasses a proxy) ends them all. An initial
// INVITE or REGISTER challenged with 401 or 407 and its re-send with
// credentials are one attempt (see challengeEntry). A registration is kept per
// address of record ([AORKey] of the To URI, in the canonical form of RFC
// 3261 §10.3) in a table of at most MaxRegistrations until its expiry.
type Tracker struct {
	cfg TrackerConfig

	// Owned by the handling goroutine.
	table   *txTable[txEntry]     // open transactions
	txQ     expiryQueue[uint64]   // their keys by start: classes txInvite, txOther
	dialogs *txTable[dialogEntry] // answered dialogs waiting for their BYE
	dialogQ expiryQueue[uint64]   // their keys by the time of the 2xx
	regs    *txTable[regEntry]    // addresses of record registered
	regQ    expiryQueue[uint64]   // their keys by expiry
	held    earlyResponses
	// Challenges waiting for their re-send, or for the re-send's final
	// response (see challengeEntry), by retryKey.
	challenges *txTable[challengeEntry]
	challengeQ expiryQueue[uint64] // classes chWaiting, chOpen
	// inviteIDs are the Call-IDs of recent initial INVITEs, for the
	// exemplar of the timeouts.
	inviteIDs *inviteCallIDs
	nodeIndex map[*Node]uint32
	nodes     []*txNode
	lastNode  *Node
	lastIndex uint32
	clock     int64 // the tracker's time: the latest watermark or event time, ns
	publishAt int64 // the tracker's time of the next publish while messages come

	mu        sync.Mutex // guards published
	published []*txNode

	open, openDialogs                 atomic.Int64
	evicted, dialogsEvicted           atomic.Uint64
	openRegs                          atomic.Int64
	regsEvicted                       atomic.Uint64
	timedOutInvite, timedOutNonInvite atomic.Uint64
	unmatched, early                  atomic.Uint64

	trackerMetrics // the exposition's descriptions and histograms
}

// ErrTrackerConfig is wrapped by the configuration errors of NewTracker.
var ErrTrackerConfig = errors.New("bad transaction tracker configuration")

// NewTracker returns a tracker; it fails when MaxTransactions is below 1,
// InviteTimeout is not positive, or SessionMaxAge or MaxRegistrations is
// negative.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	return newTracker(cfg, newTrackerMetrics(cfg.SIP, cfg.ClassicHistograms)), nil
}

// check returns cfg with its defaults filled in, or the error of a value
// out of range.
func (cfg TrackerConfig) check() (TrackerConfig, error) {
	if cfg.SessionMaxAge == 0 {
		cfg.SessionMaxAge = DefaultSessionMaxAge
	}
	if cfg.MaxRegistrations == 0 {
		cfg.MaxRegistrations = DefaultMaxRegistrations
	}
	switch {
	case cfg.MaxTransactions < 1:
		return cfg, fmt.Errorf("max transactions %d: must be at least 1: %w", cfg.MaxTransactions, ErrTrackerConfig)
	case cfg.InviteTimeout <= 0:
		return cfg, fmt.Errorf("invite timeout %v: must be positive: %w", cfg.InviteTimeout, ErrTrackerConfig)
	case cfg.SessionMaxAge <= 0:
		return cfg, fmt.Errorf("session max age %v: must be positive: %w", cfg.SessionMaxAge, ErrTrackerConfig)
	case cfg.MaxRegistrations < 1:
		return cfg, fmt.Errorf("max registrations %d: must be at least 1: %w", cfg.MaxRegistrations, ErrTrackerConfig)
	case cfg.EarlyResponseWindow < 0:
		return cfg, fmt.Errorf("early response window %v: must not be negative: %w", cfg.EarlyResponseWindow, ErrTrackerConfig)
	}
	return cfg, nil
}

// newTracker returns a tracker of cfg (checked) that observes into the
// histograms of m.
func newTracker(cfg TrackerConfig, m trackerMetrics) *Tracker {
	t := &Tracker{
		cfg:            cfg,
		table:          newTxTable[txEntry](cfg.MaxTransactions),
		dialogs:        newTxTable[dialogEntry](cfg.MaxTransactions),
		regs:           newTxTable[regEntry](cfg.MaxRegistrations),
		challenges:     newTxTable[challengeEntry](cfg.MaxTransactions),
		nodeIndex:      map[*Node]uint32{},
		inviteIDs:      new(inviteCallIDs),
		trackerMetrics: m,
	}
	// Transactions leave their table only through their queue (expiry,
	// eviction, End); their items go stale when their expiry moves
	// (restart).
	t.txQ = newFIFOQueue(cfg.MaxTransactions, t.txLive, int64(cfg.InviteTimeout), int64(NonInviteTimeout))
	t.dialogQ = newFIFOQueue(cfg.MaxTransactions, t.dialogLive, int64(cfg.SessionMaxAge))
	t.regQ = newOrderedQueue(cfg.MaxRegistrations, t.regLive)
	// A re-send's challenge lasts as long as its transaction waits for a
	// final response: InviteTimeout (not restarted before its SRD is
	// measured, and not needed after) or NonInviteTimeout.
	t.challengeQ = newFIFOQueue(cfg.MaxTransactions, t.challengeLive, int64(NonInviteTimeout),
		int64(max(cfg.InviteTimeout, NonInviteTimeout)))
	maxHeld := cmp.Or(cfg.maxHeld, MaxHeldResponses)
	t.held.q = newFIFOQueue(maxHeld, heldLive, int64(cmp.Or(cfg.EarlyResponseWindow, EarlyResponseWindow)))
	t.held.keys = newTxTable[heldKey](maxHeld)
	return t
}

// Trackers are the shards of one transaction tracker: each follows the
// messages of its own share of the Call-IDs, on its own goroutine (every
// transaction, dialog and registration lies within one Call-ID, so each
// shard is exact by itself), and the exposition is one: a
// [prometheus.Collector] that sums the shards' counters at scrape, with
// histograms they share.
type Trackers struct {
	shards []*Tracker
	trackerMetrics
}

// NewTrackers returns a tracker of n shards (1 to 64). The bounds of cfg
// (MaxTransactions, MaxRegistrations) are shared: each shard may hold
// twice its share (2/n of the bound, rounded up, at most the bound), so
// that the shards, whose loads differ by chance, together evict no
// earlier than one tracker of the bound would, and hold at most twice
// the bound in a flood. Errors are those of [NewTracker].
func NewTrackers(cfg TrackerConfig, n int) (*Trackers, error) {
	if n < 1 || n > maxShards {
		return nil, fmt.Errorf("tracker shards %d: must be 1 to %d: %w", n, maxShards, ErrTrackerConfig)
	}
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	share := func(bound int) int { return min(bound, (2*bound+n-1)/n) }
	cfg.MaxTransactions = share(cfg.MaxTransactions)
	cfg.MaxRegistrations = share(cfg.MaxRegistrations)
	cfg.maxHeld = share(MaxHeldResponses)
	ts := &Trackers{trackerMetrics: newTrackerMetrics(cfg.SIP, cfg.ClassicHistograms)}
	for range n {
		ts.shards = append(ts.shards, newTracker(cfg, ts.trackerMetrics))
	}
	return ts, nil
}

// Shard returns shard i (0 <= i < n of [NewTrackers]).
func (ts *Trackers) Shard(i int) *Tracker { return ts.shards[i] }

// End ends every shard ([Tracker.End]); call it once their goroutines have
// stopped.
func (ts *Trackers) End() {
	for _, t := range ts.shards {
		t.End()
	}
}

// txLive reports whether a transaction's item is its current expiry: its
// entry counts its timeout from the item's time, in the item's class.
func (t *Tracker) txLive(class int, it *timed[uint64]) bool {
	e := t.table.get(it.v)
	return e != nil && e.start == it.at && e.class() == class
}

// dialogLive reports whether a dialog's item is that of an open dialog.
func (t *Tracker) dialogLive(_ int, it *timed[uint64]) bool {
	d := t.dialogs.get(it.v)
	return d != nil && d.answered == it.at
}

// regLive reports whether a registration's item is its current expiry.
func (t *Tracker) regLive(_ int, it *timed[uint64]) bool {
	r := t.regs.get(it.v)
	return r != nil && r.expires == it.at
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
	t.expire(now) // publishes, at most once per publishEvery
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
	t.expireChallenges(math.MaxInt64)
	t.publish()
}

// publishEvery is how far, in capture time, the tracker's time moves on
// between two publications of the open transactions, dialogs and
// registrations (sip_exporter_transactions and the like): their atomic
// stores are paid once per 100 ms, not per message or watermark step (a
// capture file or a busy link moves the time on with nearly every
// message). End publishes at once. Exemplars are recorded at the same
// cadence ([exemplar.record]).
const publishEvery = int64(100 * time.Millisecond)

// publish stores the numbers of open entries for the scrape.
func (t *Tracker) publish() {
	t.publishAt = t.clock + publishEvery
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
		t.observers(tn)
		t.nodes = append(t.nodes, tn)
		t.nodeIndex[n] = i
		t.mu.Lock()
		t.published = append(t.published, tn)
		t.mu.Unlock()
	}
	t.lastNode, t.lastIndex = n, i
	return i
}

// Observe handles one event. It is for a single goroutine (not
// concurrently with Advance or End), does not allocate in the steady state
// (the tables and queues grow by doubling up to their bound) and takes no
// lock except when a node is first seen. It records no exemplar: see
// [Tracker.ObserveCallID].
func (t *Tracker) Observe(ev *TxEvent) { t.ObserveCallID(ev, nil) }

// ObserveCallID is [Tracker.Observe] of an event whose message has the
// Call-ID id (as seen on the wire, cut to [CallIDBytes]): the exemplar of
// the series it counts in (a failure outcome, a timeout, a delay or a
// duration); nil records none. id is read during the call only: a
// response held for its request ([TrackerConfig.EarlyResponseWindow]) is
// handled when the request comes, under the request's Call-ID, which is
// its own.
func (t *Tracker) ObserveCallID(ev *TxEvent, id *CallID) {
	if ev.Time > t.clock {
		t.clock = ev.Time
		t.expire(t.clock)
	}
	idx := t.nodeOf(ev.Node)
	if ev.Flags&TxResponse != 0 {
		t.response(ev, t.nodes[idx], id)
	} else {
		t.request(ev, idx, id)
	}
}

func (t *Tracker) request(ev *TxEvent, idx uint32, id *CallID) {
	mine := t.nodes[idx]
	if t.table.get(ev.Key) != nil {
		mine.reqRetrans[ev.Method].Add(1)
		return
	}
	class := txOther
	if ev.Method == MethodINVITE {
		class = txInvite
	}
	if old, ok := t.txQ.push(class, timed[uint64]{ev.Time, ev.Key}); ok {
		t.table.del(old.v) // the one that started first
		t.evicted.Add(1)
	}
	e := txEntry{start: ev.Time, node: idx, method: ev.Method}
	// A REGISTER belongs to no dialog (RFC 3261 §10), whatever its To:
	// its Dialog is its address of record.
	if ev.Flags&TxToTag != 0 && ev.Method != MethodCANCEL && ev.Method != MethodREGISTER {
		e.flags |= txInDialog
	}
	switch {
	case ev.Method == MethodINVITE && ev.Flags&TxToTag == 0:
		e.flags |= txInitial
		mine.stir.observe(ev.STIR)
		if !t.resend(ev, &e) {
			mine.attempts.Add(1)
		}
		t.inviteIDs.put(ev.Key, id)
	case ev.Method == MethodACK:
		e.flags |= txNoReply
	case ev.Method == MethodREGISTER:
		if !t.resend(ev, &e) {
			mine.regAttempts.Add(1)
		}
		if ev.Flags&TxUnregister != 0 {
			e.flags |= txUnregister
		}
	}
	t.table.put(ev.Key, e)
	if t.held.waiting(ev.Key) {
		t.matchHeld(ev.Key, id)
	}
	if ev.Method == MethodBYE || ev.Method == MethodCANCEL {
		t.causes(ev, mine)
	}
	if ev.Method == MethodBYE {
		t.hangUp(ev, endBye, id)
	}
}

func (t *Tracker) causes(ev *TxEvent, mine *txNode) {
	if ev.Q850Cause >= 0 {
		mine.q850[ev.Q850Cause].Add(1)
	}
	if sipstatus.Valid(int(ev.SIPCause)) {
		mine.sipCause[int(ev.SIPCause)-sipstatus.MinCode].Add(1)
	}
}

func (t *Tracker) response(ev *TxEvent, mine *txNode, id *CallID) {
	code := int(ev.Code)
	if !sipstatus.Valid(code) {
		return
	}
	e := t.table.get(ev.Key) // updated in place: nothing below puts into or deletes from t.table
	if e == nil {
		t.hold(ev)
		return
	}
	fp := uint32(mix64(uint64(ev.ToTag)<<16|uint64(code))) | 1
	if slices.Contains(e.seen[:], fp) {
		mine.respRetrans.add(code, ev.Method)
	} else {
		e.seen[e.next] = fp
		e.next = (e.next + 1) % seenSlots
		t.firstResponse(ev, e, mine, id)
	}
	// A provisional response but 100, repeated or not, restarts the wait
	// of an INVITE for its final response, as it resets a proxy's Timer C
	// (RFC 3261 §16.7 step 2): a UAS that rings longer sends one every
	// minute (§13.3.1.1). Not while the SRD of an initial INVITE is still
	// to be measured from its request (a provisional below 180, none of
	// which is registered, before any 18x).
	if code > 100 && code < 200 && e.class() == txInvite && ev.Time > e.start &&
		(e.flags&txInitial == 0 || e.flags&txSRD != 0) {
		t.restart(ev.Key, e, ev.Time)
	}
}

// firstResponse counts a response of transaction e that is not a
// retransmission: its outcome, delays, session, registration or
// keepalive.
func (t *Tracker) firstResponse(ev *TxEvent, e *txEntry, mine *txNode, id *CallID) {
	code := int(ev.Code)
	t.causes(ev, mine)
	owner := t.nodes[e.node]
	final := code >= 200
	// A 401 or 407 to an initial INVITE or a REGISTER is no outcome: the
	// request is re-sent with credentials, and the attempt's outcome and
	// delay are those of the re-send, measured from the first request
	// (firstRequest).
	challenge := final && e.flags&txFinal == 0 && isChallenge(code) &&
		(e.flags&txInitial != 0 || e.method == MethodREGISTER)
	if e.flags&txInitial != 0 {
		if e.flags&txSRD == 0 && (code >= 180 && code < 300) {
			owner.srd[0].observe(ev.Time-t.firstRequest(ev, e), id, ev.Time)
			e.flags |= txSRD
		}
		if final && e.flags&txFinal == 0 && !challenge {
			owner.outcomes[code-sipstatus.MinCode].Add(1)
			if code >= 300 {
				owner.outcomeExemplar(code).record(id, 1, ev.Time)
			}
			if e.flags&txSRD == 0 {
				owner.srd[1].observe(ev.Time-t.firstRequest(ev, e), id, ev.Time)
				e.flags |= txSRD
			}
		}
		if code >= 200 && code < 300 {
			t.answered(ev, e.node)
		}
	}
	if !final || e.flags&txFinal != 0 {
		return
	}
	switch {
	case challenge:
		t.challenged(ev, e, t.firstRequest(ev, e))
	case e.flags&txInitial != 0:
		t.settle(ev, e)
	}
	delay := ev.Time - e.start
	switch e.method {
	case MethodREGISTER:
		switch {
		case challenge:
		case code < 300:
			owner.rrd[0].observe(ev.Time-t.firstRequest(ev, e), id, ev.Time)
			t.settle(ev, e)
			t.registered(ev, e)
		default:
			owner.rrd[1].observe(ev.Time-t.firstRequest(ev, e), id, ev.Time)
			t.settle(ev, e)
		}
	case MethodBYE:
		owner.sdd.observe(delay, id, ev.Time)
	case MethodOPTIONS:
		t.keepaliveOutcome(owner, code < 300, ev.Time)
	}
	// A 481 or 408 to a request inside a dialog: the UAC ends the dialog
	// (RFC 3261 §12.2.1.2), the far end having lost it (a restart) or not
	// answering. The response's dialog is its request's.
	if e.flags&txInDialog != 0 {
		switch code {
		case 481:
			t.hangUp(ev, endNoDialog, id)
		case 408:
			t.hangUp(ev, endRequestTimeout, id)
		}
	}
	e.flags |= txFinal
	if e.method == MethodINVITE { // kept 64*T1 more: Timer L, Timer H
		t.restart(ev.Key, e, max(ev.Time, e.start))
	}
}

// restart counts the timeout of transaction key (entry e, whose flags are
// set already) from at, in its class: its item is pushed anew and the
// former one left stale, deleted lazily.
func (t *Tracker) restart(key uint64, e *txEntry, at int64) {
	e.start = at
	t.txQ.deleted()
	t.txQ.push(e.class(), timed[uint64]{at, key}) // no eviction: one fewer is live
}

// earlyResponses holds, in capture-time order, the responses whose
// request has not been seen yet (see [TrackerConfig.EarlyResponseWindow]),
// at most maxHeld of them and heldPerKey of one transaction; one that is
// done (matched, or given up) is a stale item of the queue. keys finds
// those of a transaction: by its key, the push numbers (seq) of its held
// responses in their order; the queue is in seq order (pushed so, and
// compaction keeps the order), so an item is found by binary search.
type earlyResponses struct {
	q    expiryQueue[heldResponse]
	keys *txTable[heldKey]
	seq  uint64 // of the next response held
}

// heldResponse is a response held for its request.
type heldResponse struct {
	ev   TxEvent
	seq  uint64
	done bool // matched or given up: no longer waiting
}

// heldKey is the held responses of one transaction, oldest first.
type heldKey struct {
	n   uint8
	seq [heldPerKey]uint64
}

func heldLive(_ int, it *timed[heldResponse]) bool { return !it.v.done }

func (h *earlyResponses) waiting(key uint64) bool { return h.keys.len() > 0 && h.keys.get(key) != nil }

// item returns the held response numbered seq, which is live.
func (h *earlyResponses) item(seq uint64) *timed[heldResponse] {
	lo, hi := 0, h.q.count(0)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.q.nth(0, m).v.seq < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return h.q.nth(0, lo)
}

// dropOldest takes the held response of key numbered seq out of keys:
// its oldest, as responses are given up and expire in their order (the
// search keeps keys right whatever the order).
func (h *earlyResponses) dropOldest(key, seq uint64) {
	k := h.keys.get(key)
	if k == nil {
		return
	}
	for i := range int(k.n) {
		if k.seq[i] == seq {
			copy(k.seq[i:], k.seq[i+1:k.n])
			k.n--
			break
		}
	}
	if k.n == 0 {
		h.keys.del(key)
	}
}

// hold keeps a response without a transaction for its request. When
// maxHeld wait already the oldest is given up, and so is the oldest of
// its transaction when heldPerKey of it wait.
func (t *Tracker) hold(ev *TxEvent) {
	h := &t.held
	seq := h.seq
	h.seq++
	if old, ok := h.q.push(0, timed[heldResponse]{ev.Time, heldResponse{ev: *ev, seq: seq}}); ok {
		h.dropOldest(old.v.ev.Key, old.v.seq)
		t.unheld(&old.v.ev)
	}
	k := h.keys.get(ev.Key)
	if k == nil {
		h.keys.put(ev.Key, heldKey{})
		k = h.keys.get(ev.Key)
	}
	if k.n == heldPerKey {
		it := h.item(k.seq[0])
		it.v.done = true
		h.q.deleted()
		h.dropOldest(ev.Key, it.v.seq)
		t.unheld(&it.v.ev)
		k = h.keys.get(ev.Key) // dropOldest may have deleted it: not with heldPerKey > 1
	}
	k.seq[k.n] = seq
	k.n++
}

// unheld counts a held response whose request did not come.
func (t *Tracker) unheld(ev *TxEvent) {
	t.unmatched.Add(1)
	t.causes(ev, t.nodes[t.nodeOf(ev.Node)])
}

// matchHeld handles, in their order, the held responses to the transaction
// key, which has just been opened by a request with the Call-ID id (a
// response's own, as they share the transaction). Handling them holds
// nothing (their transaction is open).
func (t *Tracker) matchHeld(key uint64, id *CallID) {
	h := &t.held
	k, _ := h.keys.del(key)
	var evs [heldPerKey]TxEvent
	for i, seq := range k.seq[:k.n] {
		it := h.item(seq)
		it.v.done = true
		h.q.deleted()
		evs[i] = it.v.ev
	}
	for i := range k.n {
		t.early.Add(1)
		t.response(&evs[i], t.nodes[t.nodeOf(evs[i].Node)], id)
	}
}

// latest stores ns in v unless v holds a later time.
func latest(v *atomic.Int64, ns int64) {
	if ns > v.Load() {
		v.Store(ns)
	}
}

// registered handles the first 2xx to a REGISTER transaction e: the
// address of record ev.AOR() is registered until the expiry the 2xx grants,
// or removed by an expiry of 0. A 2xx that grants none removes it when
// the request removed bindings (TxUnregister), else changes nothing. A
// refresh leaves the former expiry in the queue, stale.
func (t *Tracker) registered(ev *TxEvent, e *txEntry) {
	aor := ev.AOR()
	if aor == 0 {
		return
	}
	exp := int64(ev.Expires)
	if exp < 0 {
		if e.flags&txUnregister == 0 {
			return
		}
		exp = 0
	}
	expires := ev.Time + exp*int64(time.Second)
	if r := t.regs.get(aor); r != nil {
		t.nodes[r.node].registrations.Add(-1)
		switch {
		case exp == 0:
			t.regs.del(aor)
			t.regQ.deleted()
			return
		case r.expires != expires:
			r.expires, r.node = expires, e.node
			t.regQ.deleted()
			t.regQ.push(0, timed[uint64]{expires, aor}) // no eviction: one fewer is live
		default: // the same expiry: its item stands
			r.node = e.node
		}
	} else {
		if exp == 0 {
			return
		}
		if old, ok := t.regQ.push(0, timed[uint64]{expires, aor}); ok { // the one expiring soonest
			t.dropReg(old.v)
			t.regsEvicted.Add(1)
		}
		t.regs.put(aor, regEntry{expires: expires, node: e.node})
	}
	t.nodes[e.node].registrations.Add(1)
}

// dropReg forgets the registration of an address of record, taken from
// its queue.
func (t *Tracker) dropReg(aor uint64) {
	r, _ := t.regs.del(aor)
	t.nodes[r.node].registrations.Add(-1)
}

// answered remembers the session of a 2xx to an initial INVITE, ev: one
// per fork (dialog) and leg (the two hosts it travels between, in either
// direction: both sides of a proxy are two sessions, each under the label
// set of its own INVITE), until its BYE. The leg takes the first free
// slot of its dialog; a leg with a session in a slot before it has one
// already (a second 2xx on one leg and dialog: another INVITE transaction
// of it; one behind a slot freed by a BYE is not looked for, as a dialog's
// 2xx all come before its BYE). A dialog answered on maxLegs legs already
// gets no more. The first leg costs one lookup, as a dialog did before
// legs.
func (t *Tracker) answered(ev *TxEvent, node uint32) {
	free := -1
	for i := range maxLegs {
		d := t.dialogs.get(legKey(ev.Dialog, i))
		if d == nil {
			free = i
			break
		}
		if d.leg == ev.Leg {
			return
		}
	}
	if free < 0 {
		return
	}
	key := legKey(ev.Dialog, free)
	if old, ok := t.dialogQ.push(0, timed[uint64]{ev.Time, key}); ok { // the one answered first
		t.endDialog(old.v, endEvicted)
		t.dialogsEvicted.Add(1)
	}
	t.dialogs.put(key, dialogEntry{answered: ev.Time, node: node, leg: ev.Leg})
	t.nodes[node].sessions.Add(1)
}

// endDialog ends the session of a dialog taken from its queue.
func (t *Tracker) endDialog(key uint64, reason int) {
	d, _ := t.dialogs.del(key)
	n := t.nodes[d.node]
	n.sessions.Add(-1)
	n.ended[reason].Add(1)
}

// hangUp ends, before their expiry, the sessions of the dialog of ev (a
// BYE, or a 481 or 408 to a request inside it) for reason: the session
// of ev's leg, the BYE's path; when none is open on that leg (a BYE that
// bypasses a proxy that did not record-route, or whose leg was seen under
// other addresses), every session of the dialog, since the dialog has
// ended. A BYE observes each session's duration.
func (t *Tracker) hangUp(ev *TxEvent, reason int, id *CallID) {
	for i := range maxLegs {
		if d := t.dialogs.get(legKey(ev.Dialog, i)); d != nil && d.leg == ev.Leg {
			t.hangUpLeg(ev, legKey(ev.Dialog, i), reason, id)
			return
		}
	}
	for i := range maxLegs {
		t.hangUpLeg(ev, legKey(ev.Dialog, i), reason, id)
	}
}

// hangUpLeg ends the session kept under key, when one is open.
func (t *Tracker) hangUpLeg(ev *TxEvent, key uint64, reason int, id *CallID) {
	d, ok := t.dialogs.del(key)
	if !ok {
		return
	}
	t.dialogQ.deleted()
	n := t.nodes[d.node]
	n.sessions.Add(-1)
	n.ended[reason].Add(1)
	if reason == endBye {
		n.duration.observe(ev.Time-d.answered, id, ev.Time)
	}
}

// expire ends the transactions whose timeout has passed at now, the
// sessions answered SessionMaxAge or longer before now and the
// registrations whose expiry is at or before now.
func (t *Tracker) expire(now int64) {
	t.expireTx(now)
	t.expireChallenges(now)
	for t.dialogQ.due(0, now) {
		if it, live := t.dialogQ.pop(0); live {
			t.endDialog(it.v, endMaxAge)
		}
	}
	for t.regQ.due(0, now) {
		if it, live := t.regQ.pop(0); live {
			t.dropReg(it.v)
		}
	}
	if now >= t.publishAt {
		t.publish()
	}
}

// expireTx ends the transactions whose timeout has passed at now and the
// wait of the responses held for the early-response window or longer.
func (t *Tracker) expireTx(now int64) {
	for t.held.q.due(0, now) {
		if it, live := t.held.q.pop(0); live {
			t.held.dropOldest(it.v.ev.Key, it.v.seq)
			t.unheld(&it.v.ev)
		}
	}
	for class := range 2 {
		for t.txQ.due(class, now) {
			if it, live := t.txQ.pop(class); live {
				e, _ := t.table.del(it.v)
				t.timedOut(it.v, &e, class == txInvite)
			}
		}
	}
}

// timedOut counts the expiry of transaction key, entry e.
func (t *Tracker) timedOut(key uint64, e *txEntry, invite bool) {
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
		n.timeoutEx.record(t.inviteIDs.get(key), 1, t.clock)
	case e.method == MethodREGISTER:
		n.regTimeouts.Add(1)
	case e.method == MethodOPTIONS:
		// It timed out at its start plus Timer F, or, ended by End, at the
		// tracker's time.
		t.keepaliveOutcome(n, false, min(e.start+int64(NonInviteTimeout), t.clock))
	}
}

// keepaliveOutcome counts the outcome of an OPTIONS transaction of n, a
// 2xx (ok) or not, at ns: its time stamp and, for a configured peer, the
// peer's reachability under the thresholds of the peer file in force.
func (t *Tracker) keepaliveOutcome(n *txNode, ok bool, ns int64) {
	if ok {
		latest(&n.optionsOK, ns)
	} else {
		latest(&n.optionsFailed, ns)
	}
	if peer := n.node.Peer(); peer != "" && peer != OtherPeer {
		down, up := t.cfg.SIP.Peers().Keepalive(peer)
		n.keepalive.observe(ok, down, up)
	}
}
