package input

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/hep"
)

// The tests of the listener's protections run on 127.0.15.0/24 (Linux
// routes all of 127.0.0.0/8 to the loopback interface): the listener on
// .1, senders on addresses of their own.

// testAddr returns 127.0.15.host.
func testAddr(host byte) net.IP { return net.IPv4(127, 0, 15, host) }

// dialFrom opens a TCP connection from 127.0.15.host to addr.
func dialFrom(t testing.TB, host byte, addr net.Addr) (*net.TCPConn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: testAddr(host)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// protectConfig is the listener configuration of these tests: on
// 127.0.15.1, TCP only.
func protectConfig() HEPConfig {
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.UDP = "127.0.15.1:0", false
	return cfg
}

// closed returns the count of served connections closed for reason r.
func closed(st *Stats, r CloseReason) uint64 { return st.HEPConnsClosed[r].Load() }

// rejected returns the count of connections refused for reason r.
func rejected(st *Stats, r RejectReason) uint64 { return st.HEPConnsRejected[r].Load() }

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// heapInUse returns the heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// trickler holds TCP connections that each send the first bytes of a HEP
// packet and then one more byte every interval, never completing it: the
// slow sender of a slot-exhaustion attack.
type trickler struct {
	mu    sync.Mutex
	conns []*net.TCPConn
	stop  chan struct{}
	done  sync.WaitGroup
}

// startTrickle opens n connections to addr from 127.0.15.first onwards,
// perAddr from each address, and trickles on all of them.
func startTrickle(t *testing.T, addr net.Addr, n, perAddr int, first byte, interval time.Duration) *trickler {
	t.Helper()
	tr := &trickler{stop: make(chan struct{})}
	head := []byte("HEP3\xff\xf0") // a packet of 65,520 bytes, never sent whole
	for i := range n {
		c, err := dialFrom(t, first+byte(i/perAddr), addr)
		if err != nil {
			t.Fatalf("trickler %d: %v", i, err)
		}
		if _, err := c.Write(head); err != nil {
			t.Fatalf("trickler %d: %v", i, err)
		}
		tr.conns = append(tr.conns, c)
	}
	tr.done.Add(1)
	go func() {
		defer tr.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			for _, c := range tr.conns {
				_ = c.SetWriteDeadline(time.Now().Add(interval))
				_, _ = c.Write([]byte{0}) // fails once the listener closed it
			}
		}
	}()
	t.Cleanup(tr.close)
	return tr
}

func (tr *trickler) close() {
	select {
	case <-tr.stop:
		return
	default:
	}
	close(tr.stop)
	tr.done.Wait()
	for _, c := range tr.conns {
		c.Close()
	}
}

// sendAll is a HEP agent: it connects from 127.0.15.host, retrying while
// the listener refuses it (as Kamailio's and heplify's TCP transports
// reconnect), and sends every packet once connected. It returns the
// connection attempts refused.
func sendAll(t *testing.T, st *Stats, host byte, addr net.Addr, pkts [][]byte, within time.Duration) int {
	t.Helper()
	refusedBefore := rejected(st, RejectMaxConnections) + rejected(st, RejectPerAddress) + rejected(st, RejectNotAllowed)
	deadline := time.Now().Add(within)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		accepted := st.HEPConnsTotal.Load()
		refused := rejected(st, RejectMaxConnections) + rejected(st, RejectPerAddress) + rejected(st, RejectNotAllowed)
		c, err := dialFrom(t, host, addr)
		if err != nil {
			t.Fatal(err)
		}
		// The listener's verdict, as the agent would see it from a
		// reset or from its packets being acknowledged.
		waitFor(t, 5*time.Second, "the listener's verdict", func() bool {
			return st.HEPConnsTotal.Load() > accepted ||
				rejected(st, RejectMaxConnections)+rejected(st, RejectPerAddress)+rejected(st, RejectNotAllowed) > refused
		})
		if st.HEPConnsTotal.Load() == accepted {
			c.Close()
			time.Sleep(20 * time.Millisecond) // reconnect backoff
			continue
		}
		for _, p := range pkts {
			if _, err := c.Write(p); err != nil {
				t.Fatalf("agent write: %v", err)
			}
		}
		t.Cleanup(func() { c.Close() })
		return int(rejected(st, RejectMaxConnections) + rejected(st, RejectPerAddress) + rejected(st, RejectNotAllowed) - refusedBefore)
	}
	t.Fatalf("agent not served within %v", within)
	return 0
}

// agentPackets returns n HEP packets of a 200 OK from node.
func agentPackets(t *testing.T, node string, n int) [][]byte {
	t.Helper()
	p := hepPacket(t, hepOK, node, 1, "", hep.ProtocolSIP)
	out := make([][]byte, n)
	for i := range out {
		out[i] = p
	}
	return out
}

// TestHEPListenerTrickle opens 1,000 TCP connections that trickle a byte
// every 100 ms into a packet they never complete, from 20 addresses, while
// a HEP agent sends 1,000 messages: every message is counted, and the
// tricklers lose their slots once --hep.packet-timeout has passed since
// their first byte, however often they send. With every slot taken
// ("full"), the agent is refused at first and served once the tricklers'
// packet timeout has passed; before the packet deadline, each byte renewed
// a trickler's read deadline and the agent was locked out for good.
func TestHEPListenerTrickle(t *testing.T) {
	const tricklers, messages = 1000, 1000
	for _, tc := range []struct {
		name     string
		maxConns int
		timeout  time.Duration
	}{
		{"room", DefaultHEPConfig().MaxConns, 3 * time.Second},
		{"full", tricklers, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := protectConfig()
			cfg.MaxConns, cfg.PacketTimeout = tc.maxConns, tc.timeout
			l, rec, _, st := startHEP(t, cfg)
			start := time.Now()
			before := heapInUse()
			tr := startTrickle(t, l.TCPAddr(), tricklers, tricklers/20, 10, 100*time.Millisecond)
			waitFor(t, 10*time.Second, "every trickler served", func() bool { return st.HEPConns.Load() == tricklers })
			t.Logf("%d trickling connections open after %v; heap in use %+.1f MiB (listener and test clients)",
				tricklers, time.Since(start).Round(time.Millisecond), float64(int64(heapInUse())-int64(before))/(1<<20))
			sent := time.Now()
			refused := sendAll(t, st, 2, l.TCPAddr(), agentPackets(t, "agent", messages), 10*time.Second)
			waitFor(t, 10*time.Second, "every message counted", func() bool { return rec.count("agent OPTIONS OK") == messages })
			t.Logf("agent: %d messages counted %v after it started, %d connection attempts refused first; tricklers still open: %d",
				messages, time.Since(sent).Round(time.Millisecond), refused, st.HEPConns.Load()-1)
			switch tc.name {
			case "room":
				if refused != 0 {
					t.Errorf("agent refused %d times with slots free", refused)
				}
			case "full":
				if refused == 0 {
					t.Error("agent never refused: the slots were not full")
				}
			}
			waitFor(t, tc.timeout+30*time.Second, "every trickler closed as slow", func() bool { return closed(st, CloseSlow) == tricklers })
			tr.close()
			if got := rec.count("agent OPTIONS OK"); got != messages {
				t.Errorf("agent messages %d, want %d", got, messages)
			}
		})
	}
}

// TestHEPListenerPacketTimeout: a packet must be complete within
// --hep.packet-timeout of its first byte whatever the reads in between,
// while a connection may last any time as long as each packet is quick
// and the gaps between packets are below the read timeout; an idle
// connection is closed after the read timeout; a TLS client that does not
// finish its handshake is closed after the packet timeout.
func TestHEPListenerPacketTimeout(t *testing.T) {
	cfg := protectConfig()
	cfg.PacketTimeout, cfg.ReadTimeout = 300*time.Millisecond, 2*time.Second
	l, rec, _, st := startHEP(t, cfg)
	pkt := hepPacket(t, hepOK, "steady", 1, "", hep.ProtocolSIP)

	// Steady: one packet every 150 ms for 1.2 s, each split in two
	// writes 50 ms apart: four packet timeouts in all, never one per packet.
	steady, err := dialFrom(t, 2, l.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer steady.Close()
	// Slow: the header, then a byte every 50 ms.
	slow, err := dialFrom(t, 3, l.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slowStart := time.Now()
	if _, err := slow.Write(pkt[:10]); err != nil {
		t.Fatal(err)
	}
	var slowClosed time.Duration
	go func() {
		for i := 10; i < len(pkt); i++ {
			time.Sleep(50 * time.Millisecond)
			if _, err := slow.Write(pkt[i : i+1]); err != nil {
				return
			}
		}
	}()
	for range 8 {
		if _, err := steady.Write(pkt[:20]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := steady.Write(pkt[20:]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if closed(st, CloseSlow) == 1 && slowClosed == 0 {
			slowClosed = time.Since(slowStart)
		}
	}
	waitFor(t, 2*time.Second, "steady packets", func() bool { return rec.count("steady OPTIONS OK") == 8 })
	waitFor(t, 2*time.Second, "slow sender closed", func() bool { return closed(st, CloseSlow) == 1 })
	// No timed assertion: the slow sender sends a byte every 50 ms, so
	// only the per-packet deadline (not the 2 s idle timeout) can close it
	// as slow, and it is closed long before its trickle would end.
	if slowClosed == 0 {
		slowClosed = time.Since(slowStart)
	}
	t.Logf("slow sender closed after %v (packet timeout %v)", slowClosed, cfg.PacketTimeout)
	if got := st.HEPConns.Load(); got != 1 {
		t.Errorf("%d connections open, want the steady one", got)
	}
	// Idle: the steady connection, now silent, is closed after the read
	// timeout; the partial packet cut short counts no message.
	waitFor(t, cfg.ReadTimeout+2*time.Second, "idle connection closed", func() bool { return closed(st, CloseIdle) == 1 })

	// TLS: a client that connects and never starts its handshake.
	cert, _ := selfSigned(t)
	tcfg := protectConfig()
	tcfg.PacketTimeout, tcfg.ReadTimeout = 300*time.Millisecond, time.Minute
	tcfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	tl, _, _, tst := startHEP(t, tcfg)
	mute, err := dialFrom(t, 4, tl.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	if _, err := mute.Write([]byte{0x16, 0x03}); err != nil { // the start of a ClientHello record
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "TLS handshake timed out", func() bool { return closed(tst, CloseHandshake) == 1 })
}

// TestHEPListenerPerAddress: past --hep.max-connections-per-address from
// one address, connections are refused and counted; other addresses are
// not affected, and a slot freed is usable again.
func TestHEPListenerPerAddress(t *testing.T) {
	cfg := protectConfig()
	cfg.MaxConnsPerAddr = 2
	l, rec, _, st := startHEP(t, cfg)
	var conns []*net.TCPConn
	for range 3 {
		c, err := dialFrom(t, 3, l.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitFor(t, 2*time.Second, "third connection refused", func() bool { return rejected(st, RejectPerAddress) == 1 })
	if got := st.HEPConns.Load(); got != 2 {
		t.Errorf("%d connections open, want 2", got)
	}
	sendAll(t, st, 4, l.TCPAddr(), agentPackets(t, "other-host", 3), 2*time.Second)
	waitFor(t, 2*time.Second, "other host served", func() bool { return rec.count("other-host OPTIONS OK") == 3 })
	conns[0].Close()
	waitFor(t, 2*time.Second, "slot freed", func() bool { return closed(st, CloseEOF) == 1 })
	sendAll(t, st, 3, l.TCPAddr(), agentPackets(t, "again", 1), 2*time.Second)
	waitFor(t, 2*time.Second, "same host served again", func() bool { return rec.count("again OPTIONS OK") == 1 })
	if got := rejected(st, RejectPerAddress); got != 1 {
		t.Errorf("refused per address %d, want 1", got)
	}
}

// TestHEPListenerAllowedNetworks: with --hep.allowed-networks, datagrams
// and connections from elsewhere are dropped before decoding and counted.
func TestHEPListenerAllowedNetworks(t *testing.T) {
	nets, err := ParseNetworks([]string{"127.0.15.8/29", "2001:db8::/32", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.AllowedNetworks = "127.0.15.1:0", nets
	l, rec, ust, st := startHEP(t, cfg)

	pkt := hepPacket(t, hepOK, "udp-in", 1, "", hep.ProtocolSIP)
	for _, host := range []byte{9, 20, 15, 16} { // in, out, in, out
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: testAddr(host)}, l.UDPAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitFor(t, 2*time.Second, "datagrams", func() bool {
		return ust.Decode.HEPPackets.Load()+ust.NotAllowedDrops.Load() == 4
	})
	if rec.count("udp-in OPTIONS OK") != 2 || ust.NotAllowedDrops.Load() != 2 {
		t.Errorf("counted %d, dropped not_allowed %d; want 2 and 2", rec.count("udp-in OPTIONS OK"), ust.NotAllowedDrops.Load())
	}

	c, err := dialFrom(t, 20, l.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, 2*time.Second, "connection refused", func() bool { return rejected(st, RejectNotAllowed) == 1 })
	sendAll(t, st, 10, l.TCPAddr(), agentPackets(t, "tcp-in", 2), 2*time.Second)
	waitFor(t, 2*time.Second, "allowed sender served", func() bool { return rec.count("tcp-in OPTIONS OK") == 2 })
	if st.Decode.HEPPackets.Load() != 2 {
		t.Errorf("TCP HEP packets %d, want 2 (none from the refused sender)", st.Decode.HEPPackets.Load())
	}
}

func TestParseNetworks(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string // the prefixes, or the error
	}{
		{[]string{"10.0.0.0/8, 2001:db8::/32", "192.0.2.1", "::1", ""}, "[10.0.0.0/8 2001:db8::/32 192.0.2.1/32 ::1/128]"},
		{nil, "[]"},
		{[]string{"10.0.0.1/8"}, `network "10.0.0.1/8": host bits set (the network is 10.0.0.0/8)`},
		{[]string{"10.0.0.0/33"}, `network "10.0.0.0/33": netip.ParsePrefix("10.0.0.0/33"): prefix length out of range`},
		{[]string{"example.net"}, `network "example.net": not a CIDR prefix or address: ParseAddr("example.net"): unexpected character (at "example.net")`},
		{[]string{"::ffff:10.0.0.0/104"}, `network "::ffff:10.0.0.0/104": IPv4-mapped: write the IPv4 network`},
		{[]string{"fe80::1%eth0"}, `network "fe80::1%eth0": zoned or IPv4-mapped address: write the plain address`},
	} {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			got, err := ParseNetworks(tc.in)
			s := fmt.Sprint(got)
			if err != nil {
				s = err.Error()
			}
			if s != tc.want {
				t.Errorf("got %s\nwant %s", s, tc.want)
			}
		})
	}
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.AllowedNetworks = "127.0.15.1:0", []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}
	if _, err := ListenHEP(cfg, nil, new(Stats), nil, new(Stats)); err == nil {
		t.Error("ListenHEP took a prefix with host bits")
	}
}

// TestHEPListenerGrowsBuffer: a connection starts with a small buffer and
// grows it to the length of the packet being read: a 40 KiB packet split
// across many writes is counted; a length field past --hep.max-packet-size
// closes the connection as too_large.
func TestHEPListenerGrowsBuffer(t *testing.T) {
	cfg := protectConfig()
	cfg.MaxPacketBytes = 48 << 10
	l, rec, _, st := startHEP(t, cfg)
	body := make([]byte, 40<<10)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	big := hepPacket(t, fmt.Sprintf("SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nContent-Length: %d\r\n\r\n%s", len(body), body), "big", 1, "", hep.ProtocolSIP)
	small := hepPacket(t, hepOK, "big", 1, "", hep.ProtocolSIP)
	c, err := dialFrom(t, 2, l.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream := append(append(append([]byte{}, small...), big...), small...)
	for off := 0; off < len(stream); off += 3000 {
		if _, err := c.Write(stream[off:min(off+3000, len(stream))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, 2*time.Second, "three packets", func() bool { return rec.count("big OPTIONS OK") == 3 })

	huge, err := dialFrom(t, 3, l.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer huge.Close()
	if _, err := huge.Write([]byte("HEP3\xc0\x01")); err != nil { // 49,153 bytes
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "too large closed", func() bool { return closed(st, CloseTooLarge) == 1 })
}

// TestHEPListenerRandomBytes sends random bytes to both listeners: 5,000
// datagrams and 300 connections of up to 4 KiB each (some starting with
// the HEPv3 magic, so that chunks are parsed). Nothing panics, every
// datagram is counted as a HEP packet (decoded, or counted under a decode
// error reason), and every connection ends with a reason.
func TestHEPListenerRandomBytes(t *testing.T) {
	cfg := DefaultHEPConfig()
	cfg.Addr, cfg.PacketTimeout, cfg.ReadTimeout = "127.0.15.1:0", 300*time.Millisecond, 300*time.Millisecond
	l, _, ust, st := startHEP(t, cfg)
	r := rand.New(rand.NewPCG(13, 2026))
	random := func() []byte {
		b := make([]byte, r.IntN(4096))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if len(b) >= 6 && r.IntN(2) == 0 {
			copy(b, "HEP3")
			if r.IntN(2) == 0 { // a length that fits
				b[4], b[5] = byte(len(b)>>8), byte(len(b))
			}
		}
		return b
	}
	const datagrams, conns = 5000, 300
	u, err := net.DialUDP("udp", &net.UDPAddr{IP: testAddr(2)}, l.UDPAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for i := range datagrams {
		if _, err := u.Write(random()); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			time.Sleep(time.Millisecond) // stay within the socket buffer
		}
	}
	for i := range conns {
		c, err := dialFrom(t, byte(3+i%50), l.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(random())
		if i%2 == 0 {
			c.Close() // else left open: closed by a timeout or a bad packet
		} else {
			defer c.Close()
		}
	}
	waitFor(t, 5*time.Second, "every datagram", func() bool {
		return ust.Decode.HEPPackets.Load()+ust.KernelDrops.Load() >= datagrams
	})
	waitFor(t, 5*time.Second, "every connection closed", func() bool {
		var sum uint64
		for i := range st.HEPConnsClosed {
			sum += st.HEPConnsClosed[i].Load()
		}
		return sum == conns && st.HEPConnsTotal.Load() == conns
	})
	var errs uint64
	ust.Decode.HEPErrors(func(reason string, n uint64) { errs += n })
	if errs == 0 || errs > ust.Decode.HEPPackets.Load() {
		t.Errorf("UDP: %d decode errors of %d packets", errs, ust.Decode.HEPPackets.Load())
	}
	var reasons []string
	for i := range st.HEPConnsClosed {
		if n := st.HEPConnsClosed[i].Load(); n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s=%d", CloseReason(i), n))
		}
	}
	var tcpErrs []string
	st.Decode.HEPErrors(func(reason string, n uint64) {
		if n > 0 {
			tcpErrs = append(tcpErrs, fmt.Sprintf("%s=%d", reason, n))
		}
	})
	t.Logf("UDP: %d datagrams, %d decode errors, %d kernel drops; TCP: %d connections closed %v, decode errors %v",
		ust.Decode.HEPPackets.Load(), errs, ust.KernelDrops.Load(), conns, reasons, tcpErrs)
}
