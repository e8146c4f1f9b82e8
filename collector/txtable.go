package collector

import (
	"math/bits"
	"os"
	"unsafe"
)

// txTable is a hash table from a 64-bit key to a value V, made for the
// transaction tracker: open addressing with linear probing, and deletion by
// backward shift (no tombstones), so that any amount of insert and delete
// churn neither slows lookups down nor rehashes. The keys ([TxKey],
// [DialogKey]) are hashes already: the slot of a key is its top bits.
//
// The slots are a power of two in number. The table starts small and
// doubles when an insert would pass 3/4 load, up to a bound given at
// creation; it never shrinks. Growth is its only allocation, so a user
// that keeps at most maxEntries in it allocates at most log2 of the bound
// times and never in the steady state. Key 0 marks an empty slot; a real
// key 0 lives in a slot of its own beside the array.
//
// It is not safe for concurrent use. Pointers returned by get are valid
// until the next put or del.
type txTable[V any] struct {
	slots    []txSlot[V]
	shift    uint // 64 - log2(len(slots))
	n        int  // entries in slots (not counting key 0)
	growAt   int  // n at which put grows slots
	maxSlots int  // the bound of len(slots)

	hasZero bool // key 0 is present, its value in zero
	zero    V
}

type txSlot[V any] struct {
	key uint64 // 0: empty
	val V
}

// pageBytes is the size of a memory page, the unit the kernel maps.
var pageBytes = os.Getpagesize()

// txTableStart is the number of slots a table starts with, so that an
// idle exporter does not reserve its bound.
const txTableStart = 1024

// txTableSlots returns the bound of the slots of a table that holds at
// most maxEntries: maxEntries × 4/3 rounded up to a power of two, at least 2.
func txTableSlots(maxEntries int) int {
	want := uint64(maxEntries) + (uint64(maxEntries)+2)/3 // ceil(4/3 × maxEntries)
	if want < 2 {
		want = 2
	}
	return 1 << bits.Len64(want-1)
}

// newTxTable returns a table sized for at most maxEntries (at least 1).
func newTxTable[V any](maxEntries int) *txTable[V] {
	t := &txTable[V]{maxSlots: txTableSlots(maxEntries)}
	t.alloc(min(txTableStart, t.maxSlots))
	return t
}

// alloc replaces the slots with size empty ones (a power of two).
func (t *txTable[V]) alloc(size int) {
	t.slots = make([]txSlot[V], size)
	// Write a word of every page before anything reads one. A large
	// slice comes from fresh pages that the kernel maps on first touch;
	// the probes of put and grow read a slot before writing it, which
	// would map the shared zero page and then, on the write, copy it and
	// flush the TLB of every core the process runs on (an IPI each).
	// Written first, a page is mapped once, writable.
	step := max(1, pageBytes/int(unsafe.Sizeof(t.slots[0])))
	for i := 0; i < size; i += step {
		t.slots[i].key = 0
	}
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	t.n = 0
	if size < t.maxSlots {
		t.growAt = size / 4 * 3
	} else {
		t.growAt = size - 1 // at the bound: grow only rather than fill up
	}
}

// home is the slot where key's probe starts.
func (t *txTable[V]) home(key uint64) int { return int(key >> t.shift) }

// len returns the number of entries.
func (t *txTable[V]) len() int {
	if t.hasZero {
		return t.n + 1
	}
	return t.n
}

// cap returns the number of slots.
func (t *txTable[V]) cap() int { return len(t.slots) }

// get returns a pointer to the value of key, nil when key is absent.
func (t *txTable[V]) get(key uint64) *V {
	if key == 0 {
		if t.hasZero {
			return &t.zero
		}
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.key == key {
			return &s.val
		}
		if s.key == 0 {
			return nil
		}
	}
}

// put sets the value of key, inserting it when absent.
func (t *txTable[V]) put(key uint64, val V) {
	if key == 0 {
		t.hasZero, t.zero = true, val
		return
	}
	mask := len(t.slots) - 1
	i := t.home(key)
	for ; t.slots[i].key != 0; i = (i + 1) & mask {
		if t.slots[i].key == key {
			t.slots[i].val = val
			return
		}
	}
	if t.n >= t.growAt {
		t.grow()
		t.put(key, val)
		return
	}
	t.slots[i] = txSlot[V]{key: key, val: val}
	t.n++
}

// grow doubles the slots and inserts the entries again.
func (t *txTable[V]) grow() {
	old := t.slots
	t.alloc(2 * len(old))
	mask := len(t.slots) - 1
	for _, s := range old {
		if s.key == 0 {
			continue
		}
		i := t.home(s.key)
		for t.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
		t.n++
	}
}

// del removes key and returns its value; false when it was absent. The
// entries after it in its probe run shift back into the gap, so that no
// tombstone is left.
func (t *txTable[V]) del(key uint64) (V, bool) {
	var none V
	if key == 0 {
		if !t.hasZero {
			return none, false
		}
		v := t.zero
		t.hasZero, t.zero = false, none
		return v, true
	}
	mask := len(t.slots) - 1
	i := t.home(key)
	for t.slots[i].key != key {
		if t.slots[i].key == 0 {
			return none, false
		}
		i = (i + 1) & mask
	}
	v := t.slots[i].val
	// Backward shift: move back each entry of the run that may sit at the
	// gap i, that is whose home is no later (cyclically) than i.
	for j := (i + 1) & mask; t.slots[j].key != 0; j = (j + 1) & mask {
		if (j-t.home(t.slots[j].key))&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = txSlot[V]{}
	t.n--
	return v, true
}

// clear removes every entry and keeps the slots.
func (t *txTable[V]) clear() {
	clear(t.slots)
	t.n = 0
	var none V
	t.hasZero, t.zero = false, none
}
