package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
)

// TestReportWorkers reads every plain pcap of the corpus, and the demo
// capture, with one worker and shard and with two, three and four of
// each (input.File, pipeline.Config.Shards): the whole exposition
// (counts, transactions, sessions, delays) and the decoders' packet, byte
// and parse-error counts must be the same. Each
// capture is also read twice at once, so that ties between files and
// copies (dedup) go through the sharded merge too.
func TestReportWorkers(t *testing.T) {
	files := []string{demoCapture}
	for _, exp := range requireCorpus(t) {
		files = append(files, strings.TrimSuffix(exp, ".expected.tsv"))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if strings.HasSuffix(f, ".pcap") {
				mf, err := input.OpenFile(input.FileConfig{Path: f}, 2)
				if err != nil || !mf.Mapped() {
					t.Fatalf("a .pcap file is read by workers: %v", err)
				}
				mf.Close()
			}
			for _, set := range [][]string{{f}, {f, f}} {
				var want string
				var wantStats [3]uint64
				for _, workers := range []int{1, 2, 3, 4} {
					cfg := defaultPipelineConfig()
					cfg.Shards = workers // as many shards of the counting stage
					p, err := pipeline.New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					var st decode.Stats
					if err := readFiles(p, set, workers, &st, func(error) {}); err != nil {
						t.Fatal(err)
					}
					var out bytes.Buffer
					if err := writeExposition(&out, p); err != nil {
						t.Fatal(err)
					}
					var errs uint64
					st.ParseErrors(func(_ string, n uint64) { errs += n })
					stats := [3]uint64{st.Packets.Load(), st.Bytes.Load(), errs}
					if workers == 1 {
						want, wantStats = out.String(), stats
						if !strings.Contains(want, "sip_responses_total") && !strings.Contains(want, "sip_requests_total") {
							t.Fatalf("%d files: no SIP counted with one worker", len(set))
						}
						continue
					}
					if got := out.String(); got != want {
						t.Errorf("%d files, %d workers: exposition differs from one worker's:\n%s", len(set), workers, lineDiff(want, got))
					}
					if stats != wantStats {
						t.Errorf("%d files, %d workers: packets, bytes, parse errors %v, one worker %v", len(set), workers, stats, wantStats)
					}
				}
			}
		})
	}
}

// lineDiff lists the lines of a missing from b (-) and of b missing from a (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
