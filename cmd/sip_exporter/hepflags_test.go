package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHEPProtectionFlags: a bad --hep.allowed-networks value is refused
// while the flags are parsed (exit 2), naming the flag and the value; a
// per-address cap or packet timeout out of range is refused at start
// (exit 1), before any socket is opened and retried, and so is a number
// of UDP workers out of range.
func TestHEPProtectionFlags(t *testing.T) {
	for _, tc := range []struct {
		flag string
		code int
		want string // in stderr (exit 1 is logged, to the process's stderr)
	}{
		{"--hep.allowed-networks=10.0.0.1/8", 2, `--hep.allowed-networks: network "10.0.0.1/8": host bits set (the network is 10.0.0.0/8)`},
		{"--hep.allowed-networks=10.0.0.0/8,sbc.example.net", 2, `--hep.allowed-networks: network "sbc.example.net": not a CIDR prefix or address`},
		{"--hep.max-connections-per-address=0", 1, ""}, // logged: "... max connections per address 0: must be at least 1"
		{"--hep.packet-timeout=10m", 1, ""},            // logged: "... packet timeout 10m0s: must be positive and at most the read timeout 5m0s"
		{"--hep.udp-workers=0", 1, ""},                 // logged: "... UDP workers 0: must be 1..64"
		{"--hep.udp-workers=65", 1, ""},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{tc.flag, "--hep.listen-address=127.0.15.1:0", "--web.listen-address=127.0.15.1:0", "--log.level=error"}
			if code := run(args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestHEPUDPWorkersDefault: --hep.udp-workers defaults to half the CPUs,
// 1 to 4.
func TestHEPUDPWorkersDefault(t *testing.T) {
	for cpus, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 8: 4, 64: 4} {
		if got := defaultUDPWorkers(cpus); got != want {
			t.Errorf("%d CPUs: %d workers, want %d", cpus, got, want)
		}
	}
}
