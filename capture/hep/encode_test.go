package hep

import (
	"bytes"
	"testing"
)

func roundTripV3Packets() []struct {
	name string
	p    Packet
} {
	return []struct {
		name string
		p    Packet
	}{
		{"spec example", specExamplePacket},
		{"kamailio", kamailioV3Packet},
		{"heplify", heplifyV3Packet},
		{"every field", Packet{Version: 3, IPFamily: 10, IPProtocol: 132, SrcIP: ip6a, DstIP: ip6b,
			SrcPort: 1, DstPort: 65535, TimestampSeconds: 1, TimestampMicros: 999999,
			ProtocolType: ProtocolLog, CaptureAgentID: 0xffffffff, KeepAliveTimer: 60,
			AuthKey: []byte("secret"), Payload: []byte("log line"), CorrelationID: []byte("cid"),
			VLANID: 4094, NodeName: []byte("node")}},
		{"zlib", Packet{Version: 3, ProtocolType: 1, Payload: sip200OK, PayloadCompression: CompressionZlib}},
		{"gzip", Packet{Version: 3, ProtocolType: 1, Payload: sip200OK, PayloadCompression: CompressionGzip}},
		{"empty payload", Packet{Version: 3, Payload: []byte{}}},
		{"largest payload", Packet{Version: 3, Payload: bytes.Repeat([]byte("a"), 0xffff-12)}},
	}
}

func TestAppendV3RoundTrip(t *testing.T) {
	for _, tt := range roundTripV3Packets() {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			b, err := AppendV3(prefix, &tt.p)
			if err != nil {
				t.Fatalf("AppendV3() error = %v", err)
			}
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("AppendV3() clobbered dst")
			}
			var got Packet
			if err := NewDecoder(Config{}).Decode(b[len(prefix):], &got); err != nil {
				t.Fatalf("Decode(AppendV3()) error = %v", err)
			}
			if s := diff(&got, &tt.p); s != "" {
				t.Errorf("Decode(AppendV3()) differs:%s", s)
			}
		})
	}
}

// TestAppendV3SpecExample checks that the encoder writes the chunks in the
// order of the specification's example and so reproduces it exactly.
func TestAppendV3SpecExample(t *testing.T) {
	b, err := AppendV3(nil, &specExamplePacket)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, specExample) {
		t.Errorf("AppendV3(spec example) =\n% x\nwant\n% x", b, specExample)
	}
}

func TestAppendV3Errors(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Packet
		err  error
	}{
		{"bad source address", Packet{SrcIP: []byte{1, 2, 3}, Payload: []byte("x")}, ErrAddress},
		{"bad destination address", Packet{DstIP: make([]byte, 15), Payload: []byte("x")}, ErrAddress},
		{"too large", Packet{Payload: make([]byte, 0xffff-11)}, ErrTooLarge},
		{"too large in sum", Packet{Payload: make([]byte, 40000), AuthKey: make([]byte, 40000)}, ErrTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			b, err := AppendV3(dst, &tt.p)
			if err != tt.err {
				t.Fatalf("AppendV3() error = %v, want %v", err, tt.err)
			}
			if string(b) != "keep" {
				t.Errorf("AppendV3() = %q on error, want dst unchanged", b)
			}
		})
	}
}

func TestAppendV3Allocs(t *testing.T) {
	buf := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = AppendV3(buf[:0], &kamailioV3Packet)
	})
	if allocs != 0 {
		t.Errorf("AppendV3 allocates %v times per call, want 0", allocs)
	}
}

func TestAppendV2RoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Packet
		want []byte // exact encoding, if non-nil
	}{
		{"v2 ipv4", v2Packet(2, 2, ip4a, ip4b, 1700000000, 500000, 2001, sip200OK), nil},
		{"v2 ipv6", v2Packet(2, 10, ip6a, ip6b, 1, 2, 3, sip200OK), nil},
		{"v1 ipv4", v2Packet(1, 2, ip4a, ip4b, 0, 0, 0, sip200OK), v2(1, 2, ip4a, ip4b, 0, 0, 0, sip200OK)},
		{"v1 ipv6", v2Packet(1, 10, ip6a, ip6b, 0, 0, 0, []byte("x")), v2(1, 10, ip6a, ip6b, 0, 0, 0, []byte("x"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendV2(nil, &tt.p)
			if err != nil {
				t.Fatalf("AppendV2() error = %v", err)
			}
			if tt.want != nil && !bytes.Equal(b, tt.want) {
				t.Errorf("AppendV2() =\n% x\nwant\n% x", b, tt.want)
			}
			var got Packet
			if err := Decode(b, &got); err != nil {
				t.Fatalf("Decode(AppendV2()) error = %v", err)
			}
			if s := diff(&got, &tt.p); s != "" {
				t.Errorf("Decode(AppendV2()) differs:%s", s)
			}
		})
	}
}

func TestAppendV2Defaults(t *testing.T) {
	// Version 0 means 2; the family is inferred from the address length.
	p := Packet{SrcIP: ip6a, DstIP: ip6b, IPProtocol: 6, SrcPort: 5061, DstPort: 5061,
		TimestampSeconds: 7, CaptureAgentID: 0x12345, Payload: []byte("x")}
	b, err := AppendV2(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	var got Packet
	if err := Decode(b, &got); err != nil {
		t.Fatal(err)
	}
	want := Packet{Version: 2, IPFamily: FamilyIPv6, IPProtocol: 6, SrcIP: ip6a, DstIP: ip6b,
		SrcPort: 5061, DstPort: 5061, TimestampSeconds: 7, CaptureAgentID: 0x2345,
		ProtocolType: ProtocolSIP, Payload: []byte("x")}
	if s := diff(&got, &want); s != "" {
		t.Errorf("Decode(AppendV2()) differs:%s", s)
	}
}

func TestAppendV2Errors(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Packet
		err  error
	}{
		{"version 3", Packet{Version: 3, SrcIP: ip4a, DstIP: ip4b}, ErrVersion},
		{"no addresses", Packet{Version: 2}, ErrAddress},
		{"family mismatch", Packet{IPFamily: FamilyIPv4, SrcIP: ip6a, DstIP: ip6b}, ErrAddress},
		{"address lengths differ", Packet{SrcIP: ip4a, DstIP: ip6b}, ErrAddress},
		{"unknown family", Packet{IPFamily: 7, SrcIP: ip4a, DstIP: ip4b}, ErrAddress},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendV2([]byte("keep"), &tt.p)
			if err != tt.err || string(b) != "keep" {
				t.Errorf("AppendV2() = %q, %v, want \"keep\", %v", b, err, tt.err)
			}
		})
	}
}
