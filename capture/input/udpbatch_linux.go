package input

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket is a UDP socket that the Go runtime's poller does not watch.
//
// The runtime's poller (epoll, edge-triggered) wakes a thread for every
// datagram that arrives at a socket it watches, whether or not a goroutine
// waits for it: a worker that reads every few milliseconds would still
// cost a wake-up per datagram. This socket is bound as a net.UDPConn is,
// then its descriptor is duplicated, made blocking, and the UDPConn closed
// (which takes it out of the poller); a worker waits for it in ppoll(2)
// only when a read found nothing, on a thread of its own for the time.
// [udpSocket.Close] shuts the socket down, which wakes that wait.
type udpSocket struct {
	f    *os.File // blocking: not in the poller
	raw  syscall.RawConn
	addr net.Addr
}

// listenUDPSocket opens a UDP socket on addr with lc (its Control sets
// socket options before the bind).
func listenUDPSocket(lc net.ListenConfig, addr string) (*udpSocket, error) {
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	defer c.Close() // out of the poller; the duplicate keeps the socket
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) {
		if fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0); derr == nil {
			derr = unix.SetNonblock(fd, false)
		}
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("udp socket %s: %w", c.LocalAddr(), derr)
	}
	s := &udpSocket{f: os.NewFile(uintptr(fd), "udp:"+c.LocalAddr().String()), addr: c.LocalAddr()}
	if s.raw, err = s.f.SyscallConn(); err != nil {
		s.f.Close()
		return nil, err
	}
	return s, nil
}

// LocalAddr returns the bound address.
func (s *udpSocket) LocalAddr() net.Addr { return s.addr }

// SyscallConn returns the socket's raw connection (for its descriptor).
func (s *udpSocket) SyscallConn() (syscall.RawConn, error) { return s.raw, nil }

// SetReadBuffer sets the socket's receive buffer (SO_RCVBUF), as
// net.UDPConn's does.
func (s *udpSocket) SetReadBuffer(bytes int) error {
	var serr error
	if err := s.raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, bytes)
	}); err != nil {
		return err
	}
	return serr
}

// Close shuts the socket down, waking a worker that waits for it (its
// read then returns net.ErrClosed), and closes it once no read uses it.
func (s *udpSocket) Close() error {
	_ = s.raw.Control(func(fd uintptr) {
		// ENOTCONN on an unconnected socket, yet it is shut down and
		// its waiters woken.
		_ = unix.Shutdown(int(fd), unix.SHUT_RDWR)
	})
	return s.f.Close()
}

// mmsghdr is struct mmsghdr of recvmmsg(2): a message header and the
// length the kernel received into it. Go pads it as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// udpBatch reads up to its size of datagrams from one UDP socket with one
// recvmmsg(2) call, into buffers of 64 KiB (no datagram is cut), with
// their senders. Its arrays are made once: a read allocates nothing.
//
// golang.org/x/net's ipv4/ipv6 PacketConn.ReadBatch makes the same call,
// but parses every sender into a new *net.UDPAddr (two allocations per
// datagram); here the sender is read from the raw sockaddr as a
// netip.Addr.
type udpBatch struct {
	raw   syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // room for IPv4 and IPv6 senders
	buf   []byte
	poll  [1]unix.PollFd
	anon  bool  // senders not asked for (skipSenders)
	n     int   // datagrams of the last read
	err   error // error of the last read
	recv  func(fd uintptr)
}

// udpSlot is the buffer of one datagram: the largest UDP payload fits.
const udpSlot = 64 << 10

// errShutdown is what recvmmsg returns when the socket was shut down
// (Close) while a read waited.
var errShutdown = errors.New("udp socket shut down")

// newUDPBatch prepares batches of size datagrams from s.
func newUDPBatch(s *udpSocket, size int) (*udpBatch, error) {
	b := &udpBatch{raw: s.raw, hdrs: make([]mmsghdr, size), iovs: make([]unix.Iovec, size),
		names: make([]unix.RawSockaddrInet6, size), buf: make([]byte, size*udpSlot)}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.buf[i*udpSlot]
		b.iovs[i].SetLen(udpSlot)
		h := &b.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	b.recv = b.recvmmsg
	return b, nil
}

// skipSenders makes later reads not ask the kernel for the datagrams'
// senders (the copy of each one's address): [udpBatch.datagram] then
// returns an invalid address.
func (b *udpBatch) skipSenders() {
	b.anon = true
	for i := range b.hdrs {
		b.hdrs[i].hdr.Name, b.hdrs[i].hdr.Namelen = nil, 0
		b.names[i].Family = 0
	}
}

// read waits until at least one datagram has arrived and reads what has
// (up to the batch size); it returns how many, or net.ErrClosed once the
// socket is closed.
func (b *udpBatch) read() (int, error) {
	for i := range b.hdrs {
		if !b.anon {
			b.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		}
		b.hdrs[i].hdr.Flags = 0
	}
	b.n, b.err = 0, nil
	if err := b.raw.Control(b.recv); err != nil || b.err == errShutdown {
		return 0, net.ErrClosed
	}
	return b.n, b.err
}

// recvmmsg is the function of RawConn.Control: it reads what is there
// and, when nothing is, waits in ppoll(2) until something is (or the
// socket is shut down) and reads again.
//
// The read does not block (MSG_DONTWAIT), and is made as a raw system
// call: one that tells the scheduler it may block also wakes its monitor
// thread (sysmon) from its sleep, which then polls every 20 µs for a
// while: at a read per interval, more wake-ups than the reader's own.
// Only the wait in ppoll tells the scheduler.
func (b *udpBatch) recvmmsg(fd uintptr) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.n = int(n)
			return
		case unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			b.err = errno
			return
		}
		b.poll[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}
		if _, err := unix.Poll(b.poll[:], -1); err != nil && err != unix.EINTR {
			b.err = err
			return
		}
		if b.poll[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLNVAL) != 0 {
			b.err = errShutdown
			return
		}
	}
}

// datagram returns the payload of datagram i of the last read and its
// sender's address (invalid when the kernel gave none).
func (b *udpBatch) datagram(i int) ([]byte, netip.Addr) {
	p := b.buf[i*udpSlot : i*udpSlot+int(b.hdrs[i].n)]
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		return p, netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		return p, netip.AddrFrom16(sa.Addr)
	}
	return p, netip.Addr{}
}

// size returns how many datagrams one read can return.
func (b *udpBatch) size() int { return len(b.hdrs) }
