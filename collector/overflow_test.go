package collector_test

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sip-exporter/sip_exporter/collector"
)

// randomIDs returns n random capture agent IDs in decimal, as a sender
// spraying agent IDs makes the HEP decoder present them.
func randomIDs(n int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 13))
	out := make([][]byte, n)
	for i := range out {
		out[i] = strconv.AppendUint(nil, uint64(r.Uint32()), 10)
	}
	return out
}

// overflowed returns a collector with maxNodes tracked nodes, full, and
// "other" resolved once for peer "other" (and for peer "a" inbound with
// peers).
func overflowed(t testing.TB, peers *collector.Peers) *collector.SIP {
	t.Helper()
	c, err := collector.NewSIPWithConfig(collector.SIPConfig{MaxNodes: 2, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sbc-1", "sbc-2", "first-refused"} {
		c.Node([]byte(n))
		c.Lookup([]byte(n), netip.MustParseAddrPort("192.0.2.1:5060"), netip.AddrPort{})
	}
	return c
}

// TestNodeOverflowAllocs: past --hep.max-nodes, a new node name resolves
// to "other" without allocating (and without the collector's lock: see
// the race test below), and every message is counted as overflow; a new
// raw spelling of a tracked label still goes to that label.
func TestNodeOverflowAllocs(t *testing.T) {
	peers, err := collector.NewPeers(collector.PeersConfig{
		Peers: []collector.PeerConfig{{Name: "a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
		Nodes: map[string]string{"4711": "sbc-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		peers *collector.Peers
	}{{"node", nil}, {"peers", peers}} {
		t.Run(tc.name, func(t *testing.T) {
			c := overflowed(t, tc.peers)
			ids := randomIDs(1000, 1)
			before := float64(c.Overflow())
			i := 0
			src := netip.MustParseAddrPort("192.0.2.9:5060")
			allocs := testing.AllocsPerRun(1000, func() {
				var n *collector.Node
				if tc.peers == nil {
					n = c.Node(ids[i%len(ids)])
				} else {
					n = c.Lookup(ids[i%len(ids)], src, netip.AddrPort{})
				}
				i++
				if n.Label() != collector.OtherNode {
					t.Fatalf("node %q", n.Label())
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per overflowing message, want 0", allocs)
			}
			if got := float64(c.Overflow()) - before; got != 1001 { // AllocsPerRun runs once more
				t.Errorf("overflow counted %v, want 1001", got)
			}
			// A spelling of a tracked label (its display name, or a name
			// cut to the same label) is not "other".
			long := "sbc-2" + strings.Repeat("x", collector.MaxNodeLabelBytes)
			c2 := overflowedWith(t, tc.peers, long[:collector.MaxNodeLabelBytes])
			if got := c2.Node([]byte(long + "-another-spelling")).Label(); got != long[:collector.MaxNodeLabelBytes] {
				t.Errorf("long spelling of a tracked label counted under %q", got)
			}
			if tc.peers != nil {
				if got := c.Node([]byte("4711")).Label(); got != "sbc-1" {
					t.Errorf("display name of a tracked label counted under %q", got)
				}
			}
		})
	}
}

// overflowedWith is overflowed with the tracked nodes sbc-1 and label.
func overflowedWith(t testing.TB, peers *collector.Peers, label string) *collector.SIP {
	t.Helper()
	c, err := collector.NewSIPWithConfig(collector.SIPConfig{MaxNodes: 2, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sbc-1", label, "first-refused"} {
		c.Node([]byte(n))
	}
	return c
}

// TestNodeOverflowFlood counts one million messages from random node IDs
// on 4 goroutines past the limit of 256 nodes: 256 tracked, the rest
// under "other", every message counted once, and the heap does not grow
// with the number of IDs.
func TestNodeOverflowFlood(t *testing.T) {
	const messages, workers = 1_000_000, 4
	c := collector.NewSIP(256)
	ids := randomIDs(messages, 2)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range ids[w*messages/workers : (w+1)*messages/workers] {
				c.Node(id).ObserveResponseMethod(200, collector.MethodOPTIONS)
			}
		}()
	}
	wg.Wait()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	var total, other uint64
	for _, n := range c.Nodes() {
		v := n.Response(200, collector.MethodOPTIONS)
		total += v
		if n.Label() == collector.OtherNode {
			other = v
		}
	}
	overflow := float64(c.Overflow())
	if total != messages || other != messages-256 || overflow != messages-256 {
		t.Errorf("counted %d (other %d, overflow %v), want %d (other and overflow %d)", total, other, overflow, messages, messages-256)
	}
	allocated, mallocs := after.TotalAlloc-before.TotalAlloc, after.Mallocs-before.Mallocs
	t.Logf("%d messages from %d random node IDs: %d allocations, %.2f MiB allocated; heap in use after %.1f MiB (the IDs included)",
		messages, messages, mallocs, float64(allocated)/(1<<20), float64(after.HeapInuse)/(1<<20))
	// The 256 tracked nodes and their lookup tables allocate; the
	// 999,744 refused ones do not.
	if mallocs > 20_000 || allocated > 32<<20 {
		t.Errorf("%d allocations, %d bytes for %d refused nodes", mallocs, allocated, messages-256)
	}
}

// BenchmarkNodeOverflow resolves one million random node IDs past the
// node limit, from all cores at once: each op is one message of a new
// node counted under "other".
func BenchmarkNodeOverflow(b *testing.B) {
	c := overflowed(b, nil)
	ids := randomIDs(1_000_000, 3)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(ids))
		for pb.Next() {
			c.Node(ids[i%len(ids)]).ObserveRequestMethod(collector.MethodOPTIONS)
			i++
		}
	})
}
