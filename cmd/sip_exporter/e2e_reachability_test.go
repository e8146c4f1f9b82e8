package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	reachCIDR = "127.0.23.0/24" // the addresses of TestLiveReachability's SIPp pairs
	// The trunk (peer "trunk", its UAS) and the SBC that pings it (the
	// UAC, no peer): the pings are outbound to the trunk.
	reachTrunk, reachSBC = "127.0.23.1", "127.0.23.2"
)

// TestLiveReachability runs the real exporter on lo with a peers file
// (thresholds 3 and 2, the defaults, written out) and SIPp on loopback as
// a trunk that answers OPTIONS keepalives with 200, then with 503, then
// with 200 again, in steps of a few pings each (a new Call-ID every ping,
// over TCP so that SIPp retransmits nothing). After each step, once the
// exporter has counted every response SIPp says it sent,
// sip_peer_up{peer="trunk",direction="outbound"} must be the state the
// rule gives for the pings so far: absent before the first run completes,
// 1 after two 200s, still 1 after two 503s, 0 after the third, still 0
// after one 200, 1 after the second. The responses SIPp sent are taken
// from its own counts and must be what it was asked to send.
func TestLiveReachability(t *testing.T) {
	requireLive(t, "sipp")
	start := time.Now()
	bin := buildExporter(t)
	_, reachNet, err := net.ParseCIDR(reachCIDR)
	if err != nil {
		t.Fatal(err)
	}
	peers := filepath.Join(t.TempDir(), "peers.yml")
	if err := os.WriteFile(peers, []byte("peers:\n  - name: trunk\n    cidrs: ["+reachTrunk+"]\n    keepalive_down_after: 3\n    keepalive_up_after: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, bin,
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, reachNet),
		"--config.file="+peers,
		"--capture.shards=2")
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	ok := sippPair{name: "options-200", uas: "uas_options.xml", uac: "uac_options.xml"}
	refused := sippPair{name: "options-503", uas: "uas_options_503.xml", uac: "uac_options_503.xml"}
	dir := t.TempDir()
	sent := map[string]int64{} // responses to OPTIONS SIPp sent so far, by code
	trunk := map[string]string{"peer": "trunk", "direction": "outbound"}
	for i, step := range []struct {
		pair  sippPair
		code  string
		pings int
		want  float64 // -1: absent
	}{
		{ok, "200", 1, -1},     // one success: not yet known
		{ok, "200", 1, 1},      // two in a row: up
		{refused, "503", 2, 1}, // two failures: still up
		{refused, "503", 1, 0}, // the third in a row: down
		{ok, "200", 1, 0},      // one success: still down
		{ok, "200", 1, 1},      // two in a row: up again
	} {
		c, err := runSIPpPair(filepath.Join(dir, step.pair.name+"-"+string(rune('a'+i))), step.pair, "t1", reachTrunk, reachSBC, step.pings)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		got := c.responses[responseKey{code: step.code, method: "OPTIONS"}]
		if got != int64(step.pings) {
			t.Fatalf("step %d: SIPp sent %d %s to OPTIONS, asked for %d", i+1, got, step.code, step.pings)
		}
		sent[step.code] += got
		// Until the exporter has counted every response sent so far.
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, counts := e.settle(t, 10*time.Second)
			if counts.responses[responseKey{code: "200", method: "OPTIONS"}] == sent["200"] &&
				counts.responses[responseKey{code: "503", method: "OPTIONS"}] == sent["503"] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("step %d: the exporter counted %v responses to OPTIONS, SIPp sent %v", i+1, counts.responses, sent)
			}
		}
		_, mfs, err := e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		up, present := gaugeValue(mfs, "sip_peer_up", trunk)
		switch {
		case step.want < 0 && present:
			t.Errorf("step %d (%d %s, SIPp sent %v so far): sip_peer_up %v, want absent", i+1, step.pings, step.code, sent, up)
		case step.want >= 0 && (!present || up != step.want):
			t.Errorf("step %d (%d %s, SIPp sent %v so far): sip_peer_up %v (present %v), want %v", i+1, step.pings, step.code, sent, up, present, step.want)
		}
	}
	t.Logf("test took %s", time.Since(start).Round(time.Millisecond))
}
