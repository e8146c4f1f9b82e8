package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/collector"
)

// registerMsgs is a REGISTER from A (alice's phone, for the AOR
// sip:bob@192.0.2.2 that the script's To names) at ms with the Contact
// parameters and headers in req, and the registrar's (B's) 200 20 ms
// later with the headers in resp.
func registerMsgs(ms, cseq int, req, resp string) []sipMsg {
	br := fmt.Sprintf("z9hG4bKr%d", cseq)
	return []sipMsg{
		{ms: ms, method: "REGISTER", cseq: cseq, branch: br, fromTag: "a1", extra: req},
		{ms: ms + 20, fromB: true, method: "REGISTER", code: 200, cseq: cseq, branch: br, fromTag: "a1", toTag: "b1", extra: resp},
	}
}

// optionsMsgs is an OPTIONS ping from A at ms answered by B with code 10
// ms later (code 0: never answered); fromB swaps the roles.
func optionsMsgs(ms, n, code int, fromB bool) []sipMsg {
	br := fmt.Sprintf("z9hG4bKo%d", n)
	tag := fmt.Sprintf("o%d", n)
	out := []sipMsg{{ms: ms, fromB: fromB, method: "OPTIONS", cseq: 1, branch: br, fromTag: tag}}
	if code != 0 {
		out = append(out, sipMsg{ms: ms + 10, fromB: !fromB, method: "OPTIONS", code: code, cseq: 1, branch: br, fromTag: tag, toTag: "t" + tag})
	}
	return out
}

// TestScriptedNoc replays generated captures for the NOC gauges and
// counters (sessions, registrations, OPTIONS keepalives) through the
// report pipeline. Each scenario is checked at checkpoints: the capture
// cut after its first n messages, as report prints it at the end of the
// file (sessions and registrations as they are at the last packet). The
// expectations are every non-zero transaction value, from the script.
func TestScriptedNoc(t *testing.T) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) // writeScript's first packet
	unix := func(ms int) float64 { return float64(start.Unix()) + float64(ms)/1000 }
	answeredCall := map[string]float64{
		"sip_session_attempts_total":                               1,
		"sip_session_outcomes_total{code=200}":                     1,
		"sip_session_request_delay_seconds_count{outcome=success}": 1,
		"sip_session_request_delay_seconds_sum{outcome=success}":   0.05,
	}
	with := func(base map[string]float64, more map[string]float64) map[string]float64 {
		out := map[string]float64{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range more {
			out[k] = v
		}
		return out
	}
	reg := func(n int, more map[string]float64) map[string]float64 {
		return with(map[string]float64{
			"sip_registration_attempts_total":                               float64(n),
			"sip_registration_request_delay_seconds_count{outcome=success}": float64(n),
			"sip_registration_request_delay_seconds_sum{outcome=success}":   0.02 * float64(n),
		}, more)
	}
	peers, err := collector.NewPeers(collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "callee", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/32")}}}})
	if err != nil {
		t.Fatal(err)
	}
	type checkpoint struct {
		n    int // messages of the script written; 0 all
		want map[string]float64
	}
	tests := []struct {
		name   string
		cfg    func(*pipeline.Config)
		msgs   []sipMsg
		checks []checkpoint
	}{
		{"answered then ended by the callee", nil, slices.Concat(answered(), byeFromB(5000, "")), []checkpoint{
			{5, with(answeredCall, map[string]float64{"sip_sessions_active": 1, "sip_exporter_dialogs": 1})}, // up to the ACK
			{0, with(answeredCall, map[string]float64{
				"sip_sessions_ended_total{reason=bye}":       1,
				"sip_session_duration_seconds_count":         1,
				"sip_session_duration_seconds_sum":           4,
				"sip_session_disconnect_delay_seconds_count": 1,
				"sip_session_disconnect_delay_seconds_sum":   0.02,
			})},
		}},
		{"never ended: max age", func(c *pipeline.Config) { c.Tx.SessionMaxAge = 10 * time.Second },
			// Answered at 1 s; later traffic moves the clock to 10.999 s,
			// then to 11 s, the max age.
			slices.Concat(answered(), optionsMsgs(10_989, 1, 200, false), optionsMsgs(11_000, 2, 200, false)), []checkpoint{
				{7, with(answeredCall, map[string]float64{"sip_sessions_active": 1, "sip_exporter_dialogs": 1})},
				{0, with(answeredCall, map[string]float64{"sip_sessions_ended_total{reason=max_age}": 1})},
			}},
		{"never ended: still up at the end of the file", nil, answered(), []checkpoint{
			{0, with(answeredCall, map[string]float64{"sip_sessions_active": 1, "sip_exporter_dialogs": 1})},
		}},
		{"register 60, refreshed, de-registered with 0", nil, slices.Concat(
			registerMsgs(0, 1, "Contact: <sip:bob@192.0.2.1>;expires=60\r\n", "Contact: <sip:bob@192.0.2.1>;expires=60\r\n"),
			registerMsgs(30_000, 2, "Contact: <sip:bob@192.0.2.1>;expires=60\r\n", "Contact: <sip:bob@192.0.2.1>;expires=60\r\n"),
			// Past the first expiry (60.02 s), within the refreshed one (90.02 s).
			optionsMsgs(70_000, 1, 200, false),
			// Removed: the 200 lists no binding, so the request's 0 counts.
			registerMsgs(80_000, 3, "Contact: <sip:bob@192.0.2.1>;expires=0\r\n", ""),
		), []checkpoint{
			{2, reg(1, map[string]float64{"sip_registrations_active": 1, "sip_exporter_registrations": 1})},
			{6, reg(2, map[string]float64{"sip_registrations_active": 1, "sip_exporter_registrations": 1})},
			{0, reg(3, nil)},
		}},
		{"registration expires by time", nil, slices.Concat(
			registerMsgs(0, 1, "Contact: <sip:bob@192.0.2.1>\r\nExpires: 60\r\n", "Contact: <sip:bob@192.0.2.1>\r\nExpires: 60\r\n"),
			optionsMsgs(60_009, 1, 200, false), // 200 at 60.019 s: 1 ms before the expiry
			optionsMsgs(60_020, 2, 200, false), // at 60.02 s: expired
		), []checkpoint{
			{4, reg(1, map[string]float64{"sip_registrations_active": 1, "sip_exporter_registrations": 1})},
			{0, reg(1, nil)},
		}},
		{"Contact: * removes", nil, slices.Concat(
			registerMsgs(0, 1, "Contact: <sip:bob@192.0.2.1>;expires=3600\r\n", "Contact: <sip:bob@192.0.2.1>;expires=3600, <sip:bob@198.51.100.7>;expires=1800\r\n"),
			registerMsgs(1000, 2, "Contact: *\r\nExpires: 0\r\n", ""),
		), []checkpoint{
			{2, reg(1, map[string]float64{"sip_registrations_active": 1, "sip_exporter_registrations": 1})},
			{0, reg(2, nil)},
		}},
		{"options answered then unanswered, with peers", func(c *pipeline.Config) { c.Peers = peers }, slices.Concat(
			optionsMsgs(0, 1, 200, false),      // success at 0.01 s
			optionsMsgs(30_000, 2, 0, false),   // no answer: fails at 62 s (Timer F)
			optionsMsgs(40_000, 3, 503, false), // failure at 40.01 s
			optionsMsgs(65_000, 4, 200, true),  // the peer pings A: inbound
		), []checkpoint{
			{1, map[string]float64{ // an OPTIONS open at the end of the file fails then
				"sip_peer_options_last_failure_timestamp_seconds{direction=outbound,peer=callee}": unix(0),
				"sip_exporter_transactions_timed_out_total{kind=non_invite}":                      1,
			}},
			{2, map[string]float64{
				"sip_peer_options_last_success_timestamp_seconds{direction=outbound,peer=callee}": unix(10),
			}},
			{5, map[string]float64{
				"sip_peer_options_last_success_timestamp_seconds{direction=outbound,peer=callee}": unix(10),
				"sip_peer_options_last_failure_timestamp_seconds{direction=outbound,peer=callee}": unix(40_010),
				"sip_exporter_transactions_timed_out_total{kind=non_invite}":                      1,
			}},
			{0, map[string]float64{
				"sip_peer_options_last_success_timestamp_seconds{direction=outbound,peer=callee}": unix(10),
				"sip_peer_options_last_failure_timestamp_seconds{direction=outbound,peer=callee}": unix(62_000),
				"sip_peer_options_last_success_timestamp_seconds{direction=inbound,peer=callee}":  unix(65_010),
				"sip_exporter_transactions_timed_out_total{kind=non_invite}":                      1,
			}},
		}},
	}
	for _, tc := range tests {
		for _, cp := range tc.checks {
			n := cp.n
			if n == 0 {
				n = len(tc.msgs)
			}
			t.Run(fmt.Sprintf("%s/%d of %d messages", tc.name, n, len(tc.msgs)), func(t *testing.T) {
				cfg := defaultPipelineConfig()
				if tc.cfg != nil {
					tc.cfg(&cfg)
				}
				want := cp.want
				got := txValuesWith(t, cfg, writeScript(t, "noc-"+strings.ReplaceAll(tc.name, " ", "-")+"@example.com", tc.msgs[:n]))
				// With peers every series has peer and direction: compare
				// those of the keepalive families and the self-metrics only.
				for k, v := range want {
					if g, ok := got[k]; !ok || (g != v && fmt.Sprintf("%.6f", g) != fmt.Sprintf("%.6f", v)) {
						t.Errorf("%s = %v, want %v", k, got[k], v)
					}
				}
				for k, v := range got {
					if _, ok := want[k]; !ok && (cfg.Peers == nil || strings.HasPrefix(k, "sip_peer_options_")) {
						t.Errorf("unexpected %s = %v", k, v)
					}
				}
			})
		}
	}
}

// TestNocFlags: the new flags are checked at start-up, with the flag named.
func TestNocFlags(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--sip.session-max-age=0s", "--sip.session-max-age 0s: must be positive"},
		{"--sip.session-max-age=-1h", "--sip.session-max-age -1h0m0s: must be positive"},
		{"--sip.max-registrations=0", "--sip.max-registrations 0: must be at least 1"},
	} {
		var stdout, stderr strings.Builder
		if code := run([]string{"report", tc.arg, demoCapture}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.arg, code, stderr.String(), tc.want)
		}
	}
}

// TestObserveNocAllocs: scanning a REGISTER, its 2xx with Contact expiries
// and an OPTIONS 200 (To URI, Expires, Contact), making their
// transaction events and tracking them (registration refreshed, keepalive
// stamped) allocate nothing, with peers configured.
func TestObserveNocAllocs(t *testing.T) {
	peers, err := collector.NewPeers(collector.PeersConfig{Peers: []collector.PeerConfig{{Name: "callee", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.2/32")}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultPipelineConfig()
	cfg.DedupWindow = 0 // the same messages again and again
	cfg.Peers = peers
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	msgs := slices.Concat(
		registerMsgs(0, 1, "Contact: <sip:bob@192.0.2.1>;expires=3600\r\nExpires: 3600\r\n", "Contact: <sip:bob@192.0.2.1>;expires=3600, <sip:bob@198.51.100.7>;q=0.5;expires=60\r\n"),
		optionsMsgs(10, 1, 200, false))
	parsed := make([]sip.Message, len(msgs))
	for i, m := range msgs {
		if err := sip.Parse(m.bytes("c1@example.com"), &parsed[i]); err != nil {
			t.Fatal(err)
		}
	}
	a, b := netip.MustParseAddrPort("192.0.2.1:5060"), netip.MustParseAddrPort("192.0.2.2:5060")
	o := &decode.Origin{Time: 1}
	sn := p.SourceNode("")
	if n := testing.AllocsPerRun(1000, func() {
		for i := range parsed {
			o.Time++
			o.Src, o.Dst = a, b
			if msgs[i].fromB != (msgs[i].code != 0) {
				o.Src, o.Dst = b, a
			}
			p.Observe(sn, o, &parsed[i])
		}
	}); n != 0 {
		t.Errorf("observe: %v allocs per REGISTER, 200, OPTIONS, 200", n)
	}
}
