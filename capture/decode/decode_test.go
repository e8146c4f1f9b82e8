package decode_test

import (
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// msgCounts returns the counters a decoder should show after ms.
func msgCounts(ms []sipMessage) map[string]uint64 {
	c := map[string]uint64{}
	for _, m := range ms {
		if m.code == 0 {
			c["requests"]++
		} else {
			c["responses"]++
		}
	}
	return c
}

func TestNewDecoderConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*stream.Config)
	}{
		{"flows", func(c *stream.Config) { c.MaxFlows = 0 }},
		{"timeout", func(c *stream.Config) { c.FlowTimeout = 0 }},
		{"buffer", func(c *stream.Config) { c.MaxBufferBytes = 1023 }},
		{"out of order", func(c *stream.Config) { c.MaxOutOfOrder = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := decode.DefaultConfig()
			tc.edit(&cfg.TCP)
			if _, err := decode.New(cfg, new(decode.Stats), func(*decode.Origin, *sip.Message) {}); err == nil {
				t.Fatal("NewDecoder: no error")
			}
		})
	}
}

// TestDecodeLinkTypes sends the whole corpus over UDP and over TCP, IPv4
// and IPv6, framed in every supported link type, and expects the same
// messages and identical counts everywhere.
func TestDecodeLinkTypes(t *testing.T) {
	type result struct {
		msgs   []got
		counts map[string]uint64
	}
	for _, ipv := range []struct {
		name     string
		src, dst netip.AddrPort
	}{{"ipv4", alice4, bob4}, {"ipv6", alice6, bob6}} {
		for _, transport := range []string{"udp", "tcp"} {
			var base *result
			for _, l := range links {
				t.Run(ipv.name+"/"+transport+"/"+l.name, func(t *testing.T) {
					d, st, rec := newDecoder(t, nil)
					wantCounts := msgCounts(messages)
					sendCorpus(t, d, l, transport, ipv.src, ipv.dst)
					if transport == "tcp" {
						wantCounts["tcp_flows"] = 1
					}
					if g := counts(st); !sameCounts(g, wantCounts) {
						t.Errorf("counts = %v, want %v", g, wantCounts)
					}
					if w := want(messages...); !sameMsgs(rec.msgs, w) {
						t.Errorf("messages:\n got %v\nwant %v", rec.msgs, w)
					}
					r := &result{rec.msgs, counts(st)}
					if base == nil {
						base = r
					} else if !sameMsgs(r.msgs, base.msgs) || !maps.Equal(r.counts, base.counts) {
						t.Errorf("differs from %s: %v %v", links[0].name, r.counts, base.counts)
					}
					if p := st.Packets.Load(); p == 0 || st.Bytes.Load() == 0 {
						t.Errorf("packets %d bytes %d", p, st.Bytes.Load())
					}
				})
			}
		}
	}
}

// ipv4Options returns an IPv4/UDP packet with a router alert option and a
// NOP, so the header is 28 bytes.
func ipv4Options(t *testing.T, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: alice4.Addr().AsSlice(), DstIP: bob4.Addr().AsSlice(),
		Options: []layers.IPv4Option{
			{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}, // router alert
			{OptionType: 1, OptionLength: 1},                             // NOP
			{OptionType: 1, OptionLength: 1},
			{OptionType: 0, OptionLength: 1}, // end of list
		}}
	udp := &layers.UDP{SrcPort: 5060, DstPort: 5060}
	udp.SetNetworkLayerForChecksum(ip)
	p := serialize(t, ip, udp, gopacket.Payload(payload))
	if ihl := p[0] & 0x0f; ihl != 7 {
		t.Fatalf("IHL %d, want 7", ihl)
	}
	return p
}

// withIPv6Ext inserts extension headers (each 8 bytes, PadN-filled) after
// the fixed header of an IPv6 packet p, chained in the order given.
func withIPv6Ext(p []byte, types ...uint8) []byte {
	if len(types) == 0 {
		return p
	}
	next := p[6]
	out := append([]byte(nil), p[:40]...)
	out[6] = types[0]
	for i := range types {
		nh := next
		if i+1 < len(types) {
			nh = types[i+1]
		}
		out = append(out, nh, 0, 1, 4, 0, 0, 0, 0) // next header, length 0, PadN of 4
	}
	out = append(out, p[40:]...)
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

// icmpError returns an ICMP error (v4: port unreachable, v6: destination
// unreachable) that quotes the whole packet quoted.
func icmpError(t testing.TB, quoted []byte) []byte {
	if quoted[0]>>4 == 4 {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: bob4.Addr().AsSlice(), DstIP: alice4.Addr().AsSlice()}
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort)}
		return serialize(t, ip, icmp, gopacket.Payload(quoted))
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: bob6.Addr().AsSlice(), DstIP: alice6.Addr().AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeDestinationUnreachable, layers.ICMPv6CodePortUnreachable)}
	icmp.SetNetworkLayerForChecksum(ip)
	// The 4 unused bytes of an ICMPv6 error come before the quoted packet.
	return serialize(t, ip, icmp, gopacket.Payload(append([]byte{0, 0, 0, 0}, quoted...)))
}

// fragment turns an IPv4 packet into a fragment: more-fragments set and
// the given offset in 8-byte units.
func fragment(p []byte, more bool, off uint16) []byte {
	p = append([]byte(nil), p...)
	v := off & 0x1fff
	if more {
		v |= 0x2000
	}
	binary.BigEndian.PutUint16(p[6:], v)
	return p
}

// ipv6Fragment returns p with an IPv6 fragment header inserted.
func ipv6Fragment(p []byte, off uint16, more bool) []byte {
	next := p[6]
	out := append([]byte(nil), p[:40]...)
	out[6] = 44
	fo := off << 3
	if more {
		fo |= 1
	}
	out = append(out, next, 0, byte(fo>>8), byte(fo), 0, 0, 0x12, 0x34)
	out = append(out, p[40:]...)
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

var (
	ok200  = messages[3].text
	trying = messages[1].text
	rtp    = append([]byte{0x80, 0x00, 0x12, 0x34, 0, 0, 0x03, 0x20, 0xde, 0xad, 0xbe, 0xef}, make([]byte, 160)...)
	stun   = []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	http   = []byte("GET / HTTP/1.1\r\nHost: 192.0.2.20:5060\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n")
	httpR  = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
	// A TLS 1.2 ClientHello record, shortened.
	tlsHello = []byte{0x16, 0x03, 0x01, 0x00, 0x31, 0x01, 0x00, 0x00, 0x2d, 0x03, 0x03,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
		0x00, 0x00, 0x04, 0xc0, 0x2f, 0x00, 0x0a, 0x01, 0x00, 0x00, 0x00}
)

func TestDecodePackets(t *testing.T) {
	udp4 := func(p string) []byte { return udpPacket(t, alice4, bob4, []byte(p)) }
	udp6 := func(p string) []byte { return udpPacket(t, alice6, bob6, []byte(p)) }
	eth := func(ip []byte) packet { return pk(layers.LinkTypeEthernet, ether(t, ip)) }
	raw := func(ip []byte) packet { return pk(layers.LinkTypeRaw, ip) }
	cut := func(p packet, n int) packet { p.data = p.data[:n]; return p }
	// etherIP is the offset of the IP header in an Ethernet frame.
	const etherIP = 14
	resp200 := []got{{200, "INVITE"}}
	frags := func(ip []byte) []packet {
		var ps []packet
		for _, f := range fragments(t, ip, 256, 1) {
			ps = append(ps, eth(f))
		}
		return ps
	}
	for _, tc := range []struct {
		name   string
		frames []packet
		msgs   []got
		counts map[string]uint64
	}{
		{"ipv4 options", []packet{eth(ipv4Options(t, []byte(ok200)))}, resp200, map[string]uint64{"responses": 1}},
		{"ipv6 hop-by-hop", []packet{eth(withIPv6Ext(udp6(ok200), 0))}, resp200, map[string]uint64{"responses": 1}},
		{"ipv6 destination options", []packet{eth(withIPv6Ext(udp6(ok200), 60))}, resp200, map[string]uint64{"responses": 1}},
		{"ipv6 hop-by-hop routing destination", []packet{eth(withIPv6Ext(udp6(ok200), 0, 43, 60))}, resp200, map[string]uint64{"responses": 1}},
		{"ipv6 eight extension headers", []packet{eth(withIPv6Ext(udp6(ok200), 0, 60, 60, 60, 60, 60, 60, 60))}, resp200, map[string]uint64{"responses": 1}},
		{"ipv6 too many extension headers", []packet{eth(withIPv6Ext(udp6(ok200), 0, 60, 60, 60, 60, 60, 60, 60, 60))}, nil, map[string]uint64{"error/ip_header": 1}},
		{"ipv6 extension header truncated", []packet{raw(withIPv6Ext(udp6(ok200), 60)[:44])}, nil, map[string]uint64{"error/ip_header": 1}},
		{"sip on other ports", []packet{
			eth(udpPacket(t, netip.MustParseAddrPort("192.0.2.10:5080"), netip.MustParseAddrPort("192.0.2.20:40000"), []byte(ok200))),
			eth(udpPacket(t, netip.MustParseAddrPort("[2001:db8::1]:12345"), netip.MustParseAddrPort("[2001:db8::2]:7000"), []byte(trying))),
		}, []got{{200, "INVITE"}, {100, "INVITE"}}, map[string]uint64{"responses": 2}},
		{"ethernet padding after keep-alive", []packet{eth(udp4("\r\n\r\n")), eth(udp4("\r\n"))}, nil, map[string]uint64{"skip/keepalive": 2}},
		{"empty datagram is a keep-alive", []packet{eth(udp4("")), raw(udp4(""))}, nil, map[string]uint64{"skip/keepalive": 2}},
		{"ethernet padding after short TCP keep-alive", []packet{
			eth(tcpPacket(t, alice4, bob4, 1, fSYN, nil)),
			eth(tcpPacket(t, alice4, bob4, 2, fACK, []byte("\r\n\r\n"))),
			eth(tcpPacket(t, alice4, bob4, 6, fACK, []byte(trying))),
		}, []got{{100, "INVITE"}}, map[string]uint64{"responses": 1, "tcp_flows": 1}},
		{"not sip on 5060", []packet{eth(udp4(string(rtp))), eth(udp4(string(stun))), eth(udp4(string(http))), eth(udp4(string(httpR))), eth(udp4(string(tlsHello)))},
			nil, map[string]uint64{"skip/not_sip": 5}},
		{"icmpv4 quoting sip", []packet{eth(icmpError(t, udp4(ok200)))}, nil, map[string]uint64{"skip/ip_protocol": 1}},
		{"icmpv6 quoting sip", []packet{eth(icmpError(t, udp6(ok200)))}, nil, map[string]uint64{"skip/ip_protocol": 1}},
		{"ipv4 fragments", frags(udp4(ok200)), resp200, map[string]uint64{"responses": 1, "reassembled/ipv4": 1}},
		{"ipv6 fragments", frags(udp6(ok200)), resp200, map[string]uint64{"responses": 1, "reassembled/ipv6": 1}},
		{"status code 700", []packet{eth(udp4("SIP/2.0 700 Weird\r\nCSeq: 1 INVITE\r\n\r\n"))}, nil, map[string]uint64{"error/status_code": 1}},
		{"status code 099", []packet{eth(udp4("SIP/2.0 099 Weird\r\nCSeq: 1 INVITE\r\n\r\n"))}, nil, map[string]uint64{"error/status_code": 1}},
		{"status line", []packet{eth(udp4("SIP/2.0 2000 OK\r\nCSeq: 1 INVITE\r\n\r\n"))}, nil, map[string]uint64{"error/status_line": 1}},
		{"bad cseq still counted", []packet{eth(udp4("SIP/2.0 486 Busy Here\r\nCSeq: x INVITE\r\n\r\n"))}, []got{{486, ""}}, map[string]uint64{"responses": 1, "error/cseq": 1}},
		{"snap length cut inside the header", []packet{cut(eth(udp4(ok200)), 14+20+8+120)}, []got{{200, ""}}, map[string]uint64{"responses": 1}},
		{"arp", []packet{pk(layers.LinkTypeEthernet, serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeARP}, gopacket.Payload(make([]byte, 28))))}, nil, map[string]uint64{"skip/not_ip": 1}},
		{"unknown link type", []packet{pk(layers.LinkType(147), udp4(ok200))}, nil, map[string]uint64{"skip/link_type": 1}},
		{"sip straight after an sctp common header", []packet{raw(serialize(t, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolSCTP, SrcIP: alice4.Addr().AsSlice(), DstIP: bob4.Addr().AsSlice()}, gopacket.Payload(ok200)))}, nil, map[string]uint64{"error/sctp_header": 1}},
		{"ipv4 total length 0 (TSO)", []packet{raw(func() []byte { p := udp4(ok200); p[2], p[3] = 0, 0; return p }())}, resp200, map[string]uint64{"responses": 1}},

		// Truncated headers at each layer.
		{"ethernet truncated", []packet{cut(eth(udp4(ok200)), 13)}, nil, map[string]uint64{"error/link_header": 1}},
		{"802.1Q tag truncated", []packet{cut(pk(links[1].frame(t, udp4(ok200))), 16)}, nil, map[string]uint64{"error/link_header": 1}},
		{"too many VLAN tags", []packet{pk(layers.LinkTypeEthernet, append(append(append([]byte(nil), macB...), macA...), slices.Repeat([]byte{0x81, 0x00, 0, 1}, 10)...))}, nil, map[string]uint64{"error/link_header": 1}},
		{"SLL truncated", []packet{pk(layers.LinkTypeLinuxSLL, sll(udp4(ok200))[:15])}, nil, map[string]uint64{"error/link_header": 1}},
		{"SLL2 truncated", []packet{pk(layers.LinkTypeLinuxSLL2, sll2(udp4(ok200))[:19])}, nil, map[string]uint64{"error/link_header": 1}},
		{"null truncated", []packet{pk(layers.LinkTypeNull, []byte{2, 0, 0})}, nil, map[string]uint64{"error/link_header": 1}},
		{"loop truncated", []packet{pk(layers.LinkTypeLoop, []byte{0, 0})}, nil, map[string]uint64{"error/link_header": 1}},
		{"null without payload", []packet{pk(layers.LinkTypeNull, []byte{2, 0, 0, 0})}, nil, map[string]uint64{"error/ip_header": 1}},
		{"raw empty", []packet{raw(nil)}, nil, map[string]uint64{"error/ip_header": 1}},
		{"ip version 5", []packet{raw([]byte{0x50, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2})}, nil, map[string]uint64{"error/ip_header": 1}},
		{"ipv4 truncated", []packet{cut(eth(udp4(ok200)), etherIP+19)}, nil, map[string]uint64{"error/ip_header": 1}},
		{"ipv4 options truncated", []packet{cut(eth(ipv4Options(t, []byte(ok200))), etherIP+24)}, nil, map[string]uint64{"error/ip_header": 1}},
		{"ipv4 IHL 4", []packet{raw(func() []byte { p := udp4(ok200); p[0] = 0x44; return p }())}, nil, map[string]uint64{"error/ip_header": 1}},
		{"ipv4 total length below IHL", []packet{raw(func() []byte { p := udp4(ok200); p[2], p[3] = 0, 19; return p }())}, nil, map[string]uint64{"error/ip_header": 1}},
		{"ipv6 truncated", []packet{cut(eth(udp6(ok200)), etherIP+39)}, nil, map[string]uint64{"error/ip_header": 1}},
		{"udp truncated", []packet{cut(eth(udp4(ok200)), etherIP+20+7)}, nil, map[string]uint64{"error/udp_header": 1}},
		{"udp truncated by ipv4 total length", []packet{raw(func() []byte { p := udp4(ok200); p[2], p[3] = 0, 24; return p }())}, nil, map[string]uint64{"error/udp_header": 1}},
		{"udp6 truncated", []packet{cut(eth(udp6(ok200)), etherIP+40+5)}, nil, map[string]uint64{"error/udp_header": 1}},
		{"tcp truncated", []packet{cut(eth(tcpPacket(t, alice4, bob4, 1, fACK, []byte(ok200))), etherIP+20+19)}, nil, map[string]uint64{"error/tcp_header": 1}},
		{"tcp data offset 4", []packet{raw(func() []byte { p := tcpPacket(t, alice4, bob4, 1, fACK, []byte(ok200)); p[20+12] = 0x40; return p }())}, nil, map[string]uint64{"error/tcp_header": 1}},
		{"tcp data offset past the end", []packet{raw(func() []byte { p := tcpPacket(t, alice4, bob4, 1, fACK, nil); p[20+12] = 0xf0; return p }())}, nil, map[string]uint64{"error/tcp_header": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, st, rec := newDecoder(t, nil)
			feed(d, tc.frames...)
			if g := counts(st); !sameCounts(g, tc.counts) {
				t.Errorf("counts = %v, want %v", g, tc.counts)
			}
			if !sameMsgs(rec.msgs, tc.msgs) {
				t.Errorf("messages = %v, want %v", rec.msgs, tc.msgs)
			}
			if n := st.Packets.Load(); n != uint64(len(tc.frames)) {
				t.Errorf("packets = %d, want %d", n, len(tc.frames))
			}
		})
	}
}

// TestDecodeWireLength checks that Bytes counts the original length, not
// the captured one.
func TestDecodeWireLength(t *testing.T) {
	d, st, _ := newDecoder(t, nil)
	f := ether(t, udpPacket(t, alice4, bob4, []byte(ok200)))
	d.Packet(layers.LinkTypeEthernet, f[:100], 0, len(f))
	if got := st.Bytes.Load(); got != uint64(len(f)) {
		t.Errorf("bytes = %d, want %d", got, len(f))
	}
}
