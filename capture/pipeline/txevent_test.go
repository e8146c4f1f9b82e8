package pipeline

import (
	"net/netip"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/collector"
)

// TestTxEventRegister: the event of a 2xx to REGISTER carries the largest
// expires of its Contact values (RFC 3261 §10.3 step 8) and the address of
// record of its To URI (§10.2).
func TestTxEventRegister(t *testing.T) {
	raw := "SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKr1\r\n" +
		"From: <sip:bob@192.0.2.2>;tag=a1\r\n" +
		"To: <sip:bob@192.0.2.2>;tag=b1\r\n" +
		"Call-ID: c1@example.com\r\n" +
		"CSeq: 1 REGISTER\r\n" +
		"Contact: <sip:bob@192.0.2.1>;expires=3600, <sip:bob@198.51.100.7>;q=0.5;expires=60\r\n" +
		"Content-Length: 0\r\n\r\n"
	var m sip.Message
	if err := sip.Parse([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	n := collector.NewSIP(1).Node(nil)
	var ev collector.TxEvent
	if !txEvent(&decode.Origin{Time: 1}, &m, collector.CallIDHash(m.CallID), n, &ev) || ev.Expires != 3600 || ev.AOR() != collector.AORKey([]byte("sip:bob@192.0.2.2")) || ev.Method != collector.MethodREGISTER {
		t.Errorf("the 2xx's event: expires %d, AOR %x, method %v", ev.Expires, ev.AOR(), ev.Method)
	}
}

// TestTxEventAOR: the event of a REGISTER carries the address of record
// of its To URI in its canonical form (RFC 3261 §10.3 step 5): inside
// the angle brackets, without its URI parameters and with its escapes
// unescaped, the host in any case; the To tag is no part of it.
func TestTxEventAOR(t *testing.T) {
	want := collector.AORKey([]byte("sip:bob@192.0.2.2"))
	for _, tc := range []struct {
		to   string
		same bool
	}{
		{"<sip:bob@192.0.2.2>", true},
		{"\"Bob\" <sip:%62ob@192.0.2.2;user=phone>;tag=b1", true},
		{"sip:bob@192.0.2.2;tag=x", true},
		{"<SIP:bob@192.0.2.2:5060>", false}, // a port: another AOR (§19.1.4)
		{"<sip:Bob@192.0.2.2>", false},      // the user's case counts
	} {
		to := tc.to
		raw := "REGISTER sip:192.0.2.2 SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKr1\r\n" +
			"From: <sip:bob@192.0.2.2>;tag=a1\r\n" +
			"To: " + to + "\r\n" +
			"Call-ID: c1@example.com\r\n" +
			"CSeq: 1 REGISTER\r\n" +
			"Content-Length: 0\r\n\r\n"
		var m sip.Message
		if err := sip.Parse([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		var ev collector.TxEvent
		if !txEvent(&decode.Origin{Time: 1}, &m, collector.CallIDHash(m.CallID), collector.NewSIP(1).Node(nil), &ev) {
			t.Fatalf("To %s: no event", to)
		}
		if same := ev.AOR() == want; same != tc.same {
			t.Errorf("To %s: AOR %x, sip:bob@192.0.2.2's %x", to, ev.AOR(), want)
		}
	}
}

// TestTxEventLegRetry: a request and its response are on one leg (their
// two hosts, either way round, not the ports), another hop is another leg;
// an INVITE re-sent with credentials (CSeq + 1, a new branch) has the
// Retry of the challenged one, another call (From tag) another; a
// REGISTER's Retry is its Call-ID's alone (some UAs change the From tag
// when they re-send it) and its Dialog its address of record.
func TestTxEventLegRetry(t *testing.T) {
	msg := func(start, from, cseq string) string {
		return start + "\r\n" +
			"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK" + cseq + "\r\n" +
			"From: <sip:alice@192.0.2.1>;tag=" + from + "\r\n" +
			"To: <sip:bob@192.0.2.2>\r\n" +
			"Call-ID: c1@example.com\r\n" +
			"CSeq: " + cseq + "\r\n" +
			"Content-Length: 0\r\n\r\n"
	}
	ua, proxy, uas := netip.MustParseAddrPort("192.0.2.1:5060"), netip.MustParseAddrPort("192.0.2.10:5060"), netip.MustParseAddrPort("192.0.2.2:5060")
	n := collector.NewSIP(1).Node(nil)
	event := func(raw string, src, dst netip.AddrPort) collector.TxEvent {
		t.Helper()
		var m sip.Message
		if err := sip.Parse([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		var ev collector.TxEvent
		if !txEvent(&decode.Origin{Time: 1, Src: src, Dst: dst}, &m, collector.CallIDHash(m.CallID), n, &ev) {
			t.Fatalf("no event for %q", raw)
		}
		return ev
	}
	invite := event(msg("INVITE sip:bob@192.0.2.2 SIP/2.0", "a1", "1 INVITE"), ua, proxy)
	challenge := event(msg("SIP/2.0 407 Proxy Authentication Required", "a1", "1 INVITE"), netip.MustParseAddrPort("192.0.2.10:5080"), netip.MustParseAddrPort("192.0.2.1:35000"))
	resent := event(msg("INVITE sip:bob@192.0.2.2 SIP/2.0", "a1", "2 INVITE"), ua, proxy)
	relayed := event(msg("INVITE sip:bob@192.0.2.2 SIP/2.0", "a1", "2 INVITE"), proxy, uas)
	other := event(msg("INVITE sip:bob@192.0.2.2 SIP/2.0", "a2", "1 INVITE"), ua, proxy)
	if invite.Leg != challenge.Leg || invite.Leg != resent.Leg {
		t.Errorf("legs of the INVITE %x, its 407 %x, the re-send %x: want one", invite.Leg, challenge.Leg, resent.Leg)
	}
	if relayed.Leg == invite.Leg {
		t.Error("the proxy's INVITE to the UAS is on the UA's leg")
	}
	if invite.Retry != challenge.Retry || invite.Retry != resent.Retry || invite.Retry != relayed.Retry {
		t.Errorf("Retry of the INVITE %x, its 407 %x, the re-send %x, relayed %x: want one", invite.Retry, challenge.Retry, resent.Retry, relayed.Retry)
	}
	if other.Retry == invite.Retry {
		t.Error("another From tag has the INVITE's Retry")
	}
	reg1 := event(msg("REGISTER sip:192.0.2.2 SIP/2.0", "r1", "1 REGISTER"), ua, proxy)
	reg2 := event(msg("REGISTER sip:192.0.2.2 SIP/2.0", "r2", "2 REGISTER"), ua, proxy)
	if reg1.Retry != reg2.Retry || reg1.Dialog != collector.AORKey([]byte("sip:bob@192.0.2.2")) || reg1.AOR() != reg1.Dialog {
		t.Errorf("REGISTERs: Retry %x and %x, want one; Dialog %x, want the AOR's", reg1.Retry, reg2.Retry, reg1.Dialog)
	}
	if invite.AOR() != 0 {
		t.Errorf("an INVITE's AOR %x, want 0", invite.AOR())
	}
}
