package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/merge"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/collector"
)

// TestLoopPasses: the demo capture looped three times
// (--capture.pcap-loop) counts three times what one pass counts: every
// response, request, session attempt, outcome, retransmission, timeout,
// ended session and delay, each pass new traffic though its Call-IDs are
// the same (the demo lasts 170 s, less than an INVITE's 180 s, so a pass
// used to match the transactions of the pass before). The gauges (active
// sessions and registrations) are a state, not a count: not compared.
func TestLoopPasses(t *testing.T) {
	one, three := loopValues(t, demoCapture, 1), loopValues(t, demoCapture, 3)
	if one[`sip_session_attempts_total`] == 0 || one[`sip_responses_total{code=200,method=INVITE}`] == 0 {
		t.Fatalf("one pass counted no sessions: %v", one)
	}
	for k, v := range one {
		if strings.HasPrefix(k, "sip_sessions_active") || strings.HasPrefix(k, "sip_registrations_active") ||
			strings.HasPrefix(k, "sip_exporter_") {
			continue
		}
		if got := three[k]; math.Abs(got-3*v) > 1e-9*math.Abs(v) {
			t.Errorf("%s: three passes %v, want 3 × %v", k, got, v)
		}
	}
	for k := range three {
		if _, ok := one[k]; !ok && !strings.HasPrefix(k, "sip_exporter_") {
			t.Errorf("%s = %v after three passes, absent after one", k, three[k])
		}
	}
}

// TestLoopPassesOpen: a 2-second capture of a call that rings and is never
// answered and one answered and never hung up, looped three times: three
// times two attempts, three timeouts and three calls still up at the end
// (the generator's counts). Without the pass in the transactions' keys, a
// pass's INVITEs were retransmissions of the open ones of the pass before.
func TestLoopPassesOpen(t *testing.T) {
	a, b := ap("192.0.2.1:5060"), ap("192.0.2.2:5060")
	var pkts []dupPacket
	for _, c := range []struct {
		id   string
		msgs []sipMsg
	}{
		{"ring@192.0.2.1", answered()[:3]}, // INVITE, 100, 180
		{"up@192.0.2.1", answered()},       // INVITE, 100, 180, 200, ACK
	} {
		for _, m := range c.msgs {
			src, dst := a, b
			if m.fromB {
				src, dst = b, a
			}
			pkts = append(pkts, dupPacket{at: time.Duration(len(pkts)) * 100 * time.Millisecond, src: src, dst: dst, ipID: uint16(len(pkts)), payload: m.bytes(c.id)})
		}
	}
	file := writeDupCapture(t, t.TempDir(), "open.pcap", pkts)
	got := loopValues(t, file, 3)
	for k, want := range map[string]float64{
		"sip_session_attempts_total":           6,
		"sip_session_timeouts_total":           3,
		"sip_session_outcomes_total{code=200}": 3,
		"sip_sessions_active":                  3,
		"sip_requests_total{method=INVITE}":    6,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

// loopValues reads the capture file passes times, as --capture.pcap-loop
// does, and returns the tracker's values (txValues) and the responses and
// requests counted.
func loopValues(t *testing.T, file string, passes int) map[string]float64 {
	t.Helper()
	p, err := pipeline.New(defaultPipelineConfig())
	if err != nil {
		t.Fatal(err)
	}
	f, err := input.OpenFile(input.FileConfig{Path: file, Loop: true, Passes: passes}, testWorkers)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	stats := make([]*decode.Stats, f.Workers())
	for i := range stats {
		stats[i] = new(decode.Stats)
	}
	producers := fileProducers(ctx, p, f, file, merge.Exact, p.SourceNode(""), stats)
	p.Seal()
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	if err := pipeline.ReadFile(ctx, f, producers, nil); err != nil {
		t.Fatal(err)
	}
	<-done
	out := trackerValues(t, p)
	for _, n := range p.SIP().Nodes() {
		n.EachResponse(func(code int, m collector.Method, v uint64) {
			out[fmt.Sprintf("sip_responses_total{code=%d,method=%s}", code, m)] = float64(v)
		})
		for m := range collector.Methods {
			if v := n.Request(collector.Method(m)); v > 0 {
				out[fmt.Sprintf("sip_requests_total{method=%s}", collector.Method(m))] = float64(v)
			}
		}
	}
	return out
}
