package hep

import (
	"testing"
	"unsafe"
)

// within reports whether s is empty or lies entirely inside one of bufs.
func within(s []byte, bufs ...[]byte) bool {
	if len(s) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	hi := lo + uintptr(len(s))
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		blo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		if lo >= blo && hi <= blo+uintptr(len(b)) {
			return true
		}
	}
	return false
}

func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests() {
		f.Add(tt.in)
	}
	for _, tt := range roundTripV3Packets() {
		if b, err := AppendV3(nil, &tt.p); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}

	var d Decoder // reused across inputs, as a listener would
	d.cfg.MaxPayload = 1 << 14
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		err := d.Decode(b, &p)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Decode() error %v is not an *Error", err)
			}
		}

		if err == nil || err == ErrNoPayload {
			dbuf := d.buf[:cap(d.buf)]
			for name, s := range map[string][]byte{
				"SrcIP": p.SrcIP, "DstIP": p.DstIP, "AuthKey": p.AuthKey,
				"CorrelationID": p.CorrelationID, "NodeName": p.NodeName,
			} {
				if !within(s, b) {
					t.Fatalf("%s does not alias the input", name)
				}
			}
			if !within(p.Payload, b, dbuf) {
				t.Fatalf("Payload aliases neither the input nor the decoder buffer")
			}
			if p.PayloadCompression != CompressionNone && len(p.Payload) > 1<<14 {
				t.Fatalf("decompressed payload of %d bytes exceeds the limit", len(p.Payload))
			}
			if n := len(p.SrcIP); n != 0 && n != 4 && n != 16 {
				t.Fatalf("SrcIP has %d bytes", n)
			}
		}
		if err == nil && !IsHEP(b) {
			t.Fatalf("IsHEP() = false for a packet Decode accepts")
		}

		// PacketLength agrees with Decode on HEPv3 framing.
		n, perr := PacketLength(b)
		switch {
		case perr == nil:
			if n < 6 || n > 0xffff {
				t.Fatalf("PacketLength() = %d", n)
			}
			if n > len(b) {
				if err != ErrTruncated {
					t.Fatalf("PacketLength() = %d > len %d but Decode() error = %v", n, len(b), err)
				}
				break
			}
			var q Packet
			var d2 Decoder
			d2.cfg = d.cfg
			if err2 := d2.Decode(b[:n], &q); err2 != err {
				t.Fatalf("Decode(b[:PacketLength]) error = %v, Decode(b) error = %v", err2, err)
			} else if err2 == nil {
				if s := diff(&q, &p); s != "" {
					t.Fatalf("Decode(b[:PacketLength]) differs:%s", s)
				}
			}
		case perr == ErrIncomplete:
			if len(b) >= 6 || err != ErrTruncated {
				t.Fatalf("PacketLength() = ErrIncomplete, len %d, Decode() error = %v", len(b), err)
			}
		case perr == ErrMagic:
			if len(b) >= 4 && (b[0] == 'H' || b[0] == 'E') && err != ErrMagic {
				t.Fatalf("PacketLength() = ErrMagic but Decode() error = %v", err)
			}
		case perr == ErrVersion, perr == ErrLength:
			if err != perr {
				t.Fatalf("PacketLength() error = %v but Decode() error = %v", perr, err)
			}
		default:
			t.Fatalf("PacketLength() error = %v", perr)
		}

		// What decodes re-encodes to the same packet.
		if err != nil {
			return
		}
		var enc []byte
		var eerr error
		if p.Version == 3 {
			enc, eerr = AppendV3(nil, &p)
			if eerr == ErrTooLarge && p.PayloadCompression != CompressionNone {
				return // recompression may grow past 64 KiB
			}
		} else {
			enc, eerr = AppendV2(nil, &p)
		}
		if eerr != nil {
			t.Fatalf("re-encoding a decoded v%d packet: %v", p.Version, eerr)
		}
		var r Packet
		var d3 Decoder
		d3.cfg = d.cfg
		if err := d3.Decode(enc, &r); err != nil {
			t.Fatalf("Decode(re-encoded) error = %v", err)
		}
		if s := diff(&r, &p); s != "" {
			t.Fatalf("Decode(re-encoded) differs:%s", s)
		}
	})
}
