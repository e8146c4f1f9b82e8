package collector

import (
	"math/rand/v2"
	"testing"
)

// checkTable verifies the invariants of t: the count of entries, and that
// every entry is reachable, that is no empty slot lies between its home and
// its slot (what backward-shift deletion must keep).
func checkTable[V any](tb testing.TB, t *txTable[V]) {
	tb.Helper()
	mask := len(t.slots) - 1
	n := 0
	for i, s := range t.slots {
		if s.key == 0 {
			continue
		}
		n++
		for j := t.home(s.key); j != i; j = (j + 1) & mask {
			if t.slots[j].key == 0 {
				tb.Fatalf("key %#x in slot %d, home %d: slot %d between is empty", s.key, i, t.home(s.key), j)
			}
		}
	}
	if n != t.n {
		tb.Fatalf("%d entries in the slots, count says %d", n, t.n)
	}
	if len(t.slots) > t.maxSlots && t.n < len(t.slots)/2 {
		tb.Fatalf("%d slots past the bound %d with only %d entries", len(t.slots), t.maxSlots, t.n)
	}
}

// keyAt returns a key whose home is slot in a table of size slots, with low
// bits lo to tell keys of one home apart.
func keyAt(slot, size int, lo uint64) uint64 {
	shift := 64 - uint(bitsLen(size-1))
	return uint64(slot)<<shift | lo
}

func bitsLen(x int) int {
	n := 0
	for ; x > 0; x >>= 1 {
		n++
	}
	return n
}

func TestTxTableSlots(t *testing.T) {
	for _, c := range []struct{ max, want int }{
		{1, 2}, {2, 4}, {3, 4}, {4, 8}, {6, 8}, {7, 16}, {10, 16}, {768, 1024}, {769, 2048},
		{100_000, 1 << 18}, {1_000_000, 1 << 21}, {1 << 20, 1 << 21}, {3 << 19, 1 << 21}, {3<<19 + 1, 1 << 22},
	} {
		if got := txTableSlots(c.max); got != c.want {
			t.Errorf("txTableSlots(%d) = %d, want %d", c.max, got, c.want)
		}
		if got := newTxTable[int](c.max).cap(); got != min(c.want, txTableStart) {
			t.Errorf("newTxTable(%d) starts with %d slots, want %d", c.max, got, min(c.want, txTableStart))
		}
	}
}

func TestTxTable(t *testing.T) {
	t.Run("insert lookup delete", func(t *testing.T) {
		tb := newTxTable[txEntry](100)
		for k := uint64(1); k <= 50; k++ {
			tb.put(mix64(k), txEntry{start: int64(k)})
		}
		tb.put(mix64(7), txEntry{start: 700}) // overwrite
		if tb.len() != 50 {
			t.Fatalf("len %d, want 50", tb.len())
		}
		for k := uint64(1); k <= 50; k++ {
			want := int64(k)
			if k == 7 {
				want = 700
			}
			if e := tb.get(mix64(k)); e == nil || e.start != want {
				t.Fatalf("get(%d) = %v, want start %d", k, e, want)
			}
		}
		if tb.get(mix64(51)) != nil {
			t.Fatal("get of an absent key found something")
		}
		tb.get(mix64(3)).flags = 9 // updated in place
		if tb.get(mix64(3)).flags != 9 {
			t.Fatal("update through get's pointer lost")
		}
		for k := uint64(1); k <= 50; k += 2 {
			if e, ok := tb.del(mix64(k)); !ok || e.start != int64(k) && k != 7 {
				t.Fatalf("del(%d) = %v, %v", k, e, ok)
			}
		}
		if _, ok := tb.del(mix64(1)); ok {
			t.Fatal("second del succeeded")
		}
		checkTable(t, tb)
		for k := uint64(1); k <= 50; k++ {
			if got := tb.get(mix64(k)) != nil; got != (k%2 == 0) {
				t.Fatalf("after deletes, get(%d) present = %v", k, got)
			}
		}
		tb.clear()
		if tb.len() != 0 || tb.get(mix64(2)) != nil || tb.cap() != 256 {
			t.Fatalf("after clear: len %d, cap %d", tb.len(), tb.cap())
		}
	})

	t.Run("key 0", func(t *testing.T) {
		tb := newTxTable[dialogEntry](10)
		if tb.get(0) != nil {
			t.Fatal("key 0 present in an empty table")
		}
		tb.put(0, dialogEntry{answered: 5})
		tb.put(1, dialogEntry{answered: 6})
		if e := tb.get(0); e == nil || e.answered != 5 || tb.len() != 2 {
			t.Fatalf("get(0) = %v, len %d", e, tb.len())
		}
		if e := tb.get(1); e == nil || e.answered != 6 {
			t.Fatalf("key 1 = %v: confused with key 0", e)
		}
		if e, ok := tb.del(0); !ok || e.answered != 5 || tb.get(0) != nil || tb.len() != 1 {
			t.Fatalf("del(0) = %v, %v; len %d", e, ok, tb.len())
		}
		if _, ok := tb.del(0); ok {
			t.Fatal("second del(0) succeeded")
		}
		if tb.get(1) == nil {
			t.Fatal("del(0) removed key 1")
		}
		checkTable(t, tb)
	})

	t.Run("wraparound", func(t *testing.T) {
		tb := newTxTable[int](10) // 16 slots
		size := tb.cap()
		// Five keys whose home is the last slot: they wrap to slots 0..3.
		for lo := uint64(1); lo <= 5; lo++ {
			tb.put(keyAt(size-1, size, lo), int(lo))
		}
		for i, want := range []uint64{0: 2, 1: 3, 2: 4, 3: 5} {
			if got := tb.slots[i].key; got != keyAt(size-1, size, want) {
				t.Fatalf("slot %d holds %#x, want the key %d of the last home", i, got, want)
			}
		}
		checkTable(t, tb)
		// Delete the one in the last slot: the rest shift back across the end.
		if _, ok := tb.del(keyAt(size-1, size, 1)); !ok {
			t.Fatal("del failed")
		}
		checkTable(t, tb)
		if tb.slots[size-1].key != keyAt(size-1, size, 2) || tb.slots[3].key != 0 {
			t.Fatalf("no backward shift across the end: last slot %#x, slot 3 %#x", tb.slots[size-1].key, tb.slots[3].key)
		}
		for lo := uint64(2); lo <= 5; lo++ {
			if v := tb.get(keyAt(size-1, size, lo)); v == nil || *v != int(lo) {
				t.Fatalf("key %d lost after the shift", lo)
			}
		}
	})

	t.Run("backward shift", func(t *testing.T) {
		tb := newTxTable[int](10) // 16 slots
		size := tb.cap()
		// A run from slot 4: a, b (home 4), c (home 5), d (home 4), e (home 8),
		// then f (home 6) beyond a gap-free run.
		a, b, c, d := keyAt(4, size, 1), keyAt(4, size, 2), keyAt(5, size, 3), keyAt(4, size, 4)
		e, f := keyAt(8, size, 5), keyAt(6, size, 6)
		for i, k := range []uint64{a, b, c, d, e, f} {
			tb.put(k, i)
		}
		// Layout: 4 a, 5 b, 6 c, 7 d, 8 e, 9 f.
		want := func(layout map[int]uint64) {
			t.Helper()
			checkTable(t, tb)
			for i := range tb.slots {
				if tb.slots[i].key != layout[i] {
					t.Fatalf("slot %d holds %#x, want %#x", i, tb.slots[i].key, layout[i])
				}
			}
		}
		want(map[int]uint64{4: a, 5: b, 6: c, 7: d, 8: e, 9: f})
		tb.del(b) // c moves to 5, d to 6, e stays (home 8), f moves to 7
		want(map[int]uint64{4: a, 5: c, 6: d, 7: f, 8: e})
		tb.del(a) // c (home 5) stays, d (home 4) moves to 4, f (home 6) to 6
		want(map[int]uint64{4: d, 5: c, 6: f, 8: e})
		tb.del(e)
		want(map[int]uint64{4: d, 5: c, 6: f})
		tb.del(c) // f (home 6) stays: it may not move before its home
		want(map[int]uint64{4: d, 6: f})
	})

	t.Run("growth", func(t *testing.T) {
		tb := newTxTable[int](5000) // bound 8192 slots
		if tb.cap() != 1024 || tb.maxSlots != 8192 {
			t.Fatalf("cap %d, bound %d; want 1024, 8192", tb.cap(), tb.maxSlots)
		}
		var caps []int
		for k := uint64(1); k <= 5000; k++ {
			tb.put(mix64(k), int(k))
			if len(caps) == 0 || caps[len(caps)-1] != tb.cap() {
				caps = append(caps, tb.cap())
				if tb.len() != 1 && tb.len() != tb.cap()/4*3/2+1 {
					t.Errorf("grew to %d at %d entries, want at %d", tb.cap(), tb.len(), tb.cap()/4*3/2+1)
				}
			}
		}
		if len(caps) != 4 || caps[3] != 8192 {
			t.Fatalf("capacities %v, want 1024..8192", caps)
		}
		checkTable(t, tb)
		for k := uint64(1); k <= 5000; k++ {
			if v := tb.get(mix64(k)); v == nil || *v != int(k) {
				t.Fatalf("key %d lost in growth", k)
			}
		}
		for k := uint64(1); k <= 5000; k++ {
			tb.del(mix64(k))
		}
		if tb.cap() != 8192 || tb.len() != 0 {
			t.Fatalf("after deleting all: cap %d, len %d; never shrinks", tb.cap(), tb.len())
		}
	})

	t.Run("past the bound", func(t *testing.T) {
		// Misuse (more than maxEntries) still works: at the bound the table
		// grows rather than fill up its last slot.
		tb := newTxTable[int](3) // 4 slots
		for k := uint64(1); k <= 100; k++ {
			tb.put(mix64(k), int(k))
		}
		checkTable(t, tb)
		for k := uint64(1); k <= 100; k++ {
			if v := tb.get(mix64(k)); v == nil || *v != int(k) {
				t.Fatalf("key %d lost", k)
			}
		}
	})
}

// TestTxTableDifferential runs millions of random operations on a table and
// on a Go map and compares every answer. Keys come from a small pool in
// which many share a home or sit at the end of the slots, so that runs are
// long, wrap around, and are cut by deletes; key 0 is in the pool. At most
// maxEntries are held, as the tracker does, so the table reaches its bound
// and then churns at it.
func TestTxTableDifferential(t *testing.T) {
	ops := 3_000_000
	if testing.Short() {
		ops = 300_000
	}
	for _, maxEntries := range []int{1, 100, 3000} {
		rng := rand.New(rand.NewPCG(uint64(maxEntries), 1))
		pool := make([]uint64, 2*maxEntries+8)
		for i := range pool {
			switch i % 4 {
			case 0:
				pool[i] = rng.Uint64()
			case 1:
				pool[i] = rng.Uint64() | 0xff<<56 // the end of the slots: wraps
			case 2:
				pool[i] = rng.Uint64() >> 12 // the start of the slots
			case 3:
				pool[i] = rng.Uint64()&^(0xffff<<40) | 0x5a5a<<40 // a cluster in the middle
			}
		}
		pool[0], pool[1] = 0, 1
		tb := newTxTable[txEntry](maxEntries)
		ref := map[uint64]txEntry{}
		for op := range ops {
			k := pool[rng.IntN(len(pool))]
			switch r := rng.IntN(10); {
			case r < 4: // put
				if _, ok := ref[k]; !ok && len(ref) >= maxEntries {
					continue
				}
				v := txEntry{start: int64(op), node: uint32(r)}
				tb.put(k, v)
				ref[k] = v
			case r < 7: // del
				got, ok := tb.del(k)
				want, wok := ref[k]
				if ok != wok || got != want {
					t.Fatalf("max %d, op %d: del(%#x) = %v, %v; map %v, %v", maxEntries, op, k, got, ok, want, wok)
				}
				delete(ref, k)
			default: // get
				got := tb.get(k)
				want, ok := ref[k]
				if (got != nil) != ok || ok && *got != want {
					t.Fatalf("max %d, op %d: get(%#x) = %v; map %v, %v", maxEntries, op, k, got, want, ok)
				}
			}
			if tb.len() != len(ref) {
				t.Fatalf("max %d, op %d: len %d, map %d", maxEntries, op, tb.len(), len(ref))
			}
			if op%100_000 == 0 {
				checkTable(t, tb)
			}
		}
		checkTable(t, tb)
		for k, want := range ref {
			if got := tb.get(k); got == nil || *got != want {
				t.Fatalf("max %d: at the end get(%#x) = %v, map %v", maxEntries, k, got, want)
			}
		}
		if tb.cap() > txTableSlots(maxEntries) {
			t.Errorf("max %d: %d slots, past the bound %d", maxEntries, tb.cap(), txTableSlots(maxEntries))
		}
	}
}

// TestTxTableAllocs: once grown, put, get and del allocate nothing.
func TestTxTableAllocs(t *testing.T) {
	tb := newTxTable[txEntry](1000)
	k := uint64(0)
	for ; k < 1000; k++ {
		tb.put(mix64(k), txEntry{})
	}
	churn := func() {
		tb.put(mix64(k), txEntry{start: 1})
		_ = tb.get(mix64(k - 500))
		tb.del(mix64(k - 1000))
		k++
	}
	if a := testing.AllocsPerRun(10_000, churn); a != 0 {
		t.Errorf("put/get/del: %v allocs per run", a)
	}
}

// BenchmarkTxTable is one insert, one lookup and one delete at a fixed
// size of 100,000 entries.
func BenchmarkTxTable(b *testing.B) {
	tb := newTxTable[txEntry](100_000)
	k := uint64(0)
	for ; k < 100_000; k++ {
		tb.put(mix64(k), txEntry{})
	}
	b.ReportAllocs()
	for b.Loop() {
		tb.put(mix64(k), txEntry{start: 1})
		_ = tb.get(mix64(k - 50_000))
		tb.del(mix64(k - 100_000))
		k++
	}
}
