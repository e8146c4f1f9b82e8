package decode_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// TestOrigin checks what the handler learns about a message besides its
// fields: capture time, addresses of the innermost IP header, IPv4
// identification and the message bytes, for UDP, TCP and HEP.
func TestOrigin(t *testing.T) {
	type seen struct {
		time     int64
		src, dst netip.AddrPort
		ipID     uint16
		payload  string
		node     string
	}
	v4 := udpPacket(t, bob4, alice4, []byte(ok.text))
	binary.BigEndian.PutUint16(v4[4:], 0x1234) // identification
	hepBytes, err := hep.AppendV3(nil, &hep.Packet{
		IPFamily: hep.FamilyIPv4, IPProtocol: 17, ProtocolType: hep.ProtocolSIP,
		SrcIP: []byte{198, 51, 100, 1}, DstIP: []byte{198, 51, 100, 2}, SrcPort: 5080, DstPort: 5090,
		TimestampSeconds: 1_700_000_000, TimestampMicros: 250, CaptureAgentID: 7, NodeName: []byte("sbc1"),
		Payload: []byte(ok.text),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		ts    int64
		want  seen
	}{
		{"udp ipv4", ether(t, v4), 42, seen{42, bob4, alice4, 0x1234, ok.text, ""}},
		{"udp ipv6", ether(t, udpPacket(t, bob6, alice6, []byte(ok.text))), 43, seen{43, bob6, alice6, 0, ok.text, ""}},
		{"hep in udp", ether(t, udpPacket(t, bob4, netip.MustParseAddrPort("192.0.2.99:9060"), hepBytes)), 44,
			seen{1_700_000_000_000_250_000, netip.MustParseAddrPort("198.51.100.1:5080"), netip.MustParseAddrPort("198.51.100.2:5090"), 0, ok.text, "sbc1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []seen
			d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, _ *sip.Message) {
				got = append(got, seen{o.Time, o.Src, o.Dst, o.IPID, string(o.Payload), string(o.Node)})
			})
			if err != nil {
				t.Fatal(err)
			}
			d.Packet(layers.LinkTypeEthernet, tc.frame, tc.ts, len(tc.frame))
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("origin %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("tcp message over two segments", func(t *testing.T) {
		var got []seen
		d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, _ *sip.Message) {
			got = append(got, seen{o.Time, o.Src, o.Dst, o.IPID, string(o.Payload), string(o.Node)})
		})
		if err != nil {
			t.Fatal(err)
		}
		text := ok.text + ok.text
		half := len(ok.text) / 2
		for i, part := range []struct {
			seq  uint32
			data string
		}{{1, text[:half]}, {1 + uint32(half), text[half:]}} {
			f := ether(t, tcpPacket(t, alice6, bob6, part.seq, fACK, []byte(part.data)))
			d.Packet(layers.LinkTypeEthernet, f, int64(100+i), len(f))
		}
		want := seen{101, alice6, bob6, 0, ok.text, ""}
		if len(got) != 2 || got[0] != want || got[1] != want {
			t.Errorf("origins %+v, want twice %+v", got, want)
		}
	})
}

// TestOriginReceived: the time of receipt a batch reader gives
// (SetReceived) reaches the handler with each message, and is the capture
// time of a HEP packet without timestamp chunks; without it such a packet
// is stamped with the wall clock.
func TestOriginReceived(t *testing.T) {
	pkt := func(sec, usec uint32) []byte {
		b, err := hep.AppendV3(nil, &hep.Packet{
			IPFamily: hep.FamilyIPv4, IPProtocol: 17, ProtocolType: hep.ProtocolSIP,
			SrcIP: []byte{198, 51, 100, 1}, DstIP: []byte{198, 51, 100, 2}, SrcPort: 5080, DstPort: 5090,
			TimestampSeconds: sec, TimestampMicros: usec, CaptureAgentID: 7, Payload: []byte(ok.text),
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var times, received []int64
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, _ *sip.Message) {
		times, received = append(times, o.Time), append(received, o.Received)
	})
	if err != nil {
		t.Fatal(err)
	}
	const at = 1_700_000_123_000_000_000
	d.SetReceived(at)
	d.HEP(pkt(1_700_000_000, 250))
	d.HEP(pkt(0, 0))
	d.SetReceived(0)
	before := time.Now().UnixNano()
	d.HEP(pkt(0, 0))
	if len(times) != 3 {
		t.Fatalf("%d messages, want 3", len(times))
	}
	if times[0] != 1_700_000_000_000_250_000 || received[0] != at {
		t.Errorf("stamped packet: time %d, received %d; want 1700000000000250000, %d", times[0], received[0], int64(at))
	}
	if times[1] != at || received[1] != at {
		t.Errorf("unstamped packet: time %d, received %d; want both %d", times[1], received[1], int64(at))
	}
	if times[2] < before || received[2] != 0 {
		t.Errorf("unstamped packet, no time of receipt: time %d (want the wall clock, at least %d), received %d (want 0)", times[2], before, received[2])
	}
}
