package stream

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// Config bounds TCP stream reassembly. One flow direction holds at most
// MaxBufferBytes of a partial message (its buffer may have up to twice
// that capacity) plus 2 × MaxBufferBytes of held-back segments; all flows
// of the table together hold at most MaxMemoryBytes of both (see
// [Table]), beside about 350 bytes of state per flow. Flows that carry
// whole messages per segment hold no buffer at all.
type Config struct {
	MaxFlows       int           // flows tracked at once; past it the least recently seen is evicted
	FlowTimeout    time.Duration // a flow with no segment for this long (capture time) is forgotten
	MaxBufferBytes int           // bytes of one partial SIP message held per flow direction
	MaxOutOfOrder  int           // out-of-order segments held per flow before skipping the gap
	// MaxMemoryBytes bounds the buffers and held-back segments of all
	// flows together, at least 4 × MaxBufferBytes. Past it the flows
	// that hold memory and were least recently active give it up: idle
	// buffers are released, then such flows are evicted (reason memory).
	MaxMemoryBytes int64
	// HEP frames HEPv3 packets on a stream that starts with the HEP magic
	// and hands them to [Sink.HEP]; without it such a stream is not SIP.
	// The decoder sets it from its own HEP configuration.
	HEP bool
}

// DefaultConfig returns 65,536 flows, a 5 minute timeout, 128 KiB per
// flow, 16 held-back segments and a 64 MiB memory budget.
func DefaultConfig() Config {
	return Config{MaxFlows: 65536, FlowTimeout: 5 * time.Minute, MaxBufferBytes: 128 << 10, MaxOutOfOrder: 16,
		MaxMemoryBytes: DefaultMaxMemoryBytes}
}

// DefaultMaxMemoryBytes is the default memory budget of a [Table]: 64 MiB,
// room for 500 flows with a full 128 KiB buffer or 16,000 with a 4 KiB
// partial message at the same instant.
const DefaultMaxMemoryBytes = 64 << 20

func (c Config) validate() error {
	switch {
	case c.MaxFlows < 1:
		return fmt.Errorf("tcp max flows %d: must be at least 1", c.MaxFlows)
	case c.FlowTimeout <= 0:
		return fmt.Errorf("tcp flow timeout %v: must be positive", c.FlowTimeout)
	case c.MaxBufferBytes < 1024:
		return fmt.Errorf("tcp max buffer %d bytes: must be at least 1024", c.MaxBufferBytes)
	case c.MaxOutOfOrder < 0:
		return fmt.Errorf("tcp max out-of-order segments %d: must not be negative", c.MaxOutOfOrder)
	case c.MaxMemoryBytes < 4*int64(c.MaxBufferBytes):
		return fmt.Errorf("tcp max memory %d bytes: must be at least 4 × the %d byte flow buffer", c.MaxMemoryBytes, c.MaxBufferBytes)
	}
	return nil
}

// TCP header flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
)

// Key identifies one direction of a TCP connection; IPv4 addresses are
// stored IPv4-mapped. Zone tells apart address spaces that overlap: the
// decoder sets it from the VLAN IDs, MPLS labels and tunnel identifiers
// (VXLAN and Geneve VNI, GRE key) the packet came through, 0 for none.
type Key struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	Zone             uint64
}

// tcpFlow is the reassembly state of one direction of a connection.
type tcpFlow struct {
	key       Key
	next      uint32     // sequence number of the next byte expected
	first     uint32     // sequence number of the stream's first byte, at most ResyncWindow behind next: data behind it was never seen
	head      uint64     // hash of the headLen bytes from first, when a segment started there (headLen 0: none yet)
	left      leftStream // the stream left at the last resync, while it may go on
	hunting   bool       // not at a message boundary: look for a line that starts one
	probation bool       // the message being framed was found inside a segment: it must have a CSeq and no malformed header line
	hep       bool       // the stream carries HEPv3 packets, not SIP
	fresh     bool       // after the SYN, before the first data: SIP or HEP is not known yet
	shown     bool       // the stream has shown SIP, HEP or WebSocket: out-of-order segments may be held
	skipping  bool       // inside the body of a message handed on already, until bodyEnd
	headLen   uint16     // bytes hashed in head
	bodyEnd   uint32     // sequence number after that body
	buf       []byte     // start of a SIP message not yet complete
	held      []heldSegment
	heldSize  int
	mem       int   // bytes counted against the table's budget: cap(buf) + heldSize
	lastSeen  int64 // capture time of the last segment, Unix nanoseconds

	ws wsState // SIP over WebSocket (RFC 7118): handshake and framing state

	links [numLists]listLinks // places in the table's recency lists
}

// leftStream is what a flow keeps of the stream it left at a resync: a
// second candidate for the segments that follow (see [Table], Recovery).
type leftStream struct {
	next, first uint32 // its next byte expected and its first byte
	head        uint64 // its tcpFlow.head and headLen
	headLen     uint16
	ok          bool // kept: the flow may go back to it
}

// headBytes bounds the bytes of a stream's first segment that
// tcpFlow.head hashes: enough to cover the start line, Via, From, To and
// Call-ID of most SIP messages.
const headBytes = 512

// The recency lists of a [Table], most recently active flow first.
const (
	seenList = iota // every flow
	memList         // the flows holding memory (mem > 0)
	numLists
)

// listLinks are a flow's neighbours in one recency list.
type listLinks struct{ newer, older *tcpFlow }

// listEnds are the two ends of one recency list.
type listEnds struct{ newest, oldest *tcpFlow }

type heldSegment struct {
	seq  uint32
	data []byte
}

// keepBufferCap is the buffer capacity a flow keeps once its partial message
// is complete; larger buffers are released.
const keepBufferCap = 8 << 10

// Table reassembles the TCP streams of one packet source (RFC 9293
// sequence space): it puts segments in order, drops data seen already,
// frames SIP messages by Content-Length (RFC 3261 §18.3), HEPv3 packets by
// their length and WebSocket messages by their frames, and hands each to
// its [Sink]. It is not safe for concurrent use; its [Stats] may be read
// concurrently.
//
// Recovery. A segment behind the first byte of the flow's stream (the
// byte after the SYN, or the first byte captured), by any amount, cannot
// be a retransmission: nothing was seen there. Nor can a segment more
// than [ResyncWindow] behind or ahead of the next expected byte be a
// retransmission or out of order. Either is a new connection on the same
// addresses and ports whose SYN was not captured (its initial sequence
// number anywhere), a stream that lost more than can ever be filled, or
// bytes sent before the capture began and sent again: the flow starts
// again there (counted in Stats.Resyncs) and hunts for a message start.
// A TCP keep-alive probe (one byte just behind the next, RFC 9293 §3.8.4)
// stays a retransmission.
//
// The stream left is kept as a second candidate, so that when the
// segment was a retransmission of bytes sent before the capture, the
// stream it interrupted goes on: a segment at the left stream's next byte
// (and not at the current one's), or at its first byte carrying the bytes
// seen there (the sender sends everything again from before the capture,
// go-back-N), takes the flow back to it (counted in Stats.Resyncs too),
// the bytes of both streams seen; a message of the current stream whose
// header is complete is handed on. A further resync keeps the candidate
// (an earlier segment sent again); it is given up once the current
// stream has reached its next byte (a segment there is then the current
// stream's) or has carried ResyncWindow bytes, and at a SYN. Segments of
// a new connection land on it by chance only.
//
// Hunting looks at the start of each segment and at every line inside it
// that starts a SIP message ([sip.IsStart]); a message found inside a
// segment counts only if its header has a CSeq and no malformed line, so
// that a status line quoted in a body (message/sipfrag) is not taken for
// one.
//
// Large bodies. A SIP message whose header and body do not fit in
// MaxBufferBytes is handed on as soon as its header is complete, and its
// body is then skipped by Content-Length without being buffered: a body
// of any size up to [sip.MaxBodyBytes] is counted, and what follows it is
// framed. Such a message is handed on with its header only as its bytes
// (the empty line included): the same whatever the segmentation, which
// keeps the dedup key of two copies of it equal. So is a message whose
// header was complete when a gap, a resynchronisation or the end of the
// flow (FIN, RST) cut its body; a gap inside a body skipped by
// Content-Length does not lose the messages after it.
//
// Memory. Out-of-order segments are held only for a flow that has shown
// SIP, HEP or a WebSocket upgrade, or when the segment itself starts a SIP
// message; other flows (HTTPS, a backup on the mirror) skip ahead at once
// instead. Config.MaxMemoryBytes bounds what all flows hold; the budget may
// be exceeded by the growth of one flow during one segment, after which
// the least recently active flows holding memory give it up.
type Table struct {
	cfg       Config
	stats     *Stats
	sink      Sink
	msg       sip.Message // scratch of the message being framed
	flows     map[Key]*tcpFlow
	lists     [numLists]listEnds
	mem       int64 // bytes held by all flows: the sum of their mem
	free      []*tcpFlow
	lastSweep int64
	seed      maphash.Seed // of tcpFlow.head
}

// ResyncWindow is how far, in sequence space, a segment may be behind the
// next expected byte and still be a retransmission, or ahead of it and
// still be out of order: 1 MiB, far more than a SIP connection has in
// flight, and far more than a flow holds back (2 × Config.MaxBufferBytes).
// A segment behind the next byte must also be within the bytes of the
// stream seen (not behind its first byte) to be a retransmission: a new
// connection's random initial sequence number falls inside both with a
// chance of the bytes seen, at most 1 MiB, in 4 GiB.
const ResyncWindow = 1 << 20

// New returns a table that counts into stats and hands what it frames to
// sink, or an error when cfg is out of range.
func New(cfg Config, stats *Stats, sink Sink) (*Table, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Table{cfg: cfg, stats: stats, sink: sink, flows: make(map[Key]*tcpFlow), seed: maphash.MakeSeed()}, nil
}

// Reset forgets every flow, as when a capture file is read again from its
// start.
func (t *Table) Reset() {
	for t.lists[seenList].oldest != nil {
		t.remove(t.lists[seenList].oldest)
	}
	t.lastSweep = 0
}

// Segment takes one TCP segment of the direction k, captured at now (Unix
// nanoseconds; for the flow timeout): its sequence number, header flags
// and payload, and cut, the bytes of payload the capture left out (the
// snap length cut the packet short of its IP length): a gap right after
// payload, skipped at once. It does not allocate for in-order segments of
// a known flow.
func (t *Table) Segment(k *Key, seq uint32, flags uint8, payload []byte, cut int, now int64) {
	t.sweep(now)
	f := t.flows[*k]
	if f == nil {
		if len(payload) == 0 && flags&tcpSYN == 0 {
			return // a pure ACK, FIN or RST of a flow we do not track
		}
		f = t.add(k, now)
		if flags&tcpSYN == 0 {
			f.next, f.first, f.hunting = seq, seq, true // joined mid-stream
		}
	} else {
		t.touch(f, now)
	}
	if flags&tcpSYN != 0 {
		if f.next != seq+1 {
			t.flush(f) // a new connection: what the old one left in order
		}
		seq++
		f.next, f.first, f.headLen, f.left.ok = seq, seq, 0, false
		f.hunting, f.probation, f.hep, f.fresh, f.skipping = false, false, false, true, false
		f.ws = wsState{}
		f.buf = f.buf[:0]
		f.dropHeld()
	}
	if len(payload) > 0 {
		t.data(f, seq, payload)
	}
	if cut > 0 {
		t.cutTail(f, seq+uint32(len(payload)), cut)
	}
	if flags&(tcpFIN|tcpRST) != 0 {
		t.flush(f)
		t.remove(f)
		return
	}
	t.account(f)
}

// cutTail skips n bytes at at that the capture did not keep, when the
// stream has reached at (the segment was in order).
func (t *Table) cutTail(f *tcpFlow, at uint32, n int) {
	if f.next != at {
		return // the segment was held or seen already: found as a gap later
	}
	t.gapTo(f, at+uint32(n))
	if len(f.held) > 0 {
		t.drainHeld(f)
	}
}

// gapTo counts a gap and goes on from next, ahead of the stream: a
// message whose header is complete is handed on; a body being skipped by
// Content-Length goes on being skipped when next is inside it (the next
// message starts where it ends), otherwise the flow hunts for a message
// start.
func (t *Table) gapTo(f *tcpFlow, next uint32) {
	t.stats.Gaps.Add(1)
	t.cutMessage(f)
	if f.skipping && int32(f.bodyEnd-next) > 0 {
		f.hunting = false
	} else {
		f.hunting, f.skipping = true, false
	}
	f.next, f.probation = next, false
	f.ws = wsState{}
}

// flush hands on what a flow holds before its state is dropped: held
// segments are placed from the lowest (skipping the gap before them,
// counted), and a message whose header is complete is handed on with its
// header as its bytes. The flow is left hunting.
func (t *Table) flush(f *tcpFlow) {
	if len(f.held) > 0 {
		t.skipGap(f)
	}
	t.cutMessage(f)
	f.buf = f.buf[:0]
	f.hunting, f.probation, f.skipping = true, false, false
	f.ws = wsState{}
}

// cutMessage hands on the SIP message at the start of the flow buffer when
// its header is complete but its body is not (a gap or the end of the
// flow cuts it), and sets the flow to skip the rest of the body. It
// empties the buffer.
func (t *Table) cutMessage(f *tcpFlow) {
	data := f.buf
	f.buf = f.buf[:0]
	if f.ws.mode != wsOff || f.hep || len(data) == 0 {
		return
	}
	msg := &t.msg
	err := sip.Parse(data, msg)
	switch err {
	case sip.ErrNotSIP, sip.ErrStatusLine, sip.ErrStatusCode, sip.ErrRequestLine, sip.ErrContentLength:
		return
	}
	hl := msg.HeaderLength
	if !headerEnded(data, hl) || msg.ContentLength <= 0 || (f.probation && (msg.CSeqMethod == nil || err != nil)) {
		return
	}
	start := f.next - uint32(len(data))
	t.handOn(f, data[:hl], msg, err)
	f.skipping, f.bodyEnd = true, start+uint32(hl+msg.ContentLength)
}

// handOn hands on one SIP message framed in the flow.
func (t *Table) handOn(f *tcpFlow, p []byte, msg *sip.Message, err error) {
	f.shown, f.probation = true, false
	t.sink.Message(p, msg, err)
}

// data places payload at seq in the flow's stream.
func (t *Table) data(f *tcpFlow, seq uint32, p []byte) {
	seen := t.seen(f)
	if f.left.ok && t.goesOn(f, seq, p) {
		t.resume(f)
		seen = t.seen(f)
	}
	// In int64: the distance may be -2^31, whose negation does not fit
	// an int32 (a segment exactly half the sequence space away once
	// sliced p at a negative offset and panicked).
	d := int64(int32(seq - f.next))
	if d > ResyncWindow || (d < 0 && -d > int64(seen) && !(d == -1 && len(p) == 1)) {
		t.resync(f, seq)
		d = 0
	}
	if seq == f.first && f.headLen == 0 {
		n := min(len(p), headBytes)
		f.head, f.headLen = maphash.Bytes(t.seed, p[:n]), uint16(n)
	}
	if d < 0 {
		t.stats.Retransmitted.Add(1)
		if -d >= int64(len(p)) {
			return
		}
		p = p[-d:]
	} else if d > 0 {
		t.stats.OutOfOrder.Add(1)
		if !f.shown && !sip.IsStart(p) {
			// Nothing says this stream is SIP: hold nothing for it,
			// go on from here.
			t.restart(f, seq)
			t.streamAt(f, p)
			return
		}
		if len(f.held) < t.cfg.MaxOutOfOrder && f.heldSize+len(p) <= 2*t.cfg.MaxBufferBytes {
			f.held = append(f.held, heldSegment{seq: seq, data: bytes.Clone(p)})
			f.heldSize += len(p)
			return
		}
		// Too much is missing: give up on the gap, go on from the lowest
		// sequence number we have. p is accounted in heldSize like the
		// others, since drainHeld subtracts every segment it places:
		// without it heldSize went negative and loosened the byte bound
		// on held segments after each gap.
		f.held = append(f.held, heldSegment{seq: seq, data: p})
		f.heldSize += len(p)
		t.skipGap(f)
		return
	}
	t.streamAt(f, p)
	if len(f.held) > 0 {
		t.drainHeld(f)
	}
}

// streamAt consumes p, which starts at f.next, and advances f.next.
func (t *Table) streamAt(f *tcpFlow, p []byte) {
	t.stream(f, p)
	f.next += uint32(len(p))
}

// seen returns how many bytes of the flow's stream lie behind the next
// byte expected, from its first byte: at most ResyncWindow (the first
// byte follows the next one at that distance). It gives up the left
// stream once the current one has reached its next byte or has carried
// ResyncWindow bytes.
func (t *Table) seen(f *tcpFlow) uint32 {
	n := f.next - f.first
	if f.left.ok && (n >= ResyncWindow || f.left.next-f.first <= n) {
		f.left.ok = false
	}
	if n > ResyncWindow {
		f.first, f.headLen = f.next-ResyncWindow, 0
		n = ResyncWindow
	}
	return n
}

// goesOn reports whether the segment at seq carrying p goes on the stream
// left at the last resync rather than the current one: it starts at the
// left stream's next byte and not at the current one's, or at the left
// stream's first byte with the bytes seen there.
func (t *Table) goesOn(f *tcpFlow, seq uint32, p []byte) bool {
	l := &f.left
	if seq == l.next {
		return seq != f.next
	}
	return seq == l.first && l.headLen > 0 && len(p) >= int(l.headLen) && maphash.Bytes(t.seed, p[:l.headLen]) == l.head
}

// resync starts the flow again at seq, where no retransmission or
// out-of-order segment can be: what the old stream left is handed on
// first, and the old stream is kept as the left one unless one is kept
// already.
func (t *Table) resync(f *tcpFlow, seq uint32) {
	t.stats.Resyncs.Add(1)
	t.flush(f)
	if !f.left.ok {
		f.left = leftStream{next: f.next, first: f.first, head: f.head, headLen: f.headLen, ok: true}
	}
	t.restart(f, seq)
	f.first, f.headLen = seq, 0
}

// resume takes the flow back to the stream left at the last resync, at
// its next byte, hunting: a message of the current stream whose header is
// complete is handed on, held segments are dropped (the current stream's
// or sent again of the left one), and the first byte is the earlier of
// the two streams'.
func (t *Table) resume(f *tcpFlow) {
	t.stats.Resyncs.Add(1)
	l := f.left
	f.left.ok = false
	t.cutMessage(f)
	t.restart(f, l.next)
	if int32(l.first-f.first) < 0 {
		f.first, f.head, f.headLen = l.first, l.head, l.headLen
	}
}

// restart makes seq the next byte expected, hunting for a message start
// there; held segments and a partial message are dropped.
func (t *Table) restart(f *tcpFlow, seq uint32) {
	f.dropHeld()
	f.buf = f.buf[:0]
	f.fresh, f.probation, f.hep, f.skipping = false, false, false, false
	f.ws = wsState{}
	f.hunting = true
	f.next = seq
}

// drainHeld feeds held segments that have become in order.
func (t *Table) drainHeld(f *tcpFlow) {
	for progress := true; progress; {
		progress = false
		for i := 0; i < len(f.held); i++ {
			s := f.held[i]
			d := int32(s.seq - f.next)
			if d > 0 {
				continue
			}
			f.held = slices.Delete(f.held, i, i+1)
			f.heldSize -= len(s.data)
			i--
			if back := -int64(d); back < int64(len(s.data)) {
				t.streamAt(f, s.data[back:])
				progress = true
			}
		}
	}
}

// skipGap jumps over missing data to the held segment with the lowest
// sequence number, counts the gap and resynchronises on the next message
// start.
func (t *Table) skipGap(f *tcpFlow) {
	lowest := 0
	for i := range f.held {
		if int32(f.held[i].seq-f.held[lowest].seq) < 0 {
			lowest = i
		}
	}
	t.gapTo(f, f.held[lowest].seq)
	t.drainHeld(f)
	if len(f.held) > 0 {
		// Still a gap: what is left cannot be placed any more.
		f.dropHeld()
	}
}

func (f *tcpFlow) dropHeld() {
	clear(f.held)
	f.held = f.held[:0]
	f.heldSize = 0
}

// stream consumes in-order stream bytes, p starting at f.next: frames and
// emits every complete SIP message, skips the body of one handed on at
// the end of its header, and keeps the start of an incomplete one.
func (t *Table) stream(f *tcpFlow, p []byte) {
	t.streamTo(f, p, f.next+uint32(len(p)))
}

// streamTo is stream with end, the sequence number after p.
func (t *Table) streamTo(f *tcpFlow, p []byte, end uint32) {
	if f.ws.mode != wsOff {
		t.wsStream(f, p)
		return
	}
	if f.skipping {
		n := int64(int32(f.bodyEnd - (end - uint32(len(p)))))
		if n >= int64(len(p)) {
			f.skipping = n > int64(len(p))
			return
		}
		f.skipping = false
		if n > 0 {
			p = p[n:]
		}
	}
	if f.fresh {
		f.fresh = false
		f.hep = t.cfg.HEP && hasHEP3Magic(p)
		f.shown = f.shown || f.hep
		if !f.hep && t.wsDetect(f, p) {
			t.wsStream(f, p)
			return
		}
	}
	if f.hunting {
		p = trimCRLF(p)
		if len(p) == 0 {
			return
		}
		f.hep = t.cfg.HEP && hasHEP3Magic(p)
		switch {
		case f.hep:
			f.shown = true
		case t.wsDetect(f, p):
			f.hunting = false
			t.wsStream(f, p)
			return
		case !sip.IsStart(p):
			t.sink.Drop(sip.ErrNotSIP)
			i := nextStart(p)
			if i < 0 {
				return
			}
			p, f.probation = p[i:], true
		}
		f.hunting = false
	}
	data := p // ends at end
	buffered := len(f.buf) > 0
	if buffered {
		if len(f.buf)+len(p) > t.cfg.MaxBufferBytes {
			t.sink.Drop(sip.ErrTooLong)
			f.buf = f.buf[:0]
			f.hunting, f.probation = true, false
			t.streamTo(f, p, end)
			return
		}
		f.buf = append(f.buf, p...)
		data = f.buf
	}
	for {
		data = trimCRLF(data)
		if len(data) == 0 {
			break
		}
		if f.hep {
			n, err := hep.PacketLength(data)
			if err == hep.ErrIncomplete || (err == nil && n > len(data) && n <= t.cfg.MaxBufferBytes) {
				break
			}
			if err == nil && n > t.cfg.MaxBufferBytes {
				err = hep.ErrTooLarge
			}
			if err != nil {
				t.sink.HEPError(err)
				data, f.hunting, f.hep = nil, true, false
				break
			}
			t.sink.HEP(data[:n])
			data = data[n:]
			continue
		}
		// Wait for the whole start line before judging it.
		if bytes.IndexByte(data[:min(len(data), sip.MaxLineBytes+2)], '\n') < 0 {
			if len(data) <= sip.MaxLineBytes && isTokenChar(data[0]) {
				break
			}
			t.sink.Drop(sip.ErrNotSIP)
			data, f.hunting = t.hunt(f, data)
			continue
		}
		// One scan gives both the fields and the frame: the header up to
		// the empty line plus Content-Length body bytes (RFC 3261 §18.3).
		msg := &t.msg
		err := sip.Parse(data, msg)
		switch err {
		case sip.ErrNotSIP:
			t.sink.Drop(sip.ErrNotSIP)
			data, f.hunting = t.hunt(f, data)
			continue
		case sip.ErrStatusLine, sip.ErrStatusCode, sip.ErrRequestLine:
			t.sink.Message(data, msg, err) // counts the parse error; nothing to frame by
			data, f.hunting = t.hunt(f, data)
			continue
		}
		f.shown = true // a start line of SIP: out-of-order segments may be held
		hl := msg.HeaderLength
		if !headerEnded(data, hl) {
			if len(data) >= sip.MaxHeaderBytes {
				t.sink.Drop(sip.ErrTooLong)
				data, f.hunting = t.hunt(f, data)
				continue
			}
			break
		}
		if f.probation && (msg.CSeqMethod == nil || err != nil) {
			// Found inside a segment, and no CSeq or a malformed
			// header (such as the start line of the message after
			// it): a status or request line quoted in a body
			// (message/sipfrag), not a message.
			t.sink.Drop(sip.ErrNotSIP)
			data, f.hunting = t.hunt(f, data)
			continue
		}
		cl := msg.ContentLength
		if cl < 0 {
			if err == sip.ErrContentLength {
				t.sink.Drop(sip.ErrContentLength)
				data, f.hunting = t.hunt(f, data)
				continue
			}
			cl = 0 // no Content-Length on a stream: no body
		}
		if cl > sip.MaxBodyBytes {
			t.sink.Drop(sip.ErrTooLong)
			data, f.hunting = t.hunt(f, data)
			continue
		}
		if hl+cl > len(data) {
			if hl+cl <= t.cfg.MaxBufferBytes {
				break // body still arriving
			}
			// Too large to buffer: hand on the header now and skip
			// the body as it arrives.
			f.skipping, f.bodyEnd = true, end+uint32(hl+cl-len(data))
			t.handOn(f, data[:hl], msg, err)
			data = nil
			break
		}
		t.handOn(f, data[:hl+cl], msg, err)
		data = data[hl+cl:]
	}
	switch {
	case len(data) == 0:
		f.buf = f.buf[:0]
		if cap(f.buf) > keepBufferCap {
			f.buf = nil
		}
	case len(data) > t.cfg.MaxBufferBytes:
		t.sink.Drop(sip.ErrTooLong)
		f.buf, f.hunting, f.probation = f.buf[:0], true, false
	case buffered:
		f.buf = f.buf[:copy(f.buf, data)]
	default:
		f.buf = append(f.buf[:0], data...)
	}
}

// hunt returns where, in data that does not start a message, the next
// line starting a SIP message is, and whether none was found (the flow
// then hunts at the next segment). A message found so is on probation.
func (t *Table) hunt(f *tcpFlow, data []byte) ([]byte, bool) {
	f.probation = false
	if f.hep {
		return nil, true
	}
	i := nextStart(data)
	if i < 0 {
		return nil, true
	}
	f.probation = true
	return data[i:], false
}

// nextStart returns the offset of the first line after the start of p
// that starts a SIP message ([sip.IsStart]), or -1. It does not look at
// p's first line.
func nextStart(p []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(p) && isTokenChar(p[i]) && sip.IsStart(p[i:]) {
			return i
		}
	}
}

// headerEnded reports whether the header of data, hl bytes long as
// sip.Parse measured it, ends with its empty line (CRLF CRLF, or LF LF).
func headerEnded(data []byte, hl int) bool {
	return hl >= 2 && data[hl-1] == '\n' && (data[hl-2] == '\n' || (hl >= 3 && data[hl-2] == '\r' && data[hl-3] == '\n'))
}

// hasHEP3Magic reports whether p starts with the HEPv3 magic ("HEP3", or
// "EEP3" of older agents); HEPv1/v2 are datagram-only.
func hasHEP3Magic(p []byte) bool {
	return len(p) >= 4 && (string(p[:4]) == "HEP3" || string(p[:4]) == "EEP3")
}

// trimCRLF drops leading CR and LF bytes: keep-alives between messages
// (RFC 5626 §3.5.1) and stray line ends.
func trimCRLF(p []byte) []byte {
	for len(p) > 0 && (p[0] == '\r' || p[0] == '\n') {
		p = p[1:]
	}
	return p
}

// add starts tracking k, evicting the least recently seen flow when the
// table is full.
func (t *Table) add(k *Key, now int64) *tcpFlow {
	if len(t.flows) >= t.cfg.MaxFlows {
		t.stats.evict(EvictLimit)
		t.remove(t.lists[seenList].oldest)
	}
	var f *tcpFlow
	if n := len(t.free); n > 0 {
		f, t.free = t.free[n-1], t.free[:n-1]
	} else {
		f = new(tcpFlow)
	}
	f.key, f.lastSeen = *k, now
	t.flows[*k] = f
	t.pushNewest(seenList, f)
	t.stats.Flows.Add(1)
	return f
}

// maxFreeFlows bounds the flow structs kept for reuse.
const maxFreeFlows = 1024

func (t *Table) remove(f *tcpFlow) {
	delete(t.flows, f.key)
	t.unlink(seenList, f)
	t.stats.Flows.Add(-1)
	if f.mem > 0 {
		t.unlink(memList, f)
		t.mem -= int64(f.mem)
		t.stats.Memory.Store(t.mem)
	}
	buf := f.buf[:0]
	if cap(buf) > keepBufferCap {
		buf = nil
	}
	f.dropHeld()
	*f = tcpFlow{buf: buf, held: f.held[:0]}
	if len(t.free) < maxFreeFlows {
		t.free = append(t.free, f)
	}
}

func (t *Table) touch(f *tcpFlow, now int64) {
	f.lastSeen = now
	if t.lists[seenList].newest != f {
		t.unlink(seenList, f)
		t.pushNewest(seenList, f)
	}
	if f.mem > 0 && t.lists[memList].newest != f {
		t.unlink(memList, f)
		t.pushNewest(memList, f)
	}
}

// account brings the table's memory count up to date after f's buffer or
// held segments changed, and enforces Config.MaxMemoryBytes.
func (t *Table) account(f *tcpFlow) {
	m := cap(f.buf) + f.heldSize
	if m == f.mem {
		return
	}
	switch {
	case f.mem == 0:
		t.pushNewest(memList, f)
	case m == 0:
		t.unlink(memList, f)
	}
	t.mem += int64(m - f.mem)
	f.mem = m
	if t.mem > t.cfg.MaxMemoryBytes {
		t.reclaim(f)
	}
	t.stats.Memory.Store(t.mem)
}

// reclaim brings memory under the budget, taking it from the least
// recently active flows other than keep that hold some: a buffer holding
// nothing is released, a flow holding data is evicted (reason memory).
func (t *Table) reclaim(keep *tcpFlow) {
	for v := t.lists[memList].oldest; v != nil && t.mem > t.cfg.MaxMemoryBytes; {
		next := v.links[memList].newer
		switch {
		case v == keep:
		case len(v.buf) == 0 && v.heldSize == 0:
			v.buf = nil
			t.unlink(memList, v)
			t.mem -= int64(v.mem)
			v.mem = 0
		default:
			t.stats.evict(EvictMemory)
			t.remove(v)
		}
		v = next
	}
}

// pushNewest puts f at the newest end of list l.
func (t *Table) pushNewest(l int, f *tcpFlow) {
	e, fl := &t.lists[l], &f.links[l]
	fl.older, fl.newer = e.newest, nil
	if e.newest != nil {
		e.newest.links[l].newer = f
	}
	e.newest = f
	if e.oldest == nil {
		e.oldest = f
	}
}

// unlink takes f off list l.
func (t *Table) unlink(l int, f *tcpFlow) {
	e, fl := &t.lists[l], &f.links[l]
	if fl.newer != nil {
		fl.newer.links[l].older = fl.older
	} else {
		e.newest = fl.older
	}
	if fl.older != nil {
		fl.older.links[l].newer = fl.newer
	} else {
		e.oldest = fl.newer
	}
	*fl = listLinks{}
}

// sweepInterval is how often, in capture time, idle flows are looked for.
const sweepInterval = int64(time.Second)

// sweep forgets flows idle for longer than the flow timeout. The recency
// list makes it proportional to the flows removed.
func (t *Table) sweep(now int64) {
	if now-t.lastSweep < sweepInterval && now >= t.lastSweep {
		return
	}
	t.lastSweep = now
	limit := now - int64(t.cfg.FlowTimeout)
	for o := t.lists[seenList].oldest; o != nil && o.lastSeen < limit; o = t.lists[seenList].oldest {
		t.stats.evict(EvictTimeout)
		t.remove(o)
	}
}

// isTokenChar reports whether c may appear in a SIP token (RFC 3261 §25.1),
// the first byte of a method or of "SIP/2.0".
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}
