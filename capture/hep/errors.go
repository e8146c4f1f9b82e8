package hep

// Error is the type of every error returned by this package. The values are
// the pre-allocated sentinels below, so the hot path never allocates for an
// error and callers compare with == or [errors.Is].
type Error struct {
	// Reason is a short snake_case word from a closed set, meant to be used
	// as the value of a "reason" label on a decode-error counter.
	Reason string
	msg    string
}

// Error returns a lower-case description prefixed with "hep: ".
func (e *Error) Error() string { return e.msg }

var (
	// ErrMagic reports that the input starts neither with the HEPv3 magic
	// "HEP3" / "EEP3" (HEP3 specification, "Header") nor with a HEPv1/v2
	// version byte (1 or 2). Callers treat it as "not HEP".
	ErrMagic = &Error{Reason: "magic", msg: "hep: not a hep packet"}

	// ErrVersion reports a packet that starts with "HEP" or "EEP" followed by
	// a version other than '3'.
	ErrVersion = &Error{Reason: "version", msg: "hep: unsupported hep version"}

	// ErrTruncated reports fewer bytes than a header needs or than the
	// HEPv3 total-length field claims: a datagram cut short.
	ErrTruncated = &Error{Reason: "truncated", msg: "hep: truncated packet"}

	// ErrLength reports inconsistent length fields: a HEPv3 total length
	// smaller than the 6-byte header, a chunk length smaller than the 6-byte
	// chunk header or running past the total length, a fixed-size chunk
	// (ports, timestamps, ...) of the wrong size, or a HEPv1/v2 header-length
	// byte that does not match the address family.
	ErrLength = &Error{Reason: "length", msg: "hep: inconsistent length field"}

	// ErrAddress reports an IPv4 address chunk (0x0003/0x0004) whose value
	// is not 4 bytes, an IPv6 address chunk (0x0005/0x0006) whose value is
	// not 16 bytes, or a HEPv1/v2 address family other than 2 (AF_INET) or
	// 10 (AF_INET6).
	ErrAddress = &Error{Reason: "address", msg: "hep: malformed address"}

	// ErrNoPayload reports a well-formed packet without a captured payload:
	// a HEPv3 packet with neither chunk 0x000f nor chunk 0x0010 (for example
	// a keep-alive), or a HEPv1/v2 datagram that ends with its header. The
	// other fields of the Packet are filled in.
	ErrNoPayload = &Error{Reason: "no_payload", msg: "hep: packet has no payload"}

	// ErrDecompress reports a compressed payload (chunk 0x0010) that is
	// neither a valid zlib (RFC 1950) nor a valid gzip (RFC 1952) stream.
	ErrDecompress = &Error{Reason: "decompress", msg: "hep: cannot decompress payload"}

	// ErrTooLarge reports a compressed payload that inflates beyond the
	// Decoder's limit ([Config].MaxPayload), or, from the encoders, a packet
	// that does not fit the 16-bit HEPv3 length field.
	ErrTooLarge = &Error{Reason: "too_large", msg: "hep: payload too large"}

	// ErrIncomplete reports that a stream buffer holds fewer than the 6
	// bytes of a HEPv3 header. Only [PacketLength] returns it; it means
	// "read more", not a malformed packet.
	ErrIncomplete = &Error{Reason: "incomplete", msg: "hep: incomplete header"}
)

// ErrorReasons lists the Reason of every error that [Decoder.Decode] can
// return, that is all of them except [ErrIncomplete]. Use it to
// pre-initialise a decode-error counter at zero. Do not modify it.
var ErrorReasons = []string{
	ErrMagic.Reason,
	ErrVersion.Reason,
	ErrTruncated.Reason,
	ErrLength.Reason,
	ErrAddress.Reason,
	ErrNoPayload.Reason,
	ErrDecompress.Reason,
	ErrTooLarge.Reason,
}
