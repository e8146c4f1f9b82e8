package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestServePcapFile runs the real binary on the bundled demo capture and
// checks that, once the file has ended, /metrics serves for the sip_
// families exactly what `report --format=prometheus` prints for it
// (testdata/demo.prometheus.golden), and passes promtool.
func TestServePcapFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildExporter(t)
	e := startExporter(t, bin, "--capture.pcap-file="+demoCapture)
	deadline := time.Now().Add(15 * time.Second)
	var raw []byte
	for {
		r, mfs, err := e.scrape()
		if err == nil {
			up, ok := gaugeValue(mfs, "sip_exporter_source_up", map[string]string{"source": demoCapture, "type": "pcap"})
			packets, _ := gaugeValue(mfs, "sip_exporter_packets_received_total", map[string]string{"source": demoCapture})
			if ok && up == 0 && packets == 1058 {
				raw = r
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo capture was not read to its end: %v\n%s", err, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want, err := os.ReadFile("testdata/demo.prometheus.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got := sipFamilies(string(raw)); got != string(want) {
		t.Errorf("/metrics differs from report's exposition:\n%s", diffLines(string(want), got))
	}
	if _, err := exec.LookPath("promtool"); err != nil && os.Getenv("CI") != "true" {
		t.Log("promtool not on PATH: exposition not checked with it")
		return
	}
	checkPromtool(t, raw)
}

// TestServeDuplicateSources runs the real binary on the demo capture as
// two sources that see the same packets (a copy of the file under another
// name, as two interfaces on one path would): /metrics counts every message
// once and reports the other copy of each as a removed duplicate.
func TestServeDuplicateSources(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildExporter(t)
	twin := demoTwin(t)
	e := startExporter(t, bin, "--capture.pcap-file="+demoCapture, "--capture.pcap-file="+twin)
	r, mfs := e.waitDemoRead(t, demoCapture, twin)
	want, err := os.ReadFile("testdata/demo.prometheus.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got := sipFamilies(string(r)); got != string(want) {
		t.Errorf("/metrics of two copies differs from report's exposition of one:\n%s", diffLines(string(want), got))
	}
	var messages float64
	for _, name := range []string{"sip_responses_total", "sip_requests_total"} {
		for _, m := range mfs[name].GetMetric() {
			messages += m.GetCounter().GetValue()
		}
	}
	removed, _ := gaugeValue(mfs, "sip_exporter_duplicates_removed_total", nil)
	if removed != messages || messages == 0 {
		t.Errorf("sip_exporter_duplicates_removed_total %v, want %v (one copy of every message)", removed, messages)
	}
}

// demoTwin writes a copy of the demo capture into a temporary directory
// and returns its path.
func demoTwin(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(demoCapture)
	if err != nil {
		t.Fatal(err)
	}
	twin := filepath.Join(t.TempDir(), "twin.pcap")
	if err := os.WriteFile(twin, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return twin
}

// waitDemoRead scrapes until every one of files (copies of the demo
// capture) has been read to its end and the merge holds no message, and
// returns that scrape; it fails the test after 15 s.
func (e *exporterProcess) waitDemoRead(t *testing.T, files ...string) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, mfs, err := e.scrape()
		if err == nil {
			done := true
			for _, src := range files {
				up, ok := gaugeValue(mfs, "sip_exporter_source_up", map[string]string{"source": src, "type": "pcap"})
				packets, _ := gaugeValue(mfs, "sip_exporter_packets_received_total", map[string]string{"source": src})
				done = done && ok && up == 0 && packets == 1058
			}
			if pending, _ := gaugeValue(mfs, "sip_exporter_merge_pending_messages", nil); done && pending == 0 {
				return r, mfs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the captures were not read to their end: %v\n%s", err, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sipFamilies returns the lines of the sip_ families (not sip_exporter_)
// of a text exposition.
func sipFamilies(exposition string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(exposition, "\n") {
		name := l
		if strings.HasPrefix(l, "# HELP ") || strings.HasPrefix(l, "# TYPE ") {
			name = l[len("# HELP "):]
		}
		if strings.HasPrefix(name, "sip_") && !strings.HasPrefix(name, "sip_exporter_") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestServePcapFileNodes runs the real binary on two file sources with a
// node each (the demo capture and a copy, dedup off so that both count)
// and checks over HTTP that each node has exactly the demo capture's
// responses and requests, and that --capture.node-name's node, which no
// source uses, has no series.
func TestServePcapFileNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildExporter(t)
	twin := demoTwin(t)
	e := startExporter(t, bin, "--capture.dedup-window=0", "--capture.node-name=unused",
		"--capture.pcap-file="+demoCapture+"=sbc1-access", "--capture.pcap-file="+twin+"=sbc1-core")
	r, mfs := e.waitDemoRead(t, demoCapture, twin)
	sums := map[string]float64{}
	for _, name := range []string{"sip_responses_total", "sip_requests_total"} {
		for _, m := range mfs[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "node" {
					sums[name+" "+l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	want := map[string]float64{
		"sip_responses_total sbc1-access": 587, "sip_responses_total sbc1-core": 587,
		"sip_requests_total sbc1-access": 471, "sip_requests_total sbc1-core": 471,
	}
	if !reflect.DeepEqual(sums, want) {
		t.Errorf("sums by node %v, want %v\n%s", sums, want, r)
	}
	for _, node := range []string{"sbc1-access", "sbc1-core"} {
		if v, _ := gaugeValue(mfs, "sip_responses_total", map[string]string{"node": node, "method": "INVITE", "code": "503"}); v != 17 {
			t.Errorf("sip_responses_total{node=%q,method=\"INVITE\",code=\"503\"} %v, want 17", node, v)
		}
	}
}
