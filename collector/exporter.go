package collector

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// ReasonCount is one labelled count of a closed set of reasons.
type ReasonCount struct {
	Reason string
	Count  uint64
}

// FragmentDropCount is the number of IP fragments of one family (ipv4,
// ipv6) dropped for one reason.
type FragmentDropCount struct {
	Family, Reason string
	Count          uint64
}

// SourceStats is a snapshot of one packet source's counters, taken at
// scrape time.
type SourceStats struct {
	Source string // interface name or capture file path, as configured
	Type   string // "interface" or "pcap"
	Up     bool   // reading now

	Packets     uint64 // packets read
	Bytes       uint64 // bytes of those packets, original length on the wire
	KernelDrops uint64 // packets the kernel dropped before they reached the ring

	ParseErrors []ReasonCount // malformed packets and SIP messages by reason
	Skipped     []ReasonCount // packets without SIP by reason
	Encaps      []ReasonCount // packets decoded through each encapsulation kind

	TCPFlows         int64         // flows tracked now
	TCPEvictions     []ReasonCount // flows forgotten early by reason
	TCPRetransmitted uint64        // segments whose data had been seen already
	TCPOutOfOrder    uint64        // segments held back and put in order
	TCPGaps          uint64        // gaps given up on (data never seen)

	IPReassembling   int64               // IP datagrams being reassembled now
	IPReassembled    []ReasonCount       // IP datagrams reassembled from fragments, Reason holding the family (ipv4, ipv6)
	IPFragmentsDrops []FragmentDropCount // IP fragments dropped by family and reason

	HEPPackets       uint64        // HEP packets received or found in captured payloads
	HEPBytes         uint64        // bytes of those packets
	HEPErrors        []ReasonCount // HEP decode errors by reason
	HEPAuthFailures  uint64        // HEP packets dropped for a wrong or missing auth key
	HEPNonSIP        []ReasonCount // HEP packets of other protocol types, by type in decimal
	HEPConns         int64         // HEP TCP connections open now
	HEPConnsTotal    uint64        // HEP TCP connections accepted
	HEPConnsRejected uint64        // HEP TCP connections refused: too many open
}

// Exporter is the collector of the sip_exporter_ self-metrics of the packet
// sources. It calls snapshot once per scrape.
type Exporter struct {
	snapshot func() []SourceStats

	up, packets, bytes, dropped, skipped, parseErrors, encaps *prometheus.Desc
	tcpFlows, tcpEvicted, tcpRetrans, tcpOOO, tcpGaps         *prometheus.Desc
	ipReassembling, ipReassembled, ipFragDropped              *prometheus.Desc
	hepPackets, hepBytes, hepErrors, hepAuth, hepNonSIP       *prometheus.Desc
	hepConns, hepConnsTotal, hepConnsRejected                 *prometheus.Desc
}

// NewExporter returns the self-metrics collector; snapshot must be safe to
// call from any goroutine.
func NewExporter(snapshot func() []SourceStats) *Exporter {
	src := []string{"source"}
	srcReason := []string{"source", "reason"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("sip_exporter_"+name, help, labels, nil)
	}
	return &Exporter{
		snapshot:    snapshot,
		up:          d("source_up", "1 while the packet source is being read, 0 once it has ended or failed.", []string{"source", "type"}),
		packets:     d("packets_received_total", "Packets read from the source.", src),
		bytes:       d("bytes_received_total", "Bytes of the packets read from the source, as long as they were on the wire.", src),
		dropped:     d("packets_dropped_total", "Packets lost before decoding, by reason (kernel: the capture ring was full).", srcReason),
		skipped:     d("packets_skipped_total", "Packets that hold no SIP message, by reason; not an error.", srcReason),
		parseErrors: d("parse_errors_total", "Malformed packets or SIP messages, by reason. Start-line errors drop the message; header errors are counted and the message too.", srcReason),
		encaps:      d("packets_encapsulated_total", "Packets decoded through an encapsulation, by kind (vlan, pppoe, mpls, gre, erspan, vxlan, geneve, ip_in_ip; websocket counts WebSocket messages); a packet counts once per layer.", []string{"source", "encapsulation"}),
		tcpFlows:    d("tcp_flows", "TCP flow directions whose stream is being reassembled.", src),
		tcpEvicted:  d("tcp_flows_evicted_total", "TCP flows forgotten before they ended, by reason (limit: table full, timeout: idle).", srcReason),
		tcpRetrans:  d("tcp_segments_retransmitted_total", "TCP segments carrying data seen already; the data is counted once.", src),
		tcpOOO:      d("tcp_segments_out_of_order_total", "TCP segments that arrived ahead of missing data.", src),
		tcpGaps:     d("tcp_stream_gaps_total", "Times missing TCP data never arrived and reassembly skipped ahead to the next SIP message.", src),

		ipReassembling: d("ip_reassembly_datagrams", "IP datagrams whose fragments are being collected (including failed ones kept until their timeout to drop late fragments).", src),
		ipReassembled:  d("ip_datagrams_reassembled_total", "IP datagrams reassembled from fragments, by family (ipv4, ipv6).", []string{"source", "family"}),
		ipFragDropped: d("ip_fragments_dropped_total", "IP fragments dropped without making a datagram, by family and reason "+
			"(incomplete: missing fragments at the timeout, overlap, duplicate, too_large, limit: too many datagrams in progress, truncated: cut by the snap length).",
			[]string{"source", "family", "reason"}),

		hepPackets:       d("hep_packets_received_total", "HEP packets received by the listener (source udp://, tcp://, tls://) or found inside captured payloads.", src),
		hepBytes:         d("hep_bytes_received_total", "Bytes of the HEP packets received.", src),
		hepErrors:        d("hep_decode_errors_total", "HEP packets that could not be decoded, by reason; on TCP the connection is closed.", srcReason),
		hepAuth:          d("hep_auth_failures_total", "HEP packets dropped because their auth key chunk is missing or wrong.", src),
		hepNonSIP:        d("hep_non_sip_packets_total", "HEP packets of a protocol type other than SIP (1), ignored, by type in decimal (5: RTCP, 100: log, ...).", []string{"source", "protocol_type"}),
		hepConns:         d("hep_tcp_connections", "HEP TCP connections open.", src),
		hepConnsTotal:    d("hep_tcp_connections_total", "HEP TCP connections accepted.", src),
		hepConnsRejected: d("hep_tcp_connections_rejected_total", "HEP TCP connections closed at once because --hep.max-connections were open.", src),
	}
}

// Describe implements [prometheus.Collector].
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{e.up, e.packets, e.bytes, e.dropped, e.skipped, e.parseErrors, e.encaps,
		e.tcpFlows, e.tcpEvicted, e.tcpRetrans, e.tcpOOO, e.tcpGaps,
		e.ipReassembling, e.ipReassembled, e.ipFragDropped,
		e.hepPackets, e.hepBytes, e.hepErrors, e.hepAuth, e.hepNonSIP, e.hepConns, e.hepConnsTotal, e.hepConnsRejected} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	reasons := func(d *prometheus.Desc, source string, rc []ReasonCount) {
		for _, r := range rc {
			counter(d, r.Count, source, r.Reason)
		}
	}
	for _, s := range e.snapshot() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(e.up, prometheus.GaugeValue, up, s.Source, s.Type)
		counter(e.packets, s.Packets, s.Source)
		counter(e.bytes, s.Bytes, s.Source)
		counter(e.dropped, s.KernelDrops, s.Source, "kernel")
		reasons(e.skipped, s.Source, s.Skipped)
		reasons(e.parseErrors, s.Source, s.ParseErrors)
		reasons(e.encaps, s.Source, s.Encaps)
		ch <- prometheus.MustNewConstMetric(e.tcpFlows, prometheus.GaugeValue, float64(s.TCPFlows), s.Source)
		reasons(e.tcpEvicted, s.Source, s.TCPEvictions)
		counter(e.tcpRetrans, s.TCPRetransmitted, s.Source)
		counter(e.tcpOOO, s.TCPOutOfOrder, s.Source)
		counter(e.tcpGaps, s.TCPGaps, s.Source)
		ch <- prometheus.MustNewConstMetric(e.ipReassembling, prometheus.GaugeValue, float64(s.IPReassembling), s.Source)
		reasons(e.ipReassembled, s.Source, s.IPReassembled)
		for _, f := range s.IPFragmentsDrops {
			counter(e.ipFragDropped, f.Count, s.Source, f.Family, f.Reason)
		}
		counter(e.hepPackets, s.HEPPackets, s.Source)
		counter(e.hepBytes, s.HEPBytes, s.Source)
		reasons(e.hepErrors, s.Source, s.HEPErrors)
		counter(e.hepAuth, s.HEPAuthFailures, s.Source)
		reasons(e.hepNonSIP, s.Source, s.HEPNonSIP)
		if s.Type == "hep" && !strings.HasPrefix(s.Source, "udp://") {
			ch <- prometheus.MustNewConstMetric(e.hepConns, prometheus.GaugeValue, float64(s.HEPConns), s.Source)
			counter(e.hepConnsTotal, s.HEPConnsTotal, s.Source)
			counter(e.hepConnsRejected, s.HEPConnsRejected, s.Source)
		}
	}
}
