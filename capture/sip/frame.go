package sip

import "bytes"

// FrameLength returns the length in bytes of the first complete SIP message
// in b, for stream transports such as TCP and TLS (RFC 3261 §18.3): the
// header up to and including the empty line, plus Content-Length (compact
// "l") bytes of body. A missing Content-Length means no body. Of repeated
// Content-Length headers the first one counts.
//
// CR and LF bytes at the start of b (keep-alives, RFC 3261 §7.5, RFC 5626
// §3.5.1) are returned as a frame of their own, which [Parse] reports as
// [ErrNotSIP]. FrameLength does not check the start line, so a stream that
// is not SIP yields frames that [Parse] rejects.
//
// Errors: [ErrIncomplete] when b does not yet hold the whole header or body
// (read more and call again with the longer buffer); [ErrTooLong] when the
// header is longer than [MaxHeaderBytes]; [ErrContentLength] when
// Content-Length is not a non-negative decimal or exceeds [MaxBodyBytes].
// After ErrTooLong or ErrContentLength the stream cannot be resynchronised.
// FrameLength reads at most MaxHeaderBytes bytes of b and does not allocate.
func FrameLength(b []byte) (int, error) {
	i := 0
	for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
		i++
	}
	if i > 0 {
		return i, nil
	}
	hb, cut := b, false
	if len(hb) >= MaxHeaderBytes {
		hb, cut = hb[:MaxHeaderBytes], true
	}
	// Find the empty line first: Content-Length may still be folded onto
	// lines that have not arrived.
	end := -1
	for p := 0; p < len(hb); {
		i := bytes.IndexByte(hb[p:], '\n')
		if i < 0 {
			break
		}
		p += i + 1
		if p < len(hb) && hb[p] == '\n' {
			end = p + 1
			break
		}
		if p+1 < len(hb) && hb[p] == '\r' && hb[p+1] == '\n' {
			end = p + 2
			break
		}
	}
	if end < 0 {
		return 0, tooLongOrIncomplete(cut)
	}
	var m Message
	m.ContentLength = -1
	// The start line is not a header; skip it.
	n, _, _, err := m.headers(hb[:end], bytes.IndexByte(hb, '\n')+1, false, hCL)
	if err != nil {
		return 0, err
	}
	if m.ContentLength > 0 {
		n += m.ContentLength
	}
	if n > len(b) {
		return 0, ErrIncomplete
	}
	return n, nil
}

func tooLongOrIncomplete(cut bool) error {
	if cut {
		return ErrTooLong
	}
	return ErrIncomplete
}
