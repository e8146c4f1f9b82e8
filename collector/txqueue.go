package collector

import "sync/atomic"

// eventQueue is a bounded multi-producer queue of TxEvent values (Dmitry
// Vyukov's bounded MPMC array queue), used here with one consumer. push and
// pop take no lock and do not allocate: a producer claims a cell with one
// compare-and-swap on the enqueue position and publishes it with a store of
// the cell's sequence number; the consumer reads the cell once that number
// says it is full. A full queue makes push return false at once.
type eventQueue struct {
	mask  uint64
	cells []queueCell
	_     [56]byte // keep the positions on cache lines of their own
	enq   atomic.Uint64
	_     [56]byte
	deq   uint64 // owned by the one consumer
}

type queueCell struct {
	seq atomic.Uint64
	ev  TxEvent
}

// newEventQueue returns a queue of size cells, rounded up to a power of two
// (at least 2).
func newEventQueue(size int) *eventQueue {
	n := 2
	for n < size {
		n <<= 1
	}
	q := &eventQueue{mask: uint64(n - 1), cells: make([]queueCell, n)}
	for i := range q.cells {
		q.cells[i].seq.Store(uint64(i))
	}
	return q
}

// push copies *ev into the queue; false when the queue is full. Safe for
// concurrent use by any number of producers.
func (q *eventQueue) push(ev *TxEvent) bool {
	pos := q.enq.Load()
	for {
		c := &q.cells[pos&q.mask]
		switch seq := c.seq.Load(); {
		case seq == pos:
			if q.enq.CompareAndSwap(pos, pos+1) {
				c.ev = *ev
				c.seq.Store(pos + 1)
				return true
			}
			pos = q.enq.Load()
		case int64(seq-pos) < 0:
			return false // the cell still holds an event a lap behind: full
		default:
			pos = q.enq.Load() // another producer took pos
		}
	}
}

// pop moves the oldest event into *ev; false when the queue is empty. Only
// one goroutine may pop.
func (q *eventQueue) pop(ev *TxEvent) bool {
	c := &q.cells[q.deq&q.mask]
	if c.seq.Load() != q.deq+1 {
		return false
	}
	*ev = c.ev
	c.ev.Node = nil // do not keep a Node alive from an old cell
	c.seq.Store(q.deq + q.mask + 1)
	q.deq++
	return true
}
