package capture_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sip-exporter/sip_exporter/capture"
)

func TestDedupSeen(t *testing.T) {
	const ms = int64(time.Millisecond)
	a := []byte("SIP/2.0 200 OK\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\n\r\n")
	b := []byte("SIP/2.0 200 OK\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\n\r\n")
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).UnixNano()
	type seen struct {
		msg  []byte
		id   uint16 // IPv4 identification
		at   int64  // ms after base
		want bool
	}
	for _, tc := range []struct {
		name string
		seq  []seen
	}{
		{"copy at once", []seen{{a, 1, 0, false}, {a, 1, 0, true}}},
		{"copy within window", []seen{{a, 1, 0, false}, {a, 1, 99, true}, {a, 1, 100, true}}},
		{"copy seen first by the later source", []seen{{a, 1, 50, false}, {a, 1, 0, true}}},
		{"different messages", []seen{{a, 1, 0, false}, {b, 1, 0, false}, {a, 1, 1, true}, {b, 1, 1, true}}},
		{"retransmission after T1", []seen{{a, 1, 0, false}, {a, 1, 500, false}, {a, 1, 501, true}, {a, 1, 1500, false}}},
		{"just outside the window", []seen{{a, 1, 0, false}, {a, 1, 102, false}}},
		{"window measured from the first copy", []seen{{a, 1, 0, false}, {a, 1, 60, true}, {a, 1, 120, false}}},
		{"sent twice (different IP identification)", []seen{{a, 1, 0, false}, {a, 2, 0, false}, {a, 2, 1, true}}},
		{"IPv6 or HEP copy (no identification)", []seen{{a, 0, 0, false}, {a, 0, 5, true}}},
		{"across a wrap of the time unit", []seen{{a, 1, 1<<32*131/1000 - 10, false}, {a, 1, 1<<32*131/1000 + 10, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := capture.NewDedup(100*time.Millisecond, 0)
			if err != nil {
				t.Fatal(err)
			}
			removed := uint64(0)
			for i, s := range tc.seq {
				if got := d.Seen(s.msg, s.id, base+s.at*ms); got != s.want {
					t.Errorf("message %d at %d ms: Seen = %v, want %v", i, s.at, got, s.want)
				}
				if s.want {
					removed++
				}
			}
			if d.Removed() != removed {
				t.Errorf("Removed = %d, want %d", d.Removed(), removed)
			}
		})
	}
}

func TestNewDedupErrors(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		slots  int
		want   string
	}{
		{0, 0, "dedup window 0s: must be above 0 and at most 24h"},
		{-time.Second, 0, "dedup window -1s: must be above 0 and at most 24h"},
		{25 * time.Hour, 0, "dedup window 25h0m0s: must be above 0 and at most 24h"},
		{time.Second, 6, "dedup table of 6 slots: must be a power of two, at least 4"},
		{time.Second, 2, "dedup table of 2 slots: must be a power of two, at least 4"},
	} {
		if _, err := capture.NewDedup(tc.window, tc.slots); err == nil || err.Error() != tc.want {
			t.Errorf("NewDedup(%v, %d) = %v, want %q", tc.window, tc.slots, err, tc.want)
		}
	}
}

// TestDedupConcurrent has four sources see the same messages at the same
// time: each message is counted once, every other copy removed.
func TestDedupConcurrent(t *testing.T) {
	d, err := capture.NewDedup(100*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	const sources, messages = 4, 2000
	msgs := make([][]byte, messages)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "OPTIONS sip:a SIP/2.0\r\nCall-ID: %d\r\nCSeq: 1 OPTIONS\r\n\r\n", i)
	}
	now := time.Now().UnixNano()
	var wg sync.WaitGroup
	var kept [sources]int
	for s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range msgs {
				if !d.Seen(m, 7, now) {
					kept[s]++
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, k := range kept {
		total += k
	}
	if total != messages || d.Removed() != (sources-1)*messages {
		t.Errorf("kept %d (want %d), removed %d (want %d)", total, messages, d.Removed(), (sources-1)*messages)
	}
}

func TestDedupAllocs(t *testing.T) {
	d, _ := capture.NewDedup(100*time.Millisecond, 0)
	msg := []byte(ok.text)
	ts := int64(0)
	if n := testing.AllocsPerRun(1000, func() { ts += int64(time.Millisecond); d.Seen(msg, 7, ts) }); n != 0 {
		t.Errorf("Seen allocates %v times per call", n)
	}
}

// BenchmarkDedupSeen measures the check of one 200 OK with SDP, new each
// time (a hash, a bucket scan and a compare-and-swap).
func BenchmarkDedupSeen(b *testing.B) {
	d, _ := capture.NewDedup(100*time.Millisecond, 0)
	msg := []byte(ok.text)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	ts := int64(0)
	for b.Loop() {
		ts += int64(time.Millisecond)
		d.Seen(msg, 7, ts)
	}
}
