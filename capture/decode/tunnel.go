package decode

import "encoding/binary"

// Encap is one kind of encapsulation a packet was carried in (label
// `encapsulation` of sip_exporter_packets_encapsulated_total).
type Encap uint8

// The encapsulations decoded.
const (
	EncapVLAN   Encap = iota // 802.1Q / 802.1ad tag
	EncapPPPoE               // PPPoE session (RFC 2516)
	EncapMPLS                // MPLS label stack (RFC 3032)
	EncapGRE                 // GRE (RFC 2784, RFC 2890 key and sequence)
	EncapERSPAN              // ERSPAN type I, II or III inside GRE
	EncapVXLAN               // VXLAN (RFC 7348), UDP 4789 and Linux's 8472
	EncapGeneve              // Geneve (RFC 8926), UDP 6081
	EncapIPinIP              // IPv4 or IPv6 inside IPv4 or IPv6 (IP protocols 4, 41)
	// SIP over WebSocket (RFC 7118): counts WebSocket messages (one SIP
	// message each), not packets
	EncapWebSocket
	numEncaps
)

var encapNames = [numEncaps]string{"vlan", "pppoe", "mpls", "gre", "erspan", "vxlan", "geneve", "ip_in_ip", "websocket"}

// String returns the label value, e.g. "vxlan".
func (e Encap) String() string { return encapNames[e] }

// MaxEncapDepth bounds the tunnels and mirror encapsulations decoded inside
// one another in a packet (VLAN tags and MPLS labels are bounded on their
// own). Deeper packets are counted as ErrEncapDepth: a malicious nesting
// cannot make decoding expensive.
const MaxEncapDepth = 8

// Encapsulations calls fn for every encapsulation kind with the number of
// packets decoded through it, zeros included.
func (s *Stats) Encapsulations(fn func(kind string, n uint64)) {
	for i := range s.encaps {
		fn(encapNames[i], s.encaps[i].Load())
	}
}

// enter counts a packet going through encapsulation e and reports whether
// it may be decoded further.
func (d *Decoder) enter(e Encap) bool {
	d.stats.encaps[e].Add(1)
	if e != EncapVLAN && e != EncapPPPoE {
		d.depth++
		if d.depth > MaxEncapDepth {
			d.stats.parseError(ErrEncapDepth)
			return false
		}
	}
	return true
}

// ethernet decodes an Ethernet frame carried inside a tunnel.
func (d *Decoder) ethernet(data []byte, ts int64) {
	if len(data) < 14 {
		d.stats.parseError(ErrLinkHeader)
		return
	}
	d.ethertype(binary.BigEndian.Uint16(data[12:]), data[14:], ts)
}

// maxMPLSLabels bounds the MPLS label stack.
const maxMPLSLabels = 8

// mpls decodes an MPLS label stack (RFC 3032) and what follows the bottom
// label: IPv4 or IPv6 by the version nibble, or an Ethernet pseudowire
// behind its control word (RFC 4448).
func (d *Decoder) mpls(data []byte, ts int64) {
	if !d.enter(EncapMPLS) {
		return
	}
	for i := 0; ; i++ {
		if i == maxMPLSLabels || len(data) < 4 {
			d.stats.parseError(ErrLinkHeader)
			return
		}
		bottom := data[2]&0x01 != 0
		data = data[4:]
		if bottom {
			break
		}
	}
	if len(data) == 0 {
		d.stats.parseError(ErrLinkHeader)
		return
	}
	switch data[0] >> 4 {
	case 4, 6:
		d.ip(data, ts)
	case 0: // pseudowire control word, then an Ethernet frame
		if len(data) < 4 {
			d.stats.parseError(ErrLinkHeader)
			return
		}
		d.ethernet(data[4:], ts)
	default:
		d.stats.skip(SkipNotIP)
	}
}

// GRE flags (RFC 2784, RFC 2890).
const (
	greChecksum = 0x8000
	greKey      = 0x2000
	greSequence = 0x1000
)

// gre decodes a GRE header (with checksum, key and sequence number when
// present) and its payload: IP, Ethernet (transparent bridging, 0x6558) or
// ERSPAN types I, II (0x88be) and III (0x22eb).
func (d *Decoder) gre(data []byte, ts int64) {
	if !d.enter(EncapGRE) {
		return
	}
	if len(data) < 4 {
		d.stats.parseError(ErrTunnelHeader)
		return
	}
	flags := binary.BigEndian.Uint16(data)
	if flags&0x0007 != 0 { // version 1 is PPTP's enhanced GRE: no SIP there
		d.stats.skip(SkipIPProtocol)
		return
	}
	proto := binary.BigEndian.Uint16(data[2:])
	n := 4
	for _, f := range [...]uint16{greChecksum, greKey, greSequence} {
		if flags&f != 0 {
			n += 4
		}
	}
	if len(data) < n {
		d.stats.parseError(ErrTunnelHeader)
		return
	}
	data = data[n:]
	switch proto {
	case 0x88be: // ERSPAN type II with a sequence number, type I without
		if !d.enter(EncapERSPAN) {
			return
		}
		if flags&greSequence != 0 {
			if len(data) < 8 {
				d.stats.parseError(ErrTunnelHeader)
				return
			}
			data = data[8:]
		}
		d.ethernet(data, ts)
	case 0x22eb: // ERSPAN type III: 12 bytes, 8 more with the O flag
		if !d.enter(EncapERSPAN) {
			return
		}
		if len(data) < 12 {
			d.stats.parseError(ErrTunnelHeader)
			return
		}
		hl := 12
		if data[11]&0x01 != 0 {
			hl += 8
		}
		if len(data) < hl {
			d.stats.parseError(ErrTunnelHeader)
			return
		}
		d.ethernet(data[hl:], ts)
	case 0x6558:
		d.ethernet(data, ts)
	default:
		d.ethertype(proto, data, ts)
	}
}

// UDP ports of the tunnels recognised inside UDP.
const (
	portVXLAN      = 4789
	portVXLANLinux = 8472
	portGeneve     = 6081
)

// udpTunnel decodes p as VXLAN or Geneve when one of the ports says so and
// the header checks out, and reports whether it did. Otherwise p is an
// ordinary UDP payload (SIP may use any port).
func (d *Decoder) udpTunnel(sport, dport uint16, p []byte, ts int64) bool {
	switch {
	case dport == portVXLAN || dport == portVXLANLinux || sport == portVXLAN:
		// RFC 7348: flags with the I bit and nothing else, reserved zero.
		if len(p) < 8+14 || p[0] != 0x08 || p[1]|p[2]|p[3]|p[7] != 0 {
			return false
		}
		if d.enter(EncapVXLAN) {
			d.ethernet(p[8:], ts)
		}
		return true
	case dport == portGeneve || sport == portGeneve:
		// RFC 8926: version 0, options length in 4-byte words.
		if len(p) < 8 || p[0]>>6 != 0 {
			return false
		}
		hl := 8 + int(p[0]&0x3f)*4
		proto := binary.BigEndian.Uint16(p[2:])
		if len(p) < hl || (proto != 0x6558 && proto != 0x0800 && proto != 0x86dd) {
			return false
		}
		if !d.enter(EncapGeneve) {
			return true
		}
		if proto == 0x6558 {
			d.ethernet(p[hl:], ts)
		} else {
			d.ip(p[hl:], ts)
		}
		return true
	}
	return false
}
