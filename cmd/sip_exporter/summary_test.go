package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// reportJSON runs report with args, which ask for --format=json, and
// decodes its output strictly into the summary type: a field of the
// document that the type does not declare fails the test.
func reportJSON(t *testing.T, args ...string) *summary {
	t.Helper()
	var stdout, stderr strings.Builder
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
	}
	dec := json.NewDecoder(strings.NewReader(stdout.String()))
	dec.DisallowUnknownFields()
	var s summary
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("decode the JSON of %q: %v\n%s", args, err, stdout.String())
	}
	if dec.More() {
		t.Fatalf("%q: more than one JSON document", args)
	}
	return &s
}

// TestReportJSON: the JSON document of the demo capture decodes into the
// documented type, is version 1, and holds the figures of the demo's
// exposition (testdata/demo.prometheus.golden) with the ratios of README
// "SLA formulas": ASR 80/151, NER (80+18+12+14+10)/151, SER 80/151, SEER
// (80+12+10)/151, ISA 17/151, SCR 80/151. Every field is present, and
// counts, ratios and delays are JSON numbers.
func TestReportJSON(t *testing.T) {
	s := reportJSON(t, "report", "--format=json", demoCapture)
	if s.Version != 1 || !s.TransactionsTracked {
		t.Errorf("version %d, transactions tracked %v; want 1, true", s.Version, s.TransactionsTracked)
	}
	wantFirst := time.Date(2026, 11, 1, 12, 0, 0, 35e6, time.UTC)
	wantLast := time.Date(2026, 11, 1, 12, 2, 50, 477e6, time.UTC)
	c := s.Capture
	if c.FirstPacketTime == nil || !c.FirstPacketTime.Equal(wantFirst) || c.LastPacketTime == nil || !c.LastPacketTime.Equal(wantLast) || c.DurationSeconds != 170.442 {
		t.Errorf("capture span %v to %v (%vs), want %v to %v (170.442s)", c.FirstPacketTime, c.LastPacketTime, c.DurationSeconds, wantFirst, wantLast)
	}
	if c.Packets != 1058 || c.Bytes != 377319 || c.SIPMessages != 1058 || c.ParseErrors != 0 || len(s.Files) != 1 || s.Files[0].Path != demoCapture || s.Files[0].Packets != 1058 || s.Files[0].Truncated {
		t.Errorf("capture %+v, files %+v", c, s.Files)
	}
	if len(s.LabelSets) != 1 || s.LabelSets[0].Node != "" || !reflect.DeepEqual(s.LabelSets[0].countsSummary, s.Total) {
		t.Fatalf("label sets %+v: want one, node \"\", equal to the total", s.LabelSets)
	}
	if want := []requestSummary{{"INVITE", 151, 0}, {"ACK", 151, 0}, {"BYE", 80, 0}, {"CANCEL", 14, 0}, {"REGISTER", 52, 0}, {"OPTIONS", 23, 0}}; !reflect.DeepEqual(s.Total.Requests, want) {
		t.Errorf("requests %+v, want %+v", s.Total.Requests, want)
	}
	if len(s.Total.Responses) != 13 || s.Total.Responses[0] != (responseSummary{100, "Trying", "1xx", "INVITE", 151, 0}) {
		t.Errorf("responses %+v", s.Total.Responses)
	}
	ss := s.Total.Sessions
	if ss == nil {
		t.Fatal("no sessions")
	}
	if ss.Attempts != 151 || ss.Answered != 80 || ss.Timeouts != 0 || ss.Completed != 80 || ss.ActiveAtEnd != 0 {
		t.Errorf("sessions %+v", ss)
	}
	for name, tc := range map[string]struct {
		got  *float64
		want float64
	}{
		"ASR": {ss.ASR, 80.0 / 151}, "NER": {ss.NER, 134.0 / 151}, "SER": {ss.SER, 80.0 / 151},
		"SEER": {ss.SEER, 102.0 / 151}, "ISA": {ss.ISA, 17.0 / 151}, "SCR": {ss.SCR, 80.0 / 151},
		"ACD": {ss.ACDSeconds, 148.789 / 80},
	} {
		if tc.got == nil || math.Abs(*tc.got-tc.want) > 1e-12 {
			t.Errorf("%s %v, want %v", name, tc.got, tc.want)
		}
	}
	if d := ss.SRD["success"]; d.Count != 116 || d.P50 == nil || d.P95 == nil || *d.P50 <= 0.025 || *d.P50 > 0.1 || *d.P95 < *d.P50 {
		t.Errorf("SRD success %+v", d)
	}
	if d := ss.SRD["challenge"]; d.Count != 0 || d.P50 != nil {
		t.Errorf("SRD challenge %+v, want no observations and null percentiles", d)
	}
	// The demo's 26 registrations are each a REGISTER challenged with 401
	// and one re-sent: one attempt each, RRD success from the first
	// REGISTER (RFC 6076 §4.1), no challenge left unanswered.
	if r := s.Total.Registrations; r == nil || r.Attempts != 26 || r.IRA == nil || *r.IRA != 0 || r.RRD["success"].Count != 26 || r.RRD["challenge"].Count != 0 {
		t.Errorf("registrations %+v", r)
	}

	var stdout, stderr strings.Builder
	if code := run([]string{"report", "--format=json", demoCapture}, &stdout, &stderr); code != 0 {
		t.Fatal(stderr.String())
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &doc); err != nil {
		t.Fatal(err)
	}
	total := doc["total"].(map[string]any)
	sessions := total["sessions"].(map[string]any)
	for _, k := range []string{"attempts", "answered", "timeouts", "active_at_end", "completed", "asr", "ner", "ser", "seer", "isa", "scr", "acd_seconds"} {
		if _, ok := sessions[k].(float64); !ok {
			t.Errorf("sessions.%s is %T, want a number", k, sessions[k])
		}
	}
	for _, k := range []string{"version", "transactions_tracked", "files", "capture", "total", "label_sets"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %q", k)
		}
	}
	if _, ok := doc["capture"].(map[string]any)["first_packet_time"].(string); !ok {
		t.Errorf("capture.first_packet_time is not a string: %v", doc["capture"])
	}
}

// TestReportJSONPeers: with a peers file, one label set per peer and
// direction that saw traffic, and a total whose counts are their sums.
func TestReportJSONPeers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.yml")
	if err := os.WriteFile(path, []byte("peers:\n  - name: carrier-a\n    cidrs: [203.0.113.0/24]\n  - name: customers\n    cidrs: [198.51.100.0/24]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := reportJSON(t, "report", "--format=json", "--config.file="+path, demoCapture)
	var attempts, requests uint64
	var peers []string
	for _, ls := range s.LabelSets {
		peers = append(peers, ls.Peer+"/"+ls.Direction)
		attempts += ls.Sessions.Attempts
		for _, r := range ls.Requests {
			requests += r.Count
		}
	}
	if want := []string{"carrier-a/inbound", "carrier-a/outbound", "customers/inbound", "customers/outbound"}; !reflect.DeepEqual(peers, want) {
		t.Errorf("label sets %v, want %v", peers, want)
	}
	if attempts != 151 || s.Total.Sessions.Attempts != 151 || requests != 471 {
		t.Errorf("attempts %d (total %d), requests %d; want 151 and 471", attempts, s.Total.Sessions.Attempts, requests)
	}
}

// TestReportJSONNoTracking: with --no-sip.transactions the document says
// so, and sessions and registrations are null.
func TestReportJSONNoTracking(t *testing.T) {
	s := reportJSON(t, "report", "--format=json", "--no-sip.transactions", demoCapture)
	if s.TransactionsTracked || s.Total.Sessions != nil || s.Total.Registrations != nil || len(s.Total.Requests) != 6 {
		t.Errorf("transactions tracked %v, sessions %v, registrations %v, requests %v", s.TransactionsTracked, s.Total.Sessions, s.Total.Registrations, s.Total.Requests)
	}
}

// TestReportReasonCauses: a Q.850 cause of a Reason header is reported
// with its name (zeek's wireshark.pcap: a CANCEL with cause 21).
func TestReportReasonCauses(t *testing.T) {
	requireCorpus(t)
	s := reportJSON(t, "report", "--format=json", corpusDir+"/zeek__wireshark.pcap")
	if want := []causeSummary{{"Q.850", 21, "Call rejected", 1}}; !reflect.DeepEqual(s.Total.ReasonCauses, want) {
		t.Errorf("reason causes %+v, want %+v", s.Total.ReasonCauses, want)
	}
}

// TestReportTimeSpan: the first and last packet times of a pcapng file,
// and of a gzip'd pcap file, are those of its first record and of its
// latest record.
func TestReportTimeSpan(t *testing.T) {
	b, err := os.ReadFile(demoCapture)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "demo.pcap.gz")
	if err := os.WriteFile(path, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s := reportJSON(t, "report", "--format=json", path)
	if f := s.Files[0]; f.FirstPacketTime == nil || f.FirstPacketTime.Format(time.RFC3339Nano) != "2026-11-01T12:00:00.035Z" || f.DurationSeconds != 170.442 {
		t.Errorf("gzip'd demo: %+v", f)
	}
	if ft, ok := firstPacketTime("report_test.go"); ok {
		t.Errorf("a Go file has a first packet time %v", ft)
	}
	// The demo capture as pcapng.
	pr, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var ngBuf bytes.Buffer
	nw, err := pcapgo.NewNgWriter(&ngBuf, pr.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			break
		}
		ci.InterfaceIndex = 0
		if err := nw.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := nw.Flush(); err != nil {
		t.Fatal(err)
	}
	ng := filepath.Join(t.TempDir(), "demo.pcapng")
	if err := os.WriteFile(ng, ngBuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s = reportJSON(t, "report", "--format=json", ng)
	if f := s.Files[0]; f.FirstPacketTime == nil || f.FirstPacketTime.Format(time.RFC3339Nano) != "2026-11-01T12:00:00.035Z" || f.DurationSeconds != 170.442 || f.Packets != 1058 {
		t.Errorf("demo as pcapng: %+v", f)
	}
}

// TestHistogramQuantile: quantiles of a classic histogram as PromQL's
// histogram_quantile computes them: linear within the bucket holding the
// rank (from 0 in the first), the highest finite bound when the rank
// falls in +Inf, none without observations.
func TestHistogramQuantile(t *testing.T) {
	h := func(bounds []float64, cum []uint64, count uint64) *dto.Histogram {
		d := &dto.Histogram{SampleCount: proto.Uint64(count)}
		for i, b := range bounds {
			d.Bucket = append(d.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(cum[i])})
		}
		return d
	}
	for _, tc := range []struct {
		name  string
		h     *dto.Histogram
		q     float64
		want  float64
		empty bool
	}{
		{"first bucket", h([]float64{0.1, 0.2, 0.4}, []uint64{10, 20, 30}, 30), 0.25, 0.075, false}, // rank 7.5 of 10 in [0, 0.1]
		{"middle", h([]float64{0.1, 0.2, 0.4}, []uint64{10, 20, 30}, 30), 0.5, 0.15, false},         // rank 15: 5 of 10 in [0.1, 0.2]
		{"top finite", h([]float64{0.1, 0.2, 0.4}, []uint64{10, 20, 30}, 30), 1, 0.4, false},
		{"in +Inf", h([]float64{0.1, 0.2, 0.4}, []uint64{1, 2, 3}, 10), 0.95, 0.4, false},
		{"empty", h([]float64{0.1}, []uint64{0}, 0), 0.5, 0, true},
	} {
		var b bucketCounts
		b.add(tc.h)
		got := b.quantile(tc.q)
		switch {
		case tc.empty && got != nil:
			t.Errorf("%s: %v, want none", tc.name, *got)
		case !tc.empty && (got == nil || math.Abs(*got-tc.want) > 1e-12):
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Two label sets' histograms add up bucket by bucket.
	var b bucketCounts
	b.add(h([]float64{0.1, 0.2}, []uint64{1, 2}, 2))
	b.add(h([]float64{0.1, 0.2}, []uint64{0, 2}, 2))
	if b.count != 4 || !reflect.DeepEqual(b.cum, []float64{1, 4}) {
		t.Errorf("sum of two: count %v, cumulative %v", b.count, b.cum)
	}
}

// TestDurationText: spans of days are written with days.
func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		170442 * time.Millisecond:            "2m50.442s",
		50*time.Hour + 3*time.Minute + 400e6: "2d2h3m0.4s",
		time.Duration(1234567):               "1ms",
		24 * time.Hour:                       "1d0s",
	} {
		if got := durationText(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}
