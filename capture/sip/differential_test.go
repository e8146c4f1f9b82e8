package sip_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// The oracle differential compares Parse and FrameLength with the scanner
// they replaced (oracle_test.go, sip.ParseOracle and sip.FrameLengthOracle):
// every field of Message, nil and empty told apart, and the error value
// must be identical, and so must FrameLength's length and error.
//
// Intentional differences, where the new scanner is right by RFC 3261 and
// the oracle was not, are listed in oracleExceptions with the side that is
// right and why; diffOracle reports them by name and checks that the
// difference is only the one described. There are none so far: no input
// of the tests, of the public captures or of the fuzzer has shown the
// oracle wrong by RFC 3261 where Parse is right, or the reverse.
//
// Runs: FuzzParseDifferential, 10 minutes with -parallel 1 on a shared
// 2-core machine, 9.67 M executions, clean (go test -run XXX -fuzz
// FuzzParseDifferential -fuzztime 10m -parallel 1 ./capture/sip/).

// oracleExceptions maps the name of each intentional difference to a
// function that reports whether the input b and the two results are that
// difference and nothing else.
var oracleExceptions = map[string]func(b []byte, got, want *sip.Message, err, werr error) bool{}

// diffOracle runs both scanners on b. It returns the name of an intentional
// difference, or a description of a mismatch; both empty means identical.
func diffOracle(b []byte) (exception, mismatch string) {
	var got, want sip.Message
	err := sip.Parse(b, &got)
	werr := sip.ParseOracle(b, &want)
	if err != werr || !reflect.DeepEqual(got, want) {
		for name, is := range oracleExceptions {
			if is(b, &got, &want, err, werr) {
				return name, ""
			}
		}
		return "", fmt.Sprintf("Parse:\n got %v %s\nwant %v %s", err, render(&got), werr, render(&want))
	}
	n, ferr := sip.FrameLength(b)
	wn, wferr := sip.FrameLengthOracle(b)
	if n != wn || ferr != wferr {
		return "", fmt.Sprintf("FrameLength: got %d %v, want %d %v", n, ferr, wn, wferr)
	}
	return "", ""
}

// fuzzSeeds returns the inputs kept under testdata/fuzz/<target>.
func fuzzSeeds(t testing.TB, target string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a one-argument fuzz input", f)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// differentialCorpus returns every input of the package's tests by name: the
// crafted messages, the Parse table, the sipgo differential inputs, the
// kept fuzz inputs and the messages of the public captures.
func differentialCorpus(t testing.TB) map[string][]byte {
	inputs := map[string][]byte{}
	for i, s := range corpus {
		inputs[fmt.Sprintf("crafted/%d", i)] = []byte(s)
	}
	for i, s := range differentialInputs {
		inputs[fmt.Sprintf("differential/%d", i)] = []byte(s)
	}
	for i, s := range oracleInputs {
		inputs[fmt.Sprintf("oracle/%d", i)] = []byte(s)
	}
	for _, tc := range parseCases {
		inputs["table/"+tc.name] = []byte(tc.in)
	}
	for _, target := range []string{"FuzzParse", "FuzzParseDifferential"} {
		for i, b := range fuzzSeeds(t, target) {
			inputs[fmt.Sprintf("%s/%d", target, i)] = b
		}
	}
	for file, msgs := range corpusMessages(t) {
		for i, b := range msgs {
			inputs[fmt.Sprintf("%s/%d", file, i)] = b
		}
	}
	return inputs
}

// variants returns b and what a capture or a stream makes of it: LF line
// ends, and b cut short at every line end and in the middle of every line.
func variants(b []byte) [][]byte {
	out := [][]byte{b, bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))}
	for i := 0; i < len(b); i++ {
		if b[i] == '\n' {
			out = append(out, b[:i], b[:i+1])
			if j := bytes.IndexByte(b[i+1:], '\n'); j > 1 {
				out = append(out, b[:i+1+j/2])
			}
		}
	}
	return out
}

func TestParseDifferential(t *testing.T) {
	inputs := differentialCorpus(t)
	compared, exceptions := 0, map[string]int{}
	for name, b := range inputs {
		for _, v := range variants(b) {
			exception, mismatch := diffOracle(v)
			if mismatch != "" {
				t.Errorf("%s: %s\ninput %q", name, mismatch, v)
				continue
			}
			compared++
			if exception != "" {
				exceptions[exception]++
			}
		}
	}
	t.Logf("%d inputs, %d variants compared, intentional differences %v", len(inputs), compared, exceptions)
}

// FuzzParseDifferential checks that Parse and FrameLength agree with the
// scanner they replaced (see diffOracle) on any input.
func FuzzParseDifferential(f *testing.F) {
	for _, b := range differentialCorpus(f) {
		if len(b) <= 4096 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, mismatch := diffOracle(b); mismatch != "" {
			t.Fatalf("differs from the oracle: %s", mismatch)
		}
	})
}

// oracleInputs are crafted for the differential with the oracle: the
// corners of the line walk (folds, limits, cuts) and the new headers.
var oracleInputs = []string{
	"SIP/2.0 200 OK\r\n \r\nCall-ID: a\r\n\r\n",
	"SIP/2.0 200 OK\r\n\tx\r\n y\r\nCall-ID: a\r\n\r\n",
	"SIP/2.0 200 OK\r\nBad Name: 1\r\n folded\r\nCall-ID: a\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n b\r\n\tc \r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID:\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID\r\n : a\r\n\r\n",
	"SIP/2.0 200 OK\r\nCSeq: 1\r\n\r\n INVITE\r\n\r\n",
	"SIP/2.0 200 OK\r\nl: 5\r\nContent-Length: x\r\n\r\n",
	"SIP/2.0 200 OK\r\nContent-Length: x\r\nl: 5\r\n\r\n",
	"SIP/2.0 200 OK\r\nContent-Length : 1\r\n 2\r\n\r\n",
	"SIP/2.0 200 OK\r\nContent-Length: 12\r\n\r\nbody",
	"SIP/2.0 200 OK\r\nX: " + strings.Repeat("a", sip.MaxLineBytes-3) + "\r\nCall-ID: a\r\n\r\n",
	"SIP/2.0 200 OK\r\nX: " + strings.Repeat("a", sip.MaxLineBytes-2) + "\r\n more\r\nCall-ID: a\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n " + strings.Repeat("a", sip.MaxLineBytes) + "\r\n more\r\nCSeq: 1 BYE\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n" + strings.Repeat("a", sip.MaxLineBytes) + "\r",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n" + strings.Repeat("a", sip.MaxLineBytes+1),
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 65) + "X-Cut: " + strings.Repeat("q", 2000) + "\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 65) + "CSeq: 1 INVITE\r\n l: 7\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 64) + strings.Repeat("\r\n", 600),
	"SIP/2.0 200 " + strings.Repeat("x", sip.MaxLineBytes-12) + "\r\nCall-ID: a\r\n\r\n",
	"SIP/2.0 200 " + strings.Repeat("x", sip.MaxLineBytes-11) + "\r\nCall-ID: a\r\n\r\n",
	"INVITE sip:" + strings.Repeat("x", sip.MaxLineBytes-19) + " SIP/2.0\r\nCall-ID: a\r\n\r\n",
	"INVITE sip:" + strings.Repeat("x", sip.MaxLineBytes-18) + " SIP/2.0\r\nCall-ID: a\r\n\r\n",
	"SIP/2.0 200 OK\nCall-ID: a\n\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\rCSeq: 1 BYE\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n\r",
	"SIP/2.0 200 OK\r\nCall-ID: a\r\n\n",
	"SIP/2.0 200 OK\r\nCall-ID: a\n\r\n",
	"SIP/2.0 200 OK\r\nVIA: x;BRANCH=b\r\nvia: y;branch=c\r\n\r\n",
	"SIP/2.0 200 OK\r\nVib: x;branch=b\r\nVi: y;branch=c\r\nViaa: z;branch=d\r\n\r\n",
	"SIP/2.0 200 OK\r\nContent-Lengthx: 1\r\nContent_Length: 2\r\nContent-Lengt: 3\r\nl: 4\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-Id: a\r\nCALL-ID: b\r\nCall_ID: c\r\n\r\n",
	"SIP/2.0 200 OK\r\nCall-I\rd: a\r\nCall-ID: b\r\n\r\n",
	"SIP/2.0 200 OK\r\ncall-id:a\r\nCONTACT:*\r\nexpires:1\r\nreason:SIP;cause=1\r\n\r\n",
	"INVITE sip:bob@biloxi.example.com SIP/2.0\r\nIdentity: eyJhbGciOiJFUzI1NiJ9.eyJhdHRlc3QiOiJBIn0.c2ln;info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken\r\nP-Asserted-Identity: \"Alice\" <sip:+15551234567@atlanta.example.com;user=phone>, <tel:+15551234567>\r\n\r\n",
	"INVITE sip:bob@b SIP/2.0\r\ny: abc.def.ghi;info=<https://x/c>\r\nIdentity: second\r\np-asserted-identity:  <sip:a@b> \r\nP-Asserted-Identity: <sip:second@b>\r\n\r\n",
	"INVITE sip:bob@b SIP/2.0\r\nIdentity:\r\n eyJ.eyJ.sig;\r\n info=<https://x/c>\r\nP-ASSERTED-IDENTITY:\r\n\r\n",
	"INVITE sip:bob@b SIP/2.0\r\nIdentity: \r\nIdentity: late\r\nP-Asserted-Identit: x\r\nP-Asserted-Identityy: y\r\nIdentity-Info: <https://x>\r\n\r\n",
	"SIP/2.0 200 OK\r\nY: response-identity\r\nP-Asserted-Identity: <sip:a@b>\r\n\r\n",
	"INVITE sip:bob@b SIP/2.0\r\nIdentity: d.d.d;ppt=div\r\ny: s.s.s;ppt=\"SHAKEN\"\r\nIdentity: t.t.t;ppt=shaken\r\nIdentity:\r\n\r\n",
	"INVITE sip:bob@b SIP/2.0\r\nIdentity: a.a.a;ppt=\"shaken\r\nIdentity: b.b.b;info=<x;ppt=shaken>;ppt = shaken\r\n\r\n",
	"INVITE sip:bob@b SIP/2.0\r\nFrom: \"A\" <sip:+1;verstat=TN-Validation-Passed@b;user=phone>;tag=1\r\nf: <sip:second@b>\r\nFrom:\r\n\r\n",
	"INVITE sip:bob@b SIP/2.0\r\nFrom:\r\nFrom: <sip:late@b>\r\nf:\r\n <tel:+1;verstat=No-TN-Validation>;tag=x\r\n\r\n",
}

// TestCommonNamesDifferential: a header line that begins with a name that
// Parse knows by its spelling (commonNames) or with a near miss of one
// gives what the oracle gives: each name in lower, upper and mixed case,
// and then with a byte more before the colon, with SP before it, with
// the colon replaced by a byte that OR 0x20 turns into one (0x1a), and cut
// short, each as the first, a middle and the last header, short and long.
func TestCommonNamesDifferential(t *testing.T) {
	names := []string{"Via", "v", "To", "t", "From", "f", "Call-ID", "i", "CSeq", "Contact", "m",
		"Content-Length", "l", "Expires", "Reason", "Identity", "P-Asserted-Identity", "Max-Forwards",
		"Record-Route", "Route", "Allow", "Supported", "User-Agent", "Server", "Content-Type", "Accept",
		"Allow-Events", "Session-Expires", "Require"}
	value := "SIP/2.0/UDP h;branch=z9hG4bKx;tag=t1;expires=60, <sip:a@b>;cause=16"
	n := 0
	for _, name := range names {
		for _, spelled := range []string{strings.ToLower(name), strings.ToUpper(name), name} {
			for _, line := range []string{spelled + ": " + value, spelled + ":" + value, spelled + "x: " + value,
				spelled + " : " + value, spelled + "\x1a " + value, spelled[:len(spelled)-1] + ": " + value, spelled + ":"} {
				for _, msg := range []string{
					"SIP/2.0 200 OK\r\n" + line + "\r\nCSeq: 1 REGISTER\r\n\r\n",
					"INVITE sip:a@b SIP/2.0\r\nCall-ID: c\r\n" + line + "\r\nCSeq: 2 INVITE\r\n\r\n",
					"SIP/2.0 180 Ringing\r\nCSeq: 3 REGISTER\r\n" + line + "\r\n\r\n",
					"SIP/2.0 180 Ringing\r\n" + line + "\r\n",
				} {
					if _, mismatch := diffOracle([]byte(msg)); mismatch != "" {
						t.Errorf("%q: %s", msg, mismatch)
					}
					n++
				}
			}
		}
	}
	t.Logf("%d messages compared", n)
}
