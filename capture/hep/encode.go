package hep

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
)

// AppendV3 appends p encoded as one HEPv3 packet (magic "HEP3") to dst and
// returns the extended slice. It is the inverse of [Decoder.Decode] for
// HEPv3: Decode(AppendV3(nil, p)) yields p again.
//
// Every set field becomes one generic chunk, in the order Kamailio's siptrace
// uses: 0x0001, 0x0002, the address chunks (0x0003/0x0004 for 4-byte
// addresses, 0x0005/0x0006 for 16-byte ones), 0x0007 to 0x000e, 0x0011 to
// 0x0013, and the payload last. Zero integers, empty byte slices and a nil
// Payload are left out; CaptureAgentID is written in its 32-bit form. The
// payload goes into chunk 0x000f, or is compressed into chunk 0x0010 when
// p.PayloadCompression is [CompressionZlib] or [CompressionGzip] (which
// allocates). p.Version is ignored.
//
// It returns dst unchanged and ErrAddress if SrcIP or DstIP is neither
// empty, 4 nor 16 bytes long, or ErrTooLarge if the packet would exceed the
// 65535 bytes its 16-bit length field can express. Without compression it
// allocates only when dst lacks capacity.
func AppendV3(dst []byte, p *Packet) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 'H', 'E', 'P', '3', 0, 0)
	if p.IPFamily != 0 {
		dst = appendChunk(dst, ChunkIPProtocolFamily, p.IPFamily)
	}
	if p.IPProtocol != 0 {
		dst = appendChunk(dst, ChunkIPProtocolID, p.IPProtocol)
	}
	for i, ip := range [2][]byte{p.SrcIP, p.DstIP} {
		switch len(ip) {
		case 0:
		case 4:
			dst = appendChunk(dst, ChunkIPv4SourceAddress+uint16(i), ip...)
		case 16:
			dst = appendChunk(dst, ChunkIPv6SourceAddress+uint16(i), ip...)
		default:
			return dst[:start], ErrAddress
		}
	}
	if p.SrcPort != 0 {
		dst = appendChunk16(dst, ChunkSourcePort, p.SrcPort)
	}
	if p.DstPort != 0 {
		dst = appendChunk16(dst, ChunkDestinationPort, p.DstPort)
	}
	if p.TimestampSeconds != 0 {
		dst = appendChunk32(dst, ChunkTimestamp, p.TimestampSeconds)
	}
	if p.TimestampMicros != 0 {
		dst = appendChunk32(dst, ChunkTimestampMicro, p.TimestampMicros)
	}
	if p.ProtocolType != 0 {
		dst = appendChunk(dst, ChunkProtocolType, p.ProtocolType)
	}
	if p.CaptureAgentID != 0 {
		dst = appendChunk32(dst, ChunkCaptureAgentID, p.CaptureAgentID)
	}
	if p.KeepAliveTimer != 0 {
		dst = appendChunk16(dst, ChunkKeepAliveTimer, p.KeepAliveTimer)
	}
	if len(p.AuthKey) > 0 {
		dst = appendChunk(dst, ChunkAuthenticateKey, p.AuthKey...)
	}
	if len(p.CorrelationID) > 0 {
		dst = appendChunk(dst, ChunkCorrelationID, p.CorrelationID...)
	}
	if p.VLANID != 0 {
		dst = appendChunk16(dst, ChunkVLANID, p.VLANID)
	}
	if len(p.NodeName) > 0 {
		dst = appendChunk(dst, ChunkNodeName, p.NodeName...)
	}
	if p.Payload != nil {
		switch p.PayloadCompression {
		case CompressionZlib, CompressionGzip:
			dst = appendChunk(dst, ChunkCompressedPayload, compress(p.Payload, p.PayloadCompression)...)
		default:
			dst = appendChunk(dst, ChunkPayload, p.Payload...)
		}
	}
	n := len(dst) - start
	if n > maxV3Len {
		return dst[:start], ErrTooLarge
	}
	binary.BigEndian.PutUint16(dst[start+4:], uint16(n))
	return dst, nil
}

// appendChunk appends one generic chunk. A value longer than a chunk can
// hold gets a wrong length field; AppendV3 rejects the whole packet then.
func appendChunk(dst []byte, typ uint16, v ...byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, typ)
	dst = binary.BigEndian.AppendUint16(dst, uint16(chunkHeaderLen+len(v)))
	return append(dst, v...)
}

func appendChunk16(dst []byte, typ, v uint16) []byte {
	dst = appendChunk(dst, typ)
	binary.BigEndian.PutUint16(dst[len(dst)-2:], chunkHeaderLen+2)
	return binary.BigEndian.AppendUint16(dst, v)
}

func appendChunk32(dst []byte, typ uint16, v uint32) []byte {
	dst = appendChunk(dst, typ)
	binary.BigEndian.PutUint16(dst[len(dst)-2:], chunkHeaderLen+4)
	return binary.BigEndian.AppendUint32(dst, v)
}

// compress returns payload as a zlib or gzip stream. Writing to a
// bytes.Buffer cannot fail.
func compress(payload []byte, c Compression) []byte {
	var buf bytes.Buffer
	if c == CompressionGzip {
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(payload)
		_ = w.Close()
	} else {
		w := zlib.NewWriter(&buf)
		_, _ = w.Write(payload)
		_ = w.Close()
	}
	return buf.Bytes()
}

// AppendV2 appends p encoded as one HEPv1 or HEPv2 datagram to dst, in the
// layout Kamailio's siptrace sends (see [Decoder.Decode]): p.Version 1 gives
// HEPv1, 2 or 0 gives HEPv2. The address family is p.IPFamily, or, when
// zero, inferred from the length of SrcIP. The HEPv2 time header carries
// TimestampSeconds, TimestampMicros and the low 16 bits of CaptureAgentID,
// little-endian. The payload is written as is; PayloadCompression and the
// HEPv3-only fields are ignored, and the decoder reports ProtocolType SIP.
//
// It returns dst unchanged and ErrVersion for another p.Version, or
// ErrAddress if the family is not 2 or 10 or SrcIP and DstIP are not both
// of the family's address length.
func AppendV2(dst []byte, p *Packet) ([]byte, error) {
	version := p.Version
	switch version {
	case 0:
		version = 2
	case 1, 2:
	default:
		return dst, ErrVersion
	}
	family := p.IPFamily
	if family == 0 {
		switch len(p.SrcIP) {
		case 4:
			family = FamilyIPv4
		case 16:
			family = FamilyIPv6
		}
	}
	var alen int
	switch family {
	case FamilyIPv4:
		alen = 4
	case FamilyIPv6:
		alen = 16
	default:
		return dst, ErrAddress
	}
	if len(p.SrcIP) != alen || len(p.DstIP) != alen {
		return dst, ErrAddress
	}
	dst = append(dst, version, byte(v2HeaderLen+2*alen), family, p.IPProtocol)
	dst = binary.BigEndian.AppendUint16(dst, p.SrcPort)
	dst = binary.BigEndian.AppendUint16(dst, p.DstPort)
	dst = append(dst, p.SrcIP...)
	dst = append(dst, p.DstIP...)
	if version == 2 {
		dst = binary.LittleEndian.AppendUint32(dst, p.TimestampSeconds)
		dst = binary.LittleEndian.AppendUint32(dst, p.TimestampMicros)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(p.CaptureAgentID))
		dst = append(dst, 0, 0)
	}
	return append(dst, p.Payload...), nil
}
