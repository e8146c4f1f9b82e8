package decode_test

// Crafted captures of TCP connections that reuse the addresses and ports
// of one before them, and of retransmissions of bytes sent before the
// capture began (issue 19): written with pcapgo, read back through
// input.ReadFile, every count known by construction.

import (
	"fmt"
	"testing"
	"time"
)

// request returns INVITE number n of call id with a body of bodyLen bytes
// (0: none), as alice sends it over TCP.
func request(id string, n, bodyLen int) string {
	h := fmt.Sprintf("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK%s%d\r\nMax-Forwards: 70\r\n"+
		"From: <sip:alice@example.com>;tag=a%d\r\nTo: <sip:bob@example.com>\r\nCall-ID: %s-%d\r\nCSeq: %d INVITE\r\n", id, n, n, id, n, n+1)
	if bodyLen == 0 {
		return h + "Content-Length: 0\r\n\r\n"
	}
	return h + fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n", bodyLen) + sdpOf(bodyLen)
}

// synFrame returns the frame of c's SYN.
func synFrame(c *tcpConn, ts time.Time) packet {
	lt, f := c.syn()
	return packet{lt, f, ts}
}

// A connection on the addresses and ports of one before it, neither its
// SYN nor the FIN of the one before captured, its initial sequence number
// behind the first byte of the one before by any amount: every message of
// both connections counts, in both directions, and the flow starts again
// once per direction. Before, a distance under 1 MiB took the new
// connection's segments for retransmissions of the old one, and its
// messages were lost; 3 GiB behind is 1 GiB ahead and always worked.
func TestTCPReusedTuple(t *testing.T) {
	const isnA, isnB = 3_000_000_000, 200_000 // connection 1: alice's, bob's
	var old, nu [2]string                     // streams: alice to bob, bob to alice
	for i := range 10 {
		old[0] += request("old", i, 0)
		old[1] += response(180, "old", i, 0)
	}
	for i := range 50 {
		nu[0] += request("new", i, 200)
		nu[1] += response(200, "new", i, 300)
	}
	for _, tc := range []struct {
		name   string
		behind uint32 // connection 2's ISN behind connection 1's first byte
	}{
		{"100 bytes", 100},
		{"10 KiB", 10 << 10},
		{"900 KiB", 900 << 10},
		{"3 GiB, wrapping", 3 << 30},
		// Connection 2's second segment starts at connection 1's first
		// byte: the same sequence number, other bytes.
		{"first segment", 1 + 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a1 := newConn(t, ethernet, alice4, bob4, isnA)
			b1 := newConn(t, ethernet, bob4, alice4, isnB)
			frames := []packet{synFrame(a1, t13), synFrame(b1, t13)}
			frames = append(frames, sendAll(a1, t13, segments(old[0], 700))...)
			frames = append(frames, sendAll(b1, t13, segments(old[1], 700))...)
			// isnA+1 and isnB+1 are connection 1's first bytes.
			a2 := newConn(t, ethernet, alice4, bob4, isnA+1-tc.behind)
			b2 := newConn(t, ethernet, bob4, alice4, isnB+1-tc.behind)
			a2.seq++ // the SYN, not captured
			b2.seq++
			sa, sb := segments(nu[0], 1000), segments(nu[1], 1000)
			for i := range max(len(sa), len(sb)) {
				if i < len(sa) {
					frames = append(frames, sendAll(a2, t13.Add(time.Minute), sa[i:i+1])...)
				}
				if i < len(sb) {
					frames = append(frames, sendAll(b2, t13.Add(time.Minute), sb[i:i+1])...)
				}
			}
			st, rec := replay(t, nil, frames)
			if rec.byCode[0] != 60 || rec.byCode[180] != 10 || rec.byCode[200] != 50 {
				t.Errorf("INVITEs = %d (want 10 + 50), 180s = %d (want 10), 200s = %d (want 50)", rec.byCode[0], rec.byCode[180], rec.byCode[200])
			}
			if n := st.Stream.Resyncs.Load(); n != 2 {
				t.Errorf("resyncs = %d, want 2 (one per direction)", n)
			}
			if n := st.Stream.Retransmitted.Load(); n != 0 {
				t.Errorf("retransmitted = %d, want 0", n)
			}
		})
	}
}

// The capture begins inside a connection, and the sender then
// retransmits a segment it sent before the capture began (it was lost,
// or its acknowledgement was): those bytes were never seen, the message
// they hold counts, and so do the messages after it, whether the sender
// goes on with new data (SACK recovery) or sends the segments seen
// already again first (go-back-N after a timeout). A segment behind one
// seen first, reordered at the start of the capture, is the same case.
func TestTCPRetransmissionBeforeCapture(t *testing.T) {
	msgs := make([]string, 10)
	for i := range msgs {
		msgs[i] = response(200, "pre", i, 120*i)
	}
	for _, tc := range []struct {
		name    string
		order   []int // messages in the order captured, one per segment; the capture begins inside message 2's connection
		want    int   // responses counted
		resyncs uint64
		retrans uint64
	}{
		// Message 1 was sent before the capture began.
		{"then new data", []int{2, 3, 4, 1, 5, 6, 7, 8, 9}, 9, 2, 0},
		{"then the segments seen again", []int{2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 9, 2, 3},
		{"two of them", []int{2, 3, 4, 1, 0, 5, 6, 7, 8, 9}, 10, 3, 0},
		{"twice", []int{2, 3, 4, 1, 1, 5, 6, 7, 8, 9}, 9, 2, 1},
		// Reordered: message 3 is captured before message 2.
		{"reordered at the start", []int{3, 2, 4, 5, 6, 7, 8, 9}, 8, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			starts := make([]uint32, len(msgs))
			seq := uint32(4_294_960_000) // wraps inside the stream
			for i, m := range msgs {
				starts[i] = seq
				seq += uint32(len(m))
			}
			c := newConn(t, ethernet, bob4, alice4, 0)
			var frames []packet
			for _, i := range tc.order {
				lt, f := c.at(starts[i], fACK|fPSH, []byte(msgs[i]))
				frames = append(frames, packet{lt, f, t13})
			}
			st, rec := replay(t, nil, frames)
			if n := rec.byCode[200]; n != tc.want {
				t.Errorf("responses = %d, want %d", n, tc.want)
			}
			if n := st.Stream.Resyncs.Load(); n != tc.resyncs {
				t.Errorf("resyncs = %d, want %d", n, tc.resyncs)
			}
			if n := st.Stream.Retransmitted.Load(); n != tc.retrans {
				t.Errorf("retransmitted = %d, want %d", n, tc.retrans)
			}
			if n := st.Stream.Gaps.Load(); n != 0 {
				t.Errorf("gaps = %d, want 0", n)
			}
		})
	}
}

// A TCP keep-alive probe (RFC 9293 §3.8.4) of a connection that has sent
// nothing yet carries one garbage byte at the sequence number before the
// first: a retransmission, not a new stream.
func TestTCPKeepAliveProbe(t *testing.T) {
	d, st, rec := newDecoder(t, nil)
	c := newConn(t, ethernet, bob4, alice4, 5000)
	feed(d, pk(c.syn()))
	feed(d, pk(c.at(5000, fACK, []byte{0})), pk(c.data(ok.text)))
	if w := want(ok); !sameMsgs(rec.msgs, w) {
		t.Errorf("messages = %v, want %v", rec.msgs, w)
	}
	if g, w := counts(st), map[string]uint64{"responses": 1, "tcp_flows": 1, "tcp_retrans": 1}; !sameCounts(g, w) {
		t.Errorf("counts = %v, want %v", g, w)
	}
}

// A new connection whose stream reaches the old one's next byte at a
// segment boundary: from there on a segment at that byte is the new
// connection's (here sent again), not the old stream going on.
func TestTCPReusedTupleMeetsOld(t *testing.T) {
	d, st, rec := newDecoder(t, nil)
	a1 := newConn(t, ethernet, alice4, bob4, 1000)
	feed(d, pk(a1.syn()), pk(a1.data(ack.text)))
	// Connection 2 starts 50 bytes behind connection 1's first byte; its
	// first segment ends where connection 1's next byte is.
	cut := 50 + len(ack.text)
	a2 := newConn(t, ethernet, alice4, bob4, 1001-50)
	head := pk(a2.data(invite.text[:cut]))
	rest := pk(a2.data(invite.text[cut:]))
	feed(d, head, rest, rest, pk(a2.data(bye.text)))
	if w := want(ack, invite, bye); !sameMsgs(rec.msgs, w) {
		t.Errorf("messages = %v, want %v", rec.msgs, w)
	}
	if g, w := counts(st), map[string]uint64{"requests": 3, "tcp_flows": 1, "tcp_resyncs": 1, "tcp_retrans": 1}; !sameCounts(g, w) {
		t.Errorf("counts = %v, want %v", g, w)
	}
}
