//go:build linux

package input

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// pollTimeout bounds how long a read waits for a packet, so that a
// cancelled context is noticed.
const pollTimeout = 200 * time.Millisecond

// Live captures packets from a network interface with an AF_PACKET
// TPACKET_V3 memory-mapped ring (pure Go, no libpcap) and feeds them to d
// until ctx is done. Kernel drops (PACKET_STATISTICS) go to
// st.KernelDrops. It returns an error naming the interface when the
// interface does not exist, its link type is not decoded, or the socket
// cannot be opened (capturing needs CAP_NET_RAW); started is called once the
// socket is open and reading.
func Live(ctx context.Context, cfg LiveConfig, d *decode.Decoder, st *Stats, started func()) error {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return fmt.Errorf("capture interface %q: %w", cfg.Interface, err)
	}
	lt, err := interfaceLinkType(cfg.Interface)
	if err != nil {
		return err
	}
	blocks := cfg.RingBytes / ringBlockBytes
	if blocks < 1 {
		return fmt.Errorf("capture interface %q: ring size %d bytes is below one %d byte block", cfg.Interface, cfg.RingBytes, ringBlockBytes)
	}
	blockTimeout := cfg.BlockTimeout
	if blockTimeout <= 0 {
		blockTimeout = DefaultBlockTimeout
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(cfg.Interface),
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptBlockSize(ringBlockBytes),
		afpacket.OptFrameSize(afpacket.DefaultFrameSize),
		afpacket.OptNumBlocks(blocks),
		afpacket.OptBlockTimeout(blockTimeout),
		afpacket.OptPollTimeout(pollTimeout),
		afpacket.OptAddVLANHeader(true),
	)
	if err != nil {
		return fmt.Errorf("capture interface %q: open AF_PACKET socket: %w", cfg.Interface, err)
	}
	defer tp.Close()
	filter := cfg.Filter
	if filter == nil && cfg.MediaFilter {
		if filter, err = MediaFilter(lt); err != nil {
			return fmt.Errorf("capture interface %q: %w", cfg.Interface, err)
		}
	}
	filter, err = buildFilter(filter, ifi.Flags&net.FlagLoopback != 0)
	if err != nil {
		return fmt.Errorf("capture interface %q: bpf filter: %w", cfg.Interface, err)
	}
	if filter != nil {
		if err := tp.SetBPF(filter); err != nil {
			return fmt.Errorf("capture interface %q: attach bpf filter: %w", cfg.Interface, err)
		}
	}
	if cfg.Promiscuous {
		if err := tp.SetPromiscuous(true); err != nil {
			return fmt.Errorf("capture interface %q: promiscuous mode: %w", cfg.Interface, err)
		}
		defer tp.SetPromiscuous(false) //nolint:errcheck // best effort on the way out
	}
	if started != nil {
		started()
	}

	updateDrops := func() {
		if _, v3, err := tp.SocketStats(); err == nil {
			st.KernelDrops.Store(uint64(v3.Drops()))
		}
	}
	defer updateDrops()
	next := time.Now().Add(statsInterval)
	for n := 0; ; n++ {
		data, ci, err := tp.ZeroCopyReadPacketData()
		if err == nil {
			d.Packet(lt, data, ci.Timestamp.UnixNano(), ci.Length)
		} else if !errors.Is(err, afpacket.ErrTimeout) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("capture interface %q: read: %w", cfg.Interface, err)
		}
		if err != nil || n&1023 == 0 {
			if ctx.Err() != nil {
				return nil
			}
			if now := time.Now(); now.After(next) {
				updateDrops()
				next = now.Add(statsInterval)
			}
		}
	}
}

// interfaceLinkType maps the interface's ARPHRD type (from sysfs) to the
// link type of the frames AF_PACKET hands over.
func interfaceLinkType(name string) (layers.LinkType, error) {
	b, err := os.ReadFile("/sys/class/net/" + name + "/type")
	if err != nil {
		return 0, fmt.Errorf("capture interface %q: link type: %w", name, err)
	}
	hw, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("capture interface %q: link type %q: %w", name, b, err)
	}
	switch hw {
	case 1, 772: // ARPHRD_ETHER, ARPHRD_LOOPBACK (with a zeroed Ethernet header)
		return layers.LinkTypeEthernet, nil
	case 65534, 768, 769, 776: // ARPHRD_NONE (tun, wireguard), IPIP, IP6IP6, SIT
		return layers.LinkTypeRaw, nil
	}
	return 0, fmt.Errorf("capture interface %q: ARPHRD type %d is not decoded (Ethernet, loopback and raw IP are)", name, hw)
}
