//go:build !linux

package main

import "io"

// isTerminal reports whether w is a terminal: never, off Linux.
func isTerminal(io.Writer) bool { return false }
