package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sip-exporter/sip_exporter/capture/input"
)

// hintError is an error of serve's start together with what a user can do
// about it; run logs the hint under its own key beside err.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// explain returns err with a hint when its remedy is known (live capture
// without the capability, an interface that does not exist or is libpcap's
// "any", a BPF file that holds an expression), else err itself.
func explain(err error, o *options) error {
	if err == nil {
		return nil
	}
	var hint string
	var fe *input.BPFFormatError
	switch {
	case errors.Is(err, input.ErrCapturePermission):
		hint = fmt.Sprintf("run as root, or give the binary the capability once: sudo setcap cap_net_raw+ep %s (CAP_NET_RAW is all live capture needs, --capture.promiscuous included; under systemd AmbientCapabilities=CAP_NET_RAW, in a container --cap-add NET_RAW); capture files need no privilege: %s report FILE.pcap", quoteArg(executable()), program)
	case errors.Is(err, input.ErrNoInterface):
		hint = "give --capture.interface once per interface to capture (the flag repeats: --capture.interface=eth0 --capture.interface=eth1); `ip link` lists the interfaces"
	case errors.As(err, &fe):
		expr := "EXPRESSION"
		if fe.Expression != "" {
			expr = fe.Expression
		}
		file := o.bpfFile
		if file == "" {
			file = "FILE"
		}
		hint = fmt.Sprintf("--capture.bpf-file holds a compiled filter, the decimal numbers that tcpdump -ddd prints; write it with: tcpdump -y EN10MB -ddd %s > %s (EN10MB for Ethernet and lo; RAW for tun and WireGuard interfaces)", quoteArg(expr), quoteArg(file))
	default:
		return err
	}
	return &hintError{err: err, hint: hint}
}

// executable returns the path of the running binary, or its name.
func executable() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return program
}

// logArgs returns the key-value pairs under which run logs the error that
// ends serve: err, and hint when it has one.
func logArgs(err error) []any {
	args := []any{"err", err}
	var h *hintError
	if errors.As(err, &h) {
		args = append(args, "hint", strings.TrimSpace(h.hint))
	}
	return args
}
