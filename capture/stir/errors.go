package stir

// Error is the type of every error of [Attestation]: the pre-allocated
// sentinels below, compared with == or [errors.Is]; none allocates.
type Error struct{ msg string }

// Error returns a lower-case description prefixed with "stir: ".
func (e *Error) Error() string { return e.msg }

// Why a PASSporT cannot be read. Each makes the INVITE's attestation
// "invalid" for the exporter.
var (
	// ErrForm reports an Identity value that does not begin with the JWS
	// compact serialization header.payload.signature (RFC 7515 §7.1; RFC
	// 8224 §4 signed-identity-digest): three non-empty segments of
	// base64url characters (RFC 4648 §5, no padding) joined by ".".
	ErrForm = &Error{"stir: identity is not a passport in jws compact form"}

	// ErrCompact reports the compact form of PASSporT (RFC 8225 §7), whose
	// empty payload the verifier rebuilds from the SIP header: it carries
	// no attest claim to read. SHAKEN (ATIS-1000074) uses the full form.
	ErrCompact = &Error{"stir: passport in compact form has no payload"}

	// ErrTooLong reports a payload segment longer than [MaxPayloadLen].
	ErrTooLong = &Error{"stir: passport payload too long"}

	// ErrBase64 reports a payload segment that is not base64url without
	// padding (RFC 4648 §5; RFC 7515 §2): a length of 4n+1 characters.
	ErrBase64 = &Error{"stir: passport payload is not base64url"}

	// ErrJSON reports a payload that is not one JSON object (RFC 8259), or
	// nests deeper than [MaxDepth].
	ErrJSON = &Error{"stir: passport payload is not a json object"}

	// ErrNoAttest reports a payload without a top-level "attest" claim
	// (RFC 8588 §4): not a SHAKEN PASSporT.
	ErrNoAttest = &Error{"stir: passport has no attest claim"}

	// ErrAttest reports an "attest" claim that is not one of the strings
	// "A", "B", "C" (RFC 8588 §4), or that appears twice (RFC 7519 §4:
	// a JWT with duplicate claim names may be rejected).
	ErrAttest = &Error{"stir: passport attest claim is not A, B or C"}
)
