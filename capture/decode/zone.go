package decode

import (
	"encoding/binary"
	"math/bits"
)

// Zones: overlapping address spaces. Two tenants may use the same private
// addresses and ports on two VLANs or in two overlay networks; their TCP
// flows and IP fragments must not be merged. The decoder folds every
// identifier of such a space that a packet comes through into one 64-bit
// zone, part of the TCP flow key ([stream.Key]) and of the IP fragment key
// ([defrag.Key]):
//
//   - each 802.1Q/802.1ad VLAN ID, outer tags first;
//   - each MPLS label of the stack;
//   - the VNI of VXLAN (RFC 7348) and of Geneve (RFC 8926);
//   - the GRE key (RFC 2890), or the call ID of PPTP's enhanced GRE
//     (RFC 2637, version 1), whose key field also carries a length that
//     changes from packet to packet.
//
// ERSPAN session IDs and IP-in-IP are left out: they tell mirror sessions
// and tunnels apart, not address spaces. The zone is a hash of the
// identifiers in order; two different paths share one with a chance of
// 2^-64. The same traffic seen both tagged and untagged, or on two VLANs
// of a routed hop, makes two flows whose messages are copies: the dedup
// window (--capture.dedup-window) counts them once.

// Kinds of zone identifiers.
const (
	zoneVLAN uint64 = iota + 1
	zoneMPLS
	zoneVXLAN
	zoneGeneve
	zoneGRE
)

// foldZone returns zone z with one identifier of kind folded in.
func foldZone(z, kind uint64, id uint32) uint64 {
	z = bits.RotateLeft64(z, 23) ^ (kind<<32 | uint64(id))
	return (z ^ z>>31) * 0x9e3779b97f4a7c15
}

// inZone folds one identifier of kind into the current packet's zone.
func (d *Decoder) inZone(kind uint64, id uint32) { d.zone = foldZone(d.zone, kind, id) }

// udpTunnelZone folds the VNI of a VXLAN or Geneve header p into the zone
// when the ports say it is one (udpTunnel then decides whether it is).
func (d *Decoder) udpTunnelZone(sport, dport uint16, p []byte) {
	if len(p) < 8 {
		return
	}
	vni := uint32(p[4])<<16 | uint32(p[5])<<8 | uint32(p[6])
	switch {
	case dport == portVXLAN || dport == portVXLANLinux || sport == portVXLAN:
		d.inZone(zoneVXLAN, vni)
	case dport == portGeneve || sport == portGeneve:
		d.inZone(zoneGeneve, vni)
	}
}

// greZone folds the key of the GRE header at data into the zone: the GRE
// key (RFC 2890), after the checksum when there is one, or for version 1
// (RFC 2637) the call ID in the low 16 bits of the key field.
func (d *Decoder) greZone(data []byte) {
	if len(data) < 4 {
		return
	}
	flags := binary.BigEndian.Uint16(data)
	if flags&greKey == 0 {
		return
	}
	off := 4
	if flags&greChecksum != 0 {
		off += 4
	}
	if len(data) < off+4 {
		return
	}
	k := binary.BigEndian.Uint32(data[off:])
	if flags&0x0007 == 1 {
		k &= 0xffff
	}
	d.inZone(zoneGRE, k)
}
