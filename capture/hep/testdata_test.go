package hep

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"strings"
)

// This file builds test packets byte by byte, independently of encode.go,
// so that the decoder is not only checked against its own encoder.

// specExample is the example packet of the HEP3 Network Protocol
// Specification (github.com/sipcapture/HEP, docs/HEP3 Network Protocol
// Specification, section "Example"), byte for byte, with the spec's
// annotations. The transcription was checked against the copy in
// sipcapture/hep-erlang's hep_v3_tests.
var specExample = []byte{
	0x48, 0x45, 0x50, 0x33, // HEP3 ID
	0x00, 0x71, // total length = 113 octets
	0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x02, // protocol family = 2 (IPv4)
	0x00, 0x00, 0x00, 0x02, 0x00, 0x07, 0x11, // protocol ID = 17 (UDP)
	0x00, 0x00, 0x00, 0x03, 0x00, 0x0a, 0xd4, 0xca, 0x00, 0x01, // IPv4 source address = 212.202.0.1
	0x00, 0x00, 0x00, 0x04, 0x00, 0x0a, 0x52, 0x74, 0x00, 0xd3, // IPv4 destination address = 82.116.0.211
	0x00, 0x00, 0x00, 0x07, 0x00, 0x08, 0x2e, 0xea, // source port = 12010
	0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x13, 0xc4, // destination port = 5060
	0x00, 0x00, 0x00, 0x09, 0x00, 0x0a, 0x4e, 0x49, 0x82, 0xcb, // seconds timestamp 1313440459 = Mon Aug 15 22:34:19 2011
	0x00, 0x00, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x01, 0xd4, 0xc0, // micro-seconds timestamp offset 120000 = 0.12 seconds
	0x00, 0x00, 0x00, 0x0b, 0x00, 0x07, 0x01, // 01 - SIP
	0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x00, 0x00, 0xe4, // capture ID (228)
	0x00, 0x00, 0x00, 0x0f, 0x00, 0x14, // payload chunk, 14 octets
	0x49, 0x4e, 0x56, 0x49, 0x54, 0x45, 0x20, 0x73, 0x69, 0x70, 0x3a, 0x62, 0x6f, 0x62, // SIP payload "INVITE sip:bob" (shortened)
}

var specExamplePacket = Packet{
	Version: 3, IPFamily: FamilyIPv4, IPProtocol: 17,
	SrcIP: []byte{212, 202, 0, 1}, DstIP: []byte{82, 116, 0, 211},
	SrcPort: 12010, DstPort: 5060,
	TimestampSeconds: 1313440459, TimestampMicros: 120000,
	ProtocolType: ProtocolSIP, CaptureAgentID: 228,
	Payload: []byte("INVITE sip:bob"),
}

// sip200OK is a 200 OK to an INVITE with SDP, about 700 bytes.
var sip200OK = []byte(strings.ReplaceAll(`SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK776asdhds;received=10.0.0.10;rport=5060
Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds8;received=192.0.2.4
From: "Alice" <sip:alice@example.com>;tag=1928301774
To: <sip:bob@example.com>;tag=a6c85cf
Call-ID: a84b4c76e66710@pc33.example.com
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4:5060;transport=udp>
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE
Supported: replaces, timer
Content-Type: application/sdp
Content-Length: 183

v=0
o=bob 2890844527 2890844527 IN IP4 192.0.2.4
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49172 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
`, "\n", "\r\n"))

const callID = "a84b4c76e66710@pc33.example.com"

// chunk returns one HEPv3 chunk.
func chunk(vendor, typ uint16, v ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, vendor)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(6+len(v)))
	return append(b, v...)
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// hep3 returns a HEPv3 packet with the given magic and chunks and a correct
// total length.
func hep3(magic string, chunks ...[]byte) []byte {
	b := append([]byte(magic), 0, 0)
	for _, c := range chunks {
		b = append(b, c...)
	}
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	return b
}

// withLength returns a copy of b with the HEPv3 total length set to n.
func withLength(b []byte, n uint16) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint16(b[4:], n)
	return b
}

var (
	ip4a = []byte{10, 0, 0, 1}
	ip4b = []byte{10, 0, 0, 10}
	ip6a = []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	ip6b = []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}
)

// kamailioV3 is laid out as Kamailio's siptrace (trace_send_hep3_duplicate)
// sends a traced message with hep_version=3: family, protocol, addresses,
// ports, timestamps, protocol type, capture ID, correlation ID, auth key,
// payload.
func kamailioV3(payload []byte) []byte {
	return hep3("HEP3",
		chunk(0, 0x01, 2),
		chunk(0, 0x02, 17),
		chunk(0, 0x03, ip4a...),
		chunk(0, 0x04, ip4b...),
		chunk(0, 0x07, u16(5060)...),
		chunk(0, 0x08, u16(5080)...),
		chunk(0, 0x09, u32(1700000000)...),
		chunk(0, 0x0a, u32(123456)...),
		chunk(0, 0x0b, 1),
		chunk(0, 0x0c, u32(2001)...),
		chunk(0, 0x11, []byte(callID)...),
		chunk(0, 0x0e, []byte("myHep")...),
		chunk(0, 0x0f, payload...),
	)
}

var kamailioV3Packet = Packet{
	Version: 3, IPFamily: 2, IPProtocol: 17, SrcIP: ip4a, DstIP: ip4b,
	SrcPort: 5060, DstPort: 5080, TimestampSeconds: 1700000000, TimestampMicros: 123456,
	ProtocolType: 1, CaptureAgentID: 2001, CorrelationID: []byte(callID),
	AuthKey: []byte("myHep"), Payload: sip200OK,
}

// heplifyV3 is laid out as heplify (publish/marshal.go) sends over IPv6:
// ..., capture ID, an auth key chunk that is empty when no password is set,
// payload, correlation ID, VLAN and node name (0x0013) after it.
var heplifyV3 = hep3("HEP3",
	chunk(0, 0x01, 10),
	chunk(0, 0x02, 6),
	chunk(0, 0x05, ip6a...),
	chunk(0, 0x06, ip6b...),
	chunk(0, 0x07, u16(35000)...),
	chunk(0, 0x08, u16(5060)...),
	chunk(0, 0x09, u32(1700000001)...),
	chunk(0, 0x0a, u32(999999)...),
	chunk(0, 0x0b, 1),
	chunk(0, 0x0c, u32(0xdeadbeef)...),
	chunk(0, 0x0e),
	chunk(0, 0x0f, sip200OK...),
	chunk(0, 0x11, []byte(callID)...),
	chunk(0, 0x12, u16(42)...),
	chunk(0, 0x13, []byte("edge-1")...),
)

var heplifyV3Packet = Packet{
	Version: 3, IPFamily: 10, IPProtocol: 6, SrcIP: ip6a, DstIP: ip6b,
	SrcPort: 35000, DstPort: 5060, TimestampSeconds: 1700000001, TimestampMicros: 999999,
	ProtocolType: 1, CaptureAgentID: 0xdeadbeef, Payload: sip200OK,
	CorrelationID: []byte(callID), VLANID: 42, NodeName: []byte("edge-1"),
}

// v2 returns a HEPv1/v2 datagram as Kamailio's trace_send_hep2_duplicate
// writes it on a little-endian host: struct hep_hdr (ports in network byte
// order), the addresses, for v2 struct hep_timehdr (host byte order, 2
// bytes of padding), then the payload.
func v2(version, family byte, src, dst []byte, sec, usec uint32, captid uint16, payload []byte) []byte {
	b := []byte{version, byte(8 + len(src) + len(dst)), family, 17}
	b = binary.BigEndian.AppendUint16(b, 5060)
	b = binary.BigEndian.AppendUint16(b, 5061)
	b = append(b, src...)
	b = append(b, dst...)
	if version == 2 {
		b = binary.LittleEndian.AppendUint32(b, sec)
		b = binary.LittleEndian.AppendUint32(b, usec)
		b = binary.LittleEndian.AppendUint16(b, captid)
		b = append(b, 0xaa, 0xbb) // padding: whatever the stack held
	}
	return append(b, payload...)
}

func v2Packet(version, family byte, src, dst []byte, sec, usec uint32, captid uint16, payload []byte) Packet {
	p := Packet{Version: version, IPFamily: family, IPProtocol: 17, SrcIP: src, DstIP: dst,
		SrcPort: 5060, DstPort: 5061, ProtocolType: ProtocolSIP, Payload: payload}
	if version == 2 {
		p.TimestampSeconds, p.TimestampMicros, p.CaptureAgentID = sec, usec, uint32(captid)
	}
	return p
}

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// zipBomb is 1 MiB of zeros, zlib-compressed to about 1 KiB.
var zipBomb = zlibBytes(make([]byte, 1<<20))
