package stream

import (
	"bytes"
	"encoding/binary"

	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// SIP over WebSocket (RFC 7118) is a stream mode of a TCP flow direction,
// beside plain SIP framed by Content-Length and HEPv3. A direction enters it
// in one of two ways:
//
//   - The opening handshake (RFC 6455 §4): at the start of a flow, or where
//     a flow is hunting for a message start, the client's "GET ... HTTP/1.1"
//     request or the server's "HTTP/1.1 101" response carrying
//     "Upgrade: websocket" (any case). After the empty line ending that HTTP
//     header the direction carries WebSocket frames. Each direction is
//     recognised on its own, so a capture of one direction only works too;
//     Sec-WebSocket-Protocol: sip is not required.
//   - Joining mid-connection (the handshake was not captured, or framing was
//     lost after a gap): a segment that starts with the header of a first
//     data frame (FIN either way, RSV 0, opcode text or binary) whose
//     payload, unmasked, starts like SIP ([sip.IsStart] on at most
//     wsSniffBytes, after any CR and LF bytes). This costs a few byte tests on segments that are not
//     SIP anyway, and a WebSocket stack writes each message with one write,
//     so segments usually start with a frame.
//
// Frames (RFC 6455 §5.2) are read as a stream: the header is gathered in
// the flow (it may be split across segments), payload bytes are unmasked
// into the flow buffer as they arrive, continuation frames are appended to
// their message, and control frames (close, ping, pong, allowed between
// fragments) are skipped. A complete text or binary message is one SIP
// message (RFC 7118 §5) and goes the way of a UDP datagram. An unmasked,
// unfragmented frame wholly inside one segment is handed on without a copy.

// wsMode is the WebSocket state of a flow direction.
type wsMode uint8

const (
	wsOff       wsMode = iota // not WebSocket: plain SIP or HEP
	wsHandshake               // inside the HTTP header of an opening handshake
	wsFrames                  // after the handshake: WebSocket frames
)

// wsState is the WebSocket framing state of one flow direction. The zero
// value is "not WebSocket".
type wsState struct {
	mode     wsMode
	response bool     // the handshake header is the server's 101 response
	hdr      [14]byte // a frame header split across segments
	hdrLen   uint8    // bytes of hdr gathered
	opcode   uint8    // opcode of the current frame
	fin      bool     // the current frame ends its message
	skip     bool     // the current frame's payload is not kept (control frame, dropped message)
	masked   bool     // the current frame's payload is masked
	key      [4]byte  // its masking key
	keyPos   uint8    // mask index of the next payload byte
	remain   uint64   // payload bytes of the current frame still to come; 0 between frames
	inMsg    bool     // a fragmented message has started: continuation frames follow
	drop     bool     // the message in progress is dropped (too long or compressed)
	frameLen uint64   // payload length of the current frame
}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xa
)

// wsSniffBytes bounds the payload unmasked to recognise a WebSocket stream
// joined mid-connection.
const wsSniffBytes = 512

// wsHeaderLen returns the length of a frame header from its first two
// bytes: 2, plus 2 or 8 extended length bytes, plus 4 for the masking key.
func wsHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// wsPayloadLen returns the payload length of the complete frame header h.
func wsPayloadLen(h []byte) uint64 {
	switch n := h[1] & 0x7f; n {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		return binary.BigEndian.Uint64(h[2:])
	default:
		return uint64(n)
	}
}

// wsDetect reports whether p, at the start of a flow or where it hunts for
// a message start, begins a WebSocket direction, and switches f to it.
func (t *Table) wsDetect(f *tcpFlow, p []byte) bool {
	switch {
	case startsLike(p, "GET "):
		f.ws = wsState{mode: wsHandshake}
	case startsLike(p, "HTTP/1.1 101"):
		f.ws = wsState{mode: wsHandshake, response: true}
	case wsLooksLikeSIP(p):
		f.ws = wsState{mode: wsFrames}
		f.shown = true
	default:
		return false
	}
	return true
}

// wsLooksLikeSIP reports whether p starts with the header of a first text
// or binary frame whose payload, unmasked, starts like a SIP message
// after any CR and LF bytes (a keep-alive glued to it).
func wsLooksLikeSIP(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch p[0] {
	case 0x80 | wsText, 0x80 | wsBinary, wsText, wsBinary:
	default:
		return false
	}
	hl := wsHeaderLen(p[1])
	if len(p) <= hl {
		return false
	}
	n := wsPayloadLen(p)
	payload := p[hl:]
	if uint64(len(payload)) > n {
		payload = payload[:n]
	}
	payload = payload[:min(len(payload), wsSniffBytes)]
	if p[1]&0x80 != 0 {
		var buf [wsSniffBytes]byte
		payload = buf[:copy(buf[:], payload)]
		unmask(payload, [4]byte(p[hl-4:hl]), 0)
	}
	return sip.IsStart(trimCRLF(payload))
}

// wsStream consumes in-order stream bytes of a WebSocket direction.
func (t *Table) wsStream(f *tcpFlow, p []byte) {
	if f.ws.mode == wsHandshake {
		if p = t.wsHandshake(f, p); len(p) == 0 {
			return
		}
	}
	t.wsFrames(f, p)
}

// wsHandshake gathers the HTTP header of an opening handshake in the flow
// buffer. Once it is complete it switches the direction to frames when the
// header is an upgrade to WebSocket, or back to hunting for SIP otherwise
// (plain HTTP: dropped as sip.ErrNotSIP), and returns the bytes after it.
func (t *Table) wsHandshake(f *tcpFlow, p []byte) []byte {
	data := p
	buffered := len(f.buf) > 0
	if buffered {
		if len(f.buf)+len(p) > t.cfg.MaxBufferBytes {
			t.wsGiveUp(f, sip.ErrNotSIP)
			return nil
		}
		f.buf = append(f.buf, p...)
		data = f.buf
	}
	end := httpHeaderEnd(data)
	if end < 0 {
		switch {
		case len(data) > t.cfg.MaxBufferBytes:
			t.wsGiveUp(f, sip.ErrNotSIP)
		case !buffered:
			f.buf = append(f.buf[:0], data...)
		}
		return nil
	}
	if !isWSUpgrade(data[:end], f.ws.response) {
		t.wsGiveUp(f, sip.ErrNotSIP)
		return nil
	}
	f.ws.mode = wsFrames
	f.shown = true
	rest := data[end:]
	if buffered {
		// rest lives in f.buf, which the frames are unmasked into: the
		// first frames rarely come in the handshake's segment, so a copy
		// here costs little.
		rest = bytes.Clone(rest)
		f.buf = f.buf[:0]
	}
	return rest
}

// wsGiveUp leaves WebSocket mode, counts why and hunts for SIP again.
func (t *Table) wsGiveUp(f *tcpFlow, why error) {
	t.sink.Drop(why)
	f.ws = wsState{}
	f.buf = f.buf[:0]
	f.hunting = true
}

// wsError counts a frame that breaks RFC 6455 and hunts for the next frame
// that starts a segment: the stream's framing cannot be trusted any more.
func (t *Table) wsError(f *tcpFlow) {
	t.sink.Drop(ErrWebSocketFrame)
	f.ws = wsState{}
	f.buf = f.buf[:0]
	f.hunting = true
}

// wsFrames consumes WebSocket frame bytes (RFC 6455 §5.2).
func (t *Table) wsFrames(f *tcpFlow, p []byte) {
	w := &f.ws
	for len(p) > 0 {
		if w.remain == 0 {
			var h []byte
			if w.hdrLen == 0 && len(p) >= 2 && len(p) >= wsHeaderLen(p[1]) {
				h, p = p[:wsHeaderLen(p[1])], p[wsHeaderLen(p[1]):]
			} else {
				need := 2
				if w.hdrLen >= 2 {
					need = wsHeaderLen(w.hdr[1])
				}
				for int(w.hdrLen) < need && len(p) > 0 {
					n := copy(w.hdr[w.hdrLen:need], p)
					w.hdrLen += uint8(n)
					p = p[n:]
					if w.hdrLen == 2 {
						need = wsHeaderLen(w.hdr[1])
					}
				}
				if int(w.hdrLen) < need {
					return
				}
				h, w.hdrLen = w.hdr[:need], 0
			}
			if !t.wsFrameHeader(f, h) {
				return
			}
			if w.remain == 0 {
				t.wsFrameEnd(f, nil)
				continue
			}
		}
		n := uint64(len(p))
		if n > w.remain {
			n = w.remain
		}
		chunk := p[:n]
		p = p[n:]
		whole := w.remain == w.frameLen && n == w.remain
		w.remain -= n
		if w.skip {
			if w.remain == 0 {
				t.wsFrameEnd(f, nil)
			}
			continue
		}
		if whole && w.fin && !w.masked && len(f.buf) == 0 {
			t.wsFrameEnd(f, chunk) // the whole message in this segment: no copy
			continue
		}
		start := len(f.buf)
		f.buf = append(f.buf, chunk...)
		if w.masked {
			unmask(f.buf[start:], w.key, w.keyPos)
			w.keyPos = uint8((uint64(w.keyPos) + n) & 3)
		}
		if w.remain == 0 {
			t.wsFrameEnd(f, nil)
		}
	}
}

// wsFrameHeader checks the complete frame header h and sets up its
// payload. It returns false after a frame that breaks RFC 6455 (reserved
// opcode or RSV bit, a fragmented or over-long control frame, a
// continuation without a message, a length with its top bit set).
func (t *Table) wsFrameHeader(f *tcpFlow, h []byte) bool {
	w := &f.ws
	w.fin = h[0]&0x80 != 0
	rsv := h[0] & 0x70
	w.opcode = h[0] & 0x0f
	w.masked = h[1]&0x80 != 0
	if w.masked {
		w.key = [4]byte(h[len(h)-4:])
	}
	w.keyPos = 0
	n := wsPayloadLen(h)
	if n>>63 != 0 {
		t.wsError(f)
		return false
	}
	w.remain, w.frameLen = n, n
	switch w.opcode {
	case wsClose, wsPing, wsPong:
		if !w.fin || n > 125 || rsv != 0 {
			t.wsError(f)
			return false
		}
		w.skip = true
		return true
	case wsText, wsBinary:
		if rsv&0x30 != 0 {
			t.wsError(f)
			return false
		}
		if w.inMsg {
			// A new message before the last one's final fragment: the
			// framing still holds, only that message is lost.
			t.sink.Drop(ErrWebSocketFrame)
			f.buf = f.buf[:0]
		}
		w.inMsg, w.drop = true, false
		if rsv&0x40 != 0 { // RSV1: permessage-deflate (RFC 7692 §6)
			t.sink.Drop(ErrWebSocketCompressed)
			w.drop = true
		}
	case wsContinuation:
		if !w.inMsg || rsv != 0 {
			t.wsError(f)
			return false
		}
	default:
		t.wsError(f)
		return false
	}
	if !w.drop && uint64(len(f.buf))+n > uint64(t.cfg.MaxBufferBytes) {
		t.sink.Drop(sip.ErrTooLong)
		w.drop = true
		f.buf = f.buf[:0]
	}
	w.skip = w.drop
	return true
}

// wsFrameEnd finishes the current frame. At the end of a message it hands
// the message on: msg when the caller has it whole, else the flow buffer.
func (t *Table) wsFrameEnd(f *tcpFlow, msg []byte) {
	w := &f.ws
	if w.opcode >= wsClose || !w.fin {
		return
	}
	w.inMsg = false
	if w.drop {
		w.drop = false
		return
	}
	if msg == nil {
		msg = f.buf
	}
	t.sink.WebSocket(msg)
	f.buf = f.buf[:0]
	if cap(f.buf) > keepBufferCap {
		f.buf = nil
	}
}

// unmask XORs p with the masking key (RFC 6455 §5.3), p[0] taking key byte
// pos.
func unmask(p []byte, key [4]byte, pos uint8) {
	var k [8]byte
	for i := range k {
		k[i] = key[(int(pos)+i)&3]
	}
	k8 := binary.LittleEndian.Uint64(k[:])
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k8)
		p = p[8:]
	}
	for i := range p {
		p[i] ^= k[i]
	}
}

// httpHeaderEnd returns the offset after the empty line ending the HTTP
// header at the start of b (CRLF CRLF, or LF LF, RFC 9112 §2.2), or -1.
func httpHeaderEnd(b []byte) int {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return -1
}

// isWSUpgrade reports whether the HTTP header h (start line to empty line)
// is the client's upgrade request (GET ... HTTP/1.1) or, with response, the
// server's 101 response, with an Upgrade header naming websocket
// (RFC 6455 §4.1, §4.2.2; names and values compared without case).
func isWSUpgrade(h []byte, response bool) bool {
	nl := bytes.IndexByte(h, '\n')
	line := bytes.TrimRight(h[:nl], "\r")
	if response {
		if !hasPrefixFold(line, "HTTP/1.1 101") {
			return false
		}
	} else if !hasPrefixFold(line, "GET ") || !hasSuffixFold(line, " HTTP/1.1") {
		return false
	}
	for h = h[nl+1:]; len(h) > 0; {
		nl = bytes.IndexByte(h, '\n')
		if nl < 0 {
			nl = len(h) - 1
		}
		line, h = h[:nl], h[nl+1:]
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("upgrade")) && containsFold(value, "websocket") {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether b starts with the ASCII string s, ignoring
// case.
func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && bytes.EqualFold(b[:len(s)], []byte(s))
}

// startsLike reports whether p starts with the ASCII string s, or is shorter
// and starts it, ignoring case.
func startsLike(p []byte, s string) bool {
	n := min(len(p), len(s))
	return n > 0 && bytes.EqualFold(p[:n], []byte(s[:n]))
}

func hasSuffixFold(b []byte, s string) bool {
	return len(b) >= len(s) && bytes.EqualFold(b[len(b)-len(s):], []byte(s))
}

// containsFold reports whether b contains the ASCII string s, ignoring
// case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(s)], []byte(s)) {
			return true
		}
	}
	return false
}
