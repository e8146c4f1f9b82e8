package decode

import (
	"crypto/subtle"
	"net/netip"
	"strconv"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// HEPConfig says how HEP packets are handled, whether received by the HEP
// listener of package input or found inside captured UDP/TCP payloads.
type HEPConfig struct {
	Decapsulate     bool   // look for HEP inside captured UDP and TCP payloads
	AuthKey         []byte // when set, packets whose auth key chunk differs are dropped (listener only)
	MaxPayloadBytes int    // largest decompressed payload (compressed payload chunk 0x0010)
}

// Origin says where and when a SIP message was seen.
type Origin struct {
	// Node identifies the HEP sender: its node name chunk, else its capture
	// agent ID in decimal. Nil for a message captured directly.
	Node []byte
	// Time is when the message was captured, in nanoseconds since the Unix
	// epoch: the packet's capture timestamp (of the segment that completed
	// it, for TCP), or the HEP timestamp chunks (0x0009, 0x000a), or the
	// time of receipt when a HEP packet has none.
	Time int64
	// Received is when the packet's source read it, in nanoseconds since
	// the Unix epoch, as the source last said ([Decoder.SetReceived]: once
	// per batch it reads); 0 when the source does not say.
	Received int64
	// Src and Dst are the transport addresses of the innermost IP header
	// (of the HEP address and port chunks, for HEP). They are the zero
	// AddrPort when unknown (a HEP packet without address chunks).
	Src, Dst netip.AddrPort
	// IPID is the identification field of the innermost IPv4 header (of
	// the segment that completed the message, for TCP); 0 for IPv6 and
	// HEP. Two captured copies of one packet share it; a message sent
	// twice usually does not.
	IPID uint16
	// Payload is the SIP message's bytes: the UDP datagram or SCTP user
	// message, the framed message (header and Content-Length body) of a
	// stream, or the unmasked WebSocket message.
	Payload []byte
	// Seq is the number, from 1, of the packet that carried (or completed)
	// the message in its capture file when the file is read by several
	// decoders ([Decoder.FilePacket]); 0 otherwise. Of messages with equal
	// Time, the one of the lower Seq came first in the file.
	Seq uint64
	// Pass is the pass of a capture file read again and again (0 the
	// first; [Decoder.SetPass]): a message of another pass is other
	// traffic, though its bytes are the same.
	Pass uint32
}

// HEP decodes one HEP packet (HEPv3, or HEPv1/v2) and hands its SIP
// payload on, as if the SIP message had been captured directly, with the
// sender in the [Origin]. It returns false when the packet is bad (a decode
// error or a wrong auth key; counted in Stats), which closes a TCP
// connection; a well-formed packet of another protocol type (RTCP, logs,
// ...) is counted by type and returns true.
func (d *Decoder) HEP(b []byte) bool {
	st := d.stats
	st.HEPPackets.Add(1)
	st.HEPBytes.Add(uint64(len(b)))
	p := &d.hepPacket
	if err := d.hep.Decode(b, p); err != nil {
		st.hepError(err)
		return false
	}
	if d.authKey != nil && subtle.ConstantTimeCompare(p.AuthKey, d.authKey) != 1 {
		st.HEPAuthFailures.Add(1)
		return false
	}
	if p.ProtocolType != hep.ProtocolSIP {
		st.hepTypes[p.ProtocolType].Add(1)
		return true
	}
	node := p.NodeName
	if len(node) == 0 {
		node = strconv.AppendUint(d.agentID[:0], uint64(p.CaptureAgentID), 10)
	}
	payload := trimCRLF(p.Payload)
	err := sip.Parse(payload, &d.msg)
	if !sip.Started(payload, &d.msg) {
		if len(payload) == 0 || isCRLF(payload) {
			st.skip(SkipKeepalive)
		} else {
			st.skip(SkipNotSIP)
		}
		return true
	}
	o := &d.origin
	saved := *o
	o.Node = node
	if p.TimestampSeconds != 0 || p.TimestampMicros != 0 {
		o.Time = int64(p.TimestampSeconds)*1e9 + int64(p.TimestampMicros)*1e3
	} else if o.Time == 0 {
		o.Time = o.Received
		if o.Time == 0 {
			o.Time = time.Now().UnixNano()
		}
	}
	o.Src = addrPort(p.SrcIP, p.SrcPort)
	o.Dst = addrPort(p.DstIP, p.DstPort)
	o.IPID = 0
	o.Payload = payload
	d.deliver(&d.msg, err)
	*o = saved
	return true
}

// SetReceived says that the packets decoded from now on were read at t
// (ns since the Unix epoch; 0 for unknown): their messages' Origin.Received,
// and the time of a HEP packet without timestamp chunks. A source that
// reads in batches calls it once per batch, so that no message costs a
// reading of the wall clock.
func (d *Decoder) SetReceived(t int64) { d.origin.Received = t }

// addrPort makes an AddrPort of a 4- or 16-byte address chunk; the zero
// AddrPort for any other length.
func addrPort(ip []byte, port uint16) netip.AddrPort {
	switch len(ip) {
	case 4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip)), port)
	case 16:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip)).Unmap(), port)
	}
	return netip.AddrPort{}
}

// hepError counts a HEP decode error under its reason.
// HEPError counts a HEP packet that could not be framed or decoded, under
// the reason of err (an error of package hep, else "other"), for sources
// that frame HEP themselves (the HEP listener's TCP connections).
func (d *Decoder) HEPError(err error) { d.stats.hepError(err) }

func (s *Stats) hepError(err error) {
	reason := "other"
	if e, ok := err.(*hep.Error); ok {
		reason = e.Reason
	}
	for i, r := range hepErrorReasons {
		if r == reason {
			s.hepErrors[i].Add(1)
			return
		}
	}
	s.hepErrors[len(hepErrorReasons)-1].Add(1)
}

// hepErrorReasons are the HEP decoder's reasons plus "other".
var hepErrorReasons = append(append([]string(nil), hep.ErrorReasons...), "other")

// maxHEPErrorReasons bounds hepErrorReasons for the counter array.
const maxHEPErrorReasons = 16

// HEPErrors calls fn for every HEP decode error reason with its count,
// zeros included.
func (s *Stats) HEPErrors(fn func(reason string, n uint64)) {
	for i, r := range hepErrorReasons {
		fn(r, s.hepErrors[i].Load())
	}
}

// HEPTypes calls fn for every HEP protocol type other than SIP seen at
// least once, with its count of packets ignored.
func (s *Stats) HEPTypes(fn func(protocolType uint8, n uint64)) {
	for i := range s.hepTypes {
		if n := s.hepTypes[i].Load(); n > 0 {
			fn(uint8(i), n)
		}
	}
}
