//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// Addresses of the recovery test. The sending end of the veth pair holds
// recovSender; recovTarget is nobody's address: a permanent neighbour entry
// sends it to the MAC of the captured end, which receives the datagrams
// (and drops them, not forwarding). Both ends get fixed MAC addresses so
// that the pair recreated is the same pair.
const (
	recovSender     = "10.202.0.1"
	recovTarget     = "10.202.0.2"
	recovCaptureMAC = "02:5e:c0:00:00:01"
	recovSenderMAC  = "02:5e:c0:00:00:02"
)

// TestLiveSourceRecovery runs the real binary capturing one end of a veth
// pair, deletes the pair under it and recreates it with the same names, as
// a container restart recreates its veth. The live source must go down
// (sip_exporter_source_up 0, the process still running), be reopened with
// backoff once the interface is back (source_up 1 again), count that as
// exactly one restart (sip_exporter_source_restarts_total), and count the
// traffic sent after the recreation exactly, as it counted the traffic
// before the deletion.
//
// Topology, all of it created by the test and removed by its cleanup:
//
//	netns sxrecov-PID
//	  sip_exporter on sxrPIDc (no address)
//	  veth sxrPIDc  <---->  veth sxrPIDp  10.202.0.1/24
//	  neighbour 10.202.0.2 -> MAC of sxrPIDc on sxrPIDp
//
// The traffic is SIP over UDP that the test writes itself from a socket in
// the namespace bound to 10.202.0.1:5060: OPTIONS requests and the 200 OK
// a far end would answer, every message unique (its own branch, Call-ID and
// CSeq, so that --capture.dedup-window removes none), to 10.202.0.2:5060.
// Each datagram crosses the pair once and is seen once by the exporter, so
// the counts are known by construction. Nothing leaves the namespace.
func TestLiveSourceRecovery(t *testing.T) {
	requireLive(t, "ip")
	start := time.Now()

	bin := buildExporter(t)
	ns := newRecoveryNetns(t)
	ns.addVeth(t)

	e := startExporterInNetns(t, ns.name, bin, "--capture.interface="+ns.capture)
	if err := e.waitSourceUp(ns.capture, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	source := map[string]string{"source": ns.capture, "type": "interface"}

	// Before: traffic counted exactly, no restart (the counter is there
	// at 0, so that increase() sees the first restart).
	e.checkSentCounted(t, ns, "before", 0, 5)
	e.checkRestarts(t, source, 0)

	// Delete the pair: the source must go down while the exporter runs.
	deleted := time.Now()
	ns.ip(t, "link", "delete", ns.capture)
	if err := e.waitSourceValue(source, 0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("source_up 0 %s after the veth was deleted", time.Since(deleted).Round(time.Millisecond))
	// Keep it down for a few retries of the backoff (1 s, 2 s, ...),
	// scraping: it stays 0 and the process stays up.
	for range 3 {
		time.Sleep(time.Second)
		select {
		case <-e.exited:
			t.Fatalf("exporter exited after its interface was deleted: %v", e.err)
		default:
		}
		_, mfs, err := e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := gaugeValue(mfs, "sip_exporter_source_up", source); !ok || v != 0 {
			t.Fatalf("sip_exporter_source_up%s = %v (present %v) while the veth is deleted, want 0", fmtLabels(source), v, ok)
		}
		r, ok := gaugeValue(mfs, "sip_exporter_source_restarts_total", source)
		t.Logf("while deleted: source_up 0, source_restarts_total %v (present %v)", r, ok)
	}

	// Recreate it with the same names: the source must come back by
	// itself (the backoff is at most 30 s) as exactly one restart.
	recreated := time.Now()
	ns.addVeth(t)
	if err := e.waitSourceUp(ns.capture, "interface", 35*time.Second); err != nil {
		t.Fatalf("after the veth was recreated: %v", err)
	}
	t.Logf("source_up 1 %s after the veth was recreated", time.Since(recreated).Round(time.Millisecond))
	e.checkRestarts(t, source, 1)

	// After: the traffic sent after the recreation is counted exactly.
	e.checkSentCounted(t, ns, "after", 100, 7)
	e.checkRestarts(t, source, 1)
	t.Logf("recovery test took %s", time.Since(start).Round(time.Millisecond))
}

// checkSentCounted sends n OPTIONS and n 200 OK numbered from first (each
// round its own range, so that no message repeats one of an earlier round)
// and checks that sip_requests_total and sip_responses_total grew by
// exactly that; name labels the round in messages.
func (e *exporterProcess) checkSentCounted(t *testing.T, ns recoveryNetns, name string, first, n int) {
	t.Helper()
	_, before := e.settle(t, 5*time.Second)
	want := ns.sendOptions(t, first, n)
	_, after := e.settle(t, 5*time.Second)
	table, ok := compareCounts(want, after.sub(before))
	if !ok {
		t.Errorf("%s: exporter counts differ from what the test sent (want = sent, got = counter delta):\n%s", name, table)
	} else {
		t.Logf("%s: exporter counts equal what the test sent:\n%s", name, table)
	}
}

// checkRestarts checks that sip_exporter_source_restarts_total of source is
// want.
func (e *exporterProcess) checkRestarts(t *testing.T, source map[string]string, want float64) {
	t.Helper()
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	v, ok := gaugeValue(mfs, "sip_exporter_source_restarts_total", source)
	if !ok {
		t.Errorf("no sip_exporter_source_restarts_total%s", fmtLabels(source))
	} else if v != want {
		t.Errorf("sip_exporter_source_restarts_total%s = %v, want %v", fmtLabels(source), v, want)
	}
}

// recoveryNetns is the namespace of the recovery test and the names of its
// veth pair.
type recoveryNetns struct {
	name    string // network namespace
	capture string // veth end the exporter captures
	sender  string // veth end the test sends from
}

// newRecoveryNetns creates the namespace sxrecov-PID with lo up; a cleanup
// deletes it (and so whatever veth is in it). When it cannot be created the
// test is skipped, or failed under CI=true.
func newRecoveryNetns(t *testing.T) recoveryNetns {
	t.Helper()
	pid := os.Getpid()
	n := recoveryNetns{
		name:    fmt.Sprintf("sxrecov-%d", pid),
		capture: fmt.Sprintf("sxr%dc", pid),
		sender:  fmt.Sprintf("sxr%dp", pid),
	}
	addNetns(t, "network namespaces unavailable", n.name)
	n.ip(t, "link", "set", "lo", "up")
	return n
}

// ip runs `ip -n NAMESPACE args...` and fails the test on an error.
func (n recoveryNetns) ip(t *testing.T, args ...string) {
	t.Helper()
	ipSteps(t, [][]string{append([]string{"-n", n.name}, args...)})
}

// addVeth creates the veth pair in the namespace, both ends up, the
// sender's address and the neighbour entry that sends recovTarget to the
// captured end.
func (n recoveryNetns) addVeth(t *testing.T) {
	t.Helper()
	n.ip(t, "link", "add", "name", n.capture, "address", recovCaptureMAC, "type", "veth",
		"peer", "name", n.sender, "address", recovSenderMAC)
	n.ip(t, "addr", "add", recovSender+"/24", "dev", n.sender)
	n.ip(t, "link", "set", n.capture, "up")
	n.ip(t, "link", "set", n.sender, "up")
	n.ip(t, "neigh", "replace", recovTarget, "lladdr", recovCaptureMAC, "dev", n.sender, "nud", "permanent")
}

// sendOptions sends count OPTIONS and count 200 OK to OPTIONS, alternating, from
// recovSender:5060 to recovTarget:5060, CSeq numbers first to first+count-1,
// and returns what it sent.
func (n recoveryNetns) sendOptions(t *testing.T, first, count int) sipCounts {
	t.Helper()
	c, err := inNetns(n.name, func() (net.PacketConn, error) {
		return net.ListenPacket("udp4", net.JoinHostPort(recovSender, "5060"))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := &net.UDPAddr{IP: net.ParseIP(recovTarget), Port: 5060}
	sent := newSIPCounts()
	for i := first; i < first+count; i++ {
		msg := func(startLine, toTag string) string {
			return startLine + "\r\n" +
				fmt.Sprintf("Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK-recov-%d\r\n", recovSender, i) +
				"Max-Forwards: 70\r\n" +
				fmt.Sprintf("From: <sip:probe@%s>;tag=recov-%d\r\n", recovSender, i) +
				fmt.Sprintf("To: <sip:probe@%s>%s\r\n", recovTarget, toTag) +
				fmt.Sprintf("Call-ID: recov-%d-%d@%s\r\n", os.Getpid(), i, recovSender) +
				fmt.Sprintf("CSeq: %d OPTIONS\r\n", i) +
				"Content-Length: 0\r\n\r\n"
		}
		req := msg(fmt.Sprintf("OPTIONS sip:probe@%s:5060 SIP/2.0", recovTarget), "")
		resp := msg("SIP/2.0 200 OK", fmt.Sprintf(";tag=far-%d", i))
		for _, m := range []string{req, resp} {
			if _, err := c.WriteTo([]byte(m), to); err != nil {
				t.Fatalf("send to %s in %s: %v", to, n.name, err)
			}
		}
		sent.requests["OPTIONS"]++
		sent.responses[responseKey{code: "200", method: "OPTIONS"}]++
	}
	return sent
}
