package merge

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says how the merge waits for an [Input].
type Kind uint8

const (
	// Exact inputs (capture files read as fast as possible) are waited
	// for: nothing is released until every open exact input has handed
	// over a message at least as late, as mergecap merges files.
	Exact Kind = iota
	// Live inputs (interfaces, HEP, files paced in real time) are merged
	// with a bounded lateness: a message is released once the exporter's
	// wall clock has passed its (clock-corrected) capture time by
	// [Config.Lateness].
	Live
)

// Config configures a [Merger].
type Config struct {
	// Lateness is how long after its capture time a message of a live
	// input may reach the merge and still be put in order: it must cover
	// the AF_PACKET block timeout and a HEP agent's batching. Later
	// messages are still handed on at once, and counted as late.
	Lateness time.Duration
	// Live makes the merge keep time by the wall clock even while no live
	// input is open (HEP over TCP only, between connections). Adding a
	// live input sets it too.
	Live bool
	// QueueSize is how many messages one input holds for the merge (a
	// power of two is used, at least 2), unless it is given its own size.
	// A full exact input makes its producer wait; a full live input makes
	// it wait up to FullWait, then drops the message and counts it. A live
	// input half full wakes the merge.
	QueueSize int
	// FullWait is how long the producer of a full live input waits for
	// room before it drops the message: time in which the merge, starved
	// of CPU for a moment, catches up while the source's own buffer (the
	// kernel ring, the socket buffer) holds what comes meanwhile. 0 drops
	// at once.
	FullWait time.Duration
	// MaxPending bounds the messages held in the merge for ordering; past
	// it the earliest is handed on before its time.
	MaxPending int
}

// The time model. Every tolerance of the pipeline derives from the one
// lateness L ([Config.Lateness], --capture.max-lateness):
//
//	clock threshold  C = L/10, at most 100 ms  a live clock is corrected once it is off by more
//	skew window      W = 2C                    two clocks left uncorrected disagree by at most W:
//	                                           responses held for their request (early), copies removed (dedup)
//	read interval    R = C/10                  a live reader that found little waits this long before it
//	                                           reads again (the HEP listener); its time of receipt is one
//	                                           reading of the wall clock per read, at most R late
//	release step     S = 5R = C/2              the merge wakes on the ticks of a grid of S (multiples of R
//	                                           since the epoch), releasing a stretch of S at a time
//
// A clock within C of the exporter's is merged on its own times; two such
// clocks are at most 2C = W apart, which the early-response window and
// the dedup window cover, so that no skew is neither corrected nor
// matched. C must exceed the AF_PACKET block timeout (a right kernel clock
// whose packets waited in the ring is not "corrected"), and W stays below
// T1 = 500 ms (a SIP retransmission is never a copy). R keeps what a
// reader's wait adds to a clock's apparent offset a tenth of C, and the
// reader's and the merge's ticks fall together, so that a moderate source
// costs the process one wake-up per R, not one per message: at the
// default lateness R = 10 ms and S = 50 ms.
const maxClockThreshold = 100 * time.Millisecond

// ClockThreshold returns C of the time model: how far a live clock's
// offset from the exporter's wall clock may be before the merge corrects
// it: a tenth of the lateness, at most 100 ms.
func (c Config) ClockThreshold() time.Duration {
	return min(c.Lateness/10, maxClockThreshold)
}

// SkewWindow returns W of the time model, twice [Config.ClockThreshold]:
// the largest disagreement, in capture time, between two clocks that the
// merge leaves uncorrected. A response may precede its request by up to W
// (held for it), and a copy of a message from another clock may come up to
// W apart (the least dedup window).
func (c Config) SkewWindow() time.Duration { return 2 * c.ClockThreshold() }

// ReadInterval returns R of the time model, a tenth of
// [Config.ClockThreshold] (10 ms at the default lateness), at least 1 µs:
// how long a live reader that found little to read waits before it reads
// again, so that a moderate source is read in batches. A reader that
// waits until the next multiple of R since the Unix epoch wakes with the
// merge, whose wake-ups fall on multiples of 5R.
func (c Config) ReadInterval() time.Duration {
	return max(c.ClockThreshold()/10, time.Microsecond)
}

// releaseStep returns S of the time model, 5R: the step of the grid of
// times the merge wakes at while live messages are pending.
func (c Config) releaseStep() time.Duration { return 5 * c.ReadInterval() }

// untilTick returns the time from now (ns since the Unix epoch) to the
// next multiple of step after it.
func untilTick(now int64, step time.Duration) time.Duration {
	s := int64(step)
	return time.Duration(s - (now%s+s)%s)
}

// DefaultConfig returns the defaults of the exporter's flags.
func DefaultConfig() Config {
	return Config{Lateness: DefaultLateness, QueueSize: 1 << 14, MaxPending: 1 << 18, FullWait: DefaultFullWait}
}

// DefaultFullWait is the default of [Config.FullWait]: a tenth of the
// lateness, so that a message that waited is still in time.
const DefaultFullWait = 100 * time.Millisecond

// DefaultLateness is the default of [Config.Lateness]: well above the
// 64 ms TPACKET_V3 block timeout and the batching of HEP agents.
const DefaultLateness = time.Second

// idleTick is how often the merge moves its watermark on while live
// inputs are quiet, so that the consumer's timeouts still expire.
const idleTick = time.Second

// Sink receives the merged stream on the merge's goroutine.
type Sink[E any] interface {
	// Message receives one message with its capture time t (ns since the
	// Unix epoch; corrected by its clock's offset on a live input), in
	// time order, unless late is set: then the watermark had passed t
	// when the message reached the merge.
	Message(t int64, e *E, late bool)
	// Advance says that every message up to watermark w (ns) has been
	// handed on, bar late ones: the consumer's time is now w. w is
	// math.MaxInt64 once every input of a merge without live inputs has
	// ended: nothing more will come.
	Advance(w int64)
}

// Merger puts the messages of several inputs into one stream in capture
// time order, then hands them to a [Sink] on its own goroutine ([Merger.Run]).
//
// Each input is a single-producer queue: pushing takes no lock and does
// not allocate. The merge moves each queue's messages, in the order they
// were pushed, into a pending queue of that input (a growable ring owned
// by the merge goroutine), and releases them by a k-way merge of the
// pending queues' heads (a small heap of inputs, not of messages), while
// the watermark has passed the earliest head: the smallest of the latest
// time of every open exact input and, with live inputs, the wall clock
// less [Config.Lateness]. Every input is in capture order by itself (a
// file's reader clamps its times, a live clock never goes back), so the
// merged stream is in time order; an input that mixes clocks (HEP agents
// over one UDP socket) keeps its own order, within the skew window of the
// time model. A message that reaches the merge after the watermark passed
// its time is handed on at once, as late. It sleeps while it has nothing to do:
// until the first tick of the release grid (S of the time model, 50 ms at
// the default lateness) after the earliest pending live message is due, so
// that one wake-up releases many and falls together with the other
// shards' and the readers' (see [Config.ReadInterval]); until a producer
// wakes it (when it waits for any data, or when a live queue is half
// full); and with live inputs at least once a second to move the
// watermark on.
type Merger[E any] struct {
	cfg  Config
	sink Sink[E]
	live atomic.Bool

	mu      sync.Mutex // guards inputs and sealed
	inputs  []*Input[E]
	sources *sourceSet // shared with the other shards of a Group
	sealed  bool
	changed atomic.Bool // inputs changed since the merge last copied them

	waiting  atomic.Bool   // the merge sleeps until a producer wakes it
	sleeping atomic.Bool   // the merge sleeps on its timer: wake it only for a half-full queue
	wake     chan struct{} // capacity 1
	_        [64]byte      // producers read the above per message; the merge writes the below

	// Owned by the merge goroutine.
	ready    []*lane[E] // lanes with pending messages: a heap by their earliest
	npending int        // messages in the inputs' pending queues
	nextID   uint64
	wm       int64 // watermark handed to Advance
	end      int64 // latest time drained from an exact input
	released atomic.Int64
	pending  atomic.Int64
}

// New returns a merger that hands the merged stream to sink. It fails when
// cfg is out of range.
func New[E any](cfg Config, sink Sink[E]) (*Merger[E], error) {
	switch {
	case cfg.Lateness <= 0:
		return nil, fmt.Errorf("merge lateness %v: must be positive", cfg.Lateness)
	case cfg.QueueSize < 1:
		return nil, fmt.Errorf("merge queue size %d: must be at least 1", cfg.QueueSize)
	case cfg.MaxPending < 1:
		return nil, fmt.Errorf("merge max pending %d: must be at least 1", cfg.MaxPending)
	case cfg.FullWait < 0 || cfg.FullWait >= cfg.Lateness:
		return nil, fmt.Errorf("merge full wait %v: must be at least 0 and below the lateness %v", cfg.FullWait, cfg.Lateness)
	}
	return newMerger(cfg, sink, &sourceSet{byName: map[string]*Source{}}), nil
}

func newMerger[E any](cfg Config, sink Sink[E], sources *sourceSet) *Merger[E] {
	m := &Merger[E]{cfg: cfg, sink: sink, sources: sources, wake: make(chan struct{}, 1), wm: math.MinInt64, end: math.MinInt64}
	m.released.Store(math.MinInt64)
	m.live.Store(cfg.Live)
	return m
}

// Source returns the counters of the named packet source, made on first
// use; the inputs of one source (a HEP listener's connections) share them.
func (m *Merger[E]) Source(name string) *Source { return m.sources.source(name) }

// Pending returns the messages held for ordering.
func (m *Merger[E]) Pending() int64 { return m.pending.Load() }

// sourceSet holds the packet sources of a merger, or of the shards of a
// [Group].
type sourceSet struct {
	mu      sync.Mutex
	sources []*Source
	byName  map[string]*Source
}

func (ss *sourceSet) source(name string) *Source {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s := ss.byName[name]; s != nil {
		return s
	}
	s := &Source{name: name, offsets: map[string]*atomic.Int64{}}
	ss.byName[name] = s
	ss.sources = append(ss.sources, s)
	return s
}

// sorted returns the sources by name.
func (ss *sourceSet) sorted() []*Source {
	ss.mu.Lock()
	sources := slices.Clone(ss.sources)
	ss.mu.Unlock()
	slices.SortFunc(sources, func(a, b *Source) int { return strings.Compare(a.name, b.name) })
	return sources
}

// Input adds an input of kind k counting into s, whose queue holds size
// messages (rounded up to a power of two; 0 means [Config.QueueSize]). Its
// producer calls Push from one goroutine at a time and Close when it is
// done. Adding an input to a sealed merger panics.
func (m *Merger[E]) Input(s *Source, k Kind, size int) *Input[E] {
	if size <= 0 {
		size = m.cfg.QueueSize
	}
	n := 2
	for n < size {
		n <<= 1
	}
	in := &Input[E]{m: m, src: s, kind: k, buf: make([]item[E], n), mask: uint64(n - 1),
		room: make(chan struct{}, 1), threshold: int64(m.cfg.ClockThreshold())}
	if k == Live {
		m.live.Store(true)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sealed {
		panic("merge: Input after Seal")
	}
	m.nextID++
	in.id = m.nextID
	m.inputs = append(m.inputs, in)
	m.changed.Store(true)
	return in
}

// Seal says that no input will be added: once every input is closed and
// its messages handed on, Run returns.
func (m *Merger[E]) Seal() {
	m.mu.Lock()
	m.sealed = true
	m.mu.Unlock()
	m.changed.Store(true)
	m.signal()
}

// signal wakes the merge if it waits for data.
func (m *Merger[E]) signal() {
	if m.waiting.Load() {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// Watermark returns the watermark last handed to the sink (ns; MinInt64
// before the first).
func (m *Merger[E]) Watermark() int64 { return m.released.Load() }

// Run merges until ctx is done, or, once sealed, until every input is
// closed and drained. Call it on one goroutine, once every input that
// exists from the start has been added: an exact input added later may
// find the others' messages handed on already.
func (m *Merger[E]) Run(ctx context.Context) {
	var inputs []*Input[E]
	sealed, started := false, false
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if m.changed.Swap(false) {
			inputs, sealed, started = m.prune(inputs)
		}
		// Only live inputs need the wall clock: a merge of exact inputs
		// (report's files) reads none.
		var now int64
		if m.live.Load() {
			now = time.Now().UnixNano()
		}
		drained := m.drain(inputs)
		w, open, starved := m.watermark(inputs, now)
		released := m.release(w)
		switch {
		case w > m.wm && w != math.MaxInt64:
			m.wm = w
			m.released.Store(w)
			m.sink.Advance(w)
		case w == math.MaxInt64 && m.npending == 0 && !open && (started || sealed):
			// Every input has ended (files read as fast as possible):
			// time is over for whatever is still open. The time of the
			// last message or progress comes first, as while an input was
			// open: it may have closed in the same round as it got there.
			// A merger that has had no input yet (HEP over TCP alone,
			// before its first connection) waits for one, unless sealed.
			if m.end > m.wm && m.wm != math.MaxInt64 {
				m.wm = m.end
				m.released.Store(m.end)
				m.sink.Advance(m.end)
			}
			if m.wm != math.MaxInt64 {
				m.wm = math.MaxInt64
				m.released.Store(w)
				m.sink.Advance(w)
			}
			if sealed {
				return
			}
		}
		if drained > 0 || released > 0 {
			continue
		}
		// Nothing to do: sleep until a producer wakes us (waiting for an
		// exact input, or for any data), until the earliest pending live
		// message is due, or until the next idle tick.
		var wait time.Duration = -1
		if m.live.Load() {
			// The first tick of the release grid after the earliest
			// pending message is due, or after the idle tick.
			at := now + int64(idleTick)
			if len(m.ready) > 0 && !starved {
				at = max(min(at, m.ready[0].front().t+int64(m.cfg.Lateness)), now)
			}
			wait = time.Duration(at-now) + untilTick(at, m.cfg.releaseStep())
		}
		// Producers wake us only when no live message is pending (or an
		// exact input is awaited): under steady live traffic the merge
		// wakes by its timer, not once per message.
		wantWake := m.npending == 0 || starved || !m.live.Load()
		if wantWake {
			m.waiting.Store(true)
			if m.anyQueued(inputs) || m.changed.Load() {
				m.waiting.Store(false)
				continue
			}
		} else {
			m.sleeping.Store(true)
			if m.anyHalfFull(inputs) {
				m.sleeping.Store(false)
				continue
			}
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			m.waiting.Store(false)
			m.sleeping.Store(false)
			return
		case <-m.wake:
		case <-timer.C:
		}
		m.waiting.Store(false)
		m.sleeping.Store(false)
		timer.Stop() // since Go 1.23 no stale tick is left in timer.C
	}
}

// prune drops inputs that are closed and empty from the merger's list and
// returns a copy of the list in inputs' storage, whether the merger is
// sealed, and whether it has had any input.
func (m *Merger[E]) prune(inputs []*Input[E]) (list []*Input[E], sealed, started bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.inputs[:0]
	for _, in := range m.inputs {
		if !in.done() {
			kept = append(kept, in)
		}
	}
	clear(m.inputs[len(kept):])
	m.inputs = kept
	return append(inputs[:0], kept...), m.sealed, m.nextID > 0
}

// anyHalfFull reports whether any input's queue is at least half full.
func (m *Merger[E]) anyHalfFull(inputs []*Input[E]) bool {
	for _, in := range inputs {
		if in.tail.Load()-in.head.Load() >= uint64(len(in.buf)/2) {
			return true
		}
	}
	return false
}

// anyQueued reports whether any input has a message waiting.
func (m *Merger[E]) anyQueued(inputs []*Input[E]) bool {
	for _, in := range inputs {
		if in.head.Load() != in.tail.Load() {
			return true
		}
	}
	return false
}

// drain moves queued messages into their inputs' pending queues. An
// exact input is drained while it is the one holding the watermark back,
// or while fewer than half of MaxPending messages are pending, so that a
// fast file cannot fill memory while a slow one lags.
func (m *Merger[E]) drain(inputs []*Input[E]) int {
	n := 0
	soft := max(m.cfg.MaxPending/2, 1)
	for _, in := range inputs {
		// The queue's indices are read once and head stored once per
		// run, not per message: each is a cache line the other side
		// writes.
		h, t := in.head.Load(), in.tail.Load()
		start := h
		for k := 0; k < 4096 && h != t; k++ {
			if in.kind == Exact && in.drained && m.npending >= soft && in.last > m.laggard(inputs) {
				break
			}
			it := &in.buf[h&in.mask]
			if !in.drained || it.t > in.last {
				in.last = it.t
			}
			in.drained = true
			if in.kind == Exact && it.t > m.end {
				m.end = it.t
			}
			switch {
			case it.mark: // progress: only in.last moves
			case it.t < m.wm:
				in.src.late.Add(1)
				m.sink.Message(it.t, &it.e, true)
			default:
				l := in.lane(it.lane)
				l.pend(it)
				m.npending++
				if l.readyAt < 0 {
					m.readyPush(l)
				}
			}
			h++
		}
		if h == start {
			continue
		}
		in.head.Store(h)
		n += int(h - start)
		if in.waiting.Load() {
			select {
			case in.room <- struct{}{}:
			default:
			}
		}
	}
	if n > 0 {
		m.pending.Store(int64(m.npending))
	}
	return n
}

// laggard returns the latest time of the exact input furthest behind.
func (m *Merger[E]) laggard(inputs []*Input[E]) int64 {
	l := int64(math.MaxInt64)
	for _, in := range inputs {
		if in.kind == Exact && !in.done() {
			if !in.drained {
				return math.MinInt64
			}
			l = min(l, in.last)
		}
	}
	return l
}

// watermark returns the time up to which messages may be released: it
// reports whether any input is still open, and whether an open exact input
// has nothing queued and so holds the merge back (starved).
func (m *Merger[E]) watermark(inputs []*Input[E], now int64) (w int64, open, starved bool) {
	w = math.MaxInt64
	for _, in := range inputs {
		if in.done() {
			continue
		}
		open = true
		if in.kind != Exact {
			continue
		}
		switch {
		case !in.drained:
			w, starved = math.MinInt64, true
		case in.last < w:
			w = in.last
			if in.head.Load() == in.tail.Load() {
				starved = true
			}
		}
	}
	if m.live.Load() {
		w = min(w, now-int64(m.cfg.Lateness))
	}
	return w, open, starved
}

// release hands on, in time order, the pending messages the watermark w
// has passed, and the earliest ones past MaxPending. An ordered message
// (PushOrdered) at w itself waits: an input whose latest time is w may
// still push one at w of a lower order.
func (m *Merger[E]) release(w int64) int {
	n := 0
	for len(m.ready) > 0 {
		in := m.ready[0]
		it := in.front()
		if !(it.t < w || it.t == w && (it.order == 0 || w == math.MaxInt64) || m.npending > m.cfg.MaxPending) {
			break
		}
		m.sink.Message(it.t, &it.e, false)
		in.pop()
		m.npending--
		n++
		if in.plen == 0 {
			m.readyRemoveTop()
		} else {
			m.readyDown(0)
		}
	}
	if n > 0 {
		m.pending.Store(int64(m.npending))
	}
	return n
}

// before orders two lanes with pending messages by their earliest: by
// capture time, then the producer's order, then the lane's age.
func before[E any](a, b *lane[E]) bool {
	x, y := a.front(), b.front()
	return x.t < y.t || x.t == y.t && (x.order < y.order || x.order == y.order && a.id < b.id)
}

// readyPush adds in, whose pending queue has become non-empty, to the
// heap of lanes.
func (m *Merger[E]) readyPush(in *lane[E]) {
	i := len(m.ready)
	m.ready = append(m.ready, in)
	in.readyAt = i
	for i > 0 {
		p := (i - 1) / 2
		if !before(m.ready[i], m.ready[p]) {
			break
		}
		m.readySwap(i, p)
		i = p
	}
}

// readyRemoveTop removes the heap's first input, whose pending queue is
// now empty.
func (m *Merger[E]) readyRemoveTop() {
	m.ready[0].readyAt = -1
	last := len(m.ready) - 1
	if last > 0 {
		m.ready[0] = m.ready[last]
		m.ready[0].readyAt = 0
	}
	m.ready[last] = nil
	m.ready = m.ready[:last]
	if last > 0 {
		m.readyDown(0)
	}
}

// readyDown restores the heap below i after the earliest message of the
// input at i was handed on.
func (m *Merger[E]) readyDown(i int) {
	n := len(m.ready)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && before(m.ready[r], m.ready[l]) {
			c = r
		}
		if !before(m.ready[c], m.ready[i]) {
			return
		}
		m.readySwap(i, c)
		i = c
	}
}

func (m *Merger[E]) readySwap(i, j int) {
	m.ready[i], m.ready[j] = m.ready[j], m.ready[i]
	m.ready[i].readyAt, m.ready[j].readyAt = i, j
}

// item is one queued message, or a mark of progress (Input.Progress).
type item[E any] struct {
	t     int64
	order uint64
	mark  bool
	lane  uint16 // the clock's lane in its input (0 for a single clock)
	e     E
}

// Input is one producer's queue into the merge: a packet source, or one
// HEP connection. Push and Close are for one goroutine at a time.
type Input[E any] struct {
	m    *Merger[E]
	src  *Source
	kind Kind
	buf  []item[E]
	mask uint64
	_    [64]byte
	head atomic.Uint64 // next item the merge reads
	_    [56]byte
	tail atomic.Uint64 // next item the producer writes
	_    [56]byte

	closed  atomic.Bool
	waiting atomic.Bool   // the producer waits for room
	room    chan struct{} // capacity 1

	// Owned by the merge goroutine.
	last    int64 // latest capture time drained
	drained bool
	id      uint64     // order of creation: ties between inputs
	lanes   []*lane[E] // by item.lane

	// Owned by the producer: the head it last read, clocks of live
	// inputs by key, and the timer of its waits on a full live queue.
	seenHead  uint64
	timer     *time.Timer
	threshold int64
	clocks    map[string]*clock
	lastKey   string
	lastClock *clock
}

// lane is the pending queue of the messages of one input stamped by one
// clock (a HEP agent's), in the order they were pushed: a clock's times
// never go back, so each lane is in time order, and the merge releases
// lanes by their heads. It is owned by the merge goroutine.
type lane[E any] struct {
	pending []item[E] // a ring, a power of two long
	phead   int
	plen    int
	readyAt int    // index in the merge's heap of lanes, -1 when not there
	id      uint64 // input id and lane number: ties between lanes
}

// lane returns the lane numbered i of the input, made on first use.
func (in *Input[E]) lane(i uint16) *lane[E] {
	for int(i) >= len(in.lanes) {
		in.lanes = append(in.lanes, &lane[E]{readyAt: -1, id: in.id<<16 | uint64(len(in.lanes))})
	}
	return in.lanes[i]
}

// pend appends a copy of it to the lane's pending queue.
func (in *lane[E]) pend(it *item[E]) {
	if in.plen == len(in.pending) {
		grown := make([]item[E], max(2*len(in.pending), 64))
		for k := range in.plen {
			grown[k] = in.pending[(in.phead+k)&(len(in.pending)-1)]
		}
		in.pending, in.phead = grown, 0
	}
	in.pending[(in.phead+in.plen)&(len(in.pending)-1)] = *it
	in.plen++
}

// front returns the earliest pending message; the queue must not be empty.
func (in *lane[E]) front() *item[E] { return &in.pending[in.phead] }

// pop removes the earliest pending message.
func (in *lane[E]) pop() {
	var zero E
	in.pending[in.phead].e = zero // drop what it points to
	in.phead = (in.phead + 1) & (len(in.pending) - 1)
	in.plen--
}

// done reports whether the input is closed and empty.
func (in *Input[E]) done() bool {
	return in.closed.Load() && in.head.Load() == in.tail.Load()
}

// Push hands the merge one message captured at t (ns since the Unix
// epoch) by the clock named clockKey (a HEP agent's node: agents' clocks
// differ; "" for a source with one clock). On a live input t is corrected
// by the clock's offset from the exporter's wall clock when that offset
// exceeds [Config.ClockThreshold], and clamped to the clock's latest
// corrected time (see [Source]). A full exact input makes Push
// wait for room (it returns false only when ctx is done); a full live
// input makes it wait up to [Config.FullWait], then drop the message,
// count it and return false. Push does not allocate once a clock key has
// been seen (a live input's timer is made at its first wait).
func (in *Input[E]) Push(ctx context.Context, t int64, clockKey string, e *E) bool {
	return in.PushOrdered(ctx, t, 0, clockKey, e)
}

// PushOrdered is Push with an order among messages of equal capture time:
// of two such messages, of any inputs, the one of the lower order is
// handed on first (then the one drained first). Workers that decode one
// capture file between them give the packet's number in the file, so that
// the merged stream keeps the file's order.
func (in *Input[E]) PushOrdered(ctx context.Context, t int64, order uint64, clockKey string, e *E) bool {
	return in.PushReceived(ctx, t, order, 0, clockKey, e)
}

// PushReceived is PushOrdered for a message received at received (ns
// since the Unix epoch): the time its producer read the batch that held
// it, one reading of the wall clock per batch (a HEP listener's read of a
// socket). A live input's clock-offset estimate takes it for the time of
// receipt; 0 makes the input read the wall clock itself, per message.
func (in *Input[E]) PushReceived(ctx context.Context, t int64, order uint64, received int64, clockKey string, e *E) bool {
	var lane uint16
	if in.kind == Live {
		if received == 0 {
			received = time.Now().UnixNano()
		}
		t, lane = in.correct(t, received, clockKey)
	}
	return in.push(ctx, t, order, lane, e)
}

// Progress says that the producer of an exact input will push nothing
// captured before t (ns since the Unix epoch): the merge moves on as far
// as t for this input even when it pushes no message, as a reader of a
// capture file that holds no SIP does. It waits for room in the queue as
// Push does, and returns false only when ctx is done. On a live input,
// whose messages the wall clock releases, it does nothing.
func (in *Input[E]) Progress(ctx context.Context, t int64) bool {
	if in.kind == Live {
		return true
	}
	return in.push(ctx, t, 0, 0, nil)
}

// push queues message e (a progress mark when nil) at t. It reads the
// merge's head of the queue only when the copy it last read says the
// queue is full or half full: that is a cache line the merge writes.
func (in *Input[E]) push(ctx context.Context, t int64, order uint64, lane uint16, e *E) bool {
	size := uint64(len(in.buf))
	for {
		tail := in.tail.Load()
		if tail-in.seenHead >= size {
			in.seenHead = in.head.Load()
		}
		if tail-in.seenHead < size {
			it := &in.buf[tail&in.mask]
			it.t, it.order, it.mark, it.lane = t, order, e == nil, lane
			if e != nil {
				it.e = *e
			}
			in.tail.Store(tail + 1)
			in.m.signal()
			if tail+1-in.seenHead >= size/2 {
				in.seenHead = in.head.Load()
				if tail+1-in.seenHead >= size/2 && in.m.sleeping.Load() {
					// The merge sleeps until its pending messages are
					// due; wake it before this queue fills.
					select {
					case in.m.wake <- struct{}{}:
					default:
					}
				}
			}
			return true
		}
		var timeout <-chan time.Time
		if in.kind == Live {
			if in.m.cfg.FullWait <= 0 {
				in.src.dropped.Add(1)
				return false
			}
			if in.timer == nil {
				in.timer = time.NewTimer(in.m.cfg.FullWait)
			} else {
				in.timer.Reset(in.m.cfg.FullWait)
			}
			timeout = in.timer.C
		}
		in.waiting.Store(true)
		if tail-in.head.Load() < uint64(len(in.buf)) {
			in.waiting.Store(false)
			in.stopTimer()
			continue
		}
		// The merge may sleep on its timer (live messages pending): wake
		// it whatever it waits for.
		select {
		case in.m.wake <- struct{}{}:
		default:
		}
		select {
		case <-in.room:
			in.stopTimer()
		case <-ctx.Done():
			in.waiting.Store(false)
			in.stopTimer()
			return false
		case <-timeout:
			in.waiting.Store(false)
			in.src.dropped.Add(1)
			return false
		}
		in.waiting.Store(false)
	}
}

// stopTimer stops the full-wait timer of a live input, if it has one.
func (in *Input[E]) stopTimer() {
	if in.timer != nil {
		in.timer.Stop() // since Go 1.23 no stale tick is left in timer.C
	}
}

// Close says the producer is done; the merge stops waiting for the input
// once its queued messages are drained.
func (in *Input[E]) Close() {
	in.closed.Store(true)
	in.m.changed.Store(true)
	in.m.signal()
}
