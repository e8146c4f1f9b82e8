//go:build linux

package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	dto "github.com/prometheus/client_model/go"
)

// The traffic of TestLiveWorkersReplay.
const (
	workersUDPDialogs  = 3000 // UDP dialogs, each between a UA of its own and the UDP server
	workersFragDialogs = 200  // UDP dialogs whose INVITE is cut into IPv4 fragments
	workersTCPConns    = 100  // TCP connections, each of workersTCPDialogs dialogs
	workersTCPDialogs  = 2
	workersActive      = 64    // dialogs and connections interleaved at once
	workersPPS         = 10000 // tcpreplay's rate, packets per second
	workersMTU         = 1500  // the veth pair's, and the largest IPv4 packet written
)

// TestLiveWorkersReplay checks that capture workers change no count: the
// real binary runs twice at once on one end of a veth pair, with
// --capture.workers=1 and with --capture.workers=2, while tcpreplay sends
// a capture the test writes into the other end. Both must count exactly
// what the test wrote, and the same as each other.
//
// The capture (fanoutGen) holds, interleaved 64 at a time:
//   - 3,000 UDP dialogs, both directions, each UA on an address and port
//     of its own: INVITE, 100, then 200 (with 180 first, or not), ACK, BYE,
//     200; or 486, ACK; or 180, 603, ACK; or OPTIONS, 200;
//   - 200 such dialogs whose INVITE (a 3,000-byte SDP) is cut into 3 IPv4
//     fragments, as a sender with MTU 1500 would cut it;
//   - 100 TCP connections (handshake, 2 dialogs, FIN both ways) whose
//     messages are cut into 1 to 4 segments at random points, a segment
//     often holding the end of one message and the start of the next.
//
// The expected figures are counted from what the generator wrote, never
// from the exporter: the frames and their bytes
// (sip_exporter_packets_received_total, bytes_received_total), requests by
// method and responses by code and method (sip_requests_total,
// sip_responses_total), the fragmented datagrams
// (sip_exporter_ip_datagrams_reassembled_total{family="ipv4"}), and the
// session figures of TestSplitDirection: INVITE attempts, outcomes by
// code, request delays by outcome (success: a 180 or the 200 came first),
// session durations (200 then BYE), no timeout. Every transaction gets its
// final response, so after the INVITE timeout (2 s) has passed, neither
// run may count a timed-out transaction or an unmatched response, and
// neither may lose a packet (kernel drops, queue drops, late messages,
// TCP gaps, fragments dropped).
//
// With 2 workers, sip_exporter_capture_worker_packets_total must show
// packets on both workers, adding up to all of them, each within 10 % of
// an even split: the traffic is 3,300 flows of a few packets each, spread
// by the kernel's flow hash.
//
// Topology, all of it created by the test and removed by its cleanup
// (IPv6 off in both namespaces, no address on either end, so that nothing
// but the replayed frames crosses the pair; their destination MAC is not
// the capturing end's, so its stack drops them after the capture):
//
//	netns sxwork-PID-a                        netns sxwork-PID-b
//	  sip_exporter --capture.workers=1          tcpreplay
//	  sip_exporter --capture.workers=2
//	  veth sxwPIDa  (promiscuous)    <---->     veth sxwPIDb
func TestLiveWorkersReplay(t *testing.T) {
	requireLive(t, "tcpreplay", "ip")
	start := time.Now()
	bin := buildExporter(t)
	capture := filepath.Join(t.TempDir(), "workers.pcap")
	g := writeWorkersCapture(t, capture)
	t.Logf("capture: %d frames, %d bytes, %d fragmented datagrams, %d requests, %d responses",
		g.frames, g.bytes, g.fragmented, sumOf(g.want.requests), sumOf(g.want.responses))

	pid := os.Getpid()
	a, b := fmt.Sprintf("sxwork-%d-a", pid), fmt.Sprintf("sxwork-%d-b", pid)
	va, vb := fmt.Sprintf("sxw%da", pid), fmt.Sprintf("sxw%db", pid)
	addNetns(t, "workers replay test needs network namespaces", a, b)
	for _, ns := range []string{a, b} {
		for _, conf := range []string{"all", "default"} {
			// /proc/sys/net is the namespace of the thread that opens it.
			if _, err := inNetns(ns, func() (struct{}, error) {
				return struct{}{}, os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/disable_ipv6", []byte("1"), 0o644)
			}); err != nil {
				t.Fatalf("netns %s: disable IPv6: %v", ns, err)
			}
		}
	}
	m := strconv.Itoa(workersMTU)
	ipSteps(t, [][]string{
		{"link", "add", va, "netns", a, "mtu", m, "type", "veth", "peer", "name", vb, "netns", b, "mtu", m},
		{"-n", a, "link", "set", "lo", "up"},
		{"-n", b, "link", "set", "lo", "up"},
		{"-n", a, "link", "set", va, "up"},
		{"-n", b, "link", "set", vb, "up"},
	})

	runs := []struct {
		workers int
		e       *exporterProcess
	}{{workers: 1}, {workers: 2}}
	for i, r := range runs {
		runs[i].e = startExporterInNetns(t, a, bin, "--capture.interface="+va, "--capture.promiscuous",
			"--capture.workers="+strconv.Itoa(r.workers), "--sip.invite-timeout="+splitInviteTimeout.String())
	}
	for _, r := range runs {
		if err := r.e.waitSourceUp(va, "interface", 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := runCmd("ip", "netns", "exec", b, "tcpreplay", "-q", "-i", vb, "--pps="+strconv.Itoa(workersPPS), capture); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if table, ok := waitCounts(t, r.e, g.want, 20*time.Second); !ok {
			t.Errorf("--capture.workers=%d: SIP messages differ from what the test wrote:\n%s", r.workers, table)
		}
	}
	time.Sleep(splitExpiry) // every INVITE transaction without a final response has timed out
	cols, figs := []string{"written"}, []map[string]float64{g.fig}
	capCols, caps := []string{"written"}, []map[string]float64{g.captureFigures()}
	for _, r := range runs {
		_, mfs, err := r.e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("workers=%d", r.workers)
		if table, ok := compareCounts(g.want, countsOfExposition(mfs)); !ok {
			t.Errorf("%s: SIP messages differ from what the test wrote:\n%s", name, table)
		}
		checkUnmatched(t, name, mfs)
		cols, figs = append(cols, name), append(figs, sessionFigures(mfs))
		capCols, caps = append(capCols, name), append(caps, workersCaptureFigures(mfs, va))
		if r.workers > 1 {
			checkWorkerSplit(t, mfs, va, r.workers, g.frames)
		}
	}
	if table, ok := compareFigures(cols, figs); !ok {
		t.Errorf("session figures differ from what the test wrote (first column):\n%s", table)
	} else {
		t.Logf("session figures equal what the test wrote:\n%s", table)
	}
	if table, ok := compareFigures(capCols, caps); !ok {
		t.Errorf("capture figures differ from what the test wrote (first column):\n%s", table)
	} else {
		t.Logf("capture figures equal what the test wrote:\n%s", table)
	}
	t.Logf("workers replay test took %s", time.Since(start).Round(time.Millisecond))
}

func sumOf[K comparable](m map[K]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// Keys of the capture figures: what the source and the tracker count
// beside the SIP messages.
const (
	capPackets     = "sip_exporter_packets_received_total"
	capBytes       = "sip_exporter_bytes_received_total"
	capReassembled = `sip_exporter_ip_datagrams_reassembled_total{family="ipv4"}`
	capFragDropped = "sip_exporter_ip_fragments_dropped_total"
	capKernel      = `sip_exporter_packets_dropped_total{reason="kernel"}`
	capParse       = "sip_exporter_parse_errors_total"
	capGaps        = "sip_exporter_tcp_stream_gaps_total"
	capOutOfOrder  = "sip_exporter_tcp_segments_out_of_order_total"
	capRetrans     = "sip_exporter_tcp_segments_retransmitted_total"
	capQueue       = "sip_exporter_messages_dropped_total"
	capLate        = "sip_exporter_messages_late_total"
	capTimedOut    = "sip_exporter_transactions_timed_out_total"
	capUnmatched   = "sip_exporter_transaction_responses_unmatched_total"
)

// captureFigures returns the capture figures the exporter must show for
// what g wrote: every frame read, every fragmented datagram reassembled,
// nothing lost, malformed, late, timed out or unmatched.
func (g *fanoutGen) captureFigures() map[string]float64 {
	return map[string]float64{
		capPackets: float64(g.frames), capBytes: float64(g.bytes), capReassembled: float64(g.fragmented),
		capFragDropped: 0, capKernel: 0, capParse: 0, capGaps: 0, capOutOfOrder: 0, capRetrans: 0,
		capQueue: 0, capLate: 0, capTimedOut: 0, capUnmatched: 0,
	}
}

// workersCaptureFigures reads the capture figures of source from an
// exposition, each summed over its other labels.
func workersCaptureFigures(mfs map[string]*dto.MetricFamily, source string) map[string]float64 {
	sum := func(name string, labels map[string]string) float64 {
		var v float64
		for _, m := range mfs[name].GetMetric() {
			if hasLabels(m, labels) {
				v += m.GetCounter().GetValue()
			}
		}
		return v
	}
	src := map[string]string{"source": source}
	f := map[string]float64{
		capReassembled: sum("sip_exporter_ip_datagrams_reassembled_total", map[string]string{"source": source, "family": "ipv4"}),
		capKernel:      sum("sip_exporter_packets_dropped_total", map[string]string{"source": source, "reason": "kernel"}),
		capTimedOut:    sum(capTimedOut, nil),
		capUnmatched:   sum(capUnmatched, nil),
	}
	for _, name := range []string{capPackets, capBytes, capFragDropped, capParse, capGaps, capOutOfOrder, capRetrans, capQueue, capLate} {
		f[name] = sum(name, src)
	}
	return f
}

// checkWorkerSplit checks sip_exporter_capture_worker_packets_total of
// source: one series per worker, adding up to total, each within 10 % of
// total / workers.
func checkWorkerSplit(t *testing.T, mfs map[string]*dto.MetricFamily, source string, workers, total int) {
	t.Helper()
	per := map[string]float64{}
	for _, m := range mfs["sip_exporter_capture_worker_packets_total"].GetMetric() {
		if hasLabels(m, map[string]string{"source": source}) {
			per[labelValue(m, "worker")] += m.GetCounter().GetValue()
		}
	}
	var sum float64
	even := float64(total) / float64(workers)
	for w := range workers {
		n, ok := per[strconv.Itoa(w)]
		switch {
		case !ok:
			t.Errorf("no sip_exporter_capture_worker_packets_total{worker=%q}", strconv.Itoa(w))
		case n == 0:
			t.Errorf("worker %d read no packet", w)
		case n < 0.9*even || n > 1.1*even:
			t.Errorf("worker %d read %.0f packets of %d: more than 10 %% off an even split (%.0f)", w, n, total, even)
		}
		sum += n
	}
	if len(per) != workers || sum != float64(total) {
		t.Errorf("%d workers read %.0f packets, want %d workers and %d packets", len(per), sum, workers, total)
	}
	t.Logf("packets per worker: %v of %d", per, total)
}

// fanoutGen writes the capture of TestLiveWorkersReplay and counts what
// it wrote.
type fanoutGen struct {
	w   *pcapgo.Writer
	t   time.Time
	rng *rand.Rand
	id  uint16 // IPv4 identification of the next packet

	frames, bytes, fragmented int
	want                      sipCounts
	fig                       map[string]float64 // session figures, keyed as sessionFigures
}

// step writes one turn of a dialog or connection: its packets, in order.
type step func()

// writeWorkersCapture writes the capture to path and returns the
// generator with its counts.
func writeWorkersCapture(t *testing.T, path string) *fanoutGen {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	g := &fanoutGen{w: pcapgo.NewWriterNanos(bw), t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		rng: rand.New(rand.NewPCG(12, 1)), want: newSIPCounts(),
		fig: map[string]float64{figAttempts: 0, figTimeouts: 0, figSRD("success"): 0, figSRD("failure"): 0, figDuration: 0}}
	if err := g.w.WriteFileHeader(workersMTU+14, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	udpServer := netip.MustParseAddrPort("10.70.0.1:5060")
	tcpServer := netip.MustParseAddrPort("10.70.0.2:5060")
	var programs [][]step
	for i := range workersUDPDialogs {
		ua := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 71, byte(i / 200), byte(1 + i%200)}), uint16(5060+i%7))
		programs = append(programs, g.udpDialog(&fanDialog{uac: ua, uas: udpServer, id: "u" + strconv.Itoa(i)}, i%10, 0))
	}
	for i := range workersFragDialogs {
		ua := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 72, byte(i / 200), byte(1 + i%200)}), 5060)
		programs = append(programs, g.udpDialog(&fanDialog{uac: ua, uas: udpServer, id: "f" + strconv.Itoa(i)}, i%3, 3000))
	}
	for i := range workersTCPConns {
		ua := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 73, 0, byte(1 + i)}), uint16(40000+i))
		programs = append(programs, g.tcpConn(ua, tcpServer, i))
	}
	// Interleave: a window of programs, each step taken from one at
	// random, a program's steps in order.
	g.rng.Shuffle(len(programs), func(i, j int) { programs[i], programs[j] = programs[j], programs[i] })
	var active [][]step
	next := 0
	for len(active) > 0 || next < len(programs) {
		for len(active) < workersActive && next < len(programs) {
			active = append(active, programs[next])
			next++
		}
		i := g.rng.IntN(len(active))
		active[i][0]()
		if active[i] = active[i][1:]; len(active[i]) == 0 {
			active[i] = active[len(active)-1]
			active = active[:len(active)-1]
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return g
}

// fanDialog is one dialog: its ends and what makes its messages its own.
type fanDialog struct {
	uac, uas  netip.AddrPort
	id        string // Call-ID and tag stem
	transport string // "UDP" or "TCP"
}

// sdp returns an SDP body of about n bytes.
func sdp(ip netip.Addr, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\n", ip, ip)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "a=x-pad:%04d fanout test padding line\r\n", i)
	}
	return b.String()
}

// request returns a request of the dialog and counts it.
func (g *fanoutGen) request(d *fanDialog, method string, cseq int, branch string, inDialog bool, body string) []byte {
	to := "<sip:bob@" + d.uas.Addr().String() + ">"
	if inDialog {
		to += ";tag=b-" + d.id
	}
	ctype := ""
	if body != "" {
		ctype = "Content-Type: application/sdp\r\n"
	}
	g.want.requests[method]++
	return fmt.Appendf(nil, "%s sip:bob@%s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK-%s\r\nMax-Forwards: 70\r\nFrom: <sip:alice@%s>;tag=a-%s\r\nTo: %s\r\nCall-ID: %s@fanout.test\r\nCSeq: %d %s\r\nContact: <sip:alice@%s>\r\n%sContent-Length: %d\r\n\r\n%s",
		method, d.uas.Addr(), d.transport, d.uac, branch, d.uac.Addr(), d.id, to, d.id, cseq, method, d.uac, ctype, len(body), body)
}

// response returns a response of the dialog and counts it.
func (g *fanoutGen) response(d *fanDialog, code int, method string, cseq int, branch string) []byte {
	to := "<sip:bob@" + d.uas.Addr().String() + ">"
	if code > 100 {
		to += ";tag=b-" + d.id
	}
	g.want.responses[responseKey{code: strconv.Itoa(code), method: method}]++
	return fmt.Appendf(nil, "SIP/2.0 %d %s\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK-%s\r\nFrom: <sip:alice@%s>;tag=a-%s\r\nTo: %s\r\nCall-ID: %s@fanout.test\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
		code, reasons[code], d.transport, d.uac, branch, d.uac.Addr(), d.id, to, d.id, cseq, method)
}

// turn is messages one end sends in a row.
type turn struct {
	fromUAS bool
	msgs    [][]byte
}

// dialogTurns returns the turns of one dialog of kind k (0..9: 6 in 10
// answered, 2 busy, 1 declined after ringing, 1 an OPTIONS) with an INVITE
// body of sdpLen bytes (0: a small one), and counts its session figures.
func (g *fanoutGen) dialogTurns(d *fanDialog, k, sdpLen int) []turn {
	if k == 9 {
		return []turn{
			{false, [][]byte{g.request(d, "OPTIONS", 1, d.id+"-o", false, "")}},
			{true, [][]byte{g.response(d, 200, "OPTIONS", 1, d.id+"-o")}},
		}
	}
	code, ring := 200, k%2 == 0
	switch k {
	case 6, 7:
		code, ring = 486, false
	case 8:
		code, ring = 603, true
	}
	b1 := d.id + "-1"
	provisional := [][]byte{g.response(d, 100, "INVITE", 1, b1)}
	if ring {
		provisional = append(provisional, g.response(d, 180, "INVITE", 1, b1))
	}
	ts := []turn{
		{false, [][]byte{g.request(d, "INVITE", 1, b1, false, sdp(d.uac.Addr(), max(sdpLen, 200)))}},
		{true, provisional},
		{true, [][]byte{g.response(d, code, "INVITE", 1, b1)}},
	}
	g.fig[figAttempts]++
	g.fig[figOutcome(strconv.Itoa(code))]++
	if ring || code == 200 {
		g.fig[figSRD("success")]++
	} else {
		g.fig[figSRD("failure")]++
	}
	if code != 200 {
		return append(ts, turn{false, [][]byte{g.request(d, "ACK", 1, b1, true, "")}})
	}
	g.fig[figDuration]++
	return append(ts,
		turn{false, [][]byte{g.request(d, "ACK", 1, d.id+"-a", true, "")}},
		turn{false, [][]byte{g.request(d, "BYE", 2, d.id+"-2", true, "")}},
		turn{true, [][]byte{g.response(d, 200, "BYE", 2, d.id+"-2")}})
}

// udpDialog returns the steps of a dialog over UDP: a datagram per message.
func (g *fanoutGen) udpDialog(d *fanDialog, k, sdpLen int) []step {
	d.transport = "UDP"
	var steps []step
	for _, tn := range g.dialogTurns(d, k, sdpLen) {
		src, dst := d.uac, d.uas
		if tn.fromUAS {
			src, dst = dst, src
		}
		steps = append(steps, func() {
			for _, m := range tn.msgs {
				g.udp(src, dst, m)
			}
		})
	}
	return steps
}

// tcpConn returns the steps of TCP connection i from ua to server: the
// handshake, workersTCPDialogs dialogs whose turns are cut into 1 to 4
// segments at random points, and FIN from both ends.
func (g *fanoutGen) tcpConn(ua, server netip.AddrPort, i int) []step {
	seq := [2]uint32{g.rng.Uint32(), g.rng.Uint32()} // next sequence number: from ua, from server
	ends := [2]netip.AddrPort{ua, server}
	seg := func(from int, flags uint8, payload []byte) {
		g.tcp(ends[from], ends[1-from], seq[from], seq[1-from], flags, payload)
		seq[from] += uint32(len(payload))
		if flags&(tcpFlagSYN|tcpFlagFIN) != 0 {
			seq[from]++
		}
	}
	steps := []step{func() {
		seg(0, tcpFlagSYN, nil)
		seg(1, tcpFlagSYN|tcpFlagACK, nil)
		seg(0, tcpFlagACK, nil)
	}}
	for k := range workersTCPDialogs {
		d := &fanDialog{uac: ua, uas: server, id: fmt.Sprintf("t%d-%d", i, k), transport: "TCP"}
		for _, tn := range g.dialogTurns(d, (i+k)%10, 0) {
			from := 0
			if tn.fromUAS {
				from = 1
			}
			data := []byte{}
			for _, m := range tn.msgs {
				data = append(data, m...)
			}
			cuts := g.rng.IntN(4) // segments - 1
			steps = append(steps, func() {
				for c := cuts; c > 0 && len(data) > 1; c-- {
					n := 1 + g.rng.IntN(len(data)-1)
					seg(from, tcpFlagACK|tcpFlagPSH, data[:n])
					data = data[n:]
				}
				seg(from, tcpFlagACK|tcpFlagPSH, data)
			})
		}
	}
	return append(steps, func() {
		seg(0, tcpFlagFIN|tcpFlagACK, nil)
		seg(1, tcpFlagFIN|tcpFlagACK, nil)
		seg(0, tcpFlagACK, nil)
	})
}

// TCP flags.
const (
	tcpFlagFIN = 1 << iota
	tcpFlagSYN
	tcpFlagRST
	tcpFlagPSH
	tcpFlagACK
)

// ipv4 returns the IPv4 header of the next packet.
func (g *fanoutGen) ipv4(src, dst netip.Addr, proto layers.IPProtocol) *layers.IPv4 {
	g.id++
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Id: g.id}
}

// udp writes a datagram, cut into IPv4 fragments of at most
// workersMTU bytes when it does not fit one.
func (g *fanoutGen) udp(src, dst netip.AddrPort, payload []byte) {
	ip := g.ipv4(src.Addr(), dst.Addr(), layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	_ = u.SetNetworkLayerForChecksum(ip)
	if 20+8+len(payload) <= workersMTU {
		g.frame(ip, u, gopacket.Payload(payload))
		return
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, u, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	dgram := buf.Bytes()
	const size = (workersMTU - 20) &^ 7
	for off := 0; off < len(dgram); off += size {
		end := min(off+size, len(dgram))
		frag := *ip
		frag.FragOffset = uint16(off / 8)
		if end < len(dgram) {
			frag.Flags = layers.IPv4MoreFragments
		}
		g.frame(&frag, gopacket.Payload(dgram[off:end]))
	}
	g.fragmented++
}

// tcp writes a segment.
func (g *fanoutGen) tcp(src, dst netip.AddrPort, seq, ack uint32, flags uint8, payload []byte) {
	ip := g.ipv4(src.Addr(), dst.Addr(), layers.IPProtocolTCP)
	s := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, Ack: ack, Window: 65535,
		FIN: flags&tcpFlagFIN != 0, SYN: flags&tcpFlagSYN != 0, RST: flags&tcpFlagRST != 0, PSH: flags&tcpFlagPSH != 0, ACK: flags&tcpFlagACK != 0}
	_ = s.SetNetworkLayerForChecksum(ip)
	g.frame(ip, s, gopacket.Payload(payload))
}

// frame writes an Ethernet frame of the layers to a MAC address that is
// not the capturing end's, 100 µs after the previous one.
func (g *fanoutGen) frame(ls ...gopacket.SerializableLayer) {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0x77, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0x77, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append([]gopacket.SerializableLayer{eth}, ls...)...); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	g.t = g.t.Add(100 * time.Microsecond)
	if err := g.w.WritePacket(gopacket.CaptureInfo{Timestamp: g.t, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		panic(err)
	}
	g.frames++
	g.bytes += len(b)
}
