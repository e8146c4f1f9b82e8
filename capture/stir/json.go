package stir

// jsonScanner validates JSON text (RFC 8259) in place, without building
// values: b[i] is the next byte to read.
type jsonScanner struct {
	b []byte
	i int
}

// peek returns the next byte, 0 at the end.
func (p *jsonScanner) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// eat consumes c when it is the next byte.
func (p *jsonScanner) eat(c byte) bool {
	if p.peek() == c && p.i < len(p.b) {
		p.i++
		return true
	}
	return false
}

// space skips insignificant white space (RFC 8259 §2: ws).
func (p *jsonScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value consumes one value (RFC 8259 §3) at nesting depth d (the
// top-level object is 1); false when it is not one or nests deeper than
// MaxDepth. White space before it has been skipped.
func (p *jsonScanner) value(d int) bool {
	switch c := p.peek(); {
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '{':
		return p.object(d)
	case c == '[':
		return p.array(d)
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return false
}

// object consumes an object at depth d (RFC 8259 §4).
func (p *jsonScanner) object(d int) bool {
	if d > MaxDepth {
		return false
	}
	p.i++ // '{'
	p.space()
	if p.eat('}') {
		return true
	}
	for {
		p.space()
		if _, ok := p.str(); !ok {
			return false
		}
		p.space()
		if !p.eat(':') {
			return false
		}
		p.space()
		if !p.value(d + 1) {
			return false
		}
		p.space()
		if p.eat('}') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// array consumes an array at depth d (RFC 8259 §5).
func (p *jsonScanner) array(d int) bool {
	if d > MaxDepth {
		return false
	}
	p.i++ // '['
	p.space()
	if p.eat(']') {
		return true
	}
	for {
		p.space()
		if !p.value(d + 1) {
			return false
		}
		p.space()
		if p.eat(']') {
			return true
		}
		if !p.eat(',') {
			return false
		}
	}
}

// literal consumes the literal name s (RFC 8259 §3).
func (p *jsonScanner) literal(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// number consumes a number (RFC 8259 §6):
// [ "-" ] ( "0" / 1-9 *DIGIT ) [ "." 1*DIGIT ] [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ].
func (p *jsonScanner) number() bool {
	p.eat('-')
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case '1' <= c && c <= '9':
		p.digits()
	default:
		return false
	}
	if p.eat('.') && !p.digits() {
		return false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

// digits consumes 1*DIGIT; false when there is none.
func (p *jsonScanner) digits() bool {
	s := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > s
}

// str consumes a string (RFC 8259 §7) and returns its content between the
// quotes, escapes as sent. Bytes below 0x20 must be escaped; an escape is
// one of \" \\ \/ \b \f \n \r \t or \u and four hex digits. Bytes of 0x80
// and above are taken as they are, valid UTF-8 or not, as encoding/json
// takes them.
func (p *jsonScanner) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	s := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[s : p.i-1], true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return nil, false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if len(p.b)-p.i < 6 || hex(p.b[p.i+2:p.i+6]) < 0 {
					return nil, false
				}
				p.i += 6
			default:
				return nil, false
			}
		default:
			p.i++
		}
	}
	return nil, false
}

// hex returns the value of four hex digits, -1 when they are not.
func hex(b []byte) int {
	v := 0
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}

// jsonEqual reports whether the content raw of a valid JSON string (as
// str returns it), its escapes decoded, is the ASCII text s. Any
// character outside ASCII, escaped or not, makes it differ.
func jsonEqual(raw []byte, s string) bool {
	k := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' {
			i++
			switch raw[i] {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				r := hex(raw[i+1 : i+5])
				if r >= 0x80 {
					return false
				}
				c = byte(r)
				i += 4
			default: // '"', '\\', '/'
				c = raw[i]
			}
		}
		if c >= 0x80 || k >= len(s) || s[k] != c {
			return false
		}
		k++
	}
	return k == len(s)
}
