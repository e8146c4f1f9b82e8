package merge

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"sync/atomic"
	"time"
)

// Dedup recognises a copy of a SIP message seen shortly before: the
// copies that capturing on several interfaces, a SPAN session mirroring
// both directions, or several HEP agents reporting one message produce.
// A copy has the same bytes, the same source and destination addresses and
// ports and, in IPv4, the same identification ([Dedup.Key]). Messages with
// the same bytes between other hosts (OPTIONS pings of a cluster, replayed
// traffic) are not copies. A retransmission by SIP itself comes T1 = 500 ms
// or more later (RFC 3261 §17.1.1.2, §17.1.2.2) and the window is capped
// below T1 ([MaxWindow]), so it is never removed.
//
// The table is a fixed array of 4-way buckets of one 64-bit word each: 32
// bits of the key and the capture time in units of 2^17 ns (131 µs; it
// wraps after 6.5 days, far beyond any window). Seen is for one goroutine
// (the merge's, or a shard's: copies of a message share its bytes, so they
// meet in one) and does not allocate: four loads and at most a store; Key
// and Removed may be called from any goroutine. Two different messages are taken for one
// when 32 key bits and the bucket index collide within the window, which
// for 65,536 slots is about one in 2^46 per message.
//
// When the table is full of messages younger than the window, the oldest
// entry of the bucket is replaced: a copy that arrives after its original
// was pushed out is counted again. The default table holds 65,536
// messages per window (327,680 messages/s at the default 200 ms).
type Dedup struct {
	window  uint32 // in time units
	seed    maphash.Seed
	slots   []uint64
	mask    uint64
	removed atomic.Uint64
}

// dedupUnitShift converts nanoseconds to the table's time unit (131 µs).
const dedupUnitShift = 17

// DefaultDedupSlots is the table size [NewDedup] uses for slots 0.
const DefaultDedupSlots = 1 << 16

// MaxWindow is the largest dedup window, 3,813 time units (499.77 ms):
// below T1 = 500 ms, the earliest a SIP retransmission comes (RFC 3261
// §17.1.1.2). Times are compared in whole units, so two times d apart may
// be up to floor(d/unit)+1 units apart; 500 ms is at least 3,814 units, so
// a retransmission is never within the largest window.
const MaxWindow time.Duration = 3813 << dedupUnitShift

// NewDedup returns a Dedup that removes copies seen within window of the
// first (window > 0 and at most [MaxWindow]) in a table of slots entries
// (a power of two, at least 4; 0 means DefaultDedupSlots, 8 bytes each).
// It returns an error naming the bad value.
func NewDedup(window time.Duration, slots int) (*Dedup, error) {
	if slots == 0 {
		slots = DefaultDedupSlots
	}
	if window <= 0 || window > MaxWindow {
		return nil, fmt.Errorf("dedup window %v: must be above 0 and below T1 (500ms), or a SIP retransmission could be removed", window)
	}
	if slots < 4 || slots&(slots-1) != 0 {
		return nil, fmt.Errorf("dedup table of %d slots: must be a power of two, at least 4", slots)
	}
	return &Dedup{
		window: uint32((window + 1<<dedupUnitShift - 1) >> dedupUnitShift),
		seed:   maphash.MakeSeed(),
		slots:  make([]uint64, slots),
		mask:   uint64(slots - 1),
	}, nil
}

// Key returns the dedup key of a message: a hash of its bytes, its source
// and destination addresses and ports (the zero AddrPort when unknown) and
// the IPv4 identification ipID (0 when there is none: IPv6, HEP, or a DF
// datagram of Linux). It does not allocate.
func (d *Dedup) Key(msg []byte, src, dst netip.AddrPort, ipID uint16) uint64 {
	sh, sl := addrBits(src.Addr())
	dh, dl := addrBits(dst.Addr())
	// Each word times its own odd constant (a bijection), so that source
	// and destination do not commute, folded and mixed.
	x := sh*0x9e3779b97f4a7c15 ^ bits.RotateLeft64(sl*0xc2b2ae3d27d4eb4f, 13) ^
		bits.RotateLeft64(dh*0x165667b19e3779f9, 29) ^ bits.RotateLeft64(dl*0xd6e8feb86659fd93, 43) ^
		(uint64(src.Port())<<32|uint64(dst.Port())<<16|uint64(ipID))*0xff51afd7ed558ccd
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return maphash.Bytes(d.seed, msg) ^ (x*0x9e3779b97f4a7c15 + 1)
}

// addrBits returns the 128 bits of the IPv6 form of a (IPv4-mapped for an
// IPv4 address) as two big-endian words; zero for the zero Addr. An IPv4
// address takes As4: netip's As16 costs several times as much. Its twin
// is collector's (leaf packages import none of ours).
func addrBits(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// Seen reports whether the message of key ([Dedup.Key]), captured at t
// (nanoseconds since the Unix epoch), is a copy of one seen within the
// window before or after t. A copy is counted in [Dedup.Removed]; a new
// message is remembered and false returned.
func (d *Dedup) Seen(h uint64, t int64) bool {
	fp := uint64(uint32(h >> 32))
	if fp == 0 {
		fp = 1 // 0 marks an empty slot
	}
	now := uint32(uint64(t) >> dedupUnitShift)
	entry := fp<<32 | uint64(now)
	bucket := d.slots[h&d.mask&^3:][:4]
	victim, oldest := 0, int64(-1)
	for i, v := range bucket {
		var age int64
		switch {
		case v == 0:
			age = 1 << 34 // empty: take it first
		case v>>32 == fp:
			if a := int32(now - uint32(v)); a >= -int32(d.window) && a <= int32(d.window) {
				d.removed.Add(1)
				return true
			}
			age = 1 << 35 // the same bytes long ago: a new sending, reuse its slot
		default:
			age = int64(now - uint32(v)) // wrapped, 0 .. 2^32-1
		}
		if age > oldest {
			victim, oldest = i, age
		}
	}
	bucket[victim] = entry
	return false
}

// Removed returns the number of copies Seen has reported.
func (d *Dedup) Removed() uint64 { return d.removed.Load() }
