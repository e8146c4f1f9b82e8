package input

import (
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/cpu"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// Stats are the counters of one packet source: what the source counts
// itself and, in Decode, what its decoders count. Every field is updated
// with atomic operations and may be read at any time from another
// goroutine (a scrape); the zero value is ready to use.
type Stats struct {
	KernelDrops     atomic.Uint64 // packets the kernel dropped before the ring (live capture) or the socket (HEP over UDP)
	NotAllowedDrops atomic.Uint64 // HEP datagrams dropped: sender outside HEPConfig.AllowedNetworks
	HEPUDPReads     atomic.Uint64 // reads of the HEP UDP sockets, each a batch of one or more datagrams
	HEPConns        atomic.Int64  // HEP TCP connections open now (a gauge)
	HEPConnsTotal   atomic.Uint64 // HEP TCP connections accepted and served
	// HEPConnsRejected are the HEP TCP connections closed at once, not
	// served, by reason.
	HEPConnsRejected [numRejectReasons]atomic.Uint64
	// HEPConnsClosed are the served HEP TCP connections that have ended,
	// by reason: HEPConnsTotal is their sum plus HEPConns.
	HEPConnsClosed [numCloseReasons]atomic.Uint64

	Decode decode.Stats // the counters of the source's decoders
	// Workers are the counters of the decoders of a live interface's
	// capture workers ([Live]), one each, made by [Stats.NewWorkers]
	// before the source runs: each worker counts alone, on cache lines of
	// its own, and the source's decoding metrics are the sums of Decode
	// and of these ([decode.Stats.AddTo] at each scrape). Their Packets
	// are also exported one by one
	// (sip_exporter_capture_worker_packets_total).
	Workers []*decode.Stats
}

// NewWorkers makes st.Workers: n zeroed decoder counters, padded so that
// no two share a cache line, and returns them. Call it before the source
// runs and is collected.
func (st *Stats) NewWorkers(n int) []*decode.Stats {
	st.Workers = make([]*decode.Stats, n)
	for i := range st.Workers {
		st.Workers[i] = &new(paddedDecodeStats).s
	}
	return st.Workers
}

// paddedDecodeStats keeps a worker's counters off its neighbours' cache
// lines, wherever the allocator puts it.
type paddedDecodeStats struct {
	_ cpu.CacheLinePad
	s decode.Stats
	_ cpu.CacheLinePad
}

// Packets returns the packets the source's decoders have decoded, its
// workers' included.
func (st *Stats) Packets() uint64 {
	n := st.Decode.Packets.Load()
	for _, w := range st.Workers {
		n += w.Packets.Load()
	}
	return n
}

// RejectReason is why the HEP listener closed a TCP connection at once
// (label reason of sip_exporter_hep_tcp_connections_rejected_total).
type RejectReason int

// The reasons, in the order the listener checks them.
const (
	RejectNotAllowed     RejectReason = iota // the sender is outside HEPConfig.AllowedNetworks
	RejectPerAddress                         // HEPConfig.MaxConnsPerAddr connections from its address are open
	RejectMaxConnections                     // HEPConfig.MaxConns connections are open
	numRejectReasons
)

var rejectNames = [numRejectReasons]string{"not_allowed", "per_address", "max_connections"}

// String returns the label value, e.g. "per_address".
func (r RejectReason) String() string { return rejectNames[r] }

// CloseReason is why a served HEP TCP connection ended (label reason of
// sip_exporter_hep_tcp_connections_closed_total).
type CloseReason int

// The reasons.
const (
	CloseEOF       CloseReason = iota // the sender closed it (mid-packet: also a truncated decode error)
	CloseIdle                         // no byte for HEPConfig.ReadTimeout between packets
	CloseSlow                         // a packet (or the TLS handshake) not complete within HEPConfig.PacketTimeout of its first byte
	CloseBadPacket                    // a packet not HEP, not decoded or with a wrong auth key (counted by the decoder)
	CloseTooLarge                     // a length field above HEPConfig.MaxPacketBytes
	CloseHandshake                    // the TLS handshake failed
	CloseReadError                    // a read failed otherwise (a reset)
	CloseShutdown                     // the listener stopped
	numCloseReasons
)

var closeNames = [numCloseReasons]string{"eof", "idle", "slow", "bad_packet", "too_large", "tls_handshake", "read_error", "shutdown"}

// String returns the label value, e.g. "slow".
func (r CloseReason) String() string { return closeNames[r] }

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
		"Packets lost before decoding, by reason (kernel: the capture ring or socket buffer was full; not_allowed: a HEP datagram from outside --hep.allowed-networks).", []string{"source", "reason"}, nil)
	hepUDPReadsDesc = prometheus.NewDesc("sip_exporter_hep_udp_reads_total",
		"Reads of the HEP UDP sockets (recvmmsg), each a batch of one or more datagrams: hep_packets_received_total / this is the mean batch.", []string{"source"}, nil)
	hepConnsDesc = prometheus.NewDesc("sip_exporter_hep_tcp_connections",
		"HEP TCP connections open.", []string{"source"}, nil)
	hepConnsTotalDesc = prometheus.NewDesc("sip_exporter_hep_tcp_connections_total",
		"HEP TCP connections accepted.", []string{"source"}, nil)
	hepConnsRejectedDesc = prometheus.NewDesc("sip_exporter_hep_tcp_connections_rejected_total",
		"HEP TCP connections closed at once, not served, by reason (not_allowed: outside --hep.allowed-networks; per_address: --hep.max-connections-per-address open from its address; max_connections: --hep.max-connections open).", []string{"source", "reason"}, nil)
	workerPacketsDesc = prometheus.NewDesc("sip_exporter_capture_worker_packets_total",
		"Packets read by each capture worker of an interface (--capture.workers: AF_PACKET sockets of one fanout group, each with its own ring, goroutine and decoder; worker 0 to N-1): they add up to sip_exporter_packets_received_total and show how evenly the kernel's flow hash spreads the traffic.", []string{"source", "worker"}, nil)
	hepConnsClosedDesc = prometheus.NewDesc("sip_exporter_hep_tcp_connections_closed_total",
		"Served HEP TCP connections that ended, by reason (eof, idle: --hep.read-timeout, slow: a packet not complete within --hep.packet-timeout, bad_packet, too_large, tls_handshake, read_error, shutdown).", []string{"source", "reason"}, nil)
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
	for _, d := range []*prometheus.Desc{upDesc, droppedDesc, hepUDPReadsDesc, hepConnsDesc, hepConnsTotalDesc, hepConnsRejectedDesc, hepConnsClosedDesc, workerPacketsDesc} {
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
	dec := &st.Decode
	if len(st.Workers) > 0 {
		dec = new(decode.Stats) // the workers count apart: the source's figures are the sums
		st.Decode.AddTo(dec)
		for _, w := range st.Workers {
			w.AddTo(dec)
		}
	}
	dec.Collect(ch, s.Name)
	for i, w := range st.Workers {
		counter(workerPacketsDesc, w.Packets.Load(), s.Name, strconv.Itoa(i))
	}
	switch {
	case s.Type == "hep" && strings.HasPrefix(s.Name, "udp://"):
		counter(droppedDesc, st.NotAllowedDrops.Load(), s.Name, "not_allowed")
		counter(hepUDPReadsDesc, st.HEPUDPReads.Load(), s.Name)
	case s.Type == "hep":
		ch <- prometheus.MustNewConstMetric(hepConnsDesc, prometheus.GaugeValue, float64(st.HEPConns.Load()), s.Name)
		counter(hepConnsTotalDesc, st.HEPConnsTotal.Load(), s.Name)
		for r := range st.HEPConnsRejected {
			counter(hepConnsRejectedDesc, st.HEPConnsRejected[r].Load(), s.Name, RejectReason(r).String())
		}
		for r := range st.HEPConnsClosed {
			counter(hepConnsClosedDesc, st.HEPConnsClosed[r].Load(), s.Name, CloseReason(r).String())
		}
	}
}
