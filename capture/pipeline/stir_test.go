package pipeline

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// stirIdentity returns an Identity header value whose PASSporT payload is
// the SHAKEN example of RFC 8588 §6 with attest claim level, or the JSON
// payload given as level when it is longer than one character.
func stirIdentity(level string) string {
	payload := level
	if len(level) == 1 {
		payload = `{"attest":"` + level + `","dest":{"tn":["12155550131"]},"iat":1443208345,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"}`
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","typ":"passport","ppt":"shaken","x5u":"https://cert.example.org/passport.cer"}`)) + "." +
		enc([]byte(payload)) + ".MEUCIQCEFJXkDV1h9tGSwVfFmvM7HzEVVaVTpOSqwC2fTMThZAIgSBLaoSpV-vkv9TWSUEbKw1fOGMYrT1ArLsjLpHuDHgQ" +
		";info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken"
}

// stirInvite returns an INVITE with Call-ID callID and the extra header
// lines extra (each with its CRLF), to tag when toTag is not empty.
func stirInvite(callID, toTag, extra string) []byte {
	to := "<sip:+12155550131@biloxi.example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return []byte("INVITE sip:+12155550131@biloxi.example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK" + callID + "\r\n" +
		"From: <sip:+12155550121@atlanta.example.com;user=phone>;tag=1928301774\r\n" +
		"To: " + to + "\r\n" +
		"Call-ID: " + callID + "\r\nCSeq: 1 INVITE\r\n" + extra + "Content-Length: 0\r\n\r\n")
}

// TestObserveSTIR runs INVITEs through the whole per-message path and
// compares the STIR/SHAKEN counts with what each INVITE carries, read off
// the list below.
func TestObserveSTIR(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DedupWindow = 0
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sn := p.SourceNode("sbc1")
	msgs := [][]byte{
		stirInvite("a1", "", "Identity: "+stirIdentity("A")+"\r\nP-Asserted-Identity: <sip:+12155550121;verstat=TN-Validation-Passed@atlanta.example.com;user=phone>\r\n"),
		stirInvite("a1", "", "Identity: "+stirIdentity("A")+"\r\nP-Asserted-Identity: <sip:+12155550121;verstat=TN-Validation-Passed@atlanta.example.com;user=phone>\r\n"), // retransmitted
		stirInvite("a2", "", "y: "+stirIdentity("A")+"\r\n"), // compact form of the header name
		stirInvite("b1", "", "Identity: "+stirIdentity("B")+"\r\nP-Asserted-Identity: <tel:+12155550121;verstat=TN-Validation-Failed>\r\n"),
		stirInvite("c1", "", "Identity: d.d.d;ppt=div\r\nIdentity: "+stirIdentity("C")+"\r\nP-Asserted-Identity: <tel:+12155550121;verstat=No-TN-Validation>\r\n"),
		stirInvite("x1", "", "Identity: "+stirIdentity(`{"dest":{"tn":["12155550131"]}}`)+"\r\n"),
		stirInvite("x2", "", "Identity: not-a-passport\r\nP-Asserted-Identity: <tel:+12155550121;verstat=Vendor-Special>\r\n"),
		stirInvite("n1", "", ""),
		stirInvite("n2", "", "P-Asserted-Identity: <tel:+12155550121>\r\n"),
		stirInvite("re", "tt", "Identity: "+stirIdentity("A")+"\r\n"), // inside a dialog: not counted
	}
	o := decode.Origin{Src: netip.MustParseAddrPort("203.0.113.1:5060"), Dst: netip.MustParseAddrPort("198.51.100.7:5060")}
	for i, b := range msgs {
		var m sip.Message
		if err := sip.Parse(b, &m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		o.Time = int64(i+1) * 1e6
		p.Observe(sn, &o, &m)
	}
	want := `
# HELP sip_stir_attestations_total Initial INVITE transactions (no To tag; each once, retransmissions not counted, an INVITE re-sent with credentials after a 401 or 407 counted again) by the attest claim of the SHAKEN PASSporT in their Identity header (RFC 8224, RFC 8588): A, B, C; none without an Identity header; invalid when its payload cannot be read (not base64url, not a JSON object, no or another attest, over 4096 characters). Signatures are never verified.
# TYPE sip_stir_attestations_total counter
sip_stir_attestations_total{attest="A",node="sbc1"} 2
sip_stir_attestations_total{attest="B",node="sbc1"} 1
sip_stir_attestations_total{attest="C",node="sbc1"} 1
sip_stir_attestations_total{attest="invalid",node="sbc1"} 2
sip_stir_attestations_total{attest="none",node="sbc1"} 2
# HELP sip_stir_verifications_total Initial INVITE transactions, counted as sip_stir_attestations_total, by the verstat parameter of their P-Asserted-Identity, else From, URI (ATIS-1000074): TN-Validation-Passed, TN-Validation-Failed, No-TN-Validation; none without one; other for any other value.
# TYPE sip_stir_verifications_total counter
sip_stir_verifications_total{node="sbc1",verstat="No-TN-Validation"} 1
sip_stir_verifications_total{node="sbc1",verstat="TN-Validation-Failed"} 1
sip_stir_verifications_total{node="sbc1",verstat="TN-Validation-Passed"} 1
sip_stir_verifications_total{node="sbc1",verstat="none"} 4
sip_stir_verifications_total{node="sbc1",verstat="other"} 1
`
	if err := testutil.CollectAndCompare(p.Tracker(), strings.NewReader(want), "sip_stir_attestations_total", "sip_stir_verifications_total"); err != nil {
		t.Error(err)
	}
}

// TestObserveSTIRAllocs: classifying an initial INVITE, its PASSporT
// decoded and its verstat read, and counting it allocate nothing.
func TestObserveSTIRAllocs(t *testing.T) {
	for _, c := range observeCases(t) {
		sn := c.p.SourceNode("")
		var m sip.Message
		b := stirInvite("alloc", "", "Identity: "+stirIdentity("B")+"\r\nP-Asserted-Identity: <tel:+12155550121;verstat=TN-Validation-Passed>\r\n")
		if err := sip.Parse(b, &m); err != nil {
			t.Fatal(err)
		}
		c.p.Observe(sn, &benchOrigin, &m)
		if n := testing.AllocsPerRun(1000, func() { c.p.Observe(sn, &benchOrigin, &m) }); n != 0 {
			t.Errorf("%s: observe of a signed INVITE allocates %v times", c.name, n)
		}
	}
}

// BenchmarkStirOf is the STIR/SHAKEN part of classifying an initial
// INVITE: the PASSporT of RFC 8588 §6 decoded, a verstat read.
func BenchmarkStirOf(b *testing.B) {
	var m sip.Message
	msg := stirInvite("bench", "", "Identity: "+stirIdentity("A")+"\r\nP-Asserted-Identity: <sip:+12155550121;verstat=TN-Validation-Passed@atlanta.example.com;user=phone>\r\n")
	if err := sip.Parse(msg, &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s := stirOf(&m); s == 0 {
			b.Fatal(fmt.Sprint("no attestation: ", s))
		}
	}
}
