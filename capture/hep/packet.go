package hep

import "time"

// Generic chunk types: the chunk type IDs with chunk vendor ID 0x0000, named
// as in the "Chunk types" table of the HEP3 Network Protocol Specification.
// The value type of each chunk is given in brackets; integers are big-endian.
const (
	ChunkIPProtocolFamily       uint16 = 0x0001 // [uint8] IP protocol family: 2 = IPv4, 10 = IPv6
	ChunkIPProtocolID           uint16 = 0x0002 // [uint8] IP protocol ID: 6 = TCP, 17 = UDP, 132 = SCTP
	ChunkIPv4SourceAddress      uint16 = 0x0003 // [inet4-addr] IPv4 source address
	ChunkIPv4DestinationAddress uint16 = 0x0004 // [inet4-addr] IPv4 destination address
	ChunkIPv6SourceAddress      uint16 = 0x0005 // [inet6-addr] IPv6 source address
	ChunkIPv6DestinationAddress uint16 = 0x0006 // [inet6-addr] IPv6 destination address
	ChunkSourcePort             uint16 = 0x0007 // [uint16] protocol source port (UDP, TCP, SCTP)
	ChunkDestinationPort        uint16 = 0x0008 // [uint16] protocol destination port
	ChunkTimestamp              uint16 = 0x0009 // [uint32] timestamp, seconds since the Unix epoch
	ChunkTimestampMicro         uint16 = 0x000a // [uint32] timestamp microseconds offset
	ChunkProtocolType           uint16 = 0x000b // [uint8] protocol type (SIP, RTCP, log, ...)
	ChunkCaptureAgentID         uint16 = 0x000c // [uint32] capture agent ID (old agents: uint16)
	ChunkKeepAliveTimer         uint16 = 0x000d // [uint16] keep alive timer, seconds
	ChunkAuthenticateKey        uint16 = 0x000e // [octet-string] authenticate key
	ChunkPayload                uint16 = 0x000f // [octet-string] captured packet payload
	ChunkCompressedPayload      uint16 = 0x0010 // [octet-string] captured compressed payload (zlib/gzip)
	ChunkCorrelationID          uint16 = 0x0011 // [octet-string] internal correlation ID
	ChunkVLANID                 uint16 = 0x0012 // [uint16] VLAN ID
	ChunkNodeName               uint16 = 0x0013 // [octet-string] group ID / node name (heplify, heplify-server)
)

// Protocol types: values of the protocol type chunk (0x000b) from the
// "Protocol types" table of the HEP3 specification. HEPv1/v2 packets always
// carry [ProtocolSIP].
const (
	ProtocolSIP          uint8 = 0x01 // SIP
	ProtocolXMPP         uint8 = 0x02 // XMPP
	ProtocolSDP          uint8 = 0x03 // SDP
	ProtocolRTP          uint8 = 0x04 // RTP
	ProtocolRTCP         uint8 = 0x05 // RTCP (JSON)
	ProtocolMGCP         uint8 = 0x06 // MGCP
	ProtocolMEGACO       uint8 = 0x07 // MEGACO (H.248)
	ProtocolM2UA         uint8 = 0x08 // M2UA (SS7/SIGTRAN)
	ProtocolM3UA         uint8 = 0x09 // M3UA (SS7/SIGTRAN)
	ProtocolIAX          uint8 = 0x0a // IAX
	ProtocolH3222        uint8 = 0x0b // H.322 ("H3222" in the spec table)
	ProtocolH321         uint8 = 0x0c // H.321
	ProtocolM2PA         uint8 = 0x0d // M2PA
	ProtocolMOSFull      uint8 = 0x22 // MOS full report (JSON)
	ProtocolMOSShort     uint8 = 0x23 // MOS short report
	ProtocolSIPJSON      uint8 = 0x32 // SIP (JSON)
	ProtocolDNSJSON      uint8 = 0x35 // DNS (JSON)
	ProtocolM3UAJSON     uint8 = 0x36 // M3UA ISUP (JSON)
	ProtocolRTSP         uint8 = 0x37 // RTSP
	ProtocolDiameterJSON uint8 = 0x38 // Diameter (JSON)
	ProtocolGSMMAPJSON   uint8 = 0x39 // GSM MAP (JSON)
	ProtocolLog          uint8 = 0x64 // log (100)
)

// IP protocol families as carried in chunk 0x0001 and the HEPv1/v2 header
// (the Linux AF_* values).
const (
	FamilyIPv4 uint8 = 2  // AF_INET
	FamilyIPv6 uint8 = 10 // AF_INET6
)

// Compression names the encoding of a payload carried in the compressed
// payload chunk (0x0010).
type Compression uint8

// Payload compressions. The decoder tells them apart by their magic: gzip
// starts with 0x1f 0x8b (RFC 1952 §2.3.1), zlib with a CMF/FLG pair whose
// method is 8 and whose 16-bit value is a multiple of 31 (RFC 1950 §2.2).
const (
	CompressionNone Compression = iota // payload in chunk 0x000f, or HEPv1/v2
	CompressionZlib                    // zlib stream (RFC 1950) in chunk 0x0010
	CompressionGzip                    // gzip stream (RFC 1952) in chunk 0x0010
)

// Packet is one decoded HEP packet.
//
// Byte slices alias the input buffer given to [Decoder.Decode] (zero-copy),
// except Payload when it was decompressed: then it aliases a buffer owned
// by the Decoder, valid until the next Decode call on that Decoder. Fields
// whose chunk is absent are zero. When a chunk occurs more than once the
// last occurrence wins.
type Packet struct {
	// Version is the HEP version: 1, 2 or 3 (for both "HEP3" and "EEP3").
	Version uint8
	// IPFamily is chunk 0x0001 (v1/v2: header byte 2): [FamilyIPv4] or
	// [FamilyIPv6]. It is not cross-checked against the address chunks.
	IPFamily uint8
	// IPProtocol is chunk 0x0002 (v1/v2: header byte 3), an IANA protocol
	// number: 17 UDP, 6 TCP, 132 SCTP. Kamailio sends 22 for TLS/WS.
	IPProtocol uint8
	// SrcIP and DstIP are 4 bytes (chunks 0x0003/0x0004) or 16 bytes
	// (chunks 0x0005/0x0006), in network byte order.
	SrcIP, DstIP []byte
	// SrcPort and DstPort are chunks 0x0007 and 0x0008.
	SrcPort, DstPort uint16
	// TimestampSeconds (chunk 0x0009) is seconds since the Unix epoch and
	// TimestampMicros (chunk 0x000a) the microseconds offset added to it.
	TimestampSeconds, TimestampMicros uint32
	// ProtocolType is chunk 0x000b, one of the Protocol... constants;
	// [ProtocolSIP] for HEPv1/v2.
	ProtocolType uint8
	// CaptureAgentID is chunk 0x000c, 32-bit; the old 16-bit form is
	// accepted. For HEPv2 it is the 16-bit capture ID of the time header.
	CaptureAgentID uint32
	// KeepAliveTimer is chunk 0x000d, in seconds.
	KeepAliveTimer uint16
	// AuthKey is chunk 0x000e, the authenticate key, verbatim.
	AuthKey []byte
	// Payload is the captured packet: chunk 0x000f, or chunk 0x0010 after
	// decompression (see PayloadCompression), or for HEPv1/v2 the rest of
	// the datagram after the header.
	Payload []byte
	// PayloadCompression tells how Payload was carried on the wire. The
	// encoders compress the payload into chunk 0x0010 when it is set.
	PayloadCompression Compression
	// CorrelationID is chunk 0x0011, the internal correlation ID (Kamailio
	// and heplify put the SIP Call-ID or an RTCP session key there).
	CorrelationID []byte
	// VLANID is chunk 0x0012.
	VLANID uint16
	// NodeName is chunk 0x0013, the group ID / node name of the capture
	// agent (heplify -hn, heplify-server's NodeName).
	NodeName []byte
}

// Reset zeroes every field of p. [Decoder.Decode] calls it first, so reuse
// of one Packet across calls needs no explicit Reset.
func (p *Packet) Reset() { *p = Packet{} }

// Time returns the capture time, TimestampSeconds plus TimestampMicros, in
// UTC. It returns the zero time.Time when both are zero.
func (p *Packet) Time() time.Time {
	if p.TimestampSeconds == 0 && p.TimestampMicros == 0 {
		return time.Time{}
	}
	return time.Unix(int64(p.TimestampSeconds), int64(p.TimestampMicros)*1000).UTC()
}
