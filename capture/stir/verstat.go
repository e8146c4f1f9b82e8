package stir

import "bytes"

// Verstat returns the value of the verstat parameter (ATIS-1000074
// §5.3.1: the verification service's result, such as
// "TN-Validation-Passed") in pai, the value of the P-Asserted-Identity
// header field (RFC 3325 §9.1), or, when pai has none, in from, the value
// of the From header field (RFC 3261 §20.20): where a verification
// service puts it, on the P-Asserted-Identity when the INVITE has one,
// else on the From. The value is returned as sent (not checked against
// the values ATIS-1000074 defines), empty but not nil for "verstat=";
// nil when neither has the parameter. It aliases pai or from.
//
// The parameter is looked for after every ";" outside quoted strings
// (display names): as a tel URI parameter in the user part of a SIP URI
// ("sip:+12155551212;verstat=TN-Validation-Passed@example.com;user=phone"),
// as a parameter of a tel URI or of the SIP URI after its host, and, from
// lenient signers, as a header parameter after the ">". Its name matches
// without regard to case and must be followed by "="; its value ends at
// ";", ",", "<", ">", "@", "?", "&", a double quote, white space or the
// end. Of several, in one value or in the two values of a
// P-Asserted-Identity, the first counts. It does not allocate and reads
// pai and from once each at most.
func Verstat(pai, from []byte) []byte {
	if v := verstatParam(pai); v != nil {
		return v
	}
	return verstatParam(from)
}

// verstatParam returns the value of the first verstat parameter in v, or
// nil. It jumps from ";" to ";" with bytes.IndexByte, looking for a
// double quote only in the bytes it jumped over: a From with one tag
// parameter costs two or three searches, not a test per byte.
func verstatParam(v []byte) []byte {
	const name = "verstat="
	for i := 0; i < len(v); {
		k := bytes.IndexByte(v[i:], ';')
		if k < 0 {
			return nil
		}
		k += i
		if q := bytes.IndexByte(v[i:k], '"'); q >= 0 {
			i = quotedEnd(v, i+q) // a ";" in a quoted string is not a parameter's
			continue
		}
		j := k + 1
		if len(v)-j >= len(name) && bytes.EqualFold(v[j:j+len(name)], []byte(name)) {
			s := j + len(name)
			e := s
			for e < len(v) && !verstatEnd(v[e]) {
				e++
			}
			return v[s:e]
		}
		i = j
	}
	return nil
}

// quotedEnd returns the offset after the quoted string that opens at
// v[i] == '"' (a backslash escapes the byte after it, RFC 3261 §25.1
// quoted-pair), or len(v) when it is not closed. capture/sip has its
// twin; leaf packages import only the standard library, so each keeps
// its own.
func quotedEnd(v []byte, i int) int {
	for i++; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(v)
}

// verstatEnd reports a byte that ends a verstat value.
func verstatEnd(c byte) bool {
	switch c {
	case ';', ',', '<', '>', '@', '?', '&', '"', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}
