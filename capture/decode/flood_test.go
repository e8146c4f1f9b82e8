package decode_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// floodResult is what runTCPFlood measured.
type floodResult struct {
	packets, messages        uint64
	heapBefore, heapAfter    uint64 // HeapInuse after a GC, before the decoder and at the end (decoder alive)
	heapPeak                 uint64 // highest HeapInuse of the samples (after a GC, every sampleEvery flows)
	allocBefore, allocPeak   uint64 // HeapAlloc (live objects) likewise
	allocAfter               uint64
	maxMemory                int64  // highest reassembly memory gauge seen after any packet
	maxFlows                 int64  // highest flow gauge seen after any packet
	limit, timeout, memory   uint64 // evictions by reason
	resyncs, gaps, outOfOrde uint64
	elapsed                  time.Duration
}

// floodFrame writes an IPv4/TCP packet of flow i into p (which has room for
// 40+len(payload) bytes) and returns it. The decoder keeps nothing of the
// frame past the call, so one buffer serves every packet.
func floodFrame(p []byte, i uint32, reverse bool, seq uint32, flags byte, payload []byte) []byte {
	p = p[:40+len(payload)]
	clear(p[:40])
	p[0], p[8], p[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	a := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
	b := [4]byte{192, 0, 2, byte(i >> 24)}
	sport, dport := uint16(1024+i%60000), uint16(5060)
	if reverse {
		a, b, sport, dport = b, a, dport, sport
	}
	copy(p[12:], a[:])
	copy(p[16:], b[:])
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint32(p[24:], seq)
	p[32] = 5 << 4
	p[33] = 0x10 | flags // ACK and the given SYN (0x02), FIN (0x01), RST (0x04)
	copy(p[40:], payload)
	return p
}

// floodSIPStart starts a partial SIP message whose header never ends: the
// stream shows SIP, so its bytes are buffered and its out-of-order segments
// held, which is what the memory budget is for.
const floodSIPStart = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n"

// floodSIPWhole is a whole message; random bytes follow it on its flow.
const floodSIPWhole = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\nCall-ID: f\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n"

// runTCPFlood sends flows TCP flows of random data through one decoder of
// configuration cfg and reports what happened. Flows are sent one after
// the other, 1 to 4 segments each, in capture time 10 µs apart for the
// first half (the table fills: evictions by limit) and 20 ms apart for the
// second (flows idle for cfg.TCP.FlowTimeout go: evictions by timeout).
// Of the flows, 60 % carry random bytes only, 25 % a SIP start line and
// header lines that never end (buffered, so evictions by memory), 10 % a
// whole SIP message then random bytes, and 5 % the HEPv3 magic then random
// bytes; half start with a SYN, a fifth end with FIN or RST, and a segment
// may come early (out of order) or from the other direction.
func runTCPFlood(tb testing.TB, cfg decode.Config, flows int, maxPayload int, sampleEvery int) floodResult {
	tb.Helper()
	var r floodResult
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	// rnd returns n random bytes: a window of the random block.
	rnd := func(n int) []byte {
		o := rng.IntN(len(random) - n)
		return random[o : o+n]
	}
	// lines are header lines without an end of header.
	var lines []byte
	for len(lines) < 2*maxPayload {
		lines = fmt.Appendf(lines, "X-%d: %x\r\n", len(lines), rnd(8))
	}
	hdr := make([]byte, 0, maxPayload)
	frame := make([]byte, 40+maxPayload)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	r.heapBefore, r.heapPeak = ms.HeapInuse, ms.HeapInuse
	r.allocBefore, r.allocPeak = ms.HeapAlloc, ms.HeapAlloc

	st := new(decode.Stats)
	d, err := decode.New(cfg, st, func(_ *decode.Origin, m *sip.Message) {
		r.messages++
		if m.Response && (m.StatusCode < 100 || m.StatusCode > 699) {
			tb.Fatalf("status code %d handed on", m.StatusCode)
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	ts := int64(1e18)
	start := time.Now()
	for i := range flows {
		if i < flows/2 {
			ts += 10 * int64(time.Microsecond)
		} else {
			ts += 20 * int64(time.Millisecond)
		}
		id := uint32(i)
		seq := [2]uint32{rng.Uint32(), rng.Uint32()}
		send := func(rev bool, flags byte, payload []byte) {
			dir := 0
			if rev {
				dir = 1
			}
			s := seq[dir]
			if len(payload) > 0 && rng.IntN(8) == 0 { // out of order: ahead of a gap
				s += uint32(1 + rng.IntN(3000))
			}
			d.Packet(layers.LinkTypeRaw, floodFrame(frame, id, rev, s, flags, payload), ts, 40+len(payload))
			r.packets++
			seq[dir] = s + uint32(len(payload))
			if flags&0x02 != 0 {
				seq[dir]++
			}
			if n := st.Stream.Memory.Load(); n > r.maxMemory {
				r.maxMemory = n
			}
			if n := st.Stream.Flows.Load(); n > r.maxFlows {
				r.maxFlows = n
			}
		}
		if rng.IntN(2) == 0 {
			send(false, 0x02, nil)
		}
		segments := 1 + rng.IntN(4)
		kind := rng.IntN(20)
		for s := range segments {
			rev := rng.IntN(8) == 0
			n := 1 + rng.IntN(maxPayload)
			var p []byte
			switch {
			case s == 0 && kind < 5: // SIP start, header never ends
				hdr = append(append(hdr[:0], floodSIPStart...), lines[:max(0, n-len(floodSIPStart))]...)
				p = hdr[:min(len(hdr), maxPayload)]
			case kind < 5: // more header lines of the same
				o := rng.IntN(len(lines) - n)
				p = lines[o : o+n]
			case s == 0 && kind < 7:
				hdr = append(append(hdr[:0], floodSIPWhole...), rnd(max(0, n-len(floodSIPWhole)))...)
				p = hdr[:min(len(hdr), maxPayload)]
			case s == 0 && kind == 7:
				hdr = append(append(hdr[:0], "HEP3"...), rnd(max(0, n-4))...)
				p = hdr[:min(len(hdr), maxPayload)]
			default:
				p = rnd(n)
			}
			send(rev, 0, p)
		}
		switch rng.IntN(10) {
		case 0:
			send(false, 0x01, nil) // FIN
		case 1:
			send(rng.IntN(2) == 0, 0x04, nil) // RST
		}
		if sampleEvery > 0 && (i+1)%sampleEvery == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			r.heapPeak = max(r.heapPeak, ms.HeapInuse)
			r.allocPeak = max(r.allocPeak, ms.HeapAlloc)
			if testing.Verbose() {
				tb.Logf("%d flows: heap in use %.1f MiB, live %.1f MiB, reassembly %.1f MiB, flows %d", i+1,
					float64(ms.HeapInuse)/(1<<20), float64(ms.HeapAlloc)/(1<<20), float64(st.Stream.Memory.Load())/(1<<20), st.Stream.Flows.Load())
			}
		}
	}
	r.elapsed = time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	r.heapAfter, r.allocAfter = ms.HeapInuse, ms.HeapAlloc
	r.heapPeak, r.allocPeak = max(r.heapPeak, r.heapAfter), max(r.allocPeak, r.allocAfter)
	runtime.KeepAlive(d)
	r.limit = st.Stream.Evicted(stream.EvictLimit)
	r.timeout = st.Stream.Evicted(stream.EvictTimeout)
	r.memory = st.Stream.Evicted(stream.EvictMemory)
	r.resyncs, r.gaps, r.outOfOrde = st.Stream.Resyncs.Load(), st.Stream.Gaps.Load(), st.Stream.OutOfOrder.Load()
	if got := st.Requests.Load() + st.Responses.Load(); got != r.messages {
		tb.Fatalf("requests+responses = %d, handler called %d times", got, r.messages)
	}
	// The bounds: the flow table, and the budget, which one flow may pass
	// by the growth of one segment (its buffer, up to twice its bound in
	// capacity, and its held segments, up to twice the bound).
	if r.maxFlows > int64(cfg.TCP.MaxFlows) {
		tb.Fatalf("tcp flows reached %d, bound %d", r.maxFlows, cfg.TCP.MaxFlows)
	}
	if bound := cfg.TCP.MaxMemoryBytes + 4*int64(cfg.TCP.MaxBufferBytes); r.maxMemory > bound {
		tb.Fatalf("tcp reassembly memory reached %d bytes, bound %d", r.maxMemory, bound)
	}
	return r
}

// floodHeapBound is the live heap (HeapAlloc) a flood may add to what was
// live before it: the memory budget, floodFlowBytes per flow of the table (the
// flow's state, its map entry and a kept buffer of up to 8 KiB for the
// free list's 1,024 flows), and 8 MiB for the rest (the frame and random
// blocks of the test, the IP fragment table).
func floodHeapBound(cfg decode.Config) uint64 {
	return uint64(cfg.TCP.MaxMemoryBytes) + uint64(cfg.TCP.MaxFlows)*floodFlowBytes + 1024*8<<10 + 8<<20
}

// floodFlowBytes bounds the heap of one tracked flow outside the budget:
// its tcpFlow (about 300 bytes) and its entry in the flow map.
const floodFlowBytes = 512

// TestTCPFloodSmall is the flood of BenchmarkTCPFlood at a small scale,
// quick enough for every test run: 20,000 flows through a table of 1,024
// flows with a 256 KiB budget (with -short, 4,000 flows, 256, 64 KiB, 2 s). Nothing panics, the flow and memory gauges
// stay within their bounds, and every eviction reason occurs.
func TestTCPFloodSmall(t *testing.T) {
	cfg := decode.DefaultConfig()
	cfg.TCP.MaxFlows, cfg.TCP.MaxBufferBytes, cfg.TCP.MaxMemoryBytes = 1024, 4096, 256<<10
	cfg.TCP.FlowTimeout = 10 * time.Second
	flows := 20_000
	if testing.Short() { // the race detector's run: a fifth of it
		flows, cfg.TCP.MaxFlows, cfg.TCP.MaxMemoryBytes, cfg.TCP.FlowTimeout = 4_000, 256, 64<<10, 2*time.Second
	}
	r := runTCPFlood(t, cfg, flows, 1460, 0)
	t.Logf("%d packets, %d messages, evictions limit %d timeout %d memory %d, max memory %d, max flows %d, %v",
		r.packets, r.messages, r.limit, r.timeout, r.memory, r.maxMemory, r.maxFlows, r.elapsed)
	if r.limit == 0 || r.timeout == 0 || r.memory == 0 {
		t.Errorf("evictions limit %d, timeout %d, memory %d: want each reason", r.limit, r.timeout, r.memory)
	}
	if r.messages == 0 {
		t.Error("no SIP message counted among the flows that carry one")
	}
	if got, bound := r.allocAfter-min(r.allocAfter, r.allocBefore), floodHeapBound(cfg); got > bound {
		t.Errorf("live heap grew by %d bytes, bound %d", got, bound)
	}
}

// BenchmarkTCPFlood sends 1,000,000 TCP flows of random data (see
// runTCPFlood) through one decoder with the default configuration: 65,536
// flows, 5 minute timeout, 128 KiB per flow, 64 MiB budget. It reports the
// heap in use before, at its sampled peak and after (MiB), the evictions
// by reason, the highest reassembly memory and the flows per second, and
// fails when a gauge or the live heap passes its bound (floodHeapBound).
// Heap in use (HeapInuse) is reported beside the live heap: it counts the
// free room of the spans that the varied buffer sizes leave, which the
// budget does not see.
//
//	go test ./capture/decode/ -run '^$' -bench TCPFlood -benchtime 1x
func BenchmarkTCPFlood(b *testing.B) {
	const flows = 1_000_000
	cfg := decode.DefaultConfig()
	for b.Loop() {
		r := runTCPFlood(b, cfg, flows, 8192, 100_000)
		const mib = 1 << 20
		b.ReportMetric(float64(r.heapBefore)/mib, "heap-MiB-before")
		b.ReportMetric(float64(r.heapPeak)/mib, "heap-MiB-peak")
		b.ReportMetric(float64(r.heapAfter)/mib, "heap-MiB-after")
		b.ReportMetric(float64(r.allocBefore)/mib, "live-MiB-before")
		b.ReportMetric(float64(r.allocPeak)/mib, "live-MiB-peak")
		b.ReportMetric(float64(r.allocAfter)/mib, "live-MiB-after")
		b.ReportMetric(float64(r.maxMemory)/mib, "reassembly-MiB-max")
		b.ReportMetric(float64(r.maxFlows), "flows-max")
		b.ReportMetric(float64(r.limit), "evicted-limit")
		b.ReportMetric(float64(r.timeout), "evicted-timeout")
		b.ReportMetric(float64(r.memory), "evicted-memory")
		b.ReportMetric(float64(r.packets), "packets")
		b.ReportMetric(float64(r.messages), "messages")
		b.ReportMetric(float64(flows)/r.elapsed.Seconds(), "flows/s")
		b.Logf("resyncs %d, gaps %d, out of order %d, %v", r.resyncs, r.gaps, r.outOfOrde, r.elapsed)
		if got, bound := r.allocPeak-min(r.allocPeak, r.allocBefore), floodHeapBound(cfg); got > bound {
			b.Fatalf("live heap grew by %d bytes at its peak, bound %d", got, bound)
		}
	}
}
