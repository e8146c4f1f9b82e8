package sip_test

import (
	"fmt"

	"github.com/sip-exporter/sip_exporter/capture/sip"
)

func ExampleParse() {
	payload := []byte("SIP/2.0 486 Busy Here\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;received=192.0.2.1\r\n" +
		"To: Bob <sip:bob@example.com>;tag=314159\r\n" +
		"From: Alice <sip:alice@example.com>;tag=9fxced76sl\r\n" +
		"i: 3848276298220188511@example.com\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Content-Length: 0\r\n\r\n")

	var m sip.Message
	if err := sip.Parse(payload, &m); err == sip.ErrNotSIP {
		return // not SIP: skip the payload
	} else if err != nil {
		fmt.Println("parse error:", err.(*sip.Error).Reason)
	}
	fmt.Println(m.StatusCode, string(m.Reason), string(m.CSeqMethod), m.CSeq)
	fmt.Println(string(m.CallID), string(m.ViaBranch), string(m.ToTag))
	// Output:
	// 486 Busy Here INVITE 1
	// 3848276298220188511@example.com z9hG4bK74bf9 314159
}

func ExampleFrameLength() {
	stream := []byte("SIP/2.0 200 OK\r\nl: 3\r\n\r\nabcSIP/2.0 180 Ringing\r\n")
	for {
		n, err := sip.FrameLength(stream)
		if err == sip.ErrIncomplete {
			fmt.Printf("wait for more after %q\n", stream)
			return
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("frame %q\n", stream[:n])
		stream = stream[n:]
	}
	// Output:
	// frame "SIP/2.0 200 OK\r\nl: 3\r\n\r\nabc"
	// wait for more after "SIP/2.0 180 Ringing\r\n"
}

func ExampleIsStart() {
	fmt.Println(sip.IsStart([]byte("OPTIONS sip:carol@example.com SIP/2.0\r\n")))
	fmt.Println(sip.IsStart([]byte("GET / HTTP/1.1\r\n")))
	// Output:
	// true
	// false
}

// A registrar's 2xx to REGISTER lists every binding of the address of
// record with its expiry (RFC 3261 §10.3): the AOR is registered until the
// largest of them.
func ExampleParse_register() {
	payload := []byte("SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7\r\n" +
		"To: Bob <sip:bob@biloxi.example.com>;tag=2493k59kd\r\n" +
		"From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n" +
		"Call-ID: 843817637684230@998sdasdh09\r\n" +
		"CSeq: 1826 REGISTER\r\n" +
		"Contact: <sip:bob@192.0.2.4>;expires=7200, <sip:bob@192.0.2.5>;expires=3600\r\n" +
		"Expires: 7200\r\n" +
		"Content-Length: 0\r\n\r\n")

	var m sip.Message
	if err := sip.Parse(payload, &m); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(m.ToURI), string(m.ContactExpires), string(m.Expires), m.ContactStar)
	// Output:
	// sip:bob@biloxi.example.com 7200 7200 false
}

// An INVITE signed with STIR/SHAKEN carries its PASSporT in the Identity
// header (RFC 8224 §4); a trusted network asserts the caller in
// P-Asserted-Identity (RFC 3325 §9.1). Parse keeps both values as sent.
func ExampleParse_identity() {
	payload := []byte("INVITE sip:+12155550123@biloxi.example.com;user=phone SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n" +
		"To: <sip:+12155550123@biloxi.example.com;user=phone>\r\n" +
		"From: <sip:+12155550199@atlanta.example.com;user=phone>;tag=1928301774\r\n" +
		"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n" +
		"CSeq: 314159 INVITE\r\n" +
		"P-Asserted-Identity: <tel:+12155550199>\r\n" +
		"Identity: eyJhbGciOiJFUzI1NiJ9.eyJhdHRlc3QiOiJBIn0.c2ln;info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken\r\n" +
		"Content-Length: 0\r\n\r\n")

	var m sip.Message
	if err := sip.Parse(payload, &m); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(m.PAssertedIdentity))
	fmt.Println(string(m.Identity))
	// Output:
	// <tel:+12155550199>
	// eyJhbGciOiJFUzI1NiJ9.eyJhdHRlc3QiOiJBIn0.c2ln;info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken
}
