//go:build linux

package input

import (
	"errors"
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
	const frame = 14 + 20 + 8 + 65507
	for _, tc := range []struct {
		block int
		whole bool
	}{{minRingBlockBytes, true}, {64 << 10, false}} {
		captured, length := readLargestDatagram(t, tc.block)
		t.Logf("block %d KiB: frame of %d bytes, %d captured", tc.block>>10, length, captured)
		if length != frame {
			t.Errorf("block %d KiB: frame of %d bytes, want %d", tc.block>>10, length, frame)
		}
		if whole := captured == frame; whole != tc.whole {
			t.Errorf("block %d KiB: %d of %d bytes captured, want whole: %v", tc.block>>10, captured, length, tc.whole)
		}
	}
}

// readLargestDatagram opens a TPACKET_V3 ring of 4 blocks of block bytes
// on lo, sends a UDP datagram of 65,507 bytes to a socket of its own and
// returns the bytes of its frame in the ring and the frame's length.
func readLargestDatagram(t *testing.T, block int) (captured, length int) {
	t.Helper()
	rx := listenLoopback(t)
	prog, err := buildFilter(udpPortFilter(t, rx.LocalAddr().(*net.UDPAddr).Port), true)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := afpacket.NewTPacket(afpacket.OptInterface("lo"), afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptBlockSize(block), afpacket.OptNumBlocks(4), afpacket.OptFrameSize(afpacket.DefaultFrameSize),
		afpacket.OptBlockTimeout(10*time.Millisecond), afpacket.OptPollTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	if err := tp.SetBPF(prog); err != nil {
		t.Fatal(err)
	}
	// Before the filter the socket took in every packet on lo, which may
	// have filled the ring: read them all first.
	filtered := time.Now()
	for {
		if _, _, err := tp.ZeroCopyReadPacketData(); errors.Is(err, afpacket.ErrTimeout) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if _, err := tx.Write(make([]byte, 65507)); err != nil {
		t.Fatal(err)
	}
	for tries := 0; ; tries++ {
		data, ci, err := tp.ZeroCopyReadPacketData()
		switch {
		case errors.Is(err, afpacket.ErrTimeout) && tries < 10:
		case err != nil:
			t.Fatalf("block %d KiB: %v", block>>10, err)
		case !ci.Timestamp.Before(filtered):
			return len(data), ci.Length
		}
	}
}
