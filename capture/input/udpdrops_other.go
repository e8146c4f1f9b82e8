//go:build !linux

package input

import "syscall"

// udpSocketDrops is only implemented on Linux (/proc/net/udp).
func udpSocketDrops(...syscall.Conn) (uint64, bool) { return 0, false }
