package sip_test

import "strings"

// crlf turns the LF line ends of a readable literal into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// withBody appends body to header and sets its Content-Length.
func withBody(header, body string) string {
	n := itoa(len(crlf(body)))
	header = strings.ReplaceAll(header, "Content-Length: N", "Content-Length: "+n)
	header = strings.ReplaceAll(header, "\nl: N\n", "\nl: "+n+"\n")
	return crlf(header) + crlf(body)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

const sdpBody = `v=0
o=bob 2808844564 2808844564 IN IP4 192.0.2.4
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49172 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
`

// ok200 is a 200 OK to an INVITE with an SDP answer, about 800 bytes.
var ok200 = withBody(`SIP/2.0 200 OK
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5060
Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1
Record-Route: <sip:ss1.biloxi.example.com;lr>
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:bob@192.0.2.4:5060;transport=udp>
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, UPDATE
Supported: replaces, timer
Server: ExampleUA/1.0
Content-Type: application/sdp
Content-Length: N

`, sdpBody)

// inviteSDP is an INVITE with an SDP offer.
var inviteSDP = withBody(`INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Content-Type: application/sdp
Content-Length: N

`, sdpBody)

var trying100 = crlf(`SIP/2.0 100 Trying
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.1
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Content-Length: 0

`)

var ringing180 = crlf(`SIP/2.0 180 Ringing
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.1
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
Contact: <sip:bob@192.0.2.4>
CSeq: 314159 INVITE
Content-Length: 0

`)

var unauth401 = crlf(`SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7;received=192.0.2.201
From: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl
To: Bob <sips:bob@biloxi.example.com>;tag=1410948204
Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm="atlanta.example.com", qop="auth",
 nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="",
 stale=FALSE, algorithm=MD5
Content-Length: 0

`)

var register = crlf(`REGISTER sips:ss2.biloxi.example.com SIP/2.0
Via: SIP/2.0/TLS client.biloxi.example.com:5061;branch=z9hG4bKnashds7
Max-Forwards: 70
From: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl
To: Bob <sips:bob@biloxi.example.com>
Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com
CSeq: 1 REGISTER
Contact: <sips:bob@client.biloxi.example.com>
Expires: 7200
Content-Length: 0

`)

var options = crlf(`OPTIONS sip:carol@chicago.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877
Max-Forwards: 70
To: <sip:carol@chicago.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 63104 OPTIONS
Contact: <sip:alice@pc33.atlanta.example.com>
Accept: application/sdp
Content-Length: 0

`)

var bye = crlf(`BYE sip:alice@pc33.atlanta.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10
Max-Forwards: 70
From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
To: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 231 BYE
Content-Length: 0

`)

// compact200 uses the compact header forms of RFC 3261 §7.3.3.
var compact200 = withBody(`SIP/2.0 200 OK
v: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKcompact1;received=192.0.2.1
t: Bob <sip:bob@biloxi.example.com>;tag=8321234356
f: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
i: 3848276298220188511@atlanta.example.com
CSeq: 2 INVITE
m: <sip:bob@192.0.2.4>
c: application/sdp
l: N

`, sdpBody)

// inviteIdentity is an INVITE signed with STIR/SHAKEN (RFC 8224 §4, RFC 8588):
// an Identity header with a PASSporT of about 400 bytes, a
// P-Asserted-Identity (RFC 3325) and an SDP offer.
var inviteIdentity = withBody(`INVITE sip:+12155550123@biloxi.example.com;user=phone SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: <sip:+12155550123@biloxi.example.com;user=phone>
From: "Alice" <sip:+12155550199@atlanta.example.com;user=phone>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
P-Asserted-Identity: "Alice" <sip:+12155550199@atlanta.example.com;user=phone>, <tel:+12155550199>
Identity: eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3Bhc3Nwb3J0LmNlciJ9.eyJhdHRlc3QiOiJBIiwiZGVzdCI6eyJ0biI6WyIxMjE1NTU1MDEyMyJdfSwiaWF0IjoxNDQzMjA4MzQ1LCJvcmlnIjp7InRuIjoiMTIxNTU1NTAxOTkifSwib3JpZ2lkIjoiMTIzZTQ1NjctZTg5Yi0xMmQzLWE0NTYtNDI2NjU1NDQwMDAwIn0.MEUCIQCEFJXkDV1h9tGSwVfFmvM7HzEVVaVTpOSqwC2fTMThZAIgSBLaoSpV-vkv9TWSUEbKw1fOGMYrT1ArLsjLpHuDHgQ;info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken
Content-Type: application/sdp
Content-Length: N

`, sdpBody)

// corpus is the crafted part of the differential corpus.
var corpus = []string{ok200, inviteSDP, trying100, ringing180, unauth401, register, options, bye, compact200, inviteIdentity}
