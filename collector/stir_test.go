package collector

import (
	"net/netip"
	"strings"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSTIRPacking(t *testing.T) {
	for a := range numAttestations {
		for v := range numVerstats {
			s := NewSTIR(a, v)
			if s.Attestation() != a || s.Verstat() != v {
				t.Errorf("NewSTIR(%v, %v) gives %v, %v", a, v, s.Attestation(), s.Verstat())
			}
		}
	}
	if s := STIR(0); s.Attestation() != AttestationNone || s.Verstat() != VerstatNone {
		t.Errorf("zero STIR is %v, %v; want none, none", s.Attestation(), s.Verstat())
	}
	// The STIR byte took the byte Q850Cause gave up: it fills the last
	// byte before Retry, and TxEvent grows by nothing.
	var ev TxEvent
	if s, r := unsafe.Offsetof(ev.STIR), unsafe.Offsetof(ev.Retry); s+1 != r || r%4 != 0 {
		t.Errorf("STIR at %d, Retry at %d: STIR should fill the byte before Retry", s, r)
	}
}

func TestVerstatOf(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want Verstat
	}{
		{nil, VerstatNone},
		{[]byte("TN-Validation-Passed"), VerstatPassed},
		{[]byte("tn-validation-passed"), VerstatPassed},
		{[]byte("TN-Validation-Failed"), VerstatFailed},
		{[]byte("No-TN-Validation"), VerstatNoValidation},
		{[]byte(""), VerstatOther},
		{[]byte("TN-Validation-Passed-A"), VerstatOther},
		{[]byte("Vendor-X"), VerstatOther},
	} {
		if got := VerstatOf(tc.in); got != tc.want {
			t.Errorf("VerstatOf(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { VerstatOf([]byte("No-TN-Validation")) }); n != 0 {
		t.Errorf("VerstatOf: %v allocations, want 0", n)
	}
}

// TestTrackerSTIR counts initial INVITE transactions by attestation and
// verstat under their label set (node, peer, direction): each once, a
// retransmission not again, an INVITE inside a dialog (To tag) and other
// methods not at all, an INVITE re-sent with credentials after a 407
// again. The expected counts are read off the events below.
func TestTrackerSTIR(t *testing.T) {
	peers, err := NewPeers(PeersConfig{Peers: []PeerConfig{{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	sip, err := NewSIPWithConfig(SIPConfig{MaxNodes: 4, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	in := sip.Lookup([]byte("sbc1"), ap("192.0.2.1:5060"), ap("203.0.113.1:5060"))  // from carrier-a
	out := sip.Lookup([]byte("sbc1"), ap("203.0.113.1:5060"), ap("192.0.2.1:5060")) // to carrier-a
	cfg := DefaultTrackerConfig()
	cfg.SIP = sip
	tr := newTestTracker(t, cfg)
	invite := func(n *Node, i uint64, ms int64, a Attestation, v Verstat) TxEvent {
		e := ev(n, i, ms, 0, MethodINVITE, 0)
		e.STIR = NewSTIR(a, v)
		return e
	}
	challenged := invite(in, 10, 700, AttestationNone, VerstatNone)
	resent := invite(in, 11, 800, AttestationA, VerstatPassed)
	resent.Retry, resent.Leg = challenged.Retry, challenged.Leg
	reInvite := invite(in, 12, 900, AttestationB, VerstatFailed)
	reInvite.Flags |= TxToTag
	options := ev(in, 13, 950, 0, MethodOPTIONS, 0)
	options.STIR = NewSTIR(AttestationC, VerstatOther)
	for _, e := range []TxEvent{
		invite(in, 1, 0, AttestationA, VerstatPassed),
		invite(in, 1, 500, AttestationA, VerstatPassed), // retransmitted
		invite(in, 2, 100, AttestationA, VerstatNone),
		invite(in, 3, 200, AttestationB, VerstatFailed),
		invite(in, 4, 300, AttestationC, VerstatNoValidation),
		invite(in, 5, 400, AttestationInvalid, VerstatOther),
		invite(out, 6, 450, AttestationNone, VerstatNone),
		challenged,
		ev(in, 10, 750, 407, MethodINVITE, TxToTag),
		resent,
		reInvite,
		options,
	} {
		tr.Observe(&e)
	}
	want := `
# HELP sip_stir_attestations_total Initial INVITE transactions (no To tag; each once, retransmissions not counted, an INVITE re-sent with credentials after a 401 or 407 counted again) by the attest claim of the SHAKEN PASSporT in their Identity header (RFC 8224, RFC 8588): A, B, C; none without an Identity header; invalid when its payload cannot be read (not base64url, not a JSON object, no or another attest, over 4096 characters). Signatures are never verified.
# TYPE sip_stir_attestations_total counter
sip_stir_attestations_total{attest="A",direction="inbound",node="sbc1",peer="carrier-a"} 3
sip_stir_attestations_total{attest="A",direction="outbound",node="sbc1",peer="carrier-a"} 0
sip_stir_attestations_total{attest="B",direction="inbound",node="sbc1",peer="carrier-a"} 1
sip_stir_attestations_total{attest="B",direction="outbound",node="sbc1",peer="carrier-a"} 0
sip_stir_attestations_total{attest="C",direction="inbound",node="sbc1",peer="carrier-a"} 1
sip_stir_attestations_total{attest="C",direction="outbound",node="sbc1",peer="carrier-a"} 0
sip_stir_attestations_total{attest="invalid",direction="inbound",node="sbc1",peer="carrier-a"} 1
sip_stir_attestations_total{attest="invalid",direction="outbound",node="sbc1",peer="carrier-a"} 0
sip_stir_attestations_total{attest="none",direction="inbound",node="sbc1",peer="carrier-a"} 1
sip_stir_attestations_total{attest="none",direction="outbound",node="sbc1",peer="carrier-a"} 1
# HELP sip_stir_verifications_total Initial INVITE transactions, counted as sip_stir_attestations_total, by the verstat parameter of their P-Asserted-Identity, else From, URI (ATIS-1000074): TN-Validation-Passed, TN-Validation-Failed, No-TN-Validation; none without one; other for any other value.
# TYPE sip_stir_verifications_total counter
sip_stir_verifications_total{direction="inbound",node="sbc1",peer="carrier-a",verstat="No-TN-Validation"} 1
sip_stir_verifications_total{direction="inbound",node="sbc1",peer="carrier-a",verstat="TN-Validation-Failed"} 1
sip_stir_verifications_total{direction="inbound",node="sbc1",peer="carrier-a",verstat="TN-Validation-Passed"} 2
sip_stir_verifications_total{direction="inbound",node="sbc1",peer="carrier-a",verstat="none"} 2
sip_stir_verifications_total{direction="inbound",node="sbc1",peer="carrier-a",verstat="other"} 1
sip_stir_verifications_total{direction="outbound",node="sbc1",peer="carrier-a",verstat="No-TN-Validation"} 0
sip_stir_verifications_total{direction="outbound",node="sbc1",peer="carrier-a",verstat="TN-Validation-Failed"} 0
sip_stir_verifications_total{direction="outbound",node="sbc1",peer="carrier-a",verstat="TN-Validation-Passed"} 0
sip_stir_verifications_total{direction="outbound",node="sbc1",peer="carrier-a",verstat="none"} 1
sip_stir_verifications_total{direction="outbound",node="sbc1",peer="carrier-a",verstat="other"} 0
`
	if err := testutil.CollectAndCompare(tr, strings.NewReader(want), "sip_stir_attestations_total", "sip_stir_verifications_total"); err != nil {
		t.Error(err)
	}
	// The challenged INVITE and its re-send are one session attempt, two
	// INVITEs: the attempts of the inbound label set are 6, its
	// attestations 7.
	if err := testutil.CollectAndCompare(tr, strings.NewReader(`
# HELP sip_session_attempts_total Session attempts: initial INVITE transactions (no To tag), each counted once; one challenged with 401 or 407 and the INVITE re-sent with credentials (same Call-ID and From tag, on the same leg, within 32 s) are one attempt. The attempts of SER, SEER, ISA and SCR (RFC 6076 §4.6-4.9).
# TYPE sip_session_attempts_total counter
sip_session_attempts_total{direction="inbound",node="sbc1",peer="carrier-a"} 6
sip_session_attempts_total{direction="outbound",node="sbc1",peer="carrier-a"} 1
`), "sip_session_attempts_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(tr, "sip_stir_attestations_total", "sip_stir_verifications_total"); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// TestTrackerSTIRAllocs: counting a new initial INVITE transaction with
// its STIR view allocates nothing once its label set is known and the
// tables are at their bound.
func TestTrackerSTIRAllocs(t *testing.T) {
	sip := NewSIP(4)
	n := sip.Node([]byte("sbc1"))
	cfg := DefaultTrackerConfig()
	cfg.SIP, cfg.MaxTransactions = sip, 1024 // full after the first 1,024: no growth
	tr := newTestTracker(t, cfg)
	var i uint64
	step := func() {
		e := ev(n, i, int64(i), 0, MethodINVITE, 0)
		e.STIR = NewSTIR(Attestation(i%uint64(numAttestations)), Verstat(i%uint64(numVerstats)))
		tr.Observe(&e)
		i++
	}
	for range 1 << 12 { // the tables grow to their bound first
		step()
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("Observe of an initial INVITE: %v allocations, want 0", a)
	}
}
