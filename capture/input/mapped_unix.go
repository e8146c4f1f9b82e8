//go:build unix

package input

import (
	"fmt"
	"os"
	"syscall"
)

var pageSize = os.Getpagesize()

// mapFile maps the regular file at path read-only.
func mapFile(path string) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() < 24 || int64(int(fi.Size())) != fi.Size() {
		return nil, fmt.Errorf("map %q: %w", path, errNotMappable)
	}
	data, err := syscall.Mmap(int(file.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map %q: %w: %w", path, errNotMappable, err)
	}
	_ = syscall.Madvise(data, syscall.MADV_SEQUENTIAL) // a hint: read-ahead
	return data, nil
}

func unmap(b []byte) error { return syscall.Munmap(b) }

// dontNeed drops the pages of b from the process (MADV_DONTNEED): they are
// clean pages of the file, read again if touched.
func dontNeed(b []byte) {
	if len(b) > 0 {
		if err := syscall.Madvise(b, syscall.MADV_DONTNEED); err != nil {
			panic(err)
		}
	}
}
