package input

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// Stats are the counters of one packet source: what the source counts
// itself and, in Decode, what its decoders count. Every field is updated
// with atomic operations and may be read at any time from another
// goroutine (a scrape); the zero value is ready to use.
type Stats struct {
	KernelDrops      atomic.Uint64 // packets the kernel dropped before the ring (live capture) or the socket (HEP over UDP)
	HEPConns         atomic.Int64  // HEP TCP connections open now (a gauge)
	HEPConnsTotal    atomic.Uint64 // HEP TCP connections accepted
	HEPConnsRejected atomic.Uint64 // HEP TCP connections closed at once: too many open

	Decode decode.Stats // the counters of the source's decoders
}

// Source is one packet source as its metrics name it.
type Source struct {
	Name  string      // label source: interface name, capture file path, or the HEP listener's udp://, tcp:// or tls:// address
	Type  string      // label type of sip_exporter_source_up: "interface", "pcap" or "hep"
	Up    atomic.Bool // reading now; set by whoever runs the source
	Stats Stats
}

// The metrics of [Source], labelled by source.
var (
	upDesc = prometheus.NewDesc("sip_exporter_source_up",
		"1 while the packet source is being read, 0 once it has ended or failed.", []string{"source", "type"}, nil)
	droppedDesc = prometheus.NewDesc("sip_exporter_packets_dropped_total",
		"Packets lost before decoding, by reason (kernel: the capture ring was full).", []string{"source", "reason"}, nil)
	hepConnsDesc = prometheus.NewDesc("sip_exporter_hep_tcp_connections",
		"HEP TCP connections open.", []string{"source"}, nil)
	hepConnsTotalDesc = prometheus.NewDesc("sip_exporter_hep_tcp_connections_total",
		"HEP TCP connections accepted.", []string{"source"}, nil)
	hepConnsRejectedDesc = prometheus.NewDesc("sip_exporter_hep_tcp_connections_rejected_total",
		"HEP TCP connections closed at once because --hep.max-connections were open.", []string{"source"}, nil)
)

// Collector is the [prometheus.Collector] of the sip_exporter_ self-metrics
// of packet sources: each source's own and those of its decoding stages
// (decode, stream, defrag), read from the counters where they are kept.
type Collector struct {
	sources []*Source
}

// NewCollector returns the collector of sources.
func NewCollector(sources ...*Source) *Collector {
	return &Collector{sources: sources}
}

// Describe implements [prometheus.Collector].
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, droppedDesc, hepConnsDesc, hepConnsTotalDesc, hepConnsRejectedDesc} {
		ch <- d
	}
	decode.Describe(ch)
}

// Collect implements [prometheus.Collector].
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.sources {
		s.collect(ch)
	}
}

// collect sends the metrics of s.
func (s *Source) collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	up := 0.0
	if s.Up.Load() {
		up = 1
	}
	st := &s.Stats
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, s.Name, s.Type)
	counter(droppedDesc, st.KernelDrops.Load(), s.Name, "kernel")
	st.Decode.Collect(ch, s.Name)
	if s.Type == "hep" && !strings.HasPrefix(s.Name, "udp://") {
		ch <- prometheus.MustNewConstMetric(hepConnsDesc, prometheus.GaugeValue, float64(st.HEPConns.Load()), s.Name)
		counter(hepConnsTotalDesc, st.HEPConnsTotal.Load(), s.Name)
		counter(hepConnsRejectedDesc, st.HEPConnsRejected.Load(), s.Name)
	}
}
