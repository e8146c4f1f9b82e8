//go:build !linux

package input

import "net"

// udpSocketDrops is only implemented on Linux (/proc/net/udp).
func udpSocketDrops(...*net.UDPConn) (uint64, bool) { return 0, false }
