package collector

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestKeepaliveStateMachine feeds sequences of keepalive outcomes (S a 2xx,
// F a failure) to the reachability state machine and checks its state
// after each (? unknown, U up, D down). The expected traces are written by
// hand from the rule: down after downAfter failures in a row, up after
// upAfter successes in a row, unknown until one of the two first happens.
func TestKeepaliveStateMachine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		down, up int
		outcomes string
		want     string
	}{
		{"one success is not enough", 3, 2, "S", "?"},
		{"two successes: up", 3, 2, "SS", "?U"},
		{"two failures after up: still up", 3, 2, "SSFF", "?UUU"},
		{"third failure in a row: down", 3, 2, "SSFFF", "?UUUD"},
		{"one success after down: still down", 3, 2, "SSFFFS", "?UUUDD"},
		{"second success: up again", 3, 2, "SSFFFSS", "?UUUDDU"},
		{"failures from the start: down at the third", 3, 2, "FFF", "??D"},
		{"a success breaks the run of failures", 3, 2, "FFSFFF", "?????D"},
		{"a failure breaks the run of successes", 3, 2, "FFFSFSS", "??DDDDU"},
		{"alternating never decides", 3, 2, "SFSFSFSF", "????????"},
		{"alternating after up stays up", 3, 2, "SSFSFSFF", "?UUUUUUU"},
		{"thresholds 1 and 1: every outcome decides", 1, 1, "SFFS", "UDDU"},
		{"thresholds 5 and 3", 5, 3, "FFFFSSSFFFFF", "??????UUUUUD"},
		{"long runs are capped, never overflow", 2, 2, strings.Repeat("S", 300) + "FF", "?" + strings.Repeat("U", 300) + "D"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k keepalive
			var got strings.Builder
			for _, c := range tc.outcomes {
				k.observe(c == 'S', tc.down, tc.up)
				got.WriteByte("?DU"[k.state.Load()])
			}
			if got.String() != tc.want {
				t.Errorf("%s (down after %d, up after %d): states %s, want %s", tc.outcomes, tc.down, tc.up, got.String(), tc.want)
			}
		})
	}
}

// TestTrackerPeerUp: the tracker turns a peer's OPTIONS outcomes (a 2xx, a
// final non-2xx, no final response within 64*T1 = 32 s, stamped at its
// timeout) into sip_peer_up under the thresholds of the peer file: absent
// until a run completes, per direction, never for peer "other" nor
// without peers; a reload's thresholds apply from the next outcome.
func TestTrackerPeerUp(t *testing.T) {
	cfg := PeersConfig{Peers: []PeerConfig{
		{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Name: "carrier-b", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, KeepaliveDownAfter: 1, KeepaliveUpAfter: 4},
	}}
	peers, err := NewPeers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewSIPWithConfig(SIPConfig{MaxNodes: 4, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	ours := netip.MustParseAddrPort("203.0.113.1:5060")
	a, b := netip.MustParseAddrPort("192.0.2.1:5060"), netip.MustParseAddrPort("198.51.100.1:5060")
	aOut, aIn, bOut := c.Lookup(nil, ours, a), c.Lookup(nil, a, ours), c.Lookup(nil, ours, b)
	other := c.Lookup(nil, ours, netip.MustParseAddrPort("10.9.9.9:5060"))
	tcfg := DefaultTrackerConfig()
	tcfg.SIP = c
	tr := newTestTracker(t, tcfg)
	i := uint64(0)
	// options sends a keepalive of n at ms answered 5 ms later with code,
	// or never (0: it fails 32 s later).
	options := func(n *Node, ms int64, code uint16) {
		i++
		req := ev(n, i, ms, 0, MethodOPTIONS, 0)
		tr.Observe(&req)
		if code != 0 {
			resp := ev(n, i, ms+5, code, MethodOPTIONS, 0)
			tr.Observe(&resp)
		}
	}
	check := func(step string, want ...string) {
		t.Helper()
		if got := peerUpSamples(t, tr); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: sip_peer_up %q, want %q", step, got, want)
		}
	}
	const (
		aUpOut   = "carrier-a/outbound 1"
		aDownOut = "carrier-a/outbound 0"
		aUpIn    = "carrier-a/inbound 1"
		bUpOut   = "carrier-b/outbound 1"
		bDownOut = "carrier-b/outbound 0"
	)
	options(aOut, 0, 200)
	options(other, 0, 200)
	options(other, 1000, 200)
	check("one success of carrier-a; two of other")
	options(aOut, 30_000, 200)
	options(aIn, 30_000, 200) // the peer pings us: its own label set
	check("two successes of carrier-a", aUpOut)
	options(aOut, 60_000, 503)
	options(aOut, 90_000, 0) // times out at 122 s
	options(aOut, 120_000, 500)
	check("503 and 500 seen, the timeout not yet", aUpOut)
	options(aIn, 121_000, 200)
	check("two failures of carrier-a and an inbound success", aUpIn, aUpOut)
	tr.Advance(at(122_000))
	check("the timeout at 122 s: the third failure", aUpIn, aDownOut)
	options(bOut, 130_000, 404)
	check("carrier-b is down after 1", aUpIn, aDownOut, bDownOut)
	for k := range int64(3) {
		options(bOut, 140_000+k*1000, 200)
	}
	check("carrier-b: three successes of the four it needs", aUpIn, aDownOut, bDownOut)

	// A reload: carrier-b up after 1, carrier-a removed (defaults).
	cfg.Peers[1].KeepaliveUpAfter = 1
	reloaded, err := NewPeers(PeersConfig{Peers: cfg.Peers[1:]})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetPeers(reloaded); err != nil {
		t.Fatal(err)
	}
	options(bOut, 150_000, 200)
	options(aOut, 150_000, 200)
	check("after the reload", aUpIn, aDownOut, bUpOut)
	options(aOut, 160_000, 200)
	check("carrier-a under the defaults", aUpIn, aUpOut, bUpOut)

	problems, err := testutil.CollectAndLint(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}

	// Without peer labels: no sip_peer_up.
	plain := newTestTracker(t, DefaultTrackerConfig())
	n := NewSIP(1).Node(nil)
	for k := range uint64(4) {
		for _, e := range []TxEvent{ev(n, k, int64(k)*1000, 0, MethodOPTIONS, 0), ev(n, k, int64(k)*1000+5, 200, MethodOPTIONS, 0)} {
			plain.Observe(&e)
		}
	}
	if got := testutil.CollectAndCount(plain, "sip_peer_up"); got != 0 {
		t.Errorf("without peers: %d sip_peer_up series, want 0", got)
	}
}

// carrierASIP returns a SIP collector of shards shards whose peers file
// names one peer, carrier-a, 192.0.2.0/24.
func carrierASIP(t *testing.T, shards int) *SIP {
	t.Helper()
	peers, err := NewPeers(PeersConfig{Peers: []PeerConfig{{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewSIPWithConfig(SIPConfig{MaxNodes: 4, Peers: peers, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// peerUpSamples returns the sip_peer_up samples of c as "peer/direction value",
// in the registry's order (by direction, then peer).
func peerUpSamples(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "sip_peer_up" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out = append(out, fmt.Sprintf("%s/%s %g", l["peer"], l["direction"], m.GetGauge().GetValue()))
		}
	}
	return out
}

// TestTrackerPeerUpShards: the state of a label set is that of the shard
// that saw its keepalives (the pipeline puts them all in one); the others
// know none.
func TestTrackerPeerUpShards(t *testing.T) {
	// No subtests: the allocation test that follows counts every
	// goroutine's mallocs, and a subtest's goroutine may still be
	// reporting.
	for shard := range 3 {
		c := carrierASIP(t, 3)
		cfg := DefaultTrackerConfig()
		cfg.SIP = c
		ts, err := NewTrackers(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		n := c.Lookup(nil, netip.MustParseAddrPort("203.0.113.1:5060"), netip.MustParseAddrPort("192.0.2.1:5060"))
		// Every shard sees the label set (a message of another method).
		for k := range 3 {
			e := ev(n, uint64(100+k), 0, 0, MethodINVITE, 0)
			ts.Shard(k).Observe(&e)
		}
		for k := range uint64(3) {
			for _, e := range []TxEvent{ev(n, k, int64(k)*1000, 0, MethodOPTIONS, 0), ev(n, k, int64(k)*1000+5, 503, MethodOPTIONS, 0)} {
				ts.Shard(shard).Observe(&e)
			}
		}
		if got := peerUpSamples(t, ts); len(got) != 1 || got[0] != "carrier-a/outbound 0" {
			t.Errorf("keepalives in shard %d: sip_peer_up %q, want carrier-a/outbound 0", shard, got)
		}
	}
}

// TestPeerUpSteadyStateAllocs: with peers, OPTIONS keepalives of a
// configured peer, answered and not, allocate nothing once warm.
func TestPeerUpSteadyStateAllocs(t *testing.T) {
	c := carrierASIP(t, 1)
	cfg := DefaultTrackerConfig()
	cfg.SIP = c
	cfg.MaxTransactions = 10_000
	tr := newTestTracker(t, cfg)
	n := c.Lookup(nil, netip.MustParseAddrPort("203.0.113.1:5060"), netip.MustParseAddrPort("192.0.2.1:5060"))
	i := uint64(0)
	var req, resp TxEvent
	step := func() {
		ms := int64(i) * 100
		req = ev(n, i, ms, 0, MethodOPTIONS, 0)
		tr.Observe(&req)
		if i%5 != 0 { // every fifth never answered: it times out
			resp = ev(n, i, ms+5, []uint16{200, 503}[i%2], MethodOPTIONS, 0)
			tr.Observe(&resp)
		}
		i++
	}
	// Warm as long as TestTrackerNocSteadyStateAllocs: noMallocs counts
	// every goroutine's, and those the tests before left have ended.
	for i < 100_000 {
		step()
	}
	noMallocs(t, step)
	if tr.nodes[0].keepalive.state.Load() == peerUnknown {
		t.Error("no state reached")
	}
}
