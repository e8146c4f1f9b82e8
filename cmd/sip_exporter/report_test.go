package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportGolden runs the report command as a user would and compares its
// output with testdata/*.golden (-update rewrites them).
func TestReportGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		// needsCorpus marks cases that read the shared corpus.
		needsCorpus bool
	}{
		{name: "demo.table", args: []string{"report", demoCapture}},
		{name: "demo.prometheus", args: []string{"report", "--format=prometheus", demoCapture}},
		{name: "corpus.table", args: []string{"report",
			corpusDir + "/zeek__wireshark.pcap",
			corpusDir + "/PcapPlusPlus__sip_resp.pcap",
			corpusDir + "/sipnab__b2bua-asterisk.pcapng",
			corpusDir + "/zeek__invalid-content-length.pcap",
			corpusDir + "/ipfixprobe__sip.pcap",
		}, needsCorpus: true},
		{name: "missing-file", args: []string{"report", "testdata/no-such.pcap"}, code: 1},
		{name: "not-a-capture", args: []string{"report", "report_test.go"}, code: 1},
		{name: "bad-format", args: []string{"report", "--format=xml", demoCapture}, code: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needsCorpus {
				requireCorpus(t)
			}
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			got := stdout.String()
			if tc.code != 0 {
				got = stderr.String()
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (-update rewrites it):\n%s", golden, diffLines(string(want), got))
			}
		})
	}
}

// TestReportTruncated cuts the demo capture mid-packet: the report counts
// what came before, warns on stderr and exits 0.
func TestReportTruncated(t *testing.T) {
	b, err := os.ReadFile(demoCapture)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, b[:len(b)/2+7], 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", cut}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "warning") || !strings.Contains(stderr.String(), "truncated") || !strings.Contains(stderr.String(), cut) {
		t.Errorf("stderr does not warn of the truncated file by name: %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "INVITE") {
		t.Errorf("nothing reported from the first half:\n%s", stdout.String())
	}
}

// diffLines returns the lines of want and got that differ, marked - and +.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("-" + wl + "\n+" + gl + "\n")
		}
	}
	return b.String()
}
