package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// callMsg is a scripted message of the call callID.
type callMsg struct {
	callID string
	sipMsg
}

// writeCalls writes msgs, in their order, as UDP packets between A and B
// to a pcap file and returns its path.
func writeCalls(t *testing.T, msgs []callMsg) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "calls.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a, b := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	for _, m := range msgs {
		src, dst := a, b
		if m.fromB {
			src, dst = b, a
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst, Protocol: layers.IPProtocolUDP}
		udp := &layers.UDP{SrcPort: 5060, DstPort: 5060}
		_ = udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(m.bytes(m.callID))); err != nil {
			t.Fatal(err)
		}
		ts := start.Add(time.Duration(m.ms) * time.Millisecond)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestDialogLongCallOutlivesBound: one call stays up while more short
// calls than --sip.max-transactions are answered and hung up after it.
// Few dialogs are ever open at once, so none is evicted: the long call
// ends by its BYE and its duration counts (the dialog queue used to evict
// it once --sip.max-transactions calls had been answered after it,
// ended ones included).
func TestDialogLongCallOutlivesBound(t *testing.T) {
	const (
		maxTx   = 8
		short   = 5 * maxTx // short calls, one every 20 s
		spacing = 20_000    // ms
		longBye = 1_000_000 // ms: the long call's BYE, after every short call
		longDur = longBye - 1000
	)
	// The long call: answered at 1 s (answered()), B hangs up at longBye.
	var msgs []callMsg
	for _, m := range answered() {
		msgs = append(msgs, callMsg{"long@192.0.2.1", m})
	}
	// The short calls: each answered 1 s after its INVITE and hung up 4 s
	// later; at most two are within 32 s (the non-INVITE timeout) of each
	// other, so that no more than 1 + 2×3 transactions are open at once.
	for i := range short {
		at := spacing * (i + 1)
		id := fmt.Sprintf("short-%d@192.0.2.1", i)
		for _, m := range append(answered(), byeFromB(5000, "")...) {
			m.ms += at
			msgs = append(msgs, callMsg{id, m})
		}
	}
	for _, m := range byeFromB(longBye, "") {
		msgs = append(msgs, callMsg{"long@192.0.2.1", m})
	}
	if msgs[len(msgs)-3].ms >= longBye {
		t.Fatal("the script is out of order")
	}
	path := writeCalls(t, msgs)

	var stdout, stderr bytes.Buffer
	args := []string{"report", "--format=prometheus", fmt.Sprintf("--sip.max-transactions=%d", maxTx), "--sip.invite-timeout=10s", path}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("%v: exit code %d, stderr: %s", args, code, stderr.String())
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	value := func(family, label, want string) float64 {
		t.Helper()
		mf, ok := mfs[family]
		if !ok {
			t.Fatalf("no %s", family)
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			if label != "" && labelValue(m, label) != want {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	calls := float64(short + 1)
	for _, c := range []struct {
		family, label, value string
		want                 float64
	}{
		{"sip_session_attempts_total", "", "", calls},
		{"sip_sessions_ended_total", "reason", "bye", calls},
		{"sip_sessions_ended_total", "reason", "evicted", 0},
		{"sip_sessions_ended_total", "reason", "max_age", 0},
		{"sip_sessions_active", "", "", 0},
		{"sip_session_duration_seconds", "", "", calls},
		// No transaction was evicted (report leaves out the self-metrics):
		// every 200 found its INVITE, every BYE's 200 its BYE.
		{"sip_session_outcomes_total", "code", "200", calls},
		{"sip_session_disconnect_delay_seconds", "", "", calls},
	} {
		if got := value(c.family, c.label, c.value); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.family, c.label, c.value, got, c.want)
		}
	}
	var durations float64
	for _, m := range mfs["sip_session_duration_seconds"].GetMetric() {
		durations += m.GetHistogram().GetSampleSum()
	}
	if want := float64(longDur)/1000 + short*4; durations < want-1e-6 || durations > want+1e-6 {
		t.Errorf("durations sum to %v s, want %v (the long call's %v s and %d × 4 s)", durations, want, float64(longDur)/1000, short)
	}
}
