package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestWriteBenchCaptures writes, when SIP_EXPORTER_WRITE_BENCH names a
// directory, the two captures the performance figures of report use
// (capture/README.md): SIP over UDP between 40 address pairs, about
// 1,070,000 packets of calls as SIPp's uac/uas scenarios make them
// (INVITE, 100, 180, 200, ACK, BYE, 200, the INVITE and its 200 with a
// Content-Type but no body; one call in five rejected: INVITE, 100, 486,
// ACK), 2 ms apart:
//
//   - pairs-sequential.pcap: one pair at a time, 1/40 of the calls each, as
//     between an SBC and its proxy;
//   - pairs-interleaved.pcap: the same calls, the pairs taking turns.
//
// It also prints the counts written, the independent expectation of
// report's. Run: SIP_EXPORTER_WRITE_BENCH=/tmp go test ./cmd/sip_exporter -run TestWriteBenchCaptures -v
func TestWriteBenchCaptures(t *testing.T) {
	dir := os.Getenv("SIP_EXPORTER_WRITE_BENCH")
	if dir == "" {
		t.Skip("SIP_EXPORTER_WRITE_BENCH not set")
	}
	const pairs, callsPerPair = 40, 4180 // 4180 × 40 calls × 6.4 packets ≈ 1,070,000
	for _, interleaved := range []bool{false, true} {
		name := "pairs-sequential.pcap"
		if interleaved {
			name = "pairs-interleaved.pcap"
		}
		counts, n, err := writePairsCapture(filepath.Join(dir, name), pairs, callsPerPair, interleaved)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d packets, %v", name, n, counts)
	}
}

// writePairsCapture writes the calls of every pair, one pair after
// another or the pairs taking turns call by call, and returns the
// messages written by first line and the packets.
func writePairsCapture(path string, pairs, callsPerPair int, interleaved bool) (map[string]int, int, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, 0, err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	ts := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	counts := map[string]int{}
	packets := 0
	frame := make([]byte, 0, 2048)
	write := func(pair int, fromB bool, payload []byte) error {
		a := [4]byte{10, 10, byte(pair), 1}
		b := [4]byte{10, 20, byte(pair), 1}
		if fromB {
			a, b = b, a
		}
		frame = frame[:0]
		frame = append(frame, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00) // Ethernet, IPv4
		ipLen := 20 + 8 + len(payload)
		frame = append(frame, 0x45, 0, byte(ipLen>>8), byte(ipLen), byte(packets>>8), byte(packets), 0x40, 0, 64, 17, 0, 0)
		frame = append(frame, a[:]...)
		frame = append(frame, b[:]...)
		frame = binary.BigEndian.AppendUint16(frame, 5060)
		frame = binary.BigEndian.AppendUint16(frame, 5060)
		frame = binary.BigEndian.AppendUint16(frame, uint16(8+len(payload)))
		frame = append(frame, 0, 0)
		frame = append(frame, payload...)
		ts = ts.Add(2 * time.Millisecond)
		packets++
		return w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}, frame)
	}
	call := func(pair, i int) error {
		id := fmt.Sprintf("%08x-%d-%d@10.10.%d.1", rng.Uint32(), pair, i, pair)
		// Every message of a call has its transaction's branch and its
		// dialog's tags, as answered and byeFromB give them.
		msgs := slices.Concat(answered(), byeFromB(0, ""))
		if i%5 == 4 {
			msgs = []sipMsg{msgs[0], msgs[1],
				{fromB: true, method: "INVITE", code: 486, cseq: 1, branch: msgs[0].branch, fromTag: msgs[0].fromTag, toTag: "b1"},
				{method: "ACK", cseq: 1, branch: msgs[0].branch, fromTag: msgs[0].fromTag, toTag: "b1"}}
		}
		for _, m := range msgs {
			if m.method == "INVITE" && m.code == 0 || m.code == 200 && m.method == "INVITE" {
				m.extra = "Content-Type: application/sdp\r\n"
			}
			p := m.bytes(id)
			if m.code == 0 {
				counts[m.method]++
			} else {
				counts[fmt.Sprintf("%d %s", m.code, m.method)]++
			}
			if err := write(pair, m.fromB, p); err != nil {
				return err
			}
		}
		return nil
	}
	if interleaved {
		for i := range callsPerPair {
			for pair := range pairs {
				if err := call(pair, i); err != nil {
					return nil, 0, err
				}
			}
		}
	} else {
		for pair := range pairs {
			for i := range callsPerPair {
				if err := call(pair, i); err != nil {
					return nil, 0, err
				}
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, 0, err
	}
	return counts, packets, f.Close()
}

// TestPairsCaptureSessions reads a small capture of writePairsCapture (3
// pairs of 10 calls, both orders) and checks every non-zero value of the
// tracker against what the generator put in: every call is an attempt;
// four in five are answered (INVITE, 100, 180, 200, ACK, BYE, 200, 2 ms
// apart) and ended by the callee's BYE, the fifth is rejected (INVITE,
// 100, 486, ACK); nothing else, so nothing times out or goes unmatched.
// The delays follow from the spacing: request delay 4 ms (to the 180 or
// the 486), duration 4 ms (200 to BYE), disconnect delay 2 ms. The
// performance figures of report are only worth what this workload is.
func TestPairsCaptureSessions(t *testing.T) {
	const pairs, callsPerPair = 3, 10
	const calls, answered = pairs * callsPerPair, pairs * callsPerPair * 4 / 5
	const ms = 0.001
	want := map[string]float64{
		"sip_session_attempts_total":                               calls,
		"sip_session_outcomes_total{code=200}":                     answered,
		"sip_session_outcomes_total{code=486}":                     calls - answered,
		"sip_sessions_ended_total{reason=bye}":                     answered,
		"sip_session_duration_seconds_count":                       answered,
		"sip_session_duration_seconds_sum":                         answered * 4 * ms,
		"sip_session_disconnect_delay_seconds_count":               answered,
		"sip_session_disconnect_delay_seconds_sum":                 answered * 2 * ms,
		"sip_session_request_delay_seconds_count{outcome=success}": answered,
		"sip_session_request_delay_seconds_sum{outcome=success}":   answered * 4 * ms,
		"sip_session_request_delay_seconds_count{outcome=failure}": calls - answered,
		"sip_session_request_delay_seconds_sum{outcome=failure}":   (calls - answered) * 4 * ms,
	}
	for _, interleaved := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "pairs.pcap")
		if _, _, err := writePairsCapture(path, pairs, callsPerPair, interleaved); err != nil {
			t.Fatal(err)
		}
		got := txValues(t, path)
		for k, v := range got {
			if w, ok := want[k]; !ok || math.Abs(v-w) > 1e-9 {
				t.Errorf("interleaved %v: %s = %v, want %v", interleaved, k, v, w)
			}
		}
		for k, w := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("interleaved %v: %s missing, want %v", interleaved, k, w)
			}
		}
	}
}
