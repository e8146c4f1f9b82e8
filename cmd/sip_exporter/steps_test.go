package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReportTimesStepBack: a capture whose timestamps step back now and
// then (two interfaces' clocks merged with mergecap -a), by 50 ms (less
// than the skew window) and by 500 ms (more), across 30 address pairs,
// the file's order being the order the messages were sent. report with 1,
// 2 and 4 workers (and as many shards) gives the same whole exposition,
// and the counts the generator wrote: every message once, every call
// answered and ended by its BYE, nothing unmatched or timed out.
func TestReportTimesStepBack(t *testing.T) {
	const calls = 120
	var pkts []dupPacket
	var msgs int
	for c := range calls {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(c % 30), 1}), 5060)
		b := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(c % 30), 1}), 5060)
		id := fmt.Sprintf("step-%d@10.1.0.1", c)
		for _, m := range slices.Concat(answered(), byeFromB(3000, "")) {
			src, dst := a, b
			if m.fromB {
				src, dst = b, a
			}
			pkts = append(pkts, dupPacket{src: src, dst: dst, ipID: uint16(len(pkts)), payload: m.bytes(id)})
			msgs++
		}
	}
	// 10 ms apart in file order, every other block of 37 packets stamped
	// 50 ms or 500 ms behind.
	var steps int
	for k := range pkts {
		back := time.Duration(0)
		if block := k / 37; block%2 == 1 {
			back = 50 * time.Millisecond
			if block%4 == 3 {
				back = 500 * time.Millisecond
			}
		}
		if k > 0 && k%37 == 0 && back > 0 {
			steps++
		}
		pkts[k].at = time.Duration(k)*10*time.Millisecond - back
	}
	file := writeDupCapture(t, t.TempDir(), "steps.pcap", pkts)
	var want string
	for _, workers := range []int{1, 2, 4} {
		var stdout, stderr bytes.Buffer
		args := []string{"report", "--format=prometheus", fmt.Sprintf("--capture.workers=%d", workers), fmt.Sprintf("--capture.shards=%d", workers), file}
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		got := stdout.String()
		if workers == 1 {
			want = got
			for series, n := range map[string]int{
				`sip_session_attempts_total{node=""}`:                                    calls,
				`sip_session_outcomes_total{class="2xx",code="200",node="",reason="OK"}`: calls,
				`sip_session_timeouts_total{node=""}`:                                    0,
				`sip_sessions_ended_total{node="",reason="bye"}`:                         calls,
				`sip_requests_total{method="INVITE",node=""}`:                            calls,
				`sip_requests_total{method="ACK",node=""}`:                               calls,
				`sip_requests_total{method="BYE",node=""}`:                               calls,
			} {
				if !strings.Contains(got, series+" "+fmt.Sprint(n)+"\n") {
					t.Errorf("%d workers: want %s %d", workers, series, n)
				}
			}
			continue
		}
		if got != want {
			t.Errorf("%d workers and shards: exposition differs from one's:\n%s", workers, lineDiff(want, got))
		}
	}
	if steps < 10 || msgs != len(pkts) {
		t.Fatalf("generator: %d steps back, %d messages", steps, msgs)
	}
}
