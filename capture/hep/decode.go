package hep

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"io"
)

// Sizes of the fixed parts of the formats, in bytes.
const (
	v3HeaderLen    = 6  // "HEP3" + 16-bit total length
	chunkHeaderLen = 6  // vendor ID, type ID, length: 16 bits each
	v2HeaderLen    = 8  // version, length, family, protocol, ports
	v2TimeLen      = 12 // struct hep_timehdr: sec, usec, captid + 2 padding
	maxV3Len       = 0xffff
)

// DefaultMaxPayload is the decompressed-payload limit, in bytes, of a
// Decoder whose [Config].MaxPayload is zero: 64 KiB, the largest payload a
// HEPv3 packet can carry uncompressed.
const DefaultMaxPayload = 64 << 10

// Config configures a [Decoder].
type Config struct {
	// MaxPayload bounds, in bytes, the size of a payload after
	// decompression (chunk 0x0010); a larger one fails with [ErrTooLarge]
	// without being inflated further, which defuses zip bombs. Zero means
	// [DefaultMaxPayload]. It does not apply to uncompressed payloads,
	// which alias the input.
	MaxPayload int
}

// Decoder decodes HEP packets. It owns the buffer and the zlib and gzip
// readers used for compressed payloads and reuses them between calls. It is
// not safe for concurrent use; use one Decoder per goroutine. The zero value
// is ready to use with the default limits.
type Decoder struct {
	cfg Config
	buf []byte       // decompressed payload, reused
	src bytes.Reader // compressed chunk value, reused
	lim io.LimitedReader
	zr  io.ReadCloser // zlib reader, implements zlib.Resetter
	gr  *gzip.Reader
}

// NewDecoder returns a Decoder configured by cfg.
func NewDecoder(cfg Config) *Decoder { return &Decoder{cfg: cfg} }

// Decode decodes the one HEP packet at the start of b into p, after
// resetting p.
//
// HEPv3 ("HEP3" or "EEP3") is decoded as the HEP3 specification describes:
// a 6-byte header whose 16-bit total length delimits the packet (bytes of b
// after it are ignored), then chunks of vendor ID, type ID and length (each
// 16 bits, big-endian; the length includes the 6-byte chunk header). Chunks
// with a non-zero vendor ID and generic chunks of unknown type are skipped
// by their length. When a chunk occurs twice the last one wins.
//
// HEPv1 and HEPv2 (first byte 1 or 2) are decoded as Kamailio's siptrace and
// sipcapture modules write and read them: an 8-byte header (version, header
// length, family, protocol, big-endian source and destination ports), the
// source and destination addresses (4 or 16 bytes each), for HEPv2 a 12-byte
// time header (seconds, microseconds, 16-bit capture ID, 2 bytes padding,
// little-endian as sent by x86 agents), and the payload up to the end of b.
//
// Byte slices in p alias b, except a decompressed Payload, which aliases
// the Decoder's buffer until the next call. The errors are the sentinels of
// this package: ErrMagic, ErrVersion, ErrTruncated, ErrLength, ErrAddress,
// ErrNoPayload (p is filled in), ErrDecompress and ErrTooLarge. Decode does
// not allocate unless the payload is compressed.
func (d *Decoder) Decode(b []byte, p *Packet) error { return decode(d, b, p) }

// Decode decodes one HEP packet like [Decoder.Decode]. It allocates a
// temporary Decoder for compressed payloads only, so the Payload of a
// compressed packet stays valid; a loop that decodes compressed packets
// should reuse a Decoder instead.
func Decode(b []byte, p *Packet) error { return decode(nil, b, p) }

func decode(d *Decoder, b []byte, p *Packet) error {
	p.Reset()
	if len(b) == 0 {
		return ErrTruncated
	}
	switch b[0] {
	case 1, 2:
		return decodeV2(b, p)
	case 'H', 'E':
		return decodeV3(d, b, p)
	}
	return ErrMagic
}

// magic checks b (at least 4 bytes) for "HEP3"/"EEP3". It returns nil,
// ErrVersion for "HEP"/"EEP" with another version, or ErrMagic.
func magic(b []byte) error {
	if (b[0] == 'H' || b[0] == 'E') && b[1] == 'E' && b[2] == 'P' {
		if b[3] == '3' {
			return nil
		}
		return ErrVersion
	}
	return ErrMagic
}

// prefixOfMagic reports whether b (shorter than 4 bytes) could still become
// "HEP3" or "EEP3".
func prefixOfMagic(b []byte) bool {
	return bytes.HasPrefix([]byte("HEP3"), b) || bytes.HasPrefix([]byte("EEP3"), b)
}

func decodeV3(d *Decoder, b []byte, p *Packet) error {
	if len(b) < 4 {
		if prefixOfMagic(b) {
			return ErrTruncated
		}
		return ErrMagic
	}
	if err := magic(b); err != nil {
		return err
	}
	if len(b) < v3HeaderLen {
		return ErrTruncated
	}
	total := int(binary.BigEndian.Uint16(b[4:6]))
	if total < v3HeaderLen {
		return ErrLength
	}
	if total > len(b) {
		return ErrTruncated
	}
	b = b[:total]
	p.Version = 3

	var (
		havePayload bool
		compressed  []byte // value of the last chunk 0x0010, if it won
	)
	for off := v3HeaderLen; off < total; {
		if total-off < chunkHeaderLen {
			return ErrLength
		}
		vendor := binary.BigEndian.Uint16(b[off:])
		typ := binary.BigEndian.Uint16(b[off+2:])
		clen := int(binary.BigEndian.Uint16(b[off+4:]))
		if clen < chunkHeaderLen || clen > total-off {
			return ErrLength
		}
		v := b[off+chunkHeaderLen : off+clen : off+clen]
		off += clen
		if vendor != 0 {
			continue
		}
		switch typ {
		case ChunkIPProtocolFamily:
			if len(v) != 1 {
				return ErrLength
			}
			p.IPFamily = v[0]
		case ChunkIPProtocolID:
			if len(v) != 1 {
				return ErrLength
			}
			p.IPProtocol = v[0]
		case ChunkIPv4SourceAddress, ChunkIPv4DestinationAddress:
			if len(v) != 4 {
				return ErrAddress
			}
			if typ == ChunkIPv4SourceAddress {
				p.SrcIP = v
			} else {
				p.DstIP = v
			}
		case ChunkIPv6SourceAddress, ChunkIPv6DestinationAddress:
			if len(v) != 16 {
				return ErrAddress
			}
			if typ == ChunkIPv6SourceAddress {
				p.SrcIP = v
			} else {
				p.DstIP = v
			}
		case ChunkSourcePort, ChunkDestinationPort, ChunkKeepAliveTimer, ChunkVLANID:
			if len(v) != 2 {
				return ErrLength
			}
			u := binary.BigEndian.Uint16(v)
			switch typ {
			case ChunkSourcePort:
				p.SrcPort = u
			case ChunkDestinationPort:
				p.DstPort = u
			case ChunkKeepAliveTimer:
				p.KeepAliveTimer = u
			default:
				p.VLANID = u
			}
		case ChunkTimestamp, ChunkTimestampMicro:
			if len(v) != 4 {
				return ErrLength
			}
			if typ == ChunkTimestamp {
				p.TimestampSeconds = binary.BigEndian.Uint32(v)
			} else {
				p.TimestampMicros = binary.BigEndian.Uint32(v)
			}
		case ChunkProtocolType:
			if len(v) != 1 {
				return ErrLength
			}
			p.ProtocolType = v[0]
		case ChunkCaptureAgentID:
			switch len(v) {
			case 4:
				p.CaptureAgentID = binary.BigEndian.Uint32(v)
			case 2:
				p.CaptureAgentID = uint32(binary.BigEndian.Uint16(v))
			default:
				return ErrLength
			}
		case ChunkAuthenticateKey:
			p.AuthKey = v
		case ChunkPayload:
			p.Payload, p.PayloadCompression, compressed = v, CompressionNone, nil
			havePayload = true
		case ChunkCompressedPayload:
			p.Payload, compressed = nil, v
			havePayload = true
		case ChunkCorrelationID:
			p.CorrelationID = v
		case ChunkNodeName:
			p.NodeName = v
		}
	}
	if !havePayload {
		return ErrNoPayload
	}
	if compressed != nil {
		if d == nil {
			d = new(Decoder)
		}
		return d.inflate(compressed, p)
	}
	return nil
}

// inflate decompresses v into d.buf and points p.Payload at it.
func (d *Decoder) inflate(v []byte, p *Packet) error {
	d.src.Reset(v)
	var r io.Reader
	switch {
	case len(v) >= 2 && v[0] == 0x1f && v[1] == 0x8b:
		var err error
		if d.gr == nil {
			d.gr, err = gzip.NewReader(&d.src)
		} else {
			err = d.gr.Reset(&d.src)
		}
		if err != nil {
			return ErrDecompress
		}
		r = d.gr
		p.PayloadCompression = CompressionGzip
	case len(v) >= 2 && v[0]&0x0f == 8 && (uint16(v[0])<<8|uint16(v[1]))%31 == 0:
		var err error
		if d.zr == nil {
			d.zr, err = zlib.NewReader(&d.src)
		} else {
			err = d.zr.(zlib.Resetter).Reset(&d.src, nil)
		}
		if err != nil {
			return ErrDecompress
		}
		r = d.zr
		p.PayloadCompression = CompressionZlib
	default:
		return ErrDecompress
	}

	limit := d.cfg.MaxPayload
	if limit <= 0 {
		limit = DefaultMaxPayload
	}
	d.lim = io.LimitedReader{R: r, N: int64(limit) + 1}
	buf := d.buf[:0]
	for {
		if len(buf) == cap(buf) {
			n := 2 * cap(buf)
			if n < 4096 {
				n = 4096
			}
			if n > limit+1 {
				n = limit + 1
			}
			buf = append(buf, make([]byte, n-len(buf))...)[:len(buf)]
		}
		n, err := d.lim.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			d.buf = buf[:0]
			return ErrTooLarge
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			d.buf = buf[:0]
			return ErrDecompress
		}
	}
	d.buf = buf
	p.Payload = buf
	return nil
}

func decodeV2(b []byte, p *Packet) error {
	if len(b) < v2HeaderLen {
		return ErrTruncated
	}
	var alen int
	switch b[2] {
	case FamilyIPv4:
		alen = 4
	case FamilyIPv6:
		alen = 16
	default:
		return ErrAddress
	}
	hl := v2HeaderLen + 2*alen
	if int(b[1]) != hl {
		return ErrLength
	}
	need := hl
	if b[0] == 2 {
		need += v2TimeLen
	}
	if len(b) < need {
		return ErrTruncated
	}
	p.Version = b[0]
	p.IPFamily = b[2]
	p.IPProtocol = b[3]
	p.SrcPort = binary.BigEndian.Uint16(b[4:])
	p.DstPort = binary.BigEndian.Uint16(b[6:])
	p.SrcIP = b[v2HeaderLen : v2HeaderLen+alen : v2HeaderLen+alen]
	p.DstIP = b[v2HeaderLen+alen : hl : hl]
	p.ProtocolType = ProtocolSIP
	if b[0] == 2 {
		t := b[hl:need]
		p.TimestampSeconds = binary.LittleEndian.Uint32(t[0:])
		p.TimestampMicros = binary.LittleEndian.Uint32(t[4:])
		p.CaptureAgentID = uint32(binary.LittleEndian.Uint16(t[8:]))
	}
	if len(b) == need {
		return ErrNoPayload
	}
	p.Payload = b[need:]
	return nil
}

// PacketLength returns the total length in bytes of the HEPv3 packet at the
// start of b, read from its header, for framing HEP over TCP (HEP3
// specification, "Header": the length covers the header and all chunks).
// It returns ErrIncomplete if b holds fewer than 6 bytes but could still be
// the start of a HEPv3 header, ErrMagic or ErrVersion if b does not start
// with "HEP3"/"EEP3", and ErrLength if the length is smaller than the 6-byte
// header (such a stream cannot be resynchronised). It does not allocate.
func PacketLength(b []byte) (int, error) {
	if len(b) < 4 {
		if prefixOfMagic(b) {
			return 0, ErrIncomplete
		}
		return 0, ErrMagic
	}
	if err := magic(b); err != nil {
		return 0, err
	}
	if len(b) < v3HeaderLen {
		return 0, ErrIncomplete
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if n < v3HeaderLen {
		return 0, ErrLength
	}
	return n, nil
}

// IsHEP cheaply reports whether b starts like a HEP packet, so that HEP
// carried inside captured UDP or TCP payloads can be told apart from SIP,
// RTP and the rest: either the HEPv3 magic "HEP3"/"EEP3" followed by a total
// length of at least 6, or a HEPv1/v2 header (version 1 or 2, family 2 with
// header length 16 or family 10 with header length 40) with room for its
// addresses and, for v2, its time header. It does not validate chunks and
// does not allocate.
func IsHEP(b []byte) bool {
	if len(b) < v3HeaderLen {
		return false
	}
	switch b[0] {
	case 'H', 'E':
		return magic(b) == nil && binary.BigEndian.Uint16(b[4:6]) >= v3HeaderLen
	case 1, 2:
		var hl int
		switch {
		case b[2] == FamilyIPv4 && b[1] == v2HeaderLen+8:
			hl = v2HeaderLen + 8
		case b[2] == FamilyIPv6 && b[1] == v2HeaderLen+32:
			hl = v2HeaderLen + 32
		default:
			return false
		}
		if b[0] == 2 {
			hl += v2TimeLen
		}
		return len(b) >= hl
	}
	return false
}
