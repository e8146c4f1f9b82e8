package input

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/hep"
)

// HEPConfig says how HEP is received from SIP servers and capture agents
// (Kamailio siptrace, OpenSIPS proto_hep, FreeSWITCH, Asterisk res_hep,
// heplify, captagent).
type HEPConfig struct {
	Addr     string      // HOST:PORT; 9060 is the conventional port
	UDP, TCP bool        // transports to listen on (both on the same address)
	TLS      *tls.Config // when set, TCP connections are TLS
	AuthKey  []byte      // when set, HEPv3 packets whose auth key chunk differs are dropped and counted
	MaxConns int         // TCP connections served at once; further ones are closed at once and counted
	// MaxConnsPerAddr bounds the TCP connections served at once from one
	// source address, an IPv6 sender's /64 (at least 1; above MaxConns it
	// has no effect); further ones are closed at once and counted, so that
	// one host cannot take every slot.
	MaxConnsPerAddr int
	// AllowedNetworks, when not empty, are the only sender networks: a
	// datagram from elsewhere is dropped and a connection from elsewhere
	// closed at once, both counted, before anything is read or decoded.
	// IPv4-mapped IPv6 senders match IPv4 prefixes.
	AllowedNetworks []netip.Prefix
	ReadTimeout     time.Duration // a TCP connection with no byte of a packet for this long is closed (idle)
	// PacketTimeout bounds the time from the first byte of a TCP packet
	// (HEPv3 header included; the TLS handshake before the first packet
	// too) to its last: a sender trickling bytes cannot hold a connection
	// slot for longer. At most ReadTimeout.
	PacketTimeout  time.Duration
	MaxPacketBytes int // largest HEP packet accepted on TCP; a larger length field closes the connection
	// UDPWorkers is the number of UDP sockets, each read by its own
	// goroutine into its own decoder (1 to 64). Above 1 they share Addr
	// with SO_REUSEPORT (Linux only): the kernel spreads senders over
	// them by a hash of their address and port, so the datagrams of one
	// sender stay on one socket, in order.
	UDPWorkers int
	// ReadInterval is how long a UDP worker whose read did not fill its
	// batch, or a plain TCP connection whose read did not fill its
	// buffer, waits before it reads again: until the next multiple of
	// ReadInterval since the Unix epoch, so that the workers and the
	// merge (merge.Config.ReadInterval, whose value main gives here) wake
	// together. The socket's buffer holds what comes meanwhile: a
	// moderate source is read in batches, and costs a wake-up per
	// interval, not per datagram or segment. 0 reads again at once.
	ReadInterval time.Duration
}

// DefaultHEPConfig returns UDP and TCP on :9060, 1,024 connections, 64
// from one address, a 5 minute read (idle) timeout, a 10 second packet
// timeout and 64 KiB packets, from any address, one UDP socket, and a
// read interval of 10 ms (the merge's at its default lateness).
func DefaultHEPConfig() HEPConfig {
	return HEPConfig{Addr: ":9060", UDP: true, TCP: true, MaxConns: 1024, MaxConnsPerAddr: 64,
		ReadTimeout: 5 * time.Minute, PacketTimeout: 10 * time.Second, MaxPacketBytes: 64 << 10, UDPWorkers: 1,
		ReadInterval: 10 * time.Millisecond}
}

// MaxUDPWorkers bounds [HEPConfig.UDPWorkers].
const MaxUDPWorkers = 64

// hepBatch is how many datagrams one read of a UDP socket returns at most
// (recvmmsg(2)); each has a buffer of 64 KiB, of which only the pages
// datagrams are written to become resident.
const hepBatch = 64

// hepReadBuffer is the receive buffer asked for each UDP socket. The
// kernel counts a datagram at its buffer's true size (about 2.3 KB for a
// HEP packet of a 900-byte SIP message on loopback) and doubles what is
// asked: 32 MiB hold about 14,000 such datagrams, 140 ms at 100,000 per
// second, 14 read intervals, room for a reader that waits its interval
// and then for the CPU. As root (CAP_NET_ADMIN) it is set past
// net.core.rmem_max (SO_RCVBUFFORCE), else up to it. The memory is taken
// only while datagrams wait.
const hepReadBuffer = 16 << 20

// hepFirstRead is the buffer a HEP TCP connection starts with: a SIP
// message of a few kilobytes and its HEP chunks. It grows on demand,
// doubling up to the length field of the packet being read (at most
// MaxPacketBytes).
const hepFirstRead = 4 << 10

// HEPListener receives HEP over UDP and TCP (optionally TLS). Each
// datagram, and each packet of a TCP stream, goes through a [decode.Decoder]'s HEP
// path: decoded, authenticated, and its SIP payload scanned and handed on.
type HEPListener struct {
	cfg      HEPConfig
	udp      []*udpSocket // one per worker
	tcp      net.Listener
	udpD     []*decode.Decoder // one per worker
	udpStats *Stats
	// newDecoder makes the decoder of one TCP connection, and the function
	// to call when the connection has ended.
	newDecoder func() (*decode.Decoder, func())
	tcpStats   *Stats
}

// ListenHEP opens the sockets of cfg. udpDecoders decode datagrams, one
// per UDP worker (cfg.UDPWorkers of them; each is used by its worker's
// goroutine only), and the datagrams the kernel drops are counted in
// udpStats; the decoders that
// newTCPDecoder makes (one per connection, on the connection's goroutine)
// must count into tcpStats.Decode, and connections are counted in
// tcpStats; the function it returns with each decoder is called once its
// connection has ended (nil for none). It returns an error naming the address when a socket cannot be
// opened or cfg is out of range.
func ListenHEP(cfg HEPConfig, udpDecoders []*decode.Decoder, udpStats *Stats, newTCPDecoder func() (*decode.Decoder, func()), tcpStats *Stats) (*HEPListener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.UDP && len(udpDecoders) != cfg.UDPWorkers {
		return nil, fmt.Errorf("hep listener %s: %d UDP decoders for %d workers", cfg.Addr, len(udpDecoders), cfg.UDPWorkers)
	}
	l := &HEPListener{cfg: cfg, udpD: udpDecoders, udpStats: udpStats, newDecoder: newTCPDecoder, tcpStats: tcpStats}
	if cfg.UDP {
		if err := l.listenUDP(); err != nil {
			l.Close()
			return nil, err
		}
	}
	if cfg.TCP {
		tl, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("hep listener: %w", err)
		}
		l.tcp = tl // TLS is layered per connection, over its pacedConn
	}
	return l, nil
}

// listenUDP opens cfg.UDPWorkers UDP sockets on cfg.Addr: one as before,
// or several with SO_REUSEPORT, the later ones on the port the first got
// (cfg.Addr may have port 0).
func (l *HEPListener) listenUDP() error {
	addr, err := net.ResolveUDPAddr("udp", l.cfg.Addr)
	if err != nil {
		return fmt.Errorf("hep listener %s: %w", l.cfg.Addr, err)
	}
	lc := net.ListenConfig{}
	at := addr.String()
	if l.cfg.UDPWorkers > 1 {
		lc.Control = reusePort
		// The port first bound plainly: a port taken by another process,
		// even one that set SO_REUSEPORT too, fails here, at start,
		// instead of the two sharing the traffic unseen.
		probe, err := net.ListenPacket("udp", at)
		if err != nil {
			return fmt.Errorf("hep listener: %w", err)
		}
		at = probe.LocalAddr().String()
		probe.Close()
	}
	for range l.cfg.UDPWorkers {
		c, err := listenUDPSocket(lc, at)
		if err != nil {
			return fmt.Errorf("hep listener: %w", err)
		}
		setReadBuffer(c, hepReadBuffer) // best effort
		l.udp = append(l.udp, c)
		at = c.LocalAddr().String()
	}
	return nil
}

// Validate checks cfg as [ListenHEP] does, without opening anything: at
// least one transport, MaxConns, MaxConnsPerAddr and MaxPacketBytes (64 to
// 1 MiB) in range, UDPWorkers 1 to [MaxUDPWorkers] with UDP, positive timeouts with PacketTimeout at most
// ReadTimeout, ReadInterval 0 to 1 s, and AllowedNetworks of network addresses. The error names
// the address and the value.
func (cfg HEPConfig) Validate() error {
	switch {
	case !cfg.UDP && !cfg.TCP:
		return fmt.Errorf("hep listener %s: no transport", cfg.Addr)
	case cfg.MaxConns < 1:
		return fmt.Errorf("hep listener %s: max connections %d: must be at least 1", cfg.Addr, cfg.MaxConns)
	case cfg.MaxConnsPerAddr < 1:
		return fmt.Errorf("hep listener %s: max connections per address %d: must be at least 1", cfg.Addr, cfg.MaxConnsPerAddr)
	case cfg.MaxPacketBytes < 64 || cfg.MaxPacketBytes > 1<<20:
		return fmt.Errorf("hep listener %s: max packet %d bytes: must be 64..1048576", cfg.Addr, cfg.MaxPacketBytes)
	case cfg.ReadTimeout <= 0:
		return fmt.Errorf("hep listener %s: read timeout %v: must be positive", cfg.Addr, cfg.ReadTimeout)
	case cfg.PacketTimeout <= 0 || cfg.PacketTimeout > cfg.ReadTimeout:
		return fmt.Errorf("hep listener %s: packet timeout %v: must be positive and at most the read timeout %v", cfg.Addr, cfg.PacketTimeout, cfg.ReadTimeout)
	case cfg.UDP && (cfg.UDPWorkers < 1 || cfg.UDPWorkers > MaxUDPWorkers):
		return fmt.Errorf("hep listener %s: UDP workers %d: must be 1..%d", cfg.Addr, cfg.UDPWorkers, MaxUDPWorkers)
	case cfg.ReadInterval < 0 || cfg.ReadInterval > time.Second:
		return fmt.Errorf("hep listener %s: read interval %v: must be 0 to 1s", cfg.Addr, cfg.ReadInterval)
	}
	for _, p := range cfg.AllowedNetworks {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("hep listener %s: allowed network %q: not a network address (want e.g. %s)", cfg.Addr, p, p.Masked())
		}
	}
	return nil
}

// ParseNetworks parses a list of sender networks for
// [HEPConfig.AllowedNetworks]: CIDR prefixes ("192.0.2.0/24",
// "2001:db8::/32") or single addresses (a /32 or /128); an element may
// hold several, comma-separated, and empty ones are skipped. The error
// names the first bad value and why: not a prefix or address, host bits
// set, a zone or an IPv4-mapped form.
func ParseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for s := range strings.SplitSeq(strings.Join(list, ","), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			if p, err = netip.ParsePrefix(s); err != nil {
				return nil, fmt.Errorf("network %q: %w", s, err)
			}
			if p != p.Masked() {
				return nil, fmt.Errorf("network %q: host bits set (the network is %s)", s, p.Masked())
			}
			if p.Addr().Is4In6() {
				return nil, fmt.Errorf("network %q: IPv4-mapped: write the IPv4 network", s)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("network %q: not a CIDR prefix or address: %w", s, err)
			}
			if a.Zone() != "" || a.Is4In6() {
				return nil, fmt.Errorf("network %q: zoned or IPv4-mapped address: write the plain address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// allowed reports whether a sender at a may send: always without
// AllowedNetworks.
func (l *HEPListener) allowed(a netip.Addr) bool {
	if len(l.cfg.AllowedNetworks) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range l.cfg.AllowedNetworks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// UDPAddr returns the bound UDP address, or nil without UDP.
func (l *HEPListener) UDPAddr() net.Addr {
	if len(l.udp) == 0 {
		return nil
	}
	return l.udp[0].LocalAddr()
}

// TCPAddr returns the bound TCP address, or nil without TCP.
func (l *HEPListener) TCPAddr() net.Addr {
	if l.tcp == nil {
		return nil
	}
	return l.tcp.Addr()
}

// Close closes the sockets; Serve then returns.
func (l *HEPListener) Close() {
	for _, c := range l.udp {
		c.Close()
	}
	if l.tcp != nil {
		l.tcp.Close()
	}
}

// ServeUDP reads datagrams, each UDP worker on its own goroutine, until
// ctx is done or the sockets are closed. It returns nil then, or the
// first read error that stopped a worker (the others are stopped too).
func (l *HEPListener) ServeUDP(ctx context.Context) error {
	if len(l.udp) == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, l.Close)
	defer stop()
	// Datagrams the kernel drops when a socket buffer is full are
	// counted as kernel drops, summed over the sockets and read every
	// statsInterval off the read path; after a reopening they add to
	// those of the sockets before.
	base := l.udpStats.KernelDrops.Load()
	socks := make([]syscall.Conn, len(l.udp))
	for i, c := range l.udp {
		socks[i] = c
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(statsInterval)
		defer t.Stop()
		for {
			if n, ok := udpSocketDrops(socks...); ok {
				l.udpStats.KernelDrops.Store(base + n)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	errc := make(chan error, len(l.udp))
	for i := range l.udp {
		go func() {
			err := l.serveUDPWorker(i)
			l.Close() // one worker stopped: stop them all (the source is reopened whole)
			errc <- err
		}()
	}
	var first error
	for range l.udp {
		err := <-errc
		if err != nil && first == nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
			first = err
		}
	}
	return first
}

// serveUDPWorker reads batches from UDP socket i into decoder i until a
// read fails. A read that did not fill the batch is followed by a wait
// until the next tick of ReadInterval, so that steady traffic is read in
// batches, not a datagram per wake-up; a read that finds nothing waits
// for the socket (no wake-ups while the source is silent).
func (l *HEPListener) serveUDPWorker(i int) error {
	b, err := newUDPBatch(l.udp[i], hepBatch)
	if err != nil {
		return fmt.Errorf("hep listener %s: %w", l.udp[i].LocalAddr(), err)
	}
	if len(l.cfg.AllowedNetworks) == 0 {
		b.skipSenders() // only the allowlist reads them
	}
	for {
		n, err := l.receiveUDP(b, l.udpD[i])
		if err != nil {
			return fmt.Errorf("hep listener %s: read: %w", l.udp[i].LocalAddr(), err)
		}
		if n < b.size() {
			sleepTick(l.cfg.ReadInterval)
		}
	}
}

// sleepTick waits until the next multiple of step since the Unix epoch
// (at once for step 0): readers on one grid wake together, and with the
// merge, whose grid is a multiple of theirs.
func sleepTick(step time.Duration) {
	if step <= 0 {
		return
	}
	s := int64(step)
	time.Sleep(time.Duration(s - time.Now().UnixNano()%s))
}

// receiveUDP reads one batch of datagrams (at least one: it waits) and
// decodes them in order into d: the whole per-packet path of the UDP
// listener. The wall clock is read once, after the read: the batch's
// time of receipt ([decode.Decoder.SetReceived]). With AllowedNetworks, a
// datagram from elsewhere is dropped and counted (reason not_allowed)
// undecoded. It returns how many datagrams the batch held.
func (l *HEPListener) receiveUDP(b *udpBatch, d *decode.Decoder) (int, error) {
	n, err := b.read()
	if err != nil {
		return 0, err
	}
	d.SetReceived(time.Now().UnixNano())
	l.udpStats.HEPUDPReads.Add(1)
	check := len(l.cfg.AllowedNetworks) > 0
	for i := range n {
		p, from := b.datagram(i)
		if check && !l.allowed(from) {
			l.udpStats.NotAllowedDrops.Add(1)
			continue
		}
		d.HEP(p)
	}
	return n, nil
}

// ServeTCP accepts connections until ctx is done or the listener is
// closed, and serves each on its own goroutine with its own decoder. A
// connection from outside AllowedNetworks, from an address that has
// MaxConnsPerAddr open, or past MaxConns is closed at once, in that order
// of checks, and counted by reason ([Stats.HEPConnsRejected]).
func (l *HEPListener) ServeTCP(ctx context.Context) error {
	if l.tcp == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, l.Close)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var (
		mu      sync.Mutex
		open    = map[net.Conn]struct{}{}
		perAddr = map[netip.Addr]int{}
		closing bool
	)
	defer func() {
		mu.Lock()
		closing = true
		for c := range open {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("hep listener %s: accept: %w", l.tcp.Addr(), err)
		}
		var addr netip.Addr
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			addr = ta.AddrPort().Addr().Unmap()
		}
		if !l.allowed(addr) {
			l.tcpStats.HEPConnsRejected[RejectNotAllowed].Add(1)
			c.Close()
			continue
		}
		sender := senderKey(addr)
		mu.Lock()
		reject := RejectReason(-1)
		switch {
		case perAddr[sender] >= l.cfg.MaxConnsPerAddr:
			reject = RejectPerAddress
		case len(open) >= l.cfg.MaxConns:
			reject = RejectMaxConnections
		default:
			open[c] = struct{}{}
			perAddr[sender]++
		}
		mu.Unlock()
		if reject >= 0 {
			l.tcpStats.HEPConnsRejected[reject].Add(1)
			c.Close()
			continue
		}
		l.tcpStats.HEPConns.Add(1)
		l.tcpStats.HEPConnsTotal.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			why := l.serveConn(c)
			mu.Lock()
			if closing {
				why = CloseShutdown
			}
			delete(open, c)
			if perAddr[sender]--; perAddr[sender] == 0 {
				delete(perAddr, sender)
			}
			mu.Unlock()
			c.Close()
			l.tcpStats.HEPConnsClosed[why].Add(1)
			l.tcpStats.HEPConns.Add(-1)
		}()
	}
}

// serveConn reads back-to-back HEPv3 packets, framed by their length field,
// until the peer closes, a deadline passes, or a packet is bad (counted;
// the connection is closed, others are not affected), and returns why it
// stopped.
//
// Two deadlines apply: between packets, ReadTimeout (an idle connection);
// from the first byte of a packet (or of the TLS handshake) to its last,
// PacketTimeout, set once and not renewed by further reads, so that a
// sender trickling bytes loses its slot after PacketTimeout. The buffer
// starts at hepFirstRead bytes and doubles when a packet fills it, up to
// the packet's length field (never past MaxPacketBytes): a connection
// holds about twice what it has sent of its current packet.
//
// The wall clock is read once per read of the connection: the time of
// receipt of the packets it completes ([decode.Decoder.SetReceived]) and
// of their deadlines. A plain TCP read that did not fill the buffer is
// followed by a wait until the next tick of ReadInterval, as on UDP.
func (l *HEPListener) serveConn(raw net.Conn) CloseReason {
	// The packet deadline starts at the first byte on the wire, under
	// TLS too (where a record is decrypted only once complete): a
	// connection starts with the TLS handshake or idle.
	pc := &pacedConn{Conn: raw, packet: l.cfg.PacketTimeout}
	var c net.Conn = pc
	if l.cfg.TLS != nil {
		tc := tls.Server(pc, l.cfg.TLS)
		_ = raw.SetDeadline(time.Now().Add(l.cfg.PacketTimeout))
		if err := tc.Handshake(); err != nil {
			return CloseHandshake
		}
		_ = raw.SetWriteDeadline(time.Time{})
		c = tc
	}
	pc.idle = true
	_ = raw.SetReadDeadline(time.Now().Add(l.cfg.ReadTimeout))
	d, done := l.newDecoder()
	if done != nil {
		defer done()
	}
	buf := make([]byte, min(hepFirstRead, l.cfg.MaxPacketBytes))
	have := 0
	for {
		room := len(buf) - have
		n, err := c.Read(buf[have:])
		if n > 0 {
			d.SetReceived(pc.last.UnixNano())
		}
		completed := false
		have += n
		data := buf[:have]
		for len(data) > 0 {
			plen, perr := hep.PacketLength(data)
			if perr == hep.ErrIncomplete {
				break
			}
			if perr != nil {
				d.HEPError(perr)
				return CloseBadPacket
			}
			if plen > l.cfg.MaxPacketBytes {
				d.HEPError(hep.ErrTooLarge)
				return CloseTooLarge
			}
			if plen > len(data) {
				if len(data) == len(buf) {
					// Full: double, up to the packet's length (within
					// MaxPacketBytes), so that a connection holds about
					// what it sent, not what its length field claims.
					nb := make([]byte, min(2*len(buf), plen))
					copy(nb, data)
					buf, data = nb, nb[:len(data)]
				}
				break
			}
			if !d.HEP(data[:plen]) {
				return CloseBadPacket
			}
			data = data[plen:]
			completed = true
		}
		have = copy(buf, data)
		switch {
		case completed && have == 0:
			// Between packets: idle until the next byte arrives.
			pc.idle = true
			_ = raw.SetReadDeadline(pc.last.Add(l.cfg.ReadTimeout))
		case completed:
			// The next packet came with this read: it must be
			// complete within PacketTimeout of now.
			_ = raw.SetReadDeadline(pc.last.Add(l.cfg.PacketTimeout))
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF):
				if have > 0 {
					d.HEPError(hep.ErrTruncated) // the peer closed mid-packet
				}
				return CloseEOF
			case errors.As(err, &ne) && ne.Timeout():
				if have > 0 || !pc.idle {
					return CloseSlow
				}
				return CloseIdle
			}
			return CloseReadError
		}
		// A plain TCP read that did not fill the buffer emptied the
		// socket: wait for the next tick of ReadInterval, as a UDP
		// worker does, so that the segments of steady traffic are read
		// in batches, not one per wake-up (the socket holds what comes
		// meanwhile). Not under TLS, whose reads return a record at a
		// time whatever is waiting.
		if l.cfg.TLS == nil && n < room {
			sleepTick(l.cfg.ReadInterval)
		}
	}
}

// pacedConn is the TCP connection under a HEP connection (and under its
// TLS): the first byte that arrives while idle starts the packet deadline,
// which later reads do not renew.
type pacedConn struct {
	net.Conn
	idle   bool          // between packets; set by serveConn
	packet time.Duration // PacketTimeout
	last   time.Time     // when the latest read that got bytes returned
}

// Read reads from the connection, notes the time, and starts the packet
// deadline at the first byte after an idle period.
func (c *pacedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.last = time.Now()
		if c.idle {
			c.idle = false
			_ = c.Conn.SetReadDeadline(c.last.Add(c.packet))
		}
	}
	return n, err
}

// senderKey returns the key of a HEP sender for --hep.max-connections-per-
// address: its IPv4 address, or the /64 of its IPv6 address (one host, or
// one subnet's hosts, may use any address of its /64, RFC 4291 §2.5.4).
func senderKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
