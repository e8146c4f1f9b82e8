package main

import (
	"strings"
	"testing"
)

// TestHelp: --help of each command exits 0 and prints to stdout only the
// flags that command uses: report's help has --format and the pipeline's
// flags but none of the sources, HEP listener, web server or logging; the
// top-level help lists serve's flags too, since they work without the
// word serve. The required file argument of report does not turn its help
// into an error.
func TestHelp(t *testing.T) {
	serveOnly := []string{"--capture.interface", "--capture.pcap-file", "--capture.promiscuous", "--capture.bpf-file", "--capture.ring-size", "--hep.listen-address", "--hep.auth-key", "--web.listen-address", "--web.telemetry-path", "--web.enable-lifecycle", "--log.level", "--log.format"}
	both := []string{"--capture.workers", "--capture.shards", "--capture.dedup-window", "--capture.node-name", "--sip.invite-timeout", "--config.file", "--hep.max-nodes", "--collector.response-phrases"}
	for _, tc := range []struct {
		args      []string
		want      []string
		wantNot   []string
		firstLine string
	}{
		{[]string{"report", "--help"}, append([]string{"--format", "<file>..."}, both...), serveOnly, "usage: sip_exporter report [<flags>] <file>..."},
		{[]string{"report", "-h"}, []string{"--format"}, serveOnly, "usage: sip_exporter report [<flags>] <file>..."},
		{[]string{"help", "report"}, []string{"--format"}, serveOnly, "usage: sip_exporter report [<flags>] <file>..."},
		{[]string{"serve", "--help"}, append(serveOnly, both...), []string{"--format"}, "usage: sip_exporter serve [<flags>]"},
		{[]string{"--help"}, append(append([]string{"Commands:", "report [<flags>] <file>...", "Flags of serve (the default command"}, serveOnly...), both...), []string{"--format"}, "usage: sip_exporter [<flags>] <command> [<args> ...]"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run(tc.args, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
				t.Fatalf("exit %d, want 0; stderr: %s", code, stderr.String())
			}
			out := strings.ReplaceAll(stdout.String(), "--[no-]", "--")
			if first, _, _ := strings.Cut(out, "\n"); first != tc.firstLine {
				t.Errorf("first line %q, want %q", first, tc.firstLine)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %s", w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w+"=") || strings.Contains(out, w+" ") {
					t.Errorf("help lists %s, which this command does not use", w)
				}
			}
		})
	}
}

// TestServeDefaultCommand: serve's flags work without the word serve,
// before or after the flags of both commands, and the flags of both work
// before the word report, as they did when every flag was global.
func TestServeDefaultCommand(t *testing.T) {
	for _, args := range [][]string{
		{"--capture.workers=0", "--capture.interface=lo"},
		{"--capture.interface=lo", "--capture.workers=0"},
		{"serve", "--capture.interface=lo", "--capture.workers=0"},
		{"--capture.workers=0", "report", demoCapture},
		{"report", "--capture.workers=0", demoCapture},
	} {
		var stdout, stderr strings.Builder
		// --capture.workers=0 is refused once the command line has parsed.
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--capture.workers 0: must be 1 to 64") {
			t.Errorf("%q: exit %d, stderr %q; want the flags parsed and --capture.workers refused", args, code, stderr.String())
		}
	}
}
