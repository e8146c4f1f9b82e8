package hep

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

type decodeTest struct {
	name string
	in   []byte
	cfg  Config
	want Packet // compared when err is nil or ErrNoPayload
	err  error
}

func decodeTests() []decodeTest {
	compressedV3 := func(payload []byte) []byte {
		return hep3("HEP3",
			chunk(0, 0x01, 2), chunk(0, 0x02, 17),
			chunk(0, 0x03, ip4a...), chunk(0, 0x04, ip4b...),
			chunk(0, 0x0b, 1),
			chunk(0, 0x10, payload...),
		)
	}
	compressedPacket := func(c Compression) Packet {
		return Packet{Version: 3, IPFamily: 2, IPProtocol: 17, SrcIP: ip4a, DstIP: ip4b,
			ProtocolType: 1, Payload: sip200OK, PayloadCompression: c}
	}
	minimal := func(chunks ...[]byte) []byte {
		return hep3("HEP3", append(chunks, chunk(0, 0x0f, 'x'))...)
	}
	x := []byte("x")

	return []decodeTest{
		{name: "spec example", in: specExample, want: specExamplePacket},
		{name: "kamailio siptrace ipv4", in: kamailioV3(sip200OK), want: kamailioV3Packet},
		{name: "heplify ipv6 with vlan and node name", in: heplifyV3, want: heplifyV3Packet},
		{name: "EEP3 magic", in: append([]byte("EEP3"), specExample[4:]...), want: specExamplePacket},
		{name: "bytes after total length ignored", in: append(bytes.Clone(specExample), "HEP3 next packet"...), want: specExamplePacket},
		{name: "v2 ipv4", in: v2(2, 2, ip4a, ip4b, 1700000000, 500000, 2001, sip200OK),
			want: v2Packet(2, 2, ip4a, ip4b, 1700000000, 500000, 2001, sip200OK)},
		{name: "v2 ipv6", in: v2(2, 10, ip6a, ip6b, 1700000000, 1, 65535, sip200OK),
			want: v2Packet(2, 10, ip6a, ip6b, 1700000000, 1, 65535, sip200OK)},
		{name: "v1 ipv4", in: v2(1, 2, ip4a, ip4b, 0, 0, 0, sip200OK),
			want: v2Packet(1, 2, ip4a, ip4b, 0, 0, 0, sip200OK)},
		{name: "v1 ipv6", in: v2(1, 10, ip6a, ip6b, 0, 0, 0, x),
			want: v2Packet(1, 10, ip6a, ip6b, 0, 0, 0, x)},
		{name: "compressed zlib", in: compressedV3(zlibBytes(sip200OK)), want: compressedPacket(CompressionZlib)},
		{name: "compressed gzip", in: compressedV3(gzipBytes(sip200OK)), want: compressedPacket(CompressionGzip)},
		{name: "vendor chunks skipped", in: minimal(
			chunk(0x0002, 0x0001, 99), // Kamailio vendor, type 1: not the family
			chunk(0x0003, 0x000f, []byte("opensips private")...),
			chunk(0, 0x01, 2),
			chunk(0xffff, 0x0003, 1, 2, 3), // would be a bad IPv4 address if generic
		), want: Packet{Version: 3, IPFamily: 2, Payload: x}},
		{name: "unknown generic chunks skipped", in: minimal(
			chunk(0, 0x0020, u16(430)...), // MOS value
			chunk(0, 0x0000),
			chunk(0, 0x7fff, []byte("future")...),
		), want: Packet{Version: 3, Payload: x}},
		{name: "16-bit capture agent id", in: minimal(chunk(0, 0x0c, u16(201)...)),
			want: Packet{Version: 3, CaptureAgentID: 201, Payload: x}},
		{name: "keep alive timer and empty payload", in: hep3("HEP3", chunk(0, 0x0d, u16(30)...), chunk(0, 0x0f)),
			want: Packet{Version: 3, KeepAliveTimer: 30, Payload: []byte{}}},
		{name: "duplicate chunks last wins", in: hep3("HEP3",
			chunk(0, 0x07, u16(1)...), chunk(0, 0x07, u16(2)...),
			chunk(0, 0x03, ip4a...), chunk(0, 0x05, ip6a...),
			chunk(0, 0x10, zlibBytes(x)...), chunk(0, 0x0f, []byte("last")...),
		), want: Packet{Version: 3, SrcPort: 2, SrcIP: ip6a, Payload: []byte("last")}},
		{name: "compressed payload after plain one wins", in: hep3("HEP3",
			chunk(0, 0x0f, []byte("first")...), chunk(0, 0x10, gzipBytes(x)...),
		), want: Packet{Version: 3, Payload: x, PayloadCompression: CompressionGzip}},

		// Not HEP, or not this version.
		{name: "empty", in: nil, err: ErrTruncated},
		{name: "magic prefix", in: []byte("HE"), err: ErrTruncated},
		{name: "sip", in: sip200OK, err: ErrMagic},
		{name: "rtp", in: []byte{0x80, 0x00, 0x12, 0x34, 0, 0, 0, 0}, err: ErrMagic},
		{name: "looks like magic", in: []byte("HELLO"), err: ErrMagic},
		{name: "HEP4", in: append([]byte("HEP4"), specExample[4:]...), err: ErrVersion},

		// HEPv3 malformed.
		{name: "truncated header", in: []byte("HEP3\x00"), err: ErrTruncated},
		{name: "total length beyond buffer", in: specExample[:len(specExample)-1], err: ErrTruncated},
		{name: "total length lying big", in: withLength(specExample, 0xffff), err: ErrTruncated},
		{name: "total length below header", in: withLength(specExample, 5), err: ErrLength},
		{name: "total length zero", in: withLength(specExample, 0), err: ErrLength},
		{name: "total length cuts a chunk", in: withLength(specExample, 110), err: ErrLength},
		{name: "total length leaves a fragment", in: withLength(append(bytes.Clone(specExample), 0, 0, 0), 116), err: ErrLength},
		{name: "chunk length below 6", in: hep3("HEP3", []byte{0, 0, 0, 0x0f, 0, 5, 'x'}), err: ErrLength},
		{name: "chunk length zero", in: hep3("HEP3", []byte{0, 0, 0, 0x0f, 0, 0, 'x'}), err: ErrLength},
		{name: "chunk past the end", in: hep3("HEP3", []byte{0, 0, 0, 0x0f, 0, 9, 'x'}), err: ErrLength},
		{name: "vendor chunk past the end", in: hep3("HEP3", []byte{0, 2, 0, 0x0f, 0x10, 0, 'x'}), err: ErrLength},
		{name: "ipv4 chunk of 16 bytes", in: minimal(chunk(0, 0x03, ip6a...)), err: ErrAddress},
		{name: "ipv4 chunk of 3 bytes", in: minimal(chunk(0, 0x04, 1, 2, 3)), err: ErrAddress},
		{name: "ipv6 chunk of 4 bytes", in: minimal(chunk(0, 0x06, ip4a...)), err: ErrAddress},
		{name: "port chunk of 4 bytes", in: minimal(chunk(0, 0x07, u32(5060)...)), err: ErrLength},
		{name: "timestamp chunk of 2 bytes", in: minimal(chunk(0, 0x09, u16(1)...)), err: ErrLength},
		{name: "family chunk empty", in: minimal(chunk(0, 0x01)), err: ErrLength},
		{name: "capture id of 3 bytes", in: minimal(chunk(0, 0x0c, 1, 2, 3)), err: ErrLength},
		{name: "no payload chunk", in: hep3("HEP3", chunk(0, 0x01, 2), chunk(0, 0x0c, u32(7)...), chunk(0, 0x0d, u16(60)...)),
			want: Packet{Version: 3, IPFamily: 2, CaptureAgentID: 7, KeepAliveTimer: 60}, err: ErrNoPayload},
		{name: "header only", in: []byte("HEP3\x00\x06"), want: Packet{Version: 3}, err: ErrNoPayload},
		{name: "compressed garbage", in: compressedV3([]byte("not compressed at all")), err: ErrDecompress},
		{name: "compressed empty", in: compressedV3(nil), err: ErrDecompress},
		{name: "zlib cut short", in: compressedV3(zlibBytes(sip200OK)[:40]), err: ErrDecompress},
		{name: "zlib bad checksum", in: compressedV3(func() []byte {
			b := zlibBytes(sip200OK)
			b[len(b)-1] ^= 0xff
			return b
		}()), err: ErrDecompress},
		{name: "gzip bad header", in: compressedV3([]byte{0x1f, 0x8b, 0x07, 0, 0, 0}), err: ErrDecompress},
		{name: "zip bomb", in: compressedV3(zipBomb), err: ErrTooLarge},
		{name: "payload over configured limit", in: compressedV3(gzipBytes(sip200OK)), cfg: Config{MaxPayload: 100}, err: ErrTooLarge},
		{name: "payload at configured limit", in: compressedV3(gzipBytes(sip200OK)), cfg: Config{MaxPayload: len(sip200OK)},
			want: compressedPacket(CompressionGzip)},

		// HEPv1/v2 malformed.
		{name: "v2 short header", in: []byte{2, 16, 2, 17, 0x13}, err: ErrTruncated},
		{name: "v2 unknown family", in: func() []byte { b := v2(2, 2, ip4a, ip4b, 0, 0, 0, x); b[2] = 7; return b }(), err: ErrAddress},
		{name: "v2 header length wrong", in: func() []byte { b := v2(2, 2, ip4a, ip4b, 0, 0, 0, x); b[1] = 28; return b }(), err: ErrLength},
		{name: "v2 family and length disagree", in: func() []byte { b := v2(2, 2, ip4a, ip4b, 0, 0, 0, x); b[2] = 10; return b }(), err: ErrLength},
		{name: "v2 ipv6 addresses cut", in: v2(2, 10, ip6a, ip6b, 0, 0, 0, nil)[:30], err: ErrTruncated},
		{name: "v2 time header cut", in: v2(2, 2, ip4a, ip4b, 0, 0, 0, nil)[:20], err: ErrTruncated},
		{name: "v2 no payload", in: v2(2, 2, ip4a, ip4b, 1, 2, 3, nil),
			want: v2Packet(2, 2, ip4a, ip4b, 1, 2, 3, nil), err: ErrNoPayload},
		{name: "v1 no payload", in: v2(1, 2, ip4a, ip4b, 0, 0, 0, nil),
			want: v2Packet(1, 2, ip4a, ip4b, 0, 0, 0, nil), err: ErrNoPayload},
	}
}

// diff returns a description of the differences between got and want, or
// "" when they are equal. Byte slices compare by content; nil equals empty.
func diff(got, want *Packet) string {
	var s string
	add := func(name string, g, w any) {
		if g != w {
			s += fmt.Sprintf("\n%s = %v, want %v", name, g, w)
		}
	}
	addb := func(name string, g, w []byte) {
		if !bytes.Equal(g, w) {
			s += fmt.Sprintf("\n%s = %q, want %q", name, g, w)
		}
	}
	add("Version", got.Version, want.Version)
	add("IPFamily", got.IPFamily, want.IPFamily)
	add("IPProtocol", got.IPProtocol, want.IPProtocol)
	addb("SrcIP", got.SrcIP, want.SrcIP)
	addb("DstIP", got.DstIP, want.DstIP)
	add("SrcPort", got.SrcPort, want.SrcPort)
	add("DstPort", got.DstPort, want.DstPort)
	add("TimestampSeconds", got.TimestampSeconds, want.TimestampSeconds)
	add("TimestampMicros", got.TimestampMicros, want.TimestampMicros)
	add("ProtocolType", got.ProtocolType, want.ProtocolType)
	add("CaptureAgentID", got.CaptureAgentID, want.CaptureAgentID)
	add("KeepAliveTimer", got.KeepAliveTimer, want.KeepAliveTimer)
	addb("AuthKey", got.AuthKey, want.AuthKey)
	addb("Payload", got.Payload, want.Payload)
	add("PayloadCompression", got.PayloadCompression, want.PayloadCompression)
	addb("CorrelationID", got.CorrelationID, want.CorrelationID)
	add("VLANID", got.VLANID, want.VLANID)
	addb("NodeName", got.NodeName, want.NodeName)
	return s
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeTests() {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(tt.cfg)
			var p Packet
			p.SrcPort = 9999 // Decode must reset
			err := d.Decode(tt.in, &p)
			if err != tt.err {
				t.Fatalf("Decode() error = %v, want %v", err, tt.err)
			}
			if err == nil || err == ErrNoPayload {
				if s := diff(&p, &tt.want); s != "" {
					t.Errorf("Decode() packet differs:%s", s)
				}
			}
			if err == nil && !IsHEP(tt.in) {
				t.Errorf("IsHEP() = false for a packet Decode accepts")
			}
			// The package-level Decode agrees when the limit is the default.
			if tt.cfg == (Config{}) {
				var q Packet
				if err2 := Decode(tt.in, &q); err2 != err {
					t.Errorf("package Decode() error = %v, want %v", err2, err)
				} else if s := diff(&q, &p); s != "" {
					t.Errorf("package Decode() differs:%s", s)
				}
			}
		})
	}
}

func TestDecodeErrorsAreSentinels(t *testing.T) {
	reasons := map[string]bool{}
	for _, r := range ErrorReasons {
		reasons[r] = true
	}
	for _, tt := range decodeTests() {
		if tt.err == nil {
			continue
		}
		var e *Error
		if !errors.As(tt.err, &e) || !reasons[e.Reason] {
			t.Errorf("%s: %v is not an *Error listed in ErrorReasons", tt.name, tt.err)
		}
	}
	if len(reasons) != len(ErrorReasons) {
		t.Errorf("ErrorReasons has duplicates: %v", ErrorReasons)
	}
	if reasons[ErrIncomplete.Reason] {
		t.Errorf("ErrorReasons lists %q, which Decode never returns", ErrIncomplete.Reason)
	}
}

// TestDecoderReuse decodes compressed and plain packets in turn with one
// Decoder and checks the buffer reuse does not leak between calls.
func TestDecoderReuse(t *testing.T) {
	var d Decoder
	small := hep3("HEP3", chunk(0, 0x10, zlibBytes([]byte("small"))...))
	big := hep3("HEP3", chunk(0, 0x10, gzipBytes(sip200OK)...))
	for i, tc := range []struct {
		in   []byte
		want []byte
		err  error
	}{
		{big, sip200OK, nil},
		{small, []byte("small"), nil},
		{hep3("HEP3", chunk(0, 0x10, zipBomb...)), nil, ErrTooLarge},
		{big, sip200OK, nil},
		{kamailioV3(sip200OK), sip200OK, nil},
		{small, []byte("small"), nil},
		{hep3("HEP3", chunk(0, 0x10, 0x78, 0x9c, 1, 2, 3)), nil, ErrDecompress},
		{big, sip200OK, nil},
	} {
		var p Packet
		if err := d.Decode(tc.in, &p); err != tc.err {
			t.Fatalf("call %d: error = %v, want %v", i, err, tc.err)
		}
		if !bytes.Equal(p.Payload, tc.want) {
			t.Fatalf("call %d: payload = %.40q, want %.40q", i, p.Payload, tc.want)
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"v3 kamailio 200 OK", kamailioV3(sip200OK)},
		{"v3 heplify 200 OK ipv6", heplifyV3},
		{"v2 200 OK", v2(2, 2, ip4a, ip4b, 1700000000, 1, 2001, sip200OK)},
		{"v1", v2(1, 10, ip6a, ip6b, 0, 0, 0, sip200OK)},
		{"malformed", withLength(specExample, 110)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(Config{})
			var p Packet
			allocs := testing.AllocsPerRun(100, func() {
				_ = d.Decode(tc.in, &p)
			})
			if allocs != 0 {
				t.Errorf("Decoder.Decode allocates %v times per call, want 0", allocs)
			}
			allocs = testing.AllocsPerRun(100, func() {
				_ = Decode(tc.in, &p)
				_ = IsHEP(tc.in)
				_, _ = PacketLength(tc.in)
			})
			if allocs != 0 {
				t.Errorf("Decode/IsHEP/PacketLength allocate %v times per call, want 0", allocs)
			}
		})
	}
}

func TestPacketLength(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		n    int
		err  error
	}{
		{"spec example", specExample, 113, nil},
		{"EEP3", append([]byte("EEP3"), specExample[4:]...), 113, nil},
		{"header only", specExample[:6], 113, nil},
		{"followed by next packet", append(bytes.Clone(specExample), specExample...), 113, nil},
		{"max", withLength(specExample, 0xffff), 0xffff, nil},
		{"empty", nil, 0, ErrIncomplete},
		{"one byte", []byte("H"), 0, ErrIncomplete},
		{"five bytes", specExample[:5], 0, ErrIncomplete},
		{"not magic short", []byte("IN"), 0, ErrMagic},
		{"sip", sip200OK, 0, ErrMagic},
		{"v2", v2(2, 2, ip4a, ip4b, 0, 0, 0, sip200OK), 0, ErrMagic},
		{"HEP2", []byte("HEP2\x00\x10"), 0, ErrVersion},
		{"length 5", withLength(specExample, 5), 0, ErrLength},
		{"length 6", withLength(specExample, 6), 6, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := PacketLength(tt.in)
			if n != tt.n || err != tt.err {
				t.Errorf("PacketLength() = %d, %v, want %d, %v", n, err, tt.n, tt.err)
			}
		})
	}
}

func TestIsHEP(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"spec example", specExample, true},
		{"EEP3", append([]byte("EEP3"), specExample[4:]...), true},
		{"heplify", heplifyV3, true},
		{"v2 ipv4", v2(2, 2, ip4a, ip4b, 0, 0, 0, sip200OK), true},
		{"v2 ipv6", v2(2, 10, ip6a, ip6b, 0, 0, 0, sip200OK), true},
		{"v1 ipv4 header only", v2(1, 2, ip4a, ip4b, 0, 0, 0, nil), true},
		{"truncated v3 still looks like HEP", specExample[:20], true},
		{"v3 header too short", specExample[:5], false},
		{"v3 length below header", withLength(specExample, 3), false},
		{"HEP2", []byte("HEP2\x00\x10"), false},
		{"v2 cut in addresses", v2(2, 10, ip6a, ip6b, 0, 0, 0, nil)[:30], false},
		{"v2 cut in time header", v2(2, 2, ip4a, ip4b, 0, 0, 0, nil)[:20], false},
		{"v2 bad header length", []byte{2, 20, 2, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"sip", sip200OK, false},
		{"rtp", []byte{0x80, 0x08, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"stun", []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}, false},
		{"empty", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsHEP(tt.in); got != tt.want {
				t.Errorf("IsHEP() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPacketTime(t *testing.T) {
	if got, want := specExamplePacket.Time(), time.Date(2011, 8, 15, 20, 34, 19, 120000000, time.UTC); !got.Equal(want) {
		t.Errorf("Time() = %v, want %v", got, want)
	}
	if got := (&Packet{}).Time(); !got.IsZero() {
		t.Errorf("Time() of zero packet = %v, want zero", got)
	}
}
