package pipeline

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/collector"
	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// seriesBound is the documented bound on the series of the sip_ families
// with every option on (collector/README.md, "Cardinality"), for N = --hep.max-nodes,
// P = peer names configured since start, K = --collector.max-phrases-per-code:
//
//	label sets  L = (N+1) × (2P+1)
//	sip_responses_total         ≤ L × 600 codes × 15 methods
//	sip_requests_total          = L × 15 methods
//	sip_response_phrases_total  ≤ (N+1) × 600 codes × (K+1)
type seriesBound struct{ responses, requests, phrases int }

func boundOf(nodes, peers, phrases int) seriesBound {
	codes := sipstatus.MaxCode - sipstatus.MinCode + 1
	methods := len(collector.Methods)
	sets := (nodes + 1) * (2*peers + 1)
	return seriesBound{
		responses: sets * codes * methods,
		requests:  sets * methods,
		phrases:   (nodes + 1) * codes * (phrases + 1),
	}
}

// TestCardinalityBound feeds a million random messages (codes 100..699,
// methods known and garbage, random phrases, addresses in and out of the
// peers, more nodes than the limit: HEP agents and three sources, two with
// their own node) through the pipeline's observe, with a
// reload in the middle that renames a peer, and checks that the series the
// registry gathers stay within the documented bound and that no message is
// lost.
// observe is Observe for the source of node "".
func (p *Pipeline) observe(o *decode.Origin, m *sip.Message) {
	p.Observe(p.SourceNode(""), o, m)
}

func TestCardinalityBound(t *testing.T) {
	const (
		messages   = 1_000_000
		maxNodes   = 4
		maxPhrases = 4
	)
	first := collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Name: "pbx-b", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}, Ports: []collector.PortRange{{First: 5060, Last: 5069}}},
	}, Nodes: map[string]string{"1": "sbc-1"}}
	second := collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Name: "carrier-c", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}},
	}}
	peersOf := func(cfg collector.PeersConfig) *collector.Peers {
		p, err := collector.NewPeers(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := DefaultConfig()
	cfg.MaxNodes, cfg.MaxPhrases, cfg.Peers = maxNodes, maxPhrases, peersOf(first)
	cfg.DedupWindow = 0 // the messages are made up, without bytes or capture time
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Peer names configured since start: carrier-a, pbx-b, carrier-c.
	bound := boundOf(maxNodes, 3, maxPhrases)
	// Messages without a HEP node come from three sources: one under
	// --capture.node-name, two with their own node (--capture.interface=
	// NAME=NODE). Their nodes are made at start, as newSources makes them,
	// and count towards the node limit like any node.
	sources := []*SourceNode{p.SourceNode(""), p.SourceNode("sbc-access"), p.SourceNode("sbc-core")}

	rng := rand.New(rand.NewPCG(1, 2))
	methods := append([]string{"", "invite", "FOO", "X-GARBAGE\x00", "INVITE INVITE"}, collector.Methods[:]...)
	addr := func() netip.AddrPort {
		port := uint16(5060 + rng.IntN(20))
		switch rng.IntN(4) {
		case 0:
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(256))}), port)
		case 1:
			return netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", rng.IntN(1<<16))), port)
		case 2:
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}), port)
		}
		return netip.AddrPort{} // unknown, as from HEP without address chunks
	}
	phrase := func() []byte {
		b := make([]byte, rng.IntN(80))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	var responses, requests uint64
	for i := range messages {
		if i == messages/2 {
			if err := p.sip.SetPeers(peersOf(second)); err != nil {
				t.Fatal(err)
			}
		}
		o := decode.Origin{Src: addr(), Dst: addr()}
		if n := rng.IntN(12); n < 10 {
			o.Node = []byte(fmt.Sprint(n)) // 10 nodes for a limit of 4, one of them mapped
		}
		var m sip.Message
		method := []byte(methods[rng.IntN(len(methods))])
		if rng.IntN(4) > 0 {
			m.Response, m.StatusCode, m.CSeqMethod, m.Reason = true, 100+rng.IntN(600), method, phrase()
			responses++
		} else {
			m.Method = method
			requests++
		}
		p.Observe(sources[rng.IntN(len(sources))], &o, &m)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.sip)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	sums := map[string]float64{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
		for _, m := range mf.GetMetric() {
			sums[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	for _, c := range []struct {
		name  string
		bound int
	}{
		{"sip_responses_total", bound.responses},
		{"sip_requests_total", bound.requests},
		{"sip_response_phrases_total", bound.phrases},
	} {
		t.Logf("%s: %d series, bound %d", c.name, series[c.name], c.bound)
		if series[c.name] > c.bound {
			t.Errorf("%s: %d series, above the bound %d", c.name, series[c.name], c.bound)
		}
	}
	if got := sums["sip_responses_total"]; got != float64(responses) {
		t.Errorf("sip_responses_total sums to %v, want %d", got, responses)
	}
	if got := sums["sip_response_phrases_total"]; got != float64(responses) {
		t.Errorf("sip_response_phrases_total sums to %v, want %d", got, responses)
	}
	if got := sums["sip_requests_total"]; got != float64(requests) {
		t.Errorf("sip_requests_total sums to %v, want %d", got, requests)
	}
	// The label sets: node "other" and 4 tracked nodes, each with peer
	// other and carrier-a, pbx-b, carrier-c both ways.
	if got, want := series["sip_requests_total"], (maxNodes+1)*(2*3+1)*len(collector.Methods); got != want {
		t.Errorf("sip_requests_total: %d series, want %d (every label set seen)", got, want)
	}
}

// observeCases are pipelines without and with peers and phrases, and a
// response of a known label set.
func observeCases(t testing.TB) []struct {
	name string
	p    *Pipeline
} {
	peers, err := collector.NewPeers(collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Name: "pbx-b", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(peers *collector.Peers, phrases int) *Pipeline {
		cfg := DefaultConfig()
		cfg.Peers, cfg.MaxPhrases = peers, phrases
		cfg.DedupWindow = 0 // one made-up message, sent again and again
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return []struct {
		name string
		p    *Pipeline
	}{
		{"no-config", mk(nil, 0)},
		{"peers", mk(peers, 0)},
		{"peers+phrases", mk(peers, 16)},
	}
}

var (
	benchOrigin = decode.Origin{Src: netip.MustParseAddrPort("203.0.113.1:5060"), Dst: netip.MustParseAddrPort("198.51.100.7:5060")}
	benchMsg    = sip.Message{Response: true, StatusCode: 503, Reason: []byte("No circuits available"), CSeqMethod: []byte("INVITE")}
)

func TestObserveAllocs(t *testing.T) {
	for _, c := range observeCases(t) {
		sn := c.p.SourceNode("")
		c.p.Observe(sn, &benchOrigin, &benchMsg)
		if n := testing.AllocsPerRun(1000, func() { c.p.Observe(sn, &benchOrigin, &benchMsg) }); n != 0 {
			t.Errorf("%s: observe allocates %v times", c.name, n)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	for _, c := range observeCases(b) {
		b.Run(c.name, func(b *testing.B) {
			sn := c.p.SourceNode("")
			b.ReportAllocs()
			for b.Loop() {
				c.p.Observe(sn, &benchOrigin, &benchMsg)
			}
		})
	}
}

// TestMessageSize pins the size of the value each message takes through
// the merge: 80 bytes without the Call-ID of the exemplars (report), 144
// with it (collector.CallID, 65 bytes, and padding); with its queue item's
// time, order and lane, a live input's queue of 16,384 holds about 2.6 MiB
// with it, a HEP connection's of 1,024 about 168 KiB, per shard.
func TestMessageSize(t *testing.T) {
	if n := unsafe.Sizeof(message[noCallID]{}); n > 80 {
		t.Errorf("message without Call-ID is %d bytes, want at most 80", n)
	}
	if n := unsafe.Sizeof(message[withCallID]{}); n > 144 {
		t.Errorf("message with Call-ID is %d bytes, want at most 144", n)
	}
}
