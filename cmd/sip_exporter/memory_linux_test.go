//go:build linux

package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	dto "github.com/prometheus/client_model/go"
)

// The memory measurements of issue 12 (part 5) run the shipped binary and
// read its memory from /proc/PID/status and from its own go_memstats_*
// metrics. They run only with SIP_EXPORTER_MEMORY=1; SIP_EXPORTER_BIN runs
// another binary.

// requireMemoryRun skips unless SIP_EXPORTER_MEMORY is set and returns the
// binary to measure.
func requireMemoryRun(t *testing.T) string {
	t.Helper()
	if os.Getenv("SIP_EXPORTER_MEMORY") == "" {
		t.Skip("set SIP_EXPORTER_MEMORY=1 to measure the binary's memory (minutes; interfaces need root)")
	}
	if bin := os.Getenv("SIP_EXPORTER_BIN"); bin != "" {
		return bin
	}
	return buildExporter(t)
}

// procStatus returns the kB fields of /proc/PID/status (VmRSS, VmHWM,
// RssAnon, RssFile, ...).
func procStatus(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kb := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if v, unit := strings.CutSuffix(strings.TrimSpace(v), " kB"); ok && unit {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				kb[k] = n
			}
		}
	}
	return kb
}

// socketMappings returns the size and the resident part (kB) of pid's
// mappings of sockets, from /proc/PID/smaps: the AF_PACKET rings.
func socketMappings(t *testing.T, pid int) (size, rss int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	socket := false
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			socket = len(f) >= 6 && strings.HasPrefix(f[5], "socket:")
		case socket && len(f) == 3 && f[0] == "Size:":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			size += n
		case socket && len(f) == 3 && f[0] == "Rss:":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			rss += n
		}
	}
	return size, rss
}

// memLine renders what the process holds: /proc/PID/status and, from the
// exposition mfs, the Go runtime's figures.
func memLine(t *testing.T, pid int, mfs map[string]*dto.MetricFamily) string {
	t.Helper()
	st := procStatus(t, pid)
	ringSize, ringRSS := socketMappings(t, pid)
	mib := func(kb int64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }
	s := fmt.Sprintf("VmRSS %s MiB, VmHWM %s (RssAnon %s, RssFile %s, of which socket mappings %s of %s)",
		mib(st["VmRSS"]), mib(st["VmHWM"]), mib(st["RssAnon"]), mib(st["RssFile"]), mib(ringRSS), mib(ringSize))
	if mfs != nil {
		g := func(name string) string {
			v, _ := gaugeValue(mfs, name, nil)
			return fmt.Sprintf("%.1f", v/(1<<20))
		}
		s += fmt.Sprintf("; Go: heap_alloc %s MiB, heap_inuse %s, heap_idle %s, heap_released %s, heap_sys %s, stack %s, sys %s, next_gc %s",
			g("go_memstats_heap_alloc_bytes"), g("go_memstats_heap_inuse_bytes"), g("go_memstats_heap_idle_bytes"),
			g("go_memstats_heap_released_bytes"), g("go_memstats_heap_sys_bytes"), g("go_memstats_stack_inuse_bytes"),
			g("go_memstats_sys_bytes"), g("go_memstats_next_gc_bytes"))
	}
	return s
}

// memoryIdleSettle is how long an idle exporter runs before it is scraped.
const memoryIdleSettle = 5 * time.Second

// The traffic that touches the ring of the idle measurement: 200,000
// responses of 560 bytes (about 130 MiB of ring slots, twice around the
// default ring) at 20,000 a second.
const (
	loResponses    = 200_000
	loResponseRate = 20_000
)

// TestMemoryIdle measures the idle exporter with its defaults: with a HEP
// listener as its only source; and capturing lo in a network namespace of
// its own (nothing else's traffic), with the default 64 MiB ring and with a
// 4 MiB one; each scraped once after 5 s. The 64 MiB run is then sent
// 200,000 datagrams of a 200 OK with SDP at 20,000 a second (every block
// of the ring is written, twice) and measured again.
//
//	SIP_EXPORTER_MEMORY=1 go test ./cmd/sip_exporter/ -run TestMemoryIdle -v
func TestMemoryIdle(t *testing.T) {
	bin := requireMemoryRun(t)
	t.Run("hep", func(t *testing.T) {
		addr := freeUDPAddrOn(t, "127.0.0.1")
		e := startExporter(t, bin, "--hep.listen-address="+addr, "--log.level=warn")
		if err := e.waitSourceUp("udp://"+addr, "hep", 15*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(memoryIdleSettle)
		_, mfs, err := e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("HEP listener, idle, scraped once: %s", memLine(t, e.cmd.Process.Pid, mfs))
	})
	for _, ring := range []string{"", "4MiB"} {
		name := "lo"
		if ring != "" {
			name += "-" + ring
		}
		t.Run(name, func(t *testing.T) {
			requireLive(t)
			ns := fmt.Sprintf("sipx-mem-%d", os.Getpid())
			addNetns(t, "network namespaces unavailable", ns)
			ipSteps(t, [][]string{{"-n", ns, "link", "set", "lo", "up"}})
			args := []string{"--capture.interface=lo", "--log.level=warn"}
			if ring != "" {
				args = append(args, "--capture.ring-size="+ring)
			}
			e := startExporterInNetns(t, ns, bin, args...)
			if err := e.waitSourceUp("lo", "interface", 15*time.Second); err != nil {
				t.Fatal(err)
			}
			pid := e.cmd.Process.Pid
			time.Sleep(memoryIdleSettle)
			_, mfs, err := e.scrape()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("lo, ring %q, idle, scraped once: %s", ring, memLine(t, pid, mfs))
			if ring != "" {
				return
			}
			sent, took := sendLoResponses(t, ns, loResponses, loResponseRate)
			time.Sleep(3 * time.Second) // the last block handed over, the merge's lateness past
			_, mfs, err = e.scrape()
			if err != nil {
				t.Fatal(err)
			}
			src := map[string]string{"source": "lo"}
			read, _ := gaugeValue(mfs, "sip_exporter_packets_received_total", src)
			bytesRead, _ := gaugeValue(mfs, "sip_exporter_bytes_received_total", src)
			drops, _ := gaugeValue(mfs, "sip_exporter_packets_dropped_total", map[string]string{"source": "lo", "reason": "kernel"})
			t.Logf("sent %d datagrams in %v; read %.0f packets (%.1f MiB), %.0f kernel drops", sent, took.Round(time.Millisecond), read, bytesRead/(1<<20), drops)
			t.Logf("lo, after the traffic, scraped: %s", memLine(t, pid, mfs))
		})
	}
}

// sendLoResponses sends n datagrams of a 200 OK with SDP (each its own
// call) to 127.0.0.1:5060 from inside network namespace ns, rate per
// second (paced each millisecond), and returns how many it sent and how
// long it took. A socket that is never read is bound there, so that no
// ICMP port unreachable comes back. A response without its request is
// held a moment and counted as unmatched: it grows no table.
func sendLoResponses(t *testing.T, ns string, n, rate int) (int, time.Duration) {
	t.Helper()
	sink, err := inNetns(ns, func() (*net.UDPConn, error) {
		return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	c, err := inNetns(ns, func() (*net.UDPConn, error) {
		return net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ok := loadCall(true)[3] // 200 OK with SDP
	var buf []byte
	sent := 0
	start := time.Now()
	for i := range n {
		for int64(i) >= int64(rate)*int64(time.Since(start))/int64(time.Second) {
			time.Sleep(time.Millisecond)
		}
		buf = ok.render(buf[:0], i)
		if _, err := c.Write(buf); err == nil {
			sent++
		}
	}
	return sent, time.Since(start)
}

// render appends m's text with call number v in its places.
func (m loadMsg) render(dst []byte, v int) []byte {
	off := len(dst)
	dst = append(dst, m.text...)
	num := fmt.Appendf(nil, "%010d", v)
	for _, at := range m.callNums {
		copy(dst[off+at:], num)
	}
	return dst
}

// TestMemoryOpenTransactions measures the whole process holding
// SIP_EXPORTER_MEMORY_TX (default 1,000,000) open transactions, and as
// many answered dialogs, with the defaults (--sip.max-transactions
// 1,000,000, --sip.invite-timeout 180s, --sip.session-max-age 4h). It
// writes two captures, spaced at SIP_EXPORTER_MEMORY_RATE messages per
// second (default 50,000):
//
//   - invites: that many INVITEs that get no response;
//   - dialogs: as many INVITEs each answered by a 200 OK (no ACK, no BYE):
//     open transactions and open dialogs.
//
// Each is run with the defaults and, as the baseline, with the same
// messages but transactions and dialogs that end at once
// (--sip.invite-timeout=1ms --sip.session-max-age=1ms): the difference is
// what the open ones hold. Each is measured twice: `report FILE`, with the
// default --capture.workers and with 1 (its peak RSS, getrusage's
// ru_maxrss = VmHWM, and the peak of its anonymous memory; report keeps
// every transaction open until the end of the files), and `serve --capture.pcap-file=FILE
// --capture.pcap-speed=realtime`, scraped once the file has ended (in
// realtime the transactions stay open until their timeout, 180 s after
// they started) and again SIP_EXPORTER_MEMORY_LATER (default 60s) later,
// once Go's background scavenger has had time to return memory freed
// after the table's last doubling.
//
//	SIP_EXPORTER_MEMORY=1 go test ./cmd/sip_exporter/ -run TestMemoryOpenTransactions -v -timeout 30m
func TestMemoryOpenTransactions(t *testing.T) {
	bin := requireMemoryRun(t)
	n := envInt(t, "SIP_EXPORTER_MEMORY_TX", 1_000_000)
	rate := envInt(t, "SIP_EXPORTER_MEMORY_RATE", 50_000)
	later, err := time.ParseDuration(envString("SIP_EXPORTER_MEMORY_LATER", "60s"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	closing := []string{"--sip.invite-timeout=1ms", "--sip.session-max-age=1ms"}
	for _, answered := range []bool{false, true} {
		name := "invites"
		if answered {
			name = "dialogs"
		}
		path := filepath.Join(dir, name+".pcap")
		msgs := writeOpenTransactions(t, path, n, rate, answered)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d messages, %d transactions, %.0f MiB", name, msgs, n, float64(fi.Size())/(1<<20))
		t.Run(name+"/report", func(t *testing.T) {
			per := map[bool]string{true: " (and its dialog)"}[answered]
			for _, workers := range [][]string{nil, {"--capture.workers=1"}} {
				open := reportMaxRSS(t, bin, append(workers, path)...)
				base := reportMaxRSS(t, bin, append(append(workers, closing...), path)...)
				t.Logf("report, %s: peak RSS open %.1f MiB, closing at once %.1f MiB: %.1f bytes per open transaction%s; peak RssAnon %.1f and %.1f MiB: %.1f bytes",
					cmp.Or(strings.Join(workers, " "), "default workers"), float64(open.rss)/1024, float64(base.rss)/1024, float64(open.rss-base.rss)*1024/float64(n), per,
					float64(open.anon)/1024, float64(base.anon)/1024, float64(open.anon-base.anon)*1024/float64(n))
			}
		})
		t.Run(name+"/serve", func(t *testing.T) {
			wait := time.Duration(msgs)*time.Second/time.Duration(rate) + 60*time.Second
			open := serveOpen(t, bin, path, wait, later)
			base := serveOpen(t, bin, path, wait, later, closing...)
			for i, when := range []string{"when the file has ended", later.String() + " later"} {
				t.Logf("serve, RSS %s: %.0f open, %.1f MiB; closing at once %.1f MiB: %.1f bytes per open transaction; Go heap in use %.1f bytes per open transaction",
					when, open[i].open, float64(open[i].rss)/1024, float64(base[i].rss)/1024, float64(open[i].rss-base[i].rss)*1024/open[i].open,
					(open[i].heapInuse-base[i].heapInuse)/open[i].open)
			}
		})
	}
}

// writeOpenTransactions writes n INVITEs, each a transaction and a call of
// its own, from 192.0.2.1 to 192.0.2.2, and with answered a 200 OK from
// 192.0.2.2 right after each, rate messages per second; it returns the
// messages written.
func writeOpenTransactions(t *testing.T, path string, n, rate int, answered bool) int {
	t.Helper()
	w := createPcap(t, path)
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a, b := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	msgs := 0
	for i := range n {
		script := []sipMsg{{method: "INVITE", cseq: 1, branch: fmt.Sprintf("z9hG4bK%d", i), fromTag: fmt.Sprintf("a%d", i)}}
		if answered {
			script = append(script, sipMsg{fromB: true, method: "INVITE", code: 200, cseq: 1, branch: script[0].branch,
				fromTag: script[0].fromTag, toTag: fmt.Sprintf("b%d", i)})
		}
		for _, m := range script {
			src, dst := a, b
			if m.fromB {
				src, dst = b, a
			}
			ts := start.Add(time.Duration(msgs) * time.Second / time.Duration(rate))
			w.udp(t, ts, uint16(msgs), src, dst, m.bytes(fmt.Sprintf("open-%d@192.0.2.1", i)))
			msgs++
		}
	}
	w.close(t)
	return msgs
}

// pcapFile writes Ethernet frames to a pcap file with nanosecond
// timestamps, through a buffer.
type pcapFile struct {
	f        *os.File
	bw       *bufio.Writer
	w        *pcapgo.Writer
	sb       gopacket.SerializeBuffer
	src, dst net.HardwareAddr
}

// createPcap creates path for frames from 02:00:00:00:00:01 to
// 02:00:00:00:00:02.
func createPcap(t *testing.T, path string) *pcapFile {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &pcapFile{f: f, bw: bufio.NewWriterSize(f, 1<<20), sb: gopacket.NewSerializeBuffer(),
		src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, dst: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	p.w = pcapgo.NewWriterNanos(p.bw)
	if err := p.w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	return p
}

// udp writes an IPv4/UDP frame from src:5060 to dst:5060.
func (p *pcapFile) udp(t *testing.T, ts time.Time, id uint16, src, dst net.IP, payload []byte) {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: id, SrcIP: src, DstIP: dst, Protocol: layers.IPProtocolUDP}
	udp := &layers.UDP{SrcPort: 5060, DstPort: 5060}
	_ = udp.SetNetworkLayerForChecksum(ip)
	p.frame(t, ts, ip, udp, gopacket.Payload(payload))
}

// frame writes an Ethernet frame (IPv4) of the layers ls.
func (p *pcapFile) frame(t *testing.T, ts time.Time, ls ...gopacket.SerializableLayer) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: p.src, DstMAC: p.dst, EthernetType: layers.EthernetTypeIPv4}
	if err := gopacket.SerializeLayers(p.sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append([]gopacket.SerializableLayer{eth}, ls...)...); err != nil {
		t.Fatal(err)
	}
	if err := p.w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(p.sb.Bytes()), Length: len(p.sb.Bytes())}, p.sb.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func (p *pcapFile) close(t *testing.T) {
	t.Helper()
	if err := p.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := p.f.Close(); err != nil {
		t.Fatal(err)
	}
}

// reportPeak is the memory of one report run, kB.
type reportPeak struct {
	rss  int64 // getrusage's ru_maxrss: VmHWM, the mapped capture included
	anon int64 // the largest RssAnon sampled every 10 ms: heap and stacks
}

// reportMaxRSS runs `bin report args...` and returns its peak RSS and the
// peak of its anonymous memory. A plain pcap is mapped by report, and its
// resident pages count in RSS (RssFile), so the heap's growth shows in
// RssAnon.
func reportMaxRSS(t *testing.T, bin string, args ...string) reportPeak {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"report"}, args...)...)
	cmd.Stdout = io.Discard
	var stderr syncBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var p reportPeak
	for tick := time.NewTicker(10 * time.Millisecond); ; {
		select {
		case err := <-done:
			tick.Stop()
			if err != nil {
				t.Fatalf("report %v: %v\n%s", args, err, stderr.String())
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			p.rss = ru.Maxrss
			t.Logf("report %s: %.2f s wall, %.2f s user CPU, peak RSS %.1f MiB, peak RssAnon %.1f MiB", strings.Join(args, " "),
				time.Since(start).Seconds(), time.Duration(ru.Utime.Nano()).Seconds(), float64(p.rss)/1024, float64(p.anon)/1024)
			return p
		case <-tick.C:
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
			if err != nil {
				continue // exiting
			}
			for l := range strings.SplitSeq(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					p.anon = max(p.anon, n)
				}
			}
		}
	}
}

// openReading is one reading of a serving exporter.
type openReading struct {
	rss       int64   // VmRSS, kB
	heapInuse float64 // go_memstats_heap_inuse_bytes
	open      float64 // sip_exporter_transactions
}

// serveOpen serves path in realtime with args and, once the file has
// ended (within wait) and the merge's lateness has passed, logs and
// returns a reading, then another one later.
func serveOpen(t *testing.T, bin, path string, wait, later time.Duration, args ...string) [2]openReading {
	t.Helper()
	e := startExporter(t, bin, append([]string{"--capture.pcap-file=" + path, "--capture.pcap-speed=realtime", "--log.level=warn"}, args...)...)
	src := map[string]string{"source": path, "type": "pcap"}
	if err := e.waitSourceUp(path, "pcap", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.waitSourceValue(src, 0, wait); err != nil {
		t.Fatal(err)
	}
	read := time.Since(start)
	time.Sleep(3 * time.Second) // --capture.max-lateness: the last messages counted
	var r [2]openReading
	for i := range r {
		if i > 0 {
			time.Sleep(later)
		}
		_, mfs, err := e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		pid := e.cmd.Process.Pid
		r[i].rss = procStatus(t, pid)["VmRSS"]
		r[i].heapInuse, _ = gaugeValue(mfs, "go_memstats_heap_inuse_bytes", nil)
		r[i].open, _ = gaugeValue(mfs, "sip_exporter_transactions", nil)
		dialogs, _ := gaugeValue(mfs, "sip_exporter_dialogs", nil)
		late, _ := gaugeValue(mfs, "sip_exporter_messages_late_total", map[string]string{"source": path})
		dropped, _ := gaugeValue(mfs, "sip_exporter_messages_dropped_total", map[string]string{"source": path})
		t.Logf("serve %s (read in %v): %.0f open transactions, %.0f open dialogs, %.0f late, %.0f dropped: %s",
			strings.Join(args, " "), read.Round(time.Second), r[i].open, dialogs, late, dropped, memLine(t, pid, mfs))
	}
	return r
}
