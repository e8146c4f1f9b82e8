package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/collector"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     collector.PeersConfig // when err is ""
		err      string
	}{
		{name: "empty file", in: ""},
		{name: "empty document", in: "---\n"},
		{name: "empty peers", in: "peers: []\n"},
		{
			name: "valid",
			in: `peers:
  - name: carrier-a
    cidrs: [192.0.2.0/24, "2001:db8::/32"]
    ports: [5060, "5080-5090"]
  - name: pbx b
    cidrs:
      - 198.51.100.7
      - 2001:db8:1::1
nodes:
  4711: sbc-fra-1
  sbc2.example.net: sbc-ams-1
`,
			want: collector.PeersConfig{
				Peers: []collector.PeerConfig{
					{Name: "carrier-a",
						Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
						Ports:    []collector.PortRange{{First: 5060, Last: 5060}, {First: 5080, Last: 5090}}},
					{Name: "pbx b",
						Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("2001:db8:1::1/128")}},
				},
				Nodes: map[string]string{"4711": "sbc-fra-1", "sbc2.example.net": "sbc-ams-1"},
			},
		},
		{
			name: "overlap, narrower first: accepted",
			in: `peers:
  - name: gw-1
    cidrs: [10.0.0.1/32]
  - name: site
    cidrs: [10.0.0.0/24]
`,
			want: collector.PeersConfig{Peers: []collector.PeerConfig{
				{Name: "gw-1", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}},
				{Name: "site", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}},
			}},
		},
		{
			name: "overlap, wider first on other ports: accepted",
			in: `peers:
  - name: site-sip
    cidrs: [10.0.0.0/24]
    ports: [5060]
  - name: gw-1
    cidrs: [10.0.0.1/32]
`,
			want: collector.PeersConfig{Peers: []collector.PeerConfig{
				{Name: "site-sip", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}, Ports: []collector.PortRange{{First: 5060, Last: 5060}}},
				{Name: "gw-1", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}},
			}},
		},
		{
			name: "overlapping peers: later one shadowed",
			in: `peers:
  - name: carrier-a
    cidrs: [10.0.0.0/16]
  - name: pbx-b
    cidrs:
      - 192.0.2.0/24
      - 10.0.3.0/24
`,
			err: `line 7: peer "pbx-b": cidr 10.0.3.0/24 never matches: peer "carrier-a" (line 3) comes first and covers it with 10.0.0.0/16; put the narrower peer first`,
		},
		{
			name: "overlapping peers: shadowed on ports too",
			in: `peers:
  - name: carrier-a
    cidrs: [10.0.0.0/16]
    ports: ["5060-5061", 5062]
  - name: pbx-b
    cidrs: [10.0.3.0/24]
    ports: [5061, 5062]
`,
			err: `line 6: peer "pbx-b": cidr 10.0.3.0/24 never matches: peer "carrier-a" (line 3) comes first and covers it with 10.0.0.0/16 on ports 5060-5061,5062; put the narrower peer first`,
		},
		{
			name: "unknown key",
			in: `peers:
  - name: carrier-a
    cidr: [10.0.0.0/8]
`,
			err: "line 3: field cidr not found in a peer (want name, cidrs, ports, max_sessions, keepalive_down_after, keepalive_up_after)",
		},
		{
			name: "unknown top-level key",
			in:   "peer:\n  - name: a\n",
			err:  "line 1: field peer not found at the top level (want peers, nodes)",
		},
		{
			name: "peers not a list",
			in:   "peers:\n  name: a\n",
			err:  "line 2: cannot unmarshal !!map into peers (want a list)",
		},
		{
			name: "syntax error",
			in:   "peers:\n - name: a\n  cidrs: [10.0.0.0/8]\n",
			err:  "line 1: did not find expected '-' indicator", // the YAML library's line: where the list began
		},
		{
			name: "input ends early",
			in:   "peers:\n  - name: \"a\n",
			err:  "line 2: found unexpected end of stream",
		},
		{
			name: "control character",
			in:   "peers:\n  - name: a\n    cidrs: [10.0.0.0/8\x00]\n",
			err:  "line 3: control characters are not allowed",
		},
		{
			name: "duplicate key",
			in:   "peers:\n  - name: a\n    name: b\n",
			err:  `line 3: mapping key "name" already defined at line 2`,
		},
		{
			name: "duplicate node",
			in:   "nodes:\n  a: x\n  a: y\n",
			err:  `line 3: node "a" mapped twice (first on line 2)`,
		},
		{
			name: "bad CIDR",
			in: `peers:
  - name: carrier-a
    cidrs: [10.0.0.0/33]
`,
			err: `line 3: peer "carrier-a": bad cidr "10.0.0.0/33": want ADDRESS/BITS or ADDRESS`,
		},
		{
			name: "bad address",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [carrier.example.com]\n",
			err:  `line 3: peer "carrier-a": bad cidr "carrier.example.com": want ADDRESS/BITS or ADDRESS`,
		},
		{
			name: "host bits",
			in:   "peers:\n  - name: carrier-a\n    cidrs:\n      - 2001:db8::/32\n      - 10.1.2.3/8\n",
			err:  `line 5: peer "carrier-a": cidr "10.1.2.3/8" has host bits set (did you mean 10.0.0.0/8?)`,
		},
		{
			name: "no cidrs",
			in:   "peers:\n  - name: carrier-a\n    ports: [5060]\n",
			err:  `line 2: peer "carrier-a" has no cidrs`,
		},
		{
			name: "bad port range",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    ports: [\"5090-5080\"]\n",
			err:  `line 4: peer "carrier-a": bad port range "5090-5080": first port above last`,
		},
		{
			name: "port range out of bounds",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    ports: [\"0-80\"]\n",
			err:  `line 4: peer "carrier-a": bad port range "0-80": want FIRST-LAST, each 1 to 65535`,
		},
		{
			name: "bad port",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    ports:\n      - 5060\n      - 70000\n",
			err:  `line 6: peer "carrier-a": bad port "70000": want 1 to 65535 or a range "FIRST-LAST"`,
		},
		{
			name: "duplicate peer name",
			in:   "peers:\n  - name: a\n    cidrs: [10.0.0.0/8]\n  - name: a\n    cidrs: [192.0.2.0/24]\n",
			err:  `line 4: peer "a" defined twice (first on line 2)`,
		},
		{
			name: "empty name",
			in:   "peers:\n  - cidrs: [10.0.0.0/8]\n",
			err:  "line 2: peer without a name",
		},
		{
			name: "reserved name",
			in:   "peers:\n  - name: other\n    cidrs: [10.0.0.0/8]\n",
			err:  `line 2: peer name "other" is reserved for messages of no configured peer`,
		},
		{
			name: "invalid name",
			in:   "peers:\n  - name: \"carrier \\\"a\\\"\"\n    cidrs: [10.0.0.0/8]\n",
			err:  `line 2: invalid peer name "carrier \"a\"": want 1 to 64 ASCII letters, digits, spaces and -_.:/+@, starting and ending with a letter or digit`,
		},
		{
			name: "capacity and keepalive thresholds",
			in: `peers:
  - name: carrier-a
    cidrs: [192.0.2.0/24]
    max_sessions: 120
    keepalive_down_after: 5
    keepalive_up_after: 1
  - name: pbx
    cidrs: [198.51.100.0/24]
    keepalive_up_after: 100
`,
			want: collector.PeersConfig{Peers: []collector.PeerConfig{
				{Name: "carrier-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, MaxSessions: 120, KeepaliveDownAfter: 5, KeepaliveUpAfter: 1},
				{Name: "pbx", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, KeepaliveUpAfter: 100},
			}},
		},
		{
			name: "max_sessions zero",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    max_sessions: 0\n",
			err:  `line 4: peer "carrier-a": max_sessions: "0": want a whole number from 1 to 10000000`,
		},
		{
			name: "max_sessions negative",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    max_sessions: -30\n",
			err:  `line 4: peer "carrier-a": max_sessions: "-30": want a whole number from 1 to 10000000`,
		},
		{
			name: "max_sessions not a number",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    max_sessions: \"30\"\n",
			err:  `line 4: peer "carrier-a": max_sessions: "30": want a whole number from 1 to 10000000`,
		},
		{
			name: "max_sessions fractional",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    max_sessions: 29.5\n",
			err:  `line 4: peer "carrier-a": max_sessions: "29.5": want a whole number from 1 to 10000000`,
		},
		{
			name: "max_sessions empty",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    max_sessions:\n",
			err:  `line 4: peer "carrier-a": max_sessions: "": want a whole number from 1 to 10000000`,
		},
		{
			name: "max_sessions a list",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    max_sessions: [30]\n",
			err:  `line 4: peer "carrier-a": max_sessions: "": want a whole number from 1 to 10000000`,
		},
		{
			name: "keepalive_down_after zero",
			in:   "peers:\n  - name: carrier-a\n    cidrs: [10.0.0.0/8]\n    keepalive_down_after: 0\n",
			err:  `line 4: peer "carrier-a": keepalive_down_after: "0": want a whole number from 1 to 100`,
		},
		{
			name: "keepalive_up_after above the bound",
			in:   "peers:\n  - name: pbx\n    cidrs: [10.0.0.0/8]\n    keepalive_up_after: 101\n",
			err:  `line 4: peer "pbx": keepalive_up_after: "101": want a whole number from 1 to 100`,
		},
		{
			name: "node mapping not a mapping",
			in:   "nodes: [a, b]\n",
			err:  "line 1: nodes must be a mapping of node values to names",
		},
		{
			name: "node mapping bad name",
			in:   "nodes:\n  \"4711\": \"sbc fra 1!\"\n",
			err:  `line 2: node "4711": invalid name "sbc fra 1!": want 1 to 64 ASCII letters, digits, spaces and -_.:/+@, starting and ending with a letter or digit`,
		},
		{
			name: "node mapping to other",
			in:   "nodes:\n  \"4711\": other\n",
			err:  `line 2: node "4711": name "other" is reserved for nodes past --hep.max-nodes`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig([]byte(tc.in))
			if tc.err != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tc.err)
				}
				if err.Error() != tc.err {
					t.Fatalf("error\n  %s\nwant\n  %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			if _, err := collector.NewPeers(got); err != nil {
				t.Errorf("NewPeers: %v", err)
			}
		})
	}
}

func TestLoadPeers(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadPeers(filepath.Join(dir, "missing.yml")); err == nil || !strings.HasPrefix(err.Error(), "config file: open ") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "peers.yml")
	if err := os.WriteFile(path, []byte("peers:\n  - name: a\n    cidrs: [10.0.0.0/8]\n  - name: b\n    cidrs: [nope]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadPeers(path)
	if want := `config file "` + path + `": line 5: peer "b": bad cidr "nope": want ADDRESS/BITS or ADDRESS`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "peers.yml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("peers:\n  - name: pbx-b\n    cidrs: [198.51.100.0/24]\n")
	o := options{configFile: path, pipeline: defaultPipelineConfig()}
	if err := o.loadConfig(); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(o.pipeline)
	if err != nil {
		t.Fatal(err)
	}
	logger := promslog.NewNopLogger()
	r := newReloader(path, p.SIP(), logger)
	src, dst := netip.MustParseAddrPort("198.51.100.7:5060"), netip.MustParseAddrPort("203.0.113.1:5060")
	peerNow := func() string { return p.SIP().Lookup(nil, src, dst).Peer() }
	state := func(ok float64) {
		t.Helper()
		want := fmt.Sprintf(`
# HELP sip_exporter_config_last_reload_successful Whether the last reload of the configuration file (--config.file) succeeded (1) or failed and the previous configuration stays in force (0).
# TYPE sip_exporter_config_last_reload_successful gauge
sip_exporter_config_last_reload_successful %v
`, ok)
		if err := testutil.CollectAndCompare(r, strings.NewReader(want), "sip_exporter_config_last_reload_successful"); err != nil {
			t.Error(err)
		}
	}
	lastSuccess := func() float64 {
		mfs, err := testutil.CollectAndFormat(r, expfmt.TypeTextPlain, "sip_exporter_config_last_reload_success_timestamp_seconds")
		if err != nil {
			t.Fatal(err)
		}
		var v float64
		for _, line := range strings.Split(string(mfs), "\n") {
			if strings.HasPrefix(line, "sip_exporter_config_last_reload_success_timestamp_seconds ") {
				fmt.Sscan(strings.Fields(line)[1], &v)
			}
		}
		return v
	}
	state(1)
	t0 := lastSuccess()
	if peerNow() != "pbx-b" {
		t.Fatalf("peer %q, want pbx-b", peerNow())
	}

	// A broken file is rejected whole: the old configuration stays.
	write("peers:\n  - name: carrier-c\n    cidrs: [198.51.100.0/24]\n  - name: broken\n    cidrs: [300.1.2.3/8]\n")
	err = r.reload()
	if want := `config file "` + path + `": line 5: peer "broken": bad cidr "300.1.2.3/8": want ADDRESS/BITS or ADDRESS`; err == nil || err.Error() != want {
		t.Errorf("reload error %v, want %s", err, want)
	}
	state(0)
	if peerNow() != "pbx-b" {
		t.Errorf("after a failed reload: peer %q, want pbx-b", peerNow())
	}
	if got := lastSuccess(); got != t0 {
		t.Errorf("last success moved on a failed reload: %v, was %v", got, t0)
	}

	time.Sleep(10 * time.Millisecond)
	write("peers:\n  - name: carrier-c\n    cidrs: [198.51.100.0/24]\n")
	if err := r.reload(); err != nil {
		t.Fatal(err)
	}
	state(1)
	if peerNow() != "carrier-c" {
		t.Errorf("after reload: peer %q, want carrier-c", peerNow())
	}
	if got := lastSuccess(); got <= t0 {
		t.Errorf("last success %v not after %v", got, t0)
	}
	problems, err := testutil.CollectAndLint(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}

	// /-/reload.
	for _, tc := range []struct {
		name      string
		r         *reloader
		lifecycle bool
		method    string
		file      string
		code      int
		body      string
	}{
		{"lifecycle off", r, false, http.MethodPost, "", http.StatusForbidden, "Lifecycle API is not enabled.\n"},
		{"GET", r, true, http.MethodGet, "", http.StatusMethodNotAllowed, "Only POST or PUT requests allowed.\n"},
		{"no config file", nil, true, http.MethodPost, "", http.StatusBadRequest, "No configuration file to reload: start with --config.file.\n"},
		{"POST", r, true, http.MethodPost, "peers: []\n", http.StatusOK, ""},
		{"bad file", r, true, http.MethodPut, "peers: [\n", http.StatusInternalServerError,
			`failed to reload config: config file "` + path + `": line 1: did not find expected node content` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.file != "" {
				write(tc.file)
			}
			rec := httptest.NewRecorder()
			reloadHandler(tc.r, tc.lifecycle).ServeHTTP(rec, httptest.NewRequest(tc.method, "/-/reload", nil))
			if rec.Code != tc.code || rec.Body.String() != tc.body {
				t.Errorf("%d %q, want %d %q", rec.Code, rec.Body.String(), tc.code, tc.body)
			}
		})
	}
}

// FuzzParseConfig checks that any input either parses into a configuration
// that compiles, or is rejected with an error naming a line.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"peers:\n  - name: carrier-a\n    cidrs: [192.0.2.0/24, \"2001:db8::/32\"]\n    ports: [5060, \"5080-5090\"]\nnodes:\n  4711: sbc-fra-1\n",
		"peers:\n  - name: a\n    cidrs: [10.0.0.0/16]\n  - name: b\n    cidrs: [10.0.3.0/24]\n",
		"peers:\n  - name: a\n    cidr: [10.0.0.0/8]\n",
		"peers:\n  - name: a\n    cidrs: [10.0.0.0/8]\n    ports: [\"5090-5080\"]\n",
		"nodes: [a, b]\n",
		"peers: [\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") && !strings.Contains(err.Error(), "line ") {
				t.Errorf("error without a line: %v", err)
			}
			return
		}
		if _, err := collector.NewPeers(cfg); err != nil {
			t.Errorf("parsed configuration does not compile: %v", err)
		}
	})
}

// TestBadConfigAtStart: a bad --config.file stops the command with the
// problem named.
func TestBadConfigAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.yml")
	if err := os.WriteFile(path, []byte("peers:\n  - name: a\n    cidrs: [10.0.0.0/8]\n    colour: red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := run([]string{"report", "--config.file=" + path, "../../deploy/demo/sip-demo.pcap"}, &stdout, &stderr)
	want := program + `: error: config file "` + path + `": line 4: field colour not found in a peer (want name, cidrs, ports, max_sessions, keepalive_down_after, keepalive_up_after)` + "\n"
	if code != 1 || stderr.String() != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr.String(), want)
	}
	stderr.Reset()
	if code := run([]string{"--collector.max-phrases-per-code=0"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--collector.max-phrases-per-code 0: must be 1 to 256") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestReportPeers: report with --config.file prints a block per label set,
// and the exposition carries the peer labels; the demo capture's responses
// all go to the two configured networks.
func TestReportPeers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.yml")
	if err := os.WriteFile(path, []byte("peers:\n  - name: carrier-a\n    cidrs: [203.0.113.0/24]\n  - name: customers\n    cidrs: [198.51.100.0/24]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"report", "--config.file=" + path, "../../deploy/demo/sip-demo.pcap"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		"node \"\" peer \"carrier-a\" direction outbound\n",
		"node \"\" peer \"customers\" direction inbound\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := run([]string{"report", "--format=prometheus", "--config.file=" + path, "--collector.response-phrases", "../../deploy/demo/sip-demo.pcap"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		`sip_responses_total{class="5xx",code="503",direction="outbound",method="INVITE",node="",peer="carrier-a",reason="Service Unavailable"} 5`,
		`sip_responses_total{class="5xx",code="503",direction="outbound",method="INVITE",node="",peer="customers",reason="Service Unavailable"} 12`,
		`sip_response_phrases_total{code="503",node="",phrase="Service Unavailable"} 17`,
	} {
		if !strings.Contains(stdout.String(), want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
}
