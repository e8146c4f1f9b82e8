package decode_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// fragments splits the IPv4 or IPv6 packet ip (as udpPacket and tcpPacket
// build it: no options, no extension headers) into fragments of at most
// size payload bytes (rounded down to 8), in order, with identification
// id, serialised by gopacket.
func fragments(tb testing.TB, ip []byte, size int, id uint32) [][]byte {
	tb.Helper()
	size &^= 7
	v6 := ip[0]>>4 == 6
	hl := 20
	if v6 {
		hl = 40
	}
	payload := ip[hl:]
	var out [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		more := end < len(payload)
		if v6 {
			h := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment,
				SrcIP: ip[8:24], DstIP: ip[24:40]}
			fh := &layers.IPv6Fragment{NextHeader: layers.IPProtocol(ip[6]), FragmentOffset: uint16(off / 8),
				MoreFragments: more, Identification: id}
			out = append(out, serialize(tb, h, fh, gopacket.Payload(payload[off:end])))
			continue
		}
		h := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(id), Protocol: layers.IPProtocol(ip[9]),
			SrcIP: ip[12:16], DstIP: ip[16:20], FragOffset: uint16(off / 8)}
		if more {
			h.Flags = layers.IPv4MoreFragments
		}
		out = append(out, serialize(tb, h, gopacket.Payload(payload[off:end])))
	}
	return out
}

// newDecoderConfig is newDecoder with a whole config.
func newDecoderConfig(tb testing.TB, cfg decode.Config) (*decode.Decoder, *decode.Stats, *recorder) {
	tb.Helper()
	st, rec := new(decode.Stats), new(recorder)
	d, err := decode.New(cfg, st, rec.handle)
	if err != nil {
		tb.Fatal(err)
	}
	return d, st, rec
}

// inviteText is the INVITE of the corpus with a long SDP: about 3,000
// bytes, two or three fragments on Ethernet.
var inviteText = withBody("INVITE sip:bob@biloxi.example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\nMax-Forwards: 70\nTo: Bob <sip:bob@biloxi.example.com>\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\nCall-ID: frag-test@atlanta.example.com\nCSeq: 1 INVITE\nContact: <sip:alice@192.0.2.10>\nContent-Type: application/sdp\nContent-Length: N\n\n",
	longSDP(3000))

// longSDP returns an SDP offer of about n bytes: many codecs.
func longSDP(n int) string {
	s := "v=0\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 49170 RTP/AVP 0 8 101\n"
	for i := 0; len(s) < n; i++ {
		s += "a=rtpmap:" + string(rune('0'+i%10)) + " PCMU/8000\na=fmtp:101 0-15\n"
	}
	return s
}

// ethAt returns the IP packets ips framed in Ethernet, each with timestamp ts.
func ethAt(tb testing.TB, ts time.Time, ips ...[]byte) []packet {
	var ps []packet
	for _, ip := range ips {
		ps = append(ps, packet{lt: layers.LinkTypeEthernet, data: ether(tb, ip), ts: ts})
	}
	return ps
}

func TestFragments(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	inv := []got{{0, "INVITE"}}
	udp4 := udpPacket(t, alice4, bob4, []byte(inviteText))
	udp6 := udpPacket(t, alice6, bob6, []byte(inviteText))
	f4 := fragments(t, udp4, 1480, 7)
	f6 := fragments(t, udp6, 1448, 7)
	if len(f4) != 3 || len(f6) != 3 {
		t.Fatalf("%d IPv4 and %d IPv6 fragments, want 3", len(f4), len(f6))
	}
	two := fragments(t, udpPacket(t, alice4, bob4, []byte(ok200)), 512, 9)
	other := fragments(t, udpPacket(t, netip.MustParseAddrPort("192.0.2.30:5060"), bob4, []byte(inviteText)), 1480, 7) // same ID, other source
	rev := func(fs [][]byte) [][]byte { r := slices.Clone(fs); slices.Reverse(r); return r }
	// a first fragment of 100 bytes: not a multiple of 8
	odd := serialize(t, &layers.IPv4{Version: 4, TTL: 64, Id: 7, Protocol: layers.IPProtocolUDP, SrcIP: alice4.Addr().AsSlice(),
		DstIP: bob4.Addr().AsSlice(), Flags: layers.IPv4MoreFragments}, gopacket.Payload(udp4[20:120]))
	tcp := fragments(t, tcpPacket(t, alice4, bob4, 1, fACK|fPSH, []byte(inviteText)), 1480, 11)

	for _, tc := range []struct {
		name   string
		cfg    func(*decode.Config)
		frames []packet
		msgs   []got
		counts map[string]uint64
	}{
		{"ipv4 in order", nil, ethAt(t, t0, f4...), inv, map[string]uint64{"requests": 1, "reassembled/ipv4": 1}},
		{"ipv4 two fragments", nil, ethAt(t, t0, two...), []got{{200, "INVITE"}}, map[string]uint64{"responses": 1, "reassembled/ipv4": 1}},
		{"ipv4 reversed", nil, ethAt(t, t0, rev(f4)...), inv, map[string]uint64{"requests": 1, "reassembled/ipv4": 1}},
		{"ipv4 middle first", nil, ethAt(t, t0, f4[1], f4[2], f4[0]), inv, map[string]uint64{"requests": 1, "reassembled/ipv4": 1}},
		{"ipv4 interleaved across two flows", nil, ethAt(t, t0, f4[0], other[0], other[2], f4[2], f4[1], other[1]), []got{{0, "INVITE"}, {0, "INVITE"}},
			map[string]uint64{"requests": 2, "reassembled/ipv4": 2}},
		{"ipv4 tcp segment", nil, ethAt(t, t0, tcp...), inv, map[string]uint64{"requests": 1, "reassembled/ipv4": 1, "tcp_flows": 1}},
		{"ipv6 in order", nil, ethAt(t, t0, f6...), inv, map[string]uint64{"requests": 1, "reassembled/ipv6": 1}},
		{"ipv6 reversed", nil, ethAt(t, t0, rev(f6)...), inv, map[string]uint64{"requests": 1, "reassembled/ipv6": 1}},
		{"ipv6 after hop-by-hop", nil, ethAt(t, t0, withIPv6Ext(f6[0], 0), withIPv6Ext(f6[1], 0, 60), f6[2]), inv, map[string]uint64{"requests": 1, "reassembled/ipv6": 1}},
		{"ipv4 duplicate fragment", nil, ethAt(t, t0, f4[0], f4[1], f4[0], f4[2]), inv, map[string]uint64{"requests": 1, "reassembled/ipv4": 1, "frag_drop/ipv4/duplicate": 1}},
		{"ipv4 missing last fragment", nil, append(ethAt(t, t0, f4[:2]...), ethAt(t, t0.Add(29*time.Second), udpPacket(t, alice4, bob4, []byte(ok200)))...),
			[]got{{200, "INVITE"}}, map[string]uint64{"responses": 1}},
		{"ipv4 missing last fragment, timed out", nil, append(ethAt(t, t0, f4[:2]...), ethAt(t, t0.Add(31*time.Second), udpPacket(t, alice4, bob4, []byte(ok200)))...),
			[]got{{200, "INVITE"}}, map[string]uint64{"responses": 1, "frag_drop/ipv4/incomplete": 2}},
		{"ipv4 last fragment after the timeout", nil, append(ethAt(t, t0, f4[:2]...), ethAt(t, t0.Add(31*time.Second), f4[2])...),
			nil, map[string]uint64{"frag_drop/ipv4/incomplete": 2}},
		{"ipv6 missing first fragment, timed out", nil, append(ethAt(t, t0, f6[1:]...), ethAt(t, t0.Add(time.Minute), udpPacket(t, alice6, bob6, []byte(ok200)))...),
			[]got{{200, "INVITE"}}, map[string]uint64{"responses": 1, "frag_drop/ipv6/incomplete": 2}},
		{"ipv4 overlap", nil, ethAt(t, t0, f4[0], shift(t, f4[1], -8), f4[1], f4[2]), nil, map[string]uint64{"frag_drop/ipv4/overlap": 4}},
		{"ipv6 overlap", nil, ethAt(t, t0, f6[0], shift(t, f6[1], -8), f6[1], f6[2]), nil, map[string]uint64{"frag_drop/ipv6/overlap": 4}},
		{"ipv4 two last fragments", nil, ethAt(t, t0, f4[2], shift(t, f4[2], 8), f4[0], f4[1]), nil, map[string]uint64{"frag_drop/ipv4/overlap": 4}},
		{"ipv4 too large", func(c *decode.Config) { c.Fragments.MaxBytes = 2000 }, ethAt(t, t0, f4...), nil, map[string]uint64{"frag_drop/ipv4/too_large": 3}},
		{"ipv4 limit", func(c *decode.Config) { c.Fragments.MaxDatagrams = 1 }, ethAt(t, t0, f4[0], other[0], other[1], other[2], f4[1], f4[2]), []got{{0, "INVITE"}},
			map[string]uint64{"requests": 1, "reassembled/ipv4": 1, "frag_drop/ipv4/limit": 1}},
		{"ipv4 truncated", nil, ethAt(t, t0, f4[0][:600], f4[1], f4[2]), nil, map[string]uint64{"frag_drop/ipv4/truncated": 3}},
		{"ipv4 fragment not a multiple of 8", nil, ethAt(t, t0, odd), nil, map[string]uint64{"error/ip_header": 1}},
		{"reassembly disabled", func(c *decode.Config) { c.Fragments.MaxDatagrams = 0 }, ethAt(t, t0, append(f4, f6...)...), nil, map[string]uint64{"skip/ip_fragment": 6}},
		{"ipv6 atomic fragment", nil, ethAt(t, t0, fragments(t, udpPacket(t, alice6, bob6, []byte(ok200)), 1448, 3)...), []got{{200, "INVITE"}}, map[string]uint64{"responses": 1}},
		{"ipv4 inside vxlan", nil, vxlanEach(t, t0, f4), inv, map[string]uint64{"requests": 1, "reassembled/ipv4": 1}},
		{"ipv6 inside vxlan", nil, vxlanEach(t, t0, rev(f6)), inv, map[string]uint64{"requests": 1, "reassembled/ipv6": 1}},
		{"fragmented vxlan carrying ipv4", nil, ethAt(t, t0, fragments(t, vxlanPacket(t, udp4), 1480, 5)...), inv, map[string]uint64{"requests": 1, "reassembled/ipv4": 1}},
		{"fragmented vxlan carrying ipv4 fragments", nil, ethAt(t, t0, fragments(t, vxlanPacket(t, f4[0]), 1000, 5)...), nil, map[string]uint64{"reassembled/ipv4": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := decode.DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			d, st, rec := newDecoderConfig(t, cfg)
			feed(d, tc.frames...)
			if g := counts(st); !sameCounts(g, tc.counts) {
				t.Errorf("counts = %v, want %v", g, tc.counts)
			}
			if !sameMsgs(rec.msgs, tc.msgs) {
				t.Errorf("messages = %v, want %v", rec.msgs, tc.msgs)
			}
			d.Reset()
			if n := st.Fragments.Reassembling.Load(); n != 0 {
				t.Errorf("datagrams in the table after Reset = %d", n)
			}
		})
	}
}

// shift returns a copy of the IPv4 or IPv6 fragment f (built by fragments)
// with its offset moved by delta bytes.
func shift(tb testing.TB, f []byte, delta int) []byte {
	f = slices.Clone(f)
	if f[0]>>4 == 6 {
		v := int(f[42])<<8 | int(f[43])
		off := int(v&^7) + delta
		v = off | v&7
		f[42], f[43] = byte(v>>8), byte(v)
		return f
	}
	v := int(f[6])<<8 | int(f[7])
	v = v&^0x1fff | (int(v&0x1fff)*8+delta)/8
	f[6], f[7] = byte(v>>8), byte(v)
	return f
}

// vxlanPacket wraps the IP packet ip in Ethernet, VXLAN, UDP and IPv4.
func vxlanPacket(tb testing.TB, ip []byte) []byte {
	return udpPacket(tb, netip.AddrPortFrom(mirrorSrc, 40000), netip.AddrPortFrom(mirrorDst, 4789),
		cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, ether(tb, ip)))
}

// vxlanEach wraps each IP packet in VXLAN.
func vxlanEach(tb testing.TB, ts time.Time, ips [][]byte) []packet {
	var ps []packet
	for _, ip := range ips {
		ps = append(ps, ethAt(tb, ts, vxlanPacket(tb, ip))...)
	}
	return ps
}

// TestFragmentOrigin: a reassembled message has the addresses and ports of
// its datagram.
func TestFragmentOrigin(t *testing.T) {
	for _, ap := range [][2]netip.AddrPort{{alice4, bob4}, {alice6, bob6}} {
		var src, dst netip.AddrPort
		var n int
		d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, m *sip.Message) {
			src, dst, n = o.Src, o.Dst, n+1
		})
		if err != nil {
			t.Fatal(err)
		}
		feed(d, ethAt(t, time.Unix(1700000000, 0), fragments(t, udpPacket(t, ap[0], ap[1], []byte(inviteText)), 1400, 1)...)...)
		if n != 1 || src != ap[0] || dst != ap[1] {
			t.Errorf("%d messages from %v to %v, want 1 from %v to %v", n, src, dst, ap[0], ap[1])
		}
	}
}

// TestDecodeFragmentedCorpus sends the corpus over UDP and TCP, IPv4 and
// IPv6, every message fragmented (300-byte fragments, in order and
// reversed), plain and inside every tunnel, and expects what the plain
// unfragmented capture gives.
func TestDecodeFragmentedCorpus(t *testing.T) {
	for _, ipv := range []struct {
		name     string
		src, dst netip.AddrPort
	}{{"ipv4", alice4, bob4}, {"ipv6", alice6, bob6}} {
		for _, transport := range []string{"udp", "tcp"} {
			d, st, rec := newDecoder(t, nil)
			sendCorpus(t, d, ethernet, transport, ipv.src, ipv.dst)
			plainMsgs, plainCounts := rec.msgs, counts(st)
			for _, tun := range append([]link{ethernet}, tunnelLinks()...) {
				for _, reversed := range []bool{false, true} {
					name := ipv.name + "/" + transport + "/" + tun.name
					if reversed {
						name += "/reversed"
					}
					t.Run(name, func(t *testing.T) {
						d, st, rec := newDecoder(t, nil)
						n := sendFragmented(t, d, tun, transport, ipv.src, ipv.dst, reversed)
						c := counts(st)
						fam := "reassembled/" + ipv.name
						if c[fam] != uint64(n) || n < len(messages)/2 {
							t.Errorf("%d datagrams reassembled, want %d (at least %d)", c[fam], n, len(messages)/2)
						}
						delete(c, fam)
						if !sameMsgs(rec.msgs, plainMsgs) {
							t.Errorf("messages:\n got %v\nwant %v", rec.msgs, plainMsgs)
						}
						if !sameCounts(c, plainCounts) {
							t.Errorf("counts = %v, want %v", c, plainCounts)
						}
					})
				}
			}
		}
	}
}

func tunnelLinks() []link {
	var ls []link
	for _, tun := range tunnels {
		ls = append(ls, tun.link)
	}
	return ls
}

// sendFragmented is sendCorpus with every IP packet in 304-byte fragments;
// it returns the number of packets that took more than one fragment.
func sendFragmented(tb testing.TB, d *decode.Decoder, l link, transport string, src, dst netip.AddrPort, reversed bool) int {
	tb.Helper()
	id := uint32(100)
	n := 0
	send := func(ip []byte) {
		id++
		fs := fragments(tb, ip, 304, id)
		if len(fs) > 1 {
			n++
		}
		if reversed {
			slices.Reverse(fs)
		}
		for _, f := range fs {
			lt, fr := l.frame(tb, f)
			d.Packet(lt, fr, 0, len(fr))
		}
	}
	if transport == "udp" {
		for _, m := range messages {
			send(udpPacket(tb, src, dst, []byte(m.text)))
		}
		return n
	}
	seq := uint32(1000)
	send(tcpPacket(tb, src, dst, seq, fSYN, nil))
	seq++
	for _, m := range messages {
		send(tcpPacket(tb, src, dst, seq, fACK|fPSH, []byte(m.text)))
		seq += uint32(len(m.text))
	}
	return n
}
