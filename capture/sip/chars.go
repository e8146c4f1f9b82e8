package sip

import (
	"encoding/binary"
	"math/bits"
)

// Byte classes of RFC 3261 §25.1, one table for every scan of the package.
const (
	cToken    = 1 << iota // alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
	cLWS                  // SP, HT, CR, LF: linear white space, folds included
	cParamEnd             // ";", ",", SP, HT, CR, LF: the end of a token parameter value
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= cToken
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= cToken
		t[c-'a'+'A'] |= cToken
	}
	for _, c := range "-.!%*_+`'~" {
		t[c] |= cToken
	}
	for _, c := range " \t\r\n" {
		t[c] |= cLWS | cParamEnd
	}
	t[';'] |= cParamEnd
	t[','] |= cParamEnd
	return t
}()

// isToken reports a token character (RFC 3261 §25.1).
func isToken(c byte) bool { return class[c]&cToken != 0 }

// isLWS reports linear white space, folds included (RFC 3261 §25.1).
func isLWS(c byte) bool { return class[c]&cLWS != 0 }

func isParamEnd(c byte) bool { return class[c]&cParamEnd != 0 }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func trimLWS(v []byte) []byte {
	for len(v) > 0 && isLWS(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isLWS(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

// tokenEnd returns the end of the run of token characters from b[i].
func tokenEnd(b []byte, i int) int {
	for i < len(b) && isToken(b[i]) {
		i++
	}
	return i
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring
// ASCII case in b.
func eqFold(b []byte, s string) bool {
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

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// Words of eight bytes, for the scans that look at eight bytes at a time
// (SWAR: SIMD within a register).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// zeros flags the bytes of x that are zero with their high bit. Only the
// lowest flag is exact: a byte just above a zero byte that is 0x01 is
// flagged too (the borrow of the subtraction), which cannot move the
// lowest flag, and the lowest flag is all that the scans below read. The
// same holds for an OR of such flags, and for (x-ones*n)&^x&highs, which
// flags the bytes below n (n <= 0x80).
func zeros(x uint64) uint64 { return (x - ones) &^ x & highs }

// indexStop returns the offset of the first '"', "<", "," or ";" in v at
// or after v[i], or len(v): the bytes that param, paramStart and nameAddr
// stop at. It reads eight bytes at a time; the bytes are constants so that
// the loop keeps everything in registers.
func indexStop(v []byte, i int) int {
	const q, lt, cm, sc = ones * '"', ones * '<', ones * ',', ones * ';'
	s := v[i:]
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(s)
		a, b, c, d := w^q, w^lt, w^cm, w^sc
		if f := ((a-ones)&^a | (b-ones)&^b | (c-ones)&^c | (d-ones)&^d) & highs; f != 0 {
			return len(v) - len(s) + bits.TrailingZeros64(f)>>3
		}
		s = s[8:]
	}
	for j, x := range s {
		if x == '"' || x == '<' || x == ',' || x == ';' {
			return len(v) - len(s) + j
		}
	}
	return len(v)
}

// indexComma is indexStop without ";": the bytes that valueEnd stops at.
func indexComma(v []byte, i int) int {
	const q, lt, cm = ones * '"', ones * '<', ones * ','
	s := v[i:]
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(s)
		a, b, c := w^q, w^lt, w^cm
		if f := ((a-ones)&^a | (b-ones)&^b | (c-ones)&^c) & highs; f != 0 {
			return len(v) - len(s) + bits.TrailingZeros64(f)>>3
		}
		s = s[8:]
	}
	for j, x := range s {
		if x == '"' || x == '<' || x == ',' {
			return len(v) - len(s) + j
		}
	}
	return len(v)
}

// nameRun returns how many of the bytes of w, from the first, are ASCII
// letters or "-", the bytes of nearly every header name: 0..8.
func nameRun(w uint64) int {
	x := w | 0x2020202020202020 // fold case: only letters land in a..z
	y := x & 0x7f7f7f7f7f7f7f7f // no byte sum below carries into the next
	letter := (y + ones*(0x80-'a')) &^ (y + ones*(0x7f-'z')) &^ x & highs
	d := w ^ ones*'-'
	dash := ^((d&0x7f7f7f7f7f7f7f7f + 0x7f7f7f7f7f7f7f7f) | d) & highs // exact, unlike zeros
	return bits.TrailingZeros64(^(letter|dash)&highs) >> 3
}

// paramValueEnd returns the offset of the first byte at or after v[k] that
// ends a token parameter value (isParamEnd), or len(v).
func paramValueEnd(v []byte, k int) int {
	for k+8 <= len(v) {
		w := binary.LittleEndian.Uint64(v[k:])
		// Bytes below 0x21 (SP, HT, CR, LF and other controls), "," and
		// ";"; the lowest flag is exact, and a control that is not LWS
		// is part of the value.
		f := (w-ones*0x21)&^w&highs | zeros(w^ones*',') | zeros(w^ones*';')
		if f == 0 {
			k += 8
			continue
		}
		k += bits.TrailingZeros64(f) >> 3
		if isParamEnd(v[k]) {
			return k
		}
		k++
	}
	for k < len(v) && !isParamEnd(v[k]) {
		k++
	}
	return k
}
