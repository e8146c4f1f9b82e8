//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fragMTU is the MTU of both ends of the veth pair of the fragment test:
// the IPv6 minimum (RFC 8200 §5), well below the ~3,600 byte INVITE and
// 200 OK of testdata/sipp/*_invite_large.xml.
const fragMTU = 1280

// fragCalls is the number of calls of each family in the fragment test.
const fragCalls = 10

// TestLiveFragmentsSIPp runs the real binary on one end of a veth pair with
// MTU 1280 while SIPp plays INVITE dialogs whose INVITE and 200 OK carry an
// SDP body of about 3,300 bytes, over UDP, first over IPv4 and then over
// IPv6. The kernel of the sender cuts each of those messages into 3 IP
// fragments; the exporter must reassemble them (RFC 791 §3.2, RFC 8200
// §4.5) and count exactly what SIPp says it sent.
//
// Topology, all of it created by the test and removed by its cleanup:
//
//	netns sipx-frag-PID-a                    netns sipx-frag-PID-b
//	  SIPp UAC, sip_exporter                   SIPp UAS
//	  veth sxfPIDa  10.201.0.1/24   <---->     veth sxfPIDb  10.201.0.2/24
//	                fd00:201::1/64                           fd00:201::2/64
//
// The exporter captures sxfPIDa, which carries both directions (the
// INVITE leaving, the 200 OK arriving) and nothing of the rest of the
// machine, so no BPF filter is needed. Its web listener is on 127.0.0.1 of
// namespace a; the test reaches it through a forwarder that listens in the
// test's namespace and dials inside namespace a (setns on a locked thread).
//
// Per family it checks: sip_responses_total and sip_requests_total grew by
// SIPp's own counts (sent + retransmitted, from -trace_counts);
// sip_exporter_ip_datagrams_reassembled_total{family} grew by the number of
// large messages SIPp sent (INVITEs and 200 OKs of INVITE, retransmissions
// included) and the other family's did not move. At the end no fragment
// was dropped for any reason, nothing is left being reassembled and no
// parse error was counted.
func TestLiveFragmentsSIPp(t *testing.T) {
	requireLive(t, "sipp", "ip")
	start := time.Now()

	bin := buildExporter(t)
	ns := newNetnsPair(t, fragMTU)

	e := startExporterInNetns(t, ns.a, bin, "--capture.interface="+ns.vethA)
	if err := e.waitSourceUp(ns.vethA, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		family   string // label value of the reassembly metrics
		uas, uac string // addresses
	}{
		{family: "ipv4", uas: "10.201.0.2", uac: "10.201.0.1"},
		{family: "ipv6", uas: "fd00:201::2", uac: "fd00:201::1"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			_, before := e.settle(t, 5*time.Second)
			reBefore := reassembledByFamily(t, e, ns.vethA)

			want := runNetnsSIPpPair(t, ns, "uas_invite_large.xml", "uac_invite_large.xml", tc.uas, tc.uac, fragCalls)

			_, after := e.settle(t, 5*time.Second)
			got := after.sub(before)
			table, ok := compareCounts(want, got)
			if !ok {
				t.Errorf("exporter counts differ from what SIPp sent (want = SIPp sent+retransmitted, got = counter delta):\n%s", table)
			} else {
				t.Logf("exporter counts equal what SIPp sent:\n%s", table)
			}

			reAfter := reassembledByFamily(t, e, ns.vethA)
			large := want.requests["INVITE"] + want.responses[responseKey{code: "200", method: "INVITE"}]
			for _, f := range []string{"ipv4", "ipv6"} {
				d := reAfter[f] - reBefore[f]
				w := int64(0)
				if f == tc.family {
					w = large
				}
				if d != w {
					t.Errorf("sip_exporter_ip_datagrams_reassembled_total{family=%q} grew by %d, want %d (INVITEs and 200 OKs of INVITE SIPp sent over %s)", f, d, w, tc.family)
				} else if w > 0 {
					t.Logf("sip_exporter_ip_datagrams_reassembled_total{family=%q} grew by %d: every large message was reassembled", f, d)
				}
			}
			if large == 0 {
				t.Errorf("SIPp sent no INVITE nor 200 OK of INVITE")
			}
		})
	}

	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	source := map[string]string{"source": ns.vethA}
	for _, m := range mfs["sip_exporter_ip_fragments_dropped_total"].GetMetric() {
		if hasLabels(m, source) && m.GetCounter().GetValue() != 0 {
			t.Errorf("sip_exporter_ip_fragments_dropped_total{family=%q,reason=%q} = %v, want 0",
				labelValue(m, "family"), labelValue(m, "reason"), m.GetCounter().GetValue())
		}
	}
	if n := len(mfs["sip_exporter_ip_fragments_dropped_total"].GetMetric()); n == 0 {
		t.Errorf("no sip_exporter_ip_fragments_dropped_total series")
	}
	if v, ok := gaugeValue(mfs, "sip_exporter_ip_reassembly_datagrams", source); !ok || v != 0 {
		t.Errorf("sip_exporter_ip_reassembly_datagrams = %v (present %v), want 0: datagrams left incomplete", v, ok)
	}
	for _, m := range mfs["sip_exporter_parse_errors_total"].GetMetric() {
		if hasLabels(m, source) && m.GetCounter().GetValue() != 0 {
			t.Errorf("sip_exporter_parse_errors_total{reason=%q} = %v, want 0", labelValue(m, "reason"), m.GetCounter().GetValue())
		}
	}
	t.Logf("fragment test took %s", time.Since(start).Round(time.Millisecond))
}

// reassembledByFamily scrapes sip_exporter_ip_datagrams_reassembled_total
// of source by family.
func reassembledByFamily(t *testing.T, e *exporterProcess, source string) map[string]int64 {
	t.Helper()
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int64{}
	var found bool
	for _, m := range mfs["sip_exporter_ip_datagrams_reassembled_total"].GetMetric() {
		if hasLabels(m, map[string]string{"source": source}) {
			n[labelValue(m, "family")] += int64(m.GetCounter().GetValue())
			found = true
		}
	}
	if !found {
		t.Fatalf("no sip_exporter_ip_datagrams_reassembled_total{source=%q}", source)
	}
	return n
}

// netnsPair is two network namespaces joined by a veth pair.
type netnsPair struct {
	a, b         string // namespace names
	vethA, vethB string // the veth end in a, in b
}

// newNetnsPair creates the namespaces sipx-frag-PID-a and -b joined by a
// veth pair with the given MTU on both ends, 10.201.0.1/24 and
// fd00:201::1/64 on the end in a, .2 and ::2 in b (no duplicate address
// detection, so the IPv6 addresses are usable at once), and lo up in both.
// A cleanup deletes both namespaces, which deletes the veth pair. When the
// namespaces cannot be created the test is skipped, or failed under
// CI=true.
func newNetnsPair(t *testing.T, mtu int) netnsPair {
	t.Helper()
	pid := os.Getpid()
	n := netnsPair{
		a:     fmt.Sprintf("sipx-frag-%d-a", pid),
		b:     fmt.Sprintf("sipx-frag-%d-b", pid),
		vethA: fmt.Sprintf("sxf%da", pid),
		vethB: fmt.Sprintf("sxf%db", pid),
	}
	addNetns(t, "network namespaces unavailable", n.a, n.b)
	m := strconv.Itoa(mtu)
	ipSteps(t, [][]string{
		{"link", "add", n.vethA, "netns", n.a, "mtu", m, "type", "veth", "peer", "name", n.vethB, "netns", n.b, "mtu", m},
		{"-n", n.a, "link", "set", "lo", "up"},
		{"-n", n.b, "link", "set", "lo", "up"},
		{"-n", n.a, "addr", "add", "10.201.0.1/24", "dev", n.vethA},
		{"-n", n.b, "addr", "add", "10.201.0.2/24", "dev", n.vethB},
		{"-n", n.a, "addr", "add", "fd00:201::1/64", "dev", n.vethA, "nodad"},
		{"-n", n.b, "addr", "add", "fd00:201::2/64", "dev", n.vethB, "nodad"},
		{"-n", n.a, "link", "set", n.vethA, "up"},
		{"-n", n.b, "link", "set", n.vethB, "up"},
	})
	return n
}

// runCmd runs name with args and returns an error with its output if it
// fails.
func runCmd(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// addNetns creates the network namespaces names; a cleanup deletes each
// (and so every interface in it). When one cannot be created the test is
// skipped, or failed under CI=true, with need and the error.
func addNetns(t *testing.T, need string, names ...string) {
	t.Helper()
	for _, ns := range names {
		if err := runCmd("ip", "netns", "add", ns); err != nil {
			skipOrFail(t, need+": "+err.Error())
		}
		t.Cleanup(func() {
			if err := runCmd("ip", "netns", "delete", ns); err != nil {
				t.Errorf("remove network namespace: %v", err)
			}
		})
	}
}

// ipSteps runs `ip` with each of steps as its arguments, in order, and
// fails the test at the first that fails.
func ipSteps(t *testing.T, steps [][]string) {
	t.Helper()
	for _, s := range steps {
		if err := runCmd("ip", s...); err != nil {
			t.Fatal(err)
		}
	}
}

// startExporterInNetns starts bin with args in network namespace ns as
// startExporter does, and points its metrics URL at a forwarder into ns.
// `ip netns exec` execs the binary in its own process, so the SIGTERM of
// startExporter's cleanup reaches the exporter. The port of its
// --web.listen-address was free in the test's namespace; in a fresh
// namespace it is free as well, and the forwarder makes it reachable.
func startExporterInNetns(t *testing.T, ns, bin string, args ...string) *exporterProcess {
	t.Helper()
	e := startExporter(t, "ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	u, err := url.Parse(e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = forwardIntoNetns(t, ns, u.Host)
	e.metrics = u.String()
	return e
}

// forwardIntoNetns listens on 127.0.0.1 of the test's network namespace
// and forwards each connection to target (HOST:PORT) inside namespace ns;
// it returns the address it listens on. A cleanup closes the listener.
func forwardIntoNetns(t *testing.T, ns, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := inNetns(ns, func() (net.Conn, error) { return net.DialTimeout("tcp", target, 5*time.Second) })
				if err != nil {
					return
				}
				defer u.Close()
				go func() {
					_, _ = io.Copy(u, c)
					_ = u.(*net.TCPConn).CloseWrite()
				}()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return l.Addr().String()
}

// inNetns runs f, which creates a socket, inside network namespace ns (a
// name of `ip netns`) and returns what it returns. It runs on an OS thread
// moved into ns with setns(2) (a socket keeps the namespace it was created
// in), and the thread is moved back to the test's own namespace before it
// is unlocked. If it cannot be moved back it stays locked, so that the Go
// runtime ends it (or, for the main thread, parks it) instead of running
// other goroutines in the wrong namespace. (The main thread matters: it is
// what /proc/self/net, and so /proc/net, shows.)
func inNetns[T any](ns string, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer home.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		v, err := f()
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

// runNetnsSIPpPair runs the UAS scenario in namespace ns.b on uasIP:5060
// and, once it listens, the UAC scenario in ns.a on uacIP:5060 for calls
// calls over UDP; it waits for both to exit 0 and returns what both sent
// according to their -trace_counts files.
func runNetnsSIPpPair(t *testing.T, ns netnsPair, uasScenario, uacScenario, uasIP, uacIP string, calls int) sipCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	uas, err := startSIPp(ctx, ns.b, filepath.Join(dir, "uas"), uasScenario, "u1", uasIP, calls)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitListening(uas.cmd.Process.Pid, "udp", uasIP, sippPort, uas.exited, 5*time.Second); err != nil {
		cancel()
		uas.wait()
		t.Fatalf("UAS: %v%s", err, uas.details())
	}
	uac, err := startSIPp(ctx, ns.a, filepath.Join(dir, "uac"), uacScenario, "u1", uacIP, calls,
		"-r", strconv.Itoa(sippRate), net.JoinHostPort(uasIP, strconv.Itoa(sippPort)))
	if err != nil {
		cancel()
		uas.wait()
		t.Fatal(err)
	}
	failed := false
	if err := uac.wait(); err != nil {
		t.Errorf("UAC %s: %v%s", uacScenario, err, uac.details())
		failed = true
	}
	if err := uas.wait(); err != nil {
		t.Errorf("UAS %s: %v%s", uasScenario, err, uas.details())
		failed = true
	}
	if failed {
		t.FailNow()
	}
	total := newSIPCounts()
	for _, s := range []*sippProcess{uas, uac} {
		c, err := sippSent(s.scenario, s.dir)
		if err != nil {
			t.Fatal(err)
		}
		total.add(c)
	}
	return total
}
