package collector

import (
	"sync/atomic"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// codeRow holds the counters of one status code, one per method.
type codeRow [numMethods]atomic.Uint64

// codeCounts counts by (status code 100..699, [Method]). Its rows are
// allocated on the first count of their code, so a label set costs about
// 4.8 KiB plus 120 bytes per distinct code seen, not 72 KiB for the whole
// 600 × 15 grid. Add, load and each are safe for concurrent use and take
// no lock; add allocates only on the first count of a code.
type codeCounts struct {
	rows [numCodes]atomic.Pointer[codeRow]
}

// add counts one (code, m); code must be valid ([sipstatus.Valid]).
func (c *codeCounts) add(code int, m Method) {
	i := code - sipstatus.MinCode
	r := c.rows[i].Load()
	if r == nil {
		r = c.row(i)
	}
	r[m].Add(1)
}

// row returns row i, installing a new one if it is still missing (two
// first counts at once agree on one row).
func (c *codeCounts) row(i int) *codeRow {
	r := new(codeRow)
	if c.rows[i].CompareAndSwap(nil, r) {
		return r
	}
	return c.rows[i].Load()
}

// load returns the count of (code, m); 0 for an invalid code.
func (c *codeCounts) load(code int, m Method) uint64 {
	if !sipstatus.Valid(code) {
		return 0
	}
	if r := c.rows[code-sipstatus.MinCode].Load(); r != nil {
		return r[m].Load()
	}
	return 0
}

// each calls fn for every (code index, method) cell, in order, that has a
// row or is marked in show, with its count (0 for a missing row).
func (c *codeCounts) each(show *[numCodes][numMethods]bool, fn func(i int, m Method, v uint64)) {
	eachSum(show, fn, c)
}

// eachSum is each over the sums of the counts of cs (the shards of one
// label set): a cell is shown when any of them has its row.
func eachSum(show *[numCodes][numMethods]bool, fn func(i int, m Method, v uint64), cs ...*codeCounts) {
	for i := range numCodes {
		var rows [maxShards]*codeRow
		seen := false
		for k, c := range cs {
			if rows[k] = c.rows[i].Load(); rows[k] != nil {
				seen = true
			}
		}
		if !seen && show == nil {
			continue
		}
		for m := range numMethods {
			var v uint64
			for _, r := range rows[:len(cs)] {
				if r != nil {
					v += r[m].Load()
				}
			}
			if v == 0 && (show == nil || !show[i][m]) {
				continue
			}
			fn(i, m, v)
		}
	}
}
