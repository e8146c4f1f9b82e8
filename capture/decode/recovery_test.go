package decode_test

// Crafted captures of TCP streams that must recover (issue 13): written
// with pcapgo, read back through input.ReadFile, every count known by
// construction.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// payloadRecorder records each message and the length of its Origin
// payload.
type payloadRecorder struct {
	msgs     []got
	payloads []int
	byCode   map[int]int
}

func (r *payloadRecorder) handle(o *decode.Origin, m *sip.Message) {
	g := got{0, string(m.Method)}
	if m.Response {
		g = got{m.StatusCode, string(m.CSeqMethod)}
	}
	r.msgs = append(r.msgs, g)
	r.payloads = append(r.payloads, len(o.Payload))
	if r.byCode == nil {
		r.byCode = map[int]int{}
	}
	r.byCode[g.code]++
}

// replay writes frames to a pcap file, reads it back through a decoder
// of cfg (nil: the defaults) and returns what it counted and saw.
func replay(t *testing.T, cfg *stream.Config, frames []packet) (*decode.Stats, *payloadRecorder) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crafted.pcap")
	writePcap(t, path, true, layers.LinkTypeEthernet, frames)
	dc := decode.DefaultConfig()
	if cfg != nil {
		dc.TCP = *cfg
	}
	st, rec := new(decode.Stats), new(payloadRecorder)
	d, err := decode.New(dc, st, rec.handle)
	if err != nil {
		t.Fatal(err)
	}
	if err := input.ReadFile(context.Background(), input.FileConfig{Path: path}, d); err != nil {
		t.Fatal(err)
	}
	return st, rec
}

// response returns a 200 OK to INVITE number n of call id with a body of
// bodyLen bytes (0: none).
func response(code int, id string, n, bodyLen int) string {
	h := fmt.Sprintf("SIP/2.0 %d %s\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK%d\r\nFrom: <sip:alice@example.com>;tag=a%d\r\n"+
		"To: <sip:bob@example.com>;tag=b%d\r\nCall-ID: %s-%d\r\nCSeq: %d INVITE\r\n", code, "Reason", n, n, n, id, n, n+1)
	if bodyLen == 0 {
		return h + "Content-Length: 0\r\n\r\n"
	}
	return h + fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n", bodyLen) + sdpOf(bodyLen)
}

// sdpOf returns an SDP-like body of exactly n bytes, CRLF line ends, no
// line that starts a SIP message.
func sdpOf(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(fmt.Sprintf("a=rtpmap:%d PCMU/8000\r\n", i%128))
	}
	s := b.String()[:n]
	if n >= 2 {
		s = s[:n-2] + "\r\n"
	}
	return s
}

// segments cuts s into pieces of size bytes.
func segments(s string, size int) []string {
	var out []string
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

// sendAll returns the frames of conn sending each piece, at ts.
func sendAll(c *tcpConn, ts time.Time, pieces []string) []packet {
	var ps []packet
	for _, p := range pieces {
		lt, f := c.data(p)
		ps = append(ps, packet{lt, f, ts})
	}
	return ps
}

var t13 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// A new connection on the same addresses and ports whose SYN was not
// captured, its sequence numbers behind the old connection's (whose FIN was
// not captured either): before, every segment was a retransmission.
func TestTCPNewConnectionWithoutSYN(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delta int64 // new ISN minus the old connection's next byte
	}{
		{"behind", -100_000_000},
		{"ahead", 300_000_000},
		{"half the sequence space", 1 << 31}, // once a slice at offset -2^31: a panic
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := newConn(t, ethernet, bob4, alice4, 4_000_000_000)
			frames := []packet{{layers.LinkTypeEthernet, func() []byte { _, f := old.syn(); return f }(), t13}}
			for i := range 10 {
				frames = append(frames, sendAll(old, t13, []string{response(180, "old", i, 0)})...)
			}
			nc := newConn(t, ethernet, bob4, alice4, old.seq+uint32(tc.delta))
			var stream string
			for i := range 50 {
				stream += response(200, "new", i, 300)
			}
			frames = append(frames, sendAll(nc, t13.Add(time.Second), segments(stream, 1000))...)
			st, rec := replay(t, nil, frames)
			if rec.byCode[180] != 10 || rec.byCode[200] != 50 {
				t.Errorf("180s = %d (want 10), 200s = %d (want 50)", rec.byCode[180], rec.byCode[200])
			}
			if n := st.Stream.Resyncs.Load(); n != 1 {
				t.Errorf("resyncs = %d, want 1", n)
			}
			if n := st.Stream.Retransmitted.Load(); n != 0 {
				t.Errorf("retransmitted = %d, want 0", n)
			}
		})
	}
}

// A segment lost inside the stream, later segments starting mid-message.
func TestTCPLostSegment(t *testing.T) {
	var msgs []string
	var starts []int
	stream := ""
	for i := range 40 {
		starts = append(starts, len(stream))
		m := response(200, "lost", i, 1500)
		msgs = append(msgs, m)
		stream += m
	}
	const size = 700
	pieces := segments(stream, size)
	// headerIn returns the segment holding the start line of message i.
	headerIn := func(i int) int { return starts[i] / size }
	// bodyOnly returns a segment wholly inside the body of message i.
	bodyOnly := func(i int) int {
		b := starts[i] + strings.Index(msgs[i], "\r\n\r\n") + 4
		return (b + size - 1) / size
	}
	for _, tc := range []struct {
		name string
		lost int // index of the segment not captured
		want int // responses counted
	}{
		// The message whose body is cut had its header: counted, the
		// rest of its body skipped by Content-Length.
		{"inside a body", bodyOnly(20), 40},
		// The segment with message 20's start line is lost: message
		// 20 is lost, and the next one is found inside a segment.
		{"at a start line", headerIn(20), 39},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "inside a body" && (tc.lost*size < starts[20] || (tc.lost+1)*size > starts[21]) {
				t.Fatalf("segment %d is not inside message 20", tc.lost)
			}
			c := newConn(t, ethernet, bob4, alice4, 77)
			frames := []packet{{layers.LinkTypeEthernet, func() []byte { _, f := c.syn(); return f }(), t13}}
			for i, p := range pieces {
				lt, f := c.data(p)
				if i != tc.lost {
					frames = append(frames, packet{lt, f, t13})
				}
			}
			lt, f := c.next(fACK|fFIN, nil)
			frames = append(frames, packet{lt, f, t13})
			st, rec := replay(t, nil, frames)
			if got := rec.byCode[200]; got != tc.want {
				t.Errorf("responses = %d, want %d of 40", got, tc.want)
			}
			if n := st.Stream.Gaps.Load(); n != 1 {
				t.Errorf("gaps = %d, want 1", n)
			}
			if n := st.Stream.Flows.Load(); n != 0 {
				t.Errorf("flows after FIN = %d, want 0", n)
			}
		})
	}
}

// A 200 OK with a 200,000-byte multipart body, over the 128 KiB flow
// buffer, followed by more messages.
func TestTCPLargeBody(t *testing.T) {
	body := "--b\r\nContent-Type: application/sdp\r\n\r\n" + sdpOf(199_900)
	body += strings.Repeat("x", 200_000-len(body)-9) + "\r\n--b--\r\n"
	if len(body) != 200_000 {
		t.Fatalf("body is %d bytes", len(body))
	}
	big := "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.10;branch=z9hG4bKbig\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n" +
		"Call-ID: big\r\nCSeq: 1 INVITE\r\nContent-Type: multipart/mixed;boundary=b\r\nContent-Length: 200000\r\n\r\n"
	header := len(big)
	big += body
	stream := response(180, "before", 0, 0) + big
	for i := range 5 {
		stream += response(486, "after", i, 200)
	}
	for _, size := range []int{1460, 9000, 65000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := newConn(t, ethernet, bob4, alice4, 1)
			frames := []packet{{layers.LinkTypeEthernet, func() []byte { _, f := c.syn(); return f }(), t13}}
			frames = append(frames, sendAll(c, t13, segments(stream, size))...)
			st, rec := replay(t, nil, frames)
			w := map[int]int{180: 1, 200: 1, 486: 5}
			for code, n := range w {
				if rec.byCode[code] != n {
					t.Errorf("%d responses = %d, want %d", code, rec.byCode[code], n)
				}
			}
			for i, g := range rec.msgs {
				if g.code == 200 && rec.payloads[i] != header {
					t.Errorf("payload of the large message = %d bytes, want its %d-byte header", rec.payloads[i], header)
				}
			}
			if n := st.ParseError(decode.ErrTooLong); n != 0 {
				t.Errorf("too_long = %d, want 0", n)
			}
			if n := st.Stream.Memory.Load(); n > 16<<10 {
				t.Errorf("reassembly memory after = %d bytes", n)
			}
		})
	}
}

// vlanFrame returns ip in an Ethernet frame with an 802.1Q tag.
func vlanFrame(tb testing.TB, vlan uint16, ip []byte) []byte {
	return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: vlan, Type: ethType(ip)}, gopacket.Payload(ip))
}

// vxlanFrame returns ip in Ethernet in VXLAN with vni, between two VTEPs.
func vxlanFrame(tb testing.TB, vni uint32, ip []byte) []byte {
	h := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	return ether(tb, udpPacket(tb, netip.AddrPortFrom(mirrorSrc, 40000), netip.AddrPortFrom(mirrorDst, 4789), cat(h, ether(tb, ip))))
}

// Two VLANs and two VXLAN VNIs, the same addresses, ports and sequence
// numbers in each, segments interleaved: four tenants, not one flow.
func TestTCPOverlappingTenants(t *testing.T) {
	wraps := []struct {
		code int
		wrap func(tb testing.TB, ip []byte) []byte
	}{
		{200, func(tb testing.TB, ip []byte) []byte { return vlanFrame(tb, 10, ip) }},
		{486, func(tb testing.TB, ip []byte) []byte { return vlanFrame(tb, 20, ip) }},
		{503, func(tb testing.TB, ip []byte) []byte { return vxlanFrame(tb, 5001, ip) }},
		{404, func(tb testing.TB, ip []byte) []byte { return vxlanFrame(tb, 5002, ip) }},
	}
	var streams [4][]string
	for i, w := range wraps {
		s := ""
		for n := range 30 {
			s += response(w.code, "tenant", n, 0)
		}
		// The same message lengths in every tenant: the same sequence
		// numbers carry different bytes.
		streams[i] = segments(s, 500)
	}
	var frames []packet
	seqs := [4]uint32{}
	for i := range wraps {
		seqs[i] = 1000
		ip := tcpPacket(t, bob4, alice4, seqs[i], fSYN, nil)
		frames = append(frames, packet{layers.LinkTypeEthernet, wraps[i].wrap(t, ip), t13})
		seqs[i]++
	}
	for j := range streams[0] {
		for i, w := range wraps {
			ip := tcpPacket(t, bob4, alice4, seqs[i], fACK|fPSH, []byte(streams[i][j]))
			seqs[i] += uint32(len(streams[i][j]))
			frames = append(frames, packet{layers.LinkTypeEthernet, w.wrap(t, ip), t13})
		}
	}
	// And a fragmented UDP INVITE in each VLAN, the same IP ID,
	// fragments interleaved.
	frags := fragments(t, udpPacket(t, alice4, bob4, []byte(inviteText)), 1400, 7)
	for _, f := range frags {
		for i := range 2 {
			frames = append(frames, packet{layers.LinkTypeEthernet, wraps[i].wrap(t, f), t13})
		}
	}
	st, rec := replay(t, nil, frames)
	for _, w := range wraps {
		if n := rec.byCode[w.code]; n != 30 {
			t.Errorf("tenant %d: %d responses, want 30", w.code, n)
		}
	}
	if n := rec.byCode[0]; n != 2 {
		t.Errorf("fragmented INVITEs = %d, want 2 (one per VLAN)", n)
	}
	if n := st.Stream.Flows.Load(); n != 4 {
		t.Errorf("flows = %d, want 4", n)
	}
	if n := st.Stream.Retransmitted.Load(); n != 0 {
		t.Errorf("retransmitted = %d, want 0", n)
	}
}

// FIN (or RST) while segments are held for a gap that never fills: they
// are handed on before the flow is forgotten; a message whose header is
// complete and body cut by the FIN is counted.
func TestTCPFinWithHeldSegments(t *testing.T) {
	for _, fl := range []struct {
		name  string
		flags int
	}{{"fin", fACK | fFIN}, {"rst", fRST}} {
		t.Run(fl.name, func(t *testing.T) {
			c := newConn(t, ethernet, bob4, alice4, 500)
			m := make([]string, 6)
			for i := range m {
				m[i] = response(200, "fin", i, 200)
			}
			frames := []packet{{layers.LinkTypeEthernet, func() []byte { _, f := c.syn(); return f }(), t13}}
			frames = append(frames, sendAll(c, t13, m[:2])...)
			c.data(m[2]) // lost
			frames = append(frames, sendAll(c, t13, m[3:5])...)
			// Message 5 with half its body: the rest never comes.
			half := m[5][:len(m[5])-100]
			frames = append(frames, sendAll(c, t13, []string{half})...)
			lt, f := c.at(c.seq+100, fl.flags, nil)
			frames = append(frames, packet{lt, f, t13})
			st, rec := replay(t, nil, frames)
			if n := rec.byCode[200]; n != 5 {
				t.Errorf("responses = %d, want 5 (all but the lost one)", n)
			}
			if n := st.Stream.Flows.Load(); n != 0 {
				t.Errorf("flows = %d, want 0", n)
			}
			if n := st.Stream.Gaps.Load(); n != 1 {
				t.Errorf("gaps = %d, want 1", n)
			}
		})
	}
}

// The memory budget: flows that never showed SIP hold nothing back, and
// past the budget the least recently active flows holding memory are
// evicted, counted.
func TestTCPMemoryBudget(t *testing.T) {
	t.Run("not sip holds nothing", func(t *testing.T) {
		cfg := stream.DefaultConfig()
		cfg.MaxBufferBytes, cfg.MaxMemoryBytes = 4096, 16384
		d, st, rec := newDecoder(t, &cfg)
		sipc := newConn(t, ethernet, bob4, alice4, 1)
		feed(d, pk(sipc.syn()), pk(sipc.data(ok.text[:200])))
		// 200 HTTPS-like flows sending segments out of order.
		for i := range 200 {
			c := newConn(t, ethernet, netip.AddrPortFrom(alice4.Addr(), uint16(20000+i)), netip.AddrPortFrom(bob4.Addr(), 443), 9)
			feed(d, pk(c.syn()), pk(c.at(c.seq+3000, fACK|fPSH, []byte(binNoLF(1400)))), pk(c.at(c.seq+6000, fACK|fPSH, []byte(binNoLF(1400)))))
		}
		feed(d, pk(sipc.data(ok.text[200:])))
		if w := want(ok); !sameMsgs(rec.msgs, w) {
			t.Errorf("messages = %v, want %v", rec.msgs, w)
		}
		if n := st.Stream.Evicted(stream.EvictMemory); n != 0 {
			t.Errorf("evicted(memory) = %d, want 0", n)
		}
	})
	t.Run("over budget", func(t *testing.T) {
		cfg := stream.DefaultConfig()
		cfg.MaxBufferBytes, cfg.MaxMemoryBytes = 1024, 8192
		d, st, rec := newDecoder(t, &cfg)
		var conns []*tcpConn
		for i := range 40 {
			c := newConn(t, ethernet, netip.AddrPortFrom(bob4.Addr(), uint16(30000+i)), alice4, 1)
			conns = append(conns, c)
			feed(d, pk(c.syn()), pk(c.data(invite.text[:600])))
			if m := st.Stream.Memory.Load(); m > cfg.MaxMemoryBytes+2*int64(cfg.MaxBufferBytes) {
				t.Fatalf("memory = %d bytes, over the budget by more than one flow", m)
			}
		}
		if n := st.Stream.Evicted(stream.EvictMemory); n == 0 {
			t.Error("no eviction for memory")
		}
		// The newest flows kept their partial message.
		last := conns[len(conns)-1]
		feed(d, pk(last.data(invite.text[600:])))
		if w := want(invite); !sameMsgs(rec.msgs, w) {
			t.Errorf("messages = %v, want %v", rec.msgs, w)
		}
		d.Reset()
		if m := st.Stream.Memory.Load(); m != 0 {
			t.Errorf("memory after Reset = %d", m)
		}
	})
}

// A gap lands inside a message/sipfrag body: the status line quoted there
// is not counted, the messages around it are.
func TestTCPHuntSipfrag(t *testing.T) {
	notify := "NOTIFY sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.20;branch=z9hG4bKn\r\nFrom: <sip:b@example.com>;tag=1\r\n" +
		"To: <sip:a@example.com>;tag=2\r\nCall-ID: refer\r\nCSeq: 2 NOTIFY\r\nEvent: refer\r\nContent-Type: message/sipfrag\r\nContent-Length: 16\r\n\r\n" +
		"SIP/2.0 200 OK\r\n"
	for _, tc := range []struct {
		name string
		join string // where the capture starts, mid-stream
		want []got
	}{
		{"status line then a request", notify[len(notify)-40:] + invite.text, want(invite)},
		{"status line then a response", notify[len(notify)-40:] + response(180, "x", 1, 0), []got{{180, "INVITE"}}},
		{"before the notify", notify[10:] + notify + ack.text, []got{{0, "NOTIFY"}, {0, "ACK"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _, rec := newDecoder(t, nil)
			c := newConn(t, ethernet, bob4, alice4, 1)
			feed(d, pk(c.data(tc.join)))
			if !sameMsgs(rec.msgs, tc.want) {
				t.Errorf("messages = %v, want %v", rec.msgs, tc.want)
			}
		})
	}
}

// A segment cut by the capture's snap length: its IP length runs past the
// captured bytes. The missing tail is a gap skipped at once, not data that
// makes every later segment look out of order.
func TestTCPSnapLengthCut(t *testing.T) {
	var starts, headers []int
	stream := ""
	for i := range 20 {
		m := response(200, "snap", i, 300)
		starts = append(starts, len(stream))
		headers = append(headers, strings.Index(m, "\r\n\r\n")+4)
		stream += m
	}
	const size, keep = 1000, 100 // segment 4 keeps 100 of its 1,000 bytes
	lostFrom, lostTo := 4*size+keep, 5*size
	want := 0 // messages whose header was captured whole
	for i := range starts {
		if starts[i]+headers[i] <= lostFrom || starts[i] >= lostTo {
			want++
		}
	}
	if want == len(starts) {
		t.Fatal("the cut loses no header: a weak test")
	}
	st, n := new(decode.Stats), 0
	d2, err := decode.New(decode.DefaultConfig(), st, func(*decode.Origin, *sip.Message) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(t, ethernet, bob4, alice4, 1)
	lt, f := c.syn()
	d2.Packet(lt, f, 0, len(f))
	for i, p := range segments(stream, size) {
		lt, f := c.data(p)
		if i == 4 {
			f = f[:len(f)-(len(p)-keep)] // captured: the headers and 100 bytes
		}
		d2.Packet(lt, f, 0, len(f))
	}
	if n != want {
		t.Errorf("responses = %d, want %d of %d", n, want, len(starts))
	}
	t.Logf("responses %d of %d, %d by construction", n, len(starts), want)
	if g := st.Stream.Gaps.Load(); g != 1 {
		t.Errorf("gaps = %d, want 1", g)
	}
	if o := st.Stream.OutOfOrder.Load(); o != 0 {
		t.Errorf("out of order = %d, want 0", o)
	}
}

// The other identifiers of a zone: two tenants each behind two GRE keys,
// two PPTP call IDs (whose payload length, in the same key field, changes
// from segment to segment and must not split a flow), two MPLS labels and
// two Geneve VNIs, with the same addresses, ports and sequence numbers,
// interleaved.
func TestTCPZones(t *testing.T) {
	greKeyed := func(key uint32) func(ip []byte) []byte {
		return func(ip []byte) []byte {
			h := binary.BigEndian.AppendUint32([]byte{0x20, 0, 0x08, 0x00}, key)
			return outerIP(t, layers.IPProtocolGRE, cat(h, ip))
		}
	}
	pptpCall := func(call uint16) func(ip []byte) []byte {
		return func(ip []byte) []byte {
			ppp := cat([]byte{0xff, 0x03, 0x00, 0x21}, ip)
			h := []byte{0x20, 0x01, 0x88, 0x0b}
			h = binary.BigEndian.AppendUint16(h, uint16(len(ppp)))
			h = binary.BigEndian.AppendUint16(h, call)
			return outerIP(t, layers.IPProtocolGRE, cat(h, ppp))
		}
	}
	mplsLabel := func(label uint32) func(ip []byte) []byte {
		return func(ip []byte) []byte {
			e := binary.BigEndian.AppendUint32(nil, label<<12|0x100|64)
			return serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeMPLSUnicast}, gopacket.Payload(cat(e, ip)))
		}
	}
	geneveVNI := func(vni uint32) func(ip []byte) []byte {
		return func(ip []byte) []byte {
			return outerUDP(t, 6081, cat([]byte{0, 0, 0x08, 0x00, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}, ip))
		}
	}
	for _, tc := range []struct {
		name string
		a, b func(ip []byte) []byte
	}{
		{"gre key", greKeyed(1), greKeyed(2)},
		{"pptp call id", pptpCall(0x4711), pptpCall(0x4712)},
		{"mpls label", mplsLabel(100), mplsLabel(200)},
		{"geneve vni", geneveVNI(7), geneveVNI(8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, st, rec := newDecoder(t, nil)
			var sa, sb string
			for n := range 10 {
				sa += response(200, "a", n, 0)
				sb += response(404, "b", n, 0)
			}
			// Segments of changing sizes: the PPTP payload length differs
			// from one to the next.
			cuts := []int{333, 517, 401}
			seq, off := uint32(1000), 0
			for i := 0; off < len(sa); i++ {
				n := min(cuts[i%len(cuts)], len(sa)-off)
				for _, w := range []struct {
					wrap func([]byte) []byte
					s    string
				}{{tc.a, sa}, {tc.b, sb}} {
					f := w.wrap(tcpPacket(t, bob4, alice4, seq, fACK|fPSH, []byte(w.s[off:off+n])))
					d.Packet(layers.LinkTypeEthernet, f, 0, len(f))
				}
				seq, off = seq+uint32(n), off+n
			}
			codes := map[int]int{}
			for _, g := range rec.msgs {
				codes[g.code]++
			}
			if codes[200] != 10 || codes[404] != 10 {
				t.Errorf("tenant a %d, tenant b %d responses, want 10 each", codes[200], codes[404])
			}
			if n := st.Stream.Flows.Load(); n != 2 {
				t.Errorf("flows = %d, want 2", n)
			}
		})
	}
}
