package capture_test

// ok is a 200 OK for TestDedupAllocs. dedup_test.go took it from the
// decoder tests' corpus while they shared this package; they have moved to
// capture/decode, and dedup.go moves to capture/merge, where this goes too.
var ok = struct{ text string }{text: "SIP/2.0 200 OK\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;received=192.0.2.10;rport=5060\r\n" +
	"From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n" +
	"To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n" +
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n" +
	"CSeq: 314159 INVITE\r\n" +
	"Content-Length: 0\r\n\r\n"}
