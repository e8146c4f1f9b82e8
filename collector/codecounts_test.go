package collector

import (
	"sync"
	"testing"
	"unsafe"
)

// TestCodeCountsConcurrent has goroutines make the first count of the same
// codes at once: no count is lost to a row installed twice.
func TestCodeCountsConcurrent(t *testing.T) {
	var c codeCounts
	const workers, per = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				c.add(100+i%600, Method(w%int(numMethods)))
			}
		}()
	}
	wg.Wait()
	var total uint64
	c.each(nil, func(_ int, _ Method, v uint64) { total += v })
	if total != workers*per {
		t.Errorf("counted %d, want %d", total, workers*per)
	}
	if got := c.load(100, MethodINVITE); got != 2 { // worker 0, i = 0 and 600
		t.Errorf("100 INVITE counted %d, want 2", got)
	}
	if c.load(99, MethodINVITE) != 0 || c.load(700, MethodINVITE) != 0 {
		t.Error("invalid codes have counts")
	}
}

// TestNodeSize checks the fixed cost of a label set: the grid of counters
// is allocated per status code seen, not up front.
func TestNodeSize(t *testing.T) {
	if size := unsafe.Sizeof(Node{}) + unsafe.Sizeof(Counts{}); size > 6<<10 {
		t.Errorf("a Node of one shard is %d bytes, want at most 6 KiB before any status code is counted", size)
	}
	if size := unsafe.Sizeof(codeRow{}); size != 120 {
		t.Errorf("a code row is %d bytes, want 120", size)
	}
	n := NewSIP(1).Node(nil)
	code := 100
	if a := testing.AllocsPerRun(100, func() { n.ObserveResponse(code, []byte("INVITE")); code++ }); a != 1 {
		t.Errorf("the first count of a code allocates %v times, want 1 (its row)", a)
	}
	if a := testing.AllocsPerRun(100, func() { n.ObserveResponse(150, []byte("BYE")) }); a != 0 {
		t.Errorf("counting a code seen before allocates %v times", a)
	}
}
