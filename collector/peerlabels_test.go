package collector_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/sip-exporter/sip_exporter/collector"
)

func newPeerSIP(t testing.TB, cfg collector.PeersConfig, maxNodes, maxPhrases int) *collector.SIP {
	t.Helper()
	c, err := collector.NewSIPWithConfig(collector.SIPConfig{
		MaxNodes: maxNodes,
		Peers:    mustPeers(t, cfg),
		Phrases:  collector.PhrasesConfig{MaxPerCode: maxPhrases},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var twoPeers = collector.PeersConfig{
	Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: pfx("192.0.2.0/24")},
		{Name: "pbx-b", Prefixes: pfx("198.51.100.0/24", "2001:db8::/32"), Ports: []collector.PortRange{{5060, 5069}}},
	},
	Nodes: map[string]string{"4711": "sbc-fra-1"},
}

func TestSIPPeerLabels(t *testing.T) {
	c := newPeerSIP(t, twoPeers, 4, 0)
	ap := netip.MustParseAddrPort
	carrier, pbx, other := ap("192.0.2.1:5060"), ap("198.51.100.1:5062"), ap("203.0.113.1:5060")
	c.Lookup(nil, carrier, other).ObserveRequest([]byte("INVITE"))       // from carrier-a
	c.Lookup(nil, other, carrier).ObserveResponse(486, []byte("INVITE")) // to carrier-a
	c.Lookup(nil, other, carrier).ObserveResponse(486, []byte("INVITE"))
	c.Lookup(nil, carrier, pbx).ObserveRequest([]byte("BYE"))                       // between peers: the source's
	c.Lookup(nil, pbx, carrier).ObserveResponse(200, []byte("BYE"))                 // between peers: the source's
	c.Lookup([]byte("4711"), ap("[2001:db8::1]:5060"), other).ObserveRequest(nil)   // node mapped, IPv6
	c.Lookup(nil, ap("198.51.100.1:5070"), other).ObserveResponse(503, []byte("X")) // port outside: other

	want := `
# HELP sip_requests_total SIP request messages seen, by node, peer, direction and method (RFC 3261 §7.1).
# TYPE sip_requests_total counter
sip_requests_total{direction="inbound",method="BYE",node="",peer="carrier-a"} 1
sip_requests_total{direction="inbound",method="INVITE",node="",peer="carrier-a"} 1
sip_requests_total{direction="inbound",method="OTHER",node="sbc-fra-1",peer="pbx-b"} 1
`
	if err := testutil.CollectAndCompare(nonZero{c}, strings.NewReader(want), "sip_requests_total"); err != nil {
		t.Error(err)
	}
	wantResp := `
# HELP sip_responses_total SIP response messages seen, by node, peer, direction, CSeq method, status code, class and registry reason phrase (RFC 3261 §7.2).
# TYPE sip_responses_total counter
sip_responses_total{class="2xx",code="200",direction="inbound",method="BYE",node="",peer="pbx-b",reason="OK"} 1
sip_responses_total{class="4xx",code="486",direction="outbound",method="INVITE",node="",peer="carrier-a",reason="Busy Here"} 2
sip_responses_total{class="5xx",code="503",direction="unknown",method="OTHER",node="",peer="other",reason="Service Unavailable"} 1
`
	if err := testutil.CollectAndCompare(nonZero{c}, strings.NewReader(wantResp), "sip_responses_total"); err != nil {
		t.Error(err)
	}
	// Every label set seen exports the pre-initialised pairs at zero too.
	if got, want := testutil.CollectAndCount(c, "sip_requests_total"), 5*len(collector.Methods); got != want {
		t.Errorf("%d request series, want %d (5 label sets)", got, want)
	}
	lintCollector(t, c)
}

func TestSIPSetPeers(t *testing.T) {
	c := newPeerSIP(t, twoPeers, 4, 0)
	ap := netip.MustParseAddrPort
	src, dst := ap("198.51.100.7:5060"), ap("203.0.113.1:5060")
	n1 := c.Lookup([]byte("4711"), src, dst)
	n1.ObserveRequest([]byte("OPTIONS"))
	if n1.Label() != "sbc-fra-1" || n1.Peer() != "pbx-b" || n1.Direction() != collector.DirectionInbound {
		t.Fatalf("before reload: %s %s %s", n1.Label(), n1.Peer(), n1.Direction())
	}
	// The reload renames the peer and drops the node mapping.
	next := collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: pfx("192.0.2.0/24")},
		{Name: "carrier-c", Prefixes: pfx("198.51.100.0/24")},
	}}
	if err := c.SetPeers(mustPeers(t, next)); err != nil {
		t.Fatal(err)
	}
	n2 := c.Lookup([]byte("4711"), src, dst)
	n2.ObserveRequest([]byte("OPTIONS"))
	if n2.Label() != "4711" || n2.Peer() != "carrier-c" || n2.Direction() != collector.DirectionInbound {
		t.Fatalf("after reload: %s %s %s", n2.Label(), n2.Peer(), n2.Direction())
	}
	// Unchanged peers keep their Node (and counts) across the reload.
	a1 := c.Lookup(nil, ap("192.0.2.1:5060"), dst)
	if err := c.SetPeers(mustPeers(t, next)); err != nil {
		t.Fatal(err)
	}
	if a2 := c.Lookup(nil, ap("192.0.2.1:5060"), dst); a2 != a1 {
		t.Error("a reload gave an unchanged peer another Node")
	}
	want := `
# HELP sip_requests_total SIP request messages seen, by node, peer, direction and method (RFC 3261 §7.1).
# TYPE sip_requests_total counter
sip_requests_total{direction="inbound",method="OPTIONS",node="4711",peer="carrier-c"} 1
sip_requests_total{direction="inbound",method="OPTIONS",node="sbc-fra-1",peer="pbx-b"} 1
`
	if err := testutil.CollectAndCompare(nonZero{c}, strings.NewReader(want), "sip_requests_total"); err != nil {
		t.Error(err)
	}
	if err := collector.NewSIP(1).SetPeers(mustPeers(t, next)); err == nil {
		t.Error("SetPeers on a collector without peer labels: no error")
	}
}

func TestSIPPeerLookupAllocs(t *testing.T) {
	c := newPeerSIP(t, twoPeers, 4, 16)
	ap := netip.MustParseAddrPort
	src, dst := ap("192.0.2.1:5060"), ap("198.51.100.1:5062")
	node, method, phrase := []byte("4711"), []byte("INVITE"), []byte("No circuits available")
	c.Lookup(node, src, dst).ObservePhrase(503, phrase)
	if n := testing.AllocsPerRun(1000, func() {
		n := c.Lookup(node, src, dst)
		n.ObserveResponse(503, method)
		n.ObservePhrase(503, phrase)
	}); n != 0 {
		t.Errorf("Lookup and Observe allocate %v times", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name string
		sip  *collector.SIP
	}{
		{"no-peers", collector.NewSIP(4)},
		{"peers=2", newPeerSIP(b, twoPeers, 4, 0)},
		{"peers=100", func() *collector.SIP {
			c, _ := collector.NewSIPWithConfig(collector.SIPConfig{MaxNodes: 4, Peers: benchPeers(100)})
			return c
		}()},
	} {
		src, dst := ap("203.0.113.1:5060"), ap("10.0.99.1:5060")
		node := []byte("sbc-1")
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.sip.Lookup(node, src, dst).ObserveRequest(nil)
			}
		})
	}
}

func TestPhrases(t *testing.T) {
	c := newPeerSIP(t, collector.PeersConfig{}, 4, 2)
	n := c.Node([]byte("sbc-1"))
	for _, p := range []string{
		"Service Unavailable",
		"  Service Unavailable\t", // trimmed: the same
		"No circuits available",
		"No\x00 circuits\x1b available\x7f", // control bytes removed: the same
		"Trunk busy",                        // third phrase of 503: other
		"other",                             // the reserved value: other
	} {
		n.ObservePhrase(503, []byte(p))
	}
	n.ObservePhrase(200, []byte("OK \xff\xfe"))           // not UTF-8
	n.ObservePhrase(200, []byte(strings.Repeat("é", 40))) // cut to 64 bytes on a character boundary
	n.ObservePhrase(200, nil)                             // empty
	c.Node([]byte("sbc-2")).ObservePhrase(503, []byte("Trunk busy"))
	want := `
# HELP sip_response_phrases_total SIP response messages seen, by node, status code and reason phrase as sent (normalised; "other" past the limit of distinct phrases per code) (RFC 3261 §7.2).
# TYPE sip_response_phrases_total counter
sip_response_phrases_total{code="200",node="sbc-1",phrase="OK ` + "\uFFFD\uFFFD" + `"} 1
sip_response_phrases_total{code="200",node="sbc-1",phrase="` + strings.Repeat("é", 32) + `"} 1
sip_response_phrases_total{code="200",node="sbc-1",phrase="other"} 1
sip_response_phrases_total{code="503",node="sbc-1",phrase="No circuits available"} 2
sip_response_phrases_total{code="503",node="sbc-1",phrase="Service Unavailable"} 2
sip_response_phrases_total{code="503",node="sbc-1",phrase="other"} 2
sip_response_phrases_total{code="503",node="sbc-2",phrase="other"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sip_response_phrases_total"); err != nil {
		t.Error(err)
	}
	lintCollector(t, c)
	if got := testutil.CollectAndCount(collector.NewSIP(1), "sip_response_phrases_total"); got != 0 {
		t.Errorf("phrases off: %d series", got)
	}
}

func TestNormalisePhrase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Service Unavailable", "Service Unavailable"},
		{"  padded \t ", "padded"},
		{"a\tb", "a b"},
		{"a\r\nb", "ab"},
		{"\x00\x01\x1f\x7f", ""},
		{"caf\xc3\xa9", "café"},
		{"bad \xc3", "bad \ufffd"},
		{"c1 \xc2\x85 control", "c1  control"},
		{strings.Repeat("x", 70), strings.Repeat("x", 64)},
		{strings.Repeat("x", 63) + "é", strings.Repeat("x", 63)},
		{strings.Repeat("x", 62) + "é", strings.Repeat("x", 62) + "é"},
		{strings.Repeat("x", 63) + " y", strings.Repeat("x", 63)},
	} {
		if got := collector.NormalisePhrase([]byte(tc.in)); got != tc.want {
			t.Errorf("normalise %q = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// nonZero is a collector that passes on the samples of c that are not 0.
type nonZero struct{ *collector.SIP }

func (n nonZero) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		n.SIP.Collect(all)
		close(all)
	}()
	for m := range all {
		if metricValue(m) != 0 {
			ch <- m
		}
	}
}

func lintCollector(t *testing.T, c *collector.SIP) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// metricValue returns the value of a counter or gauge sample.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// TestSIPConcurrentReload counts from several goroutines while the peers
// are replaced and the collector scraped; run with -race. No message is
// lost: the counts sum to what was observed.
func TestSIPConcurrentReload(t *testing.T) {
	c := newPeerSIP(t, twoPeers, 8, 4)
	other := collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "carrier-c", Prefixes: pfx("198.51.100.0/24")}}}
	addrs := []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.1:5060"), netip.MustParseAddrPort("198.51.100.1:5062"),
		netip.MustParseAddrPort("[2001:db8::1]:5060"), netip.MustParseAddrPort("203.0.113.9:5060"),
	}
	const workers, each = 4, 5000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			cfg := twoPeers
			if i%2 == 0 {
				cfg = other
			}
			if err := c.SetPeers(mustPeers(t, cfg)); err != nil {
				t.Error(err)
			}
			testutil.CollectAndCount(c)
		}
	}()
	finished := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { finished <- struct{}{} }()
			node := []byte{'n', byte('0' + w%3)}
			for i := range each {
				n := c.Lookup(node, addrs[i%4], addrs[(i+w)%4])
				n.ObserveRequest([]byte("OPTIONS"))
				n.ObservePhrase(200, []byte("OK"))
			}
		}()
	}
	for range workers {
		<-finished
	}
	<-done
	var total uint64
	for _, n := range c.Nodes() {
		total += n.Request(collector.MethodOPTIONS)
	}
	if total != workers*each {
		t.Errorf("%d requests counted, want %d", total, workers*each)
	}
}
