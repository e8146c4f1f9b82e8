package collector

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// TestShardsSum: the same calls counted and tracked by one shard and, each
// call's messages all in one shard (as the pipeline shards by Call-ID), by
// three: the two expositions are identical, histograms included.
func TestShardsSum(t *testing.T) {
	cfg := TrackerConfig{MaxTransactions: 1 << 12, InviteTimeout: time.Minute}
	expose := func(shards int) string {
		sip, err := NewSIPWithConfig(SIPConfig{MaxNodes: 4, Shards: shards})
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.SIP = sip
		ts, err := NewTrackers(c, shards)
		if err != nil {
			t.Fatal(err)
		}
		nodes := []*Node{sip.Node([]byte("a")), sip.Node([]byte("b"))}
		for call := range uint64(300) {
			k := int(call % uint64(shards))
			n := nodes[call%2]
			tr, counts := ts.Shard(k), n.Shard(k)
			at := int64(call) * 10
			code := []uint16{200, 486, 503}[call%3]
			for _, e := range []TxEvent{
				ev(n, call, at, 0, MethodINVITE, 0),
				ev(n, call, at+5, 100, MethodINVITE, 0),
				ev(n, call, at+5+int64(call%7), code, MethodINVITE, TxToTag),
				ev(n, call, at+9, code, MethodINVITE, TxToTag), // a retransmission
			} {
				if e.Code == 0 {
					counts.ObserveRequestMethod(e.Method)
				} else {
					counts.ObserveResponseMethod(int(e.Code), e.Method)
				}
				tr.Observe(&e)
			}
		}
		ts.End()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(sip, ts)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	one, three := expose(1), expose(3)
	if !bytes.Contains([]byte(one), []byte(`sip_session_attempts_total{node="a"} 150`)) {
		t.Fatalf("one shard: no 150 attempts of node a:\n%s", one)
	}
	if one != three {
		t.Errorf("three shards differ from one:\n--- one\n%s\n--- three\n%s", one, three)
	}
}
