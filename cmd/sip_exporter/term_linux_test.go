package main

import (
	"os"
	"strings"
	"testing"
)

// TestIsTerminal: a pseudo-terminal is one, a pipe and a buffer are not,
// so that report shows progress only to a person.
func TestIsTerminal(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if !isTerminal(ptmx) {
		t.Error("/dev/ptmx is not a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is a terminal")
	}
	if isTerminal(&strings.Builder{}) {
		t.Error("a buffer is a terminal")
	}
}
