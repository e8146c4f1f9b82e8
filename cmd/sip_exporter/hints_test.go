package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
)

// TestCaptureFileWithoutCommand: a capture file given without a command
// (serve, the default, takes no arguments) is refused with the report
// command line to run instead; another stray word names the commands.
func TestCaptureFileWithoutCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{demoCapture}, "error: unexpected " + demoCapture + ": to summarise a capture file, run\n\n  sip_exporter report " + demoCapture + "\n"},
		{[]string{"calls.pcapng"}, "  sip_exporter report calls.pcapng\n"},
		{[]string{"--capture.node-name=x", "my calls.pcap"}, "  sip_exporter report 'my calls.pcap'\n"},
		{[]string{"reprot", "calls.pcap"}, "error: unexpected reprot (commands: serve, the default, and report; try sip_exporter --help)\n"},
		{[]string{"report"}, "error: required argument 'file' not provided: give the capture files to read, as in sip_exporter report calls.pcap (try sip_exporter report --help)\n"},
	} {
		var stdout, stderr strings.Builder
		if code := run(tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr\n%s\nwant 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestListenAddressHint: --hep.listen-address without a host part or a
// port is refused while the flags are checked (exit 2), with the value it
// was probably meant to be; HOST:PORT forms pass.
func TestListenAddressHint(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"9060", `"9060" is a port without a host part: write ":9060" to listen on every address`},
		{"10.0.0.1", `"10.0.0.1" has no port: want HOST:PORT, as "10.0.0.1:9060", or ":9060" for every address`},
		{"::1", `"::1" has no port: want HOST:PORT, as "[::1]:9060"`},
		{"[::1]", `"[::1]" has no port: want HOST:PORT, as "[::1]:9060"`},
		{":9060", ""},
		{"0.0.0.0:9060", ""},
		{"[::]:9060", ""},
		{"", ""},
	} {
		err := checkListenAddress(tc.addr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.addr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want %q", tc.addr, err, tc.want)
		}
	}
	var stdout, stderr strings.Builder
	want := program + `: error: --hep.listen-address: "9060" is a port without a host part: write ":9060" to listen on every address (or HOST:9060 for one)` + "\n"
	if code := run([]string{"--hep.listen-address=9060"}, &stdout, &stderr); code != 2 || stderr.String() != want {
		t.Errorf("exit %d, stderr %q; want 2, %q", code, stderr.String(), want)
	}
}

// TestBPFExpressionHint: a --capture.bpf-file holding a tcpdump
// expression stops serve before any socket is opened with the command
// that writes the file right.
func TestBPFExpressionHint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sip.bpf")
	if err := os.WriteFile(path, []byte("udp port 5060\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &options{interfaces: []string{"lo"}, bpfFile: path, workers: 1, pcapSpeed: "fast", pipeline: defaultPipelineConfig()}
	p, err := pipeline.New(o.pipeline)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newSources(context.Background(), o, p)
	err = explain(err, o)
	var h *hintError
	if !errors.As(err, &h) || !errors.Is(err, input.ErrBPFFormat) {
		t.Fatalf("error %v, want a hint for a BPF format error", err)
	}
	for _, want := range []string{`--capture.bpf-file "` + path + `": bpf line 1: "udp port 5060" is a filter expression`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if want := "tcpdump -y EN10MB -ddd 'udp port 5060' > " + path; !strings.Contains(h.hint, want) {
		t.Errorf("hint %q lacks %q", h.hint, want)
	}
	if args := logArgs(err); len(args) != 4 || args[2] != "hint" {
		t.Errorf("logged as %v, want err and hint", args)
	}
}

// TestExplainPermission: an AF_PACKET socket refused for want of the
// capability gets the setcap command line for this binary.
func TestExplainPermission(t *testing.T) {
	err := explain(errors.New(`capture interface "lo": open AF_PACKET socket: operation not permitted`), &options{})
	if errors.As(err, new(*hintError)) {
		t.Errorf("a plain error got a hint: %v", err)
	}
	err = explain(&wrapped{input.ErrCapturePermission}, &options{})
	var h *hintError
	if !errors.As(err, &h) || !strings.Contains(h.hint, "sudo setcap cap_net_raw+ep "+executable()) {
		t.Errorf("error %v: no setcap hint", err)
	}
	if strings.Contains(h.hint, "NET_ADMIN") {
		t.Errorf("hint asks for CAP_NET_ADMIN, which capture does not need: %s", h.hint)
	}
}

// wrapped is an error that wraps another without adding text.
type wrapped struct{ err error }

func (w *wrapped) Error() string { return "capture interface \"lo\": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }
