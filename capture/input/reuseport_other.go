//go:build !linux

package input

import (
	"errors"
	"syscall"
)

// reusePort is only implemented on Linux: several UDP workers need
// SO_REUSEPORT.
func reusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("several UDP sockets on one address (SO_REUSEPORT) are only supported on Linux")
}

// setReadBuffer asks for a receive buffer of bytes for s, as far as the
// system allows.
func setReadBuffer(s *udpSocket, bytes int) { _ = s.SetReadBuffer(bytes) }
