package main

import (
	"strings"
	"testing"
)

// TestCaptureWorkersFlag: --capture.workers out of 1..64 is refused at
// start (exit 2), naming the flag, before any source is opened; its
// default is one worker per CPU, 1 to 8.
func TestCaptureWorkersFlag(t *testing.T) {
	for _, arg := range []string{"--capture.workers=0", "--capture.workers=65", "--capture.workers=-1"} {
		var stdout, stderr strings.Builder
		n := strings.TrimPrefix(arg, "--capture.workers=")
		want := "--capture.workers " + n + ": must be 1 to 64"
		if code := run([]string{arg, "--capture.interface=lo", "--web.listen-address=127.0.15.1:0"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", arg, code, stderr.String(), want)
		}
	}
	for cpus, want := range map[int]int{0: 1, 1: 1, 2: 2, 4: 4, 8: 8, 64: 8} {
		if got := defaultCaptureWorkers(cpus); got != want {
			t.Errorf("%d CPUs: %d workers, want %d", cpus, got, want)
		}
	}
}
