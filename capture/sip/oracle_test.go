package sip

import "bytes"

// This file keeps the scanner that Parse and FrameLength used before the
// line-walking scanner of issue 18 (item 7), as of commit 13f1bdc, as the
// oracle of FuzzParseDifferential and TestParseDifferential. It is the old
// code with its identifiers renamed (an "o" prefix) and one addition, marked
// "oracle addition": the Identity, P-Asserted-Identity and From headers, which the
// old scanner did not read, in the old scanner's style, so that the
// differential covers the new fields too. Do not optimise it: its value is
// that it is simple and was the reference the corpus counts were taken with.

// ParseOracle and FrameLengthOracle give the tests of package sip_test the
// oracle.
var (
	ParseOracle       = parseOracle
	FrameLengthOracle = frameLengthOracle
)

// parseOracle is the former Parse; its documentation is that of [Parse].
func parseOracle(b []byte, m *Message) error {
	m.Reset()
	hb, cut := b, false
	if len(hb) > MaxHeaderBytes {
		hb, cut = hb[:MaxHeaderBytes], true
	}
	end, next, term := oLineAt(hb, 0)
	if end < 0 {
		return oLongStartLine(hb)
	}
	if err := m.oStartLine(hb[:end]); err != nil {
		return err
	}
	if !term {
		m.HeaderLength = len(b)
		return nil
	}
	n, term, err := m.oHeaders(hb, next, cut, false)
	switch {
	case term:
		m.HeaderLength = n
	case cut:
		m.HeaderLength = n
		if err == nil {
			err = ErrTooLong
		}
	default:
		m.HeaderLength = len(b)
	}
	// The Contact fields are those of a REGISTER or a response to one
	// only (see Message.ContactExpires): the oracle reads every Contact
	// and then drops them elsewhere.
	if string(m.CSeqMethod) != "REGISTER" {
		m.ContactExpires, m.ContactStar = nil, false
	}
	return err
}

// lineAt finds the line that begins at b[p]. end is the end of its content
// (before CRLF, LF or a CR that ends b); next is where the following line
// begins; term reports whether an LF ended the line. end is -1 when the
// content exceeds MaxLineBytes; then next and term are not set.
func oLineAt(b []byte, p int) (end, next int, term bool) {
	lim := len(b)
	if lim-p > MaxLineBytes+2 {
		lim = p + MaxLineBytes + 2
	}
	i := bytes.IndexByte(b[p:lim], '\n')
	if i < 0 {
		if lim < len(b) {
			return -1, 0, false
		}
		end, next = len(b), len(b)
	} else {
		end, next, term = p+i, p+i+1, true
	}
	if end > p && b[end-1] == '\r' {
		end--
	}
	if end-p > MaxLineBytes {
		return -1, 0, false
	}
	return end, next, term
}

// startLine scans the status line or request line l (without CRLF).
func (m *Message) oStartLine(l []byte) error {
	if oHasPrefix(l, "SIP/2.0 ") {
		r := l[8:]
		if len(r) < 3 || !oIsDigit(r[0]) || !oIsDigit(r[1]) || !oIsDigit(r[2]) || (len(r) > 3 && r[3] != ' ') {
			return ErrStatusLine
		}
		code := int(r[0]-'0')*100 + int(r[1]-'0')*10 + int(r[2]-'0')
		if code < 100 || code > 699 {
			return ErrStatusCode
		}
		m.Response = true
		m.StatusCode = code
		if len(r) > 3 {
			m.Reason = r[4:]
		} else {
			m.Reason = r[3:]
		}
		return nil
	}
	method, err := oRequestLine(l)
	if err != nil {
		return err
	}
	m.Method = method
	return nil
}

// longStartLine classifies a start line longer than MaxLineBytes: ErrTooLong
// when it begins like SIP, ErrNotSIP otherwise.
func oLongStartLine(b []byte) error {
	if oHasPrefix(b, "SIP/2.0 ") {
		return ErrTooLong
	}
	i := oTokenEnd(b, 0)
	if i < len(b) && b[i] == ' ' && oKnownMethod(b[:i]) {
		return ErrTooLong
	}
	return ErrNotSIP
}

// requestLine checks "Method SP Request-URI SP SIP/2.0" (RFC 3261 §7.1) and
// returns the method. Method is a token; Request-URI is any run of visible
// bytes (it is not parsed further).
func oRequestLine(l []byte) ([]byte, error) {
	i := oTokenEnd(l, 0)
	if i == 0 || i >= len(l) || l[i] != ' ' {
		return nil, ErrNotSIP
	}
	method := l[:i]
	j := i + 1
	for j < len(l) && l[j] > ' ' && l[j] != 0x7f {
		j++
	}
	if j > i+1 && j < len(l) && l[j] == ' ' && string(l[j+1:]) == "SIP/2.0" {
		return method, nil
	}
	if !oKnownMethod(method) {
		return nil, ErrNotSIP
	}
	// "OPTIONS / HTTP/1.1" and the like are another protocol, not broken SIP.
	if k := bytes.LastIndexByte(l, ' '); k > i && (oHasPrefix(l[k+1:], "HTTP/") || oHasPrefix(l[k+1:], "RTSP/")) {
		return nil, ErrNotSIP
	}
	return nil, ErrRequestLine
}

// knownMethod reports whether m is one of the methods of RFC 3261 and its
// common extensions (RFC 3262, 3265, 3311, 3428, 3515, 3903, 6086).
func oKnownMethod(m []byte) bool {
	switch string(m) {
	case "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK",
		"SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE":
		return true
	}
	return false
}

// headers scans header lines from b[p] until the empty line or the end of b.
// cut reports that b is a prefix of the input, so that an unterminated last
// line is incomplete rather than merely lacking its CRLF. With clOnly only
// Content-Length is examined and only its error is reported. It returns the
// offset after the empty line (or where the scan stopped), whether the empty
// line was found, and the first error.
func (m *Message) oHeaders(b []byte, p int, cut, clOnly bool) (int, bool, error) {
	var (
		err    error
		seen   uint16
		hs, he = -1, 0 // pending logical header b[hs:he]; hs -2: discard continuations
	)
	note := func(e error) {
		if err == nil && (!clOnly || e == ErrContentLength) {
			err = e
		}
	}
	flush := func() {
		if hs >= 0 {
			if e := m.oHeader(b[hs:he], &seen, clOnly); e != nil {
				note(e)
			}
		}
	}
	for p < len(b) {
		end, next, term := oLineAt(b, p)
		if end < 0 {
			flush()
			note(ErrTooLong)
			hs = -2
			i := bytes.IndexByte(b[p:], '\n')
			if i < 0 {
				return len(b), false, err
			}
			p += i + 1
			continue
		}
		if !term && cut {
			break // the line may continue beyond the bytes we read
		}
		if end == p {
			flush()
			return next, term, err
		}
		if c := b[p]; c == ' ' || c == '\t' {
			switch {
			case hs >= 0:
				he = end
			case hs == -1:
				note(ErrHeader)
			}
		} else {
			flush()
			hs, he = p, end
		}
		p = next
	}
	flush()
	return p, false, err
}

// Bits of "seen" in headers: the first occurrence of a header counts.
const (
	oSeenCallID = 1 << iota
	oSeenCSeq
	oSeenVia
	oSeenTo
	oSeenCL
	oSeenFrom
	oSeenReason // never set: every Reason header is scanned
	oSeenExpires
	oSeenContact  // never set: every Contact header is scanned
	oSeenIdentity // oracle addition; never set: every Identity header is scanned
	oSeenPAI      // oracle addition
)

// oIdentity keeps the Identity value v unless one is kept already that
// has ppt=shaken, or that v does not have either (oracle addition).
func (m *Message) oIdentity(v []byte) {
	if len(v) == 0 {
		return
	}
	isShaken := func(v []byte) bool {
		p := oParam(v, "ppt")
		if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
			p = p[1 : len(p)-1]
		}
		return oEqFold(p, "shaken")
	}
	if m.Identity == nil || (!isShaken(m.Identity) && isShaken(v)) {
		m.Identity = v
	}
}

// header scans one logical header line h (folds included, no final CRLF).
func (m *Message) oHeader(h []byte, seen *uint16, clOnly bool) error {
	i := oTokenEnd(h, 0)
	j := i
	for j < len(h) && (h[j] == ' ' || h[j] == '\t') {
		j++
	}
	if i == 0 || j >= len(h) || h[j] != ':' {
		return ErrHeader
	}
	name, v := h[:i], oTrimLWS(h[j+1:])
	// Dispatch on the length first: most header names match none of the
	// nine, and this rejects them without case folding.
	var bit uint16
	switch len(name) {
	case 1:
		switch name[0] | 0x20 {
		case 'm':
			bit = oSeenContact
		case 'l':
			bit = oSeenCL
		case 'i':
			bit = oSeenCallID
		case 'v':
			bit = oSeenVia
		case 't':
			bit = oSeenTo
		case 'f':
			bit = oSeenFrom
		case 'y': // oracle addition
			bit = oSeenIdentity
		}
	case 2:
		if oEqFold(name, "to") {
			bit = oSeenTo
		}
	case 3:
		if oEqFold(name, "via") {
			bit = oSeenVia
		}
	case 4:
		switch {
		case oEqFold(name, "cseq"):
			bit = oSeenCSeq
		case oEqFold(name, "from"):
			bit = oSeenFrom
		}
	case 6:
		if oEqFold(name, "reason") {
			bit = oSeenReason
		}
	case 7:
		switch {
		case oEqFold(name, "call-id"):
			bit = oSeenCallID
		case oEqFold(name, "contact"):
			bit = oSeenContact
		case oEqFold(name, "expires"):
			bit = oSeenExpires
		}
	case 8: // oracle addition
		if oEqFold(name, "identity") {
			bit = oSeenIdentity
		}
	case 14:
		if oEqFold(name, "content-length") {
			bit = oSeenCL
		}
	case 19: // oracle addition
		if oEqFold(name, "p-asserted-identity") {
			bit = oSeenPAI
		}
	}
	if bit == 0 || (clOnly && bit != oSeenCL) {
		return nil
	}
	switch bit {
	case oSeenReason:
		m.oReason(v)
		return nil
	case oSeenContact:
		m.oContact(v)
		return nil
	case oSeenIdentity: // oracle addition: every one is read
		m.oIdentity(v)
		return nil
	}
	if *seen&bit != 0 {
		return nil
	}
	*seen |= bit
	switch bit {
	case oSeenCL:
		n, ok := oContentLength(v)
		if !ok {
			return ErrContentLength
		}
		m.ContentLength = n
	case oSeenCallID:
		m.CallID = v
	case oSeenCSeq:
		return m.oCseq(v)
	case oSeenVia:
		m.ViaBranch = oParam(v, "branch")
	case oSeenTo:
		m.ToTag = oParam(v, "tag")
		m.ToURI = oUri(v)
	case oSeenExpires:
		if len(v) > 0 {
			m.Expires = v
		}
	case oSeenFrom:
		m.FromTag = oParam(v, "tag")
		if len(v) > 0 { // oracle addition
			m.From = v
		}
	case oSeenPAI: // oracle addition
		if len(v) > 0 {
			m.PAssertedIdentity = v
		}
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
func (m *Message) oReason(v []byte) {
	for len(v) > 0 {
		for len(v) > 0 && (oIsLWS(v[0]) || v[0] == ',') {
			v = v[1:]
		}
		k := oTokenEnd(v, 0)
		proto := v[:k]
		j := k
		for j < len(v) && oIsLWS(v[j]) {
			j++
		}
		end := oValueEnd(v, k)
		if j == end || v[j] == ';' {
			switch {
			case m.Q850Cause == nil && oEqFold(proto, "q.850"):
				if c := oParam(v[j:end], "cause"); len(c) > 0 {
					m.Q850Cause = c
				}
			case m.SIPCause == nil && oEqFold(proto, "sip"):
				if c := oParam(v[j:end], "cause"); len(c) > 0 {
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
func (m *Message) oContact(v []byte) {
	for len(v) > 0 {
		for len(v) > 0 && (oIsLWS(v[0]) || v[0] == ',') {
			v = v[1:]
		}
		end := oValueEnd(v, 0)
		if string(oTrimLWS(v[:end])) == "*" {
			m.ContactStar = true
		} else if e := oParam(v[:end], "expires"); oIsDigits(e) && oDigitsLess(m.ContactExpires, e) {
			m.ContactExpires = e
		}
		if end == len(v) {
			return
		}
		v = v[end+1:]
	}
}

// isDigits reports whether b is 1*DIGIT.
func oIsDigits(b []byte) bool {
	for _, c := range b {
		if !oIsDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// digitsLess reports whether the decimal number a is less than b (both
// 1*DIGIT, or a nil: less than any number).
func oDigitsLess(a, b []byte) bool {
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

// uri returns the URI of a From, To or Contact value v (RFC 3261 §20.10):
// the text inside the first top-level <...> (name-addr), else the
// addr-spec up to the first ";" or "," (its header parameters), trimmed;
// nil when empty or when a "<" is not closed.
func oUri(v []byte) []byte {
	var u []byte
scan:
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			i = oQuotedEnd(v, i) - 1
		case '<':
			k := bytes.IndexByte(v[i+1:], '>')
			if k < 0 {
				return nil
			}
			u = oTrimLWS(v[i+1 : i+1+k])
			break scan
		case ';', ',':
			u = oTrimLWS(v[:i])
			break scan
		}
		if i == len(v)-1 {
			u = oTrimLWS(v)
		}
	}
	if len(u) == 0 {
		return nil
	}
	return u
}

// valueEnd returns the offset of the top-level comma that ends the header
// value beginning at v[0], or len(v); scanning starts at v[i]. Quoted
// strings and <...> are skipped.
func oValueEnd(v []byte, i int) int {
	for ; i < len(v); i++ {
		switch v[i] {
		case '"':
			i = oQuotedEnd(v, i) - 1
		case '<':
			k := bytes.IndexByte(v[i:], '>')
			if k < 0 {
				return len(v)
			}
			i += k
		case ',':
			return i
		}
	}
	return len(v)
}

// contentLength parses 1*DIGIT no larger than MaxBodyBytes (RFC 3261 §20.14).
func oContentLength(v []byte) (int, bool) {
	if len(v) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if !oIsDigit(c) {
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
func (m *Message) oCseq(v []byte) error {
	var n uint64
	i := 0
	for i < len(v) && oIsDigit(v[i]) {
		n = n*10 + uint64(v[i]-'0')
		if n > 1<<32-1 {
			return ErrCSeq
		}
		i++
	}
	j := i
	for j < len(v) && oIsLWS(v[j]) {
		j++
	}
	k := oTokenEnd(v, j)
	if i == 0 || j == i || k == j || k != len(v) {
		return ErrCSeq
	}
	m.CSeq, m.CSeqMethod = uint32(n), v[j:k]
	return nil
}

// oParamStop marks the bytes param has to look at.
var oParamStop = [256]bool{'"': true, '<': true, ',': true, ';': true}

// param returns the value of the header parameter name (lower case) in the
// header value v, or nil. Parameters are looked for after top-level
// semicolons only: quoted strings and <...> (where URI parameters live) are
// skipped, and the scan stops at a top-level comma, which starts the next
// value (RFC 3261 §7.3.1, §20.10, §20.42). Parameter names match
// case-insensitively; whitespace may surround "="; a value ends at
// ";", ",", SP, HT, CR or LF, or is a quoted string.
func oParam(v []byte, name string) []byte {
	for i := 0; i < len(v); i++ {
		for i < len(v) && !oParamStop[v[i]] {
			i++ // most bytes are none of the four that matter
		}
		if i == len(v) {
			return nil
		}
		switch v[i] {
		case '"':
			i = oQuotedEnd(v, i) - 1
		case '<':
			k := bytes.IndexByte(v[i:], '>')
			if k < 0 {
				return nil
			}
			i += k
		case ',':
			return nil
		case ';':
			j := i + 1
			for j < len(v) && oIsLWS(v[j]) {
				j++
			}
			k := oTokenEnd(v, j)
			// A name that goes on with a byte outside token ("cause#")
			// is not this parameter (RFC 3261 §25.1 generic-param).
			match := oEqFold(v[j:k], name) && (k == len(v) || oIsParamEnd(v[k]) || v[k] == '=')
			for k < len(v) && oIsLWS(v[k]) {
				k++
			}
			if k >= len(v) || v[k] != '=' {
				if match {
					return v[k:k]
				}
				i = k - 1
				continue
			}
			k++
			for k < len(v) && oIsLWS(v[k]) {
				k++
			}
			s := k
			if k < len(v) && v[k] == '"' {
				k = oQuotedEnd(v, k)
			} else {
				for k < len(v) && !oIsParamEnd(v[k]) {
					k++
				}
			}
			if match {
				return v[s:k]
			}
			i = k - 1
		}
	}
	return nil
}

// quotedEnd returns the offset just after the quoted string that begins at
// v[i] == '"', honouring backslash escapes (RFC 3261 §25.1), or len(v).
func oQuotedEnd(v []byte, i int) int {
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

func oIsParamEnd(c byte) bool {
	return c == ';' || c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

func oIsDigit(c byte) bool { return '0' <= c && c <= '9' }

// isLWS reports linear white space, folds included (RFC 3261 §25.1).
func oIsLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func oTrimLWS(v []byte) []byte {
	for len(v) > 0 && oIsLWS(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && oIsLWS(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

// tokenEnd returns the end of the run of token characters from b[i].
func oTokenEnd(b []byte, i int) int {
	for i < len(b) && oIsToken(b[i]) {
		i++
	}
	return i
}

// isToken reports a token character (RFC 3261 §25.1):
// alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
func oIsToken(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '!', '%', '*', '_', '+', '`', '\'', '~':
		return true
	}
	return false
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring
// ASCII case in b.
func oEqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func oHasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// frameLengthOracle is the former FrameLength; its documentation is that of
// [FrameLength].
func frameLengthOracle(b []byte) (int, error) {
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
		return 0, oTooLongOrIncomplete(cut)
	}
	var m Message
	m.ContentLength = -1
	// The start line is not a header; skip it.
	n, _, err := m.oHeaders(hb[:end], bytes.IndexByte(hb, '\n')+1, false, true)
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

func oTooLongOrIncomplete(cut bool) error {
	if cut {
		return ErrTooLong
	}
	return ErrIncomplete
}
