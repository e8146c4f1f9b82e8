package input

import "testing"

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
