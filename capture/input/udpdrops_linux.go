package input

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// udpSocketDrops returns the datagrams the kernel dropped for the sockets
// cs, summed, because their receive buffers were full: the "drops" column
// of their rows in /proc/net/udp or /proc/net/udp6, found by socket inode
// (each table read once). ok is false when a socket's row cannot be read.
func udpSocketDrops(cs ...syscall.Conn) (drops uint64, ok bool) {
	inodes := make(map[string]bool, len(cs))
	for _, c := range cs {
		inode, found := socketInode(c)
		if !found {
			return 0, false
		}
		inodes[inode] = false
	}
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		drops += procUDPDrops(table, inodes)
	}
	for _, found := range inodes {
		if !found {
			return 0, false
		}
	}
	return drops, true
}

// socketInode returns the inode of c's socket, as /proc/net/udp shows it.
func socketInode(c syscall.Conn) (string, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return "", false
	}
	var link string
	if cerr := raw.Control(func(fd uintptr) {
		link, err = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	}); cerr != nil || err != nil {
		return "", false
	}
	inode, found := strings.CutPrefix(link, "socket:[")
	inode, found2 := strings.CutSuffix(inode, "]")
	return inode, found && found2
}

// procUDPDrops scans one /proc/net/udp table for the rows of inodes, marks
// them found, and returns the sum of their last column, drops.
func procUDPDrops(path string, inodes map[string]bool) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var sum uint64
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 13 {
			continue
		}
		if _, ok := inodes[string(fields[9])]; !ok {
			continue
		}
		n, err := strconv.ParseUint(string(fields[len(fields)-1]), 10, 64)
		if err == nil {
			inodes[string(fields[9])] = true
			sum += n
		}
	}
	return sum
}
