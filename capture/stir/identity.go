package stir

import "encoding/base64"

// Limits of [Attestation]: whatever the input, it decodes at most
// MaxPayloadLen characters and recurses at most MaxDepth levels.
const (
	// MaxPayloadLen bounds the payload segment of a PASSporT, in base64url
	// characters: 4,096, at most 3,072 bytes of JSON, decoded into a
	// buffer on the stack. The SHAKEN payload of RFC 8588 §6 (attest,
	// dest, iat, orig, origid) is about 170 bytes (228 characters), and
	// one with a few dozen destination numbers or Rich Call Data claims
	// (RFC 9795) a kilobyte; a longer one is [ErrTooLong].
	MaxPayloadLen = 4096

	// MaxDepth bounds the nesting of objects and arrays in the payload,
	// the top-level object counting as 1: 32. A SHAKEN payload nests 3
	// deep (dest, its tn array); deeper is [ErrJSON].
	MaxDepth = 32
)

// Attestation returns the attestation level, 'A', 'B' or 'C', of the
// SHAKEN PASSporT (RFC 8588 §4 "attest" claim) in identity, the value of
// an Identity header field (RFC 8224 §4): a PASSporT in JWS compact
// serialization, header.payload.signature, each segment base64url without
// padding (RFC 7515 §7.1, RFC 4648 §5), ended by its parameters
// (";info=<...>;alg=ES256;ppt=shaken"), linear white space or the end of
// identity; leading white space is skipped. Only the payload is decoded:
// a JSON object (RFC 8259) whose top-level member "attest" is the string
// "A", "B" or "C" (escapes such as \u0041 allowed, as in JSON); the
// header and signature segments are checked to be base64url characters
// only. The signature is never verified and the certificate never
// fetched.
//
// A nil or empty identity returns 0 and no error: no Identity header.
// Otherwise it returns 0 and one of [ErrForm], [ErrCompact],
// [ErrTooLong] (a payload longer than [MaxPayloadLen]), [ErrBase64],
// [ErrJSON] (nesting deeper than [MaxDepth] included), [ErrNoAttest] or
// [ErrAttest]. It does not allocate, and its time is linear in the length
// of the PASSporT.
func Attestation(identity []byte) (byte, error) {
	v := identity
	for len(v) > 0 && isLWS(v[0]) {
		v = v[1:]
	}
	if len(v) == 0 {
		return 0, nil
	}
	dot1, dot2, end := -1, -1, len(v)
	for i, c := range v {
		switch jwsClass[c] {
		case jwsBase64:
			continue
		case jwsDot:
			if dot2 >= 0 {
				return 0, ErrForm
			}
			if dot1 < 0 {
				dot1 = i
			} else {
				dot2 = i
			}
			continue
		case jwsEnd:
			end = i
		default:
			return 0, ErrForm
		}
		break
	}
	if dot2 < 0 || dot1 == 0 || dot2 == end-1 {
		return 0, ErrForm
	}
	payload := v[dot1+1 : dot2]
	switch {
	case len(payload) == 0:
		return 0, ErrCompact
	case len(payload) > MaxPayloadLen:
		return 0, ErrTooLong
	case len(payload)%4 == 1:
		return 0, ErrBase64
	case len(payload) <= smallPayloadLen:
		// The usual SHAKEN payload (about 200 to 400 characters): a
		// buffer of a quarter of the bound, which the stack clears in a
		// quarter of the time.
		var buf [smallPayloadLen / 4 * 3]byte
		return decodeAttest(buf[:], payload)
	}
	var buf [MaxPayloadLen / 4 * 3]byte
	return decodeAttest(buf[:], payload)
}

// smallPayloadLen is the payload length up to which Attestation decodes
// into a buffer of a quarter of the bound.
const smallPayloadLen = MaxPayloadLen / 4

// decodeAttest decodes the base64url payload into buf, which holds its
// bytes, and reads its attest claim.
func decodeAttest(buf, payload []byte) (byte, error) {
	n, err := base64.RawURLEncoding.Decode(buf, payload)
	if err != nil {
		return 0, ErrBase64
	}
	return attest(buf[:n])
}

// Classes of the bytes of an Identity header value, for Attestation's one
// scan of the JWS: the base64url alphabet (RFC 4648 §5), the dots between
// the segments, and what ends the JWS (";" of the parameters, or SIP
// linear white space, RFC 3261 §25.1); any other byte is none of them.
const (
	jwsOther uint8 = iota
	jwsBase64
	jwsDot
	jwsEnd
)

var jwsClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			t[c] = jwsBase64
		case c == '.':
			t[c] = jwsDot
		case c == ';', c == ' ', c == '\t', c == '\r', c == '\n':
			t[c] = jwsEnd
		}
	}
	return t
}()

// isLWS reports SIP linear white space (RFC 3261 §25.1), folds included.
func isLWS(c byte) bool { return jwsClass[c] == jwsEnd && c != ';' }

// attest reads the attest claim of the JSON text b, which must be one
// object: it validates the whole text (RFC 8259 grammar) and looks at the
// names of the top-level members only.
func attest(b []byte) (byte, error) {
	p := jsonScanner{b: b}
	p.space()
	if !p.eat('{') {
		return 0, ErrJSON
	}
	var level byte
	found, dup := false, false
	p.space()
	if !p.eat('}') {
		for {
			p.space()
			name, ok := p.str()
			if !ok {
				return 0, ErrJSON
			}
			p.space()
			if !p.eat(':') {
				return 0, ErrJSON
			}
			p.space()
			if jsonEqual(name, "attest") {
				dup = dup || found
				found, level = true, 0
				if p.peek() == '"' {
					s, ok := p.str()
					if !ok {
						return 0, ErrJSON
					}
					for _, want := range [...]string{"A", "B", "C"} {
						if jsonEqual(s, want) {
							level = want[0]
						}
					}
				} else if !p.value(2) {
					return 0, ErrJSON
				}
			} else if !p.value(2) {
				return 0, ErrJSON
			}
			p.space()
			if p.eat('}') {
				break
			}
			if !p.eat(',') {
				return 0, ErrJSON
			}
		}
	}
	p.space()
	switch {
	case p.i != len(b):
		return 0, ErrJSON
	case !found:
		return 0, ErrNoAttest
	case dup || level == 0:
		return 0, ErrAttest
	}
	return level, nil
}
