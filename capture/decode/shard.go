package decode

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// FlowHash returns a hash of the outermost IP addresses of the frame data
// of link type lt, the same for both directions (it depends on the pair,
// not on which is the source): a frame's worker when several decoders
// share one capture file. Every frame whose decoding depends on another
// frame has the same outer address pair as that frame (the segments of a
// TCP stream, the fragments of an IP datagram, whatever travels in one
// tunnel between two endpoints), so hashing the pair keeps them on one
// decoder. (A live interface's workers are chosen by the kernel's
// PACKET_FANOUT_HASH, of addresses and ports.) Ethernet (with 802.1Q/802.1ad tags), Linux SLL and SLL2,
// BSD null/loopback and raw IP are looked into; for any other frame
// (MPLS, PPPoE, not IP, too short) FlowHash returns 0, as it may for an
// address pair. It reads at most
// the link and IP headers and does not allocate.
func FlowHash(lt layers.LinkType, data []byte) uint64 {
	var etype uint16
	switch lt {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return 0
		}
		etype, data = binary.BigEndian.Uint16(data[12:]), data[14:]
		for tags := 0; (etype == 0x8100 || etype == 0x88a8 || etype == 0x9100) && tags < maxVLANTags; tags++ {
			if len(data) < 4 {
				return 0
			}
			etype, data = binary.BigEndian.Uint16(data[2:]), data[4:]
		}
		if etype != 0x0800 && etype != 0x86dd {
			return 0
		}
	case layers.LinkTypeLinuxSLL:
		if len(data) < 16 {
			return 0
		}
		data = data[16:]
	case layers.LinkTypeLinuxSLL2:
		if len(data) < 20 {
			return 0
		}
		data = data[20:]
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(data) < 4 {
			return 0
		}
		data = data[4:]
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, linkTypeRawOpenBSD, linkTypeRawBSD:
	default:
		return 0
	}
	var x uint64
	switch {
	case len(data) >= 20 && data[0]>>4 == 4:
		x = uint64(binary.BigEndian.Uint32(data[12:]) ^ binary.BigEndian.Uint32(data[16:]))
	case len(data) >= 40 && data[0]>>4 == 6:
		x = binary.BigEndian.Uint64(data[8:]) ^ binary.BigEndian.Uint64(data[16:]) ^
			binary.BigEndian.Uint64(data[24:]) ^ binary.BigEndian.Uint64(data[32:])
	default:
		return 0
	}
	// SplitMix64's finaliser: every bit of the pair moves the low bits the
	// worker is taken from.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
