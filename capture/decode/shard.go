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
// PACKET_FANOUT_HASH, of addresses and ports.)
//
// The link layer is walked as [Decoder.Packet] walks it: Ethernet, Linux
// SLL and SLL2 by their protocol field, 802.1Q/802.1ad/QinQ tags of any
// priority, MPLS label stacks and Ethernet pseudowires, PPPoE sessions,
// BSD null/loopback and raw IP. A frame that does not lead to an IPv4 or
// IPv6 header there (not IP, an unknown link type, a truncated or
// malformed link or IP header) hashes to 0, as an address pair may: with
// FlowHash mod n, such frames all go to the first worker, 0. FlowHash
// reads at most the link and IP headers and does not allocate.
func FlowHash(lt layers.LinkType, data []byte) uint64 {
	h, _ := WorkerHash(lt, data)
	return h
}

// WorkerHash returns [FlowHash] of the frame, and whether the frame may go
// to any worker instead: a UDP datagram that is not a fragment and not a
// tunnel (VXLAN, Geneve) is decoded by itself, its messages depending on
// no other frame, so the workers of a file may share the datagrams of one
// address pair (between an SBC and its proxy) by turns. TCP segments, IP
// fragments and tunnels stay with their pair. It does not allocate.
func WorkerHash(lt layers.LinkType, data []byte) (h uint64, anyWorker bool) {
	var l link
	data, end := l.frame(lt, data)
	if end != linkIP {
		return 0, false
	}
	return pairHash(data), statelessUDP(data)
}

// statelessUDP reports whether the IP packet p is a whole UDP datagram
// that is not a VXLAN or Geneve tunnel (the ports Decoder.udpTunnel looks
// at).
func statelessUDP(p []byte) bool {
	var u []byte
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		ihl := int(p[0]&0x0f) * 4
		// Protocol UDP; MF clear and offset 0: not a fragment.
		if p[9] != protoUDP || binary.BigEndian.Uint16(p[6:])&0x3fff != 0 || ihl < 20 || len(p) < ihl+8 {
			return false
		}
		u = p[ihl:]
	case len(p) >= 48 && p[0]>>4 == 6:
		if p[6] != protoUDP { // an extension header (a fragment header among them) first
			return false
		}
		u = p[40:]
	default:
		return false
	}
	sport, dport := binary.BigEndian.Uint16(u[0:]), binary.BigEndian.Uint16(u[2:])
	return dport != portVXLAN && dport != portVXLANLinux && sport != portVXLAN && dport != portGeneve && sport != portGeneve
}

// pairHash hashes the addresses of the IPv4 or IPv6 packet p, the same in
// both directions; 0 when p is not one.
func pairHash(data []byte) uint64 {
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
