package merge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Source holds the merge's counters of one packet source, shared by its
// inputs, and the clock offsets of its live inputs.
//
// Clocks: every live message is stamped with the exporter's wall clock
// when it is pushed, or when its batch was read ([Input.PushReceived]).
// d = capture time - time of receipt is the clock's offset less the
// transit delay (and the wait in a socket until the read, at most the
// read interval R of the time model), so the largest d over a window (10 s) is
// the best estimate of the offset; it is exported per clock (the HEP node)
// in sip_exporter_clock_offset_seconds. The merge corrects a clock only
// when that estimate is off by more than [Config.ClockThreshold], and then
// in one step that holds until the clock moves again by as much; the
// corrected times of one clock never go back (a time behind the clock's
// latest is clamped to it, and a step applied only as far as keeps that
// order), so a step never reorders its messages. A source
// whose clock is right is merged on its own timestamps, and a skewed one
// (a HEP agent minutes ahead) is merged by receipt without expiring other
// sources' transactions, with delays between its own messages exact.
type Source struct {
	name          string
	late, dropped atomic.Uint64

	mu      sync.Mutex
	offsets map[string]*atomic.Int64 // by clock key, ns
}

// Late returns the messages that reached the merge after the watermark
// had passed their capture time (handed on at once, out of order).
func (s *Source) Late() uint64 { return s.late.Load() }

// Dropped returns the messages dropped because the source's live input
// queue was full.
func (s *Source) Dropped() uint64 { return s.dropped.Load() }

// Offset returns the latest offset estimate of the clock key (ns), and
// false when the clock has not been seen.
func (s *Source) Offset(key string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.offsets[key]; o != nil {
		return o.Load(), true
	}
	return 0, false
}

func (s *Source) offset(key string) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.offsets[key]
	if o == nil {
		o = new(atomic.Int64)
		s.offsets[key] = o
	}
	return o
}

// clockWindow is the window over which a clock's offset is estimated.
const clockWindow = 10 * time.Second

// maxClocks bounds the clocks of one input; further keys share the clock
// "".
const maxClocks = 4096

// clock is the offset state of one clock of a live input, owned by its
// producer.
type clock struct {
	started bool
	offset  int64  // correction applied, ns
	winMax  int64  // largest capture-receipt difference in this window
	winEnd  int64  // receipt time the window closes
	last    int64  // latest corrected time handed on: a clock never goes back
	lane    uint16 // the merge's lane of the clock's messages in its input
	pub     *atomic.Int64
}

// correct returns t corrected by the offset of clock key, updating the
// clock's estimate with now, the time of receipt, and the clock's lane.
func (in *Input[E]) correct(t, now int64, key string) (int64, uint16) {
	c := in.lastClock
	if c == nil || key != in.lastKey {
		c = in.clocks[key]
		if c == nil {
			if in.clocks == nil {
				in.clocks = map[string]*clock{}
			}
			if len(in.clocks) >= maxClocks {
				key = ""
			}
			if c = in.clocks[key]; c == nil {
				c = &clock{pub: in.src.offset(key), lane: uint16(len(in.clocks))}
				in.clocks[key] = c
			}
		}
		in.lastKey, in.lastClock = key, c
	}
	d := t - now
	before := c.offset
	th := in.threshold
	step := func(d int64) int64 {
		if d > th || d < -th {
			return d
		}
		return 0
	}
	switch {
	case !c.started:
		c.started, c.offset, c.winMax, c.winEnd = true, step(d), d, now+int64(clockWindow)
		c.pub.Store(d)
	case now >= c.winEnd:
		c.pub.Store(c.winMax)
		if c.winMax < c.offset-th {
			c.offset = step(c.winMax) // the clock went back
		}
		c.winMax, c.winEnd = d, now+int64(clockWindow)
	case d > c.winMax:
		c.winMax = d
	}
	if d > c.offset+th {
		c.offset = step(d) // the clock is ahead of its correction
	}
	// The clock's own messages keep their order: a time behind the
	// clock's latest is clamped to it. When a step of the correction took
	// it there, only as much of the step is applied as keeps the order,
	// so that the delays between this message and the next are exact; the
	// rest is below the threshold (the clock's latest was within it).
	t -= c.offset
	if t < c.last {
		if c.offset > before {
			c.offset -= c.last - t
		}
		t = c.last
	}
	c.last = t
	return t, c.lane
}

// Describe implements [prometheus.Collector].
func (m *Merger[E]) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(m, ch)
}

var (
	lateDesc = prometheus.NewDesc("sip_exporter_messages_late_total",
		"SIP messages that reached the time-ordered merge after its watermark had passed their capture time (later than --capture.max-lateness on a live source); they are counted, out of order.",
		[]string{"source"}, nil)
	droppedDesc = prometheus.NewDesc("sip_exporter_messages_dropped_total",
		"SIP messages not counted, by reason (queue_full: the live source's queue into the merge was full).",
		[]string{"source", "reason"}, nil)
	offsetDesc = prometheus.NewDesc("sip_exporter_clock_offset_seconds",
		"Estimated offset of a live source's capture clock from the exporter's wall clock (capture time minus time of receipt, the largest over 10 s), per clock: node is the HEP agent's node, \"\" for an interface.",
		[]string{"source", "node"}, nil)
	pendingDesc = prometheus.NewDesc("sip_exporter_merge_pending_messages",
		"SIP messages held in the time-ordered merge until the watermark passes them.", nil, nil)
)

// Collect implements [prometheus.Collector].
func (m *Merger[E]) Collect(ch chan<- prometheus.Metric) {
	m.sources.collect(ch)
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(m.pending.Load()))
}

// collect sends the metrics of the sources.
func (ss *sourceSet) collect(ch chan<- prometheus.Metric) {
	for _, s := range ss.sorted() {
		ch <- prometheus.MustNewConstMetric(lateDesc, prometheus.CounterValue, float64(s.late.Load()), s.name)
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.dropped.Load()), s.name, "queue_full")
		s.mu.Lock()
		for key, o := range s.offsets {
			ch <- prometheus.MustNewConstMetric(offsetDesc, prometheus.GaugeValue, float64(o.Load())/1e9, s.name, key)
		}
		s.mu.Unlock()
	}
}
