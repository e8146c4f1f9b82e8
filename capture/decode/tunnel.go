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
	EncapPPP // PPP inside PPTP's enhanced GRE (RFC 2637), counted under gre too
	numEncaps
)

var encapNames = [numEncaps]string{"vlan", "pppoe", "mpls", "gre", "erspan", "vxlan", "geneve", "ip_in_ip", "websocket", "ppp"}

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
	if e != EncapVLAN && e != EncapPPPoE && e != EncapPPP {
		d.depth++
		if d.depth > MaxEncapDepth {
			d.stats.parseError(ErrEncapDepth)
			return false
		}
	}
	return true
}

// GRE flags (RFC 2784, RFC 2890; acknowledgment: RFC 2637 §4.1).
const (
	greChecksum = 0x8000
	greRouting  = 0x4000
	greKey      = 0x2000
	greSequence = 0x1000
	greAck      = 0x0080
	greVersion  = 0x0007
)

// gre decodes a GRE header (with checksum, key and sequence number when
// present; a routing field is a tunnel header error) and its payload: IP, Ethernet (transparent bridging, 0x6558) or
// ERSPAN types I, II (0x88be) and III (0x22eb); version 1, PPTP's enhanced
// GRE, goes to pptp.
func (d *Decoder) gre(data []byte, ts int64) {
	if !d.enter(EncapGRE) {
		return
	}
	if len(data) < 4 {
		d.stats.parseError(ErrTunnelHeader)
		return
	}
	flags := binary.BigEndian.Uint16(data)
	proto := binary.BigEndian.Uint16(data[2:])
	switch flags & greVersion {
	case 0:
		// RFC 1701's routing field (R flag; dropped by RFC 2784 §2.1)
		// is a list of source route entries of their own lengths: it
		// would be taken for the payload. Not decoded.
		if flags&greRouting != 0 {
			d.stats.parseError(ErrTunnelHeader)
			return
		}
	case 1:
		d.pptp(flags, proto, data, ts)
		return
	default:
		d.stats.skip(SkipIPProtocol)
		return
	}
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

// pptp decodes the enhanced GRE header of PPTP (RFC 2637 §4.1, version 1,
// protocol 0x880B): flags and version, protocol, the key field (16-bit
// payload length, 16-bit call ID, always present), a sequence number (S
// flag) and an acknowledgment number (A flag), then the PPP frame of
// payload length bytes (a shorter capture keeps what was captured; an
// acknowledgment alone carries none). Other protocols of version 1 are
// skipped; a checksum or routing flag, a missing key or a header longer
// than the packet is a tunnel header error.
func (d *Decoder) pptp(flags, proto uint16, data []byte, ts int64) {
	if proto != 0x880b {
		d.stats.skip(SkipIPProtocol)
		return
	}
	if flags&greKey == 0 || flags&(greChecksum|greRouting) != 0 {
		d.stats.parseError(ErrTunnelHeader)
		return
	}
	n := 8
	if flags&greSequence != 0 {
		n += 4
	}
	if flags&greAck != 0 {
		n += 4
	}
	if len(data) < n {
		d.stats.parseError(ErrTunnelHeader)
		return
	}
	plen := int(binary.BigEndian.Uint16(data[4:]))
	data = data[n:]
	if plen < len(data) {
		data = data[:plen]
	}
	if len(data) == 0 {
		d.stats.skip(SkipNotIP) // an acknowledgment without payload
		return
	}
	if d.enter(EncapPPP) {
		d.ppp(data, ts)
	}
}

// ppp decodes a PPP frame (RFC 1661) as PPTP carries it: the address and
// control bytes FF 03, unless compressed away (RFC 1661 §6.6), then the
// protocol field, one byte when compressed (RFC 1661 §6.5: an odd first
// byte ends it), then IPv4 (0x0021) or IPv6 (0x0057). Other protocols (LCP,
// IPCP, CCP, compressed or encrypted data) are skipped.
func (d *Decoder) ppp(data []byte, ts int64) {
	if len(data) >= 2 && data[0] == 0xff && data[1] == 0x03 {
		data = data[2:]
	}
	var proto uint16
	switch {
	case len(data) >= 1 && data[0]&1 == 1:
		proto, data = uint16(data[0]), data[1:]
	case len(data) >= 2:
		proto, data = binary.BigEndian.Uint16(data), data[2:]
	default:
		d.stats.parseError(ErrTunnelHeader)
		return
	}
	switch proto {
	case 0x0021, 0x0057: // IPv4, IPv6: the version nibble decides
		d.ip(data, ts)
	default:
		d.stats.skip(SkipNotIP)
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
