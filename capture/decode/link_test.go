package decode

// Tests of the link-layer walk shared by the decoder and FlowHash, with
// frames written out byte by byte here, as the link types' specifications
// and libpcap lay them out.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// Test addresses of the walk's frames.
var (
	hostA, hostB, hostC = [4]byte{192, 0, 2, 1}, [4]byte{198, 51, 100, 2}, [4]byte{198, 51, 100, 3}
)

// ipv4Hdr returns a 20-byte IPv4 header from src to dst (UDP, no payload).
func ipv4Hdr(src, dst [4]byte) []byte {
	return slices.Concat([]byte{0x45, 0, 0, 20, 0x12, 0x34, 0, 0, 64, 17, 0, 0}, src[:], dst[:])
}

// ipv6Hdr returns a 40-byte IPv6 header from src to dst (UDP, no payload).
func ipv6Hdr(src, dst byte) []byte {
	a := func(b byte) []byte { return []byte{0x20, 0x01, 0x0d, 0xb8, 15: b} }
	return slices.Concat([]byte{0x60, 0, 0, 0, 0, 0, 17, 64}, a(src), a(dst))
}

// u16 is the big-endian bytes of v.
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// ethHdr is an Ethernet header of type etype.
func ethHdr(etype uint16) []byte {
	return slices.Concat([]byte{0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a}, u16(etype))
}

// sllHdr is a Linux cooked v1 header of protocol proto: packet type (to
// us), ARPHRD_ETHER, address length 6, 8 bytes of address, protocol.
func sllHdr(proto uint16) []byte {
	return slices.Concat([]byte{0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x0a, 0, 0}, u16(proto))
}

// sll2Hdr is a Linux cooked v2 header of protocol proto: protocol,
// reserved, interface index 3, ARPHRD_ETHER, packet type, address length
// 6, 8 bytes of address.
func sll2Hdr(proto uint16) []byte {
	return slices.Concat(u16(proto), []byte{0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x0a, 0, 0})
}

// tag is a VLAN tag after its TPID: the TCI (priority pcp, drop eligible
// dei, VLAN ID vid) and the type that follows it.
func tag(pcp, dei int, vid, next uint16) []byte {
	return slices.Concat(u16(uint16(pcp)<<13|uint16(dei)<<12|vid), u16(next))
}

// label is an MPLS label stack entry (RFC 3032): label, bottom of stack.
func label(l uint32, bottom bool) []byte {
	e := l<<12 | 64 // TTL 64
	if bottom {
		e |= 0x100
	}
	return binary.BigEndian.AppendUint32(nil, e)
}

// pppoeSession is a PPPoE session header (version 1, type 1, code 0,
// session 0x0042, length n) and the PPP protocol proto.
func pppoeSession(n int, proto uint16) []byte {
	return slices.Concat([]byte{0x11, 0, 0, 0x42}, u16(uint16(n+2)), u16(proto))
}

// linkCase is one frame and where its walk must end.
type linkCase struct {
	name  string
	lt    layers.LinkType
	frame []byte
	end   linkEnd
	ip    []byte // the network-layer bytes, when end is linkIP
	// encapsulations to be counted: VLAN tags, MPLS stacks, PPPoE
	// sessions, bridged Ethernet frames
	vlans, stacks, pppoe, bridged uint16
}

// linkCases returns the table of the walk: every link type, tag stacks of
// every priority in Ethernet, SLL and SLL2 frames, MPLS, PPPoE, bridging
// and pseudowires, and frames cut short or not IP.
func linkCases() []linkCase {
	v4, v6 := ipv4Hdr(hostA, hostB), ipv6Hdr(1, 2)
	var cs []linkCase
	add := func(c linkCase) { cs = append(cs, c) }
	// The link types themselves.
	for _, ip := range [][]byte{v4, v6} {
		et, v := uint16(0x0800), "v4"
		if ip[0]>>4 == 6 {
			et, v = 0x86dd, "v6"
		}
		add(linkCase{name: "ethernet " + v, lt: layers.LinkTypeEthernet, frame: slices.Concat(ethHdr(et), ip), ip: ip})
		add(linkCase{name: "sll " + v, lt: layers.LinkTypeLinuxSLL, frame: slices.Concat(sllHdr(et), ip), ip: ip})
		add(linkCase{name: "sll2 " + v, lt: layers.LinkTypeLinuxSLL2, frame: slices.Concat(sll2Hdr(et), ip), ip: ip})
		for _, af := range []uint32{2, 24, 28, 30} {
			add(linkCase{name: fmt.Sprintf("null af %d %s", af, v), lt: layers.LinkTypeNull, frame: slices.Concat(binary.LittleEndian.AppendUint32(nil, af), ip), ip: ip})
			add(linkCase{name: fmt.Sprintf("loop af %d %s", af, v), lt: layers.LinkTypeLoop, frame: slices.Concat(binary.BigEndian.AppendUint32(nil, af), ip), ip: ip})
		}
		for _, lt := range []layers.LinkType{layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14} {
			add(linkCase{name: fmt.Sprintf("raw %d %s", lt, v), lt: lt, frame: ip, ip: ip})
		}
	}
	// One tag of every priority, with and without the drop eligible bit,
	// in each framing that carries an ethertype: Ethernet's type field, or
	// the protocol field of SLL and SLL2, where libpcap puts back a tag
	// the NIC stripped (the TPID there, then the TCI and the protocol).
	framings := []struct {
		name string
		lt   layers.LinkType
		hdr  func(uint16) []byte
	}{{"ethernet", layers.LinkTypeEthernet, ethHdr}, {"sll", layers.LinkTypeLinuxSLL, sllHdr}, {"sll2", layers.LinkTypeLinuxSLL2, sll2Hdr}}
	for _, fr := range framings {
		for pcp := range 8 {
			for dei := range 2 {
				add(linkCase{name: fmt.Sprintf("%s 802.1Q pcp %d dei %d", fr.name, pcp, dei), lt: fr.lt,
					frame: slices.Concat(fr.hdr(0x8100), tag(pcp, dei, 100, 0x0800), v4), ip: v4, vlans: 1})
			}
			add(linkCase{name: fmt.Sprintf("%s 802.1Q pcp %d v6", fr.name, pcp), lt: fr.lt,
				frame: slices.Concat(fr.hdr(0x8100), tag(pcp, 0, 4094, 0x86dd), v6), ip: v6, vlans: 1})
			add(linkCase{name: fmt.Sprintf("%s 802.1ad QinQ pcp %d", fr.name, pcp), lt: fr.lt,
				frame: slices.Concat(fr.hdr(0x88a8), tag(pcp, 0, 10, 0x8100), tag(7-pcp, 0, 200, 0x0800), v4), ip: v4, vlans: 2})
			add(linkCase{name: fmt.Sprintf("%s 0x9100 QinQ pcp %d", fr.name, pcp), lt: fr.lt,
				frame: slices.Concat(fr.hdr(0x9100), tag(pcp, 1, 10, 0x8100), tag(pcp, 0, 200, 0x86dd), v6), ip: v6, vlans: 2})
		}
		eight := fr.hdr(0x88a8)
		for i := range 7 {
			eight = slices.Concat(eight, tag(i, 0, uint16(i+1), 0x8100))
		}
		add(linkCase{name: fr.name + " 8 tags", lt: fr.lt, frame: slices.Concat(eight, tag(3, 0, 8, 0x0800), v4), ip: v4, vlans: 8})
		add(linkCase{name: fr.name + " 9 tags", lt: fr.lt, frame: slices.Concat(eight, tag(3, 0, 8, 0x8100), tag(3, 0, 9, 0x0800), v4), end: linkHeader, vlans: 8})
		add(linkCase{name: fr.name + " tag cut", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8100), []byte{0x60, 0x64, 0x08}), end: linkHeader})
		add(linkCase{name: fr.name + " arp", lt: fr.lt, frame: slices.Concat(fr.hdr(0x0806), make([]byte, 28)), end: linkNotIP})
		add(linkCase{name: fr.name + " arp in a tag", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8100), tag(3, 0, 5, 0x0806), make([]byte, 28)), end: linkNotIP, vlans: 1})

		// MPLS: one label to IPv4, two to IPv6, after a tag, multicast.
		add(linkCase{name: fr.name + " mpls v4", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8847), label(16, true), v4), ip: v4, stacks: 1})
		add(linkCase{name: fr.name + " mpls 2 labels v6", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8847), label(16, false), label(17, true), v6), ip: v6, stacks: 1})
		add(linkCase{name: fr.name + " vlan mpls", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8100), tag(2, 0, 7, 0x8848), label(16, true), v4), ip: v4, vlans: 1, stacks: 1})
		add(linkCase{name: fr.name + " mpls pseudowire", lt: fr.lt,
			frame: slices.Concat(fr.hdr(0x8847), label(16, false), label(17, true), []byte{0, 0, 0, 1}, ethHdr(0x8100), tag(3, 0, 9, 0x0800), v4), ip: v4, stacks: 1, vlans: 1})
		add(linkCase{name: fr.name + " mpls not ip", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8847), label(16, true), []byte{0x50, 0, 0, 0}), end: linkNotIP, stacks: 1})
		add(linkCase{name: fr.name + " mpls no bottom", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8847), label(16, false), label(17, false)), end: linkHeader, stacks: 1})
		add(linkCase{name: fr.name + " mpls empty", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8847), label(16, true)), end: linkHeader, stacks: 1})
		nine := fr.hdr(0x8847)
		for i := range 9 {
			nine = slices.Concat(nine, label(uint32(i), i == 8))
		}
		add(linkCase{name: fr.name + " mpls 9 labels", lt: fr.lt, frame: slices.Concat(nine, v4), end: linkHeader, stacks: 1})

		// PPPoE session: IPv4, IPv6, LCP, cut; behind a tag.
		add(linkCase{name: fr.name + " pppoe v4", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8864), pppoeSession(len(v4), 0x0021), v4), ip: v4, pppoe: 1})
		add(linkCase{name: fr.name + " pppoe v6", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8864), pppoeSession(len(v6), 0x0057), v6), ip: v6, pppoe: 1})
		add(linkCase{name: fr.name + " vlan pppoe", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8100), tag(3, 0, 30, 0x8864), pppoeSession(len(v4), 0x0021), v4), ip: v4, vlans: 1, pppoe: 1})
		add(linkCase{name: fr.name + " pppoe lcp", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8864), pppoeSession(4, 0xc021), []byte{1, 1, 0, 4}), end: linkNotIP, pppoe: 1})
		add(linkCase{name: fr.name + " pppoe cut", lt: fr.lt, frame: slices.Concat(fr.hdr(0x8864), []byte{0x11, 0, 0, 0x42, 0, 22, 0}), end: linkHeader, pppoe: 1})

		// Transparent Ethernet bridging.
		add(linkCase{name: fr.name + " bridged", lt: fr.lt, frame: slices.Concat(fr.hdr(0x6558), ethHdr(0x0800), v4), ip: v4, bridged: 1})
		add(linkCase{name: fr.name + " bridged cut", lt: fr.lt, frame: slices.Concat(fr.hdr(0x6558), ethHdr(0x0800)[:13]), end: linkHeader, bridged: 1})
	}
	// Cut link headers, unknown link types, nesting past MaxEncapDepth.
	add(linkCase{name: "ethernet cut", lt: layers.LinkTypeEthernet, frame: ethHdr(0x0800)[:13], end: linkHeader})
	add(linkCase{name: "sll cut", lt: layers.LinkTypeLinuxSLL, frame: sllHdr(0x0800)[:15], end: linkHeader})
	add(linkCase{name: "sll2 cut", lt: layers.LinkTypeLinuxSLL2, frame: sll2Hdr(0x0800)[:19], end: linkHeader})
	add(linkCase{name: "null cut", lt: layers.LinkTypeNull, frame: []byte{2, 0, 0}, end: linkHeader})
	add(linkCase{name: "loop cut", lt: layers.LinkTypeLoop, frame: []byte{0, 0, 2}, end: linkHeader})
	add(linkCase{name: "link type 147", lt: 147, frame: slices.Concat(ethHdr(0x0800), v4), end: linkUnknown})
	add(linkCase{name: "802.11", lt: layers.LinkTypeIEEE802_11, frame: slices.Concat(ethHdr(0x0800), v4), end: linkUnknown})
	deep := slices.Concat(ethHdr(0x0800), v4)
	for range MaxEncapDepth {
		deep = slices.Concat(ethHdr(0x8847), label(16, true), []byte{0, 0, 0, 0}, deep)
	}
	add(linkCase{name: "pseudowires at MaxEncapDepth", lt: layers.LinkTypeEthernet, frame: deep, ip: v4, stacks: MaxEncapDepth})
	add(linkCase{name: "pseudowires past MaxEncapDepth", lt: layers.LinkTypeEthernet,
		frame: slices.Concat(ethHdr(0x8847), label(16, true), []byte{0, 0, 0, 0}, deep), end: linkDepth, stacks: MaxEncapDepth + 1})
	bridged := slices.Concat(ethHdr(0x0800), v4)
	for range MaxEncapDepth + 1 {
		bridged = slices.Concat(ethHdr(0x6558), bridged)
	}
	add(linkCase{name: "bridged past MaxEncapDepth", lt: layers.LinkTypeEthernet, frame: bridged, end: linkDepth, bridged: MaxEncapDepth + 1})
	return cs
}

// TestLinkWalk walks every frame of the table: where it ends, the bytes of
// the network layer (inside the frame, not copied), the encapsulations
// passed; without allocating.
func TestLinkWalk(t *testing.T) {
	for _, c := range linkCases() {
		t.Run(c.name, func(t *testing.T) {
			var l link
			p, end := l.frame(c.lt, c.frame)
			if end != c.end {
				t.Fatalf("ended at %d, want %d", end, c.end)
			}
			if end == linkIP {
				if !bytes.Equal(p, c.ip) {
					t.Errorf("network layer % x, want % x", p, c.ip)
				}
				if len(p) > 0 && &p[len(p)-1] != &c.frame[len(c.frame)-1] {
					t.Error("network layer is not the end of the frame")
				}
			}
			got := [4]uint16{l.vlans, l.labelStacks, l.pppoe, l.bridged}
			if want := [4]uint16{c.vlans, c.stacks, c.pppoe, c.bridged}; got != want {
				t.Errorf("vlans, mpls, pppoe, bridged = %v, want %v", got, want)
			}
			if want := int(c.stacks + c.bridged); l.depth != want {
				t.Errorf("depth %d, want %d", l.depth, want)
			}
			if n := testing.AllocsPerRun(100, func() {
				var l link
				l.frame(c.lt, c.frame)
			}); n != 0 {
				t.Errorf("%v allocs", n)
			}
		})
	}
}

// TestLinkWalkFrom: a walk from inside a tunnel starts at the decoder's
// zone and depth, and stops past MaxEncapDepth counted from there.
func TestLinkWalkFrom(t *testing.T) {
	f := slices.Concat(ethHdr(0x8847), label(16, true), ipv4Hdr(hostA, hostB))
	l := link{depth: MaxEncapDepth - 1, zone: 42}
	if _, end := l.frame(layers.LinkTypeEthernet, f); end != linkIP || l.depth != MaxEncapDepth || l.zone == 42 {
		t.Errorf("from depth %d: ended at %d, depth %d, zone %x", MaxEncapDepth-1, end, l.depth, l.zone)
	}
	l = link{depth: MaxEncapDepth}
	if _, end := l.frame(layers.LinkTypeEthernet, f); end != linkDepth {
		t.Errorf("from depth %d: ended at %d, want linkDepth", MaxEncapDepth, end)
	}
	l = link{}
	if p, end := l.ethertype(0x8100, slices.Concat(tag(3, 0, 5, 0x0800), ipv4Hdr(hostA, hostB))); end != linkIP || len(p) != 20 || l.vlans != 1 {
		t.Errorf("ethertype 0x8100: ended at %d with %d bytes, %d tags", end, len(p), l.vlans)
	}
}

// TestLinkZone: the zone is the VLAN IDs and MPLS labels in order, whatever
// the priority, drop eligible bit, TPID or framing.
func TestLinkZone(t *testing.T) {
	v4 := ipv4Hdr(hostA, hostB)
	zone := func(lt layers.LinkType, f []byte) uint64 {
		var l link
		if _, end := l.frame(lt, f); end != linkIP {
			t.Fatalf("% x: ended at %d", f, end)
		}
		return l.zone
	}
	base := zone(layers.LinkTypeEthernet, slices.Concat(ethHdr(0x8100), tag(0, 0, 100, 0x0800), v4))
	for pcp := range 8 {
		for _, f := range []struct {
			lt layers.LinkType
			b  []byte
		}{
			{layers.LinkTypeEthernet, slices.Concat(ethHdr(0x8100), tag(pcp, 1, 100, 0x0800), v4)},
			{layers.LinkTypeLinuxSLL, slices.Concat(sllHdr(0x8100), tag(pcp, 0, 100, 0x0800), v4)},
			{layers.LinkTypeLinuxSLL2, slices.Concat(sll2Hdr(0x88a8), tag(pcp, 0, 100, 0x86dd), ipv6Hdr(1, 2))},
		} {
			if z := zone(f.lt, f.b); z != base {
				t.Errorf("%v pcp %d: zone %x, want %x (VLAN 100)", f.lt, pcp, z, base)
			}
		}
	}
	distinct := map[uint64]string{base: "vlan 100", 0: "none"}
	for name, f := range map[string][]byte{
		"vlan 101":       slices.Concat(ethHdr(0x8100), tag(0, 0, 101, 0x0800), v4),
		"qinq 10 200":    slices.Concat(ethHdr(0x88a8), tag(0, 0, 10, 0x8100), tag(0, 0, 200, 0x0800), v4),
		"qinq 200 10":    slices.Concat(ethHdr(0x88a8), tag(0, 0, 200, 0x8100), tag(0, 0, 10, 0x0800), v4),
		"mpls 16":        slices.Concat(ethHdr(0x8847), label(16, true), v4),
		"mpls 16 17":     slices.Concat(ethHdr(0x8847), label(16, false), label(17, true), v4),
		"vlan 100 mpls":  slices.Concat(ethHdr(0x8100), tag(0, 0, 100, 0x8847), label(16, true), v4),
		"pseudowire 100": slices.Concat(ethHdr(0x8847), label(16, true), []byte{0, 0, 0, 0}, ethHdr(0x8100), tag(0, 0, 100, 0x0800), v4),
	} {
		z := zone(layers.LinkTypeEthernet, f)
		if other, ok := distinct[z]; ok {
			t.Errorf("%s: zone %x, that of %s", name, z, other)
		}
		distinct[z] = name
	}
}

// TestFlowHashLinks: every frame the walk takes to IP hashes as its IP
// packet alone, the same both ways; every other frame hashes to 0; no
// frame allocates.
func TestFlowHashLinks(t *testing.T) {
	ab := FlowHash(layers.LinkTypeRaw, ipv4Hdr(hostA, hostB))
	ab6 := FlowHash(layers.LinkTypeRaw, ipv6Hdr(1, 2))
	if ab == 0 || ab6 == 0 || ab == ab6 {
		t.Fatalf("IPv4 pair %x, IPv6 pair %x", ab, ab6)
	}
	if ba := FlowHash(layers.LinkTypeRaw, ipv4Hdr(hostB, hostA)); ba != ab {
		t.Errorf("IPv4 %x one way, %x the other", ab, ba)
	}
	if ba := FlowHash(layers.LinkTypeRaw, ipv6Hdr(2, 1)); ba != ab6 {
		t.Errorf("IPv6 %x one way, %x the other", ab6, ba)
	}
	if other := FlowHash(layers.LinkTypeRaw, ipv4Hdr(hostA, hostC)); other == ab {
		t.Error("another pair hashes alike")
	}
	for _, c := range linkCases() {
		want := uint64(0)
		switch {
		case c.end == linkIP && c.ip[0]>>4 == 4:
			want = ab
		case c.end == linkIP:
			want = ab6
		}
		if h := FlowHash(c.lt, c.frame); h != want {
			t.Errorf("%s: %x, want %x", c.name, h, want)
		}
		if c.end == linkIP {
			rev := bytes.Clone(c.frame)
			swapAddrs(rev[len(rev)-len(c.ip):])
			if h := FlowHash(c.lt, rev); h != want {
				t.Errorf("%s reversed: %x, want %x", c.name, h, want)
			}
		}
		if n := testing.AllocsPerRun(100, func() { FlowHash(c.lt, c.frame) }); n != 0 {
			t.Errorf("%s: %v allocs", c.name, n)
		}
	}
}

// swapAddrs swaps the source and destination addresses of the IPv4 or
// IPv6 header at p, and reports whether it held one.
func swapAddrs(p []byte) bool {
	var off, n int
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		off, n = 12, 4
	case len(p) >= 40 && p[0]>>4 == 6:
		off, n = 8, 16
	default:
		return false
	}
	for i := range n {
		p[off+i], p[off+n+i] = p[off+n+i], p[off+i]
	}
	return true
}

// linkTypes are the link types FuzzLinkWalk tries, by index.
var linkTypes = []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
	layers.LinkTypeNull, layers.LinkTypeLoop, layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14, 147}

// FuzzLinkWalk walks any frame of any link type: no panic; a network
// layer that ends the frame; a depth within MaxEncapDepth unless the walk
// ended there; FlowHash that of the network layer alone, the same with the
// addresses swapped, and 0 when the walk does not reach IP.
func FuzzLinkWalk(f *testing.F) {
	for _, c := range linkCases() {
		f.Add(uint8(slices.Index(linkTypes, c.lt)), c.frame)
	}
	f.Fuzz(func(t *testing.T, sel uint8, frame []byte) {
		lt := linkTypes[int(sel)%len(linkTypes)]
		var l link
		p, end := l.frame(lt, frame)
		if end != linkDepth && l.depth > MaxEncapDepth {
			t.Fatalf("depth %d past MaxEncapDepth, ended at %d", l.depth, end)
		}
		h := FlowHash(lt, frame)
		if end != linkIP {
			if h != 0 {
				t.Fatalf("ended at %d, FlowHash %x", end, h)
			}
			return
		}
		if len(p) > 0 && &p[len(p)-1] != &frame[len(frame)-1] {
			t.Fatal("network layer is not the end of the frame")
		}
		if raw := FlowHash(layers.LinkTypeRaw, p); raw != h {
			t.Fatalf("FlowHash %x, of the network layer alone %x", h, raw)
		}
		rev := bytes.Clone(frame)
		if swapAddrs(rev[len(rev)-len(p):]) {
			if r := FlowHash(lt, rev); r != h {
				t.Fatalf("FlowHash %x one way, %x the other", h, r)
			}
		}
	})
}
