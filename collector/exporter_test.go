package collector_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sip-exporter/sip_exporter/collector"
)

func TestExporterCollect(t *testing.T) {
	e := collector.NewExporter(func() []collector.SourceStats {
		return []collector.SourceStats{{
			Source: "eth0", Type: "interface", Up: true,
			Packets: 10, Bytes: 1500, KernelDrops: 2,
			ParseErrors:  []collector.ReasonCount{{Reason: "status_code", Count: 1}},
			Skipped:      []collector.ReasonCount{{Reason: "not_sip", Count: 3}},
			TCPFlows:     4,
			TCPEvictions: []collector.ReasonCount{{Reason: "limit", Count: 5}},
			TCPGaps:      6, TCPOutOfOrder: 7, TCPRetransmitted: 8,
			IPReassembling: 1, IPReassembled: []collector.ReasonCount{{Reason: "ipv4", Count: 9}},
			IPFragmentsDrops: []collector.FragmentDropCount{{Family: "ipv6", Reason: "overlap", Count: 3}},
		}}
	})
	want := `
# HELP sip_exporter_bytes_received_total Bytes of the packets read from the source, as long as they were on the wire.
# TYPE sip_exporter_bytes_received_total counter
sip_exporter_bytes_received_total{source="eth0"} 1500
# HELP sip_exporter_ip_datagrams_reassembled_total IP datagrams reassembled from fragments, by family (ipv4, ipv6).
# TYPE sip_exporter_ip_datagrams_reassembled_total counter
sip_exporter_ip_datagrams_reassembled_total{family="ipv4",source="eth0"} 9
# HELP sip_exporter_ip_fragments_dropped_total IP fragments dropped without making a datagram, by family and reason (incomplete: missing fragments at the timeout, overlap, duplicate, too_large, limit: too many datagrams in progress, truncated: cut by the snap length).
# TYPE sip_exporter_ip_fragments_dropped_total counter
sip_exporter_ip_fragments_dropped_total{family="ipv6",reason="overlap",source="eth0"} 3
# HELP sip_exporter_ip_reassembly_datagrams IP datagrams whose fragments are being collected (including failed ones kept until their timeout to drop late fragments).
# TYPE sip_exporter_ip_reassembly_datagrams gauge
sip_exporter_ip_reassembly_datagrams{source="eth0"} 1
# HELP sip_exporter_packets_dropped_total Packets lost before decoding, by reason (kernel: the capture ring was full).
# TYPE sip_exporter_packets_dropped_total counter
sip_exporter_packets_dropped_total{reason="kernel",source="eth0"} 2
# HELP sip_exporter_parse_errors_total Malformed packets or SIP messages, by reason. Start-line errors drop the message; header errors are counted and the message too.
# TYPE sip_exporter_parse_errors_total counter
sip_exporter_parse_errors_total{reason="status_code",source="eth0"} 1
# HELP sip_exporter_source_up 1 while the packet source is being read, 0 once it has ended or failed.
# TYPE sip_exporter_source_up gauge
sip_exporter_source_up{source="eth0",type="interface"} 1
# HELP sip_exporter_tcp_flows TCP flow directions whose stream is being reassembled.
# TYPE sip_exporter_tcp_flows gauge
sip_exporter_tcp_flows{source="eth0"} 4
# HELP sip_exporter_tcp_stream_gaps_total Times missing TCP data never arrived and reassembly skipped ahead to the next SIP message.
# TYPE sip_exporter_tcp_stream_gaps_total counter
sip_exporter_tcp_stream_gaps_total{source="eth0"} 6
`
	if err := testutil.CollectAndCompare(e, strings.NewReader(want),
		"sip_exporter_bytes_received_total", "sip_exporter_packets_dropped_total",
		"sip_exporter_ip_datagrams_reassembled_total", "sip_exporter_ip_fragments_dropped_total", "sip_exporter_ip_reassembly_datagrams", "sip_exporter_parse_errors_total",
		"sip_exporter_source_up", "sip_exporter_tcp_flows", "sip_exporter_tcp_stream_gaps_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(e); n != 17 {
		t.Errorf("%d series, want 17", n)
	}
	problems, err := testutil.CollectAndLint(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
