package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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
