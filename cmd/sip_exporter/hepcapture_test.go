package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/collector"
)

// hepCapture rewrites the SIP payloads of capture file src as a captured
// HEP feed: each SIP message becomes a HEPv3 packet (every third one with a
// compressed payload) from one of two agents, sent over UDP or, with tcp,
// as one TCP stream per agent.
func hepCapture(t *testing.T, src string, tcp bool) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := pcapgo.NewWriter(&out)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	collectorIP := net.IPv4(192, 0, 2, 200).To4()
	seq := map[int]uint32{0: 1000, 1: 5000}
	for i := 0; ; i++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		// Decode no further than UDP/TCP: gopacket's own SIP layer would
		// take the header for itself and leave only the body as payload.
		pkt := gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.DecodeOptions{DecodeStreamsAsDatagrams: false, SkipDecodeRecovery: true})
		ip, _ := pkt.NetworkLayer().(*layers.IPv4)
		tl := pkt.TransportLayer()
		if tl == nil || ip == nil || len(tl.LayerPayload()) == 0 {
			continue
		}
		agent := i % 2
		hp := hep.Packet{Version: 3, IPFamily: hep.FamilyIPv4, IPProtocol: 17, SrcIP: ip.SrcIP.To4(), DstIP: ip.DstIP.To4(),
			SrcPort: 5060, DstPort: 5060, TimestampSeconds: uint32(ci.Timestamp.Unix()), ProtocolType: hep.ProtocolSIP,
			CaptureAgentID: uint32(100 + agent), Payload: tl.LayerPayload()}
		if agent == 0 {
			hp.NodeName = []byte("sbc-a")
		}
		if i%3 == 0 {
			hp.PayloadCompression = hep.CompressionGzip
		}
		b, err := hep.AppendV3(nil, &hp)
		if err != nil {
			t.Fatal(err)
		}
		agentIP := net.IPv4(192, 0, 2, byte(100+agent)).To4()
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip4 := &layers.IPv4{Version: 4, TTL: 64, SrcIP: agentIP, DstIP: collectorIP}
		var l4 gopacket.SerializableLayer
		if tcp {
			ip4.Protocol = layers.IPProtocolTCP
			seg := &layers.TCP{SrcPort: layers.TCPPort(40000 + agent), DstPort: 9060, Seq: seq[agent], ACK: true, PSH: true, Window: 65535}
			seq[agent] += uint32(len(b))
			_ = seg.SetNetworkLayerForChecksum(ip4)
			l4 = seg
		} else {
			ip4.Protocol = layers.IPProtocolUDP
			dg := &layers.UDP{SrcPort: layers.UDPPort(40000 + agent), DstPort: 9060}
			_ = dg.SetNetworkLayerForChecksum(ip4)
			l4 = dg
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip4, l4, gopacket.Payload(b)); err != nil {
			t.Fatal(err)
		}
		frame := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "hep.pcap")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReportHEPCapture checks that `report` on a captured HEP feed, over
// UDP and over TCP, with plain and compressed payloads, counts what it
// counts on the plain SIP capture, each message under its agent's node.
func TestReportHEPCapture(t *testing.T) {
	plain, _ := reportOf(t, demoCapture)
	want := countsOf(plain)
	for _, tcp := range []bool{false, true} {
		name := "udp"
		if tcp {
			name = "tcp"
		}
		t.Run(name, func(t *testing.T) {
			p, stats := reportOf(t, hepCapture(t, demoCapture, tcp))
			got := map[string]uint64{}
			nodes := map[string]bool{}
			for _, n := range p.SIP().Nodes() {
				for k, v := range countsOfNode(n) {
					got[k] += v
					nodes[n.Label()] = true
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d (code, method) pairs, want %d", len(got), len(want))
			}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("%s: got %d, want %d", k, got[k], n)
				}
			}
			if !nodes["sbc-a"] || !nodes["101"] || len(nodes) != 2 {
				t.Errorf("nodes %v, want sbc-a (node name) and 101 (capture agent ID)", nodes)
			}
			stats.HEPErrors(func(r string, n uint64) {
				if n != 0 {
					t.Errorf("hep decode errors %s: %d", r, n)
				}
			})
		})
	}
	// Decapsulation off: the HEP feed holds no SIP the exporter can see.
	cfg := defaultPipelineConfig()
	cfg.HEP.Decapsulate = false
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var stats captureStats
	if err := readFiles(p, []string{hepCapture(t, demoCapture, false)}, testWorkers, &stats, func(error) {}); err != nil {
		t.Fatal(err)
	}
	for _, n := range p.SIP().Nodes() {
		if c := countsOfNode(n); len(c) != 0 {
			t.Errorf("with decapsulation off, node %q counted %v", n.Label(), c)
		}
	}
}

// countsOfNode returns a node's response counts per "code method".
func countsOfNode(n *collector.Node) map[string]uint64 {
	got := map[string]uint64{}
	n.EachResponse(func(code int, m collector.Method, v uint64) {
		got[codeMethod(code, m)] = v
	})
	return got
}
