package input

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket is a UDP socket that wakes the process only when a worker
// waits for it.
//
// The runtime's poller (epoll, edge-triggered) wakes a thread for every
// datagram that arrives at a socket it watches, whether or not a goroutine
// waits for it: a worker that reads every few milliseconds would still
// cost a wake-up per datagram. And a wait in a blocking system call
// (ppoll) wakes the runtime's monitor thread (sysmon) when it returns,
// which then polls every 20 µs for a while: dozens of wake-ups per wait,
// for a quiet source one per datagram.
//
// So the socket is bound as a net.UDPConn is, then its descriptor is
// duplicated, made blocking, and the UDPConn closed, which takes it out of
// the runtime's poller. It is watched instead by an epoll instance of its
// own, one-shot: armed only while a worker waits, disarmed by the first
// event. That epoll's descriptor is what the runtime's poller watches, so
// a waiting worker parks as on any socket, and the datagrams that arrive
// while it reads or sleeps wake nothing. Reads (recvmmsg) and arming
// (epoll_ctl) are non-blocking raw system calls.
type udpSocket struct {
	f      *os.File // the socket, blocking: not in the runtime's poller
	raw    syscall.RawConn
	ep     *os.File // its one-shot epoll, in the runtime's poller
	epRaw  syscall.RawConn
	addr   net.Addr
	closed atomic.Bool
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
	fd, epfd := -1, -1
	var serr error
	if err := raw.Control(func(s uintptr) {
		if fd, serr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0); serr != nil {
			return
		}
		if serr = unix.SetNonblock(fd, false); serr != nil {
			return
		}
		if epfd, serr = unix.EpollCreate1(unix.EPOLL_CLOEXEC); serr != nil {
			return
		}
		ev := unix.EpollEvent{Events: udpWaitEvents, Fd: int32(fd)}
		if serr = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); serr != nil {
			return
		}
		serr = unix.SetNonblock(epfd, true) // so that os.NewFile puts it in the runtime's poller
	}); err != nil {
		serr = err
	}
	if serr != nil {
		for _, d := range []int{fd, epfd} {
			if d >= 0 {
				unix.Close(d)
			}
		}
		return nil, fmt.Errorf("udp socket %s: %w", c.LocalAddr(), serr)
	}
	s := &udpSocket{f: os.NewFile(uintptr(fd), "udp:"+c.LocalAddr().String()),
		ep: os.NewFile(uintptr(epfd), "epoll:"+c.LocalAddr().String()), addr: c.LocalAddr()}
	if s.raw, err = s.f.SyscallConn(); err == nil {
		s.epRaw, err = s.ep.SyscallConn()
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// udpWaitEvents are what a waiting worker is woken for: a datagram, or
// the socket shut down (Close); once.
const udpWaitEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

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

// Close wakes a worker that waits for the socket (its read then returns
// net.ErrClosed) and closes the socket once no read uses it.
func (s *udpSocket) Close() error {
	s.closed.Store(true)
	_ = s.raw.Control(func(fd uintptr) {
		// ENOTCONN on an unconnected socket, yet it is shut down and
		// an armed wait woken.
		_ = unix.Shutdown(int(fd), unix.SHUT_RDWR)
	})
	if s.ep != nil {
		s.ep.Close() // wakes a parked waiter with an error
	}
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
	s     *udpSocket
	sock  int32 // the socket's descriptor, for arming its epoll
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // room for IPv4 and IPv6 senders
	buf   []byte
	ev    [1]unix.EpollEvent
	armed bool  // the socket's epoll is armed for this wait
	anon  bool  // senders not asked for (skipSenders)
	n     int   // datagrams of the last read
	err   error // error of the last read
	recv  func(fd uintptr)
	wait  func(fd uintptr) bool
}

// udpSlot is the buffer of one datagram: the largest UDP payload fits.
const udpSlot = 64 << 10

// newUDPBatch prepares batches of size datagrams from s.
func newUDPBatch(s *udpSocket, size int) (*udpBatch, error) {
	b := &udpBatch{s: s, hdrs: make([]mmsghdr, size), iovs: make([]unix.Iovec, size),
		names: make([]unix.RawSockaddrInet6, size), buf: make([]byte, size*udpSlot)}
	if err := s.raw.Control(func(fd uintptr) { b.sock = int32(fd) }); err != nil {
		return nil, err
	}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.buf[i*udpSlot]
		b.iovs[i].SetLen(udpSlot)
		h := &b.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	b.recv, b.wait = b.recvmmsg, b.waitReadable
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
	for {
		b.n, b.err = 0, nil
		if err := b.s.raw.Control(b.recv); err != nil || b.s.closed.Load() {
			return 0, net.ErrClosed
		}
		if b.n > 0 || b.err != nil {
			return b.n, b.err
		}
		// Nothing there: arm the socket's epoll and park until it
		// fires.
		b.armed = false
		if err := b.s.epRaw.Read(b.wait); err != nil {
			return 0, net.ErrClosed
		}
	}
}

// recvmmsg is the function of the socket's RawConn.Control: it reads
// what is there (b.n 0 when nothing is).
//
// The read does not block (MSG_DONTWAIT), and is made as a raw system
// call: one that tells the scheduler it may block also wakes its monitor
// thread (sysmon) from its sleep, which then polls every 20 µs for a
// while: at a read per interval, more wake-ups than the reader's own.
func (b *udpBatch) recvmmsg(fd uintptr) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.n = int(n)
		case unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			b.err = errno
		}
		return
	}
}

// waitReadable is the function of the epoll's RawConn.Read: it arms the
// socket's one-shot registration (once per wait) and reports whether it
// has fired, without blocking; while it has not, the runtime parks the
// worker until the epoll is readable. Both are raw system calls.
func (b *udpBatch) waitReadable(epfd uintptr) bool {
	if !b.armed {
		b.ev[0] = unix.EpollEvent{Events: udpWaitEvents, Fd: b.sock}
		_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, epfd, unix.EPOLL_CTL_MOD, uintptr(b.sock),
			uintptr(unsafe.Pointer(&b.ev[0])), 0, 0)
		if errno != 0 {
			return true // closed meanwhile: the read finds out
		}
		b.armed = true
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&b.ev[0])), 1, 0, 0, 0)
	return errno == 0 && n > 0 || errno != 0 && errno != unix.EINTR
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
