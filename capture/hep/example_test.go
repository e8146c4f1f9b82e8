package hep_test

import (
	"fmt"
	"net/netip"

	"github.com/sip-exporter/sip_exporter/capture/hep"
)

// The example packet of the HEP3 specification.
var example = []byte{
	'H', 'E', 'P', '3', 0x00, 0x71,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x02,
	0x00, 0x00, 0x00, 0x02, 0x00, 0x07, 0x11,
	0x00, 0x00, 0x00, 0x03, 0x00, 0x0a, 0xd4, 0xca, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x04, 0x00, 0x0a, 0x52, 0x74, 0x00, 0xd3,
	0x00, 0x00, 0x00, 0x07, 0x00, 0x08, 0x2e, 0xea,
	0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x13, 0xc4,
	0x00, 0x00, 0x00, 0x09, 0x00, 0x0a, 0x4e, 0x49, 0x82, 0xcb,
	0x00, 0x00, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x01, 0xd4, 0xc0,
	0x00, 0x00, 0x00, 0x0b, 0x00, 0x07, 0x01,
	0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x00, 0x00, 0xe4,
	0x00, 0x00, 0x00, 0x0f, 0x00, 0x14,
	'I', 'N', 'V', 'I', 'T', 'E', ' ', 's', 'i', 'p', ':', 'b', 'o', 'b',
}

func ExampleDecoder_Decode() {
	d := hep.NewDecoder(hep.Config{})
	var p hep.Packet
	if err := d.Decode(example, &p); err != nil {
		fmt.Println(err)
		return
	}
	src, _ := netip.AddrFromSlice(p.SrcIP)
	dst, _ := netip.AddrFromSlice(p.DstIP)
	fmt.Printf("HEPv%d proto %d %s:%d -> %s:%d\n", p.Version, p.IPProtocol, src, p.SrcPort, dst, p.DstPort)
	fmt.Println("time:", p.Time().Format("2006-01-02 15:04:05.000000"))
	fmt.Println("sip:", p.ProtocolType == hep.ProtocolSIP, "agent:", p.CaptureAgentID)
	fmt.Printf("payload: %q\n", p.Payload)

	// Malformed packets return a sentinel whose Reason is a metric label.
	err := d.Decode(example[:50], &p)
	fmt.Println(err, "reason:", err.(*hep.Error).Reason)
	// Output:
	// HEPv3 proto 17 212.202.0.1:12010 -> 82.116.0.211:5060
	// time: 2011-08-15 20:34:19.120000
	// sip: true agent: 228
	// payload: "INVITE sip:bob"
	// hep: truncated packet reason: truncated
}

// Framing HEPv3 packets on a TCP stream.
func ExamplePacketLength() {
	stream := append(append([]byte{}, example...), example[:40]...)
	for {
		n, err := hep.PacketLength(stream)
		if err == hep.ErrIncomplete || (err == nil && n > len(stream)) {
			fmt.Println("need more bytes, have", len(stream))
			return
		}
		if err != nil {
			fmt.Println("stream broken:", err)
			return
		}
		fmt.Println("packet of", n, "bytes")
		stream = stream[n:]
	}
	// Output:
	// packet of 113 bytes
	// need more bytes, have 40
}

func ExampleIsHEP() {
	fmt.Println(hep.IsHEP(example))
	fmt.Println(hep.IsHEP([]byte("SIP/2.0 200 OK\r\n")))
	// Output:
	// true
	// false
}

func ExampleAppendV3() {
	p := hep.Packet{
		IPFamily: hep.FamilyIPv4, IPProtocol: 17,
		SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2},
		SrcPort: 5060, DstPort: 5060,
		TimestampSeconds: 1700000000,
		ProtocolType:     hep.ProtocolSIP,
		CaptureAgentID:   2001,
		NodeName:         []byte("edge-1"),
		Payload:          []byte("OPTIONS sip:ping@192.0.2.2 SIP/2.0\r\n\r\n"),
	}
	b, err := hep.AppendV3(nil, &p)
	if err != nil {
		fmt.Println(err)
		return
	}
	n, _ := hep.PacketLength(b)
	fmt.Println(len(b), n)

	var q hep.Packet
	_ = hep.Decode(b, &q)
	fmt.Printf("%s %q\n", q.NodeName, q.Payload[:7])
	// Output:
	// 139 139
	// edge-1 "OPTIONS"
}
