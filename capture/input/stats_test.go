package input_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sip-exporter/sip_exporter/capture/input"
)

func TestExporterCollect(t *testing.T) {
	eth := &input.Source{Name: "eth0", Type: "interface"}
	eth.Up.Store(true)
	st := &eth.Stats
	st.KernelDrops.Store(2)
	st.Decode.Packets.Store(10)
	st.Decode.Bytes.Store(1500)
	st.Decode.Stream.Flows.Store(4)
	st.Decode.Stream.Gaps.Store(6)
	st.Decode.Fragments.Reassembling.Store(1)
	hep := &input.Source{Name: "tcp://:9060", Type: "hep"}
	hep.Stats.HEPConns.Store(3)
	udp := &input.Source{Name: "udp://:9060", Type: "hep"}
	udp.Stats.NotAllowedDrops.Store(3)
	c := input.NewCollector(eth, hep, udp)
	want := `
# HELP sip_exporter_bytes_received_total Bytes of the packets read from the source, as long as they were on the wire.
# TYPE sip_exporter_bytes_received_total counter
sip_exporter_bytes_received_total{source="eth0"} 1500
sip_exporter_bytes_received_total{source="tcp://:9060"} 0
sip_exporter_bytes_received_total{source="udp://:9060"} 0
# HELP sip_exporter_hep_tcp_connections HEP TCP connections open.
# TYPE sip_exporter_hep_tcp_connections gauge
sip_exporter_hep_tcp_connections{source="tcp://:9060"} 3
# HELP sip_exporter_ip_reassembly_datagrams IP datagrams whose fragments are being collected (including failed ones kept until their timeout to drop late fragments).
# TYPE sip_exporter_ip_reassembly_datagrams gauge
sip_exporter_ip_reassembly_datagrams{source="eth0"} 1
sip_exporter_ip_reassembly_datagrams{source="tcp://:9060"} 0
sip_exporter_ip_reassembly_datagrams{source="udp://:9060"} 0
# HELP sip_exporter_packets_dropped_total Packets lost before decoding, by reason (kernel: the capture ring or socket buffer was full; not_allowed: a HEP datagram from outside --hep.allowed-networks).
# TYPE sip_exporter_packets_dropped_total counter
sip_exporter_packets_dropped_total{reason="kernel",source="eth0"} 2
sip_exporter_packets_dropped_total{reason="kernel",source="tcp://:9060"} 0
sip_exporter_packets_dropped_total{reason="kernel",source="udp://:9060"} 0
sip_exporter_packets_dropped_total{reason="not_allowed",source="udp://:9060"} 3
# HELP sip_exporter_source_up 1 while the packet source is being read, 0 once it has ended or failed.
# TYPE sip_exporter_source_up gauge
sip_exporter_source_up{source="eth0",type="interface"} 1
sip_exporter_source_up{source="tcp://:9060",type="hep"} 0
sip_exporter_source_up{source="udp://:9060",type="hep"} 0
# HELP sip_exporter_tcp_flows TCP flow directions whose stream is being reassembled.
# TYPE sip_exporter_tcp_flows gauge
sip_exporter_tcp_flows{source="eth0"} 4
sip_exporter_tcp_flows{source="tcp://:9060"} 0
sip_exporter_tcp_flows{source="udp://:9060"} 0
# HELP sip_exporter_tcp_stream_gaps_total Times missing TCP data never arrived and reassembly skipped ahead to the next SIP message.
# TYPE sip_exporter_tcp_stream_gaps_total counter
sip_exporter_tcp_stream_gaps_total{source="eth0"} 6
sip_exporter_tcp_stream_gaps_total{source="tcp://:9060"} 0
sip_exporter_tcp_stream_gaps_total{source="udp://:9060"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"sip_exporter_bytes_received_total", "sip_exporter_hep_tcp_connections", "sip_exporter_ip_reassembly_datagrams",
		"sip_exporter_packets_dropped_total", "sip_exporter_source_up", "sip_exporter_tcp_flows", "sip_exporter_tcp_stream_gaps_total"); err != nil {
		t.Error(err)
	}
	// Per source: every reason of the closed sets, zeros included; HEP
	// connection metrics (1 open, 1 total, 3 rejected, 8 closed) only for
	// the HEP listener's TCP source, drops not_allowed and reads only for
	// its UDP one.
	if n, per := testutil.CollectAndCount(c), testutil.CollectAndCount(input.NewCollector(eth)); n != 3*per+13+2 {
		t.Errorf("%d series, want 3 × %d + 13 + 2", n, per)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// TestCollectWorkers checks that an interface captured by workers exports
// the sums of their counters under its own series, and each worker's
// packets under sip_exporter_capture_worker_packets_total.
func TestCollectWorkers(t *testing.T) {
	eth := &input.Source{Name: "eth0", Type: "interface"}
	ws := eth.Stats.NewWorkers(3)
	if len(ws) != 3 || len(eth.Stats.Workers) != 3 {
		t.Fatalf("NewWorkers(3): %d shards, %d in Stats.Workers", len(ws), len(eth.Stats.Workers))
	}
	for i, w := range ws {
		w.Packets.Store(uint64(10 * (i + 1)))
		w.Stream.Flows.Store(int64(i))
	}
	if n := eth.Stats.Packets(); n != 60 {
		t.Errorf("Packets() = %d, want 60", n)
	}
	want := `
# HELP sip_exporter_capture_worker_packets_total Packets read by each capture worker of an interface (--capture.workers: AF_PACKET sockets of one fanout group, each with its own ring, goroutine and decoder; worker 0 to N-1): they add up to sip_exporter_packets_received_total and show how evenly the kernel's flow hash spreads the traffic.
# TYPE sip_exporter_capture_worker_packets_total counter
sip_exporter_capture_worker_packets_total{source="eth0",worker="0"} 10
sip_exporter_capture_worker_packets_total{source="eth0",worker="1"} 20
sip_exporter_capture_worker_packets_total{source="eth0",worker="2"} 30
# HELP sip_exporter_packets_received_total Packets read from the source.
# TYPE sip_exporter_packets_received_total counter
sip_exporter_packets_received_total{source="eth0"} 60
# HELP sip_exporter_tcp_flows TCP flow directions whose stream is being reassembled.
# TYPE sip_exporter_tcp_flows gauge
sip_exporter_tcp_flows{source="eth0"} 3
`
	c := input.NewCollector(eth)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"sip_exporter_capture_worker_packets_total", "sip_exporter_packets_received_total", "sip_exporter_tcp_flows"); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
