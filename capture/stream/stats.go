package stream

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Eviction is why a TCP flow's reassembly state was dropped before the flow
// ended (label `reason` of sip_exporter_tcp_flows_evicted_total).
type Eviction uint8

// The eviction reasons.
const (
	EvictLimit   Eviction = iota // table full (Config.MaxFlows): least recently seen flow dropped
	EvictTimeout                 // no segment for Config.FlowTimeout
	// the table's buffers over Config.MaxMemoryBytes: a least recently
	// active flow holding a partial message or held-back segments dropped
	EvictMemory
	numEvictions
)

var evictionNames = [numEvictions]string{"limit", "timeout", "memory"}

// String returns the label value, e.g. "limit".
func (e Eviction) String() string { return evictionNames[e] }

// Stats are the counters of the [Table] of one packet source. The table
// updates them with atomic operations; they may be read at any time from
// another goroutine (a scrape). The zero value is ready to use.
type Stats struct {
	Flows         atomic.Int64  // flow directions tracked now (a gauge)
	Retransmitted atomic.Uint64 // segments whose data had been seen already
	OutOfOrder    atomic.Uint64 // segments held back and put in order
	Gaps          atomic.Uint64 // times a missing segment never came and the stream skipped ahead
	Resyncs       atomic.Uint64 // segments behind the stream's first byte or implausibly far from the next byte expected, where the flow started again, or going on the stream left there, where it went back
	Memory        atomic.Int64  // bytes of partial messages and held-back segments now (a gauge)

	evictions [numEvictions]atomic.Uint64
}

// Evictions calls fn for every flow eviction reason with its count, zeros
// included.
func (s *Stats) Evictions(fn func(reason string, n uint64)) {
	for i := range s.evictions {
		fn(evictionNames[i], s.evictions[i].Load())
	}
}

// Evicted returns the count of one eviction reason.
func (s *Stats) Evicted(r Eviction) uint64 { return s.evictions[r].Load() }

func (s *Stats) evict(r Eviction) { s.evictions[r].Add(1) }

// The metrics of [Stats], labelled by packet source.
var (
	flowsDesc = prometheus.NewDesc("sip_exporter_tcp_flows",
		"TCP flow directions whose stream is being reassembled.", []string{"source"}, nil)
	evictedDesc = prometheus.NewDesc("sip_exporter_tcp_flows_evicted_total",
		"TCP flows forgotten before they ended, by reason (limit: table full, timeout: idle, memory: over --capture.tcp-max-memory).", []string{"source", "reason"}, nil)
	retransDesc = prometheus.NewDesc("sip_exporter_tcp_segments_retransmitted_total",
		"TCP segments carrying data seen already; the data is counted once.", []string{"source"}, nil)
	outOfOrderDesc = prometheus.NewDesc("sip_exporter_tcp_segments_out_of_order_total",
		"TCP segments that arrived ahead of missing data.", []string{"source"}, nil)
	gapsDesc = prometheus.NewDesc("sip_exporter_tcp_stream_gaps_total",
		"Times missing TCP data never arrived and reassembly skipped ahead to the next SIP message.", []string{"source"}, nil)
	resyncsDesc = prometheus.NewDesc("sip_exporter_tcp_stream_resyncs_total",
		"TCP segments that cannot be a retransmission or out of order, behind the first byte seen of their flow's stream or over 1 MiB from its next byte (a new connection on the same ports whose SYN was not captured, bytes sent again from before the capture), or that go on the stream left at such a segment: the flow started again there.", []string{"source"}, nil)
	memoryDesc = prometheus.NewDesc("sip_exporter_tcp_reassembly_bytes",
		"Bytes held by TCP reassembly: partial messages and held-back segments, bounded by --capture.tcp-max-memory.", []string{"source"}, nil)
)

// Describe sends the descriptors of the metrics that [Stats.Collect] sends.
func Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{flowsDesc, evictedDesc, retransDesc, outOfOrderDesc, gapsDesc, resyncsDesc, memoryDesc} {
		ch <- d
	}
}

// Collect sends the counters as the metrics of the packet source named
// source (label source), zeros included.
func (s *Stats) Collect(ch chan<- prometheus.Metric, source string) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(flowsDesc, prometheus.GaugeValue, float64(s.Flows.Load()), source)
	for i := range s.evictions {
		counter(evictedDesc, s.evictions[i].Load(), source, evictionNames[i])
	}
	counter(retransDesc, s.Retransmitted.Load(), source)
	counter(outOfOrderDesc, s.OutOfOrder.Load(), source)
	counter(gapsDesc, s.Gaps.Load(), source)
	counter(resyncsDesc, s.Resyncs.Load(), source)
	ch <- prometheus.MustNewConstMetric(memoryDesc, prometheus.GaugeValue, float64(s.Memory.Load()), source)
}

// AddTo adds every counter and gauge of s to dst: the sum of several
// tables' statistics (the workers of one source).
func (s *Stats) AddTo(dst *Stats) {
	dst.Flows.Add(s.Flows.Load())
	dst.Retransmitted.Add(s.Retransmitted.Load())
	dst.OutOfOrder.Add(s.OutOfOrder.Load())
	dst.Gaps.Add(s.Gaps.Load())
	dst.Resyncs.Add(s.Resyncs.Load())
	dst.Memory.Add(s.Memory.Load())
	for i := range s.evictions {
		dst.evictions[i].Add(s.evictions[i].Load())
	}
}
