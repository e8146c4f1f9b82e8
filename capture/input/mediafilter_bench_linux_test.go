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
	requireRoot(b)
	if _, err := exec.LookPath("tcpreplay"); err != nil {
		b.Skip("needs tcpreplay")
	}
	packets, pps := envInt(b, "SXBPF_PACKETS", 4_000_000), envInt(b, "SXBPF_PPS", 200_000)
	dir := b.TempDir()
	bin := filepath.Join(dir, "sip_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sip-exporter/sip_exporter/cmd/sip_exporter").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	const perFile = 100_000
	mix, sipOnly := filepath.Join(dir, "mix.pcap"), filepath.Join(dir, "sip.pcap")
	writeMediaMix(b, mix, perFile, false)
	writeMediaMix(b, sipOnly, perFile, true)
	a, c := fmt.Sprintf("sxbpf-%d-a", os.Getpid()), fmt.Sprintf("sxbpf-%d-b", os.Getpid())
	run := func(args ...string) {
		b.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", a)
	b.Cleanup(func() { exec.Command("ip", "netns", "del", a).Run() }) //nolint:errcheck // best effort
	run("ip", "netns", "add", c)
	b.Cleanup(func() { exec.Command("ip", "netns", "del", c).Run() }) //nolint:errcheck // best effort
	run("ip", "link", "add", "sxbpf0", "netns", a, "type", "veth", "peer", "name", "sxbpf1", "netns", c)
	for _, ns := range [][2]string{{a, "sxbpf0"}, {c, "sxbpf1"}} {
		run("ip", "-n", ns[0], "link", "set", "lo", "up")
		run("ip", "-n", ns[0], "link", "set", ns[1], "up")
	}
	b.ResetTimer()
	for b.Loop() {
		// The SIP of the mix alone, at its rate in the mix: what the
		// process would use if RTP cost nothing.
		for _, name := range []string{"filter", "no-filter", "sip-only"} {
			args := []string{"netns", "exec", a, bin, "--capture.interface=sxbpf0", "--capture.promiscuous",
				"--web.listen-address=127.0.0.1:9436", "--log.level=error"}
			file, sent, rate := mix, packets, pps
			switch name {
			case "no-filter":
				args = append(args, "--no-capture.filter-rtp")
			case "sip-only":
				file, sent, rate = sipOnly, packets/20, pps/20
			}
			frames := perFile
			if file == sipOnly {
				frames = perFile / 20
			}
			cmd := exec.Command("ip", args...) // ip netns exec execs the binary: cmd's PID is the exporter's
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(2 * time.Second) // started, capturing
			before := cpuTicks(b, cmd.Process.Pid)
			start := time.Now()
			run("ip", "netns", "exec", c, "tcpreplay", "-q", "--unique-ip", "-i", "sxbpf1", "--pps="+strconv.Itoa(rate),
				"--limit="+strconv.Itoa(sent), "--loop="+strconv.Itoa(sent/frames+1), file)
			time.Sleep(2500 * time.Millisecond) // past the ring's block timeout and the merge's lateness (1s)
			ticks := cpuTicks(b, cmd.Process.Pid) - before
			elapsed := time.Since(start)
			metrics, err := exec.Command("ip", "netns", "exec", a, "curl", "-s", "http://127.0.0.1:9436/metrics").Output()
			if err != nil {
				b.Fatalf("metrics: %v", err)
			}
			cmd.Process.Signal(os.Interrupt) //nolint:errcheck // it is stopped either way
			cmd.Wait()                       //nolint:errcheck // interrupted
			seen := metricSum(metrics, "sip_exporter_packets_received_total")
			notSIP := metricSum(metrics, "sip_exporter_packets_skipped_total", `reason="not_sip"`)
			dropped := metricSum(metrics, "sip_exporter_packets_dropped_total", `reason="kernel"`)
			us := float64(ticks) * 1e6 / 100 / float64(packets) // USER_HZ is 100; per packet of the mix
			b.ReportMetric(us, name+"-cpu-µs/pkt")
			b.Logf("%s: %d packets sent in %v, %d ticks of CPU: %.3f CPU-µs per packet of the mix; %.0f packets reached user space (%.0f not SIP), %.0f kernel drops, %s",
				name, sent, elapsed.Round(time.Millisecond), ticks, us, seen, notSIP, dropped, responses(metrics))
		}
	}
}

// writeMediaMix writes n Ethernet frames: in every 20, 19 RTP packets of
// 172 bytes (G.711, 20 ms) on 50 streams and one SIP message (an INVITE
// or its 200 OK, distinct Call-IDs). sipOnly leaves the RTP out.
func writeMediaMix(b *testing.B, path string, n int, sipOnly bool) {
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
			if i%40 == 19 {
				payload = fmt.Appendf(nil, "INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK%d\r\nFrom: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: mix-%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", call, call)
			} else {
				ip.SrcIP, ip.DstIP = ub, ua
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
