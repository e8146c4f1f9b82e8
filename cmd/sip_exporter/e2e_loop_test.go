package main

import (
	"bufio"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestServeLoopWithoutSIP runs the real binary with --capture.pcap-loop
// on the demo capture and, beside it, a capture of the same times that
// holds no SIP (RTP-like datagrams): the file without SIP must not hold
// the time-ordered merge back (its reader marks its progress), so the
// demo's responses are counted pass after pass: at least twice the count
// of one pass (report's exposition of the demo, testdata/demo.prometheus.golden,
// which TestDemoCapture checks against what the demo's generator wrote).
func TestServeLoopWithoutSIP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	onePass := goldenSum(t, "testdata/demo.prometheus.golden", "sip_responses_total")
	if onePass == 0 {
		t.Fatal("no sip_responses_total in the golden exposition")
	}
	noSIP := writeNoSIPTwin(t, demoCapture)
	bin := buildExporter(t)
	e := startExporter(t, bin, "--capture.pcap-file="+demoCapture, "--capture.pcap-file="+noSIP, "--capture.pcap-loop")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, mfs, err := e.scrape()
		var got float64
		if err == nil {
			for _, m := range mfs["sip_responses_total"].GetMetric() {
				got += m.GetCounter().GetValue()
			}
		}
		if got >= 2*onePass {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, %v responses counted, want at least %v (two passes of the demo): %v", got, 2*onePass, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// goldenSum returns the sum of the samples of family name in the text
// exposition at path.
func goldenSum(t *testing.T, path, name string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sum float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, l, err)
		}
		sum += v
	}
	return sum
}

// writeNoSIPTwin writes a pcap with a UDP datagram of 172 bytes of RTP-like
// payload at the time of each packet of the capture at path, and returns
// its path.
func writeNoSIPTwin(t *testing.T, path string) string {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rtp-only.pcap")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 172)
	payload[0], payload[1] = 0x80, 0x00 // RTP version 2, PCMU
	for {
		_, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		eth := &layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{10, 9, 0, 1}, DstIP: []byte{10, 9, 0, 2}}
		udp := &layers.UDP{SrcPort: 20000, DstPort: 30000}
		_ = udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPcapFileNotCapture: a --capture.pcap-file that is not a capture
// (text, empty, a directory) fails at start, naming the file and what is
// wrong with it, as a missing file does, instead of serving empty metrics.
func TestPcapFileNotCapture(t *testing.T) {
	dir := t.TempDir()
	text, empty := filepath.Join(dir, "calls.txt"), filepath.Join(dir, "empty.pcap")
	if err := os.WriteFile(text, []byte("INVITE sip:bob@example.com SIP/2.0\r\n\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, why string }{
		{text, "not a pcap"},
		{empty, "empty file"},
		{dir, "is a directory"},
		{filepath.Join(dir, "missing.pcap"), "no such file"},
	} {
		o := options{pcapFiles: []string{tc.path}, pcapSpeed: "fast", workers: 2, pipeline: defaultPipelineConfig()}
		p, err := pipeline.New(o.pipeline)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newSources(t.Context(), &o, p)
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, want an error naming the file and %q", tc.path, err, tc.why)
		}
	}
}
