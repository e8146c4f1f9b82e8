package collector

import (
	"encoding/binary"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// CallIDBytes bounds the bytes of a Call-ID kept for an exemplar
// ([CallID]): longer ones are cut, at a UTF-8 boundary.
const CallIDBytes = 64

// Exemplar label names: the Call-ID of the call behind a sample, as seen
// on the wire, and the node that saw it. Exemplar labels are not series
// labels: a Call-ID never becomes a label value.
const (
	ExemplarCallIDLabel = "call_id"
	ExemplarNodeLabel   = "node"
)

// CallID is a Call-ID (RFC 3261 §20.8) as seen on the wire, its first
// [CallIDBytes] bytes cut at a UTF-8 boundary: a small value that an event
// carries to the exemplar of the series it counts in. The zero value is
// no Call-ID.
type CallID struct {
	n uint8
	b [CallIDBytes]byte
}

// Set copies id into c: its first CallIDBytes bytes, less the bytes of a
// UTF-8 sequence the cut would split. nil or empty clears c. It does not
// allocate.
func (c *CallID) Set(id []byte) {
	if len(id) > CallIDBytes {
		id = id[:CallIDBytes]
		// Back off to the start of the last sequence if it is incomplete
		// (a valid sequence is at most 4 bytes; invalid bytes stay as
		// they are and are replaced at exposition).
		for i := len(id) - 1; i >= 0 && i >= len(id)-utf8.UTFMax; i-- {
			if utf8.RuneStart(id[i]) {
				if !utf8.FullRune(id[i:]) {
					id = id[:i]
				}
				break
			}
		}
	}
	c.n = uint8(copy(c.b[:], id))
}

// Bytes returns the Call-ID kept, empty for none; it aliases c.
func (c *CallID) Bytes() []byte { return c.b[:c.n] }

// exemplarWords are the 8-byte words of an exemplar's Call-ID.
const exemplarWords = CallIDBytes / 8

// exemplar is the latest exemplar of one series in one shard: 104 bytes,
// the Call-ID copied into fixed words. One goroutine records into it
// (the shard's), without a lock or an allocation; the scrape reads it
// at any time through a sequence lock of atomics (a torn read is retried).
type exemplar struct {
	seq   atomic.Uint64 // odd while a record is being written
	at    atomic.Int64  // capture time of the event, ns since the Unix epoch; 0 none
	value atomic.Uint64 // float64 bits
	n     atomic.Uint32 // bytes of id
	id    [exemplarWords]atomic.Uint64
	// next is the capture time from which the next event is recorded;
	// only the writer reads and writes it.
	next int64
}

// record makes (id, v) of the event at capture time at (ns since the Unix
// epoch) the exemplar, unless the exemplar in place was recorded less
// than publishEvery before at; a CallID without bytes changes nothing.
// An exemplar is thus its series' latest event to a tenth of a second,
// published at the cadence of the tracker's gauges: a scrape sees the
// same calls as with every event recorded, and the atomic stores of a
// record are paid at most ten times a second per series, not per event.
// The shard's events come in capture-time order (its merge), so its
// exemplars' times never go back. Only the shard's goroutine calls it.
func (e *exemplar) record(id *CallID, v float64, at int64) {
	if id == nil || id.n == 0 || at < e.next {
		return
	}
	e.next = at + publishEvery
	s := e.seq.Load()
	e.seq.Store(s + 1)
	e.at.Store(at)
	e.value.Store(math.Float64bits(v))
	e.n.Store(uint32(id.n))
	var w [CallIDBytes]byte
	copy(w[:], id.b[:id.n])
	for i := range (int(id.n) + 7) / 8 {
		e.id[i].Store(binary.LittleEndian.Uint64(w[i*8:]))
	}
	e.seq.Store(s + 2)
}

// exemplarRead is an exemplar as read at scrape.
type exemplarRead struct {
	at    int64 // ns since the Unix epoch; 0 none
	value float64
	n     int
	id    [CallIDBytes]byte
}

// read returns a consistent copy of e (at 0 when it holds none, or when
// the writer kept it busy for every try).
func (e *exemplar) read() (r exemplarRead) {
	if e == nil {
		return r
	}
	for range 64 {
		s := e.seq.Load()
		if s&1 != 0 {
			runtime.Gosched()
			continue
		}
		r.at = e.at.Load()
		r.value = math.Float64frombits(e.value.Load())
		r.n = min(int(e.n.Load()), CallIDBytes)
		for i := range (r.n + 7) / 8 {
			binary.LittleEndian.PutUint64(r.id[i*8:], e.id[i].Load())
		}
		if e.seq.Load() == s {
			return r
		}
	}
	return exemplarRead{}
}

// latestExemplar returns the latest of the exemplars of a series' shards
// (at 0 when none has one).
func latestExemplar(es ...*exemplar) exemplarRead {
	var best exemplarRead
	for _, e := range es {
		if r := e.read(); r.at > best.at {
			best = r
		}
	}
	return best
}

// exemplarLabels returns the labels of an exemplar of node: the node
// (its first MaxNodeLabelBytes runes), and the Call-ID, invalid UTF-8
// replaced by U+FFFD and cut at a rune so that the names and values of
// both labels hold at most [prometheus.ExemplarMaxRunes] (128) runes, the
// bound of OpenMetrics: 117 less the node's runes, at least 53.
func exemplarLabels(id []byte, node string) prometheus.Labels {
	node = cutRunes(node, MaxNodeLabelBytes)
	budget := prometheus.ExemplarMaxRunes - len(ExemplarCallIDLabel) - len(ExemplarNodeLabel) - utf8.RuneCountInString(node)
	return prometheus.Labels{
		ExemplarCallIDLabel: cutRunes(strings.ToValidUTF8(string(id), "\uFFFD"), budget),
		ExemplarNodeLabel:   node,
	}
}

// cutRunes returns the first n runes of s.
func cutRunes(s string, n int) string {
	k := 0
	for i := range s {
		if k == n {
			return s[:i]
		}
		k++
	}
	return s
}

// withExemplar returns m with the exemplar r of node, m itself when r is
// none. Exemplars are served only in the OpenMetrics format: the text
// format drops them.
func withExemplar(m prometheus.Metric, r exemplarRead, node string) prometheus.Metric {
	if r.at == 0 || r.n == 0 {
		return m
	}
	em, err := prometheus.NewMetricWithExemplars(m, prometheus.Exemplar{
		Value:     r.value,
		Labels:    exemplarLabels(r.id[:r.n], node),
		Timestamp: time.Unix(0, r.at),
	})
	if err != nil { // cannot happen: the labels are bounded and valid
		return m
	}
	return sortedExemplars{em}
}

// sortedExemplars is a metric whose exemplars' labels are written in
// order of name (call_id, node), not in the random order of the map that
// [prometheus.NewMetricWithExemplars] takes: the exposition is
// deterministic.
type sortedExemplars struct{ prometheus.Metric }

// Write implements [prometheus.Metric].
func (m sortedExemplars) Write(out *dto.Metric) error {
	if err := m.Metric.Write(out); err != nil {
		return err
	}
	sortLabels := func(e *dto.Exemplar) {
		if e != nil {
			slices.SortFunc(e.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
	}
	if c := out.Counter; c != nil {
		sortLabels(c.Exemplar)
	}
	if h := out.Histogram; h != nil {
		for _, b := range h.Bucket {
			sortLabels(b.Exemplar)
		}
		for _, e := range h.Exemplars {
			sortLabels(e)
		}
	}
	return nil
}

// outcomeExemplar returns the exemplar of the session outcome code, made
// on first use (104 bytes per code seen). Only the shard's goroutine calls
// it.
func (tn *txNode) outcomeExemplar(code int) *exemplar {
	p := &tn.outcomeEx[code-sipstatus.MinCode]
	e := p.Load()
	if e == nil {
		e = new(exemplar)
		p.Store(e)
	}
	return e
}

// inviteIDSlots is the size of a tracker's table of the Call-IDs of its
// initial INVITEs (inviteCallIDs): 1,024 slots of 80 bytes, 80 KiB per
// shard.
const inviteIDSlots = 1 << 10

// inviteCallIDs keeps the Call-IDs of the latest initial INVITEs, by
// transaction key, for the exemplar of sip_session_timeouts_total: a
// transaction keeps hashes only, and its timeout comes long after its
// INVITE. Direct-mapped: an INVITE takes the slot of its key, so a
// timed-out attempt finds its Call-ID while fewer than about 1,024
// initial INVITEs came after it; else the exemplar stays that of an
// earlier timeout. Bounded, no allocation, one goroutine (the shard's).
type inviteCallIDs [inviteIDSlots]struct {
	key uint64
	id  CallID
}

// put keeps id as the Call-ID of the transaction key; nil (none known)
// keeps nothing.
func (t *inviteCallIDs) put(key uint64, id *CallID) {
	if id == nil {
		return
	}
	s := &t[mix64(key)&(inviteIDSlots-1)]
	s.key, s.id = key, *id
}

// get returns the Call-ID of the transaction key, nil when its slot has
// been taken by another.
func (t *inviteCallIDs) get(key uint64) *CallID {
	if s := &t[mix64(key)&(inviteIDSlots-1)]; s.key == key {
		return &s.id
	}
	return nil
}
