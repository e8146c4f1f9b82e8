package main

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/merge"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/collector"
)

// dupPacket is one UDP datagram of a generated capture.
type dupPacket struct {
	at       time.Duration // after dupStart
	src, dst netip.AddrPort
	ipID     uint16
	payload  []byte
}

// dupStart is when the generated captures start: a multiple of the dedup
// table's time unit (2^17 ns), so that the offsets of the packets from it
// are their offsets from a unit boundary.
var dupStart = func() time.Time {
	ns := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	return time.Unix(0, ns-ns%(1<<17)).UTC()
}()

// writeDupCapture writes pkts as Ethernet/IPv4/UDP frames with nanosecond
// timestamps to a pcap file named name in dir and returns its path.
func writeDupCapture(t *testing.T, dir, name string, pkts []dupPacket) string {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: p.ipID, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP,
			SrcIP: p.src.Addr().AsSlice(), DstIP: p.dst.Addr().AsSlice()}
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.src.Port()), DstPort: layers.UDPPort(p.dst.Port())}
		_ = udp.SetNetworkLayerForChecksum(ip)
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(p.payload)); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: dupStart.Add(p.at), CaptureLength: len(sb.Bytes()), Length: len(sb.Bytes())}
		if err := w.WritePacket(ci, sb.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dedupResult is what a pipeline counted from generated captures.
type dedupResult struct {
	responses map[string]uint64 // "code METHOD", non-zero only
	requests  map[string]uint64 // by method, non-zero only
	removed   uint64
}

// dedupRead reads files as separate sources through a pipeline with dedup
// window w, as report does.
func dedupRead(t *testing.T, w time.Duration, files ...string) dedupResult {
	t.Helper()
	cfg := defaultPipelineConfig()
	cfg.DedupWindow = w
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := readFiles(p, files, testWorkers, new(decode.Stats), func(err error) { t.Error(err) }); err != nil {
		t.Fatal(err)
	}
	r := dedupResult{responses: map[string]uint64{}, requests: map[string]uint64{}}
	p.SourceNode("").Node().EachResponse(func(code int, m collector.Method, v uint64) {
		if v != 0 {
			r.responses[codeMethod(code, m)] = v
		}
	})
	for m := range collector.Methods {
		if v := p.SourceNode("").Node().Request(collector.Method(m)); v != 0 {
			r.requests[collector.Method(m).String()] = v
		}
	}
	if p.Dedup() {
		r.removed = p.DuplicatesRemoved()
	}
	return r
}

// reportResponses runs `sip_exporter report --format=prometheus` with
// flags on files and returns sip_responses_total by "code METHOD" (non-zero
// only).
func reportResponses(t *testing.T, flags []string, files ...string) map[string]uint64 {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := slices.Concat([]string{"report", "--format=prometheus"}, flags, files)
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("%v: exit code %d, stderr: %s", args, code, stderr.String())
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, m := range mfs["sip_responses_total"].GetMetric() {
		if v := uint64(m.GetCounter().GetValue()); v != 0 {
			got[labelValue(m, "code")+" "+labelValue(m, "method")] += v
		}
	}
	return got
}

// optionsOK is a 200 OK to an OPTIONS, the same bytes whoever sends it.
var optionsOK = []byte("SIP/2.0 200 OK\r\n" +
	"Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKping1\r\n" +
	"From: <sip:monitor@198.51.100.1>;tag=m1\r\n" +
	"To: <sip:ping@198.51.100.2>;tag=p1\r\n" +
	"Call-ID: ping-1@198.51.100.1\r\n" +
	"CSeq: 1 OPTIONS\r\n" +
	"Content-Length: 0\r\n\r\n")

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestDedupPairsAddresses: the same bytes between other addresses or ports
// are other messages, however close in time; only a copy (same bytes,
// addresses, ports and IPv4 ID) is removed.
func TestDedupPairsAddresses(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		files   [][]dupPacket // each file is a source
		want    uint64        // 200 OPTIONS counted
		removed uint64
	}{
		{name: "other address pair, same IPv4 ID", files: [][]dupPacket{{
			{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: 0x1234, payload: optionsOK},
			{at: ms, src: ap("10.0.0.3:5060"), dst: ap("10.0.0.4:5060"), ipID: 0x1234, payload: optionsOK},
		}}, want: 2},
		{name: "other source only, ID 0", files: [][]dupPacket{{
			{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), payload: optionsOK},
			{at: ms, src: ap("10.0.0.5:5060"), dst: ap("10.0.0.2:5060"), payload: optionsOK},
		}}, want: 2},
		{name: "other destination port only, ID 0", files: [][]dupPacket{{
			{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), payload: optionsOK},
			{at: ms, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5062"), payload: optionsOK},
		}}, want: 2},
		{name: "reversed direction, same instant", files: [][]dupPacket{{
			{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), payload: optionsOK},
			{at: 0, src: ap("10.0.0.2:5060"), dst: ap("10.0.0.1:5060"), payload: optionsOK},
		}}, want: 2},
		{name: "other address pair, second source", files: [][]dupPacket{
			{{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: 7, payload: optionsOK}},
			{{at: ms, src: ap("10.0.0.3:5060"), dst: ap("10.0.0.4:5060"), ipID: 7, payload: optionsOK}},
		}, want: 2},
		{name: "mirror copy in a second source 1ms later", files: [][]dupPacket{
			{{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: 0x4321, payload: optionsOK}},
			{{at: ms, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: 0x4321, payload: optionsOK}},
		}, want: 1, removed: 1},
		{name: "mirror copy in a second source 1ms earlier", files: [][]dupPacket{
			{{at: ms, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: 0x4321, payload: optionsOK}},
			{{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: 0x4321, payload: optionsOK}},
		}, want: 1, removed: 1},
		{name: "mirror copy in the same source, ID 0", files: [][]dupPacket{{
			{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), payload: optionsOK},
			{at: ms, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), payload: optionsOK},
		}}, want: 1, removed: 1},
		{name: "sent again with a new IPv4 ID 1ms later", files: [][]dupPacket{{
			{at: 0, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: 100, payload: optionsOK},
			{at: ms, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: 101, payload: optionsOK},
		}}, want: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []string
			for i, pkts := range tc.files {
				files = append(files, writeDupCapture(t, dir, fmt.Sprintf("source%d.pcap", i), pkts))
			}
			got := dedupRead(t, pipeline.DefaultDedupWindow, files...)
			want := map[string]uint64{"200 OPTIONS": tc.want}
			if !maps.Equal(got.responses, want) || got.removed != tc.removed {
				t.Errorf("counted %v, removed %d; want %v, removed %d", got.responses, got.removed, want, tc.removed)
			}
			// The report command, as a user runs it, counts the same.
			if rep := reportResponses(t, nil, files...); !maps.Equal(rep, want) {
				t.Errorf("report counted %v, want %v", rep, want)
			}
		})
	}
}

// TestDedupPairsRetransmission: a SIP retransmission, T1 = 500 ms after
// the first sending (RFC 3261 §17.1.1.2), with the same bytes and
// addresses and the IPv4 ID 0 that Linux gives DF datagrams (or a new ID),
// always counts: with the default window, with 499ms, and with the largest
// window the flag accepts (merge.MaxWindow). The first sending is placed
// at several offsets from the dedup table's 131 µs time unit.
func TestDedupPairsRetransmission(t *testing.T) {
	windows := []time.Duration{pipeline.DefaultDedupWindow, 499 * time.Millisecond, merge.MaxWindow}
	phases := []time.Duration{0, 20 * time.Microsecond, 40 * time.Microsecond, 65 * time.Microsecond, 100 * time.Microsecond, 130 * time.Microsecond}
	for _, w := range windows {
		for _, ids := range [][2]uint16{{0, 0}, {0x2000, 0x2001}} {
			for _, phase := range phases {
				t.Run(fmt.Sprintf("window=%v/ip_id=%d,%d/phase=%v", w, ids[0], ids[1], phase), func(t *testing.T) {
					file := writeDupCapture(t, t.TempDir(), "retrans.pcap", []dupPacket{
						{at: phase, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: ids[0], payload: optionsOK},
						{at: phase + 500*time.Millisecond, src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), ipID: ids[1], payload: optionsOK},
					})
					want := map[string]uint64{"200 OPTIONS": 2}
					if got := dedupRead(t, w, file); !maps.Equal(got.responses, want) || got.removed != 0 {
						t.Errorf("counted %v, removed %d; want %v, removed 0 (a retransmission T1 later is never a copy)", got.responses, got.removed, want)
					}
					if rep := reportResponses(t, []string{"--capture.dedup-window=" + w.String()}, file); !maps.Equal(rep, want) {
						t.Errorf("report --capture.dedup-window=%v counted %v, want %v", w, rep, want)
					}
				})
			}
		}
	}
}

// TestDedupPairsFortyCopies: one SIP call flow (INVITE, 100, 180, 200,
// ACK, BYE, 200) replicated across 40 address pairs with the same bytes
// and IPv4 ID 0, the 40 copies of each message 50 µs apart (all 40 within
// 2 ms, well inside the window): 40 calls, none is a copy, every message
// counts 40 times.
func TestDedupPairsFortyCopies(t *testing.T) {
	const copies = 40
	flow := slices.Concat(answered(), byeFromB(1500, ""))
	var pkts []dupPacket
	for _, m := range flow {
		payload := m.bytes("forty@192.0.2.1")
		for k := range copies {
			a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(k), 1}), 5060)
			b := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(k), 2}), 5060)
			src, dst := a, b
			if m.fromB {
				src, dst = b, a
			}
			pkts = append(pkts, dupPacket{at: time.Duration(m.ms)*time.Millisecond + time.Duration(k)*50*time.Microsecond, src: src, dst: dst, payload: payload})
		}
	}
	wantResp, wantReq := map[string]uint64{}, map[string]uint64{}
	for _, m := range flow {
		if m.code != 0 {
			wantResp[fmt.Sprintf("%d %s", m.code, m.method)] += copies
		} else {
			wantReq[m.method] += copies
		}
	}
	dir := t.TempDir()
	file := writeDupCapture(t, dir, "forty.pcap", pkts)
	for _, w := range []time.Duration{pipeline.DefaultDedupWindow, 499 * time.Millisecond} {
		t.Run(fmt.Sprintf("window=%v", w), func(t *testing.T) {
			got := dedupRead(t, w, file)
			if !maps.Equal(got.responses, wantResp) || !maps.Equal(got.requests, wantReq) || got.removed != 0 {
				t.Errorf("counted responses %v, requests %v, removed %d; want %v, %v, removed 0", got.responses, got.requests, got.removed, wantResp, wantReq)
			} else {
				t.Logf("responses %v, requests %v, removed 0", got.responses, got.requests)
			}
			if rep := reportResponses(t, []string{"--capture.dedup-window=" + w.String()}, file); !maps.Equal(rep, wantResp) {
				t.Errorf("report counted %v, want %v", rep, wantResp)
			}
		})
	}
	// Not asserted: the transaction tracker keys transactions by Call-ID,
	// CSeq and Via branch, not by addresses, so it takes the 40 copies for
	// one call and its retransmissions.
	t.Logf("tracker on the 40 copies: %v", txValues(t, file))
	// The same capture read twice (two sources seeing the same packets):
	// the second read is all copies.
	t.Run("read twice", func(t *testing.T) {
		got := dedupRead(t, pipeline.DefaultDedupWindow, file, file)
		if !maps.Equal(got.responses, wantResp) || !maps.Equal(got.requests, wantReq) || got.removed != uint64(len(pkts)) {
			t.Errorf("counted responses %v, requests %v, removed %d; want %v, %v, removed %d", got.responses, got.requests, got.removed, wantResp, wantReq, len(pkts))
		}
	})
}

// TestDedupWindowFlag: --capture.dedup-window at or above T1 = 500 ms is
// refused at start with an error naming the flag; up to merge.MaxWindow,
// and 0, it is accepted.
func TestDedupWindowFlag(t *testing.T) {
	file := writeDupCapture(t, t.TempDir(), "one.pcap", []dupPacket{
		{src: ap("10.0.0.1:5060"), dst: ap("10.0.0.2:5060"), payload: optionsOK},
	})
	for _, tc := range []struct {
		window string
		code   int
	}{
		{"500ms", 1},
		{"1s", 1},
		{"-1ms", 1},
		{(merge.MaxWindow + 1).String(), 1},
		{merge.MaxWindow.String(), 0},
		{"499ms", 0},
		{"0", 0},
	} {
		t.Run(tc.window, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"report", "--capture.dedup-window=" + tc.window, file}, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if tc.code != 0 && !strings.Contains(stderr.String(), "--capture.dedup-window") {
				t.Errorf("stderr does not name --capture.dedup-window: %q", stderr.String())
			}
			if tc.code != 0 {
				t.Logf("stderr: %s", strings.TrimSpace(stderr.String()))
			}
		})
	}
	// serve checks the window before it opens any source or listener.
	for _, w := range []string{"500ms", "1s"} {
		t.Run("serve/"+w, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{"--capture.dedup-window=" + w, "--capture.pcap-file=" + file, "--web.listen-address=127.0.11.1:0", "--log.level=error"}
			if code := run(args, &stdout, &stderr); code != 1 {
				t.Errorf("serve --capture.dedup-window=%s: exit code %d, want 1", w, code)
			}
		})
	}
}
