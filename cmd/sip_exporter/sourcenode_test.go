package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/collector"
)

// TestParseConfigSourceNodes: the node of a source, NAME=NODE on
// --capture.interface and --capture.pcap-file, checked at start with the
// exact error texts the exporter stops with.
func TestParseConfigSourceNodes(t *testing.T) {
	long := strings.Repeat("n", 65)
	for _, tc := range []struct {
		name   string
		ifaces []string
		files  []string
		want   []namedSource // of the interfaces, then the files, when err is ""
		err    string
	}{
		{name: "no node", ifaces: []string{"eth0"},
			want: []namedSource{{name: "eth0", arg: "eth0"}}},
		{name: "a node per interface", ifaces: []string{"eth0=sbc1-access", "eth1=sbc1-core"},
			want: []namedSource{{name: "eth0", node: "sbc1-access", arg: "eth0=sbc1-access"}, {name: "eth1", node: "sbc1-core", arg: "eth1=sbc1-core"}}},
		{name: "some with a node", ifaces: []string{"eth0=sbc1-access", "eth1"},
			want: []namedSource{{name: "eth0", node: "sbc1-access", arg: "eth0=sbc1-access"}, {name: "eth1", arg: "eth1"}}},
		{name: "node with the characters of display names", ifaces: []string{"bond0.100=SBC 1/core:5060@fra+x_y.z"},
			want: []namedSource{{name: "bond0.100", node: "SBC 1/core:5060@fra+x_y.z", arg: "bond0.100=SBC 1/core:5060@fra+x_y.z"}}},
		{name: "node of 64 bytes", ifaces: []string{"eth0=" + long[:64]},
			want: []namedSource{{name: "eth0", node: long[:64], arg: "eth0=" + long[:64]}}},
		{name: "file with a node", files: []string{demoCapture + "=core"},
			want: []namedSource{{name: demoCapture, node: "core", arg: demoCapture + "=core"}}},
		{name: "empty node", ifaces: []string{"eth0="},
			err: `--capture.interface "eth0=": empty node after "="`},
		{name: "empty node of a file", files: []string{demoCapture + "="},
			err: `--capture.pcap-file "` + demoCapture + `=": empty node after "="`},
		{name: "no interface name", ifaces: []string{"=core"},
			err: `--capture.interface "=core": no interface name before "="`},
		{name: "no path", files: []string{"=core"},
			err: `--capture.pcap-file "=core": no path before "="`},
		{name: "bad characters", ifaces: []string{"eth0=sbc1!"},
			err: `--capture.interface "eth0=sbc1!": invalid node "sbc1!": want 1 to 64 ASCII letters, digits, spaces and -_.:/+@, starting and ending with a letter or digit`},
		{name: "not starting with a letter or digit", ifaces: []string{"eth0=-core"},
			err: `--capture.interface "eth0=-core": invalid node "-core": want 1 to 64 ASCII letters, digits, spaces and -_.:/+@, starting and ending with a letter or digit`},
		{name: "not ASCII", ifaces: []string{"eth0=köln"},
			err: `--capture.interface "eth0=köln": invalid node "köln": want 1 to 64 ASCII letters, digits, spaces and -_.:/+@, starting and ending with a letter or digit`},
		{name: "too long", ifaces: []string{"eth0=" + long},
			err: `--capture.interface "eth0=` + long + `": node of 65 bytes: at most 64`},
		{name: "reserved", ifaces: []string{"eth0=other"},
			err: `--capture.interface "eth0=other": node "other" is reserved for nodes past --hep.max-nodes`},
		{name: "duplicate interface, other nodes", ifaces: []string{"eth0=sbc1-access", "eth0=sbc1-core"},
			err: `--capture.interface "eth0" given twice`},
		{name: "duplicate interface, with and without a node", ifaces: []string{"eth0", "eth0=sbc1-core"},
			err: `--capture.interface "eth0" given twice`},
		{name: "duplicate file", files: []string{demoCapture + "=a", demoCapture + "=b"},
			err: `--capture.pcap-file "` + demoCapture + `" given twice`},
		{name: "path with = but no node", files: []string{"testdata/dt=2026-01-01/calls.pcap"},
			err: `--capture.pcap-file: open testdata/dt: no such file or directory ("testdata/dt=2026-01-01/calls.pcap" was split at its last "=" into the path "testdata/dt" and the node "2026-01-01/calls.pcap": a path that contains "=" needs "=NODE" after it)`},
		{name: "more nodes than --hep.max-nodes", ifaces: []string{"eth0=a", "eth1=b", "eth2"},
			err: `the sources have 3 distinct nodes: more than --hep.max-nodes 2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options{interfaces: tc.ifaces, pcapFiles: tc.files, pcapSpeed: "fast", workers: 1, pipeline: defaultPipelineConfig()}
			o.pipeline.MaxNodes = 2
			if len(tc.ifaces) > 0 && len(tc.files) > 0 {
				t.Fatal("files read fast cannot be combined with interfaces")
			}
			p, err := pipeline.New(o.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			sources, err := newSources(context.Background(), &o, p)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error\n  %v\nwant\n  %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ifaces, _ := parseSources("--capture.interface", tc.ifaces)
			files, _ := parseSources("--capture.pcap-file", tc.files)
			if got := append(ifaces, files...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			// Each source's handler is bound to its node, or to
			// --capture.node-name's.
			for i, s := range sources {
				if want := tc.want[i].node; s.node.Node().Label() != want {
					t.Errorf("source %s: node label %q, want %q", s.Name, s.node.Node().Label(), want)
				}
			}
		})
	}
}

// TestReportSourceNodes: report of two files, each with its own node (the
// demo capture and a copy of it, dedup off so that the copy counts), gives
// each node exactly the demo capture's counts, in the summary and in the
// exposition, and no series under --capture.node-name's node.
func TestReportSourceNodes(t *testing.T) {
	twin := demoTwin(t)
	one := reportJSON(t, "report", "--format=json", demoCapture)
	if len(one.LabelSets) != 1 {
		t.Fatalf("the demo capture alone has %d label sets, want 1", len(one.LabelSets))
	}
	two := reportJSON(t, "report", "--format=json", "--capture.dedup-window=0", demoCapture+"=sbc1-access", twin+"=sbc1-core")
	if len(two.LabelSets) != 2 || two.LabelSets[0].Node != "sbc1-access" || two.LabelSets[1].Node != "sbc1-core" {
		t.Fatalf("label sets %+v, want sbc1-access and sbc1-core", two.LabelSets)
	}
	// Requests and responses count at each node; the tracker follows a
	// transaction seen at two nodes once, under the first, so the copy's
	// messages are its retransmissions: they are left out here.
	counts := func(c countsSummary) (req, resp []uint64) {
		for _, r := range c.Requests {
			req = append(req, r.Count)
		}
		for _, r := range c.Responses {
			resp = append(resp, uint64(r.Code), r.Count)
		}
		return req, resp
	}
	wantReq, wantResp := counts(one.LabelSets[0].countsSummary)
	for _, ls := range two.LabelSets {
		if req, resp := counts(ls.countsSummary); !reflect.DeepEqual(req, wantReq) || !reflect.DeepEqual(resp, wantResp) {
			t.Errorf("node %q: requests %v, responses %v; want the demo capture's alone, %v and %v", ls.Node, req, resp, wantReq, wantResp)
		}
	}
	if two.Capture.Packets != 2*one.Capture.Packets || len(two.Files) != 2 || two.Files[1].Node != "sbc1-core" {
		t.Errorf("capture %+v, files %+v", two.Capture, two.Files)
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"report", "--capture.dedup-window=0", demoCapture + "=sbc1-access", twin + "=sbc1-core"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"\n== node \"sbc1-access\"\n", "\n== node \"sbc1-core\"\n", "\n== all 2 label sets\n", "\n2 files, 2116 packets, 754638 bytes"} {
		if !strings.Contains("\n"+stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}

	stdout.Reset()
	if code := run([]string{"report", "--format=prometheus", "--capture.dedup-window=0", "--capture.node-name=unused", demoCapture + "=sbc1-access", twin + "=sbc1-core"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	responses := map[string]float64{}
	requests := map[string]float64{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		for name, sums := range map[string]map[string]float64{"sip_responses_total{": responses, "sip_requests_total{": requests} {
			if !strings.HasPrefix(line, name) {
				continue
			}
			_, rest, _ := strings.Cut(line, `node="`)
			node, _, _ := strings.Cut(rest, `"`)
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
				t.Fatal(err)
			}
			sums[node] += v
		}
	}
	wantSums := map[string]float64{"sbc1-access": 587, "sbc1-core": 587}
	if !reflect.DeepEqual(responses, wantSums) {
		t.Errorf("sip_responses_total by node %v, want %v", responses, wantSums)
	}
	wantSums = map[string]float64{"sbc1-access": 471, "sbc1-core": 471}
	if !reflect.DeepEqual(requests, wantSums) {
		t.Errorf("sip_requests_total by node %v, want %v", requests, wantSums)
	}
	for _, want := range []string{
		`sip_responses_total{class="5xx",code="503",method="INVITE",node="sbc1-access",reason="Service Unavailable"} 17`,
		`sip_responses_total{class="5xx",code="503",method="INVITE",node="sbc1-core",reason="Service Unavailable"} 17`,
	} {
		if !strings.Contains(stdout.String(), want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}

	// A file without its own node is counted under --capture.node-name.
	stdout.Reset()
	if code := run([]string{"report", "--format=prometheus", "--capture.dedup-window=0", "--capture.node-name=sbc1-core", demoCapture + "=sbc1-access", twin}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if want := `sip_requests_total{method="INVITE",node="sbc1-core"} 151`; !strings.Contains(stdout.String(), want+"\n") {
		t.Errorf("exposition lacks %s", want)
	}

	for _, tc := range []struct{ name, arg, stderr string }{
		{"empty node", demoCapture + "=", program + `: error: file "` + demoCapture + `=": empty node after "="` + "\n"},
		{"bad node", demoCapture + "=sbc1 access!", program + `: error: file "` + demoCapture + `=sbc1 access!": invalid node "sbc1 access!": want 1 to 64 ASCII letters, digits, spaces and -_.:/+@, starting and ending with a letter or digit` + "\n"},
		{"missing file", "testdata/no-such.pcap=core", program + `: error: open testdata/no-such.pcap: no such file or directory ("testdata/no-such.pcap=core" was split at its last "=" into the path "testdata/no-such.pcap" and the node "core": a path that contains "=" needs "=NODE" after it)` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run([]string{"report", tc.arg}, &stdout, &stderr); code != 1 || stderr.String() != tc.stderr {
				t.Errorf("exit %d, stderr\n  %q\nwant 1,\n  %q", code, stderr.String(), tc.stderr)
			}
		})
	}
}

// TestReloadSourceNodes: a source's own node goes through the nodes of
// --config.file like any node value, and a reload that maps it to another
// display name moves its messages there; a source without its own keeps
// --capture.node-name.
func TestReloadSourceNodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.yml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("peers:\n  - name: carrier-a\n    cidrs: [203.0.113.0/24]\nnodes:\n  access: sbc1-access\n")
	o := options{configFile: path, pipeline: defaultPipelineConfig()}
	o.pipeline.NodeName = "sbc1"
	o.pipeline.DedupWindow = 0 // one made-up message, sent again and again
	if err := o.loadConfig(); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(o.pipeline)
	if err != nil {
		t.Fatal(err)
	}
	access, plain := p.SourceNode("access"), p.SourceNode("")
	msg := sip.Message{Response: true, StatusCode: 200, CSeqMethod: []byte("INVITE")}
	origin := &decode.Origin{Src: netip.MustParseAddrPort("203.0.113.1:5060"), Dst: netip.MustParseAddrPort("198.51.100.7:5060")}
	// The label set a message is counted under: the one whose count grew.
	labelsAt := func(sn *pipeline.SourceNode, origin *decode.Origin) string {
		before := map[*collector.Node]uint64{}
		for _, n := range p.SIP().Nodes() {
			before[n] = n.Response(200, collector.MethodINVITE)
		}
		p.Observe(sn, origin, &msg)
		for _, n := range p.SIP().Nodes() {
			if n.Response(200, collector.MethodINVITE) > before[n] {
				return n.Label() + "/" + n.Peer() + "/" + n.Direction().String()
			}
		}
		return "none"
	}
	labels := func(sn *pipeline.SourceNode) string { return labelsAt(sn, origin) }
	if got, want := labels(access), "sbc1-access/carrier-a/inbound"; got != want {
		t.Errorf("source access: %s, want %s", got, want)
	}
	if got, want := labels(plain), "sbc1/carrier-a/inbound"; got != want {
		t.Errorf("source without a node: %s, want %s", got, want)
	}
	r := newReloader(path, p.SIP(), promslog.NewNopLogger())
	write("peers:\n  - name: carrier-a\n    cidrs: [203.0.113.0/24]\nnodes:\n  access: sbc1-edge\n  sbc1: sbc1-core\n")
	if err := r.reload(); err != nil {
		t.Fatal(err)
	}
	if got, want := labels(access), "sbc1-edge/carrier-a/inbound"; got != want {
		t.Errorf("after reload, source access: %s, want %s", got, want)
	}
	if got, want := labels(plain), "sbc1-core/carrier-a/inbound"; got != want {
		t.Errorf("after reload, source without a node: %s, want %s", got, want)
	}
	// HEP's node still wins over the source's.
	hep := *origin
	hep.Node = []byte("4711")
	if got := labelsAt(access, &hep); !strings.HasPrefix(got, "4711/") {
		t.Errorf("a HEP message through source access: node %q, want 4711", got)
	}
}

// TestParseConfigSourceNodesPathWithEquals: a file argument that names an
// existing file is read as is, even with "=" in its path; with "=NODE"
// after it, it has that node.
func TestParseConfigSourceNodesPathWithEquals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dt=2026-01-01")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "calls.pcap")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := parseSources("file", []string{path, path + "=sbc1-core"})
	if err != nil {
		t.Fatal(err)
	}
	want := []namedSource{{name: path, arg: path}, {name: path, node: "sbc1-core", arg: path + "=sbc1-core"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// An interface is always split: interface names do not hold "=".
	got, err = parseSources("--capture.interface", []string{path})
	if want := filepath.Dir(dir) + "/dt"; err != nil || got[0].name != want || got[0].node != "2026-01-01/calls.pcap" {
		t.Errorf("interface %q: %+v, %v; want the name %q and the node 2026-01-01/calls.pcap", path, got, err, want)
	}
}
