//go:build !unix

package input

import "fmt"

const pageSize = 4096

func mapFile(path string) ([]byte, error) {
	return nil, fmt.Errorf("map %q: %w", path, errNotMappable)
}

func unmap([]byte) error { return nil }

func dontNeed([]byte) {}
