package sip

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The eight-bytes-at-a-time scans against their one-byte-at-a-time
// definitions, at every offset of random inputs over an alphabet that
// holds the bytes they look for, their neighbours (0x01 and the bytes one
// above each, which the borrow of zeros can flag) and bytes above 0x7f.
func TestWordScans(t *testing.T) {
	const alphabet = "aZz-_.09:;,<>\"\\ \t\r\n\x00\x01\x0b\x1f\x20\x21\x23\x2d\x3c\x3d\x40\x5b\x60\x7b\x7f\x80\xa0\xc1\xff"
	naiveIndex := func(v []byte, i int, set string) int {
		for ; i < len(v); i++ {
			if strings.IndexByte(set, v[i]) >= 0 {
				return i
			}
		}
		return len(v)
	}
	naiveRun := func(v []byte) int {
		n := 0
		for n < 8 && ('a' <= v[n]|0x20 && v[n]|0x20 <= 'z' || v[n] == '-') {
			n++
		}
		return n
	}
	naiveValueEnd := func(v []byte, k int) int {
		for k < len(v) && !strings.ContainsRune(";, \t\r\n", rune(v[k])) {
			k++
		}
		return k
	}
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]byte, 40)
	for range 20000 {
		n := r.IntN(len(v) + 1)
		for j := range v[:n] {
			if r.IntN(3) == 0 {
				v[j] = alphabet[r.IntN(len(alphabet))]
			} else {
				v[j] = byte('a' + r.IntN(26))
			}
		}
		s := v[:n]
		for i := 0; i <= n; i++ {
			if got, want := indexStop(s, i), naiveIndex(s, i, "\"<,;"); got != want {
				t.Fatalf("indexStop(%q, %d) = %d, want %d", s, i, got, want)
			}
			if got, want := indexComma(s, i), naiveIndex(s, i, "\"<,"); got != want {
				t.Fatalf("indexComma(%q, %d) = %d, want %d", s, i, got, want)
			}
			if got, want := paramValueEnd(s, i), naiveValueEnd(s, i); got != want {
				t.Fatalf("paramValueEnd(%q, %d) = %d, want %d", s, i, got, want)
			}
			if i+8 <= n {
				w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
					uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
				if got, want := nameRun(w), naiveRun(s[i:]); got != want {
					t.Fatalf("nameRun(%q) = %d, want %d", s[i:i+8], got, want)
				}
			}
		}
	}
}

// TestHeaderKind checks the word constants: every name in three cases, and
// names one byte off.
func TestHeaderKind(t *testing.T) {
	kinds := map[string]uint8{
		"i": hCallID, "call-id": hCallID, "v": hVia, "via": hVia, "t": hTo, "to": hTo,
		"f": hFrom, "from": hFrom, "l": hCL, "content-length": hCL, "m": hContact,
		"contact": hContact, "cseq": hCSeq, "expires": hExpires, "reason": hReason,
		"y": hIdentity, "identity": hIdentity, "p-asserted-identity": hPAI,
	}
	kind := func(name string) uint8 {
		s := []byte(name + ":")
		if len(name) < len(firstBytes) && firstBytes[len(name)]>>((s[0]|0x20)&31)&1 == 0 {
			return hNone
		}
		return headerKind(s, len(name))
	}
	for name, want := range kinds {
		for _, n := range []string{name, strings.ToUpper(name), strings.ToUpper(name[:1]) + name[1:]} {
			if got := kind(n); got != want {
				t.Errorf("kind(%q) = %d, want %d", n, got, want)
			}
		}
		for i := range len(name) {
			for _, c := range []byte{'x', '_', name[i] ^ 0x01} {
				n := name[:i] + string(c) + name[i+1:]
				if _, ok := kinds[strings.ToLower(n)]; !ok && kind(n) != hNone {
					t.Errorf("kind(%q) = %d, want none", n, kind(n))
				}
			}
		}
		if _, ok := kinds[name+"x"]; !ok && kind(name+"x") != hNone {
			t.Errorf("kind(%q) = %d, want none", name+"x", kind(name+"x"))
		}
	}
}
