package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// peersCIDR holds every address of the peers test (its own block of lo,
// apart from the other live tests).
const peersCIDR = "127.0.3.0/24"

// The addresses of the peers test.
const (
	carrierIP  = "127.0.3.10" // UAC of pair 1: peer carrier-a
	pbxIP      = "127.0.3.20" // UAS of pair 1: peer pbx-b, then carrier-c
	pbx2IP     = "127.0.3.21" // UAS of pair 2: same peer as pbxIP (a /31)
	strangerIP = "127.0.3.30" // UAC of pair 2: no peer
	flowIP     = "127.0.3.31" // UAC of the flow across the reload: no peer
)

// Configurations of the peers test: before the reload, after it, broken.
const (
	peersConfigA = `peers:
  - name: carrier-a
    cidrs: [127.0.3.10/32]
  - name: pbx-b
    cidrs: [127.0.3.20/31]
    ports: ["5060-5069"]
`
	peersConfigB = `peers:
  - name: carrier-a
    cidrs: [127.0.3.10/32]
  - name: pbx-b
    cidrs: [127.0.3.40/32]
  - name: carrier-c
    cidrs: [127.0.3.20/31]
`
	peersConfigBroken = `peers:
  - name: carrier-a
    cidrs: [127.0.3.10/32]
  - name: carrier-d
    cidrs: [127.0.3.20/31]
    ports: ["5069-5060"]
`
)

// TestLivePeers runs the real binary on lo with --config.file naming two
// peers, while SIPp plays two pairs: pair 1 from carrier-a (UAC) to pbx-b
// (UAS), both ends configured, so each message counts once, inbound to its
// sender; pair 2 from an address of no peer (UAC) to pbx-b (UAS), so the
// requests count outbound to pbx-b and the responses inbound from it. The
// per-peer, per-direction counter deltas must equal what each SIPp sent.
// Then the file is rewritten so that pbx-b's addresses belong to carrier-c
// and reloaded with POST /-/reload while an OPTIONS flow to pbx-b runs: its
// messages count under pbx-b up to the reload and under carrier-c after,
// none lost; the same two pairs then land exactly on carrier-c.
// Then a broken file is written and SIGHUP sent: the reload fails
// (sip_exporter_config_last_reload_successful 0) and the traffic still
// lands on carrier-c.
func TestLivePeers(t *testing.T) {
	requireLive(t, "sipp", "promtool")
	start := time.Now()
	_, ipnet, err := net.ParseCIDR(peersCIDR)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "peers.yml")
	writeConfig := func(s string) {
		t.Helper()
		if err := os.WriteFile(config, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(peersConfigA)
	e := startExporter(t, buildExporter(t),
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, ipnet),
		"--config.file="+config,
		"--web.enable-lifecycle",
		"--collector.response-phrases")
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	reloadURL := strings.TrimSuffix(e.metrics, "/metrics") + "/-/reload"

	var exposition []byte
	// phase runs both pairs and checks the deltas per label set: pbx is the
	// peer name of pbxIP and pbx2IP, idle a configured peer that must not
	// move.
	phase := func(t *testing.T, pbx, idle string) {
		_, before := e.settleSets(t, 5*time.Second)
		dir := t.TempDir()
		var (
			wg                     sync.WaitGroup
			uas1, uac1, uas2, uac2 sipCounts
			err1, err2             error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			uas1, uac1, err1 = runSIPpSides(filepath.Join(dir, "1"), sippMix[2], "u1", pbxIP, carrierIP, sippCalls) // INVITE 486 "User Busy"
		}()
		go func() {
			defer wg.Done()
			uas2, uac2, err2 = runSIPpSides(filepath.Join(dir, "2"), sippMix[0], "u1", pbx2IP, strangerIP, sippCalls) // INVITE 200, BYE
		}()
		wg.Wait()
		if err1 != nil || err2 != nil {
			t.Fatalf("sipp: %v %v", err1, err2)
		}
		raw, after := e.settleSets(t, 5*time.Second)
		exposition = raw
		pbxIn := newSIPCounts()
		pbxIn.add(uas1)
		pbxIn.add(uas2)
		for _, c := range []struct {
			peer, direction string
			want            sipCounts
		}{
			{"carrier-a", "inbound", uac1},
			{"carrier-a", "outbound", newSIPCounts()},
			{pbx, "inbound", pbxIn},
			{pbx, "outbound", uac2},
			{idle, "inbound", newSIPCounts()},
			{idle, "outbound", newSIPCounts()},
			{"other", "unknown", newSIPCounts()},
		} {
			key := labelSet{node: "", peer: c.peer, direction: c.direction}
			got := after.sets[key].sub(before.sets[key])
			if table, ok := compareCounts(c.want, got); !ok {
				t.Errorf("peer %q direction %q: counts differ from what SIPp sent (want = SIPp sent+retransmitted, got = counter delta):\n%s", c.peer, c.direction, table)
			} else {
				t.Logf("peer %q direction %q: counts equal what SIPp sent:\n%s", c.peer, c.direction, table)
			}
		}
		// The wire phrase of the 486, under the node only.
		busy := uas1.responses[responseKey{code: "486", method: "INVITE"}]
		if got := after.phrases[`486 User Busy`] - before.phrases[`486 User Busy`]; got != busy || busy == 0 {
			t.Errorf(`sip_response_phrases_total{code="486",phrase="User Busy"} grew by %d, want %d`, got, busy)
		}
	}
	reloadOK := func(t *testing.T, want float64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, mfs, err := e.scrape()
			if err != nil {
				t.Fatal(err)
			}
			v, ok := gaugeValue(mfs, "sip_exporter_config_last_reload_successful", nil)
			if ok && v == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sip_exporter_config_last_reload_successful = %v (present %v), want %v", v, ok, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	t.Run("config", func(t *testing.T) {
		reloadOK(t, 1)
		phase(t, "pbx-b", "carrier-c")
	})
	t.Run("reload", func(t *testing.T) {
		// OPTIONS to pbx2IP flow while the file is reloaded: what was seen
		// before counts under pbx-b, what came after under carrier-c.
		_, before := e.settleSets(t, 5*time.Second)
		var uas, uac sipCounts
		errc := make(chan error, 1)
		go func() {
			var err error
			uas, uac, err = runSIPpSides(filepath.Join(t.TempDir(), "flow"), sippMix[6], "u1", pbx2IP, flowIP, 2*sippRate)
			errc <- err
		}()
		time.Sleep(time.Second)
		writeConfig(peersConfigB)
		if code, body := post(t, reloadURL); code != http.StatusOK {
			t.Fatalf("POST /-/reload: %d %s", code, body)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		_, after := e.settleSets(t, 5*time.Second)
		delta := func(peer, direction string) sipCounts {
			k := labelSet{peer: peer, direction: direction}
			return after.sets[k].sub(before.sets[k])
		}
		options, ok200 := uac.requests["OPTIONS"], uas.responses[responseKey{code: "200", method: "OPTIONS"}]
		oldReq, newReq := delta("pbx-b", "outbound").requests["OPTIONS"], delta("carrier-c", "outbound").requests["OPTIONS"]
		oldResp := delta("pbx-b", "inbound").responses[responseKey{code: "200", method: "OPTIONS"}]
		newResp := delta("carrier-c", "inbound").responses[responseKey{code: "200", method: "OPTIONS"}]
		t.Logf("OPTIONS across the reload: %d sent, %d counted under pbx-b, %d under carrier-c; 200 OK: %d sent, %d under pbx-b, %d under carrier-c",
			options, oldReq, newReq, ok200, oldResp, newResp)
		if oldReq+newReq != options || oldResp+newResp != ok200 {
			t.Errorf("OPTIONS across the reload: pbx-b + carrier-c = %d requests and %d responses, want %d and %d", oldReq+newReq, oldResp+newResp, options, ok200)
		}
		if oldReq == 0 || newReq == 0 {
			t.Errorf("OPTIONS across the reload: %d under pbx-b, %d under carrier-c: want some on each side of the reload", oldReq, newReq)
		}
		for _, k := range []labelSet{{peer: "carrier-a", direction: "inbound"}, {peer: "carrier-a", direction: "outbound"}, {peer: "other", direction: "unknown"}} {
			if d := after.sets[k].sub(before.sets[k]); len(d.requests)+len(d.responses) > 0 {
				t.Errorf("%v moved during the OPTIONS flow: %+v", k, d)
			}
		}
		reloadOK(t, 1)
		phase(t, "carrier-c", "pbx-b")
	})
	t.Run("broken", func(t *testing.T) {
		writeConfig(peersConfigBroken)
		if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		reloadOK(t, 0)
		want := fmt.Sprintf("failed to reload config: config file %q: line 6: peer \"carrier-d\": bad port range \"5069-5060\": first port above last\n", config)
		if code, body := post(t, reloadURL); code != http.StatusInternalServerError || body != want {
			t.Errorf("POST /-/reload of a broken file: %d %q, want 500 %q", code, body, want)
		}
		phase(t, "carrier-c", "pbx-b")
	})
	if exposition != nil {
		checkPromtool(t, exposition)
	}
	t.Logf("peers test took %s", time.Since(start).Round(time.Millisecond))
}

// post sends an empty POST and returns the status code and body.
func post(t *testing.T, url string) (int, string) {
	t.Helper()
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// labelSet is the (node, peer, direction) label values of a series.
type labelSet struct{ node, peer, direction string }

// setCounts are the SIP counts per label set, and the phrase counts by
// "CODE PHRASE".
type setCounts struct {
	sets    map[labelSet]sipCounts
	phrases map[string]int64
}

func (c setCounts) equal(o setCounts) bool {
	if len(c.sets) != len(o.sets) || len(c.phrases) != len(o.phrases) {
		return false
	}
	for k, v := range c.sets {
		w, ok := o.sets[k]
		if !ok || !v.equal(w) {
			return false
		}
	}
	for k, v := range c.phrases {
		if o.phrases[k] != v {
			return false
		}
	}
	return true
}

// setCountsOf reads sip_responses_total, sip_requests_total and
// sip_response_phrases_total by label set.
func setCountsOf(mfs map[string]*dto.MetricFamily) setCounts {
	c := setCounts{sets: map[labelSet]sipCounts{}, phrases: map[string]int64{}}
	set := func(m *dto.Metric) sipCounts {
		k := labelSet{labelValue(m, "node"), labelValue(m, "peer"), labelValue(m, "direction")}
		s, ok := c.sets[k]
		if !ok {
			s = newSIPCounts()
			c.sets[k] = s
		}
		return s
	}
	for _, m := range mfs["sip_responses_total"].GetMetric() {
		k := responseKey{code: labelValue(m, "code"), method: labelValue(m, "method")}
		set(m).responses[k] += int64(m.GetCounter().GetValue())
	}
	for _, m := range mfs["sip_requests_total"].GetMetric() {
		set(m).requests[labelValue(m, "method")] += int64(m.GetCounter().GetValue())
	}
	for _, m := range mfs["sip_response_phrases_total"].GetMetric() {
		c.phrases[labelValue(m, "code")+" "+labelValue(m, "phrase")] += int64(m.GetCounter().GetValue())
	}
	return c
}

// settleSets is settle by label set.
func (e *exporterProcess) settleSets(t *testing.T, timeout time.Duration) ([]byte, setCounts) {
	t.Helper()
	return settleBy(t, e, timeout, setCountsOf, setCounts.equal)
}

// runSIPpSides is runSIPpPair returning what each side sent: the UAS and
// the UAC apart.
func runSIPpSides(dir string, p sippPair, transport, uasIP, uacIP string, calls int) (uasSent, uacSent sipCounts, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uas, err := startSIPp(ctx, "", filepath.Join(dir, "uas"), p.uas, transport, uasIP, calls, p.uasArgs...)
	if err != nil {
		return uasSent, uacSent, err
	}
	proto := "udp"
	if transport[0] == 't' {
		proto = "tcp"
	}
	if err := waitListening(uas.cmd.Process.Pid, proto, uasIP, sippPort, uas.exited, 5*time.Second); err != nil {
		cancel()
		uas.wait()
		return uasSent, uacSent, fmt.Errorf("UAS: %w%s", err, uas.details())
	}
	uac, err := startSIPp(ctx, "", filepath.Join(dir, "uac"), p.uac, transport, uacIP, calls,
		"-r", strconv.Itoa(sippRate), net.JoinHostPort(uasIP, strconv.Itoa(sippPort)))
	if err != nil {
		cancel()
		uas.wait()
		return uasSent, uacSent, err
	}
	if err := uac.wait(); err != nil {
		cancel()
		uas.wait()
		return uasSent, uacSent, fmt.Errorf("UAC %s: %w%s", p.uac, err, uac.details())
	}
	if err := uas.wait(); err != nil {
		return uasSent, uacSent, fmt.Errorf("UAS %s: %w%s", p.uas, err, uas.details())
	}
	if uasSent, err = sippSent(uas.scenario, uas.dir); err != nil {
		return uasSent, uacSent, err
	}
	uacSent, err = sippSent(uac.scenario, uac.dir)
	return uasSent, uacSent, err
}
