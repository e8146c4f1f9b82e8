//go:build !linux

package input

import (
	"context"
	"net"
	"net/netip"
)

// udpSocket is a UDP socket: where recvmmsg(2) is not available, a
// net.UDPConn read through the runtime's poller.
type udpSocket = net.UDPConn

// listenUDPSocket opens a UDP socket on addr with lc.
func listenUDPSocket(lc net.ListenConfig, addr string) (*udpSocket, error) {
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// udpBatch reads one datagram at a time where recvmmsg(2) is not
// available.
type udpBatch struct {
	c    *net.UDPConn
	buf  []byte
	n    int
	from netip.Addr
}

// newUDPBatch prepares reads from c; size is ignored.
func newUDPBatch(c *udpSocket, size int) (*udpBatch, error) {
	return &udpBatch{c: c, buf: make([]byte, 64<<10)}, nil
}

// read waits for one datagram; it returns 1.
func (b *udpBatch) read() (int, error) {
	n, from, err := b.c.ReadFromUDPAddrPort(b.buf)
	if err != nil {
		return 0, err
	}
	b.n, b.from = n, from.Addr()
	return 1, nil
}

// skipSenders does nothing here: a read gives the sender anyway.
func (b *udpBatch) skipSenders() {}

// datagram returns the datagram of the last read and its sender.
func (b *udpBatch) datagram(int) ([]byte, netip.Addr) { return b.buf[:b.n], b.from }

// size returns how many datagrams one read can return: 1.
func (b *udpBatch) size() int { return 1 }
