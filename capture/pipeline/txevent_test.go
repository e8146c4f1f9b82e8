package pipeline

import (
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
	if !txEvent(&decode.Origin{Time: 1}, &m, n, &ev) || ev.Expires != 3600 || ev.AOR() != collector.AORKey([]byte("sip:bob@192.0.2.2")) || ev.Method != collector.MethodREGISTER {
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
		if !txEvent(&decode.Origin{Time: 1}, &m, collector.NewSIP(1).Node(nil), &ev) {
			t.Fatalf("To %s: no event", to)
		}
		if same := ev.AOR() == want; same != tc.same {
			t.Errorf("To %s: AOR %x, sip:bob@192.0.2.2's %x", to, ev.AOR(), want)
		}
	}
}
