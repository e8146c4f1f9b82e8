//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The legs test: a SIPp UAC calls through Kamailio, a stateful proxy
// (testdata/kamailio/split-proxy.cfg), a SIPp UAS, all on lo.
const (
	legsCIDR    = "127.0.21.0/24"
	legsProxyIP = "127.0.21.1"
	legsUACIP   = "127.0.21.2" // peer carrier
	legsUASIP   = "127.0.21.3" // peer pbx
	legsCalls   = 8
	legsHold    = 5 * time.Second // how long SIPp holds each call (-d)
)

// legsPeers names both ends of the proxy, not the proxy: each leg has one
// configured end.
const legsPeers = `peers:
  - name: carrier
    cidrs: [127.0.21.2/32]
  - name: pbx
    cidrs: [127.0.21.3/32]
`

// TestLegsSIPp: a capture point that sees both sides of a proxy counts a
// session per leg. The real binary captures lo with a peers file naming
// the UAC (carrier) and the UAS (pbx); SIPp holds legsCalls calls through
// Kamailio, which keeps Call-ID and tags, so that each call is one dialog
// on two legs: carrier -> proxy (the carrier's INVITE: peer carrier,
// inbound) and proxy -> pbx (the proxy's INVITE to the pbx: peer pbx,
// outbound). Every expected figure comes from SIPp's -trace_counts, per
// side:
//
//   - while the calls are held, sip_sessions_active of carrier/inbound is
//     the 200 OKs of INVITE the UAC received, of pbx/outbound those the
//     UAS sent;
//   - after the BYEs, sip_sessions_active is 0 on both;
//     sip_sessions_ended_total{reason="bye"} and the count of
//     sip_session_duration_seconds are the BYEs the UAC sent (its leg) and
//     the BYEs the UAS received (its leg); sip_session_attempts_total the
//     INVITEs the UAC sent and those the UAS received.
//
// Before sessions were legs, the second leg's dialog was dropped as a copy
// of the first: pbx never had an active session or a duration. About 15 s,
// plus the build.
func TestLegsSIPp(t *testing.T) {
	requireLive(t, "sipp", "kamailio")
	start := time.Now()
	bin := buildExporter(t)
	_, subnet, err := net.ParseCIDR(legsCIDR)
	if err != nil {
		t.Fatal(err)
	}
	peers := filepath.Join(t.TempDir(), "peers.yml")
	if err := os.WriteFile(peers, []byte(legsPeers), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, bin,
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, subnet),
		"--config.file="+peers)
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	k := startSplitProxy(t, "", legsProxyIP, legsUASIP)
	for _, proto := range []string{"udp", "tcp"} {
		if err := waitListening(k.cmd.Process.Pid, proto, legsProxyIP, sippPort, k.exited, 10*time.Second); err != nil {
			t.Fatalf("kamailio: %v", err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	uas, err := startSIPp(ctx, "", filepath.Join(dir, "uas"), "noc_uas_call.xml", "u1", legsUASIP, legsCalls)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitListening(uas.cmd.Process.Pid, "udp", legsUASIP, sippPort, uas.exited, 5*time.Second); err != nil {
		t.Fatalf("UAS: %v%s", err, uas.details())
	}
	uac, err := startSIPp(ctx, "", filepath.Join(dir, "uac"), "noc_uac_call.xml", "u1", legsUACIP, legsCalls,
		"-d", strconv.Itoa(int(legsHold/time.Millisecond)), "-l", strconv.Itoa(legsCalls), "-r", strconv.Itoa(sippRate),
		net.JoinHostPort(legsProxyIP, strconv.Itoa(sippPort)))
	if err != nil {
		t.Fatal(err)
	}

	// While the calls are held: every call is up on both legs.
	var held map[string]float64
	deadline := time.Now().Add(legsHold - time.Second)
	for {
		_, mfs, err := e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		held = legsFigures(mfs)
		if held[legsKey("sip_sessions_active", "carrier", "inbound")]+held[legsKey("sip_sessions_active", "pbx", "outbound")] == 2*legsCalls ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := uac.wait(); err != nil {
		t.Fatalf("UAC: %v%s", err, uac.details())
	}
	if err := uas.wait(); err != nil {
		t.Fatalf("UAS: %v%s", err, uas.details())
	}
	uacCols, err := sippColumns(uac.dir)
	if err != nil {
		t.Fatal(err)
	}
	uasCols, err := sippColumns(uas.dir)
	if err != nil {
		t.Fatal(err)
	}
	// noc_uac_call.xml: 0 INVITE, 1 100, 2 200 (INVITE), 3 ACK, 4 pause,
	// 5 BYE, 6 200 (BYE); noc_uas_call.xml: 0 INVITE, 1 200 (INVITE),
	// 2 ACK, 3 BYE, 4 200 (BYE).
	wantHeld := map[string]float64{
		legsKey("sip_sessions_active", "carrier", "inbound"): uacCols["2_200_Recv"],
		legsKey("sip_sessions_active", "pbx", "outbound"):    uasCols["1_200_Sent"],
	}
	if uacCols["2_200_Recv"] != legsCalls || uasCols["1_200_Sent"] != legsCalls {
		t.Fatalf("SIPp: UAC received %v 200 OKs, UAS sent %v, want %d each: not every call went through the proxy",
			uacCols["2_200_Recv"], uasCols["1_200_Sent"], legsCalls)
	}
	if table, ok := compareFigures([]string{"SIPp", "exporter"}, []map[string]float64{wantHeld, pick(held, wantHeld)}); !ok {
		t.Errorf("calls up on each leg while held differ from SIPp's (first column):\n%s", table)
	} else {
		t.Logf("calls up on each leg while held equal SIPp's:\n%s", table)
	}

	e.settle(t, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // the tracker's queue drains within a few ms
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, side := range []struct {
		peer, direction   string
		invites, byes, up float64
	}{
		{"carrier", "inbound", uacCols["0_INVITE_Sent"], uacCols["5_BYE_Sent"], 0},
		{"pbx", "outbound", uasCols["0_INVITE_Recv"], uasCols["3_BYE_Recv"], 0},
	} {
		want[legsKey("sip_session_attempts_total", side.peer, side.direction)] = side.invites
		want[legsKey("sip_sessions_active", side.peer, side.direction)] = side.up
		want[legsKey(`sip_sessions_ended_total{reason="bye"}`, side.peer, side.direction)] = side.byes
		want[legsKey("sip_session_duration_seconds_count", side.peer, side.direction)] = side.byes
	}
	if table, ok := compareFigures([]string{"SIPp", "exporter"}, []map[string]float64{want, pick(legsFigures(mfs), want)}); !ok {
		t.Errorf("sessions per leg differ from SIPp's (first column):\n%s", table)
	} else {
		t.Logf("sessions per leg equal SIPp's:\n%s", table)
	}
	t.Logf("legs test took %s", time.Since(start).Round(time.Millisecond))
}

// legsKey names a figure of one peer and direction.
func legsKey(name, peer, direction string) string {
	return name + " " + peer + "/" + direction
}

// legsFigures reads the session families of an exposition per peer and
// direction, keyed by legsKey.
func legsFigures(mfs map[string]*dto.MetricFamily) map[string]float64 {
	f := map[string]float64{}
	for _, name := range []string{"sip_session_attempts_total", "sip_sessions_active", "sip_sessions_ended_total", "sip_session_duration_seconds"} {
		for _, m := range mfs[name].GetMetric() {
			key, v := name, 0.0
			switch {
			case m.GetHistogram() != nil:
				key, v = name+"_count", float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			default:
				v = m.GetCounter().GetValue()
			}
			if r := labelValue(m, "reason"); r != "" {
				key += `{reason="` + r + `"}`
			}
			f[legsKey(key, labelValue(m, "peer"), labelValue(m, "direction"))] += v
		}
	}
	return f
}

// pick returns the values of got under the keys of want (0 when absent).
func pick(got, want map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k := range want {
		out[k] = got[k]
	}
	return out
}

// sippColumns returns the last line of the -trace_counts file SIPp left
// in dir, by column name (N_NAME_Sent, N_NAME_Recv, ...).
func sippColumns(dir string) (map[string]float64, error) {
	file, header, last, err := sippCountsOf(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for i, h := range header {
		if i >= len(last) || !strings.Contains(h, "_") {
			continue
		}
		if v, err := strconv.ParseFloat(last[i], 64); err == nil {
			out[h] = v
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no counts", file)
	}
	return out, nil
}
