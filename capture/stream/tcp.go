package stream

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// Config bounds TCP stream reassembly. Worst-case memory is about
// MaxFlows × (MaxBufferBytes + 2 × MaxBufferBytes of held-back segments);
// flows that carry whole messages per segment hold no buffer at all.
type Config struct {
	MaxFlows       int           // flows tracked at once; past it the least recently seen is evicted
	FlowTimeout    time.Duration // a flow with no segment for this long (capture time) is forgotten
	MaxBufferBytes int           // bytes of one partial SIP message held per flow direction
	MaxOutOfOrder  int           // out-of-order segments held per flow before skipping the gap
	// HEP frames HEPv3 packets on a stream that starts with the HEP magic
	// and hands them to [Sink.HEP]; without it such a stream is not SIP.
	// The decoder sets it from its own HEP configuration.
	HEP bool
}

// DefaultConfig returns 65,536 flows, a 5 minute timeout, 128 KiB per
// flow and 16 held-back segments.
func DefaultConfig() Config {
	return Config{MaxFlows: 65536, FlowTimeout: 5 * time.Minute, MaxBufferBytes: 128 << 10, MaxOutOfOrder: 16}
}

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
// stored IPv4-mapped.
type Key struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
}

// tcpFlow is the reassembly state of one direction of a connection.
type tcpFlow struct {
	key      Key
	next     uint32 // sequence number of the next byte expected
	hunting  bool   // not at a message boundary: wait for a segment that starts one
	hep      bool   // the stream carries HEPv3 packets, not SIP
	fresh    bool   // after the SYN, before the first data: SIP or HEP is not known yet
	buf      []byte // start of a SIP message not yet complete
	held     []heldSegment
	heldSize int
	lastSeen int64 // capture time of the last segment, Unix nanoseconds

	ws wsState // SIP over WebSocket (RFC 7118): handshake and framing state

	newer, older *tcpFlow // recency list
}

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
type Table struct {
	cfg       Config
	stats     *Stats
	sink      Sink
	msg       sip.Message // scratch of the message being framed
	flows     map[Key]*tcpFlow
	newest    *tcpFlow
	oldest    *tcpFlow
	free      []*tcpFlow
	lastSweep int64
}

// New returns a table that counts into stats and hands what it frames to
// sink, or an error when cfg is out of range.
func New(cfg Config, stats *Stats, sink Sink) (*Table, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Table{cfg: cfg, stats: stats, sink: sink, flows: make(map[Key]*tcpFlow)}, nil
}

// Reset forgets every flow, as when a capture file is read again from its
// start.
func (t *Table) Reset() {
	for t.oldest != nil {
		t.remove(t.oldest)
	}
	t.lastSweep = 0
}

// Segment takes one TCP segment of the direction k, captured at now (Unix
// nanoseconds; for the flow timeout): its sequence number, header flags
// and payload. It does not allocate for in-order segments of a known flow.
func (t *Table) Segment(k *Key, seq uint32, flags uint8, payload []byte, now int64) {
	t.sweep(now)
	f := t.flows[*k]
	if f == nil {
		if len(payload) == 0 && flags&tcpSYN == 0 {
			return // a pure ACK, FIN or RST of a flow we do not track
		}
		f = t.add(k, now)
		if flags&tcpSYN == 0 {
			f.next, f.hunting = seq, true // joined mid-stream
		}
	} else {
		t.touch(f, now)
	}
	if flags&tcpSYN != 0 {
		seq++
		f.next = seq
		f.hunting, f.hep, f.fresh = false, false, true
		f.ws = wsState{}
		f.buf = f.buf[:0]
		f.dropHeld()
	}
	if len(payload) > 0 {
		t.data(f, seq, payload)
	}
	if flags&(tcpFIN|tcpRST) != 0 {
		t.remove(f)
	}
}

// data places payload at seq in the flow's stream.
func (t *Table) data(f *tcpFlow, seq uint32, p []byte) {
	d := int32(seq - f.next)
	if d < 0 {
		t.stats.Retransmitted.Add(1)
		if int(-d) >= len(p) {
			return
		}
		p = p[-d:]
	} else if d > 0 {
		t.stats.OutOfOrder.Add(1)
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
	t.stream(f, p)
	f.next += uint32(len(p))
	if len(f.held) > 0 {
		t.drainHeld(f)
	}
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
			if int(-d) < len(s.data) {
				p := s.data[-d:]
				t.stream(f, p)
				f.next += uint32(len(p))
				progress = true
			}
		}
	}
}

// skipGap jumps over missing data to the held segment with the lowest
// sequence number, counts the gap and resynchronises on the next message
// start.
func (t *Table) skipGap(f *tcpFlow) {
	t.stats.Gaps.Add(1)
	lowest := 0
	for i := range f.held {
		if int32(f.held[i].seq-f.held[lowest].seq) < 0 {
			lowest = i
		}
	}
	f.next = f.held[lowest].seq
	f.buf = f.buf[:0]
	f.hunting = true
	f.ws = wsState{}
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

// stream consumes in-order stream bytes: frames and emits every complete
// SIP message and keeps the start of an incomplete one.
func (t *Table) stream(f *tcpFlow, p []byte) {
	if f.ws.mode != wsOff {
		t.wsStream(f, p)
		return
	}
	if f.fresh {
		f.fresh = false
		f.hep = t.cfg.HEP && hasHEP3Magic(p)
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
		switch {
		case t.cfg.HEP && hasHEP3Magic(p):
			f.hep = true
		case t.wsDetect(f, p):
			f.hunting = false
			t.wsStream(f, p)
			return
		case !sip.IsStart(p):
			t.sink.Drop(sip.ErrNotSIP)
			return
		}
		f.hunting = false
	}
	data := p
	buffered := len(f.buf) > 0
	if buffered {
		if len(f.buf)+len(p) > t.cfg.MaxBufferBytes {
			t.sink.Drop(sip.ErrTooLong)
			f.buf = f.buf[:0]
			f.hunting = true
			t.stream(f, p)
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
			data, f.hunting = nil, true
			break
		}
		// One scan gives both the fields and the frame: the header up to
		// the empty line plus Content-Length body bytes (RFC 3261 §18.3).
		msg := &t.msg
		err := sip.Parse(data, msg)
		switch err {
		case sip.ErrNotSIP:
			t.sink.Drop(sip.ErrNotSIP)
			data, f.hunting = nil, true
			continue
		case sip.ErrStatusLine, sip.ErrStatusCode, sip.ErrRequestLine:
			t.sink.Message(data, msg, err) // counts the parse error; nothing to frame by
			data, f.hunting = nil, true
			continue
		}
		hl := msg.HeaderLength
		if !headerEnded(data, hl) {
			if len(data) >= sip.MaxHeaderBytes {
				t.sink.Drop(sip.ErrTooLong)
				data, f.hunting = nil, true
			}
			break
		}
		cl := msg.ContentLength
		if cl < 0 {
			if err == sip.ErrContentLength {
				t.sink.Drop(sip.ErrContentLength)
				data, f.hunting = nil, true
				break
			}
			cl = 0 // no Content-Length on a stream: no body
		}
		if cl > sip.MaxBodyBytes || hl+cl > t.cfg.MaxBufferBytes {
			t.sink.Drop(sip.ErrTooLong)
			data, f.hunting = nil, true
			break
		}
		if hl+cl > len(data) {
			break // body still arriving
		}
		t.sink.Message(data[:hl+cl], msg, err)
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
		f.buf, f.hunting = f.buf[:0], true
	case buffered:
		f.buf = f.buf[:copy(f.buf, data)]
	default:
		f.buf = append(f.buf[:0], data...)
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
		t.remove(t.oldest)
	}
	var f *tcpFlow
	if n := len(t.free); n > 0 {
		f, t.free = t.free[n-1], t.free[:n-1]
	} else {
		f = new(tcpFlow)
	}
	f.key, f.lastSeen = *k, now
	t.flows[*k] = f
	t.pushNewest(f)
	t.stats.Flows.Add(1)
	return f
}

// maxFreeFlows bounds the flow structs kept for reuse.
const maxFreeFlows = 1024

func (t *Table) remove(f *tcpFlow) {
	delete(t.flows, f.key)
	t.unlink(f)
	t.stats.Flows.Add(-1)
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
	if t.newest != f {
		t.unlink(f)
		t.pushNewest(f)
	}
}

func (t *Table) pushNewest(f *tcpFlow) {
	f.older, f.newer = t.newest, nil
	if t.newest != nil {
		t.newest.newer = f
	}
	t.newest = f
	if t.oldest == nil {
		t.oldest = f
	}
}

func (t *Table) unlink(f *tcpFlow) {
	if f.newer != nil {
		f.newer.older = f.older
	} else {
		t.newest = f.older
	}
	if f.older != nil {
		f.older.newer = f.newer
	} else {
		t.oldest = f.newer
	}
	f.newer, f.older = nil, nil
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
	for t.oldest != nil && t.oldest.lastSeen < limit {
		t.stats.evict(EvictTimeout)
		t.remove(t.oldest)
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
