// Package capture reads packets and turns them into SIP messages for the
// exporter: live from a network interface (AF_PACKET TPACKET_V3, pure Go),
// from pcap, pcapng and NetMon 2.x files, and from HEP senders
// (Kamailio siptrace, OpenSIPS, FreeSWITCH, Asterisk, heplify, captagent).
//
// A [Decoder] belongs to one source. [Decoder.Packet] decodes the link
// layer (Ethernet with 802.1Q/802.1ad stacks and PPPoE, Linux SLL/SLL2, raw
// IP, BSD null/loopback), IPv4 and IPv6 (RFC 791, RFC 8200), UDP and TCP.
// TCP streams are reassembled per flow direction (RFC 9293 sequence space):
// segments put back in order, retransmitted data counted once, messages
// framed by Content-Length (RFC 3261 §18.3), buffers and flow count bounded.
// SIP over WebSocket (RFC 7118) is a stream mode of a flow: recognised by
// its HTTP upgrade or, joined mid-connection, by a first frame carrying SIP;
// frames are unmasked and reassembled, one SIP message per WebSocket message.
// SIP is recognised by content on any port with [sip.IsStart]; HEP found
// inside UDP or TCP payloads is decapsulated ([Decoder.HEP]). Each message is
// scanned with [sip.Parse] and handed to a [Handler] with its [Origin].
//
// Nothing on the per-packet path allocates (for UDP and in-order TCP
// segments) or takes a lock; the tests assert it. Bad input never stops a
// source: every packet that is skipped, malformed or dropped is counted in
// the source's [Stats] under a reason from a closed set ([ParseError],
// [Skip], [Eviction], HEP decode errors).
//
// IPv4 and IPv6 fragments are reassembled ([FragmentConfig]; drops counted
// by [FragDrop] reason) and decoded like any other datagram, tunnels
// included. SCTP (RFC 4168) is decoded chunk by chunk: each DATA or I-DATA
// chunk holding a whole user message is one datagram.
package capture
