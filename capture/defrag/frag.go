package defrag

import (
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// Config bounds IP fragment reassembly (RFC 791 §3.2, RFC 8200
// §4.5). Worst-case memory is about MaxDatagrams × MaxBytes × 1.02 (the
// payload and a bitmap of its 8-byte units); a datagram holds only as much
// as its fragments reach.
type Config struct {
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

// DefaultConfig returns 4,096 datagrams, a 30 second timeout (the
// Linux default, net.ipv4.ipfrag_time) and 65,535 bytes.
func DefaultConfig() Config {
	return Config{MaxDatagrams: 4096, Timeout: 30 * time.Second, MaxBytes: 65535}
}

func (c Config) validate() error {
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

// Drop is one reason of the closed set under which IP fragments are
// dropped without making a datagram (label `reason` of
// sip_exporter_ip_fragments_dropped_total). Every fragment the reassembler
// takes is, in the end, in exactly one reassembled datagram or counted once
// under one of these reasons.
type Drop uint8

// The fragment drop reasons.
const (
	DropIncomplete Drop = iota // datagram still missing fragments at Config.Timeout, or when the table was reset
	DropOverlap                // fragments overlap or disagree on the end (RFC 5722): the whole datagram is dropped
	DropDuplicate              // fragment whose bytes were all received already: that fragment only is dropped
	DropTooLarge               // datagram reaching past Config.MaxBytes
	DropLimit                  // Config.MaxDatagrams in progress: the oldest was dropped
	DropTruncated              // a fragment was cut short by the capture's snap length: the datagram cannot complete
	numDrops
)

var dropNames = [numDrops]string{"incomplete", "overlap", "duplicate", "too_large", "limit", "truncated"}

// String returns the label value, e.g. "overlap".
func (r Drop) String() string { return dropNames[r] }

// Key identifies the datagram a fragment belongs to: source,
// destination, identification and, for IPv4, protocol (RFC 791 §3.2; RFC
// 8200 §4.5 leaves the protocol out). IPv4 addresses are stored
// IPv4-mapped. Zone tells apart address spaces that overlap: the decoder
// sets it from the VLAN IDs, MPLS labels and tunnel identifiers the
// fragment came through, 0 for none.
type Key struct {
	Src, Dst [16]byte
	ID       uint32
	Proto    uint8 // IPv4 protocol; 0 for IPv6
	Family   Family
	Zone     uint64
}

// Datagram is one datagram being reassembled; [Table.Add] returns it once
// complete.
type Datagram struct {
	key   Key
	first int64    // capture time of its first fragment, Unix nanoseconds
	buf   []byte   // the payload, each fragment at its offset
	units []uint64 // bitmap of the 8-byte units received
	have  int      // units received
	end   int      // payload length, from the last fragment; -1 until then
	hi    int      // highest fragment end received
	frags int      // fragments held (or dropped, once dead)
	proto uint8    // IPv4 protocol, or IPv6 next header of the fragment at offset 0
	dead  bool     // dropped for reason: later fragments are dropped as well, until the timeout
	why   Drop

	newer, older *Datagram // creation order
}

// Key returns the key of the datagram's fragments.
func (g *Datagram) Key() *Key { return &g.key }

// Proto returns the IPv4 protocol, or the IPv6 next header of the fragment
// at offset 0: what the payload starts with.
func (g *Datagram) Proto() uint8 { return g.proto }

// Payload returns the reassembled payload: what follows the IPv4 header or
// the IPv6 fragment header. It is valid until [Table.Release].
func (g *Datagram) Payload() []byte { return g.buf[:g.end] }

// keepFragBufferCap is the buffer capacity a finished datagram keeps for
// reuse; larger buffers are released.
const keepFragBufferCap = 8 << 10

// maxFreeDatagrams bounds the datagram structs kept for reuse.
const maxFreeDatagrams = 256

// Table reassembles the IP datagrams of one packet source. It is not safe
// for concurrent use; its [Stats] may be read concurrently.
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
type Table struct {
	cfg    Config
	stats  *Stats
	m      map[Key]*Datagram
	newest *Datagram
	oldest *Datagram
	free   []*Datagram
}

// ErrLength is what [Table.Add] returns for an empty fragment, or one that is
// not the last and whose length is not a multiple of 8 (RFC 791 §3.2, RFC
// 8200 §4.5): the fragment is ignored.
var ErrLength = errors.New("ip fragment length not a multiple of 8")

// New returns a table that counts into stats, or an error when cfg is out
// of range.
func New(cfg Config, stats *Stats) (*Table, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Table{cfg: cfg, stats: stats, m: make(map[Key]*Datagram)}, nil
}

// Enabled reports whether fragments are reassembled at all (MaxDatagrams
// above 0).
func (t *Table) Enabled() bool { return t.cfg.MaxDatagrams > 0 }

// Reset drops every datagram in progress as incomplete.
func (t *Table) Reset() {
	for t.oldest != nil {
		t.drop(t.oldest, DropIncomplete)
		t.remove(t.oldest)
	}
}

// Expire drops the datagrams whose first fragment came more than the
// timeout before now (capture time, Unix nanoseconds).
func (t *Table) Expire(now int64) {
	if t.oldest != nil {
		t.expire(now)
	}
}

func (t *Table) expire(now int64) {
	limit := now - int64(t.cfg.Timeout)
	for t.oldest != nil && t.oldest.first < limit {
		t.drop(t.oldest, DropIncomplete)
		t.remove(t.oldest)
	}
}

// Add takes one fragment captured at now: payload p at byte offset off of
// datagram k, more set unless it is the last one, proto the IPv4 protocol
// or IPv6 next header. truncated tells that the capture cut p short. It
// returns the datagram once complete, out of the table: the caller decodes
// its payload and then hands it back with [Table.Release]. Fragments that
// make no datagram are counted in [Stats] by [Drop] reason; a fragment
// whose length is wrong is not taken and Add returns [ErrLength].
func (t *Table) Add(k *Key, off int, more, truncated bool, proto uint8, p []byte, now int64) (*Datagram, error) {
	t.expire(now)
	if len(p) == 0 || more && len(p)%8 != 0 && !truncated {
		return nil, ErrLength
	}
	g := t.m[*k]
	if g == nil {
		g = t.add(k, now)
	}
	if g.dead {
		t.stats.dropped[k.Family][g.why].Add(1)
		return nil, nil
	}
	end := off + len(p)
	switch {
	case truncated:
		t.kill(g, DropTruncated)
		return nil, nil
	case end > t.cfg.MaxBytes:
		t.kill(g, DropTooLarge)
		return nil, nil
	case !more && (g.end >= 0 && end != g.end || end < g.hi), more && g.end >= 0 && end > g.end:
		t.kill(g, DropOverlap)
		return nil, nil
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
		t.stats.dropped[k.Family][DropDuplicate].Add(1)
		return nil, nil
	default:
		t.kill(g, DropOverlap)
		return nil, nil
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
		return nil, nil
	}
	// Complete: out of the table before it is decoded on, so that
	// fragments met further in (a tunnel) cannot reuse it meanwhile.
	t.unlist(g)
	t.stats.reassembled[k.Family].Add(1)
	return g, nil
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
func (t *Table) kill(g *Datagram, r Drop) {
	g.frags++
	t.drop(g, r)
	g.dead, g.why = true, r
	g.buf = g.buf[:0]
	clear(g.units)
}

// drop counts the fragments held by g as dropped for reason r, unless g
// was dropped before.
func (t *Table) drop(g *Datagram, r Drop) {
	if !g.dead {
		t.stats.dropped[g.key.Family][r].Add(uint64(g.frags))
	}
}

func (t *Table) add(k *Key, now int64) *Datagram {
	if len(t.m) >= t.cfg.MaxDatagrams {
		t.drop(t.oldest, DropLimit)
		t.remove(t.oldest)
	}
	var g *Datagram
	if n := len(t.free); n > 0 {
		g, t.free = t.free[n-1], t.free[:n-1]
	} else {
		g = new(Datagram)
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
	t.stats.Reassembling.Add(1)
	return g
}

func (t *Table) remove(g *Datagram) {
	t.unlist(g)
	t.Release(g)
}

// unlist takes g out of the map and the creation order.
func (t *Table) unlist(g *Datagram) {
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
	t.stats.Reassembling.Add(-1)
}

// Release takes back a complete datagram that [Table.Add] returned, for
// reuse.
func (t *Table) Release(g *Datagram) {
	buf, units := g.buf[:0], g.units[:0]
	if cap(buf) > keepFragBufferCap {
		buf, units = nil, nil
	} else {
		clear(g.units)
	}
	*g = Datagram{buf: buf, units: units}
	if len(t.free) < maxFreeDatagrams {
		t.free = append(t.free, g)
	}
}
