package main

// End to end through report (issue 19): a TCP connection reusing the
// addresses and ports of one before it without its SYN, bytes sent again
// from before the capture, and UDP datagrams with CR and LF bytes before
// the start line. Every count is known by construction.

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// streamSegment is one TCP segment of a generated capture.
type streamSegment struct {
	src, dst netip.AddrPort
	seq      uint32
	syn      bool
	payload  string
}

// writeStreamCapture writes segs as Ethernet/IPv4/TCP frames 1 ms apart,
// from dupStart, to a pcap file named name in dir and returns its path.
func writeStreamCapture(t *testing.T, dir, name string, segs []streamSegment) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	err = w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	for i := 0; i < len(segs) && err == nil; i++ {
		b := streamFrame(t, uint16(i), segs[i])
		err = w.WritePacket(gopacket.CaptureInfo{Timestamp: dupStart.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(b), Length: len(b)}, b)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// streamFrame returns the Ethernet frame of segment s, IPv4 ID id.
func streamFrame(t *testing.T, id uint16, s streamSegment) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: id, Protocol: layers.IPProtocolTCP, SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.src.Port()), DstPort: layers.TCPPort(s.dst.Port()), Seq: s.seq, Ack: 1, Window: 65535,
		SYN: s.syn, ACK: !s.syn, PSH: s.payload != ""}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0x19, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0x19, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(s.payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// streamEnds are the two ends of the generated TCP connections.
var streamEnds = [2]netip.AddrPort{ap("10.19.0.1:40001"), ap("10.19.0.2:5060")}

// pingMessage returns message n of connection conn: from the client
// (from 0) an OPTIONS or the 200 OK to the server's NOTIFY n, from the
// server the 200 OK to OPTIONS n or a NOTIFY with a 300-byte body.
func pingMessage(conn string, from int, response bool, n int) string {
	method, body := "OPTIONS", ""
	if from == 1 != response {
		method, body = "NOTIFY", strings.Repeat("event-state: active;padding\r\n", 10)
	}
	start := fmt.Sprintf("%s sip:%s SIP/2.0\r\n", method, streamEnds[1-from])
	if response {
		start, body = "SIP/2.0 200 OK\r\n", ""
	}
	return fmt.Sprintf("%sVia: SIP/2.0/TCP %s;branch=z9hG4bK-%s-%s-%d\r\nFrom: <sip:a@%s>;tag=%s%d\r\nTo: <sip:b@%s>\r\n"+
		"Call-ID: %s-%s-%d@issue19\r\nCSeq: %d %s\r\nContent-Length: %d\r\n\r\n%s",
		start, streamEnds[0], conn, method, n, streamEnds[0].Addr(), conn, n, streamEnds[1].Addr(), conn, method, n, n+1, method, len(body), body)
}

// pingStreams returns the bytes each end of connection conn sends in k
// exchanges: OPTIONS, its 200 OK and a NOTIFY, the NOTIFY's 200 OK.
func pingStreams(conn string, k int) [2]string {
	var s [2]string
	for n := range k {
		s[0] += pingMessage(conn, 0, false, n)
		s[1] += pingMessage(conn, 1, true, n) + pingMessage(conn, 1, false, n)
		s[0] += pingMessage(conn, 0, true, n)
	}
	return s
}

// pieces returns the segments of stream from from, sequence numbers from
// seq, size bytes each but the last.
func pieces(from int, seq uint32, stream string, size int) []streamSegment {
	var out []streamSegment
	for len(stream) > 0 {
		n := min(size, len(stream))
		out = append(out, streamSegment{src: streamEnds[from], dst: streamEnds[1-from], seq: seq, payload: stream[:n]})
		seq += uint32(n)
		stream = stream[n:]
	}
	return out
}

// alternate returns a segment of a, then of b, in turn.
func alternate(a, b []streamSegment) []streamSegment {
	var out []streamSegment
	for i := range max(len(a), len(b)) {
		if i < len(a) {
			out = append(out, a[i])
		}
		if i < len(b) {
			out = append(out, b[i])
		}
	}
	return out
}

// pingCounts returns the summary's requests and responses of k exchanges.
func pingCounts(k uint64) (map[string]uint64, map[string]uint64) {
	return map[string]uint64{"OPTIONS": k, "NOTIFY": k}, map[string]uint64{"200 OPTIONS": k, "200 NOTIFY": k}
}

// summaryCounts returns the requests by method and responses by "code
// method" of the report's JSON summary.
func summaryCounts(s *summary) (map[string]uint64, map[string]uint64) {
	req, resp := map[string]uint64{}, map[string]uint64{}
	for _, r := range s.Total.Requests {
		req[r.Method] += r.Count
	}
	for _, r := range s.Total.Responses {
		resp[fmt.Sprintf("%d %s", r.Code, r.Method)] += r.Count
	}
	return req, resp
}

// TestReportTCPReusedTuple: connection 1 with its SYNs and 5 exchanges,
// then connection 2 on the same addresses and ports with 40, its SYNs not
// captured (nor connection 1's FINs), its initial sequence numbers behind
// connection 1's first bytes by 100 bytes, 10 KiB, 900 KiB or 3 GiB
// (wrapping round to 1 GiB ahead). Report counts every message of both;
// the flow starts again once per direction (reportOf's decoders). Before,
// a distance under 1 MiB took connection 2's segments for
// retransmissions of connection 1 and lost its messages.
func TestReportTCPReusedTuple(t *testing.T) {
	isn := [2]uint32{2_000_000_000, 77_000}
	old, nu := pingStreams("one", 5), pingStreams("two", 40)
	for _, behind := range []uint32{100, 10 << 10, 900 << 10, 3 << 30} {
		t.Run(fmt.Sprint(behind), func(t *testing.T) {
			segs := []streamSegment{{src: streamEnds[0], dst: streamEnds[1], seq: isn[0], syn: true}, {src: streamEnds[1], dst: streamEnds[0], seq: isn[1], syn: true}}
			segs = append(segs, alternate(pieces(0, isn[0]+1, old[0], 700), pieces(1, isn[1]+1, old[1], 700))...)
			// Connection 2's ISN is behind by that much; its first byte
			// follows its SYN.
			segs = append(segs, alternate(pieces(0, isn[0]+1-behind+1, nu[0], 1000), pieces(1, isn[1]+1-behind+1, nu[1], 1000))...)
			path := writeStreamCapture(t, t.TempDir(), "reuse.pcap", segs)
			wantReq, wantResp := pingCounts(45)
			req, resp := summaryCounts(reportJSON(t, "report", "--format=json", path))
			if !maps.Equal(req, wantReq) || !maps.Equal(resp, wantResp) {
				t.Errorf("report counted requests %v, responses %v; want %v, %v", req, resp, wantReq, wantResp)
			}
			_, st := reportOf(t, path)
			if n := st.Stream.Resyncs.Load(); n != 2 {
				t.Errorf("sip_exporter_tcp_stream_resyncs_total = %d, want 2", n)
			}
			if n := st.Stream.Retransmitted.Load(); n != 0 {
				t.Errorf("sip_exporter_tcp_segments_retransmitted_total = %d, want 0", n)
			}
		})
	}
}

// TestReportTCPRetransmissionBeforeCapture: the capture begins inside a
// connection (no SYN) at the server's third message; the server then
// sends again its second, sent before the capture began, and goes on with
// new messages, or first sends again the three seen (go-back-N). The
// message never seen counts, and so does every message after it, once.
func TestReportTCPRetransmissionBeforeCapture(t *testing.T) {
	msgs := make([]string, 10)
	starts := make([]uint32, len(msgs))
	seq := uint32(4_294_966_000) // the stream wraps
	for i := range msgs {
		msgs[i] = pingMessage("pre", 1, true, i)
		starts[i] = seq
		seq += uint32(len(msgs[i]))
	}
	for _, tc := range []struct {
		name    string
		order   []int
		retrans uint64
	}{
		{"then new data", []int{2, 3, 4, 1, 5, 6, 7, 8, 9}, 0},
		{"then the segments seen again", []int{2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var segs []streamSegment
			for _, i := range tc.order {
				segs = append(segs, streamSegment{src: streamEnds[1], dst: streamEnds[0], seq: starts[i], payload: msgs[i]})
			}
			path := writeStreamCapture(t, t.TempDir(), "before.pcap", segs)
			want := map[string]uint64{"200 OPTIONS": 9}
			if _, resp := summaryCounts(reportJSON(t, "report", "--format=json", path)); !maps.Equal(resp, want) {
				t.Errorf("report counted responses %v, want %v", resp, want)
			}
			_, st := reportOf(t, path)
			// The flow starts again at the segment from before the
			// capture and goes back to the stream it left.
			if r, g, rs := st.Stream.Retransmitted.Load(), st.Stream.Gaps.Load(), st.Stream.Resyncs.Load(); r != tc.retrans || g != 0 || rs != 2 {
				t.Errorf("retransmitted = %d, gaps = %d, resyncs = %d; want %d, 0, 2", r, g, rs, tc.retrans)
			}
		})
	}
}

// TestReportUDPCRLF: UDP datagrams with CR and LF bytes glued before the
// start line count as the message they carry, a datagram of CRLFs alone
// is a keep-alive (sip_exporter_packets_skipped_total{reason="keepalive"}),
// and nothing is skipped as not SIP. Before, both messages were skipped,
// reason not_sip.
func TestReportUDPCRLF(t *testing.T) {
	invite := "INVITE sip:bob@10.19.1.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.19.1.1:5060;branch=z9hG4bK-crlf\r\nFrom: <sip:alice@10.19.1.1>;tag=a1\r\n" +
		"To: <sip:bob@10.19.1.2>\r\nCall-ID: crlf@issue19\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@10.19.1.1>\r\nContent-Length: 0\r\n\r\n"
	ok := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.19.1.1:5060;branch=z9hG4bK-crlf\r\nFrom: <sip:alice@10.19.1.1>;tag=a1\r\n" +
		"To: <sip:bob@10.19.1.2>;tag=b1\r\nCall-ID: crlf@issue19\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@10.19.1.2>\r\nContent-Length: 0\r\n\r\n"
	a, b := ap("10.19.1.1:5060"), ap("10.19.1.2:5060")
	path := writeDupCapture(t, t.TempDir(), "crlf.pcap", []dupPacket{
		{at: 0, src: a, dst: b, ipID: 1, payload: []byte("\r\n\r\n" + invite)},
		{at: 20 * time.Millisecond, src: b, dst: a, ipID: 2, payload: []byte("\r\n" + ok)},
		{at: 40 * time.Millisecond, src: a, dst: b, ipID: 3, payload: []byte("\r\n\r\n")},
	})
	req, resp := summaryCounts(reportJSON(t, "report", "--format=json", path))
	if w := map[string]uint64{"INVITE": 1}; !maps.Equal(req, w) {
		t.Errorf("report counted requests %v, want %v", req, w)
	}
	if w := map[string]uint64{"200 INVITE": 1}; !maps.Equal(resp, w) {
		t.Errorf("report counted responses %v, want %v", resp, w)
	}
	_, st := reportOf(t, path)
	if k, n := st.Skipped(decode.SkipKeepalive), st.Skipped(decode.SkipNotSIP); k != 1 || n != 0 {
		t.Errorf("skipped keepalive = %d, not_sip = %d; want 1, 0", k, n)
	}
}
