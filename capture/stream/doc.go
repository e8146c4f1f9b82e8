// Package stream reassembles the TCP streams of one packet source and
// frames the messages they carry: SIP framed by Content-Length (RFC 3261
// §18.3), HEPv3 packets framed by their length, and SIP over WebSocket
// (RFC 7118, RFC 6455 frames). It sits below the decoder (package decode),
// which hands it TCP segments ([Table.Segment]) and takes what it frames
// as its [Sink]; it imports only the leaf packages sip and hep, the
// standard library and, for its metrics, client_golang.
//
// Segments are put back in order per flow direction (RFC 9293 sequence
// space), retransmitted data is counted once, a gap that never fills is
// skipped to the next message start (found on any line of a segment), a
// segment behind the first byte of the stream or implausibly far from the
// next byte starts the flow again (a new connection whose SYN was lost,
// bytes sent again from before the capture) while the stream left may
// still go on, a message too large to buffer is handed on at the end of
// its header and its body skipped by Content-Length, and buffers, the
// flow count and the memory of all flows are bounded ([Config]); see
// [Table] for the details. WebSocket is a mode of a flow direction,
// entered at its HTTP upgrade or, joined mid-connection, at a first frame
// carrying SIP. Its counters are in [Stats], exported by [Stats.Collect];
// what makes no message is reported to the Sink, which counts it.
//
// Nothing allocates or locks for in-order segments of a known flow.
package stream
