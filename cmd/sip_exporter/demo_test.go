package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var update = flag.Bool("update", false, "rewrite golden files and the demo capture")

// demoCapture is the bundled capture the README's demo command replays.
const demoCapture = "../../deploy/demo/sip-demo.pcap"

// demoWriter builds the demo capture: SIP dialogs between a few user
// agents and two proxies over UDP and TCP, with a known mix of outcomes.
type demoWriter struct {
	w    *pcapgo.Writer
	t    time.Time
	rng  *rand.Rand
	seqs map[string]uint32 // next TCP sequence number per flow direction
	n    int
	// want counts the responses written per "code method".
	want map[string]int
}

type endpoint struct {
	ip   net.IP
	port uint16
	tcp  bool
}

func (d *demoWriter) packet(src, dst endpoint, payload []byte) {
	d.t = d.t.Add(time.Duration(5+d.rng.IntN(40)) * time.Millisecond)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, src.ip[15]}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, dst.ip[15]}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.ip, DstIP: dst.ip, Id: uint16(d.n)}
	var l4 gopacket.SerializableLayer
	if src.tcp {
		ip.Protocol = layers.IPProtocolTCP
		key := fmt.Sprint(src, dst)
		seq, ok := d.seqs[key]
		if !ok {
			seq = d.rng.Uint32()
		}
		d.seqs[key] = seq + uint32(len(payload))
		tcp := &layers.TCP{SrcPort: layers.TCPPort(src.port), DstPort: layers.TCPPort(dst.port), Seq: seq, ACK: true, PSH: true, Window: 65535}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	} else {
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(src.port), DstPort: layers.UDPPort(dst.port)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	if err := d.w.WritePacket(gopacket.CaptureInfo{Timestamp: d.t, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		panic(err)
	}
	d.n++
}

var reasons = map[int]string{100: "Trying", 180: "Ringing", 200: "OK", 401: "Unauthorized", 404: "Not Found",
	486: "Busy Here", 487: "Request Terminated", 503: "Service Unavailable", 603: "Decline"}

// dialog writes one exchange from a (UAC) to b (UAS).
func (d *demoWriter) dialog(a, b endpoint, kind int) {
	callID := fmt.Sprintf("%08x@demo.example", d.rng.Uint32())
	transport := "UDP"
	if a.tcp {
		transport = "TCP"
	}
	branch := func() string { return fmt.Sprintf("z9hG4bK%08x", d.rng.Uint32()) }
	req := func(method string, cseq int, br, toTag string) {
		body := ""
		if method == "INVITE" {
			body = "v=0\r\no=- 1 1 IN IP4 " + a.ip.String() + "\r\ns=-\r\nc=IN IP4 " + a.ip.String() + "\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
		}
		msg := fmt.Sprintf("%s sip:bob@%s SIP/2.0\r\nVia: SIP/2.0/%s %s:%d;branch=%s\r\nMax-Forwards: 70\r\nFrom: <sip:alice@%s>;tag=a%s\r\nTo: <sip:bob@%s>%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:alice@%s:%d>\r\nUser-Agent: sip-demo\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
			method, b.ip, transport, a.ip, a.port, br, a.ip, callID[:6], b.ip, toTag, callID, cseq, method, a.ip, a.port, len(body), body)
		d.packet(a, b, []byte(msg))
	}
	resp := func(code int, method string, cseq int, br, toTag string) {
		msg := fmt.Sprintf("SIP/2.0 %d %s\r\nVia: SIP/2.0/%s %s:%d;branch=%s\r\nFrom: <sip:alice@%s>;tag=a%s\r\nTo: <sip:bob@%s>%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nServer: sip-demo\r\nContent-Length: 0\r\n\r\n",
			code, reasons[code], transport, a.ip, a.port, br, a.ip, callID[:6], b.ip, toTag, callID, cseq, method)
		d.packet(b, a, []byte(msg))
		d.want[fmt.Sprintf("%d %s", code, method)]++
	}
	tag := ";tag=b" + callID[:6]
	switch kind {
	case 0: // REGISTER challenged, then accepted
		br := branch()
		req("REGISTER", 1, br, "")
		resp(401, "REGISTER", 1, br, tag)
		br = branch()
		req("REGISTER", 2, br, "")
		resp(200, "REGISTER", 2, br, tag)
	case 1: // OPTIONS keep-alive
		br := branch()
		req("OPTIONS", 1, br, "")
		resp(200, "OPTIONS", 1, br, tag)
	default: // INVITE with an outcome
		outcomes := []int{200, 200, 200, 200, 486, 404, 503, 603, 487}
		code := outcomes[d.rng.IntN(len(outcomes))]
		br := branch()
		req("INVITE", 1, br, "")
		resp(100, "INVITE", 1, br, "")
		if code != 404 && code != 503 {
			resp(180, "INVITE", 1, br, tag)
		}
		if code == 487 {
			req("CANCEL", 1, br, "")
			resp(200, "CANCEL", 1, br, tag)
		}
		resp(code, "INVITE", 1, br, tag)
		req("ACK", 1, br, tag)
		if code == 200 {
			d.t = d.t.Add(time.Duration(1+d.rng.IntN(3)) * time.Second)
			br = branch()
			req("BYE", 2, br, tag)
			resp(200, "BYE", 2, br, tag)
		}
	}
}

// writeDemo writes the demo capture to path and returns the responses it
// holds per "code method". The output depends only on the fixed seed.
func writeDemo(path string) (map[string]int, error) {
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	d := &demoWriter{w: w, t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), rng: rand.New(rand.NewPCG(2026, 11)),
		seqs: map[string]uint32{}, want: map[string]int{}}
	proxyUDP := endpoint{net.IPv4(192, 0, 2, 10).To16(), 5060, false}
	proxyTCP := endpoint{net.IPv4(192, 0, 2, 11).To16(), 5060, true}
	for i := 0; i < 200; i++ {
		ua := endpoint{net.IPv4(198, 51, 100, byte(20+i%30)).To16(), 5060, false}
		target := proxyUDP
		if i%4 == 3 { // a quarter over a TCP trunk between two proxies
			ua = endpoint{net.IPv4(203, 0, 113, 5).To16(), 35060, true}
			target = proxyTCP
		}
		d.dialog(ua, target, d.rng.IntN(8))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return d.want, nil
}

// TestDemoCapture checks that the bundled demo capture is what writeDemo
// makes (-update rewrites it) and that the pipeline counts exactly the
// responses written into it.
func TestDemoCapture(t *testing.T) {
	tmp := t.TempDir() + "/demo.pcap"
	want, err := writeDemo(tmp)
	if err != nil {
		t.Fatal(err)
	}
	made, _ := os.ReadFile(tmp)
	if *update {
		if err := os.WriteFile(demoCapture, made, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bundled, err := os.ReadFile(demoCapture)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bundled, made) {
		t.Errorf("%s differs from what writeDemo makes; run go test ./cmd/sip_exporter -run TestDemoCapture -update", demoCapture)
	}
	p, stats := reportOf(t, demoCapture)
	got := countsOf(p)
	for k, n := range want {
		if got[k] != uint64(n) {
			t.Errorf("%s: got %d, want %d", k, got[k], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d (code, method) pairs, want %d: %v", len(got), len(want), got)
	}
	stats.ParseErrors(func(r string, n uint64) {
		if n != 0 {
			t.Errorf("parse errors %s: %d", r, n)
		}
	})
}
