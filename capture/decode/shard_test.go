package decode_test

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// TestFlowHash: both directions of a pair hash alike on every link type
// looked into, whatever the ports and protocol; other pairs differ; a
// frame FlowHash cannot look into is 0; it does not allocate.
func TestFlowHash(t *testing.T) {
	for _, pair := range [][2]string{{"v4", ""}, {"v6", ""}} {
		a, b := alice4, bob4
		if pair[0] == "v6" {
			a, b = alice6, bob6
		}
		ab, ba := udpPacket(t, a, b, []byte(ok.text)), tcpPacket(t, b, a, 1, fACK, []byte("x"))
		frames := []struct {
			lt     layers.LinkType
			ab, ba []byte
		}{
			{layers.LinkTypeEthernet, ether(t, ab), ether(t, ba)},
			{layers.LinkTypeLinuxSLL, sll(ab), sll(ba)},
			{layers.LinkTypeLinuxSLL2, sll2(ab), sll2(ba)},
			{layers.LinkTypeRaw, ab, ba},
		}
		var first uint64
		for _, f := range frames {
			h1, h2 := decode.FlowHash(f.lt, f.ab), decode.FlowHash(f.lt, f.ba)
			if h1 != h2 || h1 == 0 {
				t.Errorf("%s %v: %x one way, %x the other", pair[0], f.lt, h1, h2)
			}
			if first == 0 {
				first = h1
			} else if h1 != first {
				t.Errorf("%s %v: %x, Ethernet %x: the link type changed the hash", pair[0], f.lt, h1, first)
			}
		}
		c := alice4
		if pair[0] == "v6" {
			c = alice6
		}
		other := udpPacket(t, a, netip.AddrPortFrom(c.Addr().Next(), 5060), []byte(ok.text))
		if decode.FlowHash(layers.LinkTypeRaw, other) == first {
			t.Errorf("%s: another pair hashes alike", pair[0])
		}
		f := ether(t, ab)
		if n := testing.AllocsPerRun(1000, func() { decode.FlowHash(layers.LinkTypeEthernet, f) }); n != 0 {
			t.Errorf("%v allocs", n)
		}
	}
	if h := decode.FlowHash(layers.LinkTypeEthernet, make([]byte, 13)); h != 0 {
		t.Errorf("short frame: %x, want 0", h)
	}
	if h := decode.FlowHash(layers.LinkType(147), make([]byte, 64)); h != 0 {
		t.Errorf("unknown link type: %x, want 0", h)
	}
}

// TestWorkerHash: a whole UDP datagram may go to any worker; a TCP
// segment, an IPv4 or IPv6 fragment (the first one included) and a VXLAN
// or Geneve datagram stay with their pair (FlowHash), on IPv4 and IPv6.
func TestWorkerHash(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		a, b := alice4, bob4
		if v6 {
			a, b = alice6, bob6
		}
		udp := udpPacket(t, a, b, []byte(ok.text))
		vxlanPort := netip.AddrPortFrom(b.Addr(), 4789)
		genevePort := netip.AddrPortFrom(b.Addr(), 6081)
		for _, c := range []struct {
			name  string
			frame []byte
			any   bool
		}{
			{"udp", udp, true},
			{"tcp", tcpPacket(t, a, b, 1, fACK, []byte(ok.text)), false},
			{"first fragment", fragments(t, udp, 256, 7)[0], false},
			{"last fragment", fragments(t, udp, 256, 7)[1], false},
			{"vxlan", udpPacket(t, a, vxlanPort, make([]byte, 64)), false},
			{"geneve", udpPacket(t, genevePort, a, make([]byte, 64)), false},
		} {
			h, anyWorker := decode.WorkerHash(layers.LinkTypeRaw, c.frame)
			if anyWorker != c.any || h != decode.FlowHash(layers.LinkTypeRaw, c.frame) || h == 0 {
				t.Errorf("v6 %v, %s: hash %x, any worker %v; want FlowHash, %v", v6, c.name, h, anyWorker, c.any)
			}
		}
	}
}
