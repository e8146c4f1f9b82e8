package decode

import (
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// streamSink is the decoder as its TCP streams' [stream.Sink]: a type of
// its own, so that these methods are not part of the Decoder's API.
type streamSink Decoder

// Message counts and hands on a SIP message framed on a stream.
func (s *streamSink) Message(p []byte, m *sip.Message, err error) {
	d := (*Decoder)(s)
	d.origin.Payload = p
	d.deliver(m, err)
}

// WebSocket hands on one WebSocket message: one SIP message (RFC 7118 §5).
func (s *streamSink) WebSocket(p []byte) {
	s.stats.encaps[EncapWebSocket].Add(1)
	(*Decoder)(s).sipMessage(p)
}

// HEP decodes a HEP packet framed on a stream.
func (s *streamSink) HEP(p []byte) bool { return (*Decoder)(s).HEP(p) }

// HEPError counts a HEP packet whose length does not check out.
func (s *streamSink) HEPError(err error) { s.stats.hepError(err) }

// Drop counts stream data that makes no message.
func (s *streamSink) Drop(reason error) {
	switch reason {
	case sip.ErrNotSIP:
		s.stats.skip(SkipNotSIP)
	case sip.ErrTooLong, sip.ErrContentLength:
		s.stats.parseError(sipParseError(reason))
	case stream.ErrWebSocketFrame:
		s.stats.parseError(ErrWebSocketFrame)
	case stream.ErrWebSocketCompressed:
		s.stats.skip(SkipWebSocketCompressed)
	}
}

// trimCRLF drops leading CR and LF bytes: keep-alives before a message
// (RFC 5626 §3.5.1) and stray line ends.
func trimCRLF(p []byte) []byte {
	for len(p) > 0 && (p[0] == '\r' || p[0] == '\n') {
		p = p[1:]
	}
	return p
}
