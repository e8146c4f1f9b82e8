package input

import (
	"fmt"
	"testing"
	"time"
)

// TestWorkerBlocks checks how an interface's ring blocks are shared out
// between its workers.
func TestWorkerBlocks(t *testing.T) {
	for _, tc := range []struct {
		blocks, n int
		want      []int
	}{
		{64, 1, []int{64}},
		{64, 2, []int{32, 32}},
		{64, 3, []int{22, 21, 21}},
		{10, 4, []int{3, 3, 2, 2}},
		{2, 4, []int{1, 1, 1, 1}}, // at least one block each
		{1, 1, []int{1}},
	} {
		for i, want := range tc.want {
			if got := workerBlocks(tc.blocks, tc.n, i); got != want {
				t.Errorf("workerBlocks(%d, %d, %d) = %d, want %d", tc.blocks, tc.n, i, got, want)
			}
		}
	}
}

// TestRingBlockSize checks the block size of an interface's ring, and so
// the blocks of each worker, for ring sizes, workers and block timeouts.
func TestRingBlockSize(t *testing.T) {
	const KiB, MiB = 1 << 10, 1 << 20
	for _, tc := range []struct {
		ring, n      int
		timeout      time.Duration
		block, first int // block size, blocks of worker 0
	}{
		{64 * MiB, 1, 64 * time.Millisecond, 1 * MiB, 64},
		{64 * MiB, 2, 64 * time.Millisecond, 1 * MiB, 32},
		{64 * MiB, 3, 64 * time.Millisecond, 512 * KiB, 43},
		{64 * MiB, 4, 64 * time.Millisecond, 512 * KiB, 32},
		{64 * MiB, 5, 64 * time.Millisecond, 256 * KiB, 52},
		{64 * MiB, 8, 64 * time.Millisecond, 256 * KiB, 32},
		{64 * MiB, 9, 64 * time.Millisecond, 128 * KiB, 57},
		{64 * MiB, 16, 64 * time.Millisecond, 128 * KiB, 32},
		{64 * MiB, 32, 64 * time.Millisecond, 128 * KiB, 16}, // past 16 workers: fewer blocks
		{64 * MiB, 64, 64 * time.Millisecond, 128 * KiB, 8},
		{256 * MiB, 64, 64 * time.Millisecond, 128 * KiB, 32},
		{4 * MiB, 2, 64 * time.Millisecond, 128 * KiB, 16},
		{4 * MiB, 64, 64 * time.Millisecond, 128 * KiB, 1}, // at least one block each: the ring grows to 8 MiB
		{16 * MiB, 1, 64 * time.Millisecond, 512 * KiB, 32},
		{64 * MiB, 2, 256 * time.Millisecond, 1 * MiB, 32}, // 8 blocks would do
		{64 * MiB, 2, 10 * time.Millisecond, 128 * KiB, 256},
		{64 * MiB, 8, 64*time.Millisecond + 900*time.Microsecond, 256 * KiB, 32}, // the kernel takes whole ms
		{64 * MiB, 2, 0, 128 * KiB, 256},                                         // no timeout below 1 ms
		{100 * KiB, 1, 64 * time.Millisecond, 128 * KiB, 1},                      // below one block: Live fails
	} {
		name := fmt.Sprintf("%dKiB/%d/%v", tc.ring/KiB, tc.n, tc.timeout)
		t.Run(name, func(t *testing.T) {
			b := ringBlockSize(tc.ring, tc.n, tc.timeout)
			if b != tc.block {
				t.Fatalf("block %d KiB, want %d KiB", b/KiB, tc.block/KiB)
			}
			if got := workerBlocks(tc.ring/b, tc.n, 0); got != tc.first {
				t.Errorf("worker 0: %d blocks, want %d", got, tc.first)
			}
		})
	}
}

// TestRingBlockSizeCovers checks, for every worker count and ring sizes
// from 1 to 1024 MiB, that the block is a power of two from 128 KiB to
// 1 MiB (so a multiple of the page and frame sizes), and that every
// worker's blocks cover 2 s of 64 ms block timeouts where its share of
// the ring holds 32 blocks of 128 KiB.
func TestRingBlockSizeCovers(t *testing.T) {
	for ring := 1 << 20; ring <= 1<<30; ring *= 2 {
		for n := 1; n <= MaxWorkers; n++ {
			b := ringBlockSize(ring, n, DefaultBlockTimeout)
			if b < minRingBlockBytes || b > ringBlockBytes || b&(b-1) != 0 || b%(64<<10) != 0 {
				t.Fatalf("ring %d, %d workers: block %d", ring, n, b)
			}
			if ring/n < 32*minRingBlockBytes {
				continue
			}
			for i := range n {
				if got := workerBlocks(ring/b, n, i); time.Duration(got)*DefaultBlockTimeout < 2*time.Second {
					t.Errorf("ring %d MiB, %d workers, block %d KiB: worker %d has %d blocks", ring>>20, n, b>>10, i, got)
				}
			}
		}
	}
}
