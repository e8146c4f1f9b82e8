package collector

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// liveSet is the owner's table of a test queue: the time of each live key
// (0: none), as the tracker's tables keep a start or an expiry.
type liveSet []int64

func (s liveSet) isLive(_ int, it *timed[uint64]) bool { return s[it.v] == it.at }

// popDue takes the first live item of class due at now, dropping the
// stale ones due before it, as the tracker's expiry loops do.
func popDue[V any](q *expiryQueue[V], class int, now int64) (timed[V], bool) {
	for q.due(class, now) {
		if it, live := q.pop(class); live {
			return it, true
		}
	}
	return timed[V]{}, false
}

// TestExpiryQueueFIFO: items come out of each class in order, when their
// time plus the class's timeout has passed and not before; deleted items
// are skipped where they surface.
func TestExpiryQueueFIFO(t *testing.T) {
	live := make(liveSet, 16)
	q := newFIFOQueue(100, live.isLive, 10, 100)
	for k, c := range []int{0, 1, 0, 1, 0, 1} {
		at := int64(k + 1)
		live[k+1] = at
		q.push(c, timed[uint64]{at, uint64(k + 1)})
	}
	live[3] = 0 // class 0: 1, 3, 5; 3 deleted
	q.deleted()
	if q.len() != 5 || q.held() != 6 {
		t.Fatalf("live %d, held %d; want 5, 6", q.len(), q.held())
	}
	var got []uint64
	due := func(class int, now int64) {
		for {
			it, ok := popDue(&q, class, now)
			if !ok {
				return
			}
			live[it.v] = 0
			got = append(got, it.v)
		}
	}
	due(0, 10) // nothing is due before 1+10
	due(1, 101)
	if len(got) != 0 {
		t.Fatalf("due too early: %v", got)
	}
	due(0, 15) // 1 and, past the deleted 3, 5
	due(1, 104)
	if want := []uint64{1, 5, 2, 4}; !slices.Equal(got, want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
	if q.len() != 1 || q.held() != 1 {
		t.Fatalf("live %d, held %d; want 1, 1 (the deleted item dropped)", q.len(), q.held())
	}
}

// TestExpiryQueueBound: eviction happens only when max items are live,
// whatever the stale ones; it takes the oldest live item, the lower class
// on a tie; and compaction keeps the items held under twice the live
// ones.
func TestExpiryQueueBound(t *testing.T) {
	const max = 4
	live := make(liveSet, 10_000)
	q := newFIFOQueue(max, live.isLive, 0, 0)
	push := func(c int, k uint64, at int64) (uint64, bool) {
		t.Helper()
		live[k] = at
		old, ok := q.push(c, timed[uint64]{at, k})
		if ok {
			if live[old.v] != old.at {
				t.Fatalf("evicted %d, a stale item", old.v)
			}
			live[old.v] = 0
		}
		if q.held() > 2*q.len()-1 {
			t.Fatalf("after push %d: %d held for %d live", k, q.held(), q.len())
		}
		return old.v, ok
	}
	// One item that stays, then thousands that end soon after: no eviction.
	push(0, 1, 1)
	for k := uint64(2); k < 5000; k++ {
		if old, ok := push(int(k%2), k, int64(k)); ok {
			t.Fatalf("push %d evicted %d with %d live", k, old, q.len())
		}
		live[k] = 0
		q.deleted()
	}
	if q.len() != 1 || q.capacity() > 2*16 {
		t.Fatalf("live %d, capacity %d; want 1, the rings' first size", q.len(), q.capacity())
	}
	// Fill to the bound: the next push evicts the oldest live, 1.
	push(1, 6000, 6000)
	push(0, 6001, 6001)
	push(1, 6002, 6002)
	if old, ok := push(0, 6003, 6003); !ok || old != 1 {
		t.Fatalf("at the bound: evicted %d, %v; want 1", old, ok)
	}
	// Delete the oldest live (6000): the next eviction skips it.
	live[6000] = 0
	q.deleted()
	push(1, 6004, 6004) // 4 live again: no eviction
	if old, ok := push(0, 6005, 6005); !ok || old != 6001 {
		t.Fatalf("evicted %d, %v; want 6001 (6000 was deleted)", old, ok)
	}
	// A tie between the classes: class 0 goes first.
	q2 := newFIFOQueue(2, live.isLive, 0, 0)
	live[7000], live[7001] = 5, 5
	q2.push(1, timed[uint64]{5, 7000})
	q2.push(0, timed[uint64]{5, 7001})
	if old, ok := q2.push(0, timed[uint64]{6, 7002}); !ok || old.v != 7001 {
		t.Fatalf("tie: evicted %d, %v; want 7001 of class 0", old.v, ok)
	}
}

// TestExpiryQueueOrdered compares an ordered queue, under random pushes,
// deletions, refreshes, expiries and evictions, with a plain list of the
// live items: every expiry comes out in order of time, eviction takes the
// least live time, stale items never come out, and after a push the
// items held are fewer than twice the live ones.
func TestExpiryQueueOrdered(t *testing.T) {
	ops := 200_000
	if testing.Short() {
		ops = 20_000
	}
	for _, bound := range []int{1, 10, 500} {
		rng := rand.New(rand.NewPCG(uint64(bound), 2))
		keys := uint64(3 * bound)
		live := make(liveSet, keys+1)
		q := newOrderedQueue(bound, live.isLive)
		ref := map[uint64]int64{} // the live items
		least := func() int64 {
			m := int64(-1)
			for _, at := range ref {
				if m < 0 || at < m {
					m = at
				}
			}
			return m
		}
		now, evictions, expiries := int64(0), 0, 0
		for op := range ops {
			k := 1 + rng.Uint64N(keys)
			switch r := rng.IntN(10); {
			case r < 5: // register or refresh k, expiring at a random time ahead
				// Times unique to the push (the low bits): an entry re-made
				// with the key and time of a stale item would make it look
				// live again (see expiryQueue).
				at := now + (1+rng.Int64N(int64(1000*bound)))<<20 + int64(op)
				if _, ok := ref[k]; ok {
					if live[k] == at {
						continue
					}
					q.deleted()
				}
				live[k] = at
				want := least()
				old, ok := q.push(0, timed[uint64]{at, k})
				if ok {
					if _, wasLive := ref[old.v]; !wasLive || old.at != want || len(ref) != bound {
						t.Fatalf("bound %d, op %d: evicted %d at %d with %d live; want the least %d, only at the bound", bound, op, old.v, old.at, len(ref), want)
					}
					delete(ref, old.v)
					live[old.v] = 0
					evictions++
				} else if len(ref) >= bound && ref[k] == 0 {
					t.Fatalf("bound %d, op %d: %d live and no eviction", bound, op, len(ref))
				}
				ref[k] = at
				if q.held() > 2*q.len()-1 {
					t.Fatalf("bound %d, op %d: after a push %d held for %d live", bound, op, q.held(), q.len())
				}
			case r < 7: // remove k
				if _, ok := ref[k]; ok {
					delete(ref, k)
					live[k] = 0
					q.deleted()
				}
			default: // time passes
				now += rng.Int64N(200) << 20
				last := int64(-1)
				for {
					it, ok := popDue(&q, 0, now)
					if !ok {
						break
					}
					if at, ok := ref[it.v]; !ok || at != it.at || it.at > now || it.at < last {
						t.Fatalf("bound %d, op %d: expired %d at %d (live at %d, %v), now %d, previous %d", bound, op, it.v, it.at, at, ok, now, last)
					}
					last = it.at
					expiries++
					delete(ref, it.v)
					live[it.v] = 0
				}
				if m := least(); m >= 0 && m <= now {
					t.Fatalf("bound %d, op %d: %d is due at %d and was not expired", bound, op, m, now)
				}
			}
			if q.len() != len(ref) {
				t.Fatalf("bound %d, op %d: live %d, want %d", bound, op, q.len(), len(ref))
			}
		}
		if evictions == 0 || expiries == 0 {
			t.Errorf("bound %d: %d evictions, %d expiries: the test does not reach both", bound, evictions, expiries)
		}
	}
}

// TestExpiryQueueAllocs: once grown, churn at a fixed size allocates
// nothing, in both orders, with deletions and compaction.
func TestExpiryQueueAllocs(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		live := make(liveSet, 4096)
		q := newFIFOQueue(1000, live.isLive, 100)
		if ordered {
			q = newOrderedQueue(1000, live.isLive)
		}
		k := uint64(0)
		step := func() {
			at := int64(k)
			key := k%4000 + 1
			if ordered {
				at += int64(k*7919) % 100 // out of order
			}
			live[key] = at
			if old, ok := q.push(0, timed[uint64]{at, key}); ok {
				live[old.v] = 0
			}
			if k%3 == 0 { // every third ends before its time
				live[key] = 0
				q.deleted()
			}
			for {
				it, ok := popDue(&q, 0, int64(k))
				if !ok {
					break
				}
				live[it.v] = 0
			}
			k++
		}
		for range 10_000 {
			step()
		}
		if a := testing.AllocsPerRun(10_000, step); a != 0 {
			t.Errorf("ordered %v: %v allocs per step", ordered, a)
		}
	}
}
