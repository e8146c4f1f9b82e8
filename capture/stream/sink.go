package stream

import (
	"errors"

	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// Sink takes what a [Table] frames, and counts what it drops; the decoder
// of the packet source implements it. Its methods run on the source's
// goroutine, during [Table.Segment]; the bytes they get are valid only
// during the call.
type Sink interface {
	// Message takes one SIP message framed by Content-Length (RFC 3261
	// §18.3): p its bytes, m what sip.Parse filled in from p, err what it
	// returned. After a start-line error (sip.ErrStatusLine,
	// sip.ErrStatusCode, sip.ErrRequestLine) there is nothing to frame by:
	// p is the rest of the stream, to be counted and dropped.
	Message(p []byte, m *sip.Message, err error)
	// WebSocket takes one complete text or binary WebSocket message: one
	// SIP message (RFC 7118 §5), or a keep-alive.
	WebSocket(p []byte)
	// HEP takes one HEPv3 packet framed by its length field. It reports
	// whether the packet was decoded.
	HEP(p []byte) bool
	// HEPError counts a HEP packet whose length field does not check out
	// (an error of package hep); the stream hunts for a SIP message next.
	HEPError(err error)
	// Drop counts stream data that makes no message, by reason:
	// sip.ErrNotSIP, sip.ErrTooLong, sip.ErrContentLength,
	// [ErrWebSocketFrame] or [ErrWebSocketCompressed].
	Drop(reason error)
}

// Reasons of [Sink.Drop] of WebSocket streams; the others are those of
// package sip.
var (
	// ErrWebSocketFrame is a WebSocket frame breaking RFC 6455 §5.2:
	// reserved opcode or RSV bit, fragmented or over-long control frame,
	// stray continuation frame. The stream hunts for the next frame.
	ErrWebSocketFrame = errors.New("websocket frame breaks rfc 6455")
	// ErrWebSocketCompressed is a WebSocket message compressed with
	// permessage-deflate (RFC 7692, RSV1 set): it holds SIP that is not
	// decoded.
	ErrWebSocketCompressed = errors.New("websocket message compressed")
)
