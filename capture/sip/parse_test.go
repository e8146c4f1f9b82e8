package sip_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/sip"
)

func bs(s string) []byte { return []byte(s) }

// render prints m for failure messages, telling nil from empty slices.
func render(m *sip.Message) string {
	q := func(b []byte) string {
		if b == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("{resp:%v code:%d reason:%s method:%s cseq:%d %s callid:%s branch:%s totag:%s fromtag:%s q850:%s sipcause:%s touri:%s expires:%s contactexpires:%s star:%v cl:%d hl:%d identity:%s pai:%s from:%s}",
		m.Response, m.StatusCode, q(m.Reason), q(m.Method), m.CSeq, q(m.CSeqMethod), q(m.CallID),
		q(m.ViaBranch), q(m.ToTag), q(m.FromTag), q(m.Q850Cause), q(m.SIPCause), q(m.ToURI), q(m.Expires), q(m.ContactExpires), m.ContactStar, m.ContentLength, m.HeaderLength, q(m.Identity), q(m.PAssertedIdentity), q(m.From))
}

// headerEnd is the expected HeaderLength: just past the first empty line, or len(s).
func headerEnd(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] != '\n' {
			continue
		}
		switch {
		case strings.HasPrefix(s[i+1:], "\r\n"):
			return i + 3
		case strings.HasPrefix(s[i+1:], "\n"):
			return i + 2
		}
	}
	return len(s)
}

// resp is the expected Message of a response with the usual test headers.
func resp(code int, reason string) sip.Message {
	return sip.Message{Response: true, StatusCode: code, Reason: bs(reason), CSeq: 1, CSeqMethod: bs("INVITE"),
		CallID: bs("c1"), ViaBranch: bs("z9b1"), ToTag: bs("t1"), ToURI: bs("sip:b@h"), ContentLength: 0}
}

const hdrs = "Via: SIP/2.0/UDP h;branch=z9b1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"

type parseCase struct {
	name string
	in   string
	err  error
	want sip.Message // zero for start-line errors (not checked); HeaderLength 0 means headerEnd(in), -1 not checked
}

func with(m sip.Message, f func(*sip.Message)) sip.Message { f(&m); return m }

var parseCases = []parseCase{
	// Whole messages.
	{"200 with sdp", ok200, nil, sip.Message{From: bs(`Alice <sip:alice@atlanta.example.com>;tag=1928301774`), Response: true, StatusCode: 200, Reason: bs("OK"), CSeq: 314159, CSeqMethod: bs("INVITE"),
		CallID: bs("a84b4c76e66710@pc33.atlanta.example.com"), ViaBranch: bs("z9hG4bK776asdhds"), ToTag: bs("a6c85cf"), FromTag: bs("1928301774"), ToURI: bs("sip:bob@biloxi.example.com"), ContentLength: len(crlf(sdpBody))}},
	{"invite", inviteSDP, nil, sip.Message{From: bs(`Alice <sip:alice@atlanta.example.com>;tag=1928301774`), Method: bs("INVITE"), CSeq: 314159, CSeqMethod: bs("INVITE"),
		CallID: bs("a84b4c76e66710@pc33.atlanta.example.com"), ViaBranch: bs("z9hG4bK776asdhds"), FromTag: bs("1928301774"), ToURI: bs("sip:bob@biloxi.example.com"), ContentLength: len(crlf(sdpBody))}},
	{"401 folded www-authenticate", unauth401, nil, sip.Message{From: bs(`Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl`), Response: true, StatusCode: 401, Reason: bs("Unauthorized"), CSeq: 1, CSeqMethod: bs("REGISTER"),
		CallID: bs("1j9FpLxk3uxtm8tn@biloxi.example.com"), ViaBranch: bs("z9hG4bKnashds7"), ToTag: bs("1410948204"), FromTag: bs("a73kszlfl"), ToURI: bs("sips:bob@biloxi.example.com"), ContentLength: 0}},
	{"compact forms", compact200, nil, sip.Message{From: bs(`Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl`), Response: true, StatusCode: 200, Reason: bs("OK"), CSeq: 2, CSeqMethod: bs("INVITE"),
		CallID: bs("3848276298220188511@atlanta.example.com"), ViaBranch: bs("z9hG4bKcompact1"), ToTag: bs("8321234356"), FromTag: bs("9fxced76sl"), ToURI: bs("sip:bob@biloxi.example.com"), ContentLength: len(crlf(sdpBody))}},
	{"bye", bye, nil, sip.Message{From: bs(`Bob <sip:bob@biloxi.example.com>;tag=a6c85cf`), Method: bs("BYE"), CSeq: 231, CSeqMethod: bs("BYE"), CallID: bs("a84b4c76e66710@pc33.atlanta.example.com"),
		ViaBranch: bs("z9hG4bKnashds10"), ToTag: bs("1928301774"), FromTag: bs("a6c85cf"), ToURI: bs("sip:alice@atlanta.example.com"), ContentLength: 0}},

	// Status line.
	{"code 100", "SIP/2.0 100 Trying\r\n" + hdrs, nil, resp(100, "Trying")},
	{"code 699", "SIP/2.0 699 Whatever\r\n" + hdrs, nil, resp(699, "Whatever")},
	{"code 099", "SIP/2.0 099 X\r\n" + hdrs, sip.ErrStatusCode, sip.Message{}},
	{"code 700", "SIP/2.0 700 X\r\n" + hdrs, sip.ErrStatusCode, sip.Message{}},
	{"code 000", "SIP/2.0 000 X\r\n" + hdrs, sip.ErrStatusCode, sip.Message{}},
	{"code abc", "SIP/2.0 abc X\r\n" + hdrs, sip.ErrStatusLine, sip.Message{}},
	{"code 4 digits", "SIP/2.0 2000 OK\r\n" + hdrs, sip.ErrStatusLine, sip.Message{}},
	{"code 2 digits", "SIP/2.0 20 OK\r\n" + hdrs, sip.ErrStatusLine, sip.Message{}},
	{"code glued to reason", "SIP/2.0 200OK\r\n" + hdrs, sip.ErrStatusLine, sip.Message{}},
	{"two spaces before code", "SIP/2.0  200 OK\r\n" + hdrs, sip.ErrStatusLine, sip.Message{}},
	{"no code", "SIP/2.0 \r\n" + hdrs, sip.ErrStatusLine, sip.Message{}},
	{"empty reason no space", "SIP/2.0 200\r\n" + hdrs, nil, resp(200, "")},
	{"empty reason with space", "SIP/2.0 200 \r\n" + hdrs, nil, resp(200, "")},
	{"reason with spaces and utf8", "SIP/2.0 486 Occupé, rappelez plus tard \r\n" + hdrs, nil, resp(486, "Occupé, rappelez plus tard ")},
	{"reason odd case", "SIP/2.0 200 Ok\r\n" + hdrs, nil, resp(200, "Ok")},
	{"status line only", "SIP/2.0 404 Not Found", nil, sip.Message{Response: true, StatusCode: 404, Reason: bs("Not Found"), ContentLength: -1}},
	{"sip/3.0 is not sip", "SIP/3.0 200 OK\r\n" + hdrs, sip.ErrNotSIP, sip.Message{}},
	{"lower case version", "sip/2.0 200 OK\r\n" + hdrs, sip.ErrNotSIP, sip.Message{}},

	// Request line.
	{"request line", "OPTIONS sip:a@b SIP/2.0\r\n" + hdrs, nil, with(resp(0, ""), func(m *sip.Message) {
		m.Response, m.Reason, m.Method = false, nil, bs("OPTIONS")
	})},
	{"extension method", "FOO-BAR sip:a@b SIP/2.0\r\n\r\n", nil, sip.Message{Method: bs("FOO-BAR"), ContentLength: -1}},
	{"known method bad version", "INVITE sip:a@b SIP/1.0\r\n" + hdrs, sip.ErrRequestLine, sip.Message{}},
	{"known method no uri", "INVITE  SIP/2.0\r\n" + hdrs, sip.ErrRequestLine, sip.Message{}},
	{"known method trailing junk", "BYE sip:a@b SIP/2.0 x\r\n" + hdrs, sip.ErrRequestLine, sip.Message{}},
	{"known method alone", "ACK \r\n", sip.ErrRequestLine, sip.Message{}},
	{"unknown method bad version", "FOO sip:a@b SIP/1.0\r\n", sip.ErrNotSIP, sip.Message{}},
	{"http get", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", sip.ErrNotSIP, sip.Message{}},
	{"http options", "OPTIONS / HTTP/1.1\r\nHost: example.com\r\n\r\n", sip.ErrNotSIP, sip.Message{}},
	{"http response", "HTTP/1.1 200 OK\r\n\r\n", sip.ErrNotSIP, sip.Message{}},
	{"rtp", "\x80\x00\x12\x34\x00\x00\x00\xa0\xde\xad\xbe\xef\xff\xff", sip.ErrNotSIP, sip.Message{}},
	{"stun", "\x00\x01\x00\x00\x21\x12\xa4\x42abcdefghijkl", sip.ErrNotSIP, sip.Message{}},
	{"tls", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", sip.ErrNotSIP, sip.Message{}},
	{"empty", "", sip.ErrNotSIP, sip.Message{}},
	{"crlf only", "\r\n\r\n", sip.ErrNotSIP, sip.Message{}},
	{"leading crlf", "\r\nSIP/2.0 200 OK\r\n\r\n", sip.ErrNotSIP, sip.Message{}},
	{"long status line", "SIP/2.0 200 " + strings.Repeat("x", sip.MaxLineBytes) + "\r\n\r\n", sip.ErrTooLong, sip.Message{}},
	{"long request line", "INVITE sip:" + strings.Repeat("x", sip.MaxLineBytes) + " SIP/2.0\r\n\r\n", sip.ErrTooLong, sip.Message{}},
	{"long junk line", strings.Repeat("x", sip.MaxLineBytes+10), sip.ErrNotSIP, sip.Message{}},

	// Line ends and layout.
	{"lf only", strings.ReplaceAll("SIP/2.0 180 Ringing\r\n"+hdrs, "\r\n", "\n"), nil, resp(180, "Ringing")},
	{"truncated header", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n", nil,
		with(resp(200, "OK"), func(m *sip.Message) { m.ContentLength = -1 })},
	{"truncated inside last line", "SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\nCall-ID: c1", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CSeq: 1, CSeqMethod: bs("INVITE"), CallID: bs("c1"), ContentLength: -1}},
	{"spaces around colon", "SIP/2.0 200 OK\r\nVia :SIP/2.0/UDP h;branch=z9b1\r\nTo\t:  <sip:b@h>;tag=t1\r\nCall-ID :  c1  \r\nCSeq : 1 INVITE\r\nContent-Length\t: 0\r\n\r\n", nil, resp(200, "OK")},
	{"no space after colon", "SIP/2.0 200 OK\r\nVia:SIP/2.0/UDP h;branch=z9b1\r\nTo:<sip:b@h>;tag=t1\r\nCall-ID:c1\r\nCSeq:1 INVITE\r\nContent-Length:0\r\n\r\n", nil, resp(200, "OK")},
	{"mixed case names", "SIP/2.0 200 OK\r\nvIA: SIP/2.0/UDP h;branch=z9b1\r\nTO: <sip:b@h>;tag=t1\r\nCALL-id: c1\r\ncseq: 1 INVITE\r\ncontent-LENGTH: 0\r\n\r\n", nil, resp(200, "OK")},
	{"compact lower and upper", "SIP/2.0 200 OK\r\nV: SIP/2.0/UDP h;branch=z9b1\r\nt: <sip:b@h>;tag=t1\r\nI: c1\r\nCSeq: 1 INVITE\r\nL: 0\r\n\r\n", nil, resp(200, "OK")},
	{"folded cseq and call-id", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID:\r\n c1\r\nCSeq: 1\r\n\t INVITE\r\nContent-Length: 0\r\n\r\n", nil, resp(200, "OK")},
	{"folded via", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9b1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil, resp(200, "OK")},
	{"body not scanned", "SIP/2.0 200 OK\r\nCall-ID: c1\r\nContent-Length: 12\r\n\r\nCSeq: 9 BYE\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CallID: bs("c1"), ContentLength: 12}},
	{"unknown headers ignored", "SIP/2.0 200 OK\r\nX-Foo: bar\r\nm: <sip:a@b>\r\nReasons: SIP;cause=200\r\n" + hdrs, nil, resp(200, "OK")},

	// Via and To parameters.
	{"multiple via", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9b1\r\nVia: SIP/2.0/UDP b;branch=second\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil, resp(200, "OK")},
	{"comma separated via", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9b1, SIP/2.0/UDP b;branch=y\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil, resp(200, "OK")},
	{"first via without branch", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a, SIP/2.0/UDP b;branch=y\r\nVia: SIP/2.0/UDP c;branch=z\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil,
		with(resp(200, "OK"), func(m *sip.Message) { m.ViaBranch = nil })},
	{"branch case and spacing", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060 ; rport ; Branch = z9b1 ;received=192.0.2.1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil, resp(200, "OK")},
	{"branch then comma", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9b1,SIP/2.0/UDP b\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil, resp(200, "OK")},
	{"quoted via param", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;x=\"a;branch=no, q\";branch=z9b1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil, resp(200, "OK")},
	{"tag inside uri and name", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nTo: \"Bob <x>;tag=q\" <sip:bob@b;tag=fake>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil,
		with(resp(200, "OK"), func(m *sip.Message) { m.ToURI = bs("sip:bob@b;tag=fake") })},
	{"to addr-spec tag", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nt: sip:bob@b;TAG=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil,
		with(resp(200, "OK"), func(m *sip.Message) { m.ToURI = bs("sip:bob@b") })},
	{"to without tag", "SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nTo: <sip:bob@b;tag=fake>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil,
		with(resp(100, "Trying"), func(m *sip.Message) { m.ToTag, m.ToURI = nil, bs("sip:bob@b;tag=fake") })},
	{"escaped quote in name", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nTo: \"a\\\";tag=no\" <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", nil, resp(200, "OK")},

	// From tag.
	{"from tag", "SIP/2.0 200 OK\r\nFrom: \"A;tag=no\" <sip:a@b;tag=uri>;tag=ft1\r\n" + hdrs, nil, with(resp(200, "OK"), func(m *sip.Message) { m.FromTag, m.From = bs("ft1"), bs(`"A;tag=no" <sip:a@b;tag=uri>;tag=ft1`) })},
	{"compact from tag", "SIP/2.0 200 OK\r\nf: sip:a@b ; TAG = ft1\r\nFrom: <sip:a@b>;tag=second\r\n" + hdrs, nil, with(resp(200, "OK"), func(m *sip.Message) { m.FromTag, m.From = bs("ft1"), bs("sip:a@b ; TAG = ft1") })},
	{"from without tag", "SIP/2.0 200 OK\r\nFrom: <sip:a@b>\r\n" + hdrs, nil, with(resp(200, "OK"), func(m *sip.Message) { m.From = bs("<sip:a@b>") })},

	// To URI, Expires and Contact (REGISTER, RFC 3261 §10.2, §10.3).
	{"register 2xx contact expires", "SIP/2.0 200 OK\r\nTo: \"Bob\" <sips:bob@biloxi.example.com;transport=tls>;tag=2493k59kd\r\nContact: <sips:bob@192.0.2.4;expires=9>;expires=7200\r\nExpires: 60\r\nCSeq: 2 REGISTER\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ToTag: bs("2493k59kd"), ToURI: bs("sips:bob@biloxi.example.com;transport=tls"), Expires: bs("60"), ContactExpires: bs("7200"), CSeq: 2, CSeqMethod: bs("REGISTER"), ContentLength: -1}},
	{"contact of an INVITE's 2xx not read", "SIP/2.0 200 OK\r\nContact: <sip:bob@192.0.2.4>;expires=7200\r\nm: *\r\nCSeq: 2 INVITE\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CSeq: 2, CSeqMethod: bs("INVITE"), ContentLength: -1}},
	{"contact largest expires of all values", "SIP/2.0 200 OK\r\nContact: <sip:a@h1>;expires=3600, \"x,y;expires=99999\" <sip:a@h2>;q=0.5;EXPIRES = 0600\r\nm: sip:a@h3;expires=0999,<sip:a@h4>;expires=7x\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@h5>;expires=60000;q=1\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContactExpires: bs("60000"), CSeq: 1, CSeqMethod: bs("REGISTER"), ContentLength: -1}},
	{"contact leading zeros compare as numbers", "SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@h1>;expires=00090, <sip:a@h2>;expires=100\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContactExpires: bs("100"), CSeq: 1, CSeqMethod: bs("REGISTER"), ContentLength: -1}},
	{"contact without expires", "SIP/2.0 200 OK\r\nContact: <sip:a@h1;expires=60>\r\nContact: <sip:a@h2>;expires=\r\nExpires: 3600\r\nCSeq: 1 REGISTER\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), Expires: bs("3600"), CSeq: 1, CSeqMethod: bs("REGISTER"), ContentLength: -1}},
	{"register contact star", "REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\nTo: sip:bob@biloxi.example.com\r\nContact: *\r\nExpires: 0\r\nexpires: 30\r\nCSeq: 9 REGISTER\r\n\r\n", nil,
		sip.Message{Method: bs("REGISTER"), ToURI: bs("sip:bob@biloxi.example.com"), Expires: bs("0"), ContactStar: true, CSeq: 9, CSeqMethod: bs("REGISTER"), ContentLength: -1}},
	{"expires empty", "SIP/2.0 200 OK\r\nExpires:  \r\nTo: <>;tag=x\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ToTag: bs("x"), ContentLength: -1}},
	{"to uri unclosed", "SIP/2.0 200 OK\r\nTo: \"B <x>\" <sip:b@h\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},

	// Reason (RFC 3326).
	{"reason q850", "BYE sip:a@b SIP/2.0\r\nReason: Q.850 ;cause=16 ;text=\"Normal call clearing\"\r\n\r\n", nil,
		sip.Message{Method: bs("BYE"), Q850Cause: bs("16"), ContentLength: -1}},
	{"reason sip", "SIP/2.0 480 Unavailable\r\nReason: SIP;cause=480;text=\"a, b\"\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 480, Reason: bs("Unavailable"), SIPCause: bs("480"), ContentLength: -1}},
	{"reason two values", "CANCEL sip:a@b SIP/2.0\r\nReason: SIP ;cause=200 ;text=\"Call completed elsewhere, really\", Q.850;cause=26\r\n\r\n", nil,
		sip.Message{Method: bs("CANCEL"), SIPCause: bs("200"), Q850Cause: bs("26"), ContentLength: -1}},
	{"reason two headers first wins", "BYE sip:a@b SIP/2.0\r\nreason: q.850;text=\"x\"\r\nREASON: Q.850;cause=31\r\nReason: Q.850;cause=17, SIP;cause=503\r\nReason: SIP;cause=600\r\n\r\n", nil,
		sip.Message{Method: bs("BYE"), Q850Cause: bs("31"), SIPCause: bs("503"), ContentLength: -1}},
	{"reason junk after protocol", "BYE sip:a@b SIP/2.0\r\nReason: SIP#;cause=1, Q.850 x;cause=2, SIP;cause\r\n\r\n", nil, sip.Message{Method: bs("BYE"), ContentLength: -1}},
	{"reason other protocol", "BYE sip:a@b SIP/2.0\r\nReason: X-Vendor;cause=7, ;cause=8,Q.850;cause=abc\r\n\r\n", nil,
		sip.Message{Method: bs("BYE"), Q850Cause: bs("abc"), ContentLength: -1}},
	{"reason folded", "BYE sip:a@b SIP/2.0\r\nReason: Q.850\r\n ;cause=16\r\n\r\n", nil,
		sip.Message{Method: bs("BYE"), Q850Cause: bs("16"), ContentLength: -1}},
	{"reason empty", "BYE sip:a@b SIP/2.0\r\nReason:\r\nReason: ,,\r\n\r\n", nil, sip.Message{Method: bs("BYE"), ContentLength: -1}},

	// Identity (RFC 8224 §4) and P-Asserted-Identity (RFC 3325 §9.1).
	{"invite with identity", inviteIdentity, nil, sip.Message{From: bs(`"Alice" <sip:+12155550199@atlanta.example.com;user=phone>;tag=1928301774`), Method: bs("INVITE"), CSeq: 314159, CSeqMethod: bs("INVITE"),
		CallID: bs("a84b4c76e66710@pc33.atlanta.example.com"), ViaBranch: bs("z9hG4bK776asdhds"), FromTag: bs("1928301774"), ToURI: bs("sip:+12155550123@biloxi.example.com;user=phone"),
		ContentLength: len(crlf(sdpBody)), Identity: bs(identityValue), PAssertedIdentity: bs(`"Alice" <sip:+12155550199@atlanta.example.com;user=phone>, <tel:+12155550199>`)}},
	{"identity compact first wins", "INVITE sip:a@b SIP/2.0\r\nY : a.b.c;info=<https://x/c>\r\nIdentity: second\r\np-asserted-identity:  <sip:a@b> \r\nP-Asserted-Identity: <sip:second@b>\r\n\r\n", nil,
		sip.Message{Method: bs("INVITE"), Identity: bs("a.b.c;info=<https://x/c>"), PAssertedIdentity: bs("<sip:a@b>"), ContentLength: -1}},
	{"identity folded", "INVITE sip:a@b SIP/2.0\r\nIdentity:\r\n a.b.c;\r\n\tinfo=<https://x/c>\r\n\r\n", nil,
		sip.Message{Method: bs("INVITE"), Identity: bs("a.b.c;\r\n\tinfo=<https://x/c>"), ContentLength: -1}},
	// An empty Identity header is none: the next one counts (every
	// Identity header is read); an empty P-Asserted-Identity hides the
	// later ones (only the first is read).
	{"identity empty then later", "INVITE sip:a@b SIP/2.0\r\nIdentity: \r\nIdentity: late\r\nP-Asserted-Identity:\r\nP-Asserted-Identity: <sip:late@b>\r\n\r\n", nil,
		sip.Message{Method: bs("INVITE"), Identity: bs("late"), ContentLength: -1}},
	// Several Identity headers (RFC 8946: a div PASSporT beside the
	// SHAKEN one): the first with ppt=shaken, else the first.
	{"identity shaken after div", "INVITE sip:a@b SIP/2.0\r\nIdentity: d.d.d;info=<https://x/d>;ppt=div\r\ny: s.s.s;info=<https://x/s>;alg=ES256;PPT=\"Shaken\"\r\nIdentity: t.t.t;ppt=shaken\r\n\r\n", nil,
		sip.Message{Method: bs("INVITE"), Identity: bs(`s.s.s;info=<https://x/s>;alg=ES256;PPT="Shaken"`), ContentLength: -1}},
	{"identity shaken first", "INVITE sip:a@b SIP/2.0\r\nIdentity: s.s.s;ppt=shaken\r\nIdentity: d.d.d;ppt=div\r\n\r\n", nil,
		sip.Message{Method: bs("INVITE"), Identity: bs("s.s.s;ppt=shaken"), ContentLength: -1}},
	{"identity none shaken", "INVITE sip:a@b SIP/2.0\r\nIdentity: a.a.a;ppt=div\r\nIdentity: b.b.b\r\nIdentity: c.c.c;info=<https://x/c;ppt=shaken>\r\n\r\n", nil,
		sip.Message{Method: bs("INVITE"), Identity: bs("a.a.a;ppt=div"), ContentLength: -1}},
	{"identity look-alikes", "INVITE sip:a@b SIP/2.0\r\nIdentity-Info: <https://x/c>\r\nIdentit: x\r\nP-Asserted-Identit: x\r\nP-Asserted-Identityy: y\r\nP-Preferred-Identity: <sip:p@b>\r\n\r\n", nil,
		sip.Message{Method: bs("INVITE"), ContentLength: -1}},
	{"identity in a response", "SIP/2.0 200 OK\r\ny: response-identity\r\nP-ASSERTED-IDENTITY: <sip:a@b>\r\n\r\n", nil,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), Identity: bs("response-identity"), PAssertedIdentity: bs("<sip:a@b>"), ContentLength: -1}},

	// CSeq.
	{"missing cseq", "SIP/2.0 200 OK\r\nCall-ID: c1\r\n\r\n", nil, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CallID: bs("c1"), ContentLength: -1}},
	{"cseq max uint32", "SIP/2.0 200 OK\r\nCSeq: 4294967295 INVITE\r\n\r\n", nil, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CSeq: 4294967295, CSeqMethod: bs("INVITE"), ContentLength: -1}},
	{"cseq leading zeros tab", "SIP/2.0 200 OK\r\nCSeq: 0007\tACK\r\n\r\n", nil, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CSeq: 7, CSeqMethod: bs("ACK"), ContentLength: -1}},
	{"cseq huge", "SIP/2.0 200 OK\r\nCall-ID: c1\r\nCSeq: 4294967296 INVITE\r\n\r\n", sip.ErrCSeq, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CallID: bs("c1"), ContentLength: -1}},
	{"cseq no method", "SIP/2.0 200 OK\r\nCSeq: 1\r\nCall-ID: c1\r\n\r\n", sip.ErrCSeq, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CallID: bs("c1"), ContentLength: -1}},
	{"cseq no number", "SIP/2.0 200 OK\r\nCSeq: INVITE\r\n\r\n", sip.ErrCSeq, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},
	{"cseq glued", "SIP/2.0 200 OK\r\nCSeq: 1INVITE\r\n\r\n", sip.ErrCSeq, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},
	{"cseq negative", "SIP/2.0 200 OK\r\nCSeq: -1 INVITE\r\n\r\n", sip.ErrCSeq, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},
	{"cseq two words", "SIP/2.0 200 OK\r\nCSeq: 1 INVITE BYE\r\n\r\n", sip.ErrCSeq, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},
	{"cseq empty", "SIP/2.0 200 OK\r\nCSeq:\r\n\r\n", sip.ErrCSeq, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},
	{"second cseq ignored", "SIP/2.0 200 OK\r\nCSeq: 5 BYE\r\nCSeq: x\r\n\r\n", nil, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CSeq: 5, CSeqMethod: bs("BYE"), ContentLength: -1}},

	// Content-Length.
	{"content-length bad", "SIP/2.0 200 OK\r\nContent-Length: 1x\r\nCSeq: 1 INVITE\r\n\r\n", sip.ErrContentLength, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CSeq: 1, CSeqMethod: bs("INVITE"), ContentLength: -1}},
	{"content-length negative", "SIP/2.0 200 OK\r\nl: -1\r\n\r\n", sip.ErrContentLength, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},
	{"content-length empty", "SIP/2.0 200 OK\r\nContent-Length:\r\n\r\n", sip.ErrContentLength, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},
	{"content-length huge", "SIP/2.0 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", sip.ErrContentLength, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},
	{"content-length max", "SIP/2.0 200 OK\r\nContent-Length: " + itoa(sip.MaxBodyBytes) + "\r\n\r\n", nil, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: sip.MaxBodyBytes}},
	{"content-length over max", "SIP/2.0 200 OK\r\nContent-Length: " + itoa(sip.MaxBodyBytes+1) + "\r\n\r\n", sip.ErrContentLength, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), ContentLength: -1}},

	// Header errors keep the good fields and the scan goes on.
	{"header without colon", "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nGarbage\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", sip.ErrHeader, resp(486, "Busy Here")},
	{"header name with space", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nX Foo: 1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", sip.ErrHeader, resp(200, "OK")},
	{"header name bad char", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9b1\r\nX@Foo: 1\r\nTo: <sip:b@h>;tag=t1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", sip.ErrHeader, resp(200, "OK")},
	{"empty header name", "SIP/2.0 200 OK\r\n: x\r\n" + hdrs, sip.ErrHeader, resp(200, "OK")},
	{"continuation first", "SIP/2.0 200 OK\r\n folded\r\n" + hdrs, sip.ErrHeader, resp(200, "OK")},
	{"first error wins", "SIP/2.0 200 OK\r\nCSeq: x\r\nbad\r\nCall-ID: c1\r\n\r\n", sip.ErrCSeq, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CallID: bs("c1"), ContentLength: -1}},
	{"long header line", "SIP/2.0 200 OK\r\nX-Long: " + strings.Repeat("y", sip.MaxLineBytes) + "\r\n folded too\r\n" + hdrs, sip.ErrTooLong, resp(200, "OK")},
	{"long last line unterminated", "SIP/2.0 200 OK\r\nCall-ID: c1\r\nX-Long: " + strings.Repeat("y", sip.MaxLineBytes), sip.ErrTooLong, sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CallID: bs("c1"), ContentLength: -1}},
	{"header over max", "SIP/2.0 200 OK\r\nCall-ID: c1\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 70) + "CSeq: 1 INVITE\r\n\r\n", sip.ErrTooLong,
		sip.Message{Response: true, StatusCode: 200, Reason: bs("OK"), CallID: bs("c1"), ContentLength: -1, HeaderLength: -1}},
}

// identityValue is the value of the Identity header of inviteIdentity.
var identityValue = func() string {
	_, v, _ := strings.Cut(inviteIdentity, "\r\nIdentity: ")
	v, _, _ = strings.Cut(v, "\r\n")
	return v
}()

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			var m sip.Message
			err := sip.Parse([]byte(tc.in), &m)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Parse() error = %v, want %v", err, tc.err)
			}
			if reflect.DeepEqual(tc.want, sip.Message{}) {
				return // start-line error: the fields are not to be trusted
			}
			want := tc.want
			switch want.HeaderLength {
			case 0:
				want.HeaderLength = headerEnd(tc.in)
			case -1:
				want.HeaderLength = m.HeaderLength // checked by the fuzz invariants
			}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("Parse()\n got %s\nwant %s", render(&m), render(&want))
			}
		})
	}
}

func TestParseReset(t *testing.T) {
	var m sip.Message
	if err := sip.Parse([]byte(ok200), &m); err != nil {
		t.Fatal(err)
	}
	if err := sip.Parse([]byte("SIP/2.0 200 OK\r\n\r\n"), &m); err != nil {
		t.Fatal(err)
	}
	if m.CallID != nil || m.CSeqMethod != nil || m.ContentLength != -1 || m.HeaderLength != 18 {
		t.Errorf("fields survived a new Parse: %s", render(&m))
	}
	m.Reset()
	if !reflect.DeepEqual(m, sip.Message{ContentLength: -1}) {
		t.Errorf("Reset() = %s", render(&m))
	}
}

func TestIsStart(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{ok200, true},
		{inviteSDP, true},
		{"SIP/2.0 ", true},
		{"SIP/2.0 abc", true},
		{"INVITE sip:a@b SIP/2.0", true},
		{"INVITE sip:a@b SIP/2.0\n", true},
		{"NEWMETHOD sip:a@b SIP/2.0\r\n", true},
		{"INVITE sip:a@b SIP/2.0 \r\n", false},
		{"INVITE sip:a@b SIP/2.", false},
		{"INVITE sip:a@b", false},
		{"INVITE sip:" + strings.Repeat("a", sip.MaxLineBytes) + " SIP/2.0\r\n", false},
		{"SIP/2.0", false},
		{"SIP/2.0\t200 OK", false},
		{"GET / HTTP/1.1\r\n", false},
		{"OPTIONS * HTTP/1.1\r\n", false},
		{"HTTP/1.1 200 OK\r\n", false},
		{"\x80\x00\x12\x34\x00\x00\x00\xa0", false},
		{"\x00\x01\x00\x00\x21\x12\xa4\x42", false},
		{"\x16\x03\x01\x02\x00", false},
		{"", false},
		{"\r\n\r\n", false},
		{"\r\nSIP/2.0 200 OK\r\n", false},
	}
	for _, tc := range tests {
		name := tc.in
		if len(name) > 30 {
			name = name[:30]
		}
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			if got := sip.IsStart([]byte(tc.in)); got != tc.want {
				t.Errorf("IsStart(%q) = %v, want %v", name, got, tc.want)
			}
		})
	}
	// IsStart agrees with Parse's start-line verdict.
	for _, tc := range parseCases {
		var m sip.Message
		err := sip.Parse([]byte(tc.in), &m)
		notSIP := err == sip.ErrNotSIP || err == sip.ErrRequestLine || (err == sip.ErrTooLong && !m.Response && m.Method == nil)
		if sip.IsStart([]byte(tc.in)) == notSIP && !strings.HasPrefix(tc.in, "SIP/2.0 ") {
			t.Errorf("%s: IsStart = %v but Parse error = %v", tc.name, !notSIP, err)
		}
	}
}

func TestErrors(t *testing.T) {
	all := []*sip.Error{sip.ErrNotSIP, sip.ErrIncomplete, sip.ErrStatusLine, sip.ErrStatusCode, sip.ErrRequestLine,
		sip.ErrHeader, sip.ErrCSeq, sip.ErrContentLength, sip.ErrTooLong}
	seen := map[string]bool{}
	for _, e := range all {
		if !strings.HasPrefix(e.Error(), "sip: ") || strings.ToLower(e.Error()) != e.Error() {
			t.Errorf("%q: want lower case with prefix \"sip: \"", e.Error())
		}
		if seen[e.Reason] || e.Reason == "" || strings.ToLower(e.Reason) != e.Reason {
			t.Errorf("reason %q: want unique snake_case", e.Reason)
		}
		seen[e.Reason] = true
		var target *sip.Error
		if !errors.As(fmt.Errorf("wrapped: %w", e), &target) || target != e {
			t.Errorf("errors.As(%v) failed", e)
		}
	}
	if len(sip.ErrorReasons) != len(all)-2 {
		t.Errorf("ErrorReasons = %v", sip.ErrorReasons)
	}
	for _, r := range sip.ErrorReasons {
		if !seen[r] || r == "not_sip" || r == "incomplete" {
			t.Errorf("ErrorReasons has %q", r)
		}
	}
}

func TestAllocs(t *testing.T) {
	msg := []byte(ok200)
	var m sip.Message
	tests := map[string]func(){
		"Parse":        func() { _ = sip.Parse(msg, &m) },
		"ParseCompact": func() { _ = sip.Parse([]byte(compact200), &m) },
		"IsStart":      func() { _ = sip.IsStart(msg) },
		"FrameLength":  func() { _, _ = sip.FrameLength(msg) },
		"ParseError":   func() { _ = sip.Parse(msg[:20], &m) },
	}
	reason := []byte("BYE sip:a@b SIP/2.0\r\nFrom: <sip:a@b>;tag=f\r\nReason: SIP;cause=200;text=\"x, y\", Q.850;cause=16\r\n\r\n")
	tests["ParseReason"] = func() { _ = sip.Parse(reason, &m) }
	register := []byte("SIP/2.0 200 OK\r\nTo: \"Bob\" <sip:bob@b>;tag=t\r\nContact: <sip:bob@h1>;expires=3600, <sip:bob@h2>;q=0.5;expires=60\r\nm: *\r\nExpires: 3600\r\nCSeq: 1 REGISTER\r\n\r\n")
	tests["ParseRegister"] = func() { _ = sip.Parse(register, &m) }
	compact := []byte(compact200)
	tests["ParseCompact"] = func() { _ = sip.Parse(compact, &m) }
	identity := []byte(inviteIdentity)
	tests["ParseIdentity"] = func() { _ = sip.Parse(identity, &m) }
	folded := []byte(unauth401)
	tests["ParseFolded"] = func() { _ = sip.Parse(folded, &m) }
	long := []byte("SIP/2.0 200 OK\r\nX-Long: " + strings.Repeat("y", sip.MaxLineBytes) + "\r\n folded\r\n" + hdrs)
	tests["ParseTooLong"] = func() { _ = sip.Parse(long, &m) }
	for name, f := range tests {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}
