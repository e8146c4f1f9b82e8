package input

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort sets SO_REUSEPORT on a socket before it is bound, so that
// several sockets share one address and the kernel spreads datagrams over
// them by a hash of the sender's address and port.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// setReadBuffer asks for a receive buffer of bytes for s (the kernel
// doubles it): past net.core.rmem_max with SO_RCVBUFFORCE when the
// process may (CAP_NET_ADMIN), else as far as SO_RCVBUF goes.
func setReadBuffer(s *udpSocket, bytes int) {
	var serr error
	if err := s.raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes)
	}); err == nil && serr == nil {
		return
	}
	_ = s.SetReadBuffer(bytes)
}
