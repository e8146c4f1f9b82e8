package sip

import (
	"bytes"
	"encoding/binary"
)

// Limits. Every scan in this package is bounded by them, whatever the input.
const (
	// MaxHeaderBytes bounds the header section: the start line, the header
	// lines and the empty line that ends them, in bytes. 64 KiB is the
	// largest UDP payload and the message limit of common SIP stacks
	// (Kamailio, OpenSIPS, sipgo), so no real header is longer.
	MaxHeaderBytes = 64 << 10

	// MaxLineBytes bounds one physical line (the start line or one header
	// line, without its CRLF), in bytes. Long Via, Route and
	// authentication headers reach a few hundred bytes; 8 KiB leaves
	// ample room.
	MaxLineBytes = 8 << 10

	// MaxBodyBytes bounds the value of Content-Length, in bytes. It is the
	// most a stream reader has to buffer for one body before
	// [FrameLength] can delimit the message. SDP bodies are about 1 KiB;
	// 1 MiB leaves room for large multipart or presence (PIDF/RLMI)
	// bodies.
	MaxBodyBytes = 1 << 20
)

// Message holds the fields scanned from one SIP message (RFC 3261 §7). All
// byte slices alias the input buffer: copy them before the buffer is reused.
type Message struct {
	Response       bool   // true for a response (status line), false for a request
	StatusCode     int    // 100..699 for responses, 0 for requests
	Reason         []byte // reason phrase as sent (may be empty), responses only
	Method         []byte // request method from the request line, as sent, requests only
	CSeq           uint32 // CSeq sequence number (0 when absent/malformed)
	CSeqMethod     []byte // CSeq method (nil when CSeq is absent or malformed)
	CallID         []byte // Call-ID value (compact "i"), trimmed; nil when absent
	ViaBranch      []byte // branch parameter of the topmost Via value (compact "v"); nil when absent
	ToTag          []byte // tag parameter of the To header (compact "t"), not a tag inside the <URI>; nil when absent
	FromTag        []byte // tag parameter of the From header (compact "f"), as ToTag; nil when absent
	Q850Cause      []byte // cause parameter of the first Reason value with protocol Q.850 and a cause (RFC 3326), as sent, not empty; nil when absent
	SIPCause       []byte // cause parameter of the first Reason value with protocol SIP and a cause (RFC 3326), as sent, not empty; nil when absent
	ToURI          []byte // URI of the To header (compact "t"): inside <...>, else the addr-spec up to its parameters (RFC 3261 §20.39), trimmed; nil when absent or empty. In a REGISTER it is the address of record (§10.2)
	Expires        []byte // value of the Expires header (RFC 3261 §20.19), as sent, trimmed, not empty; nil when absent
	ContactExpires []byte // largest expires parameter, in seconds, of all Contact values (compact "m"; RFC 3261 §10.2.1.1, §20.10) whose expires is 1*DIGIT, as sent; nil when none. Only of a REGISTER or a response to one (CSeq method REGISTER): nil in any other message
	ContactStar    bool   // a Contact value is "*": remove every binding (RFC 3261 §10.2.2). Only of a REGISTER or a response to one, as ContactExpires
	ContentLength  int    // value of Content-Length (compact "l") in bytes; -1 when absent or malformed
	HeaderLength   int    // bytes from the start up to and including the empty line that ends the header; len(input) when the header is not terminated

	// Identity is the value of an Identity header (RFC 8224 §4; compact
	// "y", in the IANA SIP header field registry for RFC 8224, first
	// assigned by RFC 4474), as sent, trimmed, folds as sent, not empty:
	// the PASSporT and its parameters (";info=<...>;alg=ES256;
	// ppt=shaken"), not checked; nil when absent or empty. Of several
	// Identity headers (a SHAKEN PASSporT and, after a diversion, a "div"
	// one, RFC 8946), it is the first whose ppt parameter is shaken (RFC
	// 8588 §5, token or quoted string, matched without case), else the
	// first. It is read in every message, requests and responses alike.
	Identity []byte
	// PAssertedIdentity is the value of the first P-Asserted-Identity
	// header (RFC 3325 §9.1; no compact form), as sent, trimmed, folds as
	// sent, not empty: one or two comma-separated name-addr or addr-spec
	// values, not split; nil when absent or empty. Read in every message.
	PAssertedIdentity []byte
	// From is the value of the first From header (RFC 3261 §20.20;
	// compact "f"), as sent, trimmed, folds as sent, not empty: display
	// name, URI and parameters, not split (FromTag is its tag); nil when
	// absent or empty. Read in every message.
	From []byte
}

// Reset clears m to the state for "nothing scanned": zero values and
// ContentLength -1. It does not allocate.
func (m *Message) Reset() {
	*m = Message{ContentLength: -1}
}

// Parse scans one SIP message at the start of b into m (RFC 3261 §7). m is
// reset first. Parse does not allocate and keeps no reference to b beyond the
// slices it stores in m. Only the first [MaxHeaderBytes] bytes of b are read;
// the body is not inspected.
//
// Start-line errors are fatal and leave the start-line fields of m
// untrustworthy: [ErrNotSIP] (not SIP at all; skip it), [ErrStatusLine],
// [ErrStatusCode], [ErrRequestLine], and [ErrTooLong] for a start line
// longer than [MaxLineBytes].
//
// Header-level errors do not stop the scan: [ErrHeader], [ErrCSeq],
// [ErrContentLength], and [ErrTooLong] for a header line longer than
// [MaxLineBytes] or a header section longer than [MaxHeaderBytes]. Parse
// then returns the first such error, while m keeps the start-line fields
// and every header field that was well-formed, so callers can both count
// the message and count the error. A line that is too long is skipped.
//
// Parse is lenient where real traffic needs it: LF alone ends a line as
// well as CRLF (RFC 3261 §7.5 tolerance); the empty line ending the header
// may be missing, as in a UDP datagram cut after the headers, in which case
// HeaderLength is len(b) and no error is returned; header names are matched
// case-insensitively, with the compact forms i, v, t, f, l, m (§7.3.3) and y
// (Identity); a header may be folded onto continuation lines beginning
// with SP or HT (§7.3.1), and CallID, Expires, Identity,
// PAssertedIdentity and From then span the fold as sent; whitespace may
// surround the colon. Of repeated Call-ID, CSeq, To, From,
// Content-Length, Expires and P-Asserted-Identity headers the first one
// counts and later ones are ignored; of repeated Identity headers the
// first with ppt=shaken, else the first (see [Message.Identity]); of the
// Via headers only the first value of the first one counts (§8.1.1.7). In
// a REGISTER or a response to one (CSeq method REGISTER), every Contact
// header and every value in it is looked at for ContactExpires and
// ContactStar (§10.3: a 2xx to REGISTER lists every binding with its
// expires); no other message needs them, so Parse skips its Contact
// headers as it skips any header it does not read, and a REGISTER's are
// read in a second scan from the first of them, once the CSeq is known
// (Contact may come before it). Every Reason header (RFC 3326 §2;
// no compact form) and every comma-separated value in it is looked at; the
// first value per protocol gives Q850Cause or SIPCause (RFC 3326 allows
// one value per protocol) when it has a cause. A missing CSeq is not an
// error. Leading CRLFs (stream keep-alives) are [ErrNotSIP]; use
// [FrameLength] on streams, which delimits them as a frame of their own.
//
// Parse walks the header one physical line at a time with
// [bytes.IndexByte] and reads a header name once, on its first line: a
// name that most messages carry, followed at once by its colon (Via,
// Call-ID, Record-Route, ...: commonNames), is recognised by comparing up
// to three words; any other is checked to be a token followed by the
// colon and dispatched on its length and first byte. The value of a header that no field
// needs is never looked at, nor are its continuation lines beyond their
// line ends. Its time is linear in min(len(b), MaxHeaderBytes);
// BenchmarkParse and BenchmarkParseOracle compare it with the scanner it
// replaced, which is kept in the tests as the oracle of
// FuzzParseDifferential.
func Parse(b []byte, m *Message) error {
	m.Reset()
	hb, cut := b, false
	if len(hb) > MaxHeaderBytes {
		hb, cut = hb[:MaxHeaderBytes], true
	}
	end, next, term := lineAt(hb, 0)
	if end < 0 {
		return longStartLine(hb)
	}
	if err := m.startLine(hb[:end]); err != nil {
		return err
	}
	if !term {
		m.HeaderLength = len(b)
		return nil
	}
	n, term, contact, err := m.headers(hb, next, cut, hNone)
	if contact > 0 && string(m.CSeqMethod) == "REGISTER" {
		m.headers(hb, contact, cut, hContact)
	}
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
	return err
}

// lineAt finds the line that begins at b[p]. end is the end of its content
// (before CRLF, LF or a CR that ends b); next is where the following line
// begins; term reports whether an LF ended the line. end is -1 when the
// content exceeds MaxLineBytes; then next and term are not set.
func lineAt(b []byte, p int) (end, next int, term bool) {
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
func (m *Message) startLine(l []byte) error {
	if hasPrefix(l, "SIP/2.0 ") {
		r := l[8:]
		if len(r) < 3 || !isDigit(r[0]) || !isDigit(r[1]) || !isDigit(r[2]) || (len(r) > 3 && r[3] != ' ') {
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
	method, err := requestLine(l)
	if err != nil {
		return err
	}
	m.Method = method
	return nil
}

// longStartLine classifies a start line longer than MaxLineBytes: ErrTooLong
// when it begins like SIP, ErrNotSIP otherwise.
func longStartLine(b []byte) error {
	if hasPrefix(b, "SIP/2.0 ") {
		return ErrTooLong
	}
	i := tokenEnd(b, 0)
	if i < len(b) && b[i] == ' ' && knownMethod(b[:i]) {
		return ErrTooLong
	}
	return ErrNotSIP
}

// requestLine checks "Method SP Request-URI SP SIP/2.0" (RFC 3261 §7.1) and
// returns the method. Method is a token; Request-URI is any run of visible
// bytes (it is not parsed further).
func requestLine(l []byte) ([]byte, error) {
	i := tokenEnd(l, 0)
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
	if !knownMethod(method) {
		return nil, ErrNotSIP
	}
	// "OPTIONS / HTTP/1.1" and the like are another protocol, not broken SIP.
	if k := bytes.LastIndexByte(l, ' '); k > i && (hasPrefix(l[k+1:], "HTTP/") || hasPrefix(l[k+1:], "RTSP/")) {
		return nil, ErrNotSIP
	}
	return nil, ErrRequestLine
}

// knownMethod reports whether m is one of the methods of RFC 3261 and its
// common extensions (RFC 3262, 3265, 3311, 3428, 3515, 3903, 6086).
func knownMethod(m []byte) bool {
	switch string(m) {
	case "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK",
		"SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE":
		return true
	}
	return false
}

// IsStart reports whether b begins with something that looks like a SIP
// start line (RFC 3261 §7.1, §7.2): "SIP/2.0 " (a status line, whatever
// follows) or a complete request line "Method SP Request-URI SP SIP/2.0"
// ending at CRLF, LF or the end of b. Only the first line is examined, at
// most [MaxLineBytes] bytes of it; a longer request line is not recognised.
// It is meant to recognise SIP by content on any port and returns false for
// HTTP, RTP, STUN, TLS, keep-alive CRLFs and binary data. It does not
// allocate.
func IsStart(b []byte) bool {
	if hasPrefix(b, "SIP/2.0 ") {
		return true
	}
	// A method token comes first; reject most non-SIP data before looking
	// for the end of the line.
	if len(b) == 0 || !isToken(b[0]) {
		return false
	}
	end, _, _ := lineAt(b, 0)
	if end < 0 {
		return false
	}
	_, err := requestLine(b[:end])
	return err == nil
}

// Started reports whether b, which [Parse] has just scanned into m, begins
// with a SIP start line as [IsStart] sees one: a status line ("SIP/2.0 ",
// whatever follows) or a request line that Parse took. It does not scan
// the start line again, so that a caller that parses anyway need not call
// IsStart first.
func Started(b []byte, m *Message) bool {
	return m.Response || m.Method != nil || hasPrefix(b, "SIP/2.0 ")
}

// Kinds of header line that headers reads; hNone is every other one. The
// kinds before hReason count only at their first occurrence: bit 1<<kind of
// headers' "seen" records it.
const (
	hNone uint8 = iota
	hCallID
	hCSeq
	hVia
	hTo
	hFrom
	hCL
	hExpires
	hPAI
	hReason   // every Reason header is read
	hContact  // every Contact header of a REGISTER or a response to one is read, in a second scan
	hIdentity // every Identity header is read: the SHAKEN one is kept
)

// Header names as little-endian words of their lower-case bytes, for
// headerKind. A name is compared after OR-ing 0x20 into every byte, which
// folds the case of letters and leaves "-" alone; it cannot turn another
// token character into a letter or "-" (RFC 3261 §25.1 token), and
// headerKind sees only tokens.
const (
	wTo      = 't' | 'o'<<8
	wVia     = 'v' | 'i'<<8 | 'a'<<16
	wCSeq    = 'c' | 's'<<8 | 'e'<<16 | 'q'<<24
	wFrom    = 'f' | 'r'<<8 | 'o'<<16 | 'm'<<24
	wReas    = 'r' | 'e'<<8 | 'a'<<16 | 's'<<24
	wOn      = 'o' | 'n'<<8
	wCallID  = 'c' | 'a'<<8 | 'l'<<16 | 'l'<<24 | '-'<<32 | 'i'<<40 | 'd'<<48
	wContact = 'c' | 'o'<<8 | 'n'<<16 | 't'<<24 | 'a'<<32 | 'c'<<40 | 't'<<48
	wExpires = 'e' | 'x'<<8 | 'p'<<16 | 'i'<<24 | 'r'<<32 | 'e'<<40 | 's'<<48
	wIdentit = 'i' | 'd'<<8 | 'e'<<16 | 'n'<<24 | 't'<<32 | 'i'<<40 | 't'<<48 | 'y'<<56
	wContent = 'c' | 'o'<<8 | 'n'<<16 | 't'<<24 | 'e'<<32 | 'n'<<40 | 't'<<48 | '-'<<56 // "content-" of content-length
	wTLength = 't' | '-'<<8 | 'l'<<16 | 'e'<<24 | 'n'<<32 | 'g'<<40 | 't'<<48 | 'h'<<56 // bytes 6..13 of content-length
	wPAssert = 'p' | '-'<<8 | 'a'<<16 | 's'<<24 | 's'<<32 | 'e'<<40 | 'r'<<48 | 't'<<56 // "p-assert" of p-asserted-identity
	wEdIdent = 'e' | 'd'<<8 | '-'<<16 | 'i'<<24 | 'd'<<32 | 'e'<<40 | 'n'<<48 | 't'<<56 // bytes 8..15
	wTity    = 't' | 'i'<<8 | 't'<<16 | 'y'<<24                                         // bytes 15..18

	fold2 = 0x2020
	fold4 = 0x20202020
	fold8 = 0x2020202020202020
)

// firstBytes[n] has bit c&31 set for the first byte c (lower case) of each
// header name of n bytes that headerKind knows: a header that is not read
// is most often rejected by its length and first byte, without a call.
var firstBytes = func() (t [20]uint32) {
	for _, name := range []string{"i", "v", "t", "f", "l", "m", "y", "to", "via", "cseq", "from",
		"reason", "call-id", "contact", "expires", "identity", "content-length", "p-asserted-identity"} {
		t[len(name)] |= 1 << (name[0] & 31)
	}
	return t
}()

// headerKind returns the kind of the header whose name is the n token bytes
// at the start of s; s holds at least n+1 bytes (the name and the colon at
// least). The dispatch is on the length and then on whole words, so that a
// name that matches none costs a switch and rarely a load.
func headerKind(s []byte, n int) uint8 {
	le := binary.LittleEndian
	switch n {
	case 1:
		switch s[0] | 0x20 {
		case 'i':
			return hCallID
		case 'v':
			return hVia
		case 't':
			return hTo
		case 'f':
			return hFrom
		case 'l':
			return hCL
		case 'm':
			return hContact
		case 'y':
			return hIdentity
		}
	case 2:
		if le.Uint16(s)|fold2 == wTo {
			return hTo
		}
	case 3:
		if (le.Uint32(s)|fold4)&0xffffff == wVia {
			return hVia
		}
	case 4:
		switch le.Uint32(s) | fold4 {
		case wCSeq:
			return hCSeq
		case wFrom:
			return hFrom
		}
	case 6:
		if le.Uint32(s)|fold4 == wReas && le.Uint16(s[4:])|fold2 == wOn {
			return hReason
		}
	case 7:
		switch (le.Uint64(s) | fold8) & (1<<56 - 1) {
		case wCallID:
			return hCallID
		case wContact:
			return hContact
		case wExpires:
			return hExpires
		}
	case 8:
		if le.Uint64(s)|fold8 == wIdentit {
			return hIdentity
		}
	case 14:
		if le.Uint64(s)|fold8 == wContent && le.Uint64(s[6:])|fold8 == wTLength {
			return hCL
		}
	case 19:
		if le.Uint64(s)|fold8 == wPAssert && le.Uint64(s[8:])|fold8 == wEdIdent && le.Uint32(s[15:])|fold4 == wTity {
			return hPAI
		}
	}
	return hNone
}

// nameWords is a header name and its colon, as the words that commonName
// compares: up to 24 bytes, each word with the bits that OR-ing folds
// (0x20 of the letters only: every other byte is compared exactly) and the
// mask of the bytes that count.
type nameWords struct {
	w, fold, mask [3]uint64
	len           int
	kind          uint8
}

// commonNames are the header names that most messages carry, by the first
// byte of the name (lower case, & 31), each with its colon right after it
// as user agents write them: a line that begins with one of them, in any
// case, is that header, without the scan of the name byte by byte and the
// dispatch of headerKind, which give the same kind (hNone for a header
// that is not read). Any other line takes that scan.
var commonNames = func() (t [32][]nameWords) {
	for _, c := range []struct {
		name string
		kind uint8
	}{
		{"via:", hVia}, {"v:", hVia}, {"to:", hTo}, {"t:", hTo}, {"from:", hFrom}, {"f:", hFrom},
		{"call-id:", hCallID}, {"i:", hCallID}, {"cseq:", hCSeq}, {"contact:", hContact}, {"m:", hContact},
		{"content-length:", hCL}, {"l:", hCL}, {"expires:", hExpires}, {"reason:", hReason},
		{"identity:", hIdentity}, {"p-asserted-identity:", hPAI},
		{"max-forwards:", hNone}, {"record-route:", hNone}, {"route:", hNone}, {"allow:", hNone},
		{"supported:", hNone}, {"user-agent:", hNone}, {"server:", hNone}, {"content-type:", hNone},
		{"accept:", hNone}, {"allow-events:", hNone}, {"session-expires:", hNone}, {"require:", hNone},
	} {
		var n nameWords
		n.len, n.kind = len(c.name), c.kind
		for k := 0; k < len(c.name); k++ {
			sh := uint(k%8) * 8
			n.w[k/8] |= uint64(c.name[k]) << sh
			n.mask[k/8] |= 0xff << sh
			if 'a' <= c.name[k] && c.name[k] <= 'z' {
				n.fold[k/8] |= 0x20 << sh
			}
		}
		t[c.name[0]&31] = append(t[c.name[0]&31], n)
	}
	return t
}()

// commonName returns the kind of the header whose line begins at b[p] and
// the length of its name and colon when the line begins with one of
// commonNames followed by its colon; length 0 otherwise, and when b ends
// before the whole words that hold the name (the scan of the name takes
// those).
func commonName(b []byte, p int) (kind uint8, n int) {
	if p+8 > len(b) {
		return hNone, 0
	}
	le := binary.LittleEndian
	w0 := le.Uint64(b[p:])
	for k := range commonNames[b[p]&31] {
		c := &commonNames[b[p]&31][k]
		if (w0|c.fold[0])&c.mask[0] != c.w[0] {
			continue
		}
		if c.len > 8 && (p+16 > len(b) || (le.Uint64(b[p+8:])|c.fold[1])&c.mask[1] != c.w[1]) {
			continue
		}
		if c.len > 16 && (p+24 > len(b) || (le.Uint64(b[p+16:])|c.fold[2])&c.mask[2] != c.w[2]) {
			continue
		}
		return c.kind, c.len
	}
	return hNone, 0
}

// headers scans header lines from b[p] until the empty line or the end of b.
// cut reports that b is a prefix of the input, so that an unterminated last
// line is incomplete rather than merely lacking its CRLF. With only hNone
// it reads every header a field needs but Contact, whose values only a
// REGISTER and its responses need: contact is then where the first Contact
// header line begins (0 when there is none), for a second scan from there
// with only hContact. With only hCL or hContact only that header is read
// and no error is reported. It returns the offset after the empty line (or
// where the scan stopped), whether the empty line was found, contact, and
// the first error.
//
// It walks the physical lines with bytes.IndexByte. A header line's name
// and colon are on its first physical line (a fold is LWS, which neither a
// token nor the colon contains), so the name is checked and dispatched
// there; a header that is not read costs no more than that, and its
// continuation lines only their line end. A header that is read is taken
// up, with its continuation lines, when the next line that is not a
// continuation begins.
func (m *Message) headers(b []byte, p int, cut bool, only uint8) (n int, term bool, contact int, err error) {
	var (
		seen   uint16
		kind   = hNone // header being read, value b[vs:ve]
		vs, ve int
		first  = true // no header line yet: a continuation line is ErrHeader
	)
	for p < len(b) {
		end, next, term := len(b), len(b), false
		if i := bytes.IndexByte(b[p:], '\n'); i >= 0 {
			end, next, term = p+i, p+i+1, true
		}
		if end > p && b[end-1] == '\r' {
			end--
		}
		if end-p > MaxLineBytes {
			// The line is skipped, and the continuation lines after it.
			if kind != hNone {
				if e := m.value(kind, b[vs:ve]); e != nil && err == nil {
					err = e
				}
			}
			if err == nil && only == hNone {
				err = ErrTooLong
			}
			kind, first = hNone, false
			if !term {
				return len(b), false, contact, err
			}
			p = next
			continue
		}
		if !term && cut {
			break // the line may continue beyond the bytes we read
		}
		if end == p {
			if kind != hNone {
				if e := m.value(kind, b[vs:ve]); e != nil && err == nil {
					err = e
				}
			}
			return next, term, contact, err
		}
		if c := b[p]; c == ' ' || c == '\t' {
			if kind != hNone {
				ve = end
			} else if first && err == nil && only == hNone {
				err = ErrHeader
			}
			p = next
			continue
		}
		if kind != hNone {
			if e := m.value(kind, b[vs:ve]); e != nil && err == nil {
				err = e
			}
		}
		first = false
		var i int // the colon
		if k, l := commonName(b, p); l > 0 {
			i, kind = p+l-1, k
		} else {
			// name: token, then SP/HT, then the colon (RFC 3261 §7.3.1).
			// Letters and "-" eight at a time; then the other token bytes,
			// one by one, and the end of the line. The line ends with a
			// byte that is neither, so nameRun does not pass end.
			i = p
			for i+8 <= len(b) {
				r := nameRun(binary.LittleEndian.Uint64(b[i:]))
				i += r
				if r < 8 {
					break
				}
			}
			for i < end && isToken(b[i]) {
				i++
			}
			n := i - p
			for i < end && (b[i] == ' ' || b[i] == '\t') {
				i++
			}
			if n == 0 || i >= end || b[i] != ':' {
				if err == nil && only == hNone {
					err = ErrHeader
				}
				kind, p = hNone, next
				continue
			}
			kind = hNone
			if n < len(firstBytes) && firstBytes[n]>>((b[p]|0x20)&31)&1 != 0 {
				kind = headerKind(b[p:i+1], n)
			}
		}
		switch {
		case only != hNone && kind != only:
			kind = hNone
		case kind == hContact && only == hNone:
			if contact == 0 {
				contact = p
			}
			kind = hNone
		case kind < hReason && kind != hNone:
			if bit := uint16(1) << kind; seen&bit != 0 {
				kind = hNone
			} else {
				seen |= bit
			}
		}
		vs, ve, p = i+1, end, next
	}
	if kind != hNone {
		if e := m.value(kind, b[vs:ve]); e != nil && err == nil {
			err = e
		}
	}
	return p, false, contact, err
}
