package main

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var update = flag.Bool("update", false, "rewrite golden files and the demo capture")

// demoCapture is the bundled capture the README's demo command replays.
const demoCapture = "../../deploy/demo/sip-demo.pcap"

// demoWriter builds the demo capture: SIP dialogs between a few user
// agents and two proxies over UDP and TCP, with a known mix of outcomes.
type demoWriter struct {
	w    *pcapgo.Writer
	t    time.Time
	rng  *rand.Rand
	seqs map[string]uint32 // next TCP sequence number per flow direction
	n    int
	// want counts the responses written per "code method".
	want map[string]int
	// tx is what the transactions written are, for TestDemoTransactions.
	tx demoTx
}

// demoTx describes the transactions the generator wrote, from its own
// scenario and the timestamps it gave the packets; it never looks at what
// the exporter makes of them. Every initial INVITE gets exactly one final
// response, every request is sent once and every response once, so there
// are no retransmissions and no timeouts.
type demoTx struct {
	attempts int         // initial INVITEs written
	outcomes map[int]int // their final response codes
	// byes counts the answered calls ended by a BYE: every one, so no
	// session is active at the end. registers counts the registration
	// attempts (a REGISTER challenged and the one re-sent with credentials
	// are one, RFC 6076 §4.1), regChallenges their 401s; registered the
	// addresses of record left registered: none, since the 200s grant no
	// expiry (no Contact, no Expires).
	byes, registers, regChallenges, registered int
	// delays holds every delay sample by histogram and outcome, keyed like
	// demoTxValues: "sip_session_request_delay_seconds{outcome=success}".
	delays map[string][]time.Duration
}

func (x *demoTx) observe(family, outcome string, d time.Duration) {
	key := family
	if outcome != "" {
		key += "{outcome=" + outcome + "}"
	}
	x.delays[key] = append(x.delays[key], d)
}

type endpoint struct {
	ip   net.IP
	port uint16
	tcp  bool
}

func (d *demoWriter) packet(src, dst endpoint, payload []byte) {
	d.t = d.t.Add(time.Duration(5+d.rng.IntN(40)) * time.Millisecond)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, src.ip[15]}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, dst.ip[15]}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.ip, DstIP: dst.ip, Id: uint16(d.n)}
	var l4 gopacket.SerializableLayer
	if src.tcp {
		ip.Protocol = layers.IPProtocolTCP
		key := fmt.Sprint(src, dst)
		seq, ok := d.seqs[key]
		if !ok {
			seq = d.rng.Uint32()
		}
		d.seqs[key] = seq + uint32(len(payload))
		tcp := &layers.TCP{SrcPort: layers.TCPPort(src.port), DstPort: layers.TCPPort(dst.port), Seq: seq, ACK: true, PSH: true, Window: 65535}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	} else {
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(src.port), DstPort: layers.UDPPort(dst.port)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		l4 = udp
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	if err := d.w.WritePacket(gopacket.CaptureInfo{Timestamp: d.t, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		panic(err)
	}
	d.n++
}

var reasons = map[int]string{100: "Trying", 180: "Ringing", 200: "OK", 401: "Unauthorized", 404: "Not Found",
	486: "Busy Here", 487: "Request Terminated", 503: "Service Unavailable", 603: "Decline"}

// dialog writes one exchange from a (UAC) to b (UAS).
func (d *demoWriter) dialog(a, b endpoint, kind int) {
	callID := fmt.Sprintf("%08x@demo.example", d.rng.Uint32())
	transport := "UDP"
	if a.tcp {
		transport = "TCP"
	}
	branch := func() string { return fmt.Sprintf("z9hG4bK%08x", d.rng.Uint32()) }
	req := func(method string, cseq int, br, toTag string) {
		body := ""
		if method == "INVITE" {
			body = "v=0\r\no=- 1 1 IN IP4 " + a.ip.String() + "\r\ns=-\r\nc=IN IP4 " + a.ip.String() + "\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
		}
		msg := fmt.Sprintf("%s sip:bob@%s SIP/2.0\r\nVia: SIP/2.0/%s %s:%d;branch=%s\r\nMax-Forwards: 70\r\nFrom: <sip:alice@%s>;tag=a%s\r\nTo: <sip:bob@%s>%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:alice@%s:%d>\r\nUser-Agent: sip-demo\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
			method, b.ip, transport, a.ip, a.port, br, a.ip, callID[:6], b.ip, toTag, callID, cseq, method, a.ip, a.port, len(body), body)
		d.packet(a, b, []byte(msg))
	}
	resp := func(code int, method string, cseq int, br, toTag string) {
		msg := fmt.Sprintf("SIP/2.0 %d %s\r\nVia: SIP/2.0/%s %s:%d;branch=%s\r\nFrom: <sip:alice@%s>;tag=a%s\r\nTo: <sip:bob@%s>%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nServer: sip-demo\r\nContent-Length: 0\r\n\r\n",
			code, reasons[code], transport, a.ip, a.port, br, a.ip, callID[:6], b.ip, toTag, callID, cseq, method)
		d.packet(b, a, []byte(msg))
		d.want[fmt.Sprintf("%d %s", code, method)]++
	}
	tag := ";tag=b" + callID[:6]
	// d.t is the timestamp of the packet just written; since records it
	// for the delays of demoTx.
	var mark time.Time
	since := func() time.Duration { return d.t.Sub(mark) }
	switch kind {
	case 0: // REGISTER challenged, then accepted: one attempt, whose RRD
		// runs from the first REGISTER, the challenge within (RFC 6076 §4.1)
		d.tx.registers++
		br := branch()
		req("REGISTER", 1, br, "")
		mark = d.t
		resp(401, "REGISTER", 1, br, tag)
		d.tx.regChallenges++
		br = branch()
		req("REGISTER", 2, br, "")
		resp(200, "REGISTER", 2, br, tag)
		d.tx.observe("sip_registration_request_delay_seconds", "success", since())
	case 1: // OPTIONS keep-alive
		br := branch()
		req("OPTIONS", 1, br, "")
		resp(200, "OPTIONS", 1, br, tag)
	default: // INVITE with an outcome
		outcomes := []int{200, 200, 200, 200, 486, 404, 503, 603, 487}
		code := outcomes[d.rng.IntN(len(outcomes))]
		br := branch()
		req("INVITE", 1, br, "")
		mark = d.t
		d.tx.attempts++
		resp(100, "INVITE", 1, br, "")
		// SRD (RFC 6076 §4.3): to the first 18x or 2xx, else to the
		// final failure. Here the first such response is the 180.
		ringing := code != 404 && code != 503
		if ringing {
			resp(180, "INVITE", 1, br, tag)
			d.tx.observe("sip_session_request_delay_seconds", "success", since())
		}
		if code == 487 {
			req("CANCEL", 1, br, "")
			resp(200, "CANCEL", 1, br, tag)
		}
		resp(code, "INVITE", 1, br, tag)
		d.tx.outcomes[code]++
		if !ringing {
			d.tx.observe("sip_session_request_delay_seconds", "failure", since())
		}
		answered := d.t
		req("ACK", 1, br, tag)
		if code == 200 {
			d.t = d.t.Add(time.Duration(1+d.rng.IntN(3)) * time.Second)
			br = branch()
			req("BYE", 2, br, tag)
			mark = d.t
			d.tx.observe("sip_session_duration_seconds", "", d.t.Sub(answered))
			d.tx.byes++
			resp(200, "BYE", 2, br, tag)
			d.tx.observe("sip_session_disconnect_delay_seconds", "", since())
		}
	}
}

// writeDemo writes the demo capture to path and returns the responses it
// holds per "code method" and its transactions. The output depends only on
// the fixed seed.
func writeDemo(path string) (map[string]int, *demoTx, error) {
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, nil, err
	}
	d := &demoWriter{w: w, t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), rng: rand.New(rand.NewPCG(2026, 11)),
		seqs: map[string]uint32{}, want: map[string]int{},
		tx: demoTx{outcomes: map[int]int{}, delays: map[string][]time.Duration{}}}
	proxyUDP := endpoint{net.IPv4(192, 0, 2, 10).To16(), 5060, false}
	proxyTCP := endpoint{net.IPv4(192, 0, 2, 11).To16(), 5060, true}
	for i := 0; i < 200; i++ {
		ua := endpoint{net.IPv4(198, 51, 100, byte(20+i%30)).To16(), 5060, false}
		target := proxyUDP
		if i%4 == 3 { // a quarter over a TCP trunk between two proxies
			ua = endpoint{net.IPv4(203, 0, 113, 5).To16(), 35060, true}
			target = proxyTCP
		}
		d.dialog(ua, target, d.rng.IntN(8))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, nil, err
	}
	return d.want, &d.tx, nil
}

// TestDemoCapture checks that the bundled demo capture is what writeDemo
// makes (-update rewrites it) and that the pipeline counts exactly the
// responses written into it.
func TestDemoCapture(t *testing.T) {
	tmp := t.TempDir() + "/demo.pcap"
	want, _, err := writeDemo(tmp)
	if err != nil {
		t.Fatal(err)
	}
	made, _ := os.ReadFile(tmp)
	if *update {
		if err := os.WriteFile(demoCapture, made, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bundled, err := os.ReadFile(demoCapture)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bundled, made) {
		t.Errorf("%s differs from what writeDemo makes; run go test ./cmd/sip_exporter -run TestDemoCapture -update", demoCapture)
	}
	p, stats := reportOf(t, demoCapture)
	got := countsOf(p)
	for k, n := range want {
		if got[k] != uint64(n) {
			t.Errorf("%s: got %d, want %d", k, got[k], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d (code, method) pairs, want %d: %v", len(got), len(want), got)
	}
	stats.ParseErrors(func(r string, n uint64) {
		if n != 0 {
			t.Errorf("parse errors %s: %d", r, n)
		}
	})
}

// TestDemoTransactions checks the transaction families of the demo
// capture's exposition against what writeDemo put into the capture, not
// against an earlier output of the exporter:
//
//   - sip_session_attempts_total: the initial INVITEs written;
//   - sip_session_outcomes_total: their final codes as the scenario drew
//     them (every series the exposition has, 0 for a code never written);
//   - sip_sessions_ended_total{reason="bye"}: the BYEs written (every
//     answered call has one, so sip_sessions_active is 0 and no session
//     ends otherwise);
//   - sip_registration_attempts_total: the registrations written (each a
//     REGISTER challenged with 401 and one re-sent with credentials: one
//     attempt), sip_registration_challenges_total{code="401"} their
//     challenges, the other challenge series 0;
//     sip_registrations_active 0, since the 200s written grant no expiry;
//   - sip_stir_attestations_total{attest="none"} and
//     sip_stir_verifications_total{verstat="none"}: the initial INVITEs
//     written (none carries an Identity header or a verstat), the other
//     values 0;
//   - sip_session_timeouts_total, sip_registration_timeouts_total and every sip_request_retransmissions_total
//     and sip_response_retransmissions_total series: 0, since every INVITE
//     is given a final response and every message is written once;
//   - the SRD, RRD, SDD and duration histograms: _count, _sum and every
//     _bucket from the delays between the timestamps writeDemo gave the
//     packets (whole milliseconds, so the sums agree up to float64
//     rounding; the bucket bounds are the exporter's configuration, the
//     samples at or below each are counted here).
//
// It checks both the output of `report --format=prometheus` on the bundled
// capture and testdata/demo.prometheus.golden, which TestReportGolden and
// TestLiveCaptureFile compare byte for byte, so that a golden rewritten by
// -update with wrong transaction values fails here.
func TestDemoTransactions(t *testing.T) {
	tmp := t.TempDir() + "/demo.pcap"
	_, tx, err := writeDemo(tmp)
	if err != nil {
		t.Fatal(err)
	}
	made, _ := os.ReadFile(tmp)
	bundled, err := os.ReadFile(demoCapture)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bundled, made) {
		t.Fatalf("%s differs from what writeDemo makes (see TestDemoCapture): its transactions are not known", demoCapture)
	}
	// Sanity of the scenario itself, so that the expectations are not
	// vacuous: every kind of sample is present.
	for _, k := range []string{
		"sip_session_request_delay_seconds{outcome=success}", "sip_session_request_delay_seconds{outcome=failure}",
		"sip_registration_request_delay_seconds{outcome=success}",
		"sip_session_disconnect_delay_seconds", "sip_session_duration_seconds",
	} {
		if len(tx.delays[k]) == 0 {
			t.Errorf("the demo scenario has no %s sample", k)
		}
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", "--format=prometheus", demoCapture}, &stdout, &stderr); code != 0 {
		t.Fatalf("report exit code %d: %s", code, stderr.String())
	}
	golden, err := os.ReadFile("testdata/demo.prometheus.golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []struct{ name, text string }{
		{"report --format=prometheus " + demoCapture, stdout.String()},
		{"testdata/demo.prometheus.golden", string(golden)},
	} {
		t.Run(filepath.Base(strings.Fields(src.name)[0]), func(t *testing.T) {
			parser := expfmt.NewTextParser(model.UTF8Validation)
			mfs, err := parser.TextToMetricFamilies(strings.NewReader(src.text))
			if err != nil {
				t.Fatalf("%s: %v", src.name, err)
			}
			got, err := demoTxValues(mfs)
			if err != nil {
				t.Fatalf("%s: %v", src.name, err)
			}
			want := tx.expected(mfs)
			keys := sortedUnion(maps.Keys(want), maps.Keys(got))
			var table strings.Builder
			bad := 0
			for _, k := range keys {
				w, inWant := want[k]
				g, inGot := got[k]
				mark := ""
				// Sums: the samples are whole milliseconds, so only the
				// float64 rounding of the additions may differ.
				if !inWant || !inGot || math.Abs(g-w) > 1e-9 {
					mark = "  <- differs"
					bad++
				}
				if mark != "" || w != 0 && !strings.Contains(k, "_bucket") {
					fmt.Fprintf(&table, "%-90s want %12.6f got %12.6f%s\n", k, w, g, mark)
				}
			}
			if bad > 0 {
				t.Errorf("%s: %d transaction values differ from what writeDemo wrote:\n%s", src.name, bad, table.String())
			} else {
				t.Logf("%s equals what writeDemo wrote (%d values; buckets and zeros not listed):\n%s", src.name, len(keys), table.String())
			}
		})
	}
}

// demoTxFamilies are the families TestDemoTransactions checks.
var demoTxFamilies = []string{
	"sip_session_attempts_total", "sip_session_outcomes_total", "sip_session_timeouts_total",
	"sip_request_retransmissions_total", "sip_response_retransmissions_total",
	"sip_session_request_delay_seconds", "sip_registration_request_delay_seconds",
	"sip_session_disconnect_delay_seconds", "sip_session_duration_seconds",
	"sip_sessions_active", "sip_sessions_ended_total", "sip_registrations_active",
	"sip_registration_attempts_total", "sip_registration_timeouts_total",
	"sip_session_challenges_total", "sip_registration_challenges_total",
	"sip_stir_attestations_total", "sip_stir_verifications_total",
}

// demoTxValues flattens the demoTxFamilies of an exposition: a counter as
// name{labels}, a histogram as name_count{labels}, name_sum{labels} and
// name_bucket{labels,le=bound}, labels as txLabels renders them (without
// node, class and reason). A family missing is an error.
func demoTxValues(mfs map[string]*dto.MetricFamily) (map[string]float64, error) {
	out := map[string]float64{}
	for _, name := range demoTxFamilies {
		mf, ok := mfs[name]
		if !ok || len(mf.GetMetric()) == 0 {
			return nil, fmt.Errorf("no %s in the exposition", name)
		}
		for _, m := range mf.GetMetric() {
			ls := txLabels(m)
			if h := m.GetHistogram(); h != nil {
				out[name+"_count"+ls] = float64(h.GetSampleCount())
				out[name+"_sum"+ls] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[name+"_bucket"+withLe(ls, b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
				continue
			}
			if g := m.GetGauge(); g != nil {
				out[name+ls] = g.GetValue()
				continue
			}
			out[name+ls] = m.GetCounter().GetValue()
		}
	}
	return out, nil
}

// withLe adds le=bound to labels rendered by txLabels.
func withLe(labels string, bound float64) string {
	le := "le=" + strconv.FormatFloat(bound, 'g', -1, 64)
	if labels == "" {
		return "{" + le + "}"
	}
	return strings.TrimSuffix(labels, "}") + "," + le + "}"
}

// expected returns the values demoTxValues should find, from what the
// generator wrote. The series of the counters are those of the exposition
// (pre-initialised ones included): each must hold what the generator says,
// 0 where it wrote nothing. The bucket bounds, configuration rather than
// measurement, are taken from the exposition too.
func (x *demoTx) expected(mfs map[string]*dto.MetricFamily) map[string]float64 {
	want := map[string]float64{
		"sip_session_attempts_total": float64(x.attempts),
		"sip_session_timeouts_total": 0,
		// Every answered call ends with a BYE within seconds.
		"sip_sessions_active":                      float64(x.outcomes[200] - x.byes),
		"sip_sessions_ended_total{reason=bye}":     float64(x.byes),
		"sip_sessions_ended_total{reason=max_age}": 0,
		"sip_sessions_ended_total{reason=evicted}": 0,
		// No request inside a dialog is answered 481 or 408.
		"sip_sessions_ended_total{reason=no_dialog}":       0,
		"sip_sessions_ended_total{reason=request_timeout}": 0,
		"sip_registrations_active":                         float64(x.registered),
		"sip_registration_attempts_total":                  float64(x.registers),
		"sip_registration_timeouts_total":                  0,
		// Every REGISTER is challenged once with 401, no INVITE.
		"sip_registration_challenges_total{code=401}": float64(x.regChallenges),
		"sip_registration_challenges_total{code=407}": 0,
		"sip_session_challenges_total{code=401}":      0,
		"sip_session_challenges_total{code=407}":      0,
		// No INVITE written carries an Identity header or a verstat
		// parameter, and none is challenged: one per attempt.
		"sip_stir_attestations_total{attest=none}":   float64(x.attempts),
		"sip_stir_verifications_total{verstat=none}": float64(x.attempts),
	}
	for _, a := range []string{"A", "B", "C", "invalid"} {
		want["sip_stir_attestations_total{attest="+a+"}"] = 0
	}
	for _, v := range []string{"TN-Validation-Passed", "TN-Validation-Failed", "No-TN-Validation", "other"} {
		want["sip_stir_verifications_total{verstat="+v+"}"] = 0
	}
	for code, n := range x.outcomes {
		want["sip_session_outcomes_total{code="+strconv.Itoa(code)+"}"] = float64(n)
	}
	for _, name := range []string{"sip_session_outcomes_total", "sip_request_retransmissions_total", "sip_response_retransmissions_total"} {
		for _, m := range mfs[name].GetMetric() {
			if k := name + txLabels(m); want[k] == 0 {
				want[k] = 0
			}
		}
	}
	for _, name := range demoTxFamilies {
		for _, m := range mfs[name].GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			ls := txLabels(m)
			samples := x.delays[name+ls]
			var sum time.Duration
			for _, d := range samples {
				sum += d
			}
			want[name+"_count"+ls] = float64(len(samples))
			want[name+"_sum"+ls] = sum.Seconds()
			for _, b := range h.GetBucket() {
				bound := time.Duration(math.Round(b.GetUpperBound() * 1e9))
				n := 0
				for _, d := range samples {
					if math.IsInf(b.GetUpperBound(), 1) || d <= bound {
						n++
					}
				}
				want[name+"_bucket"+withLe(ls, b.GetUpperBound())] = float64(n)
			}
		}
	}
	// A delay written for a histogram series the exposition lacks.
	for k, samples := range x.delays {
		name, ls, _ := strings.Cut(k, "{")
		if ls != "" {
			ls = "{" + ls
		}
		if _, ok := want[name+"_count"+ls]; !ok {
			want[name+"_count"+ls] = float64(len(samples))
		}
	}
	return want
}
