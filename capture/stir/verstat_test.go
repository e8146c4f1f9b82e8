package stir_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/stir"
)

var verstatCases = []struct {
	name, pai, from string
	want            string // "<nil>" for nil
}{
	// ATIS-1000074 §5.3.1: a tel URI parameter, in a SIP URI's user part
	// (user=phone) or a tel URI.
	{"sip uri user part", `<sip:+12155551212;verstat=TN-Validation-Passed@example.com;user=phone>`, "", "TN-Validation-Passed"},
	{"tel uri", `<tel:+12155551212;verstat=TN-Validation-Failed>`, "", "TN-Validation-Failed"},
	{"sip uri parameter", `"Alice" <sip:+12155551212@example.com;user=phone;verstat=No-TN-Validation>`, "", "No-TN-Validation"},
	{"two pai values, tel second", `<sip:+12155551212@example.com;user=phone>, <tel:+12155551212;verstat=TN-Validation-Passed>`, "", "TN-Validation-Passed"},
	{"first of two", `<tel:+1;verstat=TN-Validation-Failed>, <sip:+1;verstat=TN-Validation-Passed@h>`, "", "TN-Validation-Failed"},
	{"header parameter", `<sip:+12155551212@example.com>;verstat=TN-Validation-Passed`, "", "TN-Validation-Passed"},
	{"name case", `<tel:+1;VerStat=TN-Validation-Passed>`, "", "TN-Validation-Passed"},
	{"value as sent", `<tel:+1;verstat=tn-validation-passed>`, "", "tn-validation-passed"},
	{"unknown value", `<tel:+1;verstat=Vendor-Special;foo=bar>`, "", "Vendor-Special"},
	{"empty value", `<tel:+1;verstat=>`, "", ""},
	{"value ends at ?", `<sip:+1@h;verstat=TN-Validation-Passed?Subject=x>`, "", "TN-Validation-Passed"},
	{"from when pai has none", `<sip:+12155551212@example.com>`, `<sip:+12155551212;verstat=TN-Validation-Failed@example.com;user=phone>;tag=1928301774`, "TN-Validation-Failed"},
	{"from when no pai", "", `<tel:+12155551212;verstat=TN-Validation-Passed>;tag=x`, "TN-Validation-Passed"},
	{"pai before from", `<tel:+1;verstat=TN-Validation-Passed>`, `<tel:+1;verstat=TN-Validation-Failed>;tag=x`, "TN-Validation-Passed"},
	{"none", `<sip:+12155551212@example.com;user=phone>`, `<sip:alice@example.com>;tag=x`, "<nil>"},
	{"absent headers", "", "", "<nil>"},
	{"in display name", `"x;verstat=TN-Validation-Passed" <sip:a@b>`, "", "<nil>"},
	{"escaped quote in display name", `"x\";verstat=TN-Validation-Passed" <sip:a@b>`, "", "<nil>"},
	{"no equals", `<tel:+1;verstat;x=TN-Validation-Passed>`, "", "<nil>"},
	{"longer name", `<tel:+1;verstatus=TN-Validation-Passed>`, "", "<nil>"},
	{"other parameter value", `<tel:+1;x=verstat=TN-Validation-Passed>`, "", "<nil>"},
	{"cut short", `<tel:+1;verst`, "", "<nil>"},
}

func TestVerstat(t *testing.T) {
	for _, tc := range verstatCases {
		t.Run(tc.name, func(t *testing.T) {
			var pai, from []byte
			if tc.pai != "" {
				pai = []byte(tc.pai)
			}
			if tc.from != "" {
				from = []byte(tc.from)
			}
			got := stir.Verstat(pai, from)
			s := string(got)
			if got == nil {
				s = "<nil>"
			}
			if s != tc.want {
				t.Errorf("Verstat = %q, want %q", s, tc.want)
			}
		})
	}
}

func TestVerstatAllocs(t *testing.T) {
	for _, tc := range verstatCases {
		pai, from := []byte(tc.pai), []byte(tc.from)
		if n := testing.AllocsPerRun(50, func() { stir.Verstat(pai, from) }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, n)
		}
	}
}

func BenchmarkVerstat(b *testing.B) {
	pai := []byte(`"Alice" <sip:+12155551212;verstat=TN-Validation-Passed@example.com;user=phone>, <tel:+12155551212>`)
	b.ReportAllocs()
	b.Run("pai", func(b *testing.B) {
		for b.Loop() {
			stir.Verstat(pai, nil)
		}
	})
	// The usual INVITE outside North America: no P-Asserted-Identity, a
	// From with a tag and no verstat.
	from := []byte(`"Alice Liddell" <sip:alice@atlanta.example.com>;tag=1928301774`)
	b.Run("from-none", func(b *testing.B) {
		for b.Loop() {
			stir.Verstat(nil, from)
		}
	})
}

// FuzzVerstat checks that Verstat never panics and returns a part of its
// input with no byte that ends a value.
func FuzzVerstat(f *testing.F) {
	for _, tc := range verstatCases {
		f.Add([]byte(tc.pai), []byte(tc.from))
	}
	f.Fuzz(func(t *testing.T, pai, from []byte) {
		v := stir.Verstat(pai, from)
		want := verstatOracle(pai)
		if want == nil {
			want = verstatOracle(from)
		}
		if !bytes.Equal(v, want) || (v == nil) != (want == nil) {
			t.Fatalf("Verstat(%q, %q) = %q, the byte-by-byte scan gives %q", pai, from, v, want)
		}
		for _, c := range v {
			switch c {
			case ';', ',', '<', '>', '@', '?', '&', '"', ' ', '\t', '\r', '\n':
				t.Fatalf("Verstat = %q: holds %q", v, c)
			}
		}
	})
}

// verstatOracle is the first verstat scanner, a test of every byte, kept
// as the oracle of FuzzVerstat: the value of the first verstat parameter
// after a ";" outside quoted strings, or nil.
func verstatOracle(v []byte) []byte {
	const name = "verstat="
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
		case ';':
			j := i + 1
			if len(v)-j < len(name) || !bytes.EqualFold(v[j:j+len(name)], []byte(name)) {
				continue
			}
			s := j + len(name)
			e := s
			for e < len(v) && !strings.ContainsRune(";,<>@?&\" \t\r\n", rune(v[e])) {
				e++
			}
			return v[s:e]
		}
	}
	return nil
}
