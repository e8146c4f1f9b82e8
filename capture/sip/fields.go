package sip

import "bytes"

// value reads the value v (after the colon, folds included, not trimmed)
// of a header of kind k into m.
func (m *Message) value(k uint8, v []byte) error {
	v = trimLWS(v)
	switch k {
	case hCallID:
		m.CallID = v
	case hCSeq:
		return m.cseq(v)
	case hVia:
		m.ViaBranch = param(v, "branch")
	case hTo:
		m.ToURI, m.ToTag = nameAddr(v)
	case hFrom:
		m.FromTag = param(v, "tag")
		if len(v) > 0 {
			m.From = v
		}
	case hCL:
		n, ok := contentLength(v)
		if !ok {
			return ErrContentLength
		}
		m.ContentLength = n
	case hExpires:
		if len(v) > 0 {
			m.Expires = v
		}
	case hIdentity:
		m.identity(v)
	case hPAI:
		if len(v) > 0 {
			m.PAssertedIdentity = v
		}
	case hReason:
		m.reason(v)
	case hContact:
		m.contact(v)
	}
	return nil
}

// reason scans the values of one Reason header (RFC 3326 §2):
//
//	Reason = "Reason" HCOLON reason-value *(COMMA reason-value)
//	reason-value = protocol *(SEMI reason-params)
//	protocol = "SIP" / "Q.850" / token
//	reason-params = protocol-cause / reason-text / reason-extension
//	protocol-cause = "cause" EQUAL cause ; cause = 1*DIGIT
//
// The protocol is matched without case and must be followed by LWS, ";",
// "," or the end. The first value of each protocol with a non-empty cause
// sets its field, the cause as sent (checked by the consumer).
func (m *Message) reason(v []byte) {
	for len(v) > 0 {
		for len(v) > 0 && (isLWS(v[0]) || v[0] == ',') {
			v = v[1:]
		}
		k := tokenEnd(v, 0)
		proto := v[:k]
		j := k
		for j < len(v) && isLWS(v[j]) {
			j++
		}
		end := valueEnd(v, k)
		if j == end || v[j] == ';' {
			switch {
			case m.Q850Cause == nil && eqFold(proto, "q.850"):
				if c := param(v[j:end], "cause"); len(c) > 0 {
					m.Q850Cause = c
				}
			case m.SIPCause == nil && eqFold(proto, "sip"):
				if c := param(v[j:end], "cause"); len(c) > 0 {
					m.SIPCause = c
				}
			}
		}
		if end == len(v) {
			return
		}
		v = v[end+1:]
	}
}

// contact scans the values of one Contact header (RFC 3261 §20.10):
//
//	Contact = ("Contact" / "m") HCOLON (STAR / (contact-param *(COMMA contact-param)))
//	contact-param = (name-addr / addr-spec) *(SEMI contact-params)
//	contact-params = c-p-q / c-p-expires / contact-extension
//	c-p-expires = "expires" EQUAL delta-seconds ; delta-seconds = 1*DIGIT
//
// A value "*" sets ContactStar; an expires parameter of digits only that is
// larger than ContactExpires (compared as numbers, leading zeros ignored)
// replaces it.
func (m *Message) contact(v []byte) {
	for len(v) > 0 {
		for len(v) > 0 && (isLWS(v[0]) || v[0] == ',') {
			v = v[1:]
		}
		// valueEnd and param skip the same bytes up to the first
		// top-level ";" or ",": scan that part once.
		var (
			end int
			e   []byte
		)
		switch i, closed := paramStart(v); {
		case !closed:
			end = len(v) // and no parameter: param gives up at the "<"
		case i == len(v) || v[i] == ',':
			end = i
		default:
			end = valueEnd(v, i)
			e = paramAt(v[:end], i, "expires")
		}
		if string(trimLWS(v[:end])) == "*" {
			m.ContactStar = true
		} else if isDigits(e) && digitsLess(m.ContactExpires, e) {
			m.ContactExpires = e
		}
		if end == len(v) {
			return
		}
		v = v[end+1:]
	}
}

// isDigits reports whether b is 1*DIGIT.
func isDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// digitsLess reports whether the decimal number a is less than b (both
// 1*DIGIT, or a nil: less than any number).
func digitsLess(a, b []byte) bool {
	if a == nil {
		return true
	}
	for len(a) > 1 && a[0] == '0' {
		a = a[1:]
	}
	for len(b) > 1 && b[0] == '0' {
		b = b[1:]
	}
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return string(a) < string(b)
}

// nameAddr returns the URI and the tag parameter of a To or From value v
// (RFC 3261 §20.20, §20.39). The URI is the text inside the first
// top-level <...> (name-addr), else the addr-spec up to the first ";" or
// "," (its header parameters), trimmed; nil when empty or when a "<" is not
// closed. The tag is param(v, "tag"). One scan serves both: up to the
// first top-level "<", ";" or "," they look at the same bytes.
func nameAddr(v []byte) (u, tag []byte) {
	i := 0
	for {
		i = indexStop(v, i)
		if i == len(v) {
			return nonEmpty(trimLWS(v)), nil
		}
		switch v[i] {
		case '"':
			i = quotedEnd(v, i)
			continue
		case '<':
			k := bytes.IndexByte(v[i+1:], '>')
			if k < 0 {
				return nil, nil
			}
			return nonEmpty(trimLWS(v[i+1 : i+1+k])), paramAt(v, i+2+k, "tag")
		case ';':
			return nonEmpty(trimLWS(v[:i])), paramAt(v, i, "tag")
		}
		return nonEmpty(trimLWS(v[:i])), nil // ','
	}
}

// nonEmpty returns nil for an empty b, else b.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// paramStart returns the offset of the first top-level ";" or "," of the
// header value v, or len(v), skipping quoted strings and <...> as valueEnd
// and param do; closed is false when a "<" is not closed.
func paramStart(v []byte) (i int, closed bool) {
	for {
		i = indexStop(v, i)
		if i == len(v) {
			return i, true
		}
		switch v[i] {
		case '"':
			i = quotedEnd(v, i)
		case '<':
			k := bytes.IndexByte(v[i:], '>')
			if k < 0 {
				return len(v), false
			}
			i += k + 1
		default:
			return i, true
		}
	}
}

// valueEnd returns the offset of the top-level comma that ends the header
// value beginning at v[0], or len(v); scanning starts at v[i]. Quoted
// strings and <...> are skipped.
func valueEnd(v []byte, i int) int {
	for {
		i = indexComma(v, i)
		if i == len(v) {
			return i
		}
		switch v[i] {
		case '"':
			i = quotedEnd(v, i)
		case '<':
			k := bytes.IndexByte(v[i:], '>')
			if k < 0 {
				return len(v)
			}
			i += k + 1
		default: // ','
			return i
		}
	}
}

// contentLength parses 1*DIGIT no larger than MaxBodyBytes (RFC 3261 §20.14).
func contentLength(v []byte) (int, bool) {
	if len(v) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > MaxBodyBytes {
			return 0, false
		}
	}
	return n, true
}

// cseq parses "1*DIGIT LWS Method" (RFC 3261 §20.16); v is trimmed.
func (m *Message) cseq(v []byte) error {
	var n uint64
	i := 0
	for i < len(v) && isDigit(v[i]) {
		n = n*10 + uint64(v[i]-'0')
		if n > 1<<32-1 {
			return ErrCSeq
		}
		i++
	}
	j := i
	for j < len(v) && isLWS(v[j]) {
		j++
	}
	k := tokenEnd(v, j)
	if i == 0 || j == i || k == j || k != len(v) {
		return ErrCSeq
	}
	m.CSeq, m.CSeqMethod = uint32(n), v[j:k]
	return nil
}

// param returns the value of the header parameter name (lower case) in the
// header value v, or nil. Parameters are looked for after top-level
// semicolons only: quoted strings and <...> (where URI parameters live) are
// skipped, and the scan stops at a top-level comma, which starts the next
// value (RFC 3261 §7.3.1, §20.10, §20.42). Parameter names match
// case-insensitively; whitespace may surround "="; a value ends at
// ";", ",", SP, HT, CR or LF, or is a quoted string. A parameter without
// "=" has an empty, non-nil value.
func param(v []byte, name string) []byte { return paramAt(v, 0, name) }

// paramAt is param with the scan starting at v[i], which is outside quoted
// strings and <...>.
func paramAt(v []byte, i int, name string) []byte {
	for {
		// Most bytes are none of the four that matter.
		i = indexStop(v, i)
		if i == len(v) {
			return nil
		}
		switch v[i] {
		case '"':
			i = quotedEnd(v, i)
			continue
		case '<':
			k := bytes.IndexByte(v[i:], '>')
			if k < 0 {
				return nil
			}
			i += k + 1
			continue
		case ',':
			return nil
		}
		// ';'
		j := i + 1
		for j < len(v) && isLWS(v[j]) {
			j++
		}
		var (
			k     int
			match bool
		)
		if e := j + len(name); e < len(v) && v[e] == '=' && eqFold(v[j:e], name) {
			// The usual ";tag=": name is a token, so tokenEnd would
			// stop at the "=".
			k, match = e, true
		} else {
			k = tokenEnd(v, j)
			// A name that goes on with a byte outside token
			// ("cause#") is not this parameter (RFC 3261 §25.1
			// generic-param).
			match = eqFold(v[j:k], name) && (k == len(v) || isParamEnd(v[k]) || v[k] == '=')
		}
		for k < len(v) && isLWS(v[k]) {
			k++
		}
		if k >= len(v) || v[k] != '=' {
			if match {
				return v[k:k]
			}
			i = k
			continue
		}
		k++
		for k < len(v) && isLWS(v[k]) {
			k++
		}
		s := k
		if k < len(v) && v[k] == '"' {
			k = quotedEnd(v, k)
		} else {
			k = paramValueEnd(v, k)
		}
		if match {
			return v[s:k]
		}
		i = k
	}
}

// quotedEnd returns the offset just after the quoted string that begins at
// v[i] == '"', honouring backslash escapes (RFC 3261 §25.1), or len(v).
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
