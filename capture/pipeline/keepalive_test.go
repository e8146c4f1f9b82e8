package pipeline

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/collector"
)

// TestKeepaliveShard: with peers and 8 shards, every OPTIONS request and
// response of one configured peer, whatever its Call-ID and direction,
// goes to one shard (the tracker's reachability state machine sees them
// all in order), a response to the shard of its request; the OPTIONS of
// no configured peer, and any OPTIONS without peers, are spread by
// Call-ID as before, as are other methods.
func TestKeepaliveShard(t *testing.T) {
	peers, err := collector.NewPeers(collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		{Name: "carrier-b", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(peers *collector.Peers) *Pipeline {
		cfg := DefaultConfig()
		cfg.Shards, cfg.Peers = 8, peers
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ours := netip.MustParseAddrPort("203.0.113.1:5060")
	// shards returns the shards of the OPTIONS of 64 Call-IDs between
	// ours and far, requests and their responses, both ways, and of
	// INVITEs for comparison.
	shards := func(p *Pipeline, far netip.AddrPort, method string) map[int]bool {
		seen := map[int]bool{}
		for i := range 64 {
			id := fmt.Appendf(nil, "ka-%d@203.0.113.1", i)
			for _, c := range []struct {
				src, dst netip.AddrPort
				resp     bool
			}{{ours, far, false}, {far, ours, true}, {far, ours, false}, {ours, far, true}} {
				o := decode.Origin{Src: c.src, Dst: c.dst}
				m := sip.Message{Response: c.resp, CallID: id, CSeq: 1, CSeqMethod: []byte(method), ViaBranch: id}
				if c.resp {
					m.StatusCode = 200
				} else {
					m.Method = []byte(method)
				}
				var msg message[withCallID]
				_, call := classify(p, &o, &m, &msg, p.SourceNode(""))
				seen[shardOf(p, &o, &m, &msg, call)] = true
			}
		}
		return seen
	}
	withPeers, without := mk(peers), mk(nil)
	a, b := netip.MustParseAddrPort("192.0.2.7:5060"), netip.MustParseAddrPort("198.51.100.9:5080")
	stranger := netip.MustParseAddrPort("10.9.9.9:5060")
	for _, tc := range []struct {
		name    string
		p       *Pipeline
		far     netip.AddrPort
		method  string
		oneOnly bool
	}{
		{"OPTIONS of carrier-a", withPeers, a, "OPTIONS", true},
		{"OPTIONS of carrier-b", withPeers, b, "OPTIONS", true},
		{"OPTIONS of no configured peer", withPeers, stranger, "OPTIONS", false},
		{"INVITE of carrier-a", withPeers, a, "INVITE", false},
		{"OPTIONS without peers", without, a, "OPTIONS", false},
	} {
		got := shards(tc.p, tc.far, tc.method)
		if tc.oneOnly && len(got) != 1 {
			t.Errorf("%s: %d shards, want 1", tc.name, len(got))
		}
		// 64 Call-IDs over 8 shards: all in one by chance is 8^-63.
		if !tc.oneOnly && len(got) < 2 {
			t.Errorf("%s: %d shards, want them spread by Call-ID", tc.name, len(got))
		}
	}
}

// TestKeepaliveShardAllocs: picking the shard of an OPTIONS of a
// configured peer, a request and a response, allocates nothing.
func TestKeepaliveShardAllocs(t *testing.T) {
	peers, err := collector.NewPeers(collector.PeersConfig{Peers: []collector.PeerConfig{
		{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Shards, cfg.Peers = 4, peers
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sn := p.SourceNode("")
	req := sip.Message{Method: []byte("OPTIONS"), CallID: []byte("ka@x"), CSeq: 1, CSeqMethod: []byte("OPTIONS"), ViaBranch: []byte("z9hG4bK1")}
	resp := req
	resp.Method, resp.Response, resp.StatusCode = nil, true, 200
	out := decode.Origin{Src: netip.MustParseAddrPort("203.0.113.1:5060"), Dst: netip.MustParseAddrPort("192.0.2.7:5060")}
	in := decode.Origin{Src: out.Dst, Dst: out.Src}
	var msg message[withCallID]
	step := func() {
		_, call := classify(p, &out, &req, &msg, sn)
		s1 := shardOf(p, &out, &req, &msg, call)
		_, call = classify(p, &in, &resp, &msg, sn)
		if s2 := shardOf(p, &in, &resp, &msg, call); s1 != s2 {
			t.Fatalf("request in shard %d, its response in %d", s1, s2)
		}
	}
	step()
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("%v allocations per request and response, want 0", a)
	}
}
