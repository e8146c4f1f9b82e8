//go:build linux

package main

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The STIR/SHAKEN test's SIPp pairs use 127.0.31.0/24: UACs of peer
// carrier-a on .10+i, of carrier-b on .40+i, UASs (no peer) on .100+i.
const (
	stirCIDR   = "127.0.31.0/24"
	stirNode   = "e2e-stir" // --capture.node-name
	stirCalls  = 5          // calls per pair
	stirConfig = `peers:
  - name: carrier-a
    cidrs: [127.0.31.0/27]
  - name: carrier-b
    cidrs: [127.0.31.32/27]
`
)

// The PASSporT of RFC 8588 §6: its protected header and its payload with
// the attest claim as %s; a made-up ES256 signature (never verified) and
// the Identity parameters of RFC 8224 §4.
const (
	stirHeader    = `{"alg":"ES256","typ":"passport","ppt":"shaken","x5u":"https://cert.example.org/passport.cer"}`
	stirPayload   = `{%s"dest":{"tn":["12155550131"]},"iat":1443208345,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"}`
	stirSignature = "MEUCIQCEFJXkDV1h9tGSwVfFmvM7HzEVVaVTpOSqwC2fTMThZAIgSBLaoSpV-vkv9TWSUEbKw1fOGMYrT1ArLsjLpHuDHgQ"
	stirParams    = ";info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken"
)

// passport returns an Identity header line (name given) whose PASSporT
// payload is the RFC 8588 example with the claims claims (`"attest":"A",`
// or none) in front, base64url encoded unless payload64 is given.
func passport(name, claims, payload64 string) string {
	enc := base64.RawURLEncoding.EncodeToString
	if payload64 == "" {
		payload64 = enc(fmt.Appendf(nil, stirPayload, claims))
	}
	return name + ": " + enc([]byte(stirHeader)) + "." + payload64 + "." + stirSignature + stirParams
}

// stirPair is one SIPp pair of the test: its UAC sends INVITEs with the
// header lines identity and pai and the From user part fromuser (see
// testdata/sipp/uac_invite_stir.xml); attest and verstat are the labels
// they must count under, derived by hand from those headers (RFC 8588 §4,
// ATIS-1000074 §5.3.1), peer the UAC's peer.
type stirPair struct {
	name, peer, attest, verstat string
	identity, pai, fromuser     string
}

const (
	noIdentity = "X-No-Identity: 1"
	noPAI      = "X-No-PAI: 1"
	caller     = "+12155550121"
)

var stirMix = []stirPair{
	{name: "a-passed", peer: "carrier-a", attest: "A", verstat: "TN-Validation-Passed",
		identity: passport("Identity", `"attest":"A",`, ""), pai: "P-Asserted-Identity: <sip:" + caller + ";verstat=TN-Validation-Passed@atlanta.example.com;user=phone>", fromuser: caller},
	{name: "b-failed", peer: "carrier-a", attest: "B", verstat: "TN-Validation-Failed",
		identity: passport("Identity", `"attest":"B",`, ""), pai: "P-Asserted-Identity: \"Alice\" <tel:" + caller + ";verstat=TN-Validation-Failed>", fromuser: caller},
	{name: "unsigned", peer: "carrier-a", attest: "none", verstat: "none",
		identity: noIdentity, pai: noPAI, fromuser: caller},
	{name: "huge", peer: "carrier-a", attest: "invalid", verstat: "none", // a payload over 4096 characters
		identity: passport("Identity", `"attest":"A","pad":"`+strings.Repeat("x", 4000)+`",`, ""), pai: "P-Asserted-Identity: <tel:" + caller + ">", fromuser: caller},
	{name: "c-compact-from", peer: "carrier-b", attest: "C", verstat: "No-TN-Validation", // the compact header name y (RFC 8224 §4.1); verstat on From
		identity: passport("y", `"attest":"C",`, ""), pai: noPAI, fromuser: caller + ";verstat=No-TN-Validation"},
	{name: "not-json", peer: "carrier-b", attest: "invalid", verstat: "other",
		identity: passport("Identity", "", base64.RawURLEncoding.EncodeToString([]byte("attest=A"))), pai: "P-Asserted-Identity: <tel:" + caller + ";verstat=Vendor-Special>", fromuser: caller},
	{name: "not-base64url", peer: "carrier-b", attest: "invalid", verstat: "none",
		identity: passport("Identity", "", "eyJhdHRlc3QiOiJBIn0+/"), pai: noPAI, fromuser: caller},
	{name: "no-attest", peer: "carrier-b", attest: "invalid", verstat: "TN-Validation-Passed",
		identity: passport("Identity", "", ""), pai: "P-Asserted-Identity: <tel:" + caller + ";verstat=TN-Validation-Passed>", fromuser: caller},
}

// TestSTIRSIPp runs the real binary on lo with two peers configured while
// SIPp UACs send INVITEs carrying real-format STIR/SHAKEN headers (RFC
// 8224 Identity with the RFC 8588 PASSporT, A, B and C, the compact name
// "y", malformed ones: not JSON, not base64url, no attest, over the size
// bound; verstat on the P-Asserted-Identity or the From URI, ATIS-1000074)
// to UASs that ignore txLost % of the INVITEs they receive, so that the
// UACs retransmit them. sip_stir_attestations_total and
// sip_stir_verifications_total must grow, per peer and direction, by the
// INVITEs each UAC first sent (SIPp's -trace_counts, the _Sent column of
// its INVITE; retransmissions, its _Retrans column, not counted) under
// the labels the pair's headers carry.
func TestSTIRSIPp(t *testing.T) {
	requireLive(t, "sipp", "promtool")
	start := time.Now()
	_, subnet, err := net.ParseCIDR(stirCIDR)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "peers.yml")
	if err := os.WriteFile(config, []byte(stirConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, buildExporter(t),
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, subnet),
		"--capture.node-name="+stirNode,
		"--config.file="+config)
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	_, before := settleBy(t, e, 5*time.Second, stirFigures, maps.Equal)

	dir := t.TempDir()
	sent := make([]float64, len(stirMix))
	retrans := make([]float64, len(stirMix))
	runEach(t, len(stirMix), func(i int) error {
		p := stirMix[i]
		uac := fmt.Sprintf("127.0.31.%d", 10+i)
		if p.peer == "carrier-b" {
			uac = fmt.Sprintf("127.0.31.%d", 40+i)
		}
		var err error
		sent[i], retrans[i], err = runSTIRPair(filepath.Join(dir, p.name), p, fmt.Sprintf("127.0.31.%d", 100+i), uac)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		return nil
	})
	raw, after := settleBy(t, e, 10*time.Second, stirFigures, maps.Equal)

	want := map[string]float64{}
	var invites, resent float64
	for i, p := range stirMix {
		want[stirKey("sip_stir_attestations_total", p.peer, "inbound", p.attest)] += sent[i]
		want[stirKey("sip_stir_verifications_total", p.peer, "inbound", p.verstat)] += sent[i]
		want[stirKey("sip_session_attempts_total", p.peer, "inbound", "")] += sent[i]
		invites += sent[i]
		resent += retrans[i]
	}
	got := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			got[k] = d
		}
	}
	var table strings.Builder
	ok := true
	for _, k := range sortedUnion(maps.Keys(want), maps.Keys(got)) {
		mark := ""
		if got[k] != want[k] {
			mark, ok = "  <- differs", false
		}
		fmt.Fprintf(&table, "%-100s want %4g got %4g%s\n", k, want[k], got[k], mark)
	}
	if !ok {
		t.Errorf("exporter deltas differ from what SIPp sent (want: the UACs' first INVITEs, by the labels of their headers):\n%s", table.String())
	} else {
		t.Logf("exporter deltas equal what SIPp sent:\n%s", table.String())
	}
	if invites != float64(stirCalls*len(stirMix)) {
		t.Errorf("SIPp sent %g INVITEs, want %d calls", invites, stirCalls*len(stirMix))
	}
	t.Logf("SIPp retransmitted %g INVITEs (not counted again)", resent)
	checkPromtool(t, raw)
	t.Logf("STIR/SHAKEN test took %s", time.Since(start).Round(time.Millisecond))
}

// stirKey names one series of the figures: family{peer,direction,value}.
func stirKey(family, peer, direction, value string) string {
	return fmt.Sprintf("%s{peer=%s,direction=%s,value=%s}", family, peer, direction, value)
}

// stirFigures reads the test's families from an exposition: every series
// of node stirNode by peer, direction and its attest or verstat label,
// and the session attempts.
func stirFigures(mfs map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, c := range []struct{ family, label string }{
		{"sip_stir_attestations_total", "attest"},
		{"sip_stir_verifications_total", "verstat"},
		{"sip_session_attempts_total", ""},
	} {
		for _, m := range mfs[c.family].GetMetric() {
			if labelValue(m, "node") != stirNode {
				continue
			}
			out[stirKey(c.family, labelValue(m, "peer"), labelValue(m, "direction"), labelValue(m, c.label))] += m.GetCounter().GetValue()
		}
	}
	return out
}

// runSTIRPair runs pair p over UDP with runSIPpPair: its UAS
// (uas_invite.xml answering 486, ignoring txLost % of the INVITEs and
// ACKs: lossyScenario) on uasIP, its UAC (uac_invite_stir.xml with the
// pair's headers, waiting 8 s at the end to ACK a repeated 486 again) on
// uacIP. It returns the INVITEs the UAC sent first and retransmitted, from
// its -trace_counts, once its -trace_msg log shows the pair's headers on
// the wire.
func runSTIRPair(dir string, p stirPair, uasIP, uacIP string) (sent, retrans float64, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	uas, err := lossyScenario(dir, "uas_invite.xml", uasLossRE)
	if err != nil {
		return 0, 0, err
	}
	uac, err := lossyScenario(dir, "uac_invite_stir.xml", nil)
	if err != nil {
		return 0, 0, err
	}
	pair := sippPair{name: p.name, uas: uas, uac: uac, uasArgs: []string{"-set", "code", "486"},
		uacArgs: []string{"-set", "identity", p.identity, "-set", "pai", p.pai, "-set", "fromuser", p.fromuser, "-trace_msg"}}
	if _, err := runSIPpPair(dir, pair, "u1", uasIP, uacIP, stirCalls); err != nil {
		return 0, 0, err
	}
	uacDir := filepath.Join(dir, "uac")
	logFile, log, err := sippFile(uacDir, "_messages.log")
	if err != nil {
		return 0, 0, err
	}
	for _, h := range []string{p.identity, p.pai, "From: sipp <sip:" + p.fromuser + "@"} {
		if !strings.Contains(string(log), h) {
			return 0, 0, fmt.Errorf("%s: no INVITE carries %q", logFile, h)
		}
	}
	file, header, last, err := sippCountsOf(uacDir)
	if err != nil {
		return 0, 0, err
	}
	read := func(suffix string) (float64, error) {
		i := slices.IndexFunc(header, func(h string) bool { return strings.HasSuffix(h, "_INVITE"+suffix) })
		if i < 0 || i >= len(last) {
			return 0, fmt.Errorf("%s: no INVITE%s column", file, suffix)
		}
		return strconv.ParseFloat(last[i], 64)
	}
	if sent, err = read("_Sent"); err != nil {
		return 0, 0, err
	}
	if retrans, err = read("_Retrans"); err != nil {
		return 0, 0, err
	}
	return sent, retrans, nil
}
