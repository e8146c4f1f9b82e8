package hep

import "testing"

func benchmarkDecode(b *testing.B, in []byte) {
	d := NewDecoder(Config{})
	var p Packet
	if err := d.Decode(in, &p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := d.Decode(in, &p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeV3 decodes a HEPv3 packet as Kamailio sends it, carrying a
// 200 OK with SDP.
func BenchmarkDecodeV3(b *testing.B) { benchmarkDecode(b, kamailioV3(sip200OK)) }

// BenchmarkDecodeV2 decodes a HEPv2 IPv4 datagram carrying the same 200 OK.
func BenchmarkDecodeV2(b *testing.B) {
	benchmarkDecode(b, v2(2, 2, ip4a, ip4b, 1700000000, 1, 2001, sip200OK))
}

// BenchmarkDecodeCompressed decodes a HEPv3 packet whose 200 OK is
// zlib-compressed in chunk 0x0010, reusing the Decoder's buffers.
func BenchmarkDecodeCompressed(b *testing.B) {
	p := kamailioV3Packet
	p.PayloadCompression = CompressionZlib
	in, err := AppendV3(nil, &p)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkDecode(b, in)
}

// BenchmarkDecodeCompressedGzip is BenchmarkDecodeCompressed with gzip.
func BenchmarkDecodeCompressedGzip(b *testing.B) {
	p := kamailioV3Packet
	p.PayloadCompression = CompressionGzip
	in, err := AppendV3(nil, &p)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkDecode(b, in)
}

func BenchmarkIsHEP(b *testing.B) {
	in := kamailioV3(sip200OK)
	b.ReportAllocs()
	for b.Loop() {
		if !IsHEP(in) {
			b.Fatal("not HEP")
		}
	}
}

func BenchmarkAppendV3(b *testing.B) {
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(kamailioV3(sip200OK))))
	for b.Loop() {
		buf, _ = AppendV3(buf[:0], &kamailioV3Packet)
	}
}
