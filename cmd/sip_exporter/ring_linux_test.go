//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/units"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestRingStall measures what the AF_PACKET ring (--capture.ring-size)
// absorbs while the exporter does not read it: a GC pause, a scheduling
// stall, a burst faster than the process. The shipped binary captures one
// end of a veth pair in a network namespace of its own (sipx-ring-PID-a;
// no IPv6, so that the kernel sends nothing of its own on the link);
// tcpreplay sends into the other end (sipx-ring-PID-b). For each ring size
// of SIP_EXPORTER_RING_SIZES (default 4MiB,16MiB,64MiB; 64MiB is run
// without the flag, as the default):
//
//   - burst: the process is stopped (SIGSTOP), a burst of frames is sent
//     at tcpreplay's top speed, the process is let go on (SIGCONT): the
//     packets read are what the ring held, the rest are kernel drops
//     (sip_exporter_packets_dropped_total{reason="kernel"}). Two kinds of
//     frames: SIP, calls as a SIP server sends them (INVITE with SDP, 100,
//     180, 200 with SDP, ACK, BYE, 200; every fifth call INVITE, 100, 486,
//     ACK) between 1,000 UAs and a server, and full-size frames of bulk
//     TCP transfers (1,514 bytes; 64 flows, then one), which pass the
//     default kernel filter as any TCP does. The capture workers' fanout
//     puts a flow on one worker, whose share of the ring alone holds it;
//   - stall: SIP at each rate of SIP_EXPORTER_RING_RATES packets a second
//     (default 10000,50000), the process stopped in the middle of it for
//     125 % of the time the ring's bytes would hold at that rate (from the
//     burst): what it absorbed is the stall less the drops at that rate;
//     then stopped for 80 % of what it absorbed, which should lose
//     nothing. The kernel closes a block when it is full or when the block
//     timeout (--capture.block-timeout, 64 ms) expires, so below a rate a
//     stall is bounded by a worker's blocks × 64 ms, not by the bytes: 32
//     blocks per worker (2 s) where the ring's share per worker holds 32
//     of 128 KiB, the smallest block (see input's ringBlockSize).
//
// It runs only with SIP_EXPORTER_RING=1, as root, with tcpreplay;
// SIP_EXPORTER_RING_ARGS adds flags (space separated), such as
// --capture.workers=1.
//
//	SIP_EXPORTER_RING=1 go test ./cmd/sip_exporter/ -run TestRingStall -v -timeout 30m
func TestRingStall(t *testing.T) {
	if os.Getenv("SIP_EXPORTER_RING") == "" {
		t.Skip("set SIP_EXPORTER_RING=1 to measure kernel drops against --capture.ring-size (root, tcpreplay; minutes)")
	}
	requireLive(t, "tcpreplay")
	var rates []int
	for s := range strings.SplitSeq(envString("SIP_EXPORTER_RING_RATES", "10000,50000"), ",") {
		r, err := strconv.Atoi(s)
		if err != nil || r <= 0 {
			t.Fatalf("SIP_EXPORTER_RING_RATES: %q: want positive integers", s)
		}
		rates = append(rates, r)
	}
	var sizes []units.Base2Bytes
	for s := range strings.SplitSeq(envString("SIP_EXPORTER_RING_SIZES", "4MiB,16MiB,64MiB"), ",") {
		b, err := units.ParseBase2Bytes(s)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, b)
	}
	largest := sizes[0]
	for _, s := range sizes {
		largest = max(largest, s)
	}
	bin := os.Getenv("SIP_EXPORTER_BIN")
	if bin == "" {
		bin = buildExporter(t)
	}
	// Frames enough to overflow the largest ring: a slot takes at least
	// the frame, and SIP frames are over 400 bytes.
	dir := t.TempDir()
	sipFile, sipFrames, sipBytes := writeRingSIP(t, filepath.Join(dir, "sip.pcap"), int(largest)/400+1)
	tcpFile, tcpFrames, tcpBytes := writeRingTCP(t, filepath.Join(dir, "tcp.pcap"), 2*int(largest)/1514, 64)
	tcp1File, _, _ := writeRingTCP(t, filepath.Join(dir, "tcp1.pcap"), tcpFrames, 1)
	sipMean := float64(sipBytes) / float64(sipFrames)
	t.Logf("SIP: %d frames, %.0f bytes on average; TCP: %d frames of %.0f bytes", sipFrames, sipMean, tcpFrames, float64(tcpBytes)/float64(tcpFrames))

	pid := os.Getpid()
	a, b := fmt.Sprintf("sipx-ring-%d-a", pid), fmt.Sprintf("sipx-ring-%d-b", pid)
	vethA, vethB := fmt.Sprintf("sxr%da", pid), fmt.Sprintf("sxr%db", pid)
	addNetns(t, "network namespaces unavailable", a, b)
	steps := [][]string{{"link", "add", vethA, "netns", a, "address", "02:00:00:00:00:02", "type", "veth", "peer", "name", vethB, "netns", b}}
	for _, ns := range [][2]string{{a, vethA}, {b, vethB}} {
		steps = append(steps,
			[]string{"netns", "exec", ns[0], "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
			[]string{"-n", ns[0], "link", "set", "lo", "up"},
			[]string{"-n", ns[0], "link", "set", ns[1], "up"})
	}
	ipSteps(t, steps)

	for _, size := range sizes {
		t.Run(size.String(), func(t *testing.T) {
			args := append([]string{"--capture.interface=" + vethA, "--log.level=warn"}, strings.Fields(os.Getenv("SIP_EXPORTER_RING_ARGS"))...)
			if size != 64<<20 {
				args = append(args, "--capture.ring-size="+size.String())
			}
			e := startExporterInNetns(t, a, bin, args...)
			if err := e.waitSourceUp(vethA, "interface", 15*time.Second); err != nil {
				t.Fatal(err)
			}
			r := ringRun{t: t, e: e, ns: b, veth: vethB, iface: vethA}
			held := 0
			for _, f := range []struct {
				name   string
				file   string
				frames int
				bytes  int64
			}{{"SIP", sipFile, sipFrames, sipBytes}, {"TCP (64 flows)", tcpFile, tcpFrames, tcpBytes}, {"TCP (one flow)", tcp1File, tcpFrames, tcpBytes}} {
				n := min(f.frames, 2*int(size)/int(f.bytes/int64(f.frames))+1000)
				read, drops, speed, workers := r.burst(f.file, n)
				mean := float64(f.bytes) / float64(f.frames)
				t.Logf("ring %s, stopped, burst of %d %s frames (%s): %d read (by worker: %v), %d kernel drops: the ring held %d frames, %.0f bytes of ring per frame of %.0f bytes, %.0f ms of 1 Gbit/s",
					size, n, f.name, speed, read, workers, drops, read, float64(size)/float64(read), mean, float64(read)*mean*8/1e9*1e3)
				if f.name == "SIP" {
					held = read
				}
			}
			if held == 0 {
				t.Fatal("the ring held no SIP frame")
			}
			for _, rate := range rates {
				// A stall past what the ring's bytes hold at this rate
				// (the block timeout may close blocks before they are
				// full), then one of 80 % of what that absorbed.
				over := time.Duration(1.25 * float64(held) / float64(rate) * float64(time.Second))
				read, drops, sent := r.stall(sipFile, rate, over)
				absorbed := over - time.Duration(float64(drops)/float64(rate)*float64(time.Second))
				t.Logf("ring %s, %d SIP packets/s (%.1f Mbit/s), stopped %v: %d sent, %d read, %d kernel drops: it absorbed %v (%d packets)",
					size, rate, float64(rate)*sipMean*8/1e6, over.Round(time.Millisecond), sent, read, drops, absorbed.Round(time.Millisecond),
					int(absorbed.Seconds()*float64(rate)))
				within := absorbed * 8 / 10
				read, drops, sent = r.stall(sipFile, rate, within)
				t.Logf("ring %s, %d SIP packets/s, stopped %v (80 %%): %d sent, %d read, %d kernel drops",
					size, rate, within.Round(time.Millisecond), sent, read, drops)
			}
		})
	}
}

// ringRun is the exporter of one ring size and the veth end it is fed
// through.
type ringRun struct {
	t     *testing.T
	e     *exporterProcess
	ns    string // namespace of veth, where tcpreplay runs
	veth  string
	iface string // the interface the exporter captures
}

// counters returns the packets read from the interface, its kernel drops
// so far, and the packets of each capture worker.
func (r ringRun) counters() (read, drops int, workers []int) {
	r.t.Helper()
	_, mfs, err := r.e.scrape()
	if err != nil {
		r.t.Fatal(err)
	}
	rd, _ := gaugeValue(mfs, "sip_exporter_packets_received_total", map[string]string{"source": r.iface})
	dr, _ := gaugeValue(mfs, "sip_exporter_packets_dropped_total", map[string]string{"source": r.iface, "reason": "kernel"})
	for i := 0; ; i++ {
		v, ok := gaugeValue(mfs, "sip_exporter_capture_worker_packets_total", map[string]string{"source": r.iface, "worker": strconv.Itoa(i)})
		if !ok {
			break
		}
		workers = append(workers, int(v))
	}
	return int(rd), int(dr), workers
}

// signal sends sig to the exporter.
func (r ringRun) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.e.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

// settled waits until the exporter has read what the ring holds and
// published its kernel drops (read every second), and returns the
// counters.
func (r ringRun) settled() (read, drops int, workers []int) {
	r.t.Helper()
	time.Sleep(3 * time.Second)
	return r.counters()
}

// burst stops the exporter, sends the first n frames of file at top speed,
// lets the exporter go on and returns the packets it read, the kernel
// drops, the speed tcpreplay reports and the packets each worker read.
func (r ringRun) burst(file string, n int) (read, drops int, speed string, workers []int) {
	r.t.Helper()
	read0, drops0, workers0 := r.settled()
	r.signal(syscall.SIGSTOP)
	time.Sleep(200 * time.Millisecond) // every thread stopped
	out, err := exec.Command("ip", "netns", "exec", r.ns, "tcpreplay", "--topspeed", "--limit="+strconv.Itoa(n), "-i", r.veth, file).CombinedOutput()
	r.signal(syscall.SIGCONT)
	if err != nil {
		r.t.Fatalf("tcpreplay: %v\n%s", err, out)
	}
	read1, drops1, workers := r.settled()
	for l := range strings.SplitSeq(string(out), "\n") {
		if rated, ok := strings.CutPrefix(strings.TrimSpace(l), "Rated:"); ok {
			speed = strings.TrimSpace(rated)
		}
	}
	for i := range min(len(workers), len(workers0)) {
		workers[i] -= workers0[i]
	}
	return read1 - read0, drops1 - drops0, speed, workers
}

// stall sends file at rate packets a second for stall and 4 s more,
// stopping the exporter 1 s after the start for stall, and returns the
// packets it read, the kernel drops and the packets sent.
func (r ringRun) stall(file string, rate int, stall time.Duration) (read, drops, sent int) {
	r.t.Helper()
	read0, drops0, _ := r.settled()
	sent = int(float64(rate) * (stall + 4*time.Second).Seconds())
	cmd := exec.Command("ip", "netns", "exec", r.ns, "tcpreplay", "-q", "--pps="+strconv.Itoa(rate), "--limit="+strconv.Itoa(sent),
		"--loop=0", "-i", r.veth, file)
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	time.Sleep(time.Second)
	r.signal(syscall.SIGSTOP)
	time.Sleep(stall)
	r.signal(syscall.SIGCONT)
	if err := cmd.Wait(); err != nil {
		r.t.Fatalf("tcpreplay: %v\n%s", err, out.String())
	}
	read1, drops1, _ := r.settled()
	return read1 - read0, drops1 - drops0, sent
}

// writeRingSIP writes at least n frames of SIP calls (loadCall's messages,
// every fifth call rejected) between 1,000 UAs (10.1.0.0/22, port 5060, a
// flow each, so that the capture workers' fanout spreads them) and a
// server, 192.0.2.2:5060, 10 µs apart, and returns the file, the frames
// and their bytes.
func writeRingSIP(t *testing.T, path string, n int) (string, int, int64) {
	t.Helper()
	w := createPcap(t, path)
	calls := [2][]loadMsg{loadCall(false), loadCall(true)}
	b := net.IPv4(192, 0, 2, 2)
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var payload []byte
	frames, total := 0, int64(0)
	for call := 0; frames < n; call++ {
		ua := call % 1000
		a := net.IPv4(10, 1, byte(ua/250), byte(1+ua%250))
		for _, m := range calls[b2i(call%5 != 4)] {
			src, dst := a, b
			if m.fromUAS {
				src, dst = b, a
			}
			payload = m.render(payload[:0], call)
			w.udp(t, start.Add(time.Duration(frames)*10*time.Microsecond), uint16(frames), src, dst, payload)
			frames++
			total += int64(14 + 20 + 8 + len(payload))
		}
	}
	w.close(t)
	return path, frames, total
}

// writeRingTCP writes n full-size frames (1,514 bytes) of flows bulk TCP
// transfers, taking turns, from 192.0.2.3:443 to 192.0.2.4, ports 50000
// on, 10 µs apart, and returns the file, the frames and their bytes.
func writeRingTCP(t *testing.T, path string, n, flows int) (string, int, int64) {
	t.Helper()
	w := createPcap(t, path)
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	payload := make([]byte, 1514-14-20-20)
	for i := range payload {
		payload[i] = byte(i*7 + 1)
	}
	for i := range n {
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(i), SrcIP: net.IPv4(192, 0, 2, 3), DstIP: net.IPv4(192, 0, 2, 4), Protocol: layers.IPProtocolTCP}
		tcp := &layers.TCP{SrcPort: 443, DstPort: layers.TCPPort(50000 + i%flows), Seq: uint32(1 + i/flows*len(payload)), Ack: 1, ACK: true, PSH: true, Window: 65535}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		w.frame(t, start.Add(time.Duration(i)*10*time.Microsecond), ip, tcp, gopacket.Payload(payload))
	}
	w.close(t)
	return path, n, int64(n) * 1514
}
