package main

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReportKeepaliveShards: OPTIONS keepalives of four configured peers
// and of one that is not, each with a Call-ID of its own, between calls,
// read by report with 1 to 4 workers and as many shards, once and with
// every packet twice (the file given twice: copies for dedup). The whole
// exposition must be the same for every count, and sip_peer_up the state
// derived by hand from the script below (thresholds 3 and 2, carrier-c 1
// and 3), outcomes taken in the order they are learned: a response when
// seen, a timeout 32 s (64*T1) after its request.
func TestReportKeepaliveShards(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "peers.yml")
	if err := os.WriteFile(cfg, []byte(`peers:
  - name: carrier-a
    cidrs: [192.0.2.0/24]
  - name: carrier-b
    cidrs: [198.51.100.0/24]
  - name: carrier-c
    cidrs: [10.3.0.0/16]
    keepalive_down_after: 1
    keepalive_up_after: 3
  - name: carrier-d
    cidrs: [10.4.0.0/16]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ours := ap("203.0.113.1:5060")
	a, b, c, d := ap("192.0.2.7:5060"), ap("198.51.100.9:5060"), ap("10.3.0.1:5060"), ap("10.4.0.1:5060")
	stranger := ap("172.16.0.1:5060")
	var pkts []dupPacket
	n := 0
	add := func(ms int, src, dst netip.AddrPort, m sipMsg, callID string) {
		pkts = append(pkts, dupPacket{at: time.Duration(ms) * time.Millisecond, src: src, dst: dst, ipID: uint16(len(pkts)), payload: m.bytes(callID)})
	}
	// ping is a keepalive from src to dst at s seconds: answered 10 ms
	// later with code, or never (0).
	ping := func(s int, src, dst netip.AddrPort, code int) {
		n++
		id := fmt.Sprintf("ka-%d@keepalive.example", n)
		br, tag := fmt.Sprintf("z9hG4bKka%d", n), fmt.Sprintf("k%d", n)
		add(s*1000, src, dst, sipMsg{method: "OPTIONS", cseq: 1, branch: br, fromTag: tag}, id)
		if code != 0 {
			add(s*1000+10, dst, src, sipMsg{method: "OPTIONS", code: code, cseq: 1, branch: br, fromTag: tag, toTag: "t" + tag}, id)
		}
	}
	// The script, by peer; S a 200, F a 503, T no answer. The file is
	// sorted by time below.
	//
	// carrier-a, pinged by us every 10 s from 0 s: S S S S S S F F F S:
	// up at the 2nd, down at the 9th (3 failures), 1 success: down (0).
	for k, code := range []int{200, 200, 200, 200, 200, 200, 503, 503, 503, 200} {
		ping(k*10, ours, a, code)
	}
	// carrier-b pings us every 10 s from 1 s: S S T T S S; the timeouts
	// of 21 s and 31 s are learned at 53 s and 63 s, after the successes
	// of 41 s and 51 s: S S S S F F: up (1).
	for k, code := range []int{200, 200, 0, 0, 200, 200} {
		ping(1+k*10, b, ours, code)
	}
	// carrier-c (down after 1, up after 3), pinged by us every 10 s from
	// 2 s: S S S F S S: up at the 3rd, down at the 4th, 2 of 3 successes
	// since: down (0).
	for k, code := range []int{200, 200, 200, 503, 200, 200} {
		ping(2+k*10, ours, c, code)
	}
	// carrier-d, pinged by us every 10 s from 3 s: S S T F F S; the
	// timeout of 23 s is learned at 55 s, after the 503s of 33 s and 43 s
	// and the success of 53 s: S S F F S F: up (1). In the order the
	// keepalives were sent it would have gone down (T F F) and stayed so.
	for k, code := range []int{200, 200, 0, 503, 503, 200} {
		ping(3+k*10, ours, d, code)
	}
	// Not a configured peer: no sip_peer_up.
	for k := range 5 {
		ping(4+k*10, ours, stranger, 503)
	}
	// Calls with carrier-a until 120 s carry the capture's time past every
	// timeout.
	for k := range 12 {
		id := fmt.Sprintf("call-%d@keepalive.example", k)
		for _, m := range answered() {
			src, dst := ours, a
			if m.fromB {
				src, dst = a, ours
			}
			add(k*10_000+5+m.ms, src, dst, m, id)
		}
	}
	slices.SortStableFunc(pkts, func(x, y dupPacket) int { return cmp.Compare(x.at, y.at) })
	file := writeDupCapture(t, dir, "keepalives.pcap", pkts)

	for _, files := range [][]string{{file}, {file, file}} {
		var want string
		for _, workers := range []int{1, 2, 3, 4} {
			var stdout, stderr bytes.Buffer
			args := append([]string{"report", "--format=prometheus", "--config.file=" + cfg,
				fmt.Sprintf("--capture.workers=%d", workers), fmt.Sprintf("--capture.shards=%d", workers)}, files...)
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
			}
			got := stdout.String()
			if workers > 1 {
				if got != want {
					t.Errorf("%d files, %d workers and shards: exposition differs from one's:\n%s", len(files), workers, lineDiff(want, got))
				}
				continue
			}
			want = got
			var up []string
			for _, l := range strings.Split(got, "\n") {
				if strings.HasPrefix(l, "sip_peer_up{") {
					up = append(up, l)
				}
			}
			wantUp := []string{
				`sip_peer_up{direction="inbound",node="",peer="carrier-b"} 1`,
				`sip_peer_up{direction="outbound",node="",peer="carrier-a"} 0`,
				`sip_peer_up{direction="outbound",node="",peer="carrier-c"} 0`,
				`sip_peer_up{direction="outbound",node="",peer="carrier-d"} 1`,
			}
			if strings.Join(up, "\n") != strings.Join(wantUp, "\n") {
				t.Errorf("%d files: sip_peer_up\n%s\nwant\n%s", len(files), strings.Join(up, "\n"), strings.Join(wantUp, "\n"))
			}
			if !strings.Contains(got, `sip_session_attempts_total{direction="outbound",node="",peer="carrier-a"} 12`+"\n") {
				t.Errorf("%d files: not the 12 calls to carrier-a", len(files))
			}
		}
	}
}
