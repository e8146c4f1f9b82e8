package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	exemplarCIDR = "127.0.27.0/24" // the addresses of this test's SIPp pairs
	exemplarNode = "exemplars"     // --capture.node-name
)

// exemplarPairs are the calls of TestPrometheusExemplars: INVITEs
// rejected with 503, and INVITEs answered with 200 after 180 Ringing and
// ended with BYE; each UAC writes its messages (-trace_msg), whose
// Call-IDs are what the exemplars must show.
var exemplarPairs = []sippPair{
	{name: "invite-503", uas: "uas_invite.xml", uac: "uac_invite.xml", uasArgs: []string{"-set", "code", "503"}, uacArgs: []string{"-trace_msg"}},
	{name: "invite-200", uas: "uas_invite.xml", uac: "uac_invite.xml", uasArgs: []string{"-set", "code", "200"}, uacArgs: []string{"-trace_msg"}},
}

// TestPrometheusExemplars runs the real exporter on lo and a real
// Prometheus with exemplar storage (--enable-feature=exemplar-storage)
// scraping it every second in the OpenMetrics format it negotiates, while
// SIPp places calls that fail with 503 and calls that are answered. The
// exemplars Prometheus returns (/api/v1/query_exemplars) for a failure
// counter (sip_session_outcomes_total{code="503"}, sip_responses_total
// of the 503s) and for the delay histograms (the SRD, to the 180 of
// every call; the SDD and the duration of the answered calls) must carry,
// as call_id, a Call-ID that SIPp's UAC of that kind of call sent, as its
// own message log (-trace_msg) shows, and the node.
func TestPrometheusExemplars(t *testing.T) {
	requireLive(t, "sipp", "prometheus")
	bin := buildExporter(t)
	_, subnet, err := net.ParseCIDR(exemplarCIDR)
	if err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, bin,
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, subnet),
		"--capture.node-name="+exemplarNode)
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	exporterURL, err := url.Parse(e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := runPrometheus(t, dir, map[string]any{
		"global": map[string]any{"scrape_interval": "1s", "scrape_timeout": "1s"},
		"scrape_configs": []any{map[string]any{
			"job_name":       "sip_exporter",
			"static_configs": []any{map[string]any{"targets": []string{exporterURL.Host}}},
		}},
	}, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--enable-feature=exemplar-storage")
	if err := p.waitFor(`sip_exporter_source_up{type="interface"} == 1`, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	sent := make([][]string, len(exemplarPairs)) // Call-IDs by pair
	runEach(t, len(exemplarPairs), func(i int) error {
		pair := exemplarPairs[i]
		pdir := filepath.Join(t.TempDir(), pair.name)
		uasIP := fmt.Sprintf("127.0.27.%d", 10+2*i)
		uacIP := fmt.Sprintf("127.0.27.%d", 11+2*i)
		if _, err := runSIPpPair(pdir, pair, "u1", uasIP, uacIP, sippCalls); err != nil {
			return fmt.Errorf("%s: %w", pair.name, err)
		}
		ids, err := sippCallIDs(filepath.Join(pdir, "uac"))
		if err != nil {
			return fmt.Errorf("%s: %w", pair.name, err)
		}
		if len(ids) != sippCalls {
			return fmt.Errorf("%s: %d Call-IDs in the UAC's message log, want %d: %q", pair.name, len(ids), sippCalls, ids)
		}
		sent[i] = ids
		return nil
	})
	t.Logf("Call-IDs sent: 503 %q, 200 %q", sent[0], sent[1])
	// The text format, negotiated by no OpenMetrics Accept header, has
	// no exemplars (the golden tests pin it byte for byte).
	if raw, _ := e.settle(t, 5*time.Second); bytes.Contains(raw, []byte("call_id")) {
		t.Errorf("the text format shows exemplars:\n%s", raw)
	}

	for _, c := range []struct {
		query string
		ids   []string
	}{
		{`sip_session_outcomes_total{code="503"}`, sent[0]},
		{`sip_responses_total{code="503",method="INVITE"}`, sent[0]},
		// Every call rings (180) before its final response: its SRD is
		// measured to the 180, outcome="success" (RFC 6076 §4.3).
		{`sip_session_request_delay_seconds_bucket{outcome="success"}`, slices.Concat(sent...)},
		{`sip_session_disconnect_delay_seconds_bucket`, sent[1]},
		{`sip_session_duration_seconds_bucket`, sent[1]},
	} {
		got, err := waitExemplars(p, c.query, start, 20*time.Second)
		if err != nil {
			t.Errorf("%s: %v", c.query, err)
			continue
		}
		for _, ex := range got {
			if !slices.Contains(c.ids, ex.Labels["call_id"]) || ex.Labels["node"] != exemplarNode || len(ex.Labels) != 2 {
				t.Errorf("%s: exemplar %v of %v: want call_id one of %q, node %q", c.query, ex.Labels, ex.series, c.ids, exemplarNode)
			}
		}
		t.Logf("%s: %d exemplars, e.g. %v", c.query, len(got), got[0].Labels)
	}
}

// promExemplar is one exemplar of /api/v1/query_exemplars.
type promExemplar struct {
	Labels    map[string]string `json:"labels"`
	Value     string            `json:"value"`
	Timestamp float64           `json:"timestamp"`
	series    map[string]string
}

// waitExemplars polls Prometheus until the exemplars of query since
// start are there, and returns them.
func waitExemplars(p *promProcess, query string, start time.Time, timeout time.Duration) ([]promExemplar, error) {
	deadline := time.Now().Add(timeout)
	for {
		var data []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []promExemplar    `json:"exemplars"`
		}
		err := p.get("/api/v1/query_exemplars", url.Values{
			"query": {query},
			"start": {strconv.FormatInt(start.Unix()-1, 10)},
			"end":   {strconv.FormatInt(time.Now().Unix()+1, 10)},
		}, &data)
		var out []promExemplar
		for _, s := range data {
			for _, ex := range s.Exemplars {
				ex.series = s.SeriesLabels
				out = append(out, ex)
			}
		}
		if err == nil && len(out) > 0 {
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no exemplars after %s (err %v)", timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sippCallIDs returns the distinct Call-IDs of the messages in the SIPp
// message log (-trace_msg, *_messages.log) in dir, in order.
func sippCallIDs(dir string) ([]string, error) {
	path, raw, err := sippFile(dir, "_messages.log")
	if err != nil {
		return nil, err
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Call-ID") && strings.TrimSpace(name) != "i" {
			continue
		}
		if id := strings.TrimSpace(value); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no Call-ID", path)
	}
	return ids, nil
}
