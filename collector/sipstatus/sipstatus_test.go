package sipstatus_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// registryFile is the project's copy of the IANA registry, beside the
// repository (CI clones the repository with shared/ next to it).
const registryFile = "../../../shared/sip-response-codes.tsv"

func TestRegistryMatchesSharedTSV(t *testing.T) {
	f, err := os.Open(registryFile)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("registry file missing in CI: %v", err)
		}
		t.Skipf("registry file not beside the repository: %v", err)
	}
	defer f.Close()
	seen := 0
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 4 {
			t.Fatalf("bad row %q", sc.Text())
		}
		code, err := strconv.Atoi(cols[0])
		if err != nil {
			t.Fatalf("bad code in %q: %v", sc.Text(), err)
		}
		e, ok := sipstatus.Lookup(code)
		if !ok {
			t.Errorf("code %d missing from registry", code)
			continue
		}
		want := sipstatus.Entry{Reason: cols[1], Reference: cols[2], Status: cols[3]}
		if e != want {
			t.Errorf("code %d: got %+v, want %+v", code, e, want)
		}
		if got := sipstatus.Text(code); got != cols[1] {
			t.Errorf("Text(%d) = %q, want %q", code, got, cols[1])
		}
		seen++
	}
	if n := len(sipstatus.Codes()); n != seen {
		t.Errorf("registry has %d codes, shared TSV %d", n, seen)
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		code       int
		text, cls  string
		registered bool
	}{
		{99, "", "", false},
		{100, "Trying", "1xx", true},
		{181, "Call Is Being Forwarded", "1xx", true},
		{183, "Session Progress", "1xx", true},
		{199, "Early Dialog Terminated", "1xx", true},
		{299, "Unassigned", "2xx", false},
		{380, "Alternative Service", "3xx", true},
		{409, "Conflict", "4xx", true},
		{411, "Length Required", "4xx", true},
		{486, "Busy Here", "4xx", true},
		{504, "Server Time-out", "5xx", true},
		{608, "Rejected", "6xx", true},
		{699, "Unassigned", "6xx", false},
		{700, "", "", false},
		{-1, "", "", false},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			if got := sipstatus.Text(tc.code); got != tc.text {
				t.Errorf("Text = %q, want %q", got, tc.text)
			}
			if got := sipstatus.Class(tc.code); got != tc.cls {
				t.Errorf("Class = %q, want %q", got, tc.cls)
			}
			if _, ok := sipstatus.Lookup(tc.code); ok != tc.registered {
				t.Errorf("Lookup ok = %v, want %v", ok, tc.registered)
			}
		})
	}
}

func TestTextAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = sipstatus.Text(486) + sipstatus.Class(486)[:0] }); n != 0 {
		t.Errorf("Text allocates %v times", n)
	}
}

func ExampleText() {
	fmt.Println(sipstatus.Text(183), sipstatus.Class(183))
	fmt.Println(sipstatus.Text(486), sipstatus.Class(486))
	fmt.Println(sipstatus.Text(498))
	// Output:
	// Session Progress 1xx
	// Busy Here 4xx
	// Unassigned
}
