package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// usageTemplate is kingpin's DefaultUsageTemplate with the flags in
// groups: a command's help lists its arguments and own flags first, then
// the flags of both commands; the top-level help (no command given) lists
// the commands, the flags of both and those of the default command, serve,
// which work without the word serve.
const usageTemplate = `{{define "FormatCommand" -}}
{{if .FlagSummary}} {{.FlagSummary}}{{end -}}
{{range .Args}}{{if not .Hidden}} {{if not .Required}}[{{end}}{{if .PlaceHolder}}{{.PlaceHolder}}{{else}}<{{.Name}}>{{end}}{{if .Value|IsCumulative}}...{{end}}{{if not .Required}}]{{end}}{{end}}{{end -}}
{{end -}}

{{define "FormatCommands" -}}
{{range .FlattenedCommands -}}
{{if not .Hidden -}}
  {{.FullCommand}}{{if .Default}}*{{end}}{{template "FormatCommand" .}}
{{.Help|Wrap 4}}
{{end -}}
{{end -}}
{{end -}}

{{define "FormatUsage" -}}
{{template "FormatCommand" .}}{{if .Commands}} <command> [<args> ...]{{end}}
{{if .Help}}
{{.Help|Wrap 0 -}}
{{end -}}

{{end -}}

{{if .Context.SelectedCommand -}}
usage: {{.App.Name}} {{.Context.SelectedCommand}}{{template "FormatUsage" .Context.SelectedCommand}}
{{ else -}}
usage: {{.App.Name}}{{template "FormatUsage" .App}}
{{end}}
{{if .Context.SelectedCommand -}}
{{if .Context.Args -}}
Args:
{{.Context.Args|ArgsToTwoColumns|FormatTwoColumns}}
{{end -}}
{{if .Context.SelectedCommand.Flags -}}
Flags of {{.Context.SelectedCommand.FullCommand}}:
{{.Context.SelectedCommand.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}
{{if .App.Flags -}}
Flags of both commands (the pipeline; the defaults suit most captures):
{{.App.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}
{{if len .Context.SelectedCommand.Commands -}}
Subcommands:
{{template "FormatCommands" .Context.SelectedCommand}}
{{end -}}
{{else -}}
{{if .App.Commands -}}
Commands:
{{template "FormatCommands" .App}}
{{end -}}
{{if .Context.Flags -}}
Flags of both commands (the pipeline; the defaults suit most captures):
{{.Context.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end -}}
{{range .App.Commands}}{{if .Default -}}
Flags of {{.FullCommand}} (the default command: they work without the word {{.FullCommand}}):
{{.Flags|FlagsToTwoColumns|FormatTwoColumns}}
{{end}}{{end -}}
{{end -}}
`

// captureExtensions are the file name endings of capture files, for the
// hint of a capture file given without the report command.
var captureExtensions = []string{".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".erf"}

// parseHint returns what to add to a command-line parse error of args
// for a first-time user, with its leading separator, or "(try --help)".
// A capture file given without a command (kingpin then takes serve and
// finds an argument it does not expect) gets the report command line, and
// report without files an example.
func parseHint(err error, args []string) string {
	if tok, ok := strings.CutPrefix(err.Error(), "unexpected "); ok && !strings.HasPrefix(tok, "-") {
		if looksLikeCapture(tok) {
			return fmt.Sprintf(": to summarise a capture file, run\n\n  %s report %s\n\n(serve, the default command, takes no arguments: it replays a file into /metrics with --capture.pcap-file=%[2]s)", program, quoteArg(tok))
		}
		if !containsArg(args, "serve") && !containsArg(args, "report") {
			return fmt.Sprintf(" (commands: serve, the default, and report; try %s --help)", program)
		}
	}
	if strings.HasPrefix(err.Error(), "required argument 'file'") {
		return fmt.Sprintf(": give the capture files to read, as in %s report calls.pcap (try %[1]s report --help)", program)
	}
	return " (try --help)"
}

// looksLikeCapture reports whether arg names an existing file or ends as
// a capture file does.
func looksLikeCapture(arg string) bool {
	if st, err := os.Stat(arg); err == nil && st.Mode().IsRegular() {
		return true
	}
	lower := strings.ToLower(filepath.Base(arg))
	for _, ext := range captureExtensions {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	return false
}

// containsArg reports whether args holds word as an argument of its own.
func containsArg(args []string, word string) bool {
	for _, a := range args {
		if a == word {
			return true
		}
	}
	return false
}

// quoteArg quotes s for a POSIX shell when it holds anything but the
// characters of plain paths.
func quoteArg(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:+@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// checkListenAddress checks the form of --hep.listen-address before any
// socket is opened: HOST:PORT, HOST empty for every address. A bare port
// or a host without a port gets the value it was probably meant to be.
func checkListenAddress(addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return nil
	}
	if strings.Trim(addr, "0123456789") == "" {
		return fmt.Errorf("%q is a port without a host part: write \":%s\" to listen on every address (or HOST:%[2]s for one)", addr, addr)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return fmt.Errorf("%q has no port: want HOST:PORT, as \"[%s]:9060\"", addr, host)
	}
	if !strings.Contains(addr, ":") {
		return fmt.Errorf("%q has no port: want HOST:PORT, as \"%s:9060\", or \":9060\" for every address", addr, addr)
	}
	return fmt.Errorf("%q: want HOST:PORT, as \":9060\" (every address) or \"192.0.2.1:9060\"", addr)
}
