package input

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// hepRecorder collects what a HEP listener's decoders hand on.
type hepRecorder struct {
	mu    sync.Mutex
	codes map[string]int // "node code"
}

func (r *hepRecorder) handle(o *decode.Origin, m *sip.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := string(o.Node) + " " + string(m.CSeqMethod)
	if m.Response {
		key += " " + string(m.Reason)
	}
	r.codes[key]++
}

func (r *hepRecorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.codes[key]
}

// hepPacket returns a HEPv3 packet carrying msg from node (or agent ID).
func hepPacket(t *testing.T, msg string, node string, agent uint32, key string, proto uint8) []byte {
	t.Helper()
	p := hep.Packet{Version: 3, IPFamily: hep.FamilyIPv4, IPProtocol: 17,
		SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2}, SrcPort: 5060, DstPort: 5060,
		TimestampSeconds: 1700000000, ProtocolType: proto, CaptureAgentID: agent,
		Payload: []byte(msg), NodeName: []byte(node), AuthKey: []byte(key)}
	b, err := hep.AppendV3(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const hepOK = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nCall-ID: a@b\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

func startHEP(t *testing.T, cfg HEPConfig) (*HEPListener, *hepRecorder, *Stats, *Stats) {
	t.Helper()
	rec := &hepRecorder{codes: map[string]int{}}
	udpStats, tcpStats := new(Stats), new(Stats)
	dc := decode.DefaultConfig()
	dc.HEP.AuthKey = cfg.AuthKey
	newDec := func(st *Stats) *decode.Decoder {
		d, err := decode.New(dc, &st.Decode, rec.handle)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	var udpDecs []*decode.Decoder
	for range cfg.UDPWorkers {
		udpDecs = append(udpDecs, newDec(udpStats))
	}
	l, err := ListenHEP(cfg, udpDecs, udpStats, func() (*decode.Decoder, func()) { return newDec(tcpStats), nil }, tcpStats)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = l.ServeUDP(ctx) }()
	go func() { defer wg.Done(); _ = l.ServeTCP(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return l, rec, udpStats, tcpStats
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, 5*time.Second, what, cond)
}

func TestHEPListenerUDP(t *testing.T) {
	cfg := DefaultHEPConfig()
	cfg.Addr = "127.0.0.1:0"
	l, rec, st, _ := startHEP(t, cfg)
	c, err := net.Dial("udp", l.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, b := range [][]byte{
		hepPacket(t, hepOK, "sbc-a", 7, "", hep.ProtocolSIP),
		hepPacket(t, hepOK, "", 2001, "", hep.ProtocolSIP), // node from the capture agent ID
		hepPacket(t, "rtcp", "sbc-a", 7, "", 5),            // not SIP: counted by type
		[]byte("SIP/2.0 200 OK\r\n\r\n"),                   // not HEP at all
	} {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "four datagrams", func() bool { return st.Decode.HEPPackets.Load() == 4 })
	if rec.count("sbc-a OPTIONS OK") != 1 || rec.count("2001 OPTIONS OK") != 1 {
		t.Errorf("handled %v", rec.codes)
	}
	var types []uint8
	st.Decode.HEPTypes(func(pt uint8, n uint64) { types = append(types, pt) })
	if len(types) != 1 || types[0] != 5 {
		t.Errorf("non-SIP types %v, want [5]", types)
	}
	var magic uint64
	st.Decode.HEPErrors(func(r string, n uint64) {
		if r == hep.ErrMagic.Reason {
			magic = n
		}
	})
	if magic != 1 {
		t.Errorf("magic errors %d, want 1", magic)
	}
}

func TestHEPListenerTCP(t *testing.T) {
	cfg := DefaultHEPConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.AuthKey = []byte("secret")
	l, rec, _, st := startHEP(t, cfg)
	good := hepPacket(t, hepOK, "sbc-b", 1, "secret", hep.ProtocolSIP)

	// Two connections: one sends packets back to back and split anywhere;
	// the other sends a bad packet and is closed without affecting the first.
	c1, err := net.Dial("tcp", l.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	stream := append(append(append([]byte{}, good...), good...), good...)
	for _, part := range [][]byte{stream[:3], stream[3 : len(good)+10], stream[len(good)+10:]} {
		if _, err := c1.Write(part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, "three packets over TCP", func() bool { return rec.count("sbc-b OPTIONS OK") == 3 })

	c2, err := net.Dial("tcp", l.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	wrongKey := hepPacket(t, hepOK, "sbc-b", 1, "guess", hep.ProtocolSIP)
	if _, err := c2.Write(wrongKey); err != nil {
		t.Fatal(err)
	}
	eventually(t, "auth failure", func() bool { return st.Decode.HEPAuthFailures.Load() == 1 })
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Error("connection with a bad packet left open")
	}
	if _, err := c1.Write(good); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the good connection still served", func() bool { return rec.count("sbc-b OPTIONS OK") == 4 })
	if got := st.HEPConnsTotal.Load(); got != 2 {
		t.Errorf("connections total %d, want 2", got)
	}
	eventually(t, "one connection open", func() bool { return st.HEPConns.Load() == 1 })
}

func TestHEPListenerMaxConns(t *testing.T) {
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.UDP, cfg.MaxConns = "127.0.0.1:0", false, 1
	l, _, _, st := startHEP(t, cfg)
	c1, err := net.Dial("tcp", l.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	eventually(t, "first connection", func() bool { return st.HEPConns.Load() == 1 })
	c2, err := net.Dial("tcp", l.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	eventually(t, "second connection refused", func() bool { return st.HEPConnsRejected[RejectMaxConnections].Load() == 1 })
}

func TestListenHEPConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*HEPConfig)
	}{
		{"no transport", func(c *HEPConfig) { c.UDP, c.TCP = false, false }},
		{"no connections", func(c *HEPConfig) { c.MaxConns = 0 }},
		{"tiny packets", func(c *HEPConfig) { c.MaxPacketBytes = 10 }},
		{"no connections per address", func(c *HEPConfig) { c.MaxConnsPerAddr = 0 }},
		{"packet timeout above read timeout", func(c *HEPConfig) { c.PacketTimeout = c.ReadTimeout + 1 }},
		{"no packet timeout", func(c *HEPConfig) { c.PacketTimeout = 0 }},
		{"bad address", func(c *HEPConfig) { c.Addr = "127.0.0.1:99999" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultHEPConfig()
			cfg.Addr = "127.0.0.1:0"
			tc.mod(&cfg)
			if _, err := ListenHEP(cfg, nil, new(Stats), nil, new(Stats)); err == nil {
				t.Error("no error")
			}
		})
	}
}

// BenchmarkHEPListenerUDP measures the listener path over UDP on loopback
// on one core: read a datagram from the socket, decode the HEPv3 packet,
// scan the 200 OK it carries and count it. The sender fills the socket
// buffer with the timer stopped; one op is one datagram received.
func BenchmarkHEPListenerUDP(b *testing.B) {
	var handled int
	st := new(Stats)
	d, err := decode.New(decode.DefaultConfig(), &st.Decode, func(*decode.Origin, *sip.Message) { handled++ })
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.TCP = "127.0.0.1:0", false
	l, err := ListenHEP(cfg, []*decode.Decoder{d}, st, nil, new(Stats))
	if err != nil {
		b.Fatal(err)
	}
	rb, err := newUDPBatch(l.udp[0], hepBatch)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("udp", l.UDPAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	pkt, err := hep.AppendV3(nil, &hep.Packet{Version: 3, IPFamily: hep.FamilyIPv4, IPProtocol: 17,
		SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2}, SrcPort: 5060, DstPort: 5060,
		ProtocolType: hep.ProtocolSIP, CaptureAgentID: 1, NodeName: []byte("sbc"), Payload: []byte(hepOK)})
	if err != nil {
		b.Fatal(err)
	}
	pc := ipv4.NewPacketConn(c.(*net.UDPConn))
	batch := make([]ipv4.Message, 64) // fits the default socket buffer
	for i := range batch {
		batch[i].Buffers = [][]byte{pkt}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(len(batch), b.N-done)
		b.StopTimer()
		for sent := 0; sent < n; {
			w, err := pc.WriteBatch(batch[sent:n], 0)
			if err != nil {
				b.Fatal(err)
			}
			sent += w
		}
		b.StartTimer()
		for got := 0; got < n; {
			k, err := l.receiveUDP(rb, d)
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
		done += n
	}
	b.StopTimer()
	if handled != b.N {
		b.Fatalf("handled %d of %d", handled, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// selfSigned returns a TLS certificate for 127.0.0.1 made for the test.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hep test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestHEPListenerTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.UDP = "127.0.0.1:0", false
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	l, rec, _, st := startHEP(t, cfg)
	c, err := tls.Dial("tcp", l.TCPAddr().String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := hepPacket(t, hepOK, "sbc-tls", 1, "", hep.ProtocolSIP)
	if _, err := c.Write(append(append([]byte{}, pkt...), pkt...)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two packets over TLS", func() bool { return rec.count("sbc-tls OPTIONS OK") == 2 })
	if got := st.Decode.HEPPackets.Load(); got != 2 {
		t.Errorf("HEP packets %d, want 2", got)
	}
	// A client speaking plain TCP to the TLS port gets nothing counted.
	plain, err := net.Dial("tcp", l.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, _ = plain.Write(pkt)
	time.Sleep(50 * time.Millisecond)
	if got := rec.count("sbc-tls OPTIONS OK"); got != 2 {
		t.Errorf("plain TCP on the TLS port counted: %d", got)
	}
}

// TestHEPListenerKernelDrops stalls the UDP listener's handler while a
// burst overflows a small socket buffer: the datagrams the kernel dropped
// are counted as kernel drops of the UDP source.
func TestHEPListenerKernelDrops(t *testing.T) {
	if _, ok := udpSocketDrops(mustUDP(t)); !ok {
		t.Skip("no /proc/net/udp drop counters on this system")
	}
	release := make(chan struct{})
	var once sync.Once
	st := new(Stats)
	d, err := decode.New(decode.DefaultConfig(), &st.Decode, func(*decode.Origin, *sip.Message) { once.Do(func() { <-release }) })
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.TCP = "127.0.0.1:0", false
	l, err := ListenHEP(cfg, []*decode.Decoder{d}, st, nil, new(Stats))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.udp[0].SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- l.ServeUDP(ctx) }()
	defer func() {
		cancel()
		<-served
	}()
	c, err := net.Dial("udp", l.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := hepPacket(t, hepOK, "n", 1, "", hep.ProtocolSIP)
	for range 500 {
		c.Write(pkt) //nolint:errcheck // loopback; losses are what is measured
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for st.KernelDrops.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no kernel drops counted after a burst of 500 into a 4 KiB buffer (received %d)", st.Decode.HEPPackets.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := st.Decode.HEPPackets.Load() + st.KernelDrops.Load(); got > 500 {
		t.Errorf("received %d + dropped %d exceeds the 500 sent", st.Decode.HEPPackets.Load(), st.KernelDrops.Load())
	}
}

// mustUDP opens a loopback UDP socket closed at the end of the test.
func mustUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// unstampedPacket returns a HEPv3 packet of hepOK without timestamp
// chunks: the listener stamps it with its time of receipt.
func unstampedPacket(t *testing.T) []byte {
	t.Helper()
	b, err := hep.AppendV3(nil, &hep.Packet{Version: 3, IPFamily: hep.FamilyIPv4, IPProtocol: 17,
		SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2}, SrcPort: 5060, DstPort: 5060,
		ProtocolType: hep.ProtocolSIP, CaptureAgentID: 1, Payload: []byte(hepOK)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHEPListenerUDPBatchClock: every datagram of one read gets the same
// time of receipt, read from the wall clock after the read; a datagram
// without timestamp chunks is stamped with it. Without an allowlist the
// senders are not asked for, and the read allocates nothing.
func TestHEPListenerUDPBatchClock(t *testing.T) {
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.TCP = "127.0.0.1:0", false
	var times, received []int64
	st := new(Stats)
	d, err := decode.New(decode.DefaultConfig(), &st.Decode, func(o *decode.Origin, _ *sip.Message) {
		times, received = append(times, o.Time), append(received, o.Received)
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ListenHEP(cfg, []*decode.Decoder{d}, st, nil, new(Stats))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := newUDPBatch(l.udp[0], hepBatch)
	if err != nil {
		t.Fatal(err)
	}
	b.skipSenders()
	unstamped := unstampedPacket(t)
	c, err := net.Dial("udp", l.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		if _, err := c.Write(unstamped); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().UnixNano()
	n, err := l.receiveUDP(b, d)
	after := time.Now().UnixNano()
	if err != nil || n != 5 {
		t.Fatalf("read %d (%v), want the 5 datagrams sent", n, err)
	}
	for i := range received {
		if received[i] < before || received[i] > after || received[i] != received[0] || times[i] != received[i] {
			t.Errorf("datagram %d: time %d, received %d; want one time of receipt in [%d, %d] for the batch", i, times[i], received[i], before, after)
		}
	}
	if _, from := b.datagram(0); from.IsValid() {
		t.Errorf("sender %v read without an allowlist", from)
	}
	// AllocsPerRun reads 5 batches of 16 (one to warm up).
	b, err = newUDPBatch(l.udp[0], 16)
	if err != nil {
		t.Fatal(err)
	}
	b.skipSenders()
	for range 6 * 16 {
		if _, err := c.Write(unstamped); err != nil {
			t.Fatal(err)
		}
	}
	times, received = make([]int64, 0, 128), make([]int64, 0, 128)
	if a := testing.AllocsPerRun(4, func() {
		if _, err := l.receiveUDP(b, d); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%.1f allocations per batch, want 0", a)
	}
}

// TestHEPListenerTCPReceived: the packets a TCP read completes get the
// time of that read as their time of receipt, the capture time of those
// without timestamp chunks.
func TestHEPListenerTCPReceived(t *testing.T) {
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.UDP = "127.0.0.1:0", false
	var mu sync.Mutex
	var times, received []int64
	newDec := func() (*decode.Decoder, func()) {
		d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, _ *sip.Message) {
			mu.Lock()
			defer mu.Unlock()
			times, received = append(times, o.Time), append(received, o.Received)
		})
		if err != nil {
			t.Error(err)
		}
		return d, nil
	}
	l, err := ListenHEP(cfg, nil, new(Stats), newDec, new(Stats))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.ServeTCP(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	unstamped := unstampedPacket(t)
	c, err := net.Dial("tcp", l.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := time.Now().UnixNano()
	if _, err := c.Write(append(append([]byte{}, unstamped...), unstamped...)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two packets over TCP", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) == 2 })
	after := time.Now().UnixNano()
	mu.Lock()
	defer mu.Unlock()
	for i := range times {
		if received[i] < before || received[i] > after || times[i] != received[i] {
			t.Errorf("packet %d: time %d, received %d; want the time of its read, in [%d, %d]", i, times[i], received[i], before, after)
		}
	}
}
