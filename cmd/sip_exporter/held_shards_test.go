package main

import (
	"bytes"
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
)

// TestHeldResponsesShards: a tap whose two directions are time-stamped
// apart (the responses 20 ms ahead of their requests) at a rate where
// many responses wait for their request at once, among responses whose
// request the capture never has. Every early response is matched, every
// other one unmatched, and the tracker's values are the same for 1 to 4
// shards; they come from the generator: early = the answered INVITEs'
// 100 Trying, unmatched = the OPTIONS 200s without a request. (The hold
// used to keep 64 responses per shard, so that how many were given up
// before their request came depended on how the Call-IDs fell to the
// shards.)
func TestHeldResponsesShards(t *testing.T) {
	const invites, orphans = 400, 300
	path := filepath.Join(t.TempDir(), "skewed.pcap")
	if err := writeSkewedCapture(path, invites, orphans); err != nil {
		t.Fatal(err)
	}
	var first map[string]float64
	for shards := 1; shards <= 4; shards++ {
		cfg := defaultPipelineConfig()
		cfg.Shards = shards
		got := txValuesWith(t, cfg, path)
		if e, u := got["sip_exporter_transaction_responses_early_total"], got["sip_exporter_transaction_responses_unmatched_total"]; e != invites || u != orphans {
			t.Errorf("%d shards: early %v, unmatched %v; want %d, %d", shards, e, u, invites, orphans)
		}
		if first == nil {
			first = got
			continue
		}
		for k, v := range first {
			if got[k] != v {
				t.Errorf("%d shards: %s = %v, with one shard %v", shards, k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := first[k]; !ok {
				t.Errorf("%d shards: %s = %v, absent with one shard", shards, k, v)
			}
		}
	}
}

// writeSkewedCapture writes invites INVITEs, each preceded 20 ms by its
// 100 Trying, and orphans 200 OK responses to OPTIONS that were never
// sent, all in 100 ms, in time order.
func writeSkewedCapture(path string, invites, orphans int) error {
	var pkts []scriptPacket
	step := 100 * time.Millisecond / time.Duration(invites+orphans)
	for i := range invites {
		id := fmt.Sprintf("skew-%d@192.0.2.1", i)
		at := time.Duration(i) * step
		trying := sipMsg{fromB: true, method: "INVITE", code: 100, cseq: 1, branch: fmt.Sprintf("z9hG4bKs%d", i), fromTag: "a"}
		invite := sipMsg{method: "INVITE", cseq: 1, branch: trying.branch, fromTag: "a"}
		pkts = append(pkts, scriptPacket{at, true, trying.bytes(id)}, scriptPacket{at + 20*time.Millisecond, false, invite.bytes(id)})
	}
	for i := range orphans {
		ok := sipMsg{fromB: true, method: "OPTIONS", code: 200, cseq: 1, branch: fmt.Sprintf("z9hG4bKo%d", i), fromTag: "o", toTag: "b"}
		pkts = append(pkts, scriptPacket{time.Duration(invites+i) * step / 2, true, ok.bytes(fmt.Sprintf("orphan-%d@192.0.2.1", i))})
	}
	slices.SortStableFunc(pkts, func(a, b scriptPacket) int { return cmp.Compare(a.at, b.at) })
	return writeScriptPackets(path, pkts)
}

// TestOfflineExposition: a pipeline whose metrics are not served
// (pipeline.Config.Offline, the report command: no exemplars, no native
// histogram buckets) gives the same text exposition as one that is, on
// the demo capture and the one of TestHeldResponsesShards.
func TestOfflineExposition(t *testing.T) {
	skewed := filepath.Join(t.TempDir(), "skewed.pcap")
	if err := writeSkewedCapture(skewed, 100, 50); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{demoCapture, skewed} {
		var out [2]string
		for i, offline := range []bool{false, true} {
			cfg := defaultPipelineConfig()
			cfg.Offline = offline
			p, err := pipeline.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := readFiles(p, []string{f}, 2, new(decode.Stats), func(err error) { t.Error(err) }); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := writeExposition(&b, p); err != nil {
				t.Fatal(err)
			}
			out[i] = b.String()
		}
		if out[0] != out[1] || !strings.Contains(out[0], "sip_session_request_delay_seconds_bucket") && f == demoCapture {
			t.Errorf("%s: offline exposition differs (or has no delays)", filepath.Base(f))
		}
	}
}
