package main

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
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
			// The second read comes after the whole first one, not within
			// the window as real copies do: the table must hold the file.
			cfg := defaultPipelineConfig()
			cfg.dedupSlots = 1 << 20
			p, err := newPipeline(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var a, b decode.Stats
			for _, st := range []*decode.Stats{&a, &b} {
				if err := input.ReadFile(context.Background(), input.FileConfig{Path: capFile}, p.decoder(st)); err != nil && !strings.Contains(err.Error(), input.ErrTruncated.Error()) {
					t.Fatal(err)
				}
			}
			if got, want := countsOf(p), countsOf(once); !maps.Equal(got, want) {
				t.Errorf("counts read twice %v, want those of one read %v", got, want)
			}
			messages := a.Responses.Load() + a.Requests.Load()
			if got := p.dedup.Removed(); got != messages {
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
	cfg.dedupWindow = 0
	p, err := newPipeline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.dedup != nil {
		t.Fatal("dedup table made for window 0")
	}
	for range 2 {
		if err := readFiles(p, []string{capFile}, new(decode.Stats), func(error) {}); err != nil {
			t.Fatal(err)
		}
	}
	want := countsOf(once)
	for k, v := range want {
		want[k] = 2 * v
	}
	if got := countsOf(p); !maps.Equal(got, want) {
		t.Errorf("counts read twice without suppression %v, want %v", got, want)
	}
}
