package decode_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// Outer addresses of the tunnels: a mirror source and a collector.
var (
	mirrorSrc = netip.MustParseAddr("198.51.100.1")
	mirrorDst = netip.MustParseAddr("198.51.100.2")
)

// outerIP wraps payload in an outer IPv4 packet of protocol proto inside
// an Ethernet frame.
func outerIP(tb testing.TB, proto layers.IPProtocol, payload []byte) []byte {
	ip := ipLayer(mirrorSrc, mirrorDst, proto)
	return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4},
		ip.(gopacket.SerializableLayer), gopacket.Payload(payload))
}

// outerUDP wraps payload in outer Ethernet/IPv4/UDP to port dport.
func outerUDP(tb testing.TB, dport uint16, payload []byte) []byte {
	return ether(tb, udpPacket(tb, netip.AddrPortFrom(mirrorSrc, 40000), netip.AddrPortFrom(mirrorDst, dport), payload))
}

// gre returns a GRE header with the given flags (checksum, key, sequence)
// and protocol.
func gre(flags, proto uint16) []byte {
	h := binary.BigEndian.AppendUint16(nil, flags)
	h = binary.BigEndian.AppendUint16(h, proto)
	for _, f := range []uint16{0x8000, 0x2000, 0x1000} {
		if flags&f != 0 {
			h = append(h, 0, 0, 0, 7)
		}
	}
	return h
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// pptp returns PPTP's enhanced GRE header (RFC 2637 §4.1) for a payload
// of n bytes, with a sequence number and an acknowledgment number when
// asked, and PPP's address and control bytes and protocol field for ip
// (compressed to one byte when asked, RFC 1661 §6.5/§6.6).
func pptp(ip []byte, seq, ack, compressed bool) []byte {
	var ppp []byte
	proto := uint16(0x0021)
	if ip[0]>>4 == 6 {
		proto = 0x0057
	}
	if compressed {
		ppp = []byte{byte(proto)}
	} else {
		ppp = binary.BigEndian.AppendUint16([]byte{0xff, 0x03}, proto)
	}
	flags := uint16(0x2001) // K, version 1
	if seq {
		flags |= 0x1000
	}
	if ack {
		flags |= 0x0080
	}
	h := binary.BigEndian.AppendUint16(nil, flags)
	h = binary.BigEndian.AppendUint16(h, 0x880b)
	h = binary.BigEndian.AppendUint16(h, uint16(len(ppp)+len(ip)))
	h = binary.BigEndian.AppendUint16(h, 0x4711) // call ID
	if seq {
		h = append(h, 0, 0, 0, 9)
	}
	if ack {
		h = append(h, 0, 0, 0, 8)
	}
	return cat(h, ppp, ip)
}

// mpls returns a two-label stack, bottom of stack set on the second.
func mpls() []byte { return []byte{0, 0x10, 0x00, 64, 0, 0x20, 0x01, 64} }

// tunnels frame an IP packet the ways mirrors and tunnels deliver it, each
// with the encapsulation kinds it must be counted under.
var tunnels = []struct {
	link
	kinds []string
}{
	{link{"gre", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return outerIP(tb, layers.IPProtocolGRE, cat(gre(0, uint16(ethType(ip))), ip))
	}}, []string{"gre"}},
	{link{"gre key+seq+csum", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return outerIP(tb, layers.IPProtocolGRE, cat(gre(0xb000, uint16(ethType(ip))), ip))
	}}, []string{"gre"}},
	{link{"gre ethernet", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return outerIP(tb, layers.IPProtocolGRE, cat(gre(0x2000, 0x6558), ether(tb, ip)))
	}}, []string{"gre"}},
	{link{"erspan I", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return outerIP(tb, layers.IPProtocolGRE, cat(gre(0, 0x88be), ether(tb, ip)))
	}}, []string{"gre", "erspan"}},
	{link{"erspan II", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		erspan := []byte{0x10, 0x64, 0x00, 0x01, 0, 0, 0, 0} // version 1, VLAN 100, session 1
		return outerIP(tb, layers.IPProtocolGRE, cat(gre(0x1000, 0x88be), erspan, ether(tb, ip)))
	}}, []string{"gre", "erspan"}},
	{link{"erspan III", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		erspan := make([]byte, 12+8)
		erspan[0] = 0x20 // version 2
		erspan[11] = 0x01
		return outerIP(tb, layers.IPProtocolGRE, cat(gre(0x1000, 0x22eb), erspan, ether(tb, ip)))
	}}, []string{"gre", "erspan"}},
	{link{"vxlan", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return outerUDP(tb, 4789, cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, ether(tb, ip)))
	}}, []string{"vxlan"}},
	{link{"vxlan in vlan", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		inner := udpPacket(tb, netip.AddrPortFrom(mirrorSrc, 40000), netip.AddrPortFrom(mirrorDst, 4789),
			cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, ether(tb, ip)))
		return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, gopacket.Payload(inner))
	}}, []string{"vxlan", "vlan"}},
	{link{"geneve", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		hdr := []byte{0x01, 0, 0x65, 0x58, 0, 0, 42, 0, 0x01, 0x02, 0x01, 0} // one 4-byte option, no data
		return outerUDP(tb, 6081, cat(hdr, ether(tb, ip)))
	}}, []string{"geneve"}},
	{link{"ip in ip", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		proto := layers.IPProtocolIPv4
		if ip[0]>>4 == 6 {
			proto = layers.IPProtocolIPv6
		}
		return outerIP(tb, proto, ip)
	}}, []string{"ip_in_ip"}},
	{link{"mpls", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeMPLSUnicast}, gopacket.Payload(cat(mpls(), ip)))
	}}, []string{"mpls"}},
	{link{"mpls ethernet pseudowire", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeMPLSUnicast},
			gopacket.Payload(cat(mpls(), []byte{0, 0, 0, 0}, ether(tb, ip))))
	}}, []string{"mpls"}},
	{link{"pptp", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return outerIP(tb, layers.IPProtocolGRE, pptp(ip, true, false, false))
	}}, []string{"gre", "ppp"}},
	{link{"pptp ack, compressed ppp", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return outerIP(tb, layers.IPProtocolGRE, pptp(ip, true, true, true))
	}}, []string{"gre", "ppp"}},
	{link{"pptp padded", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return outerIP(tb, layers.IPProtocolGRE, cat(pptp(ip, false, false, false), []byte{0xde, 0xad, 0xbe, 0xef}))
	}}, []string{"gre", "ppp"}},
	{link{"vxlan in gre in mpls", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		vx := udpPacket(tb, netip.AddrPortFrom(mirrorSrc, 40000), netip.AddrPortFrom(mirrorDst, 4789),
			cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, ether(tb, ip)))
		g := ipLayer(mirrorSrc, mirrorDst, layers.IPProtocolGRE)
		greIP := serialize(tb, g.(gopacket.SerializableLayer), gopacket.Payload(cat(gre(0, 0x0800), vx)))
		return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeMPLSUnicast}, gopacket.Payload(cat(mpls(), greIP)))
	}}, []string{"mpls", "gre", "vxlan"}},
}

// TestDecodeTunnels sends the corpus over UDP and TCP, inner IPv4 and IPv6,
// inside every tunnel and mirror encapsulation, and expects what the plain
// Ethernet capture gives.
func TestDecodeTunnels(t *testing.T) {
	for _, ipv := range []struct {
		name     string
		src, dst netip.AddrPort
	}{{"ipv4", alice4, bob4}, {"ipv6", alice6, bob6}} {
		for _, transport := range []string{"udp", "tcp"} {
			run := func(l link) ([]got, map[string]uint64, *decode.Stats) {
				d, st, rec := newDecoder(t, nil)
				sendCorpus(t, d, l, transport, ipv.src, ipv.dst)
				return rec.msgs, counts(st), st
			}
			plainMsgs, plainCounts, _ := run(ethernet)
			for _, tun := range tunnels {
				t.Run(ipv.name+"/"+transport+"/"+tun.name, func(t *testing.T) {
					msgs, c, st := run(tun.link)
					if !sameMsgs(msgs, plainMsgs) {
						t.Errorf("messages:\n got %v\nwant %v", msgs, plainMsgs)
					}
					if !sameCounts(c, plainCounts) {
						t.Errorf("counts = %v, want %v", c, plainCounts)
					}
					enc := map[string]uint64{}
					st.Encapsulations(func(k string, n uint64) { enc[k] = n })
					for _, k := range tun.kinds {
						if enc[k] == 0 {
							t.Errorf("encapsulation %s not counted: %v", k, enc)
						}
					}
				})
			}
		}
	}
}

// TestDecodeTunnelDepth nests GRE deeper than MaxEncapDepth: nothing is
// counted but the error.
func TestDecodeTunnelDepth(t *testing.T) {
	ip := udpPacket(t, alice4, bob4, []byte(messages[1].text))
	for range decode.MaxEncapDepth + 1 {
		g := ipLayer(mirrorSrc, mirrorDst, layers.IPProtocolGRE)
		ip = serialize(t, g.(gopacket.SerializableLayer), gopacket.Payload(cat(gre(0, 0x0800), ip)))
	}
	d, st, rec := newDecoder(t, nil)
	f := ether(t, ip)
	d.Packet(layers.LinkTypeEthernet, f, 0, len(f))
	if len(rec.msgs) != 0 || st.ParseError(decode.ErrEncapDepth) != 1 {
		t.Errorf("messages %v, encapsulation_depth errors %d; want none and 1", rec.msgs, st.ParseError(decode.ErrEncapDepth))
	}
}

// TestDecodeSIPOnTunnelPorts: SIP sent to UDP 4789 or 6081 is still SIP.
func TestDecodeSIPOnTunnelPorts(t *testing.T) {
	for _, port := range []uint16{4789, 6081, 8472} {
		d, _, rec := newDecoder(t, nil)
		f := ether(t, udpPacket(t, alice4, netip.AddrPortFrom(bob4.Addr(), port), []byte(messages[1].text)))
		d.Packet(layers.LinkTypeEthernet, f, 0, len(f))
		if len(rec.msgs) != 1 {
			t.Errorf("port %d: %d messages, want 1", port, len(rec.msgs))
		}
	}
}
