package decode

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// The link layer is walked by one piece of code, link, for the decoder
// (frames, and the Ethernet frames and ethertypes that tunnels carry) and
// for FlowHash, so that a frame's worker is chosen from the same IP header
// that its decoder reads.

// Link types that gopacket does not name: DLT_RAW as some BSDs number it.
const (
	linkTypeRawBSD     layers.LinkType = 12
	linkTypeRawOpenBSD layers.LinkType = 14
)

// maxVLANTags bounds the 802.1Q/802.1ad tags walked in one Ethernet header.
const maxVLANTags = 8

// maxMPLSLabels bounds the labels of one MPLS label stack.
const maxMPLSLabels = 8

// linkEnd is where a walk of the link layer ended.
type linkEnd uint8

const (
	linkIP      linkEnd = iota // at the network layer: IPv4 or IPv6 by ethertype, PPP protocol or link type (the version nibble is for the IP decoder to check)
	linkHeader                 // a link header truncated, or more than maxVLANTags tags or maxMPLSLabels labels: ErrLinkHeader
	linkDepth                  // an MPLS stack or Ethernet frame past MaxEncapDepth: ErrEncapDepth
	linkNotIP                  // a protocol that is not IP (ARP, LLDP, PPP control, ...): SkipNotIP
	linkUnknown                // a link type not decoded: SkipLinkType
)

// link walks the link layer of a frame down to its network layer, without
// allocating, and keeps what it passed on the way:
//
//   - the link types' headers: Ethernet, Linux cooked SLL (16 bytes, the
//     protocol type last) and SLL2 (20 bytes, the protocol type first),
//     BSD null/loopback (4 bytes of address family, in the capturing
//     host's or network byte order and numbered differently by each BSD:
//     the IP version nibble that follows decides), raw IP (LINKTYPE_RAW,
//     LINKTYPE_IPV4, LINKTYPE_IPV6 and the BSDs' DLT_RAW numbers);
//   - from an ethertype (Ethernet's, SLL's and SLL2's protocol field, a
//     GRE protocol): stacks of 802.1Q, 802.1ad and pre-standard QinQ tags
//     (TPID 0x8100, 0x88a8, 0x9100) of any priority, as Linux captures
//     them too: a tag that the NIC stripped is put back by libpcap in
//     the frame, at Ethernet's type field or at SLL's protocol field, whose
//     value becomes the TPID, followed by the TCI and the original
//     protocol; MPLS label stacks (RFC 3032, 0x8847 and 0x8848), followed
//     by IPv4 or IPv6 (the version nibble after the bottom of the stack)
//     or by an Ethernet pseudowire behind its control word (RFC 4448,
//     first nibble 0); a PPPoE session (RFC 2516, 0x8864: 6 bytes of
//     header, then PPP protocol 0x0021 IPv4 or 0x0057 IPv6); transparent
//     Ethernet bridging (0x6558).
//
// Before a walk, zone and depth are those of where it starts (zero for a
// frame, the decoder's for an Ethernet frame or ethertype inside a
// tunnel); after it, what they have become.
type link struct {
	zone  uint64 // the zone, with each VLAN ID and MPLS label walked folded in (see foldZone)
	depth int    // encapsulations nested, as Decoder.depth counts them: MPLS stacks and bridged Ethernet frames add one each

	vlans, labelStacks, pppoe, bridged uint16 // encapsulations walked: VLAN tags, MPLS stacks, PPPoE sessions, bridged Ethernet frames (counted as GRE)
}

// frame walks a frame of link type lt and returns its network-layer bytes
// (IPv4 or IPv6 header first) when it ends at linkIP.
func (l *link) frame(lt layers.LinkType, data []byte) ([]byte, linkEnd) {
	var etype uint16
	switch lt {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return nil, linkHeader
		}
		etype, data = binary.BigEndian.Uint16(data[12:]), data[14:]
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return nil, linkHeader
		}
		etype, data = binary.BigEndian.Uint16(data[14:]), data[16:]
	case layers.LinkTypeLinuxSLL2:
		if len(data) < 20 {
			return nil, linkHeader
		}
		etype, data = binary.BigEndian.Uint16(data[0:]), data[20:]
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(data) < 4 {
			return nil, linkHeader
		}
		return data[4:], linkIP
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, linkTypeRawOpenBSD, linkTypeRawBSD:
		return data, linkIP
	default:
		return nil, linkUnknown
	}
	return l.ethertype(etype, data)
}

// ethertype walks data, the payload of ethertype etype, and returns its
// network-layer bytes when it ends at linkIP.
func (l *link) ethertype(etype uint16, data []byte) ([]byte, linkEnd) {
	for tags := 0; ; {
		switch etype {
		case 0x0800, 0x86dd:
			return data, linkIP
		case 0x8100, 0x88a8, 0x9100: // 802.1Q, 802.1ad, pre-standard QinQ
			if tags == maxVLANTags || len(data) < 4 {
				return nil, linkHeader
			}
			tags++
			l.vlans++
			l.zone = foldZone(l.zone, zoneVLAN, uint32(binary.BigEndian.Uint16(data)&0x0fff))
			etype, data = binary.BigEndian.Uint16(data[2:]), data[4:]
			continue
		case 0x8847, 0x8848: // MPLS unicast, multicast
			l.labelStacks++
			if l.depth++; l.depth > MaxEncapDepth {
				return nil, linkDepth
			}
			for i := 0; ; i++ {
				if i == maxMPLSLabels || len(data) < 4 {
					return nil, linkHeader
				}
				e := binary.BigEndian.Uint32(data)
				l.zone = foldZone(l.zone, zoneMPLS, e>>12)
				data = data[4:]
				if e&0x100 != 0 { // bottom of stack
					break
				}
			}
			if len(data) == 0 {
				return nil, linkHeader
			}
			switch data[0] >> 4 {
			case 4, 6:
				return data, linkIP
			case 0: // pseudowire control word, then an Ethernet frame
				if len(data) < 4 {
					return nil, linkHeader
				}
				data = data[4:]
			default:
				return nil, linkNotIP
			}
		case 0x6558: // transparent Ethernet bridging
			l.bridged++
			if l.depth++; l.depth > MaxEncapDepth {
				return nil, linkDepth
			}
		case 0x8864: // PPPoE session stage: 6-byte header, then the PPP protocol
			l.pppoe++
			if len(data) < 8 {
				return nil, linkHeader
			}
			switch binary.BigEndian.Uint16(data[6:]) {
			case 0x0021, 0x0057: // PPP IPv4, IPv6
				return data[8:], linkIP
			}
			return nil, linkNotIP
		default:
			return nil, linkNotIP
		}
		// An Ethernet frame inside a pseudowire or bridged.
		if len(data) < 14 {
			return nil, linkHeader
		}
		etype, data, tags = binary.BigEndian.Uint16(data[12:]), data[14:], 0
	}
}

// walked counts the encapsulations l passed, takes on its zone and depth,
// and decodes the network layer p, or counts why the walk ended short of
// it.
func (d *Decoder) walked(l *link, p []byte, end linkEnd, ts int64) {
	d.zone, d.depth = l.zone, l.depth
	if l.vlans|l.labelStacks|l.pppoe|l.bridged != 0 { // one test for a plain frame
		if l.vlans != 0 {
			d.stats.encaps[EncapVLAN].Add(uint64(l.vlans))
		}
		if l.labelStacks != 0 {
			d.stats.encaps[EncapMPLS].Add(uint64(l.labelStacks))
		}
		if l.pppoe != 0 {
			d.stats.encaps[EncapPPPoE].Add(uint64(l.pppoe))
		}
		if l.bridged != 0 {
			d.stats.encaps[EncapGRE].Add(uint64(l.bridged))
		}
	}
	switch end {
	case linkIP:
		d.ip(p, ts)
	case linkHeader:
		d.stats.parseError(ErrLinkHeader)
	case linkDepth:
		d.stats.parseError(ErrEncapDepth)
	case linkNotIP:
		d.stats.skip(SkipNotIP)
	default:
		d.stats.skip(SkipLinkType)
	}
}

// ethernet decodes an Ethernet frame carried inside a tunnel.
func (d *Decoder) ethernet(data []byte, ts int64) {
	l := link{zone: d.zone, depth: d.depth}
	p, end := l.frame(layers.LinkTypeEthernet, data)
	d.walked(&l, p, end, ts)
}

// ethertype decodes data, of ethertype etype, carried inside a tunnel.
func (d *Decoder) ethertype(etype uint16, data []byte, ts int64) {
	l := link{zone: d.zone, depth: d.depth}
	p, end := l.ethertype(etype, data)
	d.walked(&l, p, end, ts)
}
