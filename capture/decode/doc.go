// Package decode turns captured frames into SIP messages: the second
// stage of the capture engine, one [Decoder] per packet source (package
// input), below which TCP streams (package stream) and IP fragments
// (package defrag) are put back together. Its messages go on, through
// the time-ordered merge of all sources, to the counters and the
// transaction tracker of package collector.
//
// [Decoder.Packet] decodes the link layer (Ethernet and Linux SLL/SLL2
// with 802.1Q/802.1ad stacks, MPLS and PPPoE, raw IP, BSD null/loopback;
// walked by the same code as [FlowHash], which picks a file's worker), IPv4 and
// IPv6 (RFC 791, RFC 8200), UDP, TCP and SCTP, and tunnels and mirror
// encapsulations nested in any order: GRE, PPP in PPTP's enhanced GRE
// (RFC 2637), ERSPAN I/II/III, VXLAN, Geneve, IP-in-IP, MPLS. TCP segments go to a [stream.Table], which frames SIP
// messages by Content-Length (RFC 3261 §18.3), HEPv3 packets and SIP over
// WebSocket (RFC 7118). IP fragments go to a [defrag.Table] and the
// datagram, once complete, is decoded like any other. SCTP (RFC 4168) is
// decoded chunk by chunk: each DATA or I-DATA chunk holding a whole user
// message is one datagram. SIP is recognised by content on any port with
// [sip.IsStart]; HEP found inside UDP or TCP payloads, or received by the
// HEP listener, is decapsulated ([Decoder.HEP]). Each message is scanned
// with [sip.Parse] and handed to a [Handler] with its [Origin].
//
// Nothing on the per-packet path allocates (for UDP and in-order TCP
// segments) or takes a lock; the tests assert it. Bad input never stops a
// source: every packet that is skipped, malformed or dropped is counted in
// the source's [Stats] under a reason from a closed set ([ParseError],
// [Skip], [Encap], HEP decode errors), and [Stats.Collect] exports the
// counters, with those of the stream and defrag stages.
package decode
