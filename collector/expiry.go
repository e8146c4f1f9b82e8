package collector

// timed is an item of an [expiryQueue]: a time, ns, and a value (for the
// tracker the key of a table entry, or a held response).
type timed[V any] struct {
	at int64
	v  V
}

// expiryQueue holds the expiries of a tracker's entries, at most max
// live ones, in one of two orders:
//
//   - FIFO: one ring per timeout class, for items pushed in the order of
//     their time (a start or a restart: transactions, answered dialogs,
//     held responses). An item of class c is due once its time plus
//     timeout[c] has passed. Push, pop and eviction are O(1).
//   - Ordered: a binary min-heap by time (an expiry: registrations), for
//     items that come in any order. Push and pop are O(log n).
//
// Registrations are ordered because a registration's expiry is whatever
// its 2xx grants (any of 1..2^31-1 s, per UA and registrar, which may
// shorten or spread it): a queue per distinct value would need an
// unbounded number of queues, and a timing wheel a resolution and a
// horizon (68 years) or overflow lists, where a heap orders any mix in 16
// bytes an item.
//
// Deletion is lazy: the owner changes its table so that isLive reports
// the item stale, and calls deleted; to move an entry's expiry (a
// transaction whose timeout restarts, or that moves to another class; a
// registration refreshed) it does so and pushes a new item, at the new
// time or in the new class. The stale item stays until it
// surfaces (is due, or is the oldest when one must be evicted) and is then
// dropped. So that memory stays bounded by the live items, push first
// compacts the queue (drops every stale item, in one pass, keeping the
// order) when the stale items outnumber the live ones, so that after a
// push it holds fewer than twice the live items; as only push adds items,
// its storage stays within twice the most items live at once. Compaction
// costs O(1) amortised per item (each pass drops at least half). Push
// evicts only when the live items are at max: the oldest live item (least
// time, the lower class on a tie) goes, never one because of items that
// ended already.
//
// The tracker's isLive compares the item's time (and, for transactions,
// its class) with its entry's, so an entry made again with the key and
// the time (ns) of a stale item makes that item look live again: it then
// stands for the new entry (same key, same time) and the new entry's own
// item comes out stale later; the counts stay exact, and such items are
// as many as entries so remade.
//
// Push, pop and deleted allocate nothing once the storage has grown to
// its size (a ring to at most the power of two at or above 2×max items,
// the heap as append grows it). It is not safe for concurrent use.
type expiryQueue[V any] struct {
	fifo    []ring[timed[V]] // FIFO: one ring per timeout class
	heap    []timed[V]       // ordered: min-heap by at
	ordered bool
	timeout []int64 // ns, per class
	live, n int     // live items; items held, live or stale
	max     int     // bound of live
	// isLive reports whether an item of a class is live; called when it
	// surfaces and when compacting. Nil: items never go stale (deleted is
	// never called).
	isLive func(class int, it *timed[V]) bool
}

// newFIFOQueue returns a FIFO queue of at most max live items with a
// class per timeout (ns).
func newFIFOQueue[V any](max int, isLive func(int, *timed[V]) bool, timeouts ...int64) expiryQueue[V] {
	return expiryQueue[V]{fifo: make([]ring[timed[V]], len(timeouts)), timeout: timeouts, max: max, isLive: isLive}
}

// newOrderedQueue returns an ordered queue (one class, timeout 0: an
// item's time is its expiry) of at most max live items.
func newOrderedQueue[V any](max int, isLive func(int, *timed[V]) bool) expiryQueue[V] {
	return expiryQueue[V]{ordered: true, timeout: []int64{0}, max: max, isLive: isLive}
}

// len returns the number of live items.
func (q *expiryQueue[V]) len() int { return q.live }

// held returns the number of items held, live and stale.
func (q *expiryQueue[V]) held() int { return q.n }

// capacity returns the number of items the storage holds without growing.
func (q *expiryQueue[V]) capacity() int {
	c := cap(q.heap)
	for i := range q.fifo {
		c += len(q.fifo[i].buf)
	}
	return c
}

// push adds a live item of class (0 when ordered). When max items are
// live already, the oldest live one is removed first and returned.
func (q *expiryQueue[V]) push(class int, it timed[V]) (evicted timed[V], ok bool) {
	if q.live >= q.max {
		evicted, ok = q.popOldest()
	}
	if q.n-q.live > q.live {
		q.compact()
	}
	q.n++
	q.live++
	if !q.ordered {
		q.fifo[class].push(it)
		return evicted, ok
	}
	q.heap = append(q.heap, it)
	h := q.heap
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].at <= h[i].at {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	return evicted, ok
}

// deleted records that one live item has gone stale: the owner has
// changed its table so that isLive reports it so.
func (q *expiryQueue[V]) deleted() { q.live-- }

// due reports whether the first item of class, live or stale, is due at
// now: its time plus the class's timeout is at or before now. A check
// cheap enough for every event; take the item with pop.
func (q *expiryQueue[V]) due(class int, now int64) bool {
	f := q.front(class)
	return f != nil && f.at <= now-q.timeout[class]
}

// popOldest removes and returns the live item of least time, dropping
// the stale items before it; false when none is live.
func (q *expiryQueue[V]) popOldest() (timed[V], bool) {
	for {
		best := 0
		if len(q.fifo) > 1 { // the class whose first item is the oldest
			best = -1
			var at int64
			for c := range q.fifo {
				if r := &q.fifo[c]; r.n > 0 && (best < 0 || r.at(0).at < at) {
					best, at = c, r.at(0).at
				}
			}
		} else if q.front(0) == nil {
			best = -1
		}
		if best < 0 {
			return timed[V]{}, false
		}
		if it, live := q.pop(best); live {
			return it, true
		}
	}
}

// front returns the first item of class, live or stale; nil when empty.
func (q *expiryQueue[V]) front(class int) *timed[V] {
	if q.ordered {
		if len(q.heap) == 0 {
			return nil
		}
		return &q.heap[0]
	}
	r := &q.fifo[class]
	if r.n == 0 {
		return nil
	}
	return r.at(0)
}

// pop removes the first item of class (there must be one) and reports
// whether it was live; a stale one is dropped.
func (q *expiryQueue[V]) pop(class int) (timed[V], bool) {
	live := q.isLive == nil || q.isLive(class, q.front(class)) // in place: a pointer to a local would escape
	var it timed[V]
	if q.ordered {
		h := q.heap
		last := len(h) - 1
		it, h[0] = h[0], h[last]
		h[last] = timed[V]{}
		q.heap = h[:last]
		q.siftDown(0)
	} else {
		it = q.fifo[class].pop()
	}
	q.n--
	if live {
		q.live--
	}
	return it, live
}

// compact drops every stale item, keeping the order.
func (q *expiryQueue[V]) compact() {
	if q.isLive == nil {
		return
	}
	kept := 0
	if q.ordered {
		live := q.heap[:0]
		for i := range q.heap {
			if q.isLive(0, &q.heap[i]) {
				live = append(live, q.heap[i])
			}
		}
		clear(q.heap[len(live):])
		q.heap = live
		for i := len(live)/2 - 1; i >= 0; i-- {
			q.siftDown(i)
		}
		kept = len(live)
	} else {
		for c := range q.fifo {
			r := &q.fifo[c]
			j := 0
			for i := range r.n {
				if it := r.at(i); q.isLive(c, it) {
					*r.at(j) = *it
					j++
				}
			}
			for i := j; i < r.n; i++ {
				*r.at(i) = timed[V]{}
			}
			r.n = j
			kept += j
		}
	}
	q.n = kept
}

func (q *expiryQueue[V]) siftDown(i int) {
	h := q.heap
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].at < h[c].at {
			c++
		}
		if h[i].at <= h[c].at {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// nth returns the item i (0 the first) of FIFO class, live or stale, to
// be marked stale in place; valid until the next push.
func (q *expiryQueue[V]) nth(class, i int) *timed[V] { return q.fifo[class].at(i) }

// count returns the number of items of FIFO class, live and stale.
func (q *expiryQueue[V]) count(class int) int { return q.fifo[class].n }

// ring is a FIFO that grows by doubling (its length a power of two).
type ring[T any] struct {
	buf     []T
	head, n int
}

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		nb := make([]T, max(16, 2*len(r.buf)))
		for i := 0; i < r.n; i++ {
			nb[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

// at returns the item i, 0 the first.
func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

// pop removes and returns the first item, zeroing its slot.
func (r *ring[T]) pop() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return v
}
