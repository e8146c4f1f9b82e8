package decode_test

// Benchmarks. The file benchmarks read one large capture, generated once
// into the system temporary directory and reused by later runs:
//
//	go test ./capture -run '^$' -bench . -benchtime 3x
//
// BenchmarkFloor is what reading the file and finding SIP with gopacket's
// DecodingLayerParser costs; BenchmarkPipeline is the exporter's path
// (ReadFile, Decoder with TCP reassembly, sip.Parse, a collector). The
// target is Pipeline within 3x of Floor.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/collector"
)

// benchPackets is the number of packets in the benchmark capture.
const benchPackets = 1_000_000

// benchFileVersion names the generator: change it when the generator
// changes so that a stale cached file is not reused.
const benchFileVersion = 2

var benchFile struct {
	once sync.Once
	path string
	err  error
}

// benchCapture returns the path of the benchmark capture, generating it on
// first use, or the capture SIP_EXPORTER_BENCH_FILE names (BenchmarkFloor
// then measures the floor of another file).
func benchCapture(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("SIP_EXPORTER_BENCH_FILE"); p != "" {
		return p // another capture, e.g. to measure the floor of what report reads
	}
	benchFile.once.Do(func() {
		p := filepath.Join(os.TempDir(), fmt.Sprintf("sip_exporter_bench_v%d_%d.pcap", benchFileVersion, benchPackets))
		if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
			benchFile.path = p
			return
		}
		tmp := p + fmt.Sprintf(".%d.tmp", os.Getpid())
		if err := writeBenchCapture(tmp, benchPackets); err != nil {
			os.Remove(tmp)
			benchFile.err = err
			return
		}
		benchFile.path, benchFile.err = p, os.Rename(tmp, p)
	})
	if benchFile.err != nil {
		b.Fatal(benchFile.err)
	}
	return benchFile.path
}

// benchGen builds frames by hand (gopacket's serialisation is too slow for
// a million packets); checksums are left zero, as offloading NICs capture
// them.
type benchGen struct {
	rng   *rand.Rand
	w     *pcapgo.Writer
	ts    time.Time
	n     int
	frame []byte
	msgs  [][]sipMessage
}

// endpoint is one side of a flow.
type endpoint struct {
	ip   [16]byte
	v6   bool
	port uint16
}

func (g *benchGen) endpoint(v6 bool, port uint16) endpoint {
	e := endpoint{v6: v6, port: port}
	if v6 {
		copy(e.ip[:], []byte{0x20, 0x01, 0x0d, 0xb8})
		binary.BigEndian.PutUint64(e.ip[8:], g.rng.Uint64())
	} else {
		e.ip[0], e.ip[1] = 10, byte(g.rng.IntN(256))
		e.ip[2], e.ip[3] = byte(g.rng.IntN(256)), byte(1+g.rng.IntN(254))
	}
	return e
}

// write appends one Ethernet frame from a to b with a UDP (seq < 0) or TCP
// segment.
func (g *benchGen) write(a, b endpoint, tcp bool, seq uint32, flags byte, payload []byte) error {
	f := g.frame[:0]
	f = append(f, 0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a)
	thl := 8
	proto := byte(17)
	if tcp {
		thl, proto = 20, 6
	}
	if a.v6 {
		f = append(f, 0x86, 0xdd, 0x60, 0, 0, 0)
		f = binary.BigEndian.AppendUint16(f, uint16(thl+len(payload)))
		f = append(f, proto, 64)
		f = append(f, a.ip[:]...)
		f = append(f, b.ip[:]...)
	} else {
		f = append(f, 0x08, 0x00, 0x45, 0)
		f = binary.BigEndian.AppendUint16(f, uint16(20+thl+len(payload)))
		f = append(f, 0, 0, 0x40, 0, 64, proto, 0, 0)
		f = append(f, a.ip[:4]...)
		f = append(f, b.ip[:4]...)
	}
	f = binary.BigEndian.AppendUint16(f, a.port)
	f = binary.BigEndian.AppendUint16(f, b.port)
	if tcp {
		f = binary.BigEndian.AppendUint32(f, seq)
		f = append(f, 0, 0, 0, 1, 5<<4, flags|0x10, 0xff, 0xff, 0, 0, 0, 0)
	} else {
		f = binary.BigEndian.AppendUint16(f, uint16(8+len(payload)))
		f = append(f, 0, 0)
	}
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	g.frame = f
	g.n++
	g.ts = g.ts.Add(time.Duration(50+g.rng.IntN(100)) * time.Microsecond)
	return g.w.WritePacket(gopacket.CaptureInfo{Timestamp: g.ts, CaptureLength: len(f), Length: len(f)}, f)
}

// message returns a random corpus message padded to 400..900 bytes.
func (g *benchGen) message() []byte {
	set := g.msgs[g.rng.IntN(len(g.msgs))]
	m := set[g.rng.IntN(len(set))].text
	target := 400 + g.rng.IntN(500)
	if pad := target - len(m) - len("X-Trace: \r\n"); pad > 0 {
		i := strings.Index(m, "\r\n") + 2
		m = m[:i] + "X-Trace: " + strings.Repeat("t", pad) + "\r\n" + m[i:]
	}
	return []byte(m)
}

// benchConn is one direction of a TCP connection in the generator.
type benchConn struct {
	a, b endpoint
	seq  uint32
	left int // messages before FIN
}

func writeBenchCapture(path string, packets int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	g := &benchGen{rng: rand.New(rand.NewPCG(1, 2)), w: pcapgo.NewWriter(bw), ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := g.w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	for i := range 64 {
		g.msgs = append(g.msgs, corpus(fmt.Sprintf("%08x-%04x@bench.example.com", g.rng.Uint32(), i)))
	}
	proxy4, proxy6 := g.endpoint(false, 5060), g.endpoint(true, 5060)
	var udpPeers []endpoint
	for i := range 5000 {
		v6 := i%5 == 0
		udpPeers = append(udpPeers, g.endpoint(v6, uint16(5060+g.rng.IntN(3))))
	}
	conns := make([]*benchConn, 2000)
	openConn := func(i int) (*benchConn, error) {
		v6 := i%5 == 0
		c := &benchConn{a: g.endpoint(v6, uint16(1024+g.rng.IntN(60000))), b: proxy4, seq: g.rng.Uint32(), left: 20 + g.rng.IntN(60)}
		if v6 {
			c.b = proxy6
		}
		if i%2 == 1 { // half the directions are proxy to client
			c.a, c.b = c.b, c.a
		}
		err := g.write(c.a, c.b, true, c.seq, 0x02, nil) // SYN
		c.seq++
		return c, err
	}
	for g.n < packets {
		if g.rng.IntN(10) < 6 { // UDP
			p := udpPeers[g.rng.IntN(len(udpPeers))]
			px := proxy4
			if p.v6 {
				px = proxy6
			}
			a, b := p, px
			if g.rng.IntN(2) == 0 {
				a, b = b, a
			}
			if err := g.write(a, b, false, 0, 0, g.message()); err != nil {
				return err
			}
			continue
		}
		i := g.rng.IntN(len(conns))
		c := conns[i]
		if c == nil {
			if conns[i], err = openConn(i); err != nil {
				return err
			}
			continue
		}
		var segs [][]byte
		switch r := g.rng.IntN(20); {
		case r < 14: // one message
			segs = [][]byte{g.message()}
		case r < 17: // two messages in one segment
			segs = [][]byte{append(g.message(), g.message()...)}
		default: // one message split in two
			m := g.message()
			cut := 1 + g.rng.IntN(len(m)-1)
			segs = [][]byte{m[:cut], m[cut:]}
		}
		for _, s := range segs {
			if err := g.write(c.a, c.b, true, c.seq, 0x08, s); err != nil {
				return err
			}
			c.seq += uint32(len(s))
		}
		if c.left--; c.left == 0 {
			if err := g.write(c.a, c.b, true, c.seq, 0x01, nil); err != nil { // FIN
				return err
			}
			conns[i] = nil
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// BenchmarkFloor reads the capture with pcapgo and gopacket's
// DecodingLayerParser and counts payloads that start a SIP response: the
// least any Go exporter on gopacket does per packet.
func BenchmarkFloor(b *testing.B) {
	path := benchCapture(b)
	b.ReportAllocs()
	var eth layers.Ethernet
	var ip4 layers.IPv4
	var ip6 layers.IPv6
	var udp layers.UDP
	var tcp layers.TCP
	var payload gopacket.Payload
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &udp, &tcp, &payload)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	prefix := []byte("SIP/2.0 ")
	var packets, responses int
	for b.Loop() {
		readBenchCapture(b, path, func(data []byte, _ gopacket.CaptureInfo) {
			packets++
			parser.DecodeLayers(data, &decoded) // errors ignored: unsupported layers
			var p []byte
			for _, lt := range decoded {
				switch lt {
				case layers.LayerTypeUDP:
					p = udp.Payload
				case layers.LayerTypeTCP:
					p = tcp.Payload
				}
			}
			if bytes.HasPrefix(p, prefix) {
				responses++
			}
		})
	}
	if responses == 0 {
		b.Fatal("no SIP response found")
	}
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "pkts/s")
}

// readBenchCapture reads the pcap at path with pcapgo's zero-copy reader
// and calls fn for each packet: the reading loop that BenchmarkFloor and
// BenchmarkPipelineDecoder share, so that they differ only in fn.
func readBenchCapture(b *testing.B, path string, fn func(data []byte, ci gopacket.CaptureInfo)) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		b.Fatal(err)
	}
	for {
		data, ci, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
		fn(data, ci)
	}
}

// benchObserver counts like the exporter does: a collector.SIP node,
// responses by code and CSeq method, requests by method.
type benchObserver struct{ node *collector.Node }

func newBenchObserver() *benchObserver {
	return &benchObserver{node: collector.NewSIP(256).Node(nil)}
}

func (c *benchObserver) observe(_ *decode.Origin, m *sip.Message) {
	if m.Response {
		c.node.ObserveResponse(m.StatusCode, m.CSeqMethod)
	} else {
		c.node.ObserveRequest(m.Method)
	}
}

// BenchmarkPipeline reads the capture the way the exporter does: ReadFile,
// Decoder (TCP reassembly, sip.Parse) and counting into collector.SIP.
func BenchmarkPipeline(b *testing.B) {
	path := benchCapture(b)
	b.ReportAllocs()
	c := newBenchObserver()
	st := new(decode.Stats)
	d, err := decode.New(decode.DefaultConfig(), st, c.observe)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		d.Reset()
		if err := input.ReadFile(context.Background(), input.FileConfig{Path: path}, d); err != nil {
			b.Fatal(err)
		}
	}
	if st.Responses.Load() == 0 {
		b.Fatal("no SIP response found")
	}
	var errs uint64
	st.ParseErrors(func(_ string, n uint64) { errs += n })
	if errs != 0 {
		b.Errorf("parse errors: %d", errs)
	}
	b.ReportMetric(float64(st.Packets.Load())/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkPipelineDecoder is BenchmarkPipeline without ReadFile: the
// reading loop of BenchmarkFloor feeding Decoder.Packet, to tell the cost
// of the decoder and scanner from that of ReadFile.
func BenchmarkPipelineDecoder(b *testing.B) {
	path := benchCapture(b)
	b.ReportAllocs()
	c := newBenchObserver()
	st := new(decode.Stats)
	d, err := decode.New(decode.DefaultConfig(), st, c.observe)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		d.Reset()
		readBenchCapture(b, path, func(data []byte, ci gopacket.CaptureInfo) {
			d.Packet(layers.LinkTypeEthernet, data, ci.Timestamp.UnixNano(), ci.Length)
		})
	}
	if st.Responses.Load() == 0 {
		b.Fatal("no SIP response found")
	}
	b.ReportMetric(float64(st.Packets.Load())/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkDecoderUDP decodes one Ethernet/IPv4/UDP 200 OK.
func BenchmarkDecoderUDP(b *testing.B) {
	c := new(counter)
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), c.handle)
	if err != nil {
		b.Fatal(err)
	}
	f := ether(b, udpPacket(b, bob4, alice4, []byte(ok.text)))
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		d.Packet(layers.LinkTypeEthernet, f, 1, len(f))
	}
	if c.responses == 0 {
		b.Fatal("no response")
	}
}

// BenchmarkDecoderTCP decodes one in-order Ethernet/IPv4/TCP segment
// carrying a whole 200 OK on an established flow.
func BenchmarkDecoderTCP(b *testing.B) {
	c := new(counter)
	d, f, seq := warmTCP(b, c, ok.text)
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		binary.BigEndian.PutUint32(f[tcpSeqOffset:], seq)
		seq += uint32(len(ok.text))
		d.Packet(layers.LinkTypeEthernet, f, 1, len(f))
	}
	if c.responses == 0 {
		b.Fatal("no response")
	}
}

// benchFrames decodes the Ethernet frames fs in turn, each b.Loop
// iteration all of them, and fails unless something was counted.
func benchFrames(b *testing.B, fs ...[]byte) {
	c := new(counter)
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), c.handle)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		n += len(f)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range fs {
			d.Packet(layers.LinkTypeEthernet, f, 1, len(f))
		}
	}
	if c.responses+c.requests == 0 {
		b.Fatal("no message")
	}
}

// tunnelFrame frames the IP packet ip in the tunnel of the given name.
func tunnelFrame(b *testing.B, name string, ip []byte) []byte {
	for _, tun := range tunnels {
		if tun.name == name {
			_, f := tun.frame(b, ip)
			return f
		}
	}
	b.Fatalf("no tunnel %q", name)
	return nil
}

// BenchmarkDecoderVXLAN decodes one IPv4/UDP 200 OK inside
// Ethernet/IPv4/UDP/VXLAN/Ethernet: compare with BenchmarkDecoderUDP.
func BenchmarkDecoderVXLAN(b *testing.B) {
	benchFrames(b, tunnelFrame(b, "vxlan", udpPacket(b, bob4, alice4, []byte(ok.text))))
}

// BenchmarkDecoderERSPAN decodes one IPv4/UDP 200 OK mirrored with ERSPAN
// type II (Ethernet/IPv4/GRE/ERSPAN/Ethernet).
func BenchmarkDecoderERSPAN(b *testing.B) {
	benchFrames(b, tunnelFrame(b, "erspan II", udpPacket(b, bob4, alice4, []byte(ok.text))))
}

// benchInvite is an INVITE of about 2,200 bytes: two fragments on a
// 1,500-byte MTU.
var benchInvite = withBody("INVITE sip:bob@biloxi.example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds\nMax-Forwards: 70\nTo: Bob <sip:bob@biloxi.example.com>\nFrom: Alice <sip:alice@atlanta.example.com>;tag=1928301774\nCall-ID: bench@atlanta.example.com\nCSeq: 1 INVITE\nContact: <sip:alice@192.0.2.10>\nContent-Type: application/sdp\nContent-Length: N\n\n",
	longSDP(1900))

// benchFragments returns the Ethernet frames of benchInvite over UDP from
// src to dst in two fragments of a 1,500-byte MTU.
func benchFragments(b *testing.B, src, dst netip.AddrPort) [][]byte {
	ip := udpPacket(b, src, dst, []byte(benchInvite))
	size := 1480
	if src.Addr().Is6() {
		size = 1448
	}
	var fs [][]byte
	for _, f := range fragments(b, ip, size, 42) {
		fs = append(fs, ether(b, f))
	}
	if len(fs) != 2 {
		b.Fatalf("%d fragments, want 2", len(fs))
	}
	return fs
}

// BenchmarkDecoderTwoFragmentINVITE reassembles and decodes an INVITE of
// about 2,200 bytes in two IPv4 fragments (one op: both fragments).
func BenchmarkDecoderTwoFragmentINVITE(b *testing.B) {
	benchFrames(b, benchFragments(b, alice4, bob4)...)
}

// BenchmarkDecoderTwoFragmentINVITEIPv6 is BenchmarkDecoderTwoFragmentINVITE
// over IPv6 (fragment extension header).
func BenchmarkDecoderTwoFragmentINVITEIPv6(b *testing.B) {
	benchFrames(b, benchFragments(b, alice6, bob6)...)
}

// BenchmarkDecoderUnfragmentedINVITE decodes benchInvite in one IPv4
// packet: the cost of reassembly is the difference with
// BenchmarkDecoderTwoFragmentINVITE.
func BenchmarkDecoderUnfragmentedINVITE(b *testing.B) {
	benchFrames(b, ether(b, udpPacket(b, alice4, bob4, []byte(benchInvite))))
}

// BenchmarkDecoderSCTP decodes one IPv4/SCTP packet with a SACK and three
// DATA chunks (INVITE, 100 Trying, 200 OK).
func BenchmarkDecoderSCTP(b *testing.B) {
	benchFrames(b, ether(b, sctpPacket(b, alice4, bob4, sack, whole(messages[0].text), whole(trying), whole(ok.text))))
}
