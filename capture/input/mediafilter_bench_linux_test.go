//go:build linux

package input

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// BenchmarkLiveMediaMix measures the whole sip_exporter process capturing
// a mirror-port mix of 95 % RTP and 5 % SIP, with and without the default
// media filter, and, for comparison, the SIP of the mix alone at its rate
// in the mix (what the process would use if RTP cost nothing): the binary runs in a network namespace of its own
// (sxbpf-PID-a) on one end of a veth pair, tcpreplay sends the mix into
// the other end (sxbpf-PID-b; --unique-ip, so that a loop of the file is
// not a copy of the one before), and the CPU the process used comes from
// /proc/PID/stat (utime + stime). It needs root and tcpreplay;
// SXBPF_PACKETS and SXBPF_PPS set the packets of the mix sent (default
// 4,000,000) and their rate (default 200,000/s). Run it with -benchtime 1x.
func BenchmarkLiveMediaMix(b *testing.B) {
	packets, pps := envInt(b, "SXBPF_PACKETS", 4_000_000), envInt(b, "SXBPF_PPS", 200_000)
	lb := newLiveBench(b, "sxbpf")
	const perFile = 100_000
	mix, sipOnly := filepath.Join(lb.dir, "mix.pcap"), filepath.Join(lb.dir, "sip.pcap")
	writeMediaMix(b, mix, perFile, false, 1)
	writeMediaMix(b, sipOnly, perFile, true, 1)
	b.ResetTimer()
	for b.Loop() {
		// The SIP of the mix alone, at its rate in the mix: what the
		// process would use if RTP cost nothing.
		for _, name := range []string{"filter", "no-filter", "sip-only"} {
			var args []string
			file, sent, rate, frames := mix, packets, pps, perFile
			switch name {
			case "no-filter":
				args = append(args, "--no-capture.filter-rtp")
			case "sip-only":
				file, sent, rate, frames = sipOnly, packets/20, pps/20, perFile/20
			}
			r := lb.run(b, args, file, frames, sent, rate)
			seen := metricSum(r.metrics, "sip_exporter_packets_received_total")
			notSIP := metricSum(r.metrics, "sip_exporter_packets_skipped_total", `reason="not_sip"`)
			dropped := metricSum(r.metrics, "sip_exporter_packets_dropped_total", `reason="kernel"`)
			us := float64(r.ticks) * 1e6 / 100 / float64(packets) // USER_HZ is 100; per packet of the mix
			b.ReportMetric(us, name+"-cpu-µs/pkt")
			b.Logf("%s: %d packets sent in %v, %d ticks of CPU: %.3f CPU-µs per packet of the mix; %.0f packets reached user space (%.0f not SIP), %.0f kernel drops, %s",
				name, sent, r.elapsed.Round(time.Millisecond), r.ticks, us, seen, notSIP, dropped, responses(r.metrics))
		}
	}
}

// liveBench is the set-up of the whole-process live benchmarks: the
// sip_exporter binary, built into dir, and a veth pair between two
// network namespaces of their own, PREFIX-PID-a (end PREFIX0, where the
// exporter captures) and PREFIX-PID-b (end PREFIX1, where tcpreplay
// sends). A cleanup deletes the namespaces. It needs root and tcpreplay.
type liveBench struct {
	dir, bin string
	a, c     string // namespaces
	dev      string // the captured end, in a
	peer     string // the sending end, in c
}

func newLiveBench(b *testing.B, prefix string) *liveBench {
	b.Helper()
	requireRoot(b)
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		b.Skip("needs tcpreplay")
	}
	lb := &liveBench{dir: b.TempDir(), a: fmt.Sprintf("%s-%d-a", prefix, os.Getpid()), c: fmt.Sprintf("%s-%d-b", prefix, os.Getpid()),
		dev: prefix + "0", peer: prefix + "1"}
	lb.bin = filepath.Join(lb.dir, "sip_exporter")
	if out, err := exec.Command("go", "build", "-o", lb.bin, "github.com/sip-exporter/sip_exporter/cmd/sip_exporter").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	lb.cmd(b, "ip", "netns", "add", lb.a)
	b.Cleanup(func() { exec.Command("ip", "netns", "del", lb.a).Run() }) //nolint:errcheck // best effort
	lb.cmd(b, "ip", "netns", "add", lb.c)
	b.Cleanup(func() { exec.Command("ip", "netns", "del", lb.c).Run() }) //nolint:errcheck // best effort
	lb.cmd(b, "ip", "link", "add", lb.dev, "netns", lb.a, "type", "veth", "peer", "name", lb.peer, "netns", lb.c)
	for _, ns := range [][2]string{{lb.a, lb.dev}, {lb.c, lb.peer}} {
		lb.cmd(b, "ip", "-n", ns[0], "link", "set", "lo", "up")
		lb.cmd(b, "ip", "-n", ns[0], "link", "set", ns[1], "up")
	}
	return lb
}

// cmd runs args and fails the benchmark with its output if it fails.
func (lb *liveBench) cmd(b *testing.B, args ...string) {
	b.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// liveRun is what one run of the exporter used and showed.
type liveRun struct {
	ticks   int           // utime + stime while the traffic was sent and 2.5 s after (USER_HZ ticks)
	elapsed time.Duration // that time
	metrics []byte        // the exposition scraped then
}

// run starts the exporter in namespace a on the captured end with
// --capture.promiscuous and args, lets it settle 2 s, sends sent packets
// of file (frames packets long, looped with --unique-ip so that a loop is
// not a copy of the one before) at rate packets/s, waits 2.5 s (past the
// ring's block timeout and the merge's lateness), scrapes it and stops it.
func (lb *liveBench) run(b *testing.B, args []string, file string, frames, sent, rate int) liveRun {
	b.Helper()
	args = append([]string{"netns", "exec", lb.a, lb.bin, "--capture.interface=" + lb.dev, "--capture.promiscuous",
		"--web.listen-address=127.0.0.1:9436", "--log.level=error"}, args...)
	cmd := exec.Command("ip", args...) // ip netns exec execs the binary: cmd's PID is the exporter's
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	time.Sleep(2 * time.Second) // started, capturing
	before := cpuTicks(b, cmd.Process.Pid)
	start := time.Now()
	lb.cmd(b, "ip", "netns", "exec", lb.c, "tcpreplay", "-q", "--unique-ip", "-i", lb.peer, "--pps="+strconv.Itoa(rate),
		"--limit="+strconv.Itoa(sent), "--loop="+strconv.Itoa(sent/frames+1), file)
	time.Sleep(2500 * time.Millisecond)
	r := liveRun{ticks: cpuTicks(b, cmd.Process.Pid) - before, elapsed: time.Since(start)}
	var err error
	if r.metrics, err = exec.Command("ip", "netns", "exec", lb.a, "curl", "-s", "http://127.0.0.1:9436/metrics").Output(); err != nil {
		b.Fatalf("metrics: %v", err)
	}
	cmd.Process.Signal(os.Interrupt) //nolint:errcheck // it is stopped either way
	cmd.Wait()                       //nolint:errcheck // interrupted
	return r
}

// writeMediaMix writes n Ethernet frames: in every 20, 19 RTP packets of
// 172 bytes (G.711, 20 ms) on 50 streams and one SIP message (an INVITE
// or its 200 OK, distinct Call-IDs). sipOnly leaves the RTP out. The
// calls' UAs take turns on flows addresses: 1 puts every call between
// 192.0.2.10 and 192.0.2.20; more gives each UA 10.80.X.Y of its own (a
// flow of its own).
func writeMediaMix(b *testing.B, path string, n int, sipOnly bool, flows int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		b.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, EthernetType: layers.EthernetTypeIPv4}
	ua, ub := net.IPv4(192, 0, 2, 10), net.IPv4(192, 0, 2, 20)
	buf := gopacket.NewSerializeBuffer()
	ts := time.Unix(1700000000, 0)
	rtp := make([]byte, 172)
	for i := range n {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ua, DstIP: ub, Id: uint16(i)}
		udp := &layers.UDP{SrcPort: 5060, DstPort: 5060}
		var payload []byte
		if i%20 == 19 {
			call := i / 40
			if flows > 1 {
				c := call % flows
				ip.SrcIP = net.IPv4(10, 80, byte(c/250), byte(1+c%250))
			}
			if i%40 == 19 {
				payload = fmt.Appendf(nil, "INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK%d\r\nFrom: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: mix-%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", call, call)
			} else {
				ip.SrcIP, ip.DstIP = ub, ip.SrcIP
				payload = fmt.Appendf(nil, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK%d\r\nFrom: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:bob@192.0.2.20>;tag=2\r\nCall-ID: mix-%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", call, call)
			}
		} else if sipOnly {
			continue
		} else {
			stream := uint16(i % 50)
			udp.SrcPort, udp.DstPort = layers.UDPPort(20000+2*stream), layers.UDPPort(30000+2*stream)
			rtp[0], rtp[1] = 0x80, 0x08
			rtp[2], rtp[3] = byte(i>>8), byte(i)
			payload = rtp
		}
		udp.SetNetworkLayerForChecksum(ip) //nolint:errcheck // IPv4 always works
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
			b.Fatal(err)
		}
		ts = ts.Add(5 * time.Microsecond)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}, buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// cpuTicks returns utime + stime of process pid (proc(5)), in USER_HZ ticks.
func cpuTicks(b *testing.B, pid int) int {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+2:])) // fields from 3 on
	u, _ := strconv.Atoi(f[11])                                              // field 14
	k, _ := strconv.Atoi(f[12])                                              // field 15
	return u + k
}

// metricSum adds the values of the samples whose line starts with prefix
// and holds each of labels.
func metricSum(exposition []byte, prefix string, labels ...string) float64 {
	var sum float64
	for l := range strings.SplitSeq(string(exposition), "\n") {
		ok := strings.HasPrefix(l, prefix)
		for _, lb := range labels {
			ok = ok && strings.Contains(l, lb)
		}
		if ok {
			if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// responses returns the counts of INVITEs and responses, and of copies
// and late messages, as a check.
func responses(exposition []byte) string {
	return fmt.Sprintf("%.0f INVITE requests and %.0f responses counted (%.0f copies removed, %.0f late)",
		metricSum(exposition, "sip_requests_total", `method="INVITE"`), metricSum(exposition, "sip_responses_total"),
		metricSum(exposition, "sip_exporter_duplicates_removed_total"), metricSum(exposition, "sip_exporter_messages_late_total"))
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
