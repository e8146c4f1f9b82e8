package input

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/hep"
)

// HEPConfig says how HEP is received from SIP servers and capture agents
// (Kamailio siptrace, OpenSIPS proto_hep, FreeSWITCH, Asterisk res_hep,
// heplify, captagent).
type HEPConfig struct {
	Addr           string        // HOST:PORT; 9060 is the conventional port
	UDP, TCP       bool          // transports to listen on (both on the same address)
	TLS            *tls.Config   // when set, TCP connections are TLS
	AuthKey        []byte        // when set, HEPv3 packets whose auth key chunk differs are dropped and counted
	MaxConns       int           // TCP connections served at once; further ones are closed at once and counted
	ReadTimeout    time.Duration // a TCP connection idle for this long is closed
	MaxPacketBytes int           // largest HEP packet accepted on TCP; a larger length field closes the connection
}

// DefaultHEPConfig returns UDP and TCP on :9060, 1,024 connections, a
// 5 minute read timeout and 64 KiB packets.
func DefaultHEPConfig() HEPConfig {
	return HEPConfig{Addr: ":9060", UDP: true, TCP: true, MaxConns: 1024, ReadTimeout: 5 * time.Minute, MaxPacketBytes: 64 << 10}
}

// HEPListener receives HEP over UDP and TCP (optionally TLS). Each
// datagram, and each packet of a TCP stream, goes through a [decode.Decoder]'s HEP
// path: decoded, authenticated, and its SIP payload scanned and handed on.
type HEPListener struct {
	cfg      HEPConfig
	udp      *net.UDPConn
	tcp      net.Listener
	udpD     *decode.Decoder
	udpStats *Stats
	// newDecoder makes the decoder of one TCP connection, and the function
	// to call when the connection has ended.
	newDecoder func() (*decode.Decoder, func())
	tcpStats   *Stats
}

// ListenHEP opens the sockets of cfg. udpDecoder decodes datagrams, and
// the datagrams the kernel drops are counted in udpStats; the decoders that
// newTCPDecoder makes (one per connection, on the connection's goroutine)
// must count into tcpStats.Decode, and connections are counted in
// tcpStats; the function it returns with each decoder is called once its
// connection has ended (nil for none). It returns an error naming the address when a socket cannot be
// opened or cfg is out of range.
func ListenHEP(cfg HEPConfig, udpDecoder *decode.Decoder, udpStats *Stats, newTCPDecoder func() (*decode.Decoder, func()), tcpStats *Stats) (*HEPListener, error) {
	switch {
	case !cfg.UDP && !cfg.TCP:
		return nil, fmt.Errorf("hep listener %s: no transport", cfg.Addr)
	case cfg.MaxConns < 1:
		return nil, fmt.Errorf("hep listener %s: max connections %d: must be at least 1", cfg.Addr, cfg.MaxConns)
	case cfg.MaxPacketBytes < 64 || cfg.MaxPacketBytes > 1<<20:
		return nil, fmt.Errorf("hep listener %s: max packet %d bytes: must be 64..1048576", cfg.Addr, cfg.MaxPacketBytes)
	case cfg.ReadTimeout <= 0:
		return nil, fmt.Errorf("hep listener %s: read timeout %v: must be positive", cfg.Addr, cfg.ReadTimeout)
	}
	l := &HEPListener{cfg: cfg, udpD: udpDecoder, udpStats: udpStats, newDecoder: newTCPDecoder, tcpStats: tcpStats}
	if cfg.UDP {
		addr, err := net.ResolveUDPAddr("udp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("hep listener %s: %w", cfg.Addr, err)
		}
		if l.udp, err = net.ListenUDP("udp", addr); err != nil {
			return nil, fmt.Errorf("hep listener: %w", err)
		}
		_ = l.udp.SetReadBuffer(8 << 20) // best effort: bursts from many agents
	}
	if cfg.TCP {
		tl, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("hep listener: %w", err)
		}
		if cfg.TLS != nil {
			tl = tls.NewListener(tl, cfg.TLS)
		}
		l.tcp = tl
	}
	return l, nil
}

// UDPAddr returns the bound UDP address, or nil without UDP.
func (l *HEPListener) UDPAddr() net.Addr {
	if l.udp == nil {
		return nil
	}
	return l.udp.LocalAddr()
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
	if l.udp != nil {
		l.udp.Close()
	}
	if l.tcp != nil {
		l.tcp.Close()
	}
}

// ServeUDP reads datagrams until ctx is done or the socket is closed. It
// returns nil then, or the read error that stopped it.
func (l *HEPListener) ServeUDP(ctx context.Context) error {
	if l.udp == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, l.Close)
	defer stop()
	// Datagrams the kernel drops when the socket buffer is full are
	// counted as kernel drops, read every statsInterval off the read path.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(statsInterval)
		defer t.Stop()
		for {
			if n, ok := udpSocketDrops(l.udp); ok {
				l.udpStats.KernelDrops.Store(n)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	buf := make([]byte, 65536)
	for {
		if err := l.receiveUDP(buf); err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("hep listener %s: read: %w", l.udp.LocalAddr(), err)
		}
	}
}

// receiveUDP reads one datagram into buf and decodes it: the whole
// per-packet path of the UDP listener.
func (l *HEPListener) receiveUDP(buf []byte) error {
	n, err := l.udp.Read(buf)
	if err != nil {
		return err
	}
	l.udpD.HEP(buf[:n])
	return nil
}

// ServeTCP accepts connections until ctx is done or the listener is
// closed, and serves each on its own goroutine with its own decoder.
func (l *HEPListener) ServeTCP(ctx context.Context) error {
	if l.tcp == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, l.Close)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, l.cfg.MaxConns)
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	defer func() {
		mu.Lock()
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
		select {
		case slots <- struct{}{}:
		default:
			l.tcpStats.HEPConnsRejected.Add(1)
			c.Close()
			continue
		}
		mu.Lock()
		open[c] = struct{}{}
		mu.Unlock()
		l.tcpStats.HEPConns.Add(1)
		l.tcpStats.HEPConnsTotal.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.serveConn(c)
			mu.Lock()
			delete(open, c)
			mu.Unlock()
			c.Close()
			l.tcpStats.HEPConns.Add(-1)
			<-slots
		}()
	}
}

// serveConn reads back-to-back HEPv3 packets, framed by their length field,
// until the peer closes, the read times out, or a packet is bad (counted;
// the connection is closed, others are not affected).
func (l *HEPListener) serveConn(c net.Conn) {
	d, done := l.newDecoder()
	if done != nil {
		defer done()
	}
	buf := make([]byte, 2*l.cfg.MaxPacketBytes)
	have := 0
	for {
		_ = c.SetReadDeadline(time.Now().Add(l.cfg.ReadTimeout))
		n, err := c.Read(buf[have:])
		have += n
		data := buf[:have]
		for len(data) > 0 {
			plen, perr := hep.PacketLength(data)
			if perr == hep.ErrIncomplete {
				break
			}
			if perr != nil {
				d.HEPError(perr)
				return
			}
			if plen > l.cfg.MaxPacketBytes {
				d.HEPError(hep.ErrTooLarge)
				return
			}
			if plen > len(data) {
				break
			}
			if !d.HEP(data[:plen]) {
				return
			}
			data = data[plen:]
		}
		have = copy(buf, data)
		if err != nil {
			return // EOF, timeout or reset: nothing more to read
		}
	}
}
