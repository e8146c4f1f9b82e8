package capture

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
)

// FragmentConfig bounds IP fragment reassembly (RFC 791 §3.2, RFC 8200
// §4.5). Worst-case memory is about MaxDatagrams × MaxBytes × 1.02 (the
// payload and a bitmap of its 8-byte units); a datagram holds only as much
// as its fragments reach.
type FragmentConfig struct {
	// MaxDatagrams is how many datagrams are reassembled at once; past it
	// the oldest is dropped (reason limit). 0 disables reassembly:
	// fragments are then skipped (reason ip_fragment).
	MaxDatagrams int
	// Timeout is how long after its first fragment (capture time) a
	// datagram may take to complete; then it is dropped (reason
	// incomplete).
	Timeout time.Duration
	// MaxBytes is the largest reassembled IP payload, 1280..65535 bytes; a
	// fragment reaching past it drops its datagram (reason too_large).
	MaxBytes int
}

// DefaultFragmentConfig returns 4,096 datagrams, a 30 second timeout (the
// Linux default, net.ipv4.ipfrag_time) and 65,535 bytes.
func DefaultFragmentConfig() FragmentConfig {
	return FragmentConfig{MaxDatagrams: 4096, Timeout: 30 * time.Second, MaxBytes: 65535}
}

func (c FragmentConfig) validate() error {
	switch {
	case c.MaxDatagrams < 0:
		return fmt.Errorf("ip fragment max datagrams %d: must not be negative", c.MaxDatagrams)
	case c.Timeout <= 0:
		return fmt.Errorf("ip fragment timeout %v: must be positive", c.Timeout)
	case c.MaxBytes < 1280 || c.MaxBytes > 65535:
		return fmt.Errorf("ip fragment max bytes %d: must be within 1280..65535", c.MaxBytes)
	}
	return nil
}

// Family is an IP version (label `family` of the reassembly metrics).
type Family uint8

// The IP families.
const (
	IPv4 Family = iota
	IPv6
	numFamilies
)

var familyNames = [numFamilies]string{"ipv4", "ipv6"}

// String returns the label value, "ipv4" or "ipv6".
func (f Family) String() string { return familyNames[f] }

// FragDrop is one reason of the closed set under which IP fragments are
// dropped without making a datagram (label `reason` of
// sip_exporter_ip_fragments_dropped_total). Every fragment the reassembler
// takes is, in the end, in exactly one reassembled datagram or counted once
// under one of these reasons.
type FragDrop uint8

// The fragment drop reasons.
const (
	FragIncomplete FragDrop = iota // datagram still missing fragments at FragmentConfig.Timeout, or when the decoder was reset
	FragOverlap                    // fragments overlap or disagree on the end (RFC 5722): the whole datagram is dropped
	FragDuplicate                  // fragment whose bytes were all received already: that fragment only is dropped
	FragTooLarge                   // datagram reaching past FragmentConfig.MaxBytes
	FragLimit                      // FragmentConfig.MaxDatagrams in progress: the oldest was dropped
	FragTruncated                  // a fragment was cut short by the capture's snap length: the datagram cannot complete
	numFragDrops
)

var fragDropNames = [numFragDrops]string{"incomplete", "overlap", "duplicate", "too_large", "limit", "truncated"}

// String returns the label value, e.g. "overlap".
func (r FragDrop) String() string { return fragDropNames[r] }

// fragStats are the reassembly counters, part of [Stats].
type fragStats struct {
	reassembled [numFamilies]atomic.Uint64
	dropped     [numFamilies][numFragDrops]atomic.Uint64
}

// Reassembled calls fn for each IP family with the number of datagrams
// reassembled from fragments, zeros included.
func (s *Stats) Reassembled(fn func(family string, n uint64)) {
	for f := range s.frag.reassembled {
		fn(familyNames[f], s.frag.reassembled[f].Load())
	}
}

// FragmentDrops calls fn for each IP family and drop reason with the number
// of fragments dropped, zeros included.
func (s *Stats) FragmentDrops(fn func(family, reason string, n uint64)) {
	for f := range s.frag.dropped {
		for r := range s.frag.dropped[f] {
			fn(familyNames[f], fragDropNames[r], s.frag.dropped[f][r].Load())
		}
	}
}

// DatagramsReassembled returns the datagrams of family f reassembled from
// fragments.
func (s *Stats) DatagramsReassembled(f Family) uint64 { return s.frag.reassembled[f].Load() }

// FragmentsDropped returns the fragments of family f dropped for reason r.
func (s *Stats) FragmentsDropped(f Family, r FragDrop) uint64 { return s.frag.dropped[f][r].Load() }

// fragKey identifies the datagram a fragment belongs to: source,
// destination, identification and, for IPv4, protocol (RFC 791 §3.2; RFC
// 8200 §4.5 leaves the protocol out). IPv4 addresses are stored
// IPv4-mapped.
type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8 // IPv4 protocol; 0 for IPv6
	family   Family
}

// fragDatagram is one datagram being reassembled.
type fragDatagram struct {
	key   fragKey
	first int64    // capture time of its first fragment, Unix nanoseconds
	buf   []byte   // the payload, each fragment at its offset
	units []uint64 // bitmap of the 8-byte units received
	have  int      // units received
	end   int      // payload length, from the last fragment; -1 until then
	hi    int      // highest fragment end received
	frags int      // fragments held (or dropped, once dead)
	proto uint8    // IPv4 protocol, or IPv6 next header of the fragment at offset 0
	dead  bool     // dropped for reason: later fragments are dropped as well, until the timeout
	why   FragDrop

	newer, older *fragDatagram // creation order
}

// keepFragBufferCap is the buffer capacity a finished datagram keeps for
// reuse; larger buffers are released.
const keepFragBufferCap = 8 << 10

// maxFreeDatagrams bounds the datagram structs kept for reuse.
const maxFreeDatagrams = 256

// fragTable reassembles the IP datagrams of one source.
//
// It is ours, not gopacket's ip4defrag/ip6defrag: those lock a mutex and
// take decoded gopacket layers (allocating per packet), read the clock
// unless told otherwise, report failures as unclassified error strings
// (ip6defrag not at all) and bound neither the datagrams in progress nor
// their size, so drops could not be counted by reason nor memory bounded.
// Here fragments are checked against a bitmap of 8-byte units: exact
// duplicates are dropped alone, any other overlap drops the datagram (RFC
// 5722, which Linux applies to IPv4 too), and a datagram that failed keeps
// its slot until the timeout so that its late fragments are dropped under
// the same reason instead of starting a datagram that can never complete.
type fragTable struct {
	cfg    FragmentConfig
	d      *Decoder
	m      map[fragKey]*fragDatagram
	newest *fragDatagram
	oldest *fragDatagram
	free   []*fragDatagram
}

func (t *fragTable) init(cfg FragmentConfig, d *Decoder) {
	t.cfg, t.d = cfg, d
	t.m = make(map[fragKey]*fragDatagram)
}

// reset drops every datagram in progress as incomplete.
func (t *fragTable) reset() {
	for t.oldest != nil {
		t.drop(t.oldest, FragIncomplete)
		t.remove(t.oldest)
	}
}

// expire drops the datagrams whose first fragment came more than the
// timeout before now.
func (t *fragTable) expire(now int64) {
	limit := now - int64(t.cfg.Timeout)
	for t.oldest != nil && t.oldest.first < limit {
		t.drop(t.oldest, FragIncomplete)
		t.remove(t.oldest)
	}
}

// fragment takes one fragment: payload p at byte offset off of datagram k,
// more set unless it is the last one, proto the IPv4 protocol or IPv6 next
// header. truncated tells that the capture cut p short. When the datagram
// is complete it is decoded on from its transport header.
func (t *fragTable) fragment(k *fragKey, off int, more, truncated bool, proto uint8, p []byte, now int64) {
	t.expire(now)
	if len(p) == 0 || more && len(p)%8 != 0 && !truncated {
		t.d.stats.parseError(ErrIPHeader) // RFC 8200 §4.5; RFC 791 §3.2
		return
	}
	g := t.m[*k]
	if g == nil {
		g = t.add(k, now)
	}
	if g.dead {
		t.d.stats.frag.dropped[k.family][g.why].Add(1)
		return
	}
	end := off + len(p)
	switch {
	case truncated:
		t.kill(g, FragTruncated)
		return
	case end > t.cfg.MaxBytes:
		t.kill(g, FragTooLarge)
		return
	case !more && (g.end >= 0 && end != g.end || end < g.hi), more && g.end >= 0 && end > g.end:
		t.kill(g, FragOverlap)
		return
	}
	u0, u1 := off/8, (end+7)/8
	if n := (u1 + 63) / 64; len(g.units) < n {
		if cap(g.units) >= n {
			g.units = g.units[:n]
		} else {
			g.units = append(g.units, make([]uint64, n-len(g.units))...)
		}
	}
	switch seen := unitRange(g.units, u0, u1, false); seen {
	case 0:
	case u1 - u0:
		t.d.stats.frag.dropped[k.family][FragDuplicate].Add(1)
		return
	default:
		t.kill(g, FragOverlap)
		return
	}
	unitRange(g.units, u0, u1, true)
	if len(g.buf) < end {
		if cap(g.buf) >= end {
			g.buf = g.buf[:end]
		} else {
			g.buf = append(g.buf, make([]byte, end-len(g.buf))...)
		}
	}
	copy(g.buf[off:], p)
	g.have += u1 - u0
	g.frags++
	g.hi = max(g.hi, end)
	if off == 0 {
		g.proto = proto
	}
	if !more {
		g.end = end
	}
	if g.end < 0 || g.have != (g.end+7)/8 {
		return
	}
	// Complete: out of the table before it is decoded on, so that
	// fragments met further in (a tunnel) cannot reuse it meanwhile.
	t.unlist(g)
	t.d.stats.frag.reassembled[k.family].Add(1)
	t.d.reassembled(g)
	t.release(g)
}

// unitRange returns how many of the bits u0..u1-1 of bitmap m are set,
// and sets them all when set is true.
func unitRange(m []uint64, u0, u1 int, set bool) int {
	n := 0
	for w := u0 / 64; w*64 < u1; w++ {
		mask := ^uint64(0)
		if lo := u0 - w*64; lo > 0 {
			mask <<= lo
		}
		if hi := u1 - w*64; hi < 64 {
			mask &= 1<<hi - 1
		}
		n += bits.OnesCount64(m[w] & mask)
		if set {
			m[w] |= mask
		}
	}
	return n
}

// kill drops datagram g and the fragment at hand for reason r and keeps g
// to drop its later fragments.
func (t *fragTable) kill(g *fragDatagram, r FragDrop) {
	g.frags++
	t.drop(g, r)
	g.dead, g.why = true, r
	g.buf = g.buf[:0]
	clear(g.units)
}

// drop counts the fragments held by g as dropped for reason r, unless g
// was dropped before.
func (t *fragTable) drop(g *fragDatagram, r FragDrop) {
	if !g.dead {
		t.d.stats.frag.dropped[g.key.family][r].Add(uint64(g.frags))
	}
}

func (t *fragTable) add(k *fragKey, now int64) *fragDatagram {
	if len(t.m) >= t.cfg.MaxDatagrams {
		t.drop(t.oldest, FragLimit)
		t.remove(t.oldest)
	}
	var g *fragDatagram
	if n := len(t.free); n > 0 {
		g, t.free = t.free[n-1], t.free[:n-1]
	} else {
		g = new(fragDatagram)
	}
	g.key, g.first, g.end = *k, now, -1
	t.m[*k] = g
	g.older, g.newer = t.newest, nil
	if t.newest != nil {
		t.newest.newer = g
	}
	t.newest = g
	if t.oldest == nil {
		t.oldest = g
	}
	t.d.stats.IPReassembling.Add(1)
	return g
}

func (t *fragTable) remove(g *fragDatagram) {
	t.unlist(g)
	t.release(g)
}

// unlist takes g out of the map and the creation order.
func (t *fragTable) unlist(g *fragDatagram) {
	delete(t.m, g.key)
	if g.newer != nil {
		g.newer.older = g.older
	} else {
		t.newest = g.older
	}
	if g.older != nil {
		g.older.newer = g.newer
	} else {
		t.oldest = g.newer
	}
	g.newer, g.older = nil, nil
	t.d.stats.IPReassembling.Add(-1)
}

// release keeps g for reuse.
func (t *fragTable) release(g *fragDatagram) {
	buf, units := g.buf[:0], g.units[:0]
	if cap(buf) > keepFragBufferCap {
		buf, units = nil, nil
	} else {
		clear(g.units)
	}
	*g = fragDatagram{buf: buf, units: units}
	if len(t.free) < maxFreeDatagrams {
		t.free = append(t.free, g)
	}
}
