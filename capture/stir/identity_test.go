package stir_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/stir"
)

// The PASSporT of RFC 8588 §6 (the SHAKEN example): its protected header
// and payload, as JSON, and the Identity header value of RFC 8224 §4
// built from them. The signature is a made-up ES256 one (64 bytes,
// base64url): it is never verified.
const (
	rfc8588Header  = `{"alg":"ES256","typ":"passport","ppt":"shaken","x5u":"https://cert.example.org/passport.cer"}`
	rfc8588Payload = `{"attest":"A","dest":{"tn":["12155550131"]},"iat":1443208345,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"}`
	signature      = "MEUCIQCEFJXkDV1h9tGSwVfFmvM7HzEVVaVTpOSqwC2fTMThZAIgSBLaoSpV-vkv9TWSUEbKw1fOGMYrT1ArLsjLpHuDHgQ"
	params         = ";info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// identity returns an Identity header value carrying payload (JSON).
func identity(payload string) string {
	return b64(rfc8588Header) + "." + b64(payload) + "." + signature + params
}

// withAttest is the RFC 8588 payload with its attest claim replaced.
func withAttest(claim string) string {
	return strings.Replace(rfc8588Payload, `"attest":"A"`, claim, 1)
}

type attestCase struct {
	name string
	in   string
	want byte
	err  error
}

var attestCases = []attestCase{
	{"rfc 8588 example", identity(rfc8588Payload), 'A', nil},
	{"attest B", identity(withAttest(`"attest":"B"`)), 'B', nil},
	{"attest C", identity(withAttest(`"attest":"C"`)), 'C', nil},
	{"attest last member", identity(`{"origid":"x","iat":1,"attest":"B"}`), 'B', nil},
	{"attest escaped", identity(`{"\u0061ttest":"\u0043"}`), 'C', nil},
	{"json white space", identity(" {\n\t\"attest\" : \"A\" ,\r\n\"dest\":{ \"tn\" : [ ] } }\n"), 'A', nil},
	{"nested attest ignored", identity(`{"orig":{"attest":"C"},"attest":"B"}`), 'B', nil},
	{"no parameters", b64(rfc8588Header) + "." + b64(rfc8588Payload) + "." + signature, 'A', nil},
	{"leading white space, folded parameters", "  " + b64(rfc8588Header) + "." + b64(rfc8588Payload) + "." + signature + "\r\n ;info=<https://x/c>", 'A', nil},
	{"payload of every length mod 4", identity(`{"attest":"A","x":"12"}`), 'A', nil},
	{"payload of every length mod 4 (2)", identity(`{"attest":"A","x":"123"}`), 'A', nil},
	{"payload of every length mod 4 (3)", identity(`{"attest":"A","x":"1234"}`), 'A', nil},
	{"numbers and literals", identity(`{"a":-0.5e+10,"b":[true,false,null,0,12,1.25E-3],"attest":"A"}`), 'A', nil},
	{"non-ascii members", identity(`{"nam":"Zoë ☎","attest":"A"}`), 'A', nil},
	{"payload at the bound", identity(`{"attest":"A","x":"` + strings.Repeat("x", stir.MaxPayloadLen/4*3-21) + `"}`), 'A', nil},

	{"absent", "", 0, nil},
	{"white space only", " \t", 0, nil},
	{"two segments", b64(rfc8588Header) + "." + b64(rfc8588Payload) + params, 0, stir.ErrForm},
	{"four segments", b64(rfc8588Header) + "." + b64(rfc8588Payload) + "." + signature + ".x", 0, stir.ErrForm},
	{"four segments before parameters", b64(rfc8588Header) + "." + b64(rfc8588Payload) + "." + signature + ".x" + params, 0, stir.ErrForm},
	{"empty header", "." + b64(rfc8588Payload) + "." + signature, 0, stir.ErrForm},
	{"empty signature", b64(rfc8588Header) + "." + b64(rfc8588Payload) + "." + params, 0, stir.ErrForm},
	{"standard base64 alphabet", b64(rfc8588Header) + "." + base64.RawStdEncoding.EncodeToString([]byte(`{"attest":"A","x":"???>>>"}`)) + "." + signature, 0, stir.ErrForm},
	{"padding", b64(rfc8588Header) + "." + base64.URLEncoding.EncodeToString([]byte(`{"attest":"A"}`)) + "." + signature, 0, stir.ErrForm},
	{"quoted, as RFC 4474", `"` + identity(rfc8588Payload) + `"`, 0, stir.ErrForm},
	{"compact form", b64(rfc8588Header) + ".." + signature + params, 0, stir.ErrCompact},
	{"base64 length 4n+1", b64(rfc8588Header) + "." + length4n1(b64(rfc8588Payload)) + "." + signature, 0, stir.ErrBase64},
	{"too long", identity(`{"attest":"A","x":"` + strings.Repeat("x", stir.MaxPayloadLen) + `"}`), 0, stir.ErrTooLong},
	{"huge", identity(strings.Repeat(" ", 60000) + rfc8588Payload), 0, stir.ErrTooLong},
	{"not json", identity(`attest=A`), 0, stir.ErrJSON},
	{"json array", identity(`["attest","A"]`), 0, stir.ErrJSON},
	{"json string", identity(`"attest"`), 0, stir.ErrJSON},
	{"truncated json", identity(rfc8588Payload[:len(rfc8588Payload)-1]), 0, stir.ErrJSON},
	{"trailing data", identity(rfc8588Payload + "x"), 0, stir.ErrJSON},
	{"two objects", identity(rfc8588Payload + "{}"), 0, stir.ErrJSON},
	{"trailing comma", identity(`{"attest":"A",}`), 0, stir.ErrJSON},
	{"single quotes", identity(`{'attest':'A'}`), 0, stir.ErrJSON},
	{"bad escape", identity(`{"attest":"A","x":"\x"}`), 0, stir.ErrJSON},
	{"bad unicode escape", identity(`{"attest":"A","x":"\u12G4"}`), 0, stir.ErrJSON},
	{"control character", identity("{\"attest\":\"A\",\"x\":\"a\tb\"}"), 0, stir.ErrJSON},
	{"leading zero", identity(`{"attest":"A","iat":0123}`), 0, stir.ErrJSON},
	{"bad literal", identity(`{"attest":"A","x":nul}`), 0, stir.ErrJSON},
	{"too deep", identity(`{"attest":"A","x":` + strings.Repeat("[", stir.MaxDepth) + strings.Repeat("]", stir.MaxDepth) + `}`), 0, stir.ErrJSON},
	{"deepest allowed", identity(`{"attest":"A","x":` + strings.Repeat("[", stir.MaxDepth-1) + strings.Repeat("]", stir.MaxDepth-1) + `}`), 'A', nil},
	{"binary payload", b64(rfc8588Header) + "." + base64.RawURLEncoding.EncodeToString([]byte{0xff, 0, 1, 2, 0x80}) + "." + signature, 0, stir.ErrJSON},
	{"no attest", identity(`{"dest":{"tn":["12155550131"]},"iat":1443208345,"orig":{"tn":"12155550121"}}`), 0, stir.ErrNoAttest},
	{"empty object", identity(`{}`), 0, stir.ErrNoAttest},
	{"attest upper case name", identity(`{"ATTEST":"A"}`), 0, stir.ErrNoAttest},
	{"attest D", identity(withAttest(`"attest":"D"`)), 0, stir.ErrAttest},
	{"attest lower case", identity(withAttest(`"attest":"a"`)), 0, stir.ErrAttest},
	{"attest AB", identity(withAttest(`"attest":"AB"`)), 0, stir.ErrAttest},
	{"attest empty", identity(withAttest(`"attest":""`)), 0, stir.ErrAttest},
	{"attest not a string", identity(withAttest(`"attest":1`)), 0, stir.ErrAttest},
	{"attest object", identity(withAttest(`"attest":{"level":"A"}`)), 0, stir.ErrAttest},
	{"attest twice", identity(`{"attest":"A","attest":"A"}`), 0, stir.ErrAttest},
	{"attest twice, last bad", identity(`{"attest":"A","attest":"X"}`), 0, stir.ErrAttest},
	{"attest non-ascii escape", identity(`{"attest":"\u00c1"}`), 0, stir.ErrAttest},
}

// length4n1 pads base64url text with "A" to a length of 4n+1 characters,
// which no byte string encodes to.
func length4n1(s string) string {
	for len(s)%4 != 1 {
		s += "A"
	}
	return s
}

func TestAttestation(t *testing.T) {
	for _, tc := range attestCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stir.Attestation([]byte(tc.in))
			if got != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("Attestation = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestAttestationNil(t *testing.T) {
	if got, err := stir.Attestation(nil); got != 0 || err != nil {
		t.Errorf("Attestation(nil) = %q, %v; want 0, nil", got, err)
	}
}

func TestAttestationAllocs(t *testing.T) {
	for _, tc := range attestCases {
		in := []byte(tc.in)
		if n := testing.AllocsPerRun(50, func() { stir.Attestation(in) }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, n)
		}
	}
}

func BenchmarkAttestation(b *testing.B) {
	in := []byte(identity(rfc8588Payload))
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := stir.Attestation(in); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzAttestation checks that Attestation never panics and agrees with
// encoding/json on the payload: fuzzed whole Identity values, and fuzzed
// payloads wrapped in the RFC 8588 header and signature.
func FuzzAttestation(f *testing.F) {
	for _, tc := range attestCases {
		if len(tc.in) < 8192 {
			f.Add([]byte(tc.in), false)
		}
	}
	for _, p := range []string{rfc8588Payload, withAttest(`"attest":"B"`), withAttest(`"attest":"C"`), `{"attest":"\u0041"}`,
		`{"attest":"A","attest":"B"}`, `{"a":[[[{}]]],"attest":"C"}`, `{"attest":null}`, `[]`, `{`, `"`, `{"x":1e}`, `{"x":-}`} {
		f.Add([]byte(p), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, wrap bool) {
		v := in
		if wrap {
			v = []byte(b64(rfc8588Header) + "." + base64.RawURLEncoding.EncodeToString(in) + "." + signature + params)
		}
		got, err := stir.Attestation(v)
		if err == nil && got != 0 && got != 'A' && got != 'B' && got != 'C' {
			t.Fatalf("Attestation = %q, nil", got)
		}
		if (got == 0) == (err == nil) && len(bytes.TrimLeft(v, " \t\r\n")) > 0 {
			t.Fatalf("Attestation = %q, %v: a level or an error, one of them", got, err)
		}
		if !wrap || len(in) > stir.MaxPayloadLen/4*3 {
			return
		}
		want, wantErr := oracle(in)
		if got != want || err != wantErr {
			t.Fatalf("payload %q: Attestation = %q, %v; encoding/json says %q, %v", in, got, err, want, wantErr)
		}
	})
}

// oracle reads the attest claim of payload with encoding/json, as
// Attestation should: ErrCompact when it is empty, ErrJSON unless it is one JSON object (nesting at
// most MaxDepth), ErrNoAttest without a top-level "attest", ErrAttest for
// a duplicate or a value other than "A", "B", "C".
func oracle(payload []byte) (byte, error) {
	if len(payload) == 0 {
		return 0, stir.ErrCompact // header..signature: RFC 8225 §7
	}
	if !json.Valid(payload) || depth(payload) > stir.MaxDepth {
		return 0, stir.ErrJSON
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	if tok, _ := d.Token(); tok != json.Delim('{') {
		return 0, stir.ErrJSON
	}
	var level byte
	n := 0
	for d.More() {
		name, _ := d.Token()
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			panic(err) // json.Valid said it was valid
		}
		if name != "attest" {
			continue
		}
		n++
		var s string
		level = 0
		if json.Unmarshal(v, &s) == nil && (s == "A" || s == "B" || s == "C") {
			level = s[0]
		}
	}
	switch {
	case n == 0:
		return 0, stir.ErrNoAttest
	case n > 1 || level == 0:
		return 0, stir.ErrAttest
	}
	return level, nil
}

// depth returns the deepest nesting of objects and arrays in valid JSON.
func depth(b []byte) int {
	d := json.NewDecoder(bytes.NewReader(b))
	cur, most := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			return most
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			cur++
			most = max(most, cur)
		case json.Delim('}'), json.Delim(']'):
			cur--
		}
	}
}
