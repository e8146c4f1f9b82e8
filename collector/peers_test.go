package collector_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sip-exporter/sip_exporter/collector"
)

func mustPeers(t testing.TB, cfg collector.PeersConfig) *collector.Peers {
	t.Helper()
	p, err := collector.NewPeers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

func TestPeersMatch(t *testing.T) {
	p := mustPeers(t, collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "gw-1", Prefixes: pfx("10.0.0.1/32")},
		{Name: "carrier-a", Prefixes: pfx("10.0.0.0/24", "2001:db8::/32"), Ports: []collector.PortRange{{5060, 5060}, {5080, 5090}}},
		{Name: "site", Prefixes: pfx("10.0.0.0/16", "2001:db8:1::/48")},
		{Name: "v6-host", Prefixes: pfx("2001:db9::5/128")},
		{Name: "doc-net", Prefixes: pfx("192.0.2.0/24")},
	}})
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name     string
		src, dst string
		peer     string
		dir      collector.Direction
	}{
		{"source matches: inbound", "10.0.0.1:5060", "192.0.2.1:5060", "gw-1", collector.DirectionInbound},
		{"destination matches: outbound", "192.168.0.1:5060", "10.0.0.1:5060", "gw-1", collector.DirectionOutbound},
		{"first match in file order wins", "10.0.0.1:5080", "192.168.0.1:5060", "gw-1", collector.DirectionInbound},
		{"port in range", "10.0.0.2:5085", "192.168.0.1:5060", "carrier-a", collector.DirectionInbound},
		{"port at range end", "10.0.0.2:5090", "192.168.0.1:5060", "carrier-a", collector.DirectionInbound},
		{"single port", "10.0.0.2:5060", "192.168.0.1:5060", "carrier-a", collector.DirectionInbound},
		{"port outside: next peer", "10.0.0.2:5070", "192.168.0.1:5060", "site", collector.DirectionInbound},
		{"wider network", "10.0.200.2:5070", "192.168.0.1:5060", "site", collector.DirectionInbound},
		{"both ends configured: source wins", "10.0.200.2:5070", "10.0.0.1:5060", "site", collector.DirectionInbound},
		{"both ends configured, reversed", "10.0.0.1:5060", "10.0.200.2:5070", "gw-1", collector.DirectionInbound},
		{"IPv6 source", "[2001:db8::1]:5060", "[2001:db9::1]:5060", "carrier-a", collector.DirectionInbound},
		{"IPv6 port outside", "[2001:db8::1]:5070", "[2001:db9::1]:5060", "other", collector.DirectionUnknown},
		{"IPv6 wider", "[2001:db8:1:2::1]:5070", "[2001:db9::1]:5060", "site", collector.DirectionInbound},
		{"IPv6 host destination", "[2001:dba::1]:5060", "[2001:db9::5]:5060", "v6-host", collector.DirectionOutbound},
		{"IPv6 neighbour of host", "[2001:dba::1]:5060", "[2001:db9::6]:5060", "other", collector.DirectionUnknown},
		{"IPv4-mapped IPv6", "[::ffff:10.0.0.1]:5060", "[2001:dba::1]:5060", "gw-1", collector.DirectionInbound},
		{"last peer", "192.0.2.1:5060", "[2001:dba::1]:5060", "doc-net", collector.DirectionInbound},
		{"unknown addresses", "", "", "other", collector.DirectionUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src, dst netip.AddrPort
			if tc.src != "" {
				src, dst = ap(tc.src), ap(tc.dst)
			}
			i, dir := p.Match(src, dst)
			if got := p.Name(i); got != tc.peer || dir != tc.dir {
				t.Errorf("Match(%v, %v) = %s %v, want %s %v", src, dst, got, dir, tc.peer, tc.dir)
			}
		})
	}
}

func TestNewPeersErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  collector.PeersConfig
		err  string
	}{
		{"reserved name", collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "other", Prefixes: pfx("10.0.0.0/8")}}}, `peer 1: invalid name "other"`},
		{"empty name", collector.PeersConfig{Peers: []collector.PeerConfig{{Prefixes: pfx("10.0.0.0/8")}}}, `peer 1: invalid name ""`},
		{"twice", collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "a", Prefixes: pfx("10.0.0.0/8")}, {Name: "a", Prefixes: pfx("10.0.0.0/8")}}}, `peer "a" given twice`},
		{"no prefixes", collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "a"}}}, `peer "a": no cidrs`},
		{"host bits", collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "a", Prefixes: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 8)}}}}, `peer "a": bad cidr 10.0.0.1/8`},
		{"ports", collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "a", Prefixes: pfx("10.0.0.0/8"), Ports: []collector.PortRange{{6, 5}}}}}, `peer "a": bad port range 6-5`},
		{"node", collector.PeersConfig{Nodes: map[string]string{"1": "\x00"}}, `node "1": invalid display name "\x00"`},
		{"negative max sessions", collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "a", Prefixes: pfx("10.0.0.0/8"), MaxSessions: -1}}}, `peer "a": max sessions -1: must not be negative`},
		{"down after above the bound", collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "a", Prefixes: pfx("10.0.0.0/8"), KeepaliveDownAfter: 101}}}, `peer "a": keepalive thresholds down after 101, up after 2: must be 1 to 100`},
		{"negative up after", collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "a", Prefixes: pfx("10.0.0.0/8"), KeepaliveUpAfter: -1}}}, `peer "a": keepalive thresholds down after 3, up after -1: must be 1 to 100`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := collector.NewPeers(tc.cfg)
			if err == nil || err.Error() != tc.err {
				t.Errorf("error %v, want %s", err, tc.err)
			}
		})
	}
}

func TestValidPeerName(t *testing.T) {
	for s, want := range map[string]bool{
		"carrier-a": true, "Carrier A": true, "sbc.fra-1": true, "a": true, "x@y:5060/udp+1": true,
		"": false, "other": false, " a": false, "a ": false, "-a": false, "a\"b": false, "ä": false,
		string(make([]byte, 65)): false,
	} {
		if got := collector.ValidPeerName(s); got != want {
			t.Errorf("ValidPeerName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestPeersMatchAllocs(t *testing.T) {
	p := benchPeers(20)
	src, dst := netip.MustParseAddrPort("[2001:db8::1]:5060"), netip.MustParseAddrPort("10.0.19.1:5060")
	if n := testing.AllocsPerRun(1000, func() { p.Match(src, dst) }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

// benchPeers returns n peers, each with an IPv4 /24 on port 5060 and an
// IPv6 /48.
func benchPeers(n int) *collector.Peers {
	cfg := collector.PeersConfig{}
	for i := range n {
		cfg.Peers = append(cfg.Peers, collector.PeerConfig{
			Name:     fmt.Sprintf("peer-%d", i),
			Prefixes: pfx(fmt.Sprintf("10.0.%d.0/24", i%256), fmt.Sprintf("2001:db8:%x::/48", i)),
			Ports:    []collector.PortRange{{5060, 5061}},
		})
	}
	p, err := collector.NewPeers(cfg)
	if err != nil {
		panic(err)
	}
	return p
}

// BenchmarkPeerMatch matches messages whose destination is the last peer
// of the table (the worst case of the linear scan: every prefix is tried
// for the source, then for the destination).
func BenchmarkPeerMatch(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		p := benchPeers(n)
		for _, fam := range []string{"ipv4", "ipv6"} {
			src := netip.MustParseAddrPort("192.0.2.1:5060")
			dst := netip.MustParseAddrPort(fmt.Sprintf("10.0.%d.7:5060", (n-1)%256))
			if fam == "ipv6" {
				src = netip.MustParseAddrPort("[2001:db9::1]:5060")
				dst = netip.MustParseAddrPort(fmt.Sprintf("[2001:db8:%x::7]:5060", n-1))
			}
			b.Run(fmt.Sprintf("peers=%d/%s", n, fam), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if i, _ := p.Match(src, dst); i != n-1 {
						b.Fatalf("matched %d", i)
					}
				}
			})
		}
	}
}

// TestPeersLimits: the session limits and keepalive thresholds of the
// peers, defaults filled in; the defaults for a peer not configured and for
// no peers at all.
func TestPeersLimits(t *testing.T) {
	p := mustPeers(t, collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "a", Prefixes: pfx("10.0.0.0/8"), MaxSessions: 30, KeepaliveDownAfter: 5},
		{Name: "b", Prefixes: pfx("192.0.2.0/24"), KeepaliveUpAfter: 1},
	}})
	if p.MaxSessions(0) != 30 || p.MaxSessions(1) != 0 {
		t.Errorf("max sessions %d, %d; want 30, 0", p.MaxSessions(0), p.MaxSessions(1))
	}
	for _, tc := range []struct {
		p        *collector.Peers
		name     string
		down, up int
	}{
		{p, "a", 5, 2},
		{p, "b", 3, 1},
		{p, "removed", 3, 2},
		{nil, "a", 3, 2},
	} {
		if down, up := tc.p.Keepalive(tc.name); down != tc.down || up != tc.up {
			t.Errorf("Keepalive(%q): %d, %d; want %d, %d", tc.name, down, up, tc.down, tc.up)
		}
	}
}

// TestSIPMaxSessions: sip_peer_max_sessions has a series per peer that
// declares a limit, labelled by peer alone, and follows a reload; none
// without peers.
func TestSIPMaxSessions(t *testing.T) {
	c, err := collector.NewSIPWithConfig(collector.SIPConfig{MaxNodes: 4, Peers: mustPeers(t, collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: pfx("10.0.0.0/8"), MaxSessions: 30},
		{Name: "pbx", Prefixes: pfx("192.0.2.0/24")},
	}})})
	if err != nil {
		t.Fatal(err)
	}
	const head = `# HELP sip_peer_max_sessions Concurrent sessions (channels) the peer's contract allows, as declared by max_sessions in --config.file (the file in force, reloads included); absent for a peer that declares none. Compare with sip_sessions_active summed over the peer's nodes and directions.
# TYPE sip_peer_max_sessions gauge
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(head+`sip_peer_max_sessions{peer="carrier-a"} 30
`), "sip_peer_max_sessions"); err != nil {
		t.Error(err)
	}
	if err := c.SetPeers(mustPeers(t, collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: pfx("10.0.0.0/8"), MaxSessions: 60},
		{Name: "pbx", Prefixes: pfx("192.0.2.0/24"), MaxSessions: 8},
	}})); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(head+`sip_peer_max_sessions{peer="carrier-a"} 60
sip_peer_max_sessions{peer="pbx"} 8
`), "sip_peer_max_sessions"); err != nil {
		t.Errorf("after the reload: %v", err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(collector.NewSIP(1), "sip_peer_max_sessions"); n != 0 {
		t.Errorf("without peers: %d series", n)
	}
}
