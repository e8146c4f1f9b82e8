//go:build linux

package input

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// udpPortFilter returns a classic BPF program for Ethernet framing (as lo
// shows it) that keeps the IPv4 UDP datagrams to port and drops the rest,
// so that a test on lo sees only its own traffic.
func udpPortFilter(tb testing.TB, port int) []bpf.RawInstruction {
	tb.Helper()
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800, SkipTrue: 5},
		bpf.LoadAbsolute{Off: 14 + 9, Size: 1}, // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 17, SkipTrue: 3},
		bpf.LoadAbsolute{Off: 14 + 20 + 2, Size: 2}, // UDP destination port (no IP options on lo)
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(port), SkipTrue: 1},
		bpf.RetConstant{Val: 1 << 18},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return prog
}

// listenLoopback returns a UDP socket on 127.0.0.1, closed by a cleanup.
func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	return rx
}

// workerLog is what one worker's decoder saw: the Call-IDs and the
// source ports of the messages it was handed. Only its worker writes it.
type workerLog struct {
	n       atomic.Int64
	callIDs map[string]int
	ports   map[uint16]bool
}

// TestLiveWorkers runs Live with 2 workers on lo while 64 UDP sockets
// send 4,000 OPTIONS (each its own Call-ID) to one port, and checks that
// every message was decoded exactly once, by one worker; that both
// workers got some; that each sender's datagrams (one flow) all went to
// the same worker; and that the per-worker counters add up to the
// source's packets.
func TestLiveWorkers(t *testing.T) {
	requireRoot(t)
	rx := listenLoopback(t)
	port := rx.LocalAddr().(*net.UDPAddr).Port
	go func() { // drain, so that the receive queue never fills
		buf := make([]byte, 2048)
		for {
			if _, err := rx.Read(buf); err != nil {
				return
			}
		}
	}()

	const workers, senders, messages = 2, 64, 4000
	var (
		st  Stats
		err error
	)
	logs := make([]*workerLog, workers)
	ds := make([]*decode.Decoder, workers)
	for i, ws := range st.NewWorkers(workers) {
		l := &workerLog{callIDs: map[string]int{}, ports: map[uint16]bool{}}
		logs[i] = l
		if ds[i], err = decode.New(decode.DefaultConfig(), ws, func(o *decode.Origin, m *sip.Message) {
			l.callIDs[string(m.CallID)]++
			l.ports[o.Src.Port()] = true
			l.n.Add(1)
		}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	started, done := make(chan struct{}), make(chan error, 1)
	cfg := LiveConfig{Interface: "lo", RingBytes: 8 << 20, Filter: udpPortFilter(t, port), BlockTimeout: 10 * time.Millisecond}
	go func() { done <- Live(ctx, cfg, ds, &st, func() { close(started) }) }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Live: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Live not started after 10 s")
	}

	txs := make([]*net.UDPConn, senders)
	for i := range txs {
		if txs[i], err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		defer txs[i].Close()
	}
	for i := range messages {
		if _, err := fmt.Fprintf(txs[i%senders], "OPTIONS sip:k@127.0.0.1 SIP/2.0\r\nCall-ID: w-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
		if i%200 == 199 {
			time.Sleep(time.Millisecond) // stay within lo's receive backlog
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs[0].n.Load()+logs[1].n.Load() < messages && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a copy, if any, would come with the last block
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Live: %v", err)
	}

	seen := map[string]int{}
	for i, l := range logs {
		for id, n := range l.callIDs {
			seen[id] += n
		}
		t.Logf("worker %d: %d messages from %d senders, %d packets", i, l.n.Load(), len(l.ports), st.Workers[i].Packets.Load())
		if l.n.Load() == 0 {
			t.Errorf("worker %d got no message of %d senders", i, senders)
		}
		if got := st.Workers[i].Packets.Load(); got != uint64(l.n.Load()) {
			t.Errorf("worker %d: %d packets counted, %d messages decoded", i, got, l.n.Load())
		}
	}
	if len(seen) != messages {
		t.Errorf("%d distinct messages decoded, want %d", len(seen), messages)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s decoded %d times", id, n)
		}
	}
	for p := range logs[0].ports {
		if logs[1].ports[p] {
			t.Errorf("the datagrams of sender port %d went to both workers", p)
		}
	}
	if st.Packets() != messages {
		t.Errorf("source packets %d, want %d", st.Packets(), messages)
	}
	if d := st.KernelDrops.Load(); d != 0 {
		t.Errorf("kernel drops %d", d)
	}
}

// TestLiveWorkersRange checks the bounds of the worker count.
func TestLiveWorkersRange(t *testing.T) {
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(*decode.Origin, *sip.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, MaxWorkers + 1} {
		ds := make([]*decode.Decoder, n)
		for i := range ds {
			ds[i] = d
		}
		err := Live(context.Background(), LiveConfig{Interface: "lo", RingBytes: DefaultRingBytes}, ds, new(Stats), nil)
		if want := strconv.Itoa(n) + " workers: must be 1 to 64"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%d workers: error %v, want one saying %q", n, err, want)
		}
	}
}

// TestFanoutGroup checks that the kernel chooses a new group id each time.
func TestFanoutGroup(t *testing.T) {
	requireRoot(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	a, err := fanoutGroup(lo.Index)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fanoutGroup(lo.Index)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("fanout group id %d twice", a)
	}
}

// TestWorkerNextAllocs reads and decodes SIP datagrams from a real ring on
// lo and checks that the per-packet step allocates nothing.
func TestWorkerNextAllocs(t *testing.T) {
	requireRoot(t)
	rx := listenLoopback(t)
	tp, err := afpacket.NewTPacket(afpacket.OptInterface("lo"), afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptBlockSize(ringBlockBytes), afpacket.OptNumBlocks(4), afpacket.OptFrameSize(afpacket.DefaultFrameSize),
		afpacket.OptBlockTimeout(10*time.Millisecond), afpacket.OptPollTimeout(pollTimeout), afpacket.OptAddVLANHeader(true))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	prog, err := buildFilter(udpPortFilter(t, rx.LocalAddr().(*net.UDPAddr).Port), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.SetBPF(prog); err != nil {
		t.Fatal(err)
	}
	var decoded int
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(*decode.Origin, *sip.Message) { decoded++ })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	w := &worker{tp: tp, d: d, lt: layers.LinkTypeEthernet, opened: now, from: now}
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const runs = 500
	for i := range runs + 10 {
		if _, err := fmt.Fprintf(tx, "SIP/2.0 200 OK\r\nCall-ID: a-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the block is handed over
	// On a busy machine a block may be handed over later than the sleep:
	// a read that times out is tried again (ErrTimeout is a sentinel,
	// which allocates nothing), up to a deadline.
	var errs []error
	deadline := time.Now().Add(5 * time.Second)
	allocs := testing.AllocsPerRun(runs, func() {
		for {
			err := w.next()
			if errors.Is(err, afpacket.ErrTimeout) && time.Now().Before(deadline) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
			}
			return
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if decoded < runs {
		t.Fatalf("%d messages decoded in %d reads", decoded, runs+1)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per packet read and decoded, want 0", allocs)
	}
	t.Logf("%d messages decoded, %v allocations per packet", decoded, allocs)
}
