package decode

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/defrag"
	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// Handler receives every SIP message the decoder finds, with where it came
// from. o, m and the bytes they point to are valid only during the call:
// copy what must outlive it. A handler runs on the source's goroutine and
// must not block.
type Handler func(o *Origin, m *sip.Message)

// Config tunes a [Decoder]. The zero value is not valid: start from
// [DefaultConfig].
type Config struct {
	TCP       stream.Config // TCP stream reassembly; its HEP field is set from HEP.Decapsulate
	HEP       HEPConfig
	Fragments defrag.Config
}

// DefaultConfig returns the defaults the exporter's flags also use: HEP
// found inside captures is decapsulated, IP fragments are reassembled.
func DefaultConfig() Config {
	return Config{TCP: stream.DefaultConfig(), HEP: HEPConfig{Decapsulate: true, MaxPayloadBytes: 1 << 20},
		Fragments: defrag.DefaultConfig()}
}

// Split returns the configuration of each of n decoders (n ≥ 1) that
// share the limits of c, as the capture workers of one interface do: the
// TCP flows tracked (TCP.MaxFlows), the TCP memory budget
// (TCP.MaxMemoryBytes) and the IP datagrams reassembled at once
// (Fragments.MaxDatagrams) are divided by n, rounded down, so that the n
// decoders together hold what one decoder of c would. Each share is kept
// at the least valid value (1 flow, 1 datagram, 4 × TCP.MaxBufferBytes of
// memory), so n small shares may add up to more; MaxDatagrams 0
// (reassembly disabled) stays 0. Per-flow and per-datagram bounds and the
// timeouts are those of c.
func (c Config) Split(n int) Config {
	if n <= 1 {
		return c
	}
	c.TCP.MaxFlows = max(c.TCP.MaxFlows/n, 1)
	c.TCP.MaxMemoryBytes = max(c.TCP.MaxMemoryBytes/int64(n), 4*int64(c.TCP.MaxBufferBytes))
	if c.Fragments.MaxDatagrams > 0 {
		c.Fragments.MaxDatagrams = max(c.Fragments.MaxDatagrams/n, 1)
	}
	return c
}

// Decoder turns captured link-layer frames into SIP messages: it decodes the
// link layer, IPv4/IPv6, UDP and TCP (with per-flow stream reassembly), finds
// SIP by content on any port, scans each message with [sip.Parse] and hands
// it to a [Handler].
//
// A Decoder belongs to one packet source and is not safe for concurrent use;
// its [Stats] may be read concurrently. Packet does not allocate for UDP and
// for in-order TCP segments of a known flow.
type Decoder struct {
	stats   *Stats
	handler Handler
	msg     sip.Message
	origin  Origin
	tcp     *stream.Table
	frag    *defrag.Table

	decapsulate bool
	authKey     []byte
	hep         *hep.Decoder
	hepPacket   hep.Packet
	agentID     [10]byte // capture agent ID in decimal
	depth       int      // encapsulations entered in the current packet
	zone        uint64   // address space of the current packet: see inZone
	cut         int      // bytes of the IP payload the capture cut off (snap length)
}

// New returns a decoder that counts into stats and calls h for each SIP
// message. It returns an error when cfg is out of range.
func New(cfg Config, stats *Stats, h Handler) (*Decoder, error) {
	d := &Decoder{stats: stats, handler: h, decapsulate: cfg.HEP.Decapsulate, authKey: cfg.HEP.AuthKey}
	tcfg := cfg.TCP
	tcfg.HEP = cfg.HEP.Decapsulate
	var err error
	if d.tcp, err = stream.New(tcfg, &stats.Stream, (*streamSink)(d)); err != nil {
		return nil, err
	}
	if d.frag, err = defrag.New(cfg.Fragments, &stats.Fragments); err != nil {
		return nil, err
	}
	if cfg.HEP.MaxPayloadBytes < 1 {
		return nil, fmt.Errorf("hep max payload %d bytes: must be positive", cfg.HEP.MaxPayloadBytes)
	}
	d.hep = hep.NewDecoder(hep.Config{MaxPayload: cfg.HEP.MaxPayloadBytes})
	return d, nil
}

// Reset forgets all TCP and IP reassembly state, as when a capture file is
// read again from its start; IP datagrams still missing fragments are
// counted as dropped (reason incomplete).
func (d *Decoder) Reset() {
	d.tcp.Reset()
	d.frag.Reset()
}

// Packet decodes one captured frame of link type lt, captured at ts
// (nanoseconds since the Unix epoch; used for TCP flow and IP fragment
// timeouts), whose
// length on the wire was wireLen bytes. Problems are counted in the
// decoder's [Stats]; Packet never fails.
//
// Tunnels and mirror encapsulations are decoded in any order up to
// MaxEncapDepth: GRE, ERSPAN I/II/III, VXLAN, Geneve, IP-in-IP, MPLS, with
// Ethernet inside them. IP fragments are held until their datagram is
// complete (see [defrag.Config]), then decoded at ts of the fragment that
// completed it; SCTP DATA and I-DATA chunks are decoded one by one.
// Fragments are the one path that may allocate (a datagram's buffer, until
// buffers are reused).
//
// Link types: Ethernet, Linux cooked SLL and SLL2 (by their protocol
// field, as Ethernet by its type), each with stacked 802.1Q/802.1ad tags,
// MPLS label stacks and PPPoE sessions; raw IPv4/IPv6 (LINKTYPE_RAW,
// LINKTYPE_IPV4, LINKTYPE_IPV6) and BSD null/loopback. The link layer is
// walked as [FlowHash] walks it.
func (d *Decoder) Packet(lt layers.LinkType, data []byte, ts int64, wireLen int) {
	d.stats.Packets.Add(1)
	d.stats.Bytes.Add(uint64(wireLen))
	d.depth, d.zone = 0, 0
	d.origin.Time = ts
	d.frag.Expire(ts)
	var l link
	p, end := l.frame(lt, data)
	d.walked(&l, p, end, ts)
}

// FilePacket is [Decoder.Packet] for the packet numbered n (from 1) in a
// capture file that several decoders read between them (see [FlowHash]):
// the messages it carries or completes get [Origin.Seq] n, by which the
// merge keeps the file's order among messages of equal capture time.
func (d *Decoder) FilePacket(n uint64, lt layers.LinkType, data []byte, ts int64, wireLen int) {
	d.origin.Seq = n
	d.Packet(lt, data, ts, wireLen)
}

// SetPass sets the pass of a capture file read again and again, from 0,
// which the messages of its later packets carry ([Origin.Pass]).
func (d *Decoder) SetPass(pass uint32) { d.origin.Pass = pass }

// IP protocol numbers decoded here.
const (
	protoIPIP = 4
	protoTCP  = 6
	protoUDP  = 17
	protoIPv6 = 41
	protoGRE  = 47
	protoSCTP = 132
)

// maxIPv6ExtHeaders bounds the IPv6 extension header chain walked.
const maxIPv6ExtHeaders = 8

// ip decodes an IPv4 or IPv6 packet (RFC 791, RFC 8200) down to its UDP,
// TCP or SCTP payload. The payload is cut to the length the IP header
// gives, which drops Ethernet padding; a packet cut short by the capture's
// snap length keeps what was captured. Fragments are reassembled (see
// [defrag.Config]) and the datagram decoded once complete.
func (d *Decoder) ip(data []byte, ts int64) {
	if len(data) < 1 {
		d.stats.parseError(ErrIPHeader)
		return
	}
	key := stream.Key{Zone: d.zone}
	switch data[0] >> 4 {
	case 4:
		if len(data) < 20 {
			d.stats.parseError(ErrIPHeader)
			return
		}
		ihl := int(data[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(data[2:]))
		if total == 0 {
			// Captured before segmentation offload (TSO/GSO) on the
			// sending host: the kernel leaves the total length 0 and
			// the packet is as long as what was captured (tcpdump and
			// Wireshark treat it so too).
			total = len(data)
		}
		if ihl < 20 || total < ihl || len(data) < ihl {
			d.stats.parseError(ErrIPHeader)
			return
		}
		proto := data[9]
		d.origin.IPID = binary.BigEndian.Uint16(data[4:])
		key.Src[10], key.Src[11] = 0xff, 0xff
		key.Dst[10], key.Dst[11] = 0xff, 0xff
		copy(key.Src[12:], data[12:16])
		copy(key.Dst[12:], data[16:20])
		if frag := binary.BigEndian.Uint16(data[6:]); frag&0x3fff != 0 { // MF or offset
			if !d.frag.Enabled() {
				d.stats.skip(SkipIPFragment)
				return
			}
			fk := defrag.Key{Src: key.Src, Dst: key.Dst, ID: uint32(binary.BigEndian.Uint16(data[4:])), Proto: proto, Family: defrag.IPv4, Zone: key.Zone}
			truncated := len(data) < total
			data = data[ihl:min(total, len(data))]
			d.fragment(&fk, int(frag&0x1fff)*8, frag&0x2000 != 0, truncated, proto, data, ts)
			return
		}
		if total < len(data) {
			data = data[:total]
		}
		d.cut = total - len(data)
		d.transport(proto, &key, data[ihl:], ts)
	case 6:
		if len(data) < 40 {
			d.stats.parseError(ErrIPHeader)
			return
		}
		plen := int(binary.BigEndian.Uint16(data[4:]))
		proto := data[6]
		d.origin.IPID = 0
		copy(key.Src[:], data[8:24])
		copy(key.Dst[:], data[24:40])
		data = data[40:]
		truncated := plen > len(data)
		if plen != 0 && plen < len(data) { // 0: jumbogram (RFC 2675), keep all
			data = data[:plen]
		}
		d.cut = 0
		if truncated {
			d.cut = plen - len(data)
		}
		d.ipv6(&key, proto, data, truncated, false, ts)
	default:
		d.stats.parseError(ErrIPHeader)
	}
}

// ipv6 walks the IPv6 extension headers from next header proto at data
// and decodes what follows them. A fragment header hands the packet to
// reassembly, unless it comes in a reassembled payload (reassembled set):
// fragments are not nested. truncated tells that the capture cut the
// packet short.
func (d *Decoder) ipv6(key *stream.Key, proto uint8, data []byte, truncated, reassembled bool, ts int64) {
	for i := 0; ; i++ {
		// The bound applies to extension headers only: a chain of
		// exactly maxIPv6ExtHeaders followed by UDP or TCP is fine.
		if i == maxIPv6ExtHeaders && (proto == 0 || proto == 43 || proto == 60 || proto == 51 || proto == 44) {
			d.stats.parseError(ErrIPHeader)
			return
		}
		switch proto {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(data) < 8 {
				d.stats.parseError(ErrIPHeader)
				return
			}
			n := (int(data[1]) + 1) * 8
			if len(data) < n {
				d.stats.parseError(ErrIPHeader)
				return
			}
			proto, data = data[0], data[n:]
			continue
		case 51: // authentication header (RFC 4302): length in 4-byte units, minus 2
			if len(data) < 8 {
				d.stats.parseError(ErrIPHeader)
				return
			}
			n := (int(data[1]) + 2) * 4
			if len(data) < n {
				d.stats.parseError(ErrIPHeader)
				return
			}
			proto, data = data[0], data[n:]
			continue
		case 44: // fragment (RFC 8200 §4.5)
			if len(data) < 8 || reassembled {
				d.stats.parseError(ErrIPHeader)
				return
			}
			off := binary.BigEndian.Uint16(data[2:])
			if off&0xfff9 == 0 { // atomic fragment (RFC 6946): offset 0, M clear
				proto, data = data[0], data[8:]
				continue
			}
			if !d.frag.Enabled() {
				d.stats.skip(SkipIPFragment)
				return
			}
			fk := defrag.Key{Src: key.Src, Dst: key.Dst, ID: binary.BigEndian.Uint32(data[4:]), Family: defrag.IPv6, Zone: key.Zone}
			d.fragment(&fk, int(off&^7), off&1 != 0, truncated, data[0], data[8:], ts)
			return
		}
		break
	}
	d.transport(proto, key, data, ts)
}

// fragment hands one IP fragment to reassembly (see [defrag.Table.Add])
// and decodes its datagram once complete.
func (d *Decoder) fragment(k *defrag.Key, off int, more, truncated bool, proto uint8, p []byte, ts int64) {
	g, err := d.frag.Add(k, off, more, truncated, proto, p, ts)
	if err != nil {
		d.stats.parseError(ErrIPHeader) // RFC 8200 §4.5; RFC 791 §3.2
		return
	}
	if g != nil {
		d.reassembled(g)
		d.frag.Release(g)
	}
}

// reassembled decodes a datagram reassembled from fragments, from what
// follows its IP header (IPv4) or fragment header (IPv6).
func (d *Decoder) reassembled(g *defrag.Datagram) {
	gk := g.Key()
	key := stream.Key{Src: gk.Src, Dst: gk.Dst, Zone: gk.Zone}
	d.zone, d.cut = gk.Zone, 0
	if gk.Family == defrag.IPv6 {
		d.ipv6(&key, g.Proto(), g.Payload(), false, true, d.origin.Time)
		return
	}
	d.transport(g.Proto(), &key, g.Payload(), d.origin.Time)
}

// transport decodes the IP payload data of protocol proto between the
// addresses of key.
func (d *Decoder) transport(proto uint8, key *stream.Key, data []byte, ts int64) {
	switch proto {
	case protoUDP:
		if len(data) < 8 {
			d.stats.parseError(ErrUDPHeader)
			return
		}
		if n := int(binary.BigEndian.Uint16(data[4:])); n >= 8 && n < len(data) {
			data = data[:n]
		}
		sport, dport := binary.BigEndian.Uint16(data[0:]), binary.BigEndian.Uint16(data[2:])
		zone := d.zone
		d.udpTunnelZone(sport, dport, data[8:])
		if d.udpTunnel(sport, dport, data[8:], ts) {
			return
		}
		d.zone = zone
		d.setAddrs(key, sport, dport)
		d.Datagram(data[8:])
	case protoTCP:
		if len(data) < 20 {
			d.stats.parseError(ErrTCPHeader)
			return
		}
		off := int(data[12]>>4) * 4
		if off < 20 || len(data) < off {
			d.stats.parseError(ErrTCPHeader)
			return
		}
		key.SrcPort = binary.BigEndian.Uint16(data[0:])
		key.DstPort = binary.BigEndian.Uint16(data[2:])
		seq := binary.BigEndian.Uint32(data[4:])
		d.setAddrs(key, key.SrcPort, key.DstPort)
		d.tcp.Segment(key, seq, data[13], data[off:], d.cut, ts)
	case protoIPIP, protoIPv6:
		if d.enter(EncapIPinIP) {
			d.ip(data, ts)
		}
	case protoGRE:
		d.greZone(data)
		d.gre(data, ts)
	case protoSCTP:
		d.sctp(key, data)
	default:
		d.stats.skip(SkipIPProtocol)
	}
}

// Datagram handles the payload of one UDP datagram or SCTP user message:
// one SIP message per datagram (RFC 3261 §18.1.1, RFC 4168 §5),
// recognised by content, or one HEP packet
// (decapsulated when the config says so, always for the HEP listener's
// decoders). CR and LF bytes before the start line are dropped, as on a
// stream (RFC 3261 §7.5); a payload of nothing else is a keep-alive
// (SkipKeepalive), and so is an empty payload (a NAT keep-alive some user
// agents send); one that does not start a SIP message after them is
// SkipNotSIP.
func (d *Decoder) Datagram(p []byte) {
	if len(p) == 0 {
		d.stats.skip(SkipKeepalive)
		return
	}
	if d.decapsulate && hep.IsHEP(p) {
		d.HEP(p)
		return
	}
	d.sipMessage(p)
}

// sipMessage hands on p, a whole datagram or WebSocket message, as one SIP
// message (without the CR and LF bytes before its start line, which some
// user agents glue to it as a keep-alive), or counts it as a keep-alive
// or not SIP.
func (d *Decoder) sipMessage(p []byte) {
	// Scanned first: the start line is read once (sip.Started), not by
	// IsStart and then by Parse.
	if err := sip.Parse(p, &d.msg); sip.Started(p, &d.msg) {
		d.origin.Payload = p
		d.deliver(&d.msg, err)
		return
	}
	p = trimCRLF(p)
	switch {
	case len(p) == 0:
		d.stats.skip(SkipKeepalive)
	case !sip.IsStart(p):
		d.stats.skip(SkipNotSIP)
	default:
		d.message(p)
	}
}

// setAddrs sets the origin's addresses from a flow key (IPv4 as mapped
// IPv6) and ports. (The IPv4 identification is set by ip.)
func (d *Decoder) setAddrs(k *stream.Key, sport, dport uint16) {
	d.origin.Src = netip.AddrPortFrom(netip.AddrFrom16(k.Src).Unmap(), sport)
	d.origin.Dst = netip.AddrPortFrom(netip.AddrFrom16(k.Dst).Unmap(), dport)
}

// message scans one SIP message and hands it on.
func (d *Decoder) message(p []byte) {
	d.origin.Payload = p
	d.deliver(&d.msg, sip.Parse(p, &d.msg))
}

// deliver counts the message m, which sip.Parse returned err for, and
// hands it on. A start-line error drops the message; a header error is
// counted and the message still counted.
func (d *Decoder) deliver(m *sip.Message, err error) {
	if err != nil {
		if err == sip.ErrNotSIP {
			d.stats.skip(SkipNotSIP)
			return
		}
		d.stats.parseError(sipParseError(err))
		fatal := err == sip.ErrStatusLine || err == sip.ErrStatusCode || err == sip.ErrRequestLine
		if fatal || (!m.Response && len(m.Method) == 0) {
			return
		}
	}
	if m.Response {
		d.stats.Responses.Add(1)
	} else {
		d.stats.Requests.Add(1)
	}
	d.handler(&d.origin, m)
}

// isCRLF reports whether p holds only CR and LF bytes (a keep-alive).
func isCRLF(p []byte) bool {
	for _, c := range p {
		if c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
