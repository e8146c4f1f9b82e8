package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nobodyID is the user and group the capability test runs the binary as.
const nobodyID = "65534"

// TestCaptureCapabilities runs the binary as an unprivileged user on lo.
// Without capabilities live capture stops at start, naming CAP_NET_RAW and
// giving the setcap line. With CAP_NET_RAW alone, as a file capability
// (setcap cap_net_raw+ep) and as an ambient one (systemd's
// AmbientCapabilities), it comes up on one worker and on two (the fanout
// group), with and without --capture.promiscuous: CAP_NET_ADMIN is not
// needed, since promiscuous mode is a PACKET_ADD_MEMBERSHIP of type
// PACKET_MR_PROMISC on the capture socket (packet(7)), which the kernel
// grants any AF_PACKET socket, unlike SIOCSIFFLAGS.
func TestCaptureCapabilities(t *testing.T) {
	requireLive(t, "setcap", "setpriv")
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	built := buildExporter(t)
	plain := filepath.Join(dir, "plain")
	withCap := filepath.Join(dir, "cap_net_raw")
	for _, p := range []string{plain, withCap} {
		b, err := os.ReadFile(built)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("setcap", "cap_net_raw+ep", withCap).CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("setcap on %s: %v: %s", dir, err, out))
	}
	asNobody := []string{"--reuid=" + nobodyID, "--regid=" + nobodyID, "--clear-groups"}

	t.Run("without CAP_NET_RAW", func(t *testing.T) {
		args := append(append(asNobody, "--inh-caps=-all", "--bounding-set=-all", plain), "--capture.interface="+liveInterface, "--web.listen-address="+freeLocalAddr(t))
		out, err := exec.Command("setpriv", args...).CombinedOutput()
		if code := exitCode(err); code != 1 {
			t.Fatalf("exit %d (%v), want 1:\n%s", code, err, out)
		}
		for _, want := range []string{"open AF_PACKET socket: operation not permitted (live capture needs root or CAP_NET_RAW)", "hint=\"run as root, or give the binary the capability once: sudo setcap cap_net_raw+ep " + plain} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	for _, tc := range []struct {
		name string
		bin  string
		caps []string // setpriv options
	}{
		{"file capability", withCap, []string{"--inh-caps=-all", "--bounding-set=-all,+net_raw"}},
		{"ambient capability", plain, []string{"--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw", "--bounding-set=-all,+net_raw"}},
	} {
		for _, flags := range [][]string{
			{"--capture.workers=1"},
			{"--capture.workers=2"},
			{"--capture.workers=1", "--capture.promiscuous"},
			{"--capture.workers=2", "--capture.promiscuous"},
		} {
			t.Run(tc.name+" "+strings.Join(flags, " "), func(t *testing.T) {
				args := append(append(append(asNobody, tc.caps...), tc.bin, "--capture.interface="+liveInterface), flags...)
				e := startExporter(t, "setpriv", args...)
				if err := e.waitSourceUp(liveInterface, "interface", 10*time.Second); err != nil {
					t.Fatalf("capture on %s with CAP_NET_RAW only: %v\n%s", liveInterface, err, e.output.String())
				}
				if slices.Contains(flags, "--capture.promiscuous") {
					// IFF_PROMISC (0x100) in the interface's flags.
					b, err := os.ReadFile("/sys/class/net/" + liveInterface + "/flags")
					if err != nil {
						t.Fatal(err)
					}
					if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32); err != nil || v&0x100 == 0 {
						t.Errorf("%s flags %s: not promiscuous", liveInterface, b)
					}
				}
				if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.cmd.Process.Pid)); err == nil {
					// CapEff of the exporter: CAP_NET_RAW (bit 13) only.
					if !strings.Contains(string(status), "CapEff:\t0000000000002000\n") {
						t.Errorf("effective capabilities are not CAP_NET_RAW alone:\n%s", status)
					}
				}
			})
		}
	}
}

// exitCode returns the exit code of a finished command's error: 0 for
// nil, -1 when it did not exit normally.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
