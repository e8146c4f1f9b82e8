package defrag

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are the counters of the reassembly [Table] of one packet source.
// The table updates them with atomic operations; they may be read at any
// time from another goroutine (a scrape). The zero value is ready to use.
type Stats struct {
	Reassembling atomic.Int64 // datagrams in the table now (a gauge), failed ones included until their timeout

	reassembled [numFamilies]atomic.Uint64
	dropped     [numFamilies][numDrops]atomic.Uint64
}

// Reassembled calls fn for each IP family with the number of datagrams
// reassembled from fragments, zeros included.
func (s *Stats) Reassembled(fn func(family string, n uint64)) {
	for f := range s.reassembled {
		fn(familyNames[f], s.reassembled[f].Load())
	}
}

// Drops calls fn for each IP family and drop reason with the number of
// fragments dropped, zeros included.
func (s *Stats) Drops(fn func(family, reason string, n uint64)) {
	for f := range s.dropped {
		for r := range s.dropped[f] {
			fn(familyNames[f], dropNames[r], s.dropped[f][r].Load())
		}
	}
}

// DatagramsReassembled returns the datagrams of family f reassembled from
// fragments.
func (s *Stats) DatagramsReassembled(f Family) uint64 { return s.reassembled[f].Load() }

// FragmentsDropped returns the fragments of family f dropped for reason r.
func (s *Stats) FragmentsDropped(f Family, r Drop) uint64 { return s.dropped[f][r].Load() }

// The metrics of [Stats], labelled by packet source.
var (
	reassemblingDesc = prometheus.NewDesc("sip_exporter_ip_reassembly_datagrams",
		"IP datagrams whose fragments are being collected (including failed ones kept until their timeout to drop late fragments).",
		[]string{"source"}, nil)
	reassembledDesc = prometheus.NewDesc("sip_exporter_ip_datagrams_reassembled_total",
		"IP datagrams reassembled from fragments, by family (ipv4, ipv6).",
		[]string{"source", "family"}, nil)
	droppedDesc = prometheus.NewDesc("sip_exporter_ip_fragments_dropped_total",
		"IP fragments dropped without making a datagram, by family and reason "+
			"(incomplete: missing fragments at the timeout, overlap, duplicate, too_large, limit: too many datagrams in progress, truncated: cut by the snap length).",
		[]string{"source", "family", "reason"}, nil)
)

// Describe sends the descriptors of the metrics that [Stats.Collect] sends.
func Describe(ch chan<- *prometheus.Desc) {
	ch <- reassemblingDesc
	ch <- reassembledDesc
	ch <- droppedDesc
}

// Collect sends the counters as the metrics of the packet source named
// source (label source), zeros included.
func (s *Stats) Collect(ch chan<- prometheus.Metric, source string) {
	ch <- prometheus.MustNewConstMetric(reassemblingDesc, prometheus.GaugeValue, float64(s.Reassembling.Load()), source)
	for f := range s.reassembled {
		ch <- prometheus.MustNewConstMetric(reassembledDesc, prometheus.CounterValue, float64(s.reassembled[f].Load()), source, familyNames[f])
	}
	for f := range s.dropped {
		for r := range s.dropped[f] {
			ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.dropped[f][r].Load()), source, familyNames[f], dropNames[r])
		}
	}
}

// AddTo adds every counter and gauge of s to dst: the sum of several
// tables' statistics (the workers of one source).
func (s *Stats) AddTo(dst *Stats) {
	dst.Reassembling.Add(s.Reassembling.Load())
	for f := range s.reassembled {
		dst.reassembled[f].Add(s.reassembled[f].Load())
		for r := range s.dropped[f] {
			dst.dropped[f][r].Add(s.dropped[f][r].Load())
		}
	}
}
