//go:build linux

package input

import (
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// TestHEPListenerPortTaken: a UDP port another process holds with
// SO_REUSEPORT (as a second exporter with --hep.udp-workers above 1 would)
// makes the listener fail at start, naming the address in use, instead of
// joining the group and sharing the traffic unseen.
func TestHEPListenerPortTaken(t *testing.T) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error { return reusePort(network, address, c) }}
	other, err := lc.ListenPacket(t.Context(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.TCP, cfg.UDPWorkers = other.LocalAddr().String(), false, 2
	ds := make([]*decode.Decoder, 2)
	for i := range ds {
		if ds[i], err = decode.New(decode.DefaultConfig(), new(decode.Stats), nil); err != nil {
			t.Fatal(err)
		}
	}
	l, err := ListenHEP(cfg, ds, new(Stats), nil, new(Stats))
	if err == nil {
		l.Close()
		t.Fatal("ListenHEP joined a port another socket holds with SO_REUSEPORT")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %v, want address already in use", err)
	}
}

// TestSenderKey: IPv4 senders are keyed by address, IPv6 senders by their
// /64, so that one host cannot take every slot by rotating addresses.
func TestSenderKey(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"},
	} {
		if got := senderKey(netip.MustParseAddr(c.a)); got != netip.MustParseAddr(c.b) {
			t.Errorf("senderKey(%s) = %s, want %s", c.a, got, c.b)
		}
	}
	if senderKey(netip.MustParseAddr("2001:db8:1:2::1")) == senderKey(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two /64s share a key")
	}
}
