//go:build linux

package input

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
)

// requireRoot skips the test unless it runs as root, and fails it then
// under CI=true.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("needs root (AF_PACKET, network namespaces) (CI=true: never skipped)")
	}
	tb.Skip("needs root (AF_PACKET, network namespaces)")
}

// TestMediaFilterKernel attaches the media filter to an AF_PACKET socket on
// lo as Live does (after the PACKET_OUTGOING check) and sends RTP, STUN
// and SIP over UDP between two ports of its own: the kernel hands over
// every SIP datagram once and none of the others.
func TestMediaFilterKernel(t *testing.T) {
	requireRoot(t)
	media, err := MediaFilter(layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := buildFilter(media, true)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := afpacket.NewTPacket(afpacket.OptInterface("lo"), afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptBlockSize(ringBlockBytes), afpacket.OptNumBlocks(4), afpacket.OptFrameSize(afpacket.DefaultFrameSize),
		afpacket.OptBlockTimeout(10*time.Millisecond), afpacket.OptPollTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	if err := tp.SetBPF(prog); err != nil {
		t.Fatal(err)
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	srcPort, dstPort := uint16(tx.LocalAddr().(*net.UDPAddr).Port), uint16(rx.LocalAddr().(*net.UDPAddr).Port)

	const rtp, sip = 500, 20
	stun := []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for i := range rtp {
		p := make([]byte, 172)
		p[0], p[1] = 0x80, 0x08
		binary.BigEndian.PutUint16(p[2:], uint16(i))
		if _, err := tx.Write(p); err != nil {
			t.Fatal(err)
		}
		if i%25 == 24 { // the last datagram is SIP: all before it are read
			if _, err := tx.Write(stun); err != nil {
				t.Fatal(err)
			}
			if _, err := fmt.Fprintf(tx, "OPTIONS sip:k@127.0.0.1 SIP/2.0\r\nCall-ID: %d\r\nCSeq: 1 OPTIONS\r\n\r\n", i/25); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := map[string]int{}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && seen["sip"] < sip {
		data, _, err := tp.ZeroCopyReadPacketData()
		if errors.Is(err, afpacket.ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// Ethernet, IPv4 without options, UDP between our ports.
		if len(data) < 14+20+8+1 || data[23] != 17 || binary.BigEndian.Uint16(data[34:]) != srcPort || binary.BigEndian.Uint16(data[36:]) != dstPort {
			continue
		}
		switch p := data[42:]; {
		case p[0] == 0x80:
			seen["rtp"]++
		case p[0] == 0:
			seen["stun"]++
		case string(p[:8]) == "OPTIONS ":
			seen["sip"]++
		default:
			seen["other"]++
		}
	}
	if seen["sip"] != sip || len(seen) != 1 {
		t.Errorf("kernel handed over %v of %d RTP, %d STUN and %d SIP datagrams, want only the %d SIP", seen, rtp, sip, sip, sip)
	}
}
