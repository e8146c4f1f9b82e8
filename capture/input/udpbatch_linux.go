package input

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
	n     int   // datagrams of the last read
	err   error // error of the last recvmmsg
	recv  func(fd uintptr) bool
}

// udpSlot is the buffer of one datagram: the largest UDP payload fits.
const udpSlot = 64 << 10

// newUDPBatch prepares batches of size datagrams from c.
func newUDPBatch(c *net.UDPConn, size int) (*udpBatch, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &udpBatch{raw: raw, hdrs: make([]mmsghdr, size), iovs: make([]unix.Iovec, size),
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

// read waits until at least one datagram has arrived and reads what has
// (up to the batch size); it returns how many.
func (b *udpBatch) read() (int, error) {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		b.hdrs[i].hdr.Flags = 0
	}
	b.n, b.err = 0, nil
	if err := b.raw.Read(b.recv); err != nil {
		return 0, err
	}
	return b.n, b.err
}

// recvmmsg is the function of RawConn.Read: false when nothing is there
// yet (the poller waits for the socket to be readable).
func (b *udpBatch) recvmmsg(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		b.err = errno
		return true
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
