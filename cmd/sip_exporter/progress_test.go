package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestProgressLine: nothing is shown before the delay; then a line that
// rewrites itself in place with packets and capture time, erased at the
// end; a nil line shows nothing.
func TestProgressLine(t *testing.T) {
	rd := &reading{files: []*fileReading{{workers: nil}}}
	rd.files[0].latest.Store(time.Date(2026, 11, 1, 12, 0, 5, 0, time.UTC).UnixNano())

	var quiet syncBuffer
	pl := &progressLine{w: &quiet, after: time.Hour, every: time.Millisecond}
	pl.start(rd)
	pl.end()
	if quiet.String() != "" {
		t.Errorf("shown before its delay: %q", quiet.String())
	}

	var out syncBuffer
	pl = &progressLine{w: &out, after: 0, every: time.Millisecond}
	pl.start(rd)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\r\x1b[K") < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	pl.end()
	got := out.String()
	if !strings.HasPrefix(got, "\r\x1b[Ksip_exporter report: 0 packets read, capture time 2026-11-01 12:00:05 UTC, ") || !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("progress output %q", got)
	}
	var none *progressLine
	none.start(rd)
	none.end()

	if got := progressText(12, math.MinInt64, 3*time.Second); got != "sip_exporter report: 12 packets read, 3s" {
		t.Errorf("before any capture time: %q", got)
	}
}
