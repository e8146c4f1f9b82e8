package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/net/ipv4"

	"github.com/sip-exporter/sip_exporter/capture/hep"
)

// The HEP load test sends from 127.0.16.0/24 (Linux routes 127.0.0.0/8 to
// lo), so that it does not meet other tests' traffic: the exporter listens
// on .1, agent i sends from .(10+i).
const (
	hepLoadListenIP = "127.0.16.1"
	hepLoadAgents   = 8 // the default; at most 200
)

// TestHEPLoadUDP is the HEP-over-UDP target of issues 12 and 18: the shipped binary
// with its defaults (dedup and transactions on, --hep.transport=udp)
// receives HEPv3 from SIP_EXPORTER_HEP_AGENTS agents (default 8) paced at SIP_EXPORTER_HEP_RATE messages per
// second (default 100,000) for SIP_EXPORTER_HEP_DURATION (default 10s):
// realistic calls (INVITE with SDP, 100, 180, 200 with SDP, ACK, BYE, 200;
// every fifth call INVITE, 100, 486, ACK), each agent's messages in order.
// It checks that sip_requests_total and sip_responses_total equal what was
// sent, per method and (code, method), and logs messages sent and counted,
// kernel drops, late and dropped messages of the merge, the process's
// CPU time per message (utime+stime from /proc/PID/stat, from the first
// message to 1.5 s after the last) and its context switches per message
// (all threads; the wakeups).
//
// It runs only with SIP_EXPORTER_HEP_LOAD=1: it takes a core for the
// duration. SIP_EXPORTER_BIN runs another binary (the one before a
// change), SIP_EXPORTER_HEP_ARGS adds flags (space separated), and
// SIP_EXPORTER_HEP_MAX_CPU_US fails the test above that many CPU-µs per
// message.
func TestHEPLoadUDP(t *testing.T) {
	if os.Getenv("SIP_EXPORTER_HEP_LOAD") == "" {
		t.Skip("set SIP_EXPORTER_HEP_LOAD=1 to run the HEP load test (100k msg/s for 10 s)")
	}
	rate := envInt(t, "SIP_EXPORTER_HEP_RATE", 100000)
	agents := envInt(t, "SIP_EXPORTER_HEP_AGENTS", hepLoadAgents)
	if agents > 200 {
		t.Fatalf("SIP_EXPORTER_HEP_AGENTS %d: at most 200 (one address each in 127.0.16.0/24)", agents)
	}
	dur, err := time.ParseDuration(envString("SIP_EXPORTER_HEP_DURATION", "10s"))
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("SIP_EXPORTER_BIN")
	if bin == "" {
		bin = buildExporter(t)
	}
	hepAddr := freeUDPAddrOn(t, hepLoadListenIP)
	args := []string{"--hep.listen-address=" + hepAddr, "--hep.transport=udp", "--log.level=warn"}
	args = append(args, strings.Fields(os.Getenv("SIP_EXPORTER_HEP_ARGS"))...)
	e := startExporter(t, bin, args...)
	source := "udp://" + hepAddr
	if err := e.waitSourceUp(source, "hep", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	pid := e.cmd.Process.Pid
	defer startPerf(t, pid)()
	cpu0, sw0 := procCPUTicks(t, pid), procSwitches(t, pid)
	start := time.Now()
	want, sent := sendHEPLoad(t, hepAddr, rate, dur, agents)
	sendTime := time.Since(start)
	time.Sleep(1500 * time.Millisecond) // --capture.max-lateness and its slack: everything counted
	cpu1, sw1 := procCPUTicks(t, pid), procSwitches(t, pid)

	_, got := e.settle(t, 10*time.Second)
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	kernel, late, dropped, received, reads, hasReads := hepLoadCounters(mfs, source)
	tick := 10 * time.Millisecond // USER_HZ 100 on Linux
	cpu := time.Duration(cpu1-cpu0) * tick
	perMsg := float64(cpu.Microseconds()) / float64(sent)
	counted := got.sum()
	for _, v := range got.requests {
		counted += v
	}
	t.Logf("sent %d messages in %v (%.0f msg/s) from %d agents; received %.0f HEP packets, counted %d SIP messages; kernel drops %.0f, merge late %.0f, dropped %.0f",
		sent, sendTime.Round(time.Millisecond), float64(sent)/sendTime.Seconds(), agents, received, counted, kernel, late, dropped)
	t.Logf("exporter CPU %v: %.2f CPU-µs per message sent, %.2f per message received; %d context switches, %.3f per message sent",
		cpu, perMsg, float64(cpu.Microseconds())/received, sw1-sw0, float64(sw1-sw0)/float64(sent))
	if hasReads {
		t.Logf("UDP reads %.0f: %.1f datagrams per read", reads, received/reads)
	}
	if table, ok := compareCounts(want, got); !ok {
		t.Errorf("counts differ from what was sent:\n%s", table)
	}
	if kernel != 0 || dropped != 0 {
		t.Errorf("lost: %.0f kernel drops, %.0f dropped in the merge", kernel, dropped)
	}
	if max := os.Getenv("SIP_EXPORTER_HEP_MAX_CPU_US"); max != "" {
		limit, err := strconv.ParseFloat(max, 64)
		if err != nil {
			t.Fatal(err)
		}
		if perMsg > limit {
			t.Errorf("%.2f CPU-µs per message, above %v", perMsg, limit)
		}
	}
}

// startPerf starts perf record of process pid when SIP_EXPORTER_HEP_PERF
// names its output file (SIP_EXPORTER_HEP_PERF_EVENTS chooses what,
// default -F 499), and returns the function that stops it.
func startPerf(t *testing.T, pid int) func() {
	t.Helper()
	out := os.Getenv("SIP_EXPORTER_HEP_PERF")
	if out == "" {
		return func() {}
	}
	pargs := append([]string{"record"}, strings.Fields(envString("SIP_EXPORTER_HEP_PERF_EVENTS", "-F 499"))...)
	perf := exec.Command("perf", append(pargs, "-g", "-o", out, "-p", strconv.Itoa(pid))...)
	if err := perf.Start(); err != nil {
		t.Fatal(err)
	}
	return func() {
		_ = perf.Process.Signal(os.Interrupt)
		_ = perf.Wait()
	}
}

// hepLoadCounters returns what a load test reads of a HEP source: kernel
// drops, late and dropped messages of the merge, HEP packets received and
// UDP reads (hasReads false when the source has none: TCP).
func hepLoadCounters(mfs map[string]*dto.MetricFamily, source string) (kernel, late, dropped, received, reads float64, hasReads bool) {
	src := map[string]string{"source": source}
	kernel, _ = gaugeValue(mfs, "sip_exporter_packets_dropped_total", map[string]string{"source": source, "reason": "kernel"})
	late, _ = gaugeValue(mfs, "sip_exporter_messages_late_total", src)
	dropped, _ = gaugeValue(mfs, "sip_exporter_messages_dropped_total", src)
	received, _ = gaugeValue(mfs, "sip_exporter_hep_packets_received_total", src)
	reads, hasReads = gaugeValue(mfs, "sip_exporter_hep_udp_reads_total", src)
	return kernel, late, dropped, received, reads, hasReads
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	n, err := strconv.Atoi(envString(name, strconv.Itoa(def)))
	if err != nil || n <= 0 {
		t.Fatalf("%s: want a positive integer", name)
	}
	return n
}

// freeUDPAddrOn returns ip:PORT with a UDP port that was free a moment ago.
func freeUDPAddrOn(t *testing.T, ip string) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// procCPUTicks returns utime+stime of pid in clock ticks.
func procCPUTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (in parentheses, may hold spaces):
	// state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// procSwitches returns the voluntary and involuntary context switches of
// every thread of pid.
func procSwitches(t *testing.T, pid int) int64 {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += k
			} else if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += k
			}
		}
	}
	return n
}

// loadMsg is one message of a load call: its SIP text with "##########"
// where the call number goes, and how it counts.
type loadMsg struct {
	text     string
	fromUAS  bool
	method   string // request method or CSeq method
	code     int    // 0 for a request
	callNums []int  // offsets of the call number in text
	key      responseKey
}

const loadSDP = "v=0\r\no=- 3749 3749 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"

// loadCall returns the messages of an answered call (answered) or of a
// call rejected with 486.
func loadCall(answered bool) []loadMsg {
	const n = "##########"
	hdr := func(via, branch, toTag, cseq string) string {
		s := "Via: SIP/2.0/UDP " + via + ";branch=z9hG4bK" + branch + n + "\r\n" +
			"Max-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=fa" + n + "\r\n" +
			"To: <sip:bob@example.com>" + toTag + "\r\nCall-ID: " + n + "@load.example.com\r\nCSeq: " + cseq + "\r\n" +
			"Contact: <sip:alice@192.0.2.1:5060>\r\nUser-Agent: hepload\r\n"
		return s
	}
	body := func(sdp bool) string {
		if !sdp {
			return "Content-Length: 0\r\n\r\n"
		}
		return "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(loadSDP)) + "\r\n\r\n" + loadSDP
	}
	tt := ";tag=tb" + n
	inv := "INVITE sip:bob@example.com SIP/2.0\r\n" + hdr("192.0.2.1:5060", "i", "", "1 INVITE") + body(true)
	msgs := []loadMsg{
		{text: inv, method: "INVITE"},
		{text: "SIP/2.0 100 Trying\r\n" + hdr("192.0.2.1:5060", "i", "", "1 INVITE") + body(false), fromUAS: true, method: "INVITE", code: 100},
	}
	if answered {
		msgs = append(msgs,
			loadMsg{text: "SIP/2.0 180 Ringing\r\n" + hdr("192.0.2.1:5060", "i", tt, "1 INVITE") + body(false), fromUAS: true, method: "INVITE", code: 180},
			loadMsg{text: "SIP/2.0 200 OK\r\n" + hdr("192.0.2.1:5060", "i", tt, "1 INVITE") + body(true), fromUAS: true, method: "INVITE", code: 200},
			loadMsg{text: "ACK sip:bob@192.0.2.2:5060 SIP/2.0\r\n" + hdr("192.0.2.1:5060", "a", tt, "1 ACK") + body(false), method: "ACK"},
			loadMsg{text: "BYE sip:bob@192.0.2.2:5060 SIP/2.0\r\n" + hdr("192.0.2.1:5060", "b", tt, "2 BYE") + body(false), method: "BYE"},
			loadMsg{text: "SIP/2.0 200 OK\r\n" + hdr("192.0.2.1:5060", "b", tt, "2 BYE") + body(false), fromUAS: true, method: "BYE", code: 200},
		)
	} else {
		msgs = append(msgs,
			loadMsg{text: "SIP/2.0 486 Busy Here\r\n" + hdr("192.0.2.1:5060", "i", tt, "1 INVITE") + body(false), fromUAS: true, method: "INVITE", code: 486},
			loadMsg{text: "ACK sip:bob@example.com SIP/2.0\r\n" + hdr("192.0.2.1:5060", "i", tt, "1 ACK") + body(false), method: "ACK"},
		)
	}
	for i := range msgs {
		msgs[i].key = responseKey{code: strconv.Itoa(msgs[i].code), method: msgs[i].method}
		s := msgs[i].text
		for off := 0; ; {
			k := strings.Index(s[off:], n)
			if k < 0 {
				break
			}
			msgs[i].callNums = append(msgs[i].callNums, off+k)
			off += k + len(n)
		}
	}
	return msgs
}

// loadAgent is one HEP agent of the load: its socket, its calls' script
// and its position in it.
type loadAgent struct {
	conn  *ipv4.PacketConn
	id    int
	calls [2][]loadMsg // rejected, answered
	call  int          // calls started
	next  int          // next message of the current call
	node  []byte
	batch []ipv4.Message
	bufs  [][]byte // the packets of the batch, reused
}

// Addresses of the calls' SIP endpoints inside the HEP packets.
var (
	loadUAC = []byte{192, 0, 2, 1}
	loadUAS = []byte{192, 0, 2, 2}
)

// sendHEPLoad sends rate messages per second for dur from n agents to
// hepAddr, each tick of 1 ms what is due (sendmmsg per agent), and
// returns what it sent, as the exporter should count it, and how many.
func sendHEPLoad(t *testing.T, hepAddr string, rate int, dur time.Duration, n int) (sipCounts, int) {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", hepAddr)
	if err != nil {
		t.Fatal(err)
	}
	want := newSIPCounts()
	agents := make([]*loadAgent, n)
	for i := range agents {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 16, byte(10+i))}, raddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetWriteBuffer(4 << 20)
		a := &loadAgent{conn: ipv4.NewPacketConn(c), id: i, calls: [2][]loadMsg{loadCall(false), loadCall(true)},
			node: fmt.Appendf(nil, "agent-%d", i)}
		agents[i] = a
	}
	total := int(int64(rate) * int64(dur) / int64(time.Second))
	var payload []byte
	start := time.Now()
	sent := 0
	for sent < total {
		due := min(total, int(int64(rate)*int64(time.Since(start))/int64(time.Second)))
		if due <= sent {
			time.Sleep(time.Millisecond - time.Duration(int64(time.Since(start))%int64(time.Millisecond)))
			continue
		}
		now := time.Now()
		for i, a := range agents {
			// Agent i sends its share of what is due.
			k := (due-sent)/len(agents) + b2i(i < (due-sent)%len(agents))
			a.batch = a.batch[:0]
			for j := range k {
				script := a.calls[b2i(a.call%5 != 4)]
				m := &script[a.next]
				payload = append(payload[:0], m.text...)
				var num [10]byte // agent 2 digits, call 8 digits
				v := a.id*100000000 + a.call
				for d := len(num) - 1; d >= 0; d-- {
					num[d] = byte('0' + v%10)
					v /= 10
				}
				for _, off := range m.callNums {
					copy(payload[off:], num[:])
				}
				src, dst := loadUAC, loadUAS
				if m.fromUAS {
					src, dst = dst, src
				}
				if j == len(a.bufs) {
					a.bufs = append(a.bufs, nil)
				}
				pkt, err := hep.AppendV3(a.bufs[j][:0], &hep.Packet{IPFamily: hep.FamilyIPv4, IPProtocol: 17,
					SrcIP: src, DstIP: dst, SrcPort: 5060, DstPort: 5060,
					TimestampSeconds: uint32(now.Unix()), TimestampMicros: uint32(now.Nanosecond() / 1000),
					ProtocolType: hep.ProtocolSIP, CaptureAgentID: uint32(2000 + a.id),
					NodeName: a.node, Payload: payload})
				if err != nil {
					t.Fatal(err)
				}
				a.bufs[j] = pkt
				a.batch = append(a.batch, ipv4.Message{Buffers: a.bufs[j : j+1]})
				if m.code == 0 {
					want.requests[m.method]++
				} else {
					want.responses[m.key]++
				}
				if a.next++; a.next == len(script) {
					a.next, a.call = 0, a.call+1
				}
			}
			for off := 0; off < len(a.batch); {
				n, err := a.conn.WriteBatch(a.batch[off:], 0)
				if err != nil {
					t.Fatalf("agent %d: send: %v", a.id, err)
				}
				off += n
			}
		}
		sent = due
	}
	return want, sent
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
