// Package sip is the SIP message scanner of sip_exporter: bytes in, fields
// out. It is the per-packet hot path, so it imports only the standard
// library, allocates nothing, and bounds every scan.
//
// [Parse] reads the start line and header of one SIP message (RFC 3261 §7)
// and fills a [Message] with the fields an exporter counts by: whether it
// is a response, the status code (§7.2, §21) and reason phrase or the request
// method (§7.1), the CSeq number and method (§20.16), Call-ID (§20.8), the
// branch of the topmost Via (§20.42, §8.1.1.7), the To and From tags
// (§20.39, §20.20), the To URI (the address of record of a REGISTER,
// §10.2), the Expires header (§20.19) and the largest expires parameter of
// the Contact values and whether one is "*" (§10.2.1.1, §10.2.2, §20.10),
// the Q.850 and SIP causes of the Reason header (RFC 3326), the Identity
// (RFC 8224 §4; of several, the SHAKEN one), P-Asserted-Identity (RFC
// 3325 §9.1) and From (§20.20) values,
// Content-Length (§20.14) and the length of the header. The byte slices in a
// Message alias the input. Compact header forms (§7.3.3), folded header lines
// (§7.3.1), LF-only line ends and header sections cut short by a truncated
// datagram are accepted.
//
// [IsStart] recognises a SIP start line by content, for traffic on any port.
// [FrameLength] delimits messages on stream transports by Content-Length
// (§18.3).
//
// Errors are the pre-allocated [*Error] sentinels; their Reason is a
// snake_case word suitable as a metric label, and [ErrorReasons] lists the
// ones that denote malformed SIP. [ErrNotSIP] means "not SIP, skip it".
//
// Limits: a header section is at most [MaxHeaderBytes] (64 KiB), a line at
// most [MaxLineBytes] (8 KiB), a body at most [MaxBodyBytes] (1 MiB). Parse,
// IsStart and FrameLength run in time linear in min(len(b), MaxHeaderBytes)
// and never allocate; the package tests assert zero allocations, fuzz the
// scanner, compare it with the github.com/emiago/sipgo parser, and compare
// it field by field with the simpler scanner it replaced, kept in the tests
// as an oracle (FuzzParseDifferential).
package sip
