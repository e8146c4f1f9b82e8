package collector

import (
	"net/netip"
	"testing"
	"time"
)

// TestLegKey: a leg is its two hosts, either way round, whatever the
// ports; an IPv4 address and its IPv4-mapped form are one host.
func TestLegKey(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1")
	if LegKey(a, b) != LegKey(b, a) {
		t.Error("LegKey(a, b) != LegKey(b, a)")
	}
	if LegKey(a, b) == LegKey(a, c) || LegKey(a, b) == LegKey(b, c) || LegKey(a, a) == LegKey(a, b) {
		t.Error("two legs of other hosts have one key")
	}
	if LegKey(netip.MustParseAddr("::ffff:192.0.2.1"), b) != LegKey(a, b) {
		t.Error("an IPv4-mapped address is another host")
	}
	if n := testing.AllocsPerRun(100, func() { LegKey(a, c) }); n != 0 {
		t.Errorf("LegKey allocates %v times", n)
	}
}

// legCall is one INVITE transaction k of dialog d on leg under label set
// n: the INVITE at ms and its 200 10 ms later.
func legCall(tr *Tracker, n *Node, k, d uint64, leg uint32, ms int64) {
	for _, e := range []TxEvent{ev(n, k, ms, 0, MethodINVITE, 0), ev(n, k, ms+10, 200, MethodINVITE, 0)} {
		e.Dialog, e.Leg = d, leg
		tr.Observe(&e)
	}
}

// legBye is a BYE (transaction k) of dialog d on leg at ms.
func legBye(tr *Tracker, n *Node, k, d uint64, leg uint32, ms int64) {
	e := ev(n, k, ms, 0, MethodBYE, TxToTag)
	e.Dialog, e.Leg = d, leg
	tr.Observe(&e)
}

// TestTrackerLegs: a dialog answered on both sides of a proxy (the proxy
// keeps Call-ID and tags) is a session per leg, each under the label set
// of its own INVITE; a BYE ends the session of its leg (the same two
// hosts) and observes that leg's duration; a BYE on no answered leg (one
// that bypasses the proxy) ends every session of the dialog; a 481 to a
// request inside the dialog ends its leg's; a second 2xx on a leg adds no
// session; past maxLegs legs a dialog gets no more; each leg's session
// ends at the max age of its own 2xx.
func TestTrackerLegs(t *testing.T) {
	c := NewSIP(4)
	carrier, pbx := c.Node([]byte("carrier")), c.Node([]byte("pbx"))
	tr := newTestTracker(t, TrackerConfig{MaxTransactions: 100, InviteTimeout: time.Minute, SessionMaxAge: time.Hour})
	const legA, legB, legDirect = 1, 2, 3
	d, e := mix64(100), mix64(200)
	legCall(tr, pbx, 1, d, legB, 0)      // the proxy's INVITE to the PBX, answered at 10 ms
	legCall(tr, carrier, 2, d, legA, 1)  // the carrier's INVITE, answered at 11 ms
	legCall(tr, carrier, 3, d, legA, 20) // another INVITE transaction, same dialog and leg: no session
	legCall(tr, pbx, 4, e, legB, 100)
	legCall(tr, carrier, 5, e, legA, 101)
	check := func(when string, active [2]int64, byBye, noDialog [2]uint64) {
		t.Helper()
		for i, n := range []*Node{carrier, pbx} {
			tn := tr.nodes[tr.nodeIndex[n]]
			if tn.sessions.Load() != active[i] || tn.ended[endBye].Load() != byBye[i] || tn.ended[endNoDialog].Load() != noDialog[i] {
				t.Errorf("%s: %s: active %d, ended bye %d no_dialog %d; want %d, %d, %d", when, n.Label(),
					tn.sessions.Load(), tn.ended[endBye].Load(), tn.ended[endNoDialog].Load(), active[i], byBye[i], noDialog[i])
			}
		}
	}
	check("answered on both legs", [2]int64{2, 2}, [2]uint64{}, [2]uint64{})
	legBye(tr, carrier, 10, d, legA, 5011) // the carrier hangs up: 5 s on its leg
	check("BYE on the carrier's leg", [2]int64{1, 2}, [2]uint64{1, 0}, [2]uint64{})
	legBye(tr, carrier, 11, d, legB, 5013) // relayed to the PBX: 5.003 s on its leg
	check("BYE relayed to the PBX", [2]int64{1, 1}, [2]uint64{1, 1}, [2]uint64{})
	legBye(tr, carrier, 12, d, legB, 5014) // a BYE of an ended dialog: nothing
	check("BYE again", [2]int64{1, 1}, [2]uint64{1, 1}, [2]uint64{})
	legBye(tr, carrier, 13, e, legDirect, 6101) // straight from the carrier to the PBX
	check("BYE on no answered leg", [2]int64{0, 0}, [2]uint64{2, 2}, [2]uint64{})
	for _, c := range []struct {
		n     *Node
		count uint64
		sum   float64
	}{{carrier, 2, 5.000 + 5.990}, {pbx, 2, 5.003 + 5.991}} {
		if got := histogramCount(t, tr.durationVec, c.n.Label()); got != c.count {
			t.Errorf("%s: duration count %d, want %d", c.n.Label(), got, c.count)
		}
		if got := histogramSum(t, tr, "sip_session_duration_seconds", c.n.Label()); !near(got, c.sum) {
			t.Errorf("%s: duration sum %v, want %v", c.n.Label(), got, c.sum)
		}
	}

	// A 481 to a re-INVITE on the PBX's leg ends that leg's session.
	f := mix64(300)
	legCall(tr, pbx, 20, f, legB, 7000)
	legCall(tr, carrier, 21, f, legA, 7001)
	for _, m := range []TxEvent{ev(pbx, 22, 8000, 0, MethodINVITE, TxToTag), ev(pbx, 22, 8010, 481, MethodINVITE, TxToTag)} {
		m.Dialog, m.Leg = f, legB
		tr.Observe(&m)
	}
	check("481 on the PBX's leg", [2]int64{1, 0}, [2]uint64{2, 2}, [2]uint64{0, 1})

	// Five legs of one dialog: four sessions.
	g := mix64(400)
	for leg := uint32(1); leg <= 5; leg++ {
		legCall(tr, carrier, 30+uint64(leg), g, 10+leg, 9000)
	}
	check("five legs", [2]int64{5, 0}, [2]uint64{2, 2}, [2]uint64{0, 1})
	if tr.dialogs.len() != 5 {
		t.Errorf("dialog table holds %d sessions, want 5", tr.dialogs.len())
	}

	// The max age counts from each leg's own 2xx.
	tr.Advance(at(7011 + 3_600_000 - 1))
	check("1 ms before the max age of f's carrier leg", [2]int64{5, 0}, [2]uint64{2, 2}, [2]uint64{0, 1})
	tr.Advance(at(7011 + 3_600_000))
	check("max age of f's carrier leg", [2]int64{4, 0}, [2]uint64{2, 2}, [2]uint64{0, 1})
}
