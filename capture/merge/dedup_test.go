package merge_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/merge"
)

// Two address pairs: a, b are hosts of one pair; c, d of another.
var (
	hostA = netip.MustParseAddrPort("192.0.2.1:5060")
	hostB = netip.MustParseAddrPort("192.0.2.2:5060")
	hostC = netip.MustParseAddrPort("198.51.100.1:5060")
	hostD = netip.MustParseAddrPort("[2001:db8::1]:5062")
)

// okText is a 200 OK with SDP.
const okText = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nCall-ID: b1@x\r\nCSeq: 1 INVITE\r\n" +
	"Content-Type: application/sdp\r\nContent-Length: 40\r\n\r\nv=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nt=0 0\r\n"

func TestDedupSeen(t *testing.T) {
	const ms = int64(time.Millisecond)
	a := []byte("SIP/2.0 200 OK\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\n\r\n")
	b := []byte("SIP/2.0 200 OK\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\n\r\n")
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).UnixNano()
	type seen struct {
		msg      []byte
		id       uint16 // IPv4 identification
		at       int64  // ms after base
		want     bool
		src, dst netip.AddrPort
	}
	for _, tc := range []struct {
		name string
		seq  []seen
	}{
		{"copy at once", []seen{{a, 1, 0, false, hostA, hostB}, {a, 1, 0, true, hostA, hostB}}},
		{"copy within window", []seen{{a, 1, 0, false, hostA, hostB}, {a, 1, 99, true, hostA, hostB}, {a, 1, 100, true, hostA, hostB}}},
		{"copy seen first by the later source", []seen{{a, 1, 50, false, hostA, hostB}, {a, 1, 0, true, hostA, hostB}}},
		{"different messages", []seen{{a, 1, 0, false, hostA, hostB}, {b, 1, 0, false, hostA, hostB}, {a, 1, 1, true, hostA, hostB}, {b, 1, 1, true, hostA, hostB}}},
		{"retransmission after T1", []seen{{a, 1, 0, false, hostA, hostB}, {a, 1, 500, false, hostA, hostB}, {a, 1, 501, true, hostA, hostB}, {a, 1, 1500, false, hostA, hostB}}},
		{"just outside the window", []seen{{a, 1, 0, false, hostA, hostB}, {a, 1, 102, false, hostA, hostB}}},
		{"window measured from the first copy", []seen{{a, 1, 0, false, hostA, hostB}, {a, 1, 60, true, hostA, hostB}, {a, 1, 120, false, hostA, hostB}}},
		{"sent twice (different IP identification)", []seen{{a, 1, 0, false, hostA, hostB}, {a, 2, 0, false, hostA, hostB}, {a, 2, 1, true, hostA, hostB}}},
		{"IPv6 or HEP copy (no identification)", []seen{{a, 0, 0, false, hostA, hostB}, {a, 0, 5, true, hostA, hostB}}},
		{"across a wrap of the time unit", []seen{{a, 1, 1<<32*131/1000 - 10, false, hostA, hostB}, {a, 1, 1<<32*131/1000 + 10, true, hostA, hostB}}},
		{"same bytes between two address pairs", []seen{{a, 0, 0, false, hostA, hostB}, {a, 0, 0, false, hostC, hostD}, {a, 0, 1, true, hostC, hostD}}},
		{"same bytes in the other direction", []seen{{a, 0, 0, false, hostA, hostB}, {a, 0, 0, false, hostB, hostA}}},
		{"same hosts, other ports", []seen{{a, 0, 0, false, hostA, hostB}, {a, 0, 0, false, hostA, netip.AddrPortFrom(hostB.Addr(), 5080)}}},
		{"mirror copy with the same addresses", []seen{{a, 0, 0, false, hostA, hostD}, {a, 0, 3, true, hostA, hostD}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := merge.NewDedup(100*time.Millisecond, 0)
			if err != nil {
				t.Fatal(err)
			}
			removed := uint64(0)
			for i, s := range tc.seq {
				if got := d.Seen(d.Key(s.msg, s.src, s.dst, s.id), base+s.at*ms); got != s.want {
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
		{0, 0, "dedup window 0s: must be above 0 and below T1 (500ms), or a SIP retransmission could be removed"},
		{-time.Second, 0, "dedup window -1s: must be above 0 and below T1 (500ms), or a SIP retransmission could be removed"},
		{500 * time.Millisecond, 0, "dedup window 500ms: must be above 0 and below T1 (500ms), or a SIP retransmission could be removed"},
		{time.Hour, 0, "dedup window 1h0m0s: must be above 0 and below T1 (500ms), or a SIP retransmission could be removed"},
		{100 * time.Millisecond, 6, "dedup table of 6 slots: must be a power of two, at least 4"},
		{100 * time.Millisecond, 2, "dedup table of 2 slots: must be a power of two, at least 4"},
	} {
		if _, err := merge.NewDedup(tc.window, tc.slots); err == nil || err.Error() != tc.want {
			t.Errorf("NewDedup(%v, %d) = %v, want %q", tc.window, tc.slots, err, tc.want)
		}
	}
}

func TestDedupAllocs(t *testing.T) {
	d, _ := merge.NewDedup(100*time.Millisecond, 0)
	msg := []byte(okText)
	ts := int64(0)
	if n := testing.AllocsPerRun(1000, func() { ts += int64(time.Millisecond); d.Seen(d.Key(msg, hostA, hostD, 7), ts) }); n != 0 {
		t.Errorf("Key and Seen allocate %v times per call", n)
	}
}

// BenchmarkDedupSeen measures the check of one 200 OK with SDP, new each
// time (the key's hashes, a bucket scan and a compare-and-swap).
func BenchmarkDedupSeen(b *testing.B) {
	d, _ := merge.NewDedup(100*time.Millisecond, 0)
	msg := []byte(okText)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	ts := int64(0)
	for b.Loop() {
		ts += int64(time.Millisecond)
		d.Seen(d.Key(msg, hostA, hostD, 7), ts)
	}
}
