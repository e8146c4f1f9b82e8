package sip

// Error is the type of every error returned by [Parse] and [FrameLength].
// The values are the pre-allocated sentinels below, so the hot path never
// allocates for an error and callers compare with == or [errors.Is].
type Error struct {
	// Reason is a short snake_case word from a closed set, meant to be used
	// as the value of a "reason" label on a parse-error counter.
	Reason string
	msg    string
}

// Error returns a lower-case description prefixed with "sip: ".
func (e *Error) Error() string { return e.msg }

var (
	// ErrNotSIP reports that the start line is neither a SIP status line
	// nor a SIP request line (RFC 3261 §7.1, §7.2): HTTP, RTP, STUN, TLS,
	// keep-alive CRLFs, binary junk. Callers treat it as "skip this
	// payload", not as a parse error of a SIP message.
	ErrNotSIP = &Error{Reason: "not_sip", msg: "sip: not a sip message"}

	// ErrIncomplete reports that a stream buffer does not yet hold a whole
	// message (header not terminated, or body shorter than
	// Content-Length). Only [FrameLength] returns it.
	ErrIncomplete = &Error{Reason: "incomplete", msg: "sip: incomplete message"}

	// ErrStatusLine reports a start line that begins with "SIP/2.0 " but
	// is not "SIP/2.0 SP 3DIGIT [SP Reason-Phrase]" (RFC 3261 §7.2).
	ErrStatusLine = &Error{Reason: "status_line", msg: "sip: malformed status line"}

	// ErrStatusCode reports a three-digit status code outside 100..699
	// (RFC 3261 §7.2, §21).
	ErrStatusCode = &Error{Reason: "status_code", msg: "sip: status code out of range"}

	// ErrRequestLine reports a start line that begins with one of the
	// fourteen well-known methods and a space but is not
	// "Method SP Request-URI SP SIP/2.0" (RFC 3261 §7.1). Other malformed
	// first lines are [ErrNotSIP].
	ErrRequestLine = &Error{Reason: "request_line", msg: "sip: malformed request line"}

	// ErrHeader reports a header line without a colon, with an empty or
	// invalid header name (RFC 3261 §7.3, §25.1 token), or a continuation
	// line with no header to continue.
	ErrHeader = &Error{Reason: "header", msg: "sip: malformed header line"}

	// ErrCSeq reports a CSeq header that is not "1*DIGIT LWS Method" or
	// whose number does not fit in 32 bits (RFC 3261 §8.1.1.5, §20.16).
	ErrCSeq = &Error{Reason: "cseq", msg: "sip: malformed cseq header"}

	// ErrContentLength reports a Content-Length that is not a
	// non-negative decimal or exceeds [MaxBodyBytes] (RFC 3261 §20.14).
	ErrContentLength = &Error{Reason: "content_length", msg: "sip: malformed content-length header"}

	// ErrTooLong reports a line longer than [MaxLineBytes] or a header
	// section longer than [MaxHeaderBytes].
	ErrTooLong = &Error{Reason: "too_long", msg: "sip: message header too long"}
)

// ErrorReasons lists the Reason of every error that denotes a malformed SIP
// message, that is all of them except [ErrNotSIP] and [ErrIncomplete]. Use it
// to pre-initialise a parse-error counter at zero. Do not modify it.
var ErrorReasons = []string{
	ErrStatusLine.Reason,
	ErrStatusCode.Reason,
	ErrRequestLine.Reason,
	ErrHeader.Reason,
	ErrCSeq.Reason,
	ErrContentLength.Reason,
	ErrTooLong.Reason,
}
