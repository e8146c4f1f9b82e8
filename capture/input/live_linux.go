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
	"sync"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// pollTimeout bounds how long a read waits for a packet, so that a
// cancelled context is noticed.
const pollTimeout = 200 * time.Millisecond

// Live captures packets from a network interface with len(ds) workers (1
// to [MaxWorkers]) until ctx is done. Each worker is an AF_PACKET socket
// with its own TPACKET_V3 memory-mapped ring (pure Go, no libpcap; a
// share of cfg.RingBytes, in blocks of [ringBlockSize]), read by a goroutine of its own that feeds
// decoder ds[i], which must count into a Stats of its own (see
// [Stats.NewWorkers]) and belongs to that goroutine while Live runs.
//
// Above one worker the sockets join one PACKET_FANOUT group of type
// PACKET_FANOUT_HASH (packet(7)), whose id the kernel chooses
// ([fanoutGroup]). The kernel then hands each packet to one socket by a
// symmetric hash of its flow (addresses and, where the packet shows them,
// ports): both directions of a TCP connection or a UDP dialog reach the
// same worker, and every fragment of an IP datagram, whose hash the
// kernel takes from the addresses alone (fragments show no ports), reaches
// one worker, which reassembles it. The group is made without
// PACKET_FANOUT_FLAG_DEFRAG: that flag would reassemble IPv4 fragments in
// the kernel instead, so that the decoder would see, and the self-metrics
// count, datagrams where one worker sees fragments, and the kernel's
// failures to reassemble would go uncounted.
//
// The kernel filter (cfg.Filter, or MediaFilter) is attached to every
// socket before it joins the group; the packets a socket took in before
// it was filtered and joined (copies of what the group hands the others)
// are discarded by their capture time. Kernel drops (PACKET_STATISTICS),
// summed over the workers, are added to st.KernelDrops every second.
//
// started is called once every socket is open and has joined. When one
// worker fails the others are stopped and Live returns its error, so that
// the interface is reopened as a whole. Live returns an error naming the
// interface when it does not exist, its link type is not decoded, a
// socket cannot be opened (capturing needs CAP_NET_RAW) or a worker fails
// to read; nil once ctx is done.
func Live(ctx context.Context, cfg LiveConfig, ds []*decode.Decoder, st *Stats, started func()) error {
	n := len(ds)
	if n < 1 || n > MaxWorkers {
		return fmt.Errorf("capture interface %q: %d workers: must be 1 to %d", cfg.Interface, n, MaxWorkers)
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return interfaceError(cfg.Interface, err)
	}
	lt, err := interfaceLinkType(cfg.Interface)
	if err != nil {
		return err
	}
	blockTimeout := cfg.BlockTimeout
	if blockTimeout <= 0 {
		blockTimeout = DefaultBlockTimeout
	}
	blockBytes := ringBlockSize(cfg.RingBytes, n, blockTimeout)
	blocks := cfg.RingBytes / blockBytes
	if blocks < 1 {
		return fmt.Errorf("capture interface %q: ring size %d bytes is below one %d byte block", cfg.Interface, cfg.RingBytes, blockBytes)
	}
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
	var group uint16
	if n > 1 {
		if group, err = fanoutGroup(ifi.Index); err != nil {
			return fmt.Errorf("capture interface %q: %w", cfg.Interface, err)
		}
	}
	ws := make([]*worker, 0, n)
	defer func() {
		for _, w := range ws {
			w.tp.Close()
		}
	}()
	for i, d := range ds {
		opened := time.Now().UnixNano()
		tp, err := afpacket.NewTPacket(
			afpacket.OptInterface(cfg.Interface),
			afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
			afpacket.OptBlockSize(blockBytes),
			afpacket.OptFrameSize(afpacket.DefaultFrameSize),
			afpacket.OptNumBlocks(workerBlocks(blocks, n, i)),
			afpacket.OptBlockTimeout(blockTimeout),
			afpacket.OptPollTimeout(pollTimeout),
			afpacket.OptAddVLANHeader(true),
		)
		if err != nil {
			return fmt.Errorf("capture interface %q: worker %d: open AF_PACKET socket: %w", cfg.Interface, i, permissionError(err))
		}
		ws = append(ws, &worker{tp: tp, d: d, lt: lt, opened: opened})
		if filter != nil {
			if err := tp.SetBPF(filter); err != nil {
				return fmt.Errorf("capture interface %q: worker %d: attach bpf filter: %w", cfg.Interface, i, err)
			}
		}
		if n > 1 {
			if err := tp.SetFanout(afpacket.FanoutHash, group); err != nil {
				return fmt.Errorf("capture interface %q: worker %d: join fanout group %d: %w", cfg.Interface, i, group, err)
			}
		}
		ws[i].from = time.Now().UnixNano()
	}
	if cfg.Promiscuous {
		// The membership is the socket's: one socket holds the interface
		// promiscuous for all, and the kernel drops it when that socket
		// closes.
		if err := ws[0].tp.SetPromiscuous(true); err != nil {
			return fmt.Errorf("capture interface %q: promiscuous mode: %w", cfg.Interface, err)
		}
		defer ws[0].tp.SetPromiscuous(false) //nolint:errcheck // best effort on the way out
	}
	if started != nil {
		started()
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			if err := w.run(ctx); err != nil {
				errs[i] = fmt.Errorf("capture interface %q: worker %d: read: %w", cfg.Interface, i, err)
				stop()
			}
		})
	}
	base := st.KernelDrops.Load() // kept across reopenings: the counter does not go back
	updateDrops := func() {
		var sum uint64
		for _, w := range ws {
			if _, v3, err := w.tp.SocketStats(); err == nil {
				w.drops = uint64(v3.Drops())
			}
			sum += w.drops
		}
		st.KernelDrops.Store(base + sum)
	}
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			updateDrops()
		}
	}
	wg.Wait()
	updateDrops()
	return errors.Join(errs...)
}

// worker is one socket of an interface's capture and the decoder it
// feeds; run and next are for its goroutine only.
type worker struct {
	tp *afpacket.TPacket
	d  *decode.Decoder
	lt layers.LinkType
	// The ring's packets captured from opened to from (ns) were taken
	// in before the socket was filtered and had joined its fanout group:
	// they are skipped. from is 0 once a packet at or after it has come.
	// (A packet before opened was captured after a step back of the
	// clock, and is kept.)
	opened, from int64
	// drops are the socket's kernel drops so far (PACKET_STATISTICS),
	// kept by Live's goroutine.
	drops uint64
}

// run reads and decodes until ctx is done (nil) or a read fails.
func (w *worker) run(ctx context.Context) error {
	for n := 0; ; n++ {
		err := w.next()
		if err != nil && !errors.Is(err, afpacket.ErrTimeout) {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if (err != nil || n&1023 == 0) && ctx.Err() != nil {
			return nil
		}
	}
}

// next decodes the ring's next packet, waiting up to pollTimeout for one
// (then it returns afpacket.ErrTimeout). It does not allocate where the
// decoder does not.
func (w *worker) next() error {
	data, ci, err := w.tp.ZeroCopyReadPacketData()
	if err != nil {
		return err
	}
	ts := ci.Timestamp.UnixNano()
	if w.from != 0 {
		if ts >= w.from {
			w.from = 0
		} else if ts >= w.opened {
			return nil
		}
	}
	// The kernel stamped the packet with this host's wall clock when it
	// took it in: that is its time of receipt, so the merge reads no
	// clock per message, and a wait in the ring (up to the block
	// timeout) or a stall of the exporter is not taken for an offset of
	// the interface's clock.
	w.d.SetReceived(ts)
	w.d.Packet(w.lt, data, ts, ci.Length)
	return nil
}

// ethPLocalExperimental is an EtherType no frame of a capture carries
// (IEEE 802 local experimental 1): a socket bound to it receives nothing.
const ethPLocalExperimental = 0x88b5

// fanoutGroup returns a PACKET_FANOUT group id that no group of the
// calling thread's network namespace uses: the kernel chooses it
// (PACKET_FANOUT_FLAG_UNIQUEID, Linux 4.12; packet(7)) for a socket of
// fanoutGroup's own, bound to interface ifindex for a protocol no frame
// carries, which joins the new group and is closed again, taking the
// group with it. The kernel hands such ids out in turn, so it does not
// choose this one again soon, and the capture's own sockets make a group
// of it at once. (gopacket keeps the descriptor of its sockets to itself,
// so the first of them cannot ask for the id; a group given the same id by
// number, by another process, in the moment between would be joined.)
func fanoutGroup(ifindex int) (uint16, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) { // the sockets of the capture would fail alike
			return 0, fmt.Errorf("open AF_PACKET socket: %w", permissionError(err))
		}
		return 0, fmt.Errorf("fanout group id: AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPLocalExperimental), Ifindex: ifindex}); err != nil {
		return 0, fmt.Errorf("fanout group id: bind: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, (unix.PACKET_FANOUT_HASH|unix.PACKET_FANOUT_FLAG_UNIQUEID)<<16); err != nil {
		return 0, fmt.Errorf("fanout group id: PACKET_FANOUT_FLAG_UNIQUEID (Linux 4.12): %w", err)
	}
	v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		return 0, fmt.Errorf("fanout group id: getsockopt PACKET_FANOUT: %w", err)
	}
	return uint16(v), nil
}

// permissionError adds ErrCapturePermission to the error of opening an
// AF_PACKET socket without CAP_NET_RAW (EPERM).
func permissionError(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (%w)", err, ErrCapturePermission)
	}
	return err
}

// interfaceError is the error of Live for an interface name that
// net.InterfaceByName did not find: it wraps ErrNoInterface and lists the
// interfaces there are; "any", libpcap's pseudo-interface for all of them,
// is named as such.
func interfaceError(name string, err error) error {
	var names []string
	if ifs, ierr := net.Interfaces(); ierr == nil {
		for _, ifi := range ifs {
			names = append(names, ifi.Name)
		}
	}
	there := "no interfaces here"
	if len(names) > 0 {
		there = "interfaces here: " + strings.Join(names, ", ")
	}
	if name == "any" {
		return fmt.Errorf("capture interface %q: %w: libpcap's pseudo-interface \"any\" is not supported, capture each interface of its own (%s)", name, ErrNoInterface, there)
	}
	if strings.Contains(err.Error(), "no such network interface") {
		return fmt.Errorf("capture interface %q: %w (%s)", name, ErrNoInterface, there)
	}
	return fmt.Errorf("capture interface %q: %w", name, err)
}

// htons converts v to network byte order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

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
