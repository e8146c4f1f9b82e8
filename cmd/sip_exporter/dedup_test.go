package main

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
)

// TestDedupCorpus reads every corpus capture twice through one pipeline,
// as two sources that see the same packets (two interfaces on one path, or
// a SPAN session mirroring both directions): every message is counted
// once, the second copy of each is a removed duplicate, and without
// suppression everything would be counted twice.
func TestDedupCorpus(t *testing.T) {
	for _, exp := range requireCorpus(t) {
		capFile := strings.TrimSuffix(exp, ".expected.tsv")
		t.Run(filepath.Base(capFile), func(t *testing.T) {
			once, _ := reportOf(t, capFile)
			// The two reads are merged by capture time, so each copy
			// comes right after its original.
			p, err := pipeline.New(defaultPipelineConfig())
			if err != nil {
				t.Fatal(err)
			}
			var st decode.Stats
			if err := readFiles(p, []string{capFile, capFile}, testWorkers, &st, func(error) {}); err != nil {
				t.Fatal(err)
			}
			if got, want := countsOf(p), countsOf(once); !maps.Equal(got, want) {
				t.Errorf("counts read twice %v, want those of one read %v", got, want)
			}
			messages := (st.Responses.Load() + st.Requests.Load()) / 2
			if got := p.DuplicatesRemoved(); got != messages {
				t.Errorf("duplicates removed %d, want %d (every message of the second read)", got, messages)
			}
		})
	}
}

// TestDedupDisabled checks that --capture.dedup-window=0 counts every copy.
func TestDedupDisabled(t *testing.T) {
	files := requireCorpus(t)
	capFile := strings.TrimSuffix(files[0], ".expected.tsv")
	once, _ := reportOf(t, capFile)
	cfg := defaultPipelineConfig()
	cfg.DedupWindow = 0
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Dedup() {
		t.Fatal("dedup table made for window 0")
	}
	if err := readFiles(p, []string{capFile, capFile}, testWorkers, new(decode.Stats), func(error) {}); err != nil {
		t.Fatal(err)
	}
	want := countsOf(once)
	for k, v := range want {
		want[k] = 2 * v
	}
	if got := countsOf(p); !maps.Equal(got, want) {
		t.Errorf("counts read twice without suppression %v, want %v", got, want)
	}
}
