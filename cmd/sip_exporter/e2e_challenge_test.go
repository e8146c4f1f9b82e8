//go:build linux

package main

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The challenge test's SIPp pairs use 127.0.19.0/24: UAS on .10+2i, UAC
// on the next address.
const (
	challengeCIDR  = "127.0.19.0/24"
	challengeNode  = "e2e-challenge" // --capture.node-name
	challengeCalls = 10              // calls (registrations) per pair
)

// challengeMix is the traffic of TestChallengesSIPp: every INVITE is
// challenged with 407 and re-sent with credentials, every REGISTER with
// 401; one registrar then refuses with 403.
var challengeMix = []sippPair{
	{name: "invite-200", uas: "uas_invite_auth.xml", uac: "uac_invite_auth.xml", uasArgs: []string{"-set", "code", "200"}},
	{name: "invite-486", uas: "uas_invite_auth.xml", uac: "uac_invite_auth.xml", uasArgs: []string{"-set", "code", "486"}},
	{name: "invite-603", uas: "uas_invite_auth.xml", uac: "uac_invite_auth.xml", uasArgs: []string{"-set", "code", "603"}},
	{name: "register-200", uas: "uas_register.xml", uac: "uac_register.xml"},
	{name: "register-403", uas: "uas_register_refuse.xml", uac: "uac_register_refused.xml"},
}

// TestChallengesSIPp runs the real binary on lo and a real Prometheus
// scraping it every second with the recording rules of
// deploy/prometheus/rules, while SIPp plays a carrier that challenges every
// INVITE (407 Proxy Authentication Required) and registrars that challenge
// every REGISTER (401 Unauthorized), the UACs re-sending each with
// credentials ([authentication]: same Call-ID and From tag, CSeq + 1, a new
// branch). A challenged request and its re-send are one attempt (RFC 6076
// §4.1, §4.3). Every expected figure comes from SIPp's -trace_counts: the
// UACs' first <send> of INVITE or REGISTER (the challenged request, not its
// re-send: the calls and registrations), the UASs' responses (first
// transmissions; lo loses nothing):
//
//   - sip_session_attempts_total: the calls;
//     sip_session_outcomes_total{code}: the final responses to the re-sent
//     INVITEs; sip_session_challenges_total{code="407"}: the 407s; no
//     timeout; the SRD count of outcome success: the 180s (every call
//     rings); the duration count: the 200s to BYE;
//   - sip_registration_attempts_total: the registrations;
//     sip_registration_challenges_total{code="401"}: the 401s;
//     sip_registration_request_delay_seconds_count: the 200s (success) and
//     the 403s (failure), none of outcome challenge;
//   - the recording rules node_peer:sip_session_ser:ratio5m and
//     node_peer:sip_session_asr:ratio5m: the 200s over the calls, and
//     node_peer:sip_registration_ira:ratio5m: the 403s over the
//     registrations, as SIPp's counts give them.
//
// Before the fix every challenged request was an attempt of its own with
// outcome 401 or 407: attempts were twice the calls and SER, ASR and IRA
// half of SIPp's. About 15 s, plus the build.
func TestChallengesSIPp(t *testing.T) {
	requireLive(t, "sipp", "prometheus")
	start := time.Now()
	bin := buildExporter(t)
	_, subnet, err := net.ParseCIDR(challengeCIDR)
	if err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, bin,
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, subnet),
		"--capture.node-name="+challengeNode)
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	exporterURL, err := url.Parse(e.metrics)
	if err != nil {
		t.Fatal(err)
	}
	p := startPrometheus(t, exporterURL.Host)

	// One OPTIONS first: the tracker makes the node's series, at 0, with
	// its first message, so that every series of the ratios has a first
	// sample of 0 in the same scrape and rate() extrapolates them alike.
	if _, err := runSIPpPair(filepath.Join(t.TempDir(), "options"), sippPair{name: "options", uas: "uas_options.xml", uac: "uac_options.xml"},
		"u1", "127.0.19.100", "127.0.19.101", 1); err != nil {
		t.Fatal(err)
	}
	zero := fmt.Sprintf(`sip_session_attempts_total{node=%q} == 0 and on () count(sip_registration_attempts_total{node=%q} == 0) > 0`, challengeNode, challengeNode)
	if err := p.waitFor(zero, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a second scrape of the zeros

	tallies := make([]challengeTally, len(challengeMix))
	dir := t.TempDir()
	runEach(t, len(challengeMix), func(i int) error {
		pair := challengeMix[i]
		uasIP, uacIP := fmt.Sprintf("127.0.19.%d", 10+2*i), fmt.Sprintf("127.0.19.%d", 11+2*i)
		tl, err := runChallengePair(filepath.Join(dir, pair.name), pair, uasIP, uacIP)
		if err != nil {
			return fmt.Errorf("%s: %w", pair.name, err)
		}
		tallies[i] = tl
		return nil
	})
	want := map[string]float64{}
	var calls, answered, registrations, refused float64
	for i, tl := range tallies {
		for k, v := range tl.figures(challengeMix[i]) {
			want[k] += v
		}
		if strings.HasPrefix(challengeMix[i].name, "invite-") {
			calls += tl.first["INVITE"]
			answered += tl.sent("INVITE", "200")
		} else {
			registrations += tl.first["REGISTER"]
			refused += tl.sent("REGISTER", "403")
		}
	}
	if calls == 0 || answered == 0 || registrations == 0 || refused == 0 {
		t.Fatalf("SIPp counts: %v calls, %v answered, %v registrations, %v refused: the mix did not run", calls, answered, registrations, refused)
	}
	e.settle(t, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // the tracker's queue drains within a few ms
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	got := challengeFigures(mfs)
	if table, ok := compareFigures([]string{"SIPp", "exporter"}, []map[string]float64{want, got}); !ok {
		t.Errorf("figures differ from SIPp's (first column):\n%s", table)
	} else {
		t.Logf("figures equal SIPp's:\n%s", table)
	}

	// The recording rules, once Prometheus has scraped the settled
	// counters and evaluated the rules on them.
	time.Sleep(3500 * time.Millisecond)
	at := time.Now()
	for _, c := range []struct {
		rule string
		want float64
	}{
		{"node_peer:sip_session_ser:ratio5m", answered / calls},             // 200 / (attempts - 3xx)
		{"node_peer:sip_session_asr:ratio5m", answered / calls},             // 2xx / attempts
		{"node_peer:sip_registration_ira:ratio5m", refused / registrations}, // (timeouts + failures) / attempts
	} {
		s, err := p.query(fmt.Sprintf(`%s{node=%q}`, c.rule, challengeNode), at)
		if err != nil {
			t.Errorf("%s: %v", c.rule, err)
			continue
		}
		if len(s) != 1 {
			t.Errorf("%s: %d samples, want 1", c.rule, len(s))
			continue
		}
		if g := s[0].value(); g < c.want-1e-9 || g > c.want+1e-9 {
			t.Errorf("%s = %.12g, want %.12g (SIPp)", c.rule, g, c.want)
		} else {
			t.Logf("%s = %.6g as SIPp's counts give it", c.rule, g)
		}
	}
	t.Logf("challenge test took %s", time.Since(start).Round(time.Millisecond))
}

// challengeTally is what the two SIPp of a pair counted: the UAS's first
// transmissions and receptions, and the UAC's first <send> of each request
// method (the attempts: the challenged request, not its re-send).
type challengeTally struct {
	uas   sippTally
	first map[string]float64
}

// sent returns the first transmissions of the UAS's responses code to
// method.
func (tl challengeTally) sent(method, code string) float64 {
	return float64(tl.uas.sent[sippMessage{method: method, code: code}])
}

// figures returns the exporter's figures that pair's traffic makes; see
// TestChallengesSIPp.
func (tl challengeTally) figures(pair sippPair) map[string]float64 {
	f := map[string]float64{}
	sent := tl.sent
	if strings.HasPrefix(pair.name, "invite-") {
		f[figAttempts] = tl.first["INVITE"]
		f[figTimeouts] = 0
		f[`sip_session_challenges_total{code="407"}`] = sent("INVITE", "407")
		f[`sip_session_challenges_total{code="401"}`] = 0
		for _, code := range []string{"200", "486", "603"} {
			if n := sent("INVITE", code); n > 0 {
				f[figOutcome(code)] = n
			}
		}
		// Every call rings before its final response.
		f[figSRD("success")] = sent("INVITE", "180")
		f[figDuration] = sent("BYE", "200")
		return f
	}
	f["sip_registration_attempts_total"] = tl.first["REGISTER"]
	f["sip_registration_timeouts_total"] = 0
	f[`sip_registration_challenges_total{code="401"}`] = sent("REGISTER", "401")
	f[`sip_registration_challenges_total{code="407"}`] = 0
	f[`sip_registration_request_delay_seconds_count{outcome="success"}`] = sent("REGISTER", "200")
	f[`sip_registration_request_delay_seconds_count{outcome="failure"}`] = sent("REGISTER", "403")
	f[`sip_registration_request_delay_seconds_count{outcome="challenge"}`] = 0
	return f
}

// challengeFigures reads the figures of TestChallengesSIPp from an
// exposition, summed over its label sets: those of sessionFigures, and
// the challenge and registration families.
func challengeFigures(mfs map[string]*dto.MetricFamily) map[string]float64 {
	f := sessionFigures(mfs)
	delete(f, figSRD("failure")) // no INVITE here fails before ringing
	add := func(k string, v float64) { f[k] += v }
	for _, name := range []string{"sip_session_challenges_total", "sip_registration_challenges_total"} {
		for _, m := range mfs[name].GetMetric() {
			add(name+`{code="`+labelValue(m, "code")+`"}`, m.GetCounter().GetValue())
		}
	}
	for _, name := range []string{"sip_registration_attempts_total", "sip_registration_timeouts_total"} {
		for _, m := range mfs[name].GetMetric() {
			add(name, m.GetCounter().GetValue())
		}
	}
	for _, m := range mfs["sip_registration_request_delay_seconds"].GetMetric() {
		add(`sip_registration_request_delay_seconds_count{outcome="`+labelValue(m, "outcome")+`"}`, float64(m.GetHistogram().GetSampleCount()))
	}
	return f
}

// runChallengePair runs pair (runSIPpPair: over UDP, uasIP and uacIP,
// challengeCalls calls) and returns what its two SIPp counted.
func runChallengePair(dir string, pair sippPair, uasIP, uacIP string) (challengeTally, error) {
	var tl challengeTally
	if _, err := runSIPpPair(dir, pair, "u1", uasIP, uacIP, challengeCalls); err != nil {
		return tl, err
	}
	uas, err := filepath.Abs(filepath.Join(sippDir, pair.uas))
	if err != nil {
		return tl, err
	}
	if tl.uas, err = sippTallyOf(uas, filepath.Join(dir, "uas")); err != nil {
		return tl, err
	}
	if tl.first, err = sippFirstSent(filepath.Join(dir, "uac")); err != nil {
		return tl, err
	}
	return tl, nil
}

// sippFirstSent returns, per request method, the first transmissions of
// the first <send> of that method in the -trace_counts file SIPp left in
// dir (columns N_METHOD_Sent, in scenario order).
func sippFirstSent(dir string) (map[string]float64, error) {
	file, header, last, err := sippCountsOf(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for i, h := range header {
		prefix, ok := strings.CutSuffix(h, "_Sent")
		if !ok {
			continue
		}
		_, method, _ := strings.Cut(prefix, "_")
		if _, seen := out[method]; seen || i >= len(last) {
			continue
		}
		v, err := strconv.ParseFloat(last[i], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: column %s: %w", file, h, err)
		}
		out[method] = v
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no _Sent column", file)
	}
	return out, nil
}
