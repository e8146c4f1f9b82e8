package input

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// udpSocketDrops returns the datagrams the kernel dropped for c because its
// receive buffer was full: the "drops" column of c's row in /proc/net/udp or
// /proc/net/udp6, found by socket inode. ok is false when it cannot be read.
func udpSocketDrops(c *net.UDPConn) (drops uint64, ok bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var link string
	if cerr := raw.Control(func(fd uintptr) {
		link, err = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	}); cerr != nil || err != nil {
		return 0, false
	}
	inode, found := strings.CutPrefix(link, "socket:[")
	inode, found2 := strings.CutSuffix(inode, "]")
	if !found || !found2 {
		return 0, false
	}
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		if n, found := procUDPDrops(table, []byte(inode)); found {
			return n, true
		}
	}
	return 0, false
}

// procUDPDrops scans one /proc/net/udp table for the row of inode and
// returns its last column, drops.
func procUDPDrops(path string, inode []byte) (uint64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 13 || !bytes.Equal(fields[9], inode) {
			continue
		}
		n, err := strconv.ParseUint(string(fields[len(fields)-1]), 10, 64)
		return n, err == nil
	}
	return 0, false
}
