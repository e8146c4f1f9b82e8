package input

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// The tests of the batched UDP path send from 127.0.15.0/24 to a listener
// on 127.0.15.1, as the protection tests do.

// seqRecorder records, per UDP worker, the messages its decoder handed on
// in order: node and CSeq number.
type seqRecorder struct {
	mu   sync.Mutex
	seen [][]string // by worker: "node cseq"
}

func (r *seqRecorder) handler(worker int) decode.Handler {
	return func(o *decode.Origin, m *sip.Message) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seen[worker] = append(r.seen[worker], fmt.Sprintf("%s %d", o.Node, m.CSeq))
	}
}

// counts returns how often each message was handed on, over the workers.
func (r *seqRecorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := map[string]int{}
	for _, w := range r.seen {
		for _, s := range w {
			c[s]++
		}
	}
	return c
}

func (r *seqRecorder) total() int {
	n := 0
	for _, v := range r.counts() {
		n += v
	}
	return n
}

// listenBatch opens a UDP-only listener with workers sockets on
// 127.0.15.1, decoders recording into a seqRecorder, without serving it.
func listenBatch(t *testing.T, workers int, allowed []netip.Prefix) (*HEPListener, *seqRecorder, *Stats, []*decode.Decoder) {
	t.Helper()
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.TCP, cfg.UDPWorkers, cfg.AllowedNetworks = "127.0.15.1:0", false, workers, allowed
	rec := &seqRecorder{seen: make([][]string, workers)}
	st := new(Stats)
	ds := make([]*decode.Decoder, workers)
	for i := range ds {
		d, err := decode.New(decode.DefaultConfig(), &st.Decode, rec.handler(i))
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = d
	}
	l, err := ListenHEP(cfg, ds, st, nil, new(Stats))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l, rec, st, ds
}

// serve runs l.ServeUDP until the end of the test.
func serve(t *testing.T, l *HEPListener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.ServeUDP(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeUDP: %v", err)
		}
	})
}

// seqPacket returns a HEPv3 packet of a 200 OK from node with CSeq seq.
func seqPacket(t *testing.T, node string, seq int) []byte {
	t.Helper()
	msg := fmt.Sprintf("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK%d\r\nCall-ID: %s@b\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n", seq, node, seq)
	return hepPacket(t, msg, node, 1, "", hep.ProtocolSIP)
}

// sendFrom sends pkts in order from 127.0.15.host to addr.
func sendFrom(t *testing.T, host byte, addr net.Addr, pkts ...[]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: testAddr(host)}, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range pkts {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

// checkOrder fails unless each node's CSeq numbers appear in increasing
// order within every worker's sequence.
func checkOrder(t *testing.T, rec *seqRecorder) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for w, seq := range rec.seen {
		last := map[string]int{}
		for _, s := range seq {
			var node string
			var n int
			if _, err := fmt.Sscanf(s, "%s %d", &node, &n); err != nil {
				t.Fatal(err)
			}
			if p, ok := last[node]; ok && n <= p {
				t.Errorf("worker %d: %s after %d: out of order", w, s, p)
			}
			last[node] = n
		}
	}
}

// TestHEPListenerUDPBatch: datagrams queued before the listener reads are
// read in one batch (one recvmmsg), decoded in the order each sender sent
// them; with an allowlist, those of a sender outside it are dropped and
// counted inside the batch, the others decoded.
func TestHEPListenerUDPBatch(t *testing.T) {
	allowed, err := ParseNetworks([]string{"127.0.15.30/31"}) // .30 and .31
	if err != nil {
		t.Fatal(err)
	}
	l, rec, st, _ := listenBatch(t, 1, allowed)
	for i := range 20 {
		sendFrom(t, byte(30+i%3), l.UDPAddr(), seqPacket(t, fmt.Sprintf("n%d", 30+i%3), i)) // .32 is outside
	}
	serve(t, l)
	waitFor(t, 5*time.Second, "20 datagrams", func() bool {
		return st.Decode.HEPPackets.Load()+st.NotAllowedDrops.Load() == 20
	})
	if got := st.HEPUDPReads.Load(); got != 1 {
		t.Errorf("%d reads for 20 queued datagrams, want 1 batch", got)
	}
	if got := st.NotAllowedDrops.Load(); got != 6 {
		t.Errorf("not allowed %d, want 6 (from 127.0.15.32)", got)
	}
	want := map[string]int{}
	for i := range 20 {
		if i%3 != 2 {
			want[fmt.Sprintf("n%d %d", 30+i%3, i)] = 1
		}
	}
	if got := rec.counts(); !maps.Equal(got, want) {
		t.Errorf("handled %v, want %v", got, want)
	}
	checkOrder(t, rec)
}

// TestHEPListenerUDPWorkers: the same datagrams from 16 senders are
// counted exactly alike by 1 and by 4 workers (SO_REUSEPORT sockets); with
// 4, more than one socket gets traffic, and each sender's datagrams are
// decoded in the order sent.
func TestHEPListenerUDPWorkers(t *testing.T) {
	const senders, each = 16, 50
	var counts [2]map[string]int
	for k, workers := range []int{1, 4} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			l, rec, st, _ := listenBatch(t, workers, nil)
			if len(l.udp) != workers {
				t.Fatalf("%d sockets, want %d", len(l.udp), workers)
			}
			serve(t, l)
			var wg sync.WaitGroup
			for s := range senders {
				pkts := make([][]byte, each)
				for i := range pkts {
					pkts[i] = seqPacket(t, fmt.Sprintf("s%d", s), i+1)
				}
				wg.Go(func() { sendFrom(t, byte(40+s), l.UDPAddr(), pkts...) })
			}
			wg.Wait()
			waitFor(t, 5*time.Second, "every datagram", func() bool { return rec.total() == senders*each })
			if st.KernelDrops.Load() != 0 {
				t.Fatalf("kernel drops %d on loopback", st.KernelDrops.Load())
			}
			counts[k] = rec.counts()
			checkOrder(t, rec)
			busy := 0
			for _, seq := range rec.seen {
				if len(seq) > 0 {
					busy++
				}
			}
			if workers > 1 && busy < 2 {
				t.Errorf("%d of %d workers got datagrams from %d senders", busy, workers, senders)
			}
			t.Logf("%d workers: %d got datagrams, %d reads for %d datagrams", workers, busy, st.HEPUDPReads.Load(), senders*each)
		})
	}
	if !maps.Equal(counts[0], counts[1]) {
		t.Errorf("4 workers counted differently from 1:\n1: %v\n4: %v", counts[0], counts[1])
	}
}

// TestHEPListenerUDPWorkersKernelDrops stalls every worker while senders
// overflow their small socket buffers: the kernel drops of all sockets
// are summed, and every datagram sent is either decoded or counted as
// dropped.
func TestHEPListenerUDPWorkersKernelDrops(t *testing.T) {
	if _, ok := udpSocketDrops(mustUDP(t)); !ok {
		t.Skip("no /proc/net/udp drop counters on this system")
	}
	const workers, senders, each = 2, 8, 100
	release := make(chan struct{})
	st := new(Stats)
	var handled sync.Map
	ds := make([]*decode.Decoder, workers)
	for i := range ds {
		var once sync.Once
		d, err := decode.New(decode.DefaultConfig(), &st.Decode, func(*decode.Origin, *sip.Message) {
			once.Do(func() { <-release })
			handled.Store(i, true)
		})
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = d
	}
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.TCP, cfg.UDPWorkers = "127.0.15.1:0", false, workers
	l, err := ListenHEP(cfg, ds, st, nil, new(Stats))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l.udp {
		if err := c.SetReadBuffer(4096); err != nil {
			t.Fatal(err)
		}
	}
	serve(t, l)
	pkt := hepPacket(t, hepOK, "n", 1, "", hep.ProtocolSIP)
	pkts := make([][]byte, each)
	for i := range pkts {
		pkts[i] = pkt
	}
	for s := range senders {
		sendFrom(t, byte(60+s), l.UDPAddr(), pkts...)
	}
	close(release)
	waitFor(t, 10*time.Second, "received + dropped = sent", func() bool {
		return st.Decode.HEPPackets.Load()+st.KernelDrops.Load() == senders*each
	})
	if st.KernelDrops.Load() == 0 {
		t.Error("no kernel drops counted")
	}
	perSocket := uint64(0)
	for _, c := range l.udp {
		n, ok := udpSocketDrops(c)
		if !ok {
			t.Fatal("drops of a socket not read")
		}
		perSocket += n
	}
	if perSocket != st.KernelDrops.Load() {
		t.Errorf("kernel drops %d, sum of the sockets' %d", st.KernelDrops.Load(), perSocket)
	}
	t.Logf("%d sent, %d decoded, %d dropped by the kernel", senders*each, st.Decode.HEPPackets.Load(), st.KernelDrops.Load())
}

// TestHEPListenerUDPBatchAllocs: reading and decoding a batch of
// datagrams allocates nothing.
func TestHEPListenerUDPBatchAllocs(t *testing.T) {
	allowed, err := ParseNetworks([]string{"127.0.15.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	l, _, st, ds := listenBatch(t, 1, allowed)
	ds[0], err = decode.New(decode.DefaultConfig(), &st.Decode, func(*decode.Origin, *sip.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	const runs, per = 20, 32
	pkts := make([][]byte, (runs+1)*per)
	for i := range pkts {
		pkts[i] = seqPacket(t, "a", i+1)
	}
	sendFrom(t, 70, l.UDPAddr(), pkts...)
	b, err := newUDPBatch(l.udp[0], per)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	allocs := testing.AllocsPerRun(runs, func() {
		n, err := l.receiveUDP(b, ds[0])
		if err != nil {
			t.Fatal(err)
		}
		got += n
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch, want 0", allocs)
	}
	if got != len(pkts) || st.Decode.HEPPackets.Load() != uint64(len(pkts)) {
		t.Errorf("read %d, decoded %d, want %d", got, st.Decode.HEPPackets.Load(), len(pkts))
	}
}
