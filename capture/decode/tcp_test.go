package decode_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// split cuts s at the given offsets.
func split(s string, at ...int) []string {
	var out []string
	prev := 0
	for _, a := range at {
		out = append(out, s[prev:a])
		prev = a
	}
	return append(out, s[prev:])
}

// bodyStart returns the offset of the body of message s.
func bodyStart(s string) int { return strings.Index(s, "\r\n\r\n") + 4 }

var (
	invite  = messages[0]
	ringing = messages[2]
	ok      = messages[3]
	ack     = messages[4]
	bye     = messages[5]
	okBye   = messages[6]
	compact = messages[13]
)

// step is one segment of a TCP exchange in a table test.
type step struct {
	dir   int    // 0: alice to bob, 1: bob to alice
	seq   int64  // relative sequence number (from the SYN); -1: next in order
	flags int    // 0: ACK|PSH
	data  string // payload
}

// run plays steps on a connection pair starting with a SYN from each side
// (unless noSYN) with initial sequence numbers isn.
func run(t *testing.T, d *decode.Decoder, isn uint32, noSYN bool, steps []step) {
	t.Helper()
	conns := [2]*tcpConn{newConn(t, ethernet, alice4, bob4, isn), newConn(t, ethernet, bob4, alice4, isn+0x10000)}
	isns := [2]uint32{isn + 1, isn + 0x10001}
	if !noSYN {
		for _, c := range conns {
			lt, f := c.syn()
			d.Packet(lt, f, 0, len(f))
		}
	}
	for _, s := range steps {
		c := conns[s.dir]
		flags := s.flags
		if flags == 0 {
			flags = fACK | fPSH
		}
		var lt layers.LinkType
		var f []byte
		if s.seq < 0 {
			lt, f = c.next(flags, []byte(s.data))
		} else {
			lt, f = c.at(isns[s.dir]+uint32(s.seq), flags, []byte(s.data))
			if end := isns[s.dir] + uint32(s.seq) + uint32(len(s.data)); int32(end-c.seq) > 0 {
				c.seq = end
			}
		}
		d.Packet(lt, f, 0, len(f))
	}
}

// in returns steps sending each part in order in direction dir.
func in(dir int, parts ...string) []step {
	var s []step
	for _, p := range parts {
		s = append(s, step{dir: dir, seq: -1, data: p})
	}
	return s
}

// at returns one step placing data at relative sequence number seq.
func at(dir int, seq int, data string) step { return step{dir: dir, seq: int64(seq), data: data} }

func TestTCPReassembly(t *testing.T) {
	inv, okt, cmp := invite.text, ok.text, compact.text
	big := func() string {
		h := strings.Replace(invite.text, "User-Agent:", "X-Filler: "+strings.Repeat("x", 3000)+"\r\nUser-Agent:", 1)
		return h
	}()
	small := stream.DefaultConfig()
	small.MaxBufferBytes = 1024
	small.MaxOutOfOrder = 4
	n1 := len(inv)
	n2 := n1 + len(okt)
	for _, tc := range []struct {
		name   string
		cfg    *stream.Config
		isn    uint32
		noSYN  bool
		steps  []step
		msgs   []got
		counts map[string]uint64 // tcp_flows 2 is implied when the SYNs are sent
	}{
		{name: "several messages in one segment", steps: in(0, inv+ack.text+bye.text),
			msgs: want(invite, ack, bye), counts: map[string]uint64{"requests": 3}},
		{name: "split inside the header", steps: in(0, split(inv, 100)...),
			msgs: want(invite), counts: map[string]uint64{"requests": 1}},
		{name: "split inside the start line", steps: in(0, split(inv, 10)...),
			msgs: want(invite), counts: map[string]uint64{"requests": 1}},
		{name: "split inside the body", steps: in(0, split(inv, bodyStart(inv)+20)...),
			msgs: want(invite), counts: map[string]uint64{"requests": 1}},
		{name: "split at the end of the header", steps: in(0, split(inv, bodyStart(inv))...),
			msgs: want(invite), counts: map[string]uint64{"requests": 1}},
		{name: "split in three", steps: in(0, split(inv, 50, bodyStart(inv)+5)...),
			msgs: want(invite), counts: map[string]uint64{"requests": 1}},
		{name: "split into single bytes", steps: in(0, split(okt, seqTo(len(okt))...)...),
			msgs: want(ok), counts: map[string]uint64{"responses": 1}},
		{name: "end of one message and start of the next", steps: in(0, split(inv+ack.text+bye.text, n1-10, n1+30)...),
			msgs: want(invite, ack, bye), counts: map[string]uint64{"requests": 3}},
		{name: "compact content length split in the body", steps: in(1, split(cmp+okBye.text, bodyStart(cmp)+7)...),
			msgs: want(compact, okBye), counts: map[string]uint64{"responses": 2}},
		{name: "retransmission", steps: []step{at(0, 0, inv), at(0, 0, inv), at(0, n1, ack.text)},
			msgs: want(invite, ack), counts: map[string]uint64{"requests": 2, "tcp_retrans": 1}},
		{name: "partial overlap", steps: []step{at(0, 0, inv[:200]), at(0, 100, inv[100:]), at(0, n1, ack.text)},
			msgs: want(invite, ack), counts: map[string]uint64{"requests": 2, "tcp_retrans": 1}},
		{name: "retransmission of an old message", steps: []step{at(0, 0, inv), at(0, n1, ack.text), at(0, 0, inv)},
			msgs: want(invite, ack), counts: map[string]uint64{"requests": 2, "tcp_retrans": 1}},
		{name: "out of order", steps: []step{at(0, n1, ack.text), at(0, 0, inv)},
			msgs: want(invite, ack), counts: map[string]uint64{"requests": 2, "tcp_out_of_order": 1}},
		{name: "out of order inside a message", steps: []step{at(0, 0, inv[:100]), at(0, 300, inv[300:]), at(0, 200, inv[200:300]), at(0, 100, inv[100:200])},
			msgs: want(invite), counts: map[string]uint64{"requests": 1, "tcp_out_of_order": 2}},
		{name: "out of order overlapping", steps: []step{at(0, 0, inv[:100]), at(0, 150, inv[150:]+ack.text), at(0, 100, inv[100:200])},
			msgs: want(invite, ack), counts: map[string]uint64{"requests": 2, "tcp_out_of_order": 1}},
		{name: "gap never filled", cfg: &small, steps: []step{
			at(0, 0, inv), // then ok (len(okt) bytes) goes missing
			at(0, n2, ack.text), at(0, n2+len(ack.text), bye.text), at(0, n2+len(ack.text)+len(bye.text), ack.text),
			at(0, n2+2*len(ack.text)+len(bye.text), bye.text), at(0, n2+2*len(ack.text)+2*len(bye.text), ack.text),
			at(0, n2+3*len(ack.text)+2*len(bye.text), bye.text),
		},
			msgs:   want(invite, ack, bye, ack, bye, ack, bye),
			counts: map[string]uint64{"requests": 7, "tcp_out_of_order": 5, "tcp_gaps": 1}},
		{name: "gap inside a message", cfg: &small, steps: []step{
			at(0, 0, inv[:100]), at(0, 200, inv[200:]), at(0, n1, ack.text), at(0, n1+len(ack.text), bye.text),
			at(0, n1+len(ack.text)+len(bye.text), ack.text), at(0, n1+2*len(ack.text)+len(bye.text), bye.text),
		},
			msgs:   want(ack, bye, ack, bye),
			counts: map[string]uint64{"requests": 4, "tcp_out_of_order": 5, "tcp_gaps": 1, "skip/not_sip": 1}},
		{name: "gap over the held byte bound", cfg: &small, steps: []step{
			at(0, 0, inv), at(0, n1+100, inv), at(0, 2*n1+100, inv+inv),
		},
			msgs:   want(invite, invite, invite, invite),
			counts: map[string]uint64{"requests": 4, "tcp_out_of_order": 2, "tcp_gaps": 1}},
		{name: "held byte bound after a gap", cfg: &small, steps: []step{
			// First gap: 900 + 1200 held bytes exceed 2 × 1024; both
			// are placed, so nothing is left held.
			at(0, 0, ack.text), at(0, 1000, strings.Repeat("a", 900)), at(0, 1900, strings.Repeat("b", 1200)),
			// Second gap: the same sizes must again be more than may be held.
			at(0, 5000, strings.Repeat("c", 900)), at(0, 5900, strings.Repeat("d", 1200)),
		},
			msgs:   want(ack),
			counts: map[string]uint64{"requests": 1, "tcp_out_of_order": 4, "tcp_gaps": 2, "skip/not_sip": 4}},
		{name: "keep-alives between messages", steps: append(append(in(0, "\r\n\r\n", inv, "\r\n\r\n"), in(1, "\r\n", okt, "\r\n")...), in(0, "\r\n\r\n"+ack.text+"\r\n\r\n", "\r", "\n\r\n", bye.text)...),
			msgs: want(invite, ok, ack, bye), counts: map[string]uint64{"requests": 3, "responses": 1}},
		{name: "joined mid-stream", noSYN: true, steps: in(0, inv[bodyStart(inv)+10:], ack.text, bye.text),
			msgs: want(ack, bye), counts: map[string]uint64{"requests": 2, "tcp_flows": 1, "skip/not_sip": 1}},
		{name: "joined mid-stream at a keep-alive", noSYN: true, steps: in(0, "\r\n\r\n", ack.text),
			msgs: want(ack), counts: map[string]uint64{"requests": 1, "tcp_flows": 1}},
		{name: "sequence number wrap", isn: 1<<32 - 300, steps: in(0, split(inv+ack.text, 250, 350)...),
			msgs: want(invite, ack), counts: map[string]uint64{"requests": 2}},
		{name: "out of order across the wrap", isn: 1<<32 - 100, steps: []step{at(0, n1, ack.text), at(0, 0, inv)},
			msgs: want(invite, ack), counts: map[string]uint64{"requests": 2, "tcp_out_of_order": 1}},
		{name: "too long for the buffer", cfg: &small, steps: in(0, append(split(big, 900, 1800, 2700), ack.text)...),
			msgs: want(ack), counts: map[string]uint64{"requests": 1, "error/too_long": 1, "skip/not_sip": 3}},
		{name: "both directions", steps: []step{
			at(0, 0, inv[:300]), at(1, 0, ringing.text[:100]), at(0, 300, inv[300:]), at(1, 100, ringing.text[100:]+okt[:50]),
			at(1, len(ringing.text)+50, okt[50:]), at(0, n1, ack.text),
		},
			msgs: want(invite, ringing, ok, ack), counts: map[string]uint64{"requests": 2, "responses": 2}},
		{name: "http on a sip port", steps: in(0, string(http), string(httpR)),
			msgs: nil, counts: map[string]uint64{"skip/not_sip": 2}},
		{name: "tls on a sip port", steps: in(0, string(tlsHello), string(tlsHello)),
			msgs: nil, counts: map[string]uint64{"skip/not_sip": 2}},
		{name: "binary without line feeds", cfg: &small, steps: in(0, binNoLF(300), binNoLF(900), binNoLF(900), ack.text),
			msgs: want(ack), counts: map[string]uint64{"requests": 1, "skip/not_sip": 3}},
		{name: "bad content length", steps: in(0, "INVITE sip:a@b SIP/2.0\r\nl: x\r\n\r\n", "\r\n", ack.text),
			msgs: want(ack), counts: map[string]uint64{"requests": 1, "error/content_length": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, st, rec := newDecoder(t, tc.cfg)
			isn := tc.isn
			if isn == 0 {
				isn = 1000
			}
			run(t, d, isn, tc.noSYN, tc.steps)
			wc := tc.counts
			if !tc.noSYN {
				wc["tcp_flows"] = 2
			}
			if g := counts(st); !sameCounts(g, wc) {
				t.Errorf("counts = %v, want %v", g, wc)
			}
			if !sameMsgs(rec.msgs, tc.msgs) {
				t.Errorf("messages:\n got %v\nwant %v", rec.msgs, tc.msgs)
			}
		})
	}
}

func seqTo(n int) []int {
	s := make([]int, n-1)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func TestTCPFlowEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags int
	}{{"fin", fACK | fFIN}, {"rst", fRST}, {"fin with data", fACK | fFIN | fPSH}} {
		t.Run(tc.name, func(t *testing.T) {
			d, st, rec := newDecoder(t, nil)
			a := newConn(t, ethernet, alice4, bob4, 7)
			b := newConn(t, ethernet, bob4, alice4, 9)
			feed(d, pk(a.syn()), pk(b.syn()), pk(a.data(invite.text)), pk(b.data(ok.text)))
			if n := st.Stream.Flows.Load(); n != 2 {
				t.Fatalf("flows = %d, want 2", n)
			}
			var data []byte
			if tc.flags&fPSH != 0 {
				data = []byte(bye.text)
			}
			feed(d, pk(a.next(tc.flags, data)), pk(b.next(tc.flags, nil)))
			if n := st.Stream.Flows.Load(); n != 0 {
				t.Errorf("flows = %d, want 0", n)
			}
			// The last ACK of a closed flow does not start a new one.
			feed(d, pk(a.next(fACK, nil)))
			if n := st.Stream.Flows.Load(); n != 0 {
				t.Errorf("flows after the last ACK = %d, want 0", n)
			}
			w := want(invite, ok)
			if data != nil {
				w = append(w, got{0, "BYE"})
			}
			if !sameMsgs(rec.msgs, w) {
				t.Errorf("messages = %v, want %v", rec.msgs, w)
			}
		})
	}
}

func TestTCPEviction(t *testing.T) {
	t.Run("limit", func(t *testing.T) {
		cfg := stream.DefaultConfig()
		cfg.MaxFlows = 2
		d, st, rec := newDecoder(t, &cfg)
		var conns []*tcpConn
		for i := range 3 {
			src := alice4
			src = netip.AddrPortFrom(src.Addr(), uint16(40000+i))
			c := newConn(t, ethernet, src, bob4, 100)
			conns = append(conns, c)
			feed(d, pk(c.syn()), pk(c.data(invite.text[:200])))
		}
		if n := st.Stream.Evicted(stream.EvictLimit); n != 1 {
			t.Errorf("evicted(limit) = %d, want 1", n)
		}
		if n := st.Stream.Flows.Load(); n != 2 {
			t.Errorf("flows = %d, want 2", n)
		}
		// The evicted flow was the least recently seen, the first: the
		// rest of its message is now mid-stream and lost; the others
		// complete theirs.
		for _, c := range conns[1:] {
			feed(d, pk(c.data(invite.text[200:])))
		}
		if w := want(invite, invite); !sameMsgs(rec.msgs, w) {
			t.Errorf("messages = %v, want %v", rec.msgs, w)
		}
		// The first comes back mid-stream and evicts the second.
		feed(d, pk(conns[0].data(invite.text[200:])), pk(conns[0].data(ack.text)))
		if n := st.Stream.Evicted(stream.EvictLimit); n != 2 {
			t.Errorf("evicted(limit) = %d, want 2", n)
		}
		if w := want(invite, invite, ack); !sameMsgs(rec.msgs, w) {
			t.Errorf("messages = %v, want %v", rec.msgs, w)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		cfg := stream.DefaultConfig()
		cfg.FlowTimeout = time.Minute
		d, st, _ := newDecoder(t, &cfg)
		t0 := time.Unix(1700000000, 0)
		a := newConn(t, ethernet, alice4, bob4, 1)
		b := newConn(t, ethernet, alice6, bob6, 1)
		at := func(p packet, ts time.Time) packet { p.ts = ts; return p }
		feed(d, at(pk(a.syn()), t0), at(pk(b.syn()), t0.Add(30*time.Second)), at(pk(b.data(ack.text)), t0.Add(70*time.Second)))
		if n := st.Stream.Evicted(stream.EvictTimeout); n != 1 {
			t.Errorf("evicted(timeout) = %d, want 1", n)
		}
		if n := st.Stream.Flows.Load(); n != 1 {
			t.Errorf("flows = %d, want 1", n)
		}
		feed(d, at(pk(b.data(ack.text)), t0.Add(200*time.Second)))
		if n := st.Stream.Evicted(stream.EvictTimeout); n != 2 {
			t.Errorf("evicted(timeout) = %d, want 2", n)
		}
		if n := st.Stream.Flows.Load(); n != 1 {
			t.Errorf("flows = %d, want 1", n)
		}
		if n := st.Requests.Load(); n != 2 {
			t.Errorf("requests = %d, want 2", n)
		}
	})
	t.Run("reset", func(t *testing.T) {
		d, st, _ := newDecoder(t, nil)
		a := newConn(t, ethernet, alice4, bob4, 1)
		feed(d, pk(a.syn()), pk(a.data(invite.text[:100])))
		d.Reset()
		if n := st.Stream.Flows.Load(); n != 0 {
			t.Errorf("flows after Reset = %d, want 0", n)
		}
		feed(d, pk(a.data(invite.text[100:])), pk(a.data(ack.text)))
		if n := st.Requests.Load(); n != 1 {
			t.Errorf("requests = %d, want 1 (the ACK)", n)
		}
	})
}

// binNoLF returns n bytes of binary data (a TLS record) with no LF byte.
func binNoLF(n int) string {
	b := make([]byte, n)
	b[0], b[1], b[2] = 0x17, 0x03, 0x03
	for i := 3; i < n; i++ {
		b[i] = byte(i*7+11) | 0x80
	}
	return string(b)
}
