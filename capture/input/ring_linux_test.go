//go:build linux

package input

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket/afpacket"
)

// TestRingBlockHoldsLargestFrame sends the largest UDP datagram over lo
// (65,507 bytes of payload, a frame of 65,549 bytes: lo's MTU is 65,536)
// into TPACKET_V3 rings of minRingBlockBytes, where the kernel writes it
// whole, and, for contrast, of 64 KiB, where it truncates it to the block
// less its headers: the reason for the smallest block.
func TestRingBlockHoldsLargestFrame(t *testing.T) {
	requireRoot(t)
	rx := listenLoopback(t)
	prog, err := buildFilter(udpPortFilter(t, rx.LocalAddr().(*net.UDPAddr).Port), true)
	if err != nil {
		t.Fatal(err)
	}
	const payload = 65535 - 20 - 8
	const frame = 14 + 20 + 8 + payload
	for _, tc := range []struct {
		block int
		whole bool
	}{{minRingBlockBytes, true}, {64 << 10, false}} {
		tp, err := afpacket.NewTPacket(afpacket.OptInterface("lo"), afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
			afpacket.OptBlockSize(tc.block), afpacket.OptNumBlocks(4), afpacket.OptFrameSize(afpacket.DefaultFrameSize),
			afpacket.OptBlockTimeout(10*time.Millisecond), afpacket.OptPollTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.SetBPF(prog); err != nil {
			tp.Close()
			t.Fatal(err)
		}
		tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		if err != nil {
			tp.Close()
			t.Fatal(err)
		}
		_, err = tx.Write(make([]byte, payload))
		tx.Close()
		if err != nil {
			tp.Close()
			t.Fatal(err)
		}
		data, ci, err := tp.ZeroCopyReadPacketData()
		tp.Close()
		if err != nil {
			t.Fatalf("block %d KiB: %v", tc.block>>10, err)
		}
		t.Logf("block %d KiB: frame of %d bytes, %d captured", tc.block>>10, ci.Length, len(data))
		if ci.Length != frame {
			t.Errorf("block %d KiB: frame of %d bytes, want %d", tc.block>>10, ci.Length, frame)
		}
		if whole := len(data) == frame && ci.CaptureLength == frame; whole != tc.whole {
			t.Errorf("block %d KiB: %d of %d bytes captured, want whole: %v", tc.block>>10, len(data), ci.Length, tc.whole)
		}
	}
}
