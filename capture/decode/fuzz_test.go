package decode_test

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// fuzzLinkTypes are the link types FuzzDecoder picks from; the last one is
// not supported.
var fuzzLinkTypes = []layers.LinkType{
	layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, layers.LinkTypeRaw,
	layers.LinkTypeIPv4, layers.LinkTypeIPv6, layers.LinkTypeNull, layers.LinkTypeLoop, 12, 14, 147,
}

// fuzzTCPMode in the selector byte says that data is a series of TCP
// segments (see fuzzSegments) rather than one frame.
const fuzzTCPMode = 0x80

// Each segment of the TCP mode is coded as a 3-byte header, then payload:
// flags (bit 0 SYN, 1 FIN, 2 RST, 3 direction, 4 far), a sequence offset
// from the next expected byte in units of 64 bytes, or 2^24 bytes when far
// (signed: -128 far is half the sequence space), and the payload length.
func encodeSegment(dst []byte, flags uint8, off int8, payload []byte) []byte {
	for len(payload) > 255 {
		dst = append(dst, flags&^(fzSYN|fzFIN|fzRST), byte(off), 255)
		dst = append(dst, payload[:255]...)
		payload, off = payload[255:], 0
	}
	dst = append(dst, flags, byte(off), byte(len(payload)))
	return append(dst, payload...)
}

const (
	fzSYN = 1 << iota
	fzFIN
	fzRST
	fzReverse
	fzFar
)

// rawTCP returns an IPv4/TCP packet, built by hand for speed.
func rawTCP(reverse bool, seq uint32, flags uint8, payload []byte) []byte {
	p := make([]byte, 40+len(payload))
	p[0], p[8], p[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	a, b := []byte{192, 0, 2, 10}, []byte{192, 0, 2, 20}
	sport, dport := uint16(40000), uint16(5060)
	if reverse {
		a, b, sport, dport = b, a, dport, sport
	}
	copy(p[12:], a)
	copy(p[16:], b)
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint32(p[24:], seq)
	p[32] = 5 << 4
	p[33] = 0x10 // ACK
	if flags&fzSYN != 0 {
		p[33] |= 0x02
	}
	if flags&fzFIN != 0 {
		p[33] |= 0x01
	}
	if flags&fzRST != 0 {
		p[33] |= 0x04
	}
	copy(p[40:], payload)
	return p
}

// fuzzSegments decodes data as TCP segments (see encodeSegment).
func fuzzSegments(d *decode.Decoder, data []byte) {
	next := [2]uint32{0xfffff000, 0x7ffffff0}
	ts := int64(1e18)
	for len(data) >= 3 {
		flags, off, n := data[0], int8(data[1]), int(data[2])
		data = data[3:]
		n = min(n, len(data))
		payload := data[:n]
		data = data[n:]
		dir := 0
		if flags&fzReverse != 0 {
			dir = 1
		}
		seq := next[dir] + uint32(int32(off)*64)
		if flags&fzFar != 0 {
			seq = next[dir] + uint32(int32(off))<<24
		}
		d.Packet(layers.LinkTypeRaw, rawTCP(dir == 1, seq, flags, payload), ts, 40+n)
		ts += int64(time.Second) // sweeps run; the flows do not time out
		if end := seq + uint32(n); int32(end-next[dir]) > 0 {
			next[dir] = end
		}
		if flags&fzSYN != 0 && off == 0 {
			next[dir]++
		}
	}
}

// fuzzFramesMode in the selector byte (without fuzzTCPMode) says that data
// is a series of raw IP packets, each after a 2-byte length, decoded 10
// seconds apart: IP fragments (reassembled, timing out) and SCTP.
const fuzzFramesMode = 0x40

// encodeFrames codes IP packets for fuzzFramesMode.
func encodeFrames(ps ...[]byte) []byte {
	var b []byte
	for _, p := range ps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

// fuzzFrames decodes data as IP packets (see encodeFrames).
func fuzzFrames(d *decode.Decoder, data []byte) {
	ts := int64(1e18)
	for len(data) >= 2 {
		n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
		d.Packet(layers.LinkTypeRaw, data[2:2+n], ts, n)
		data = data[2+n:]
		ts += 10 * int64(time.Second)
	}
}

func FuzzDecoder(f *testing.F) {
	for i, l := range links {
		for _, m := range messages[:4] {
			lt, fr := l.frame(f, udpPacket(f, alice4, bob4, []byte(m.text)))
			f.Add(byte(slices.Index(fuzzLinkTypes, lt)), fr)
			lt, fr = l.frame(f, tcpPacket(f, alice6, bob6, 1, fACK, []byte(m.text)))
			f.Add(byte(slices.Index(fuzzLinkTypes, lt)), fr)
			if i == 0 {
				f.Add(byte(0), fr[:len(fr)/3])
			}
		}
	}
	for _, tun := range tunnels { // every tunnel, PPTP's GRE and PPP included
		lt, fr := tun.frame(f, udpPacket(f, alice4, bob4, []byte(messages[1].text)))
		f.Add(byte(slices.Index(fuzzLinkTypes, lt)), fr)
	}
	f.Add(byte(0), ether(f, withIPv6Ext(udpPacket(f, alice6, bob6, []byte(ok.text)), 0, 43, 60)))
	f.Add(byte(0), ether(f, ipv6Fragment(udpPacket(f, alice6, bob6, []byte(ok.text)), 0, true)))
	f.Add(byte(0), ether(f, icmpError(f, udpPacket(f, alice4, bob4, []byte(ok.text)))))
	f.Add(byte(0), ether(f, udpPacket(f, alice4, bob4, []byte("\r\n\r\n"))))

	// Frames mode seeds: IP fragments in order, reversed, overlapping,
	// duplicated; SCTP with several chunks, in IP fragments too.
	f4 := fragments(f, udpPacket(f, alice4, bob4, []byte(invite.text)), 256, 1)
	f6 := fragments(f, udpPacket(f, alice6, bob6, []byte(invite.text)), 256, 2)
	f.Add(byte(fuzzFramesMode), encodeFrames(f4...))
	f.Add(byte(fuzzFramesMode), encodeFrames(slices.Concat([][]byte{f6[1], f4[2], f6[0]}, f4[:2], f6[2:])...))
	f.Add(byte(fuzzFramesMode), encodeFrames(f4[0], shift(f, f4[1], -8), f4[1], f4[0], f4[2]))
	f.Add(byte(fuzzFramesMode), encodeFrames(f6[0], f6[0], shift(f, f6[1], 8)))
	sc := sctpPacket(f, alice4, bob4, sack, whole(invite.text), dataChunk(trying, true, false), heartbeat, iData(ok.text))
	f.Add(byte(fuzzFramesMode), encodeFrames(sc))
	f.Add(byte(fuzzFramesMode), encodeFrames(fragments(f, sc, 512, 3)...))
	f.Add(byte(0), ether(f, sctpPacket(f, alice6, bob6, initChunk)))

	// TCP mode seeds.
	var s []byte
	s = encodeSegment(s, fzSYN, 0, nil)
	s = encodeSegment(s, fzSYN|fzReverse, 0, nil)
	s = encodeSegment(s, 0, 0, []byte(invite.text[:300]))
	s = encodeSegment(s, fzReverse, 0, []byte(trying+"\r\n"))
	s = encodeSegment(s, 0, 0, []byte(invite.text[300:]+ack.text[:10]))
	s = encodeSegment(s, 0, 2, []byte(bye.text))
	s = encodeSegment(s, 0, 0, []byte(ack.text[10:]))
	s = encodeSegment(s, 0, -3, []byte(ack.text))
	s = encodeSegment(s, fzFIN, 0, []byte(compact.text))
	f.Add(byte(fuzzTCPMode), s)
	s = encodeSegment(nil, 0, 0, []byte(ok.text[100:]))
	s = encodeSegment(s, 0, 0, []byte("\r\n\r\n"+ok.text+"\r\n"))
	s = encodeSegment(s, fzRST, 0, nil)
	f.Add(byte(fuzzTCPMode), s)
	// Recovery: a new connection far behind and half the sequence space
	// away, a body over the 1 KiB buffer skipped by Content-Length, a
	// gap inside it, a status line quoted in a sipfrag body while hunting.
	s = encodeSegment(nil, fzSYN, 0, nil)
	s = encodeSegment(s, 0, 0, []byte(invite.text))
	s = encodeSegment(s, fzFar, -3, []byte(ok.text[50:]+ok.text))
	s = encodeSegment(s, fzFar, -128, []byte(ack.text))
	s = encodeSegment(s, 0, 0, []byte(bye.text))
	f.Add(byte(fuzzTCPMode), s)
	s = encodeSegment(nil, fzSYN, 0, nil)
	s = encodeSegment(s, 0, 0, []byte(inviteText[:1500]))
	s = encodeSegment(s, 0, 2, []byte(inviteText[1628:]+ack.text))
	s = encodeSegment(s, 0, 0, []byte(inviteText+bye.text))
	s = encodeSegment(s, fzRST, 0, nil)
	f.Add(byte(fuzzTCPMode), s)
	s = encodeSegment(nil, 0, 0, []byte("a=x\r\nSIP/2.0 200 OK\r\n"+invite.text+"v=0\r\nSIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Add(byte(fuzzTCPMode), s)

	// HEP seeds: HEPv3 carrying SIP, in a datagram and on a TCP stream
	// (one packet split across segments), plain and gzip-compressed.
	for _, c := range []hep.Compression{hep.CompressionNone, hep.CompressionGzip} {
		h, err := hep.AppendV3(nil, &hep.Packet{IPFamily: 2, IPProtocol: 17, SrcIP: []byte{192, 0, 2, 10}, DstIP: []byte{192, 0, 2, 20},
			SrcPort: 5060, DstPort: 5060, TimestampSeconds: 1700000000, ProtocolType: 1, CaptureAgentID: 2001,
			NodeName: []byte("edge-1"), Payload: []byte(ok.text), PayloadCompression: c})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(0), ether(f, udpPacket(f, alice4, bob4, h)))
		s = encodeSegment(nil, fzSYN, 0, nil)
		s = encodeSegment(s, 0, 0, h[:30])
		s = encodeSegment(s, 0, 0, append(h[30:], h...))
		f.Add(byte(fuzzTCPMode), s)
	}

	f.Fuzz(func(t *testing.T, sel byte, data []byte) {
		st := new(decode.Stats)
		calls := uint64(0)
		cfg := decode.DefaultConfig()
		cfg.TCP.MaxFlows, cfg.TCP.MaxBufferBytes, cfg.TCP.MaxOutOfOrder, cfg.TCP.MaxMemoryBytes = 2, 1024, 3, 4096
		cfg.Fragments.MaxDatagrams, cfg.Fragments.Timeout = 3, 25*time.Second
		d, err := decode.New(cfg, st, func(_ *decode.Origin, m *sip.Message) {
			calls++
			if m.Response && (m.StatusCode < 100 || m.StatusCode > 699) {
				t.Fatalf("status code %d handed on", m.StatusCode)
			}
			if !m.Response && len(m.Method) == 0 {
				t.Fatal("request without method handed on")
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case sel&fuzzTCPMode != 0:
			fuzzSegments(d, data)
		case sel&fuzzFramesMode != 0:
			fuzzFrames(d, data)
		default:
			lt := fuzzLinkTypes[int(sel)%len(fuzzLinkTypes)]
			d.Packet(lt, data, 0, len(data))
			d.Packet(lt, data, 0, len(data)) // again: a known TCP flow now
		}
		if n := st.Stream.Flows.Load(); n < 0 || n > int64(cfg.TCP.MaxFlows) {
			t.Fatalf("tcp flows = %d", n)
		}
		// One flow may hold its buffer (up to twice its bound in
		// capacity) and its held segments past the budget until the
		// end of its segment; then the others give theirs up.
		if n := st.Stream.Memory.Load(); n < 0 || n > cfg.TCP.MaxMemoryBytes+5*int64(cfg.TCP.MaxBufferBytes) {
			t.Fatalf("tcp reassembly memory = %d bytes", n)
		}
		if n := st.Fragments.Reassembling.Load(); n < 0 || n > int64(cfg.Fragments.MaxDatagrams) {
			t.Fatalf("ip datagrams in reassembly = %d", n)
		}
		if got := st.Requests.Load() + st.Responses.Load(); got != calls {
			t.Fatalf("requests+responses = %d, handler called %d times", got, calls)
		}
		d.Reset()
		if n := st.Stream.Flows.Load(); n != 0 {
			t.Fatalf("tcp flows after Reset = %d", n)
		}
		if n := st.Stream.Memory.Load(); n != 0 {
			t.Fatalf("tcp reassembly memory after Reset = %d", n)
		}
		if n := st.Fragments.Reassembling.Load(); n != 0 {
			t.Fatalf("ip datagrams in reassembly after Reset = %d", n)
		}
	})
}
