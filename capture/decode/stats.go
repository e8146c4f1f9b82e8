package decode

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sip-exporter/sip_exporter/capture/defrag"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// ParseError is one reason of the closed set under which a malformed packet
// or SIP message is counted (label `reason` of
// sip_exporter_parse_errors_total). The packet is dropped or, for a SIP
// header problem, still counted; the capture never stops.
type ParseError uint8

// The parse error reasons.
const (
	ErrLinkHeader    ParseError = iota // link-layer header truncated or malformed
	ErrIPHeader                        // IPv4/IPv6 header truncated or inconsistent
	ErrUDPHeader                       // UDP header truncated
	ErrTCPHeader                       // TCP header truncated or bad data offset
	ErrStatusLine                      // "SIP/2.0 " followed by a malformed status line
	ErrStatusCode                      // status code outside 100..699
	ErrRequestLine                     // malformed request line of a known method
	ErrHeader                          // malformed SIP header line
	ErrCSeq                            // malformed CSeq (message still counted, method OTHER)
	ErrContentLength                   // malformed Content-Length
	ErrTooLong                         // SIP header or message over its bound
	ErrTunnelHeader                    // GRE, ERSPAN, VXLAN or Geneve header truncated
	ErrEncapDepth                      // encapsulations nested deeper than MaxEncapDepth
	ErrSCTPHeader                      // SCTP common header truncated, or a chunk shorter than its header or running past the packet
	// WebSocket frame breaking RFC 6455 §5.2: reserved opcode or RSV bit,
	// fragmented or over-long control frame, stray continuation frame
	ErrWebSocketFrame
	numParseErrors
)

var parseErrorNames = [numParseErrors]string{
	"link_header", "ip_header", "udp_header", "tcp_header",
	"status_line", "status_code", "request_line", "header", "cseq",
	"content_length", "too_long", "tunnel_header", "encapsulation_depth",
	"sctp_header",
	"websocket_frame",
}

// String returns the label value, e.g. "status_code".
func (e ParseError) String() string { return parseErrorNames[e] }

// Skip is one reason of the closed set under which a packet that holds no SIP
// is counted (label `reason` of sip_exporter_packets_skipped_total). Skipping
// is not an error.
type Skip uint8

// The skip reasons.
const (
	SkipNotIP        Skip = iota // link payload is not IPv4/IPv6 (ARP, LLDP, ...)
	SkipLinkType                 // link type or encapsulation not decoded (yet)
	SkipIPProtocol               // IP payload is not UDP, TCP, SCTP or a tunnel (ICMP, ESP, OSPF, ...)
	SkipIPFragment               // IP fragment while reassembly is disabled (defrag.Config.MaxDatagrams 0)
	SkipNotSIP                   // UDP/TCP payload or SCTP user message is not SIP (RTP, HTTP, STUN, ...)
	SkipKeepalive                // CRLF keep-alive (RFC 5626 §3.5.1): a datagram or message of CR and LF bytes only, or an empty datagram
	SkipSCTPControl              // SCTP packet without user data: INIT, SACK, HEARTBEAT, ... chunks only
	SkipSCTPFragment             // SCTP DATA/I-DATA chunk with part of a user message (not reassembled)
	// WebSocket message compressed with permessage-deflate (RFC 7692,
	// RSV1 set): it holds SIP that is not decoded
	SkipWebSocketCompressed
	numSkips
)

var skipNames = [numSkips]string{
	"not_ip", "link_type", "ip_protocol", "ip_fragment", "not_sip", "keepalive",
	"sctp_control", "sctp_fragment",
	"websocket_compressed",
}

// String returns the label value, e.g. "not_sip".
func (s Skip) String() string { return skipNames[s] }

// Stats are the counters of one packet source's decoders: their own and,
// in Stream and Fragments, those of their TCP and IP reassembly. Every
// field is updated with atomic operations by the source's own goroutine
// and may be read at any time from another (a scrape); the zero value is
// ready to use. Several decoders may count into one Stats (the HEP
// listener's TCP connections).
type Stats struct {
	Packets   atomic.Uint64 // packets decoded ([Decoder.Packet])
	Bytes     atomic.Uint64 // bytes of those packets as on the wire (original length)
	Requests  atomic.Uint64 // SIP requests found
	Responses atomic.Uint64 // SIP responses found

	HEPPackets      atomic.Uint64 // HEP packets received (listener) or found in captured payloads
	HEPBytes        atomic.Uint64 // bytes of those HEP packets
	HEPAuthFailures atomic.Uint64 // HEP packets dropped for a missing or wrong auth key

	Stream    stream.Stats // TCP and WebSocket stream reassembly
	Fragments defrag.Stats // IP fragment reassembly

	parseErrors [numParseErrors]atomic.Uint64
	skips       [numSkips]atomic.Uint64
	hepErrors   [maxHEPErrorReasons]atomic.Uint64
	hepTypes    [256]atomic.Uint64
	encaps      [numEncaps]atomic.Uint64
}

// AddTo adds every counter and gauge of s, those of Stream and Fragments
// included, to dst: the sum of several decoders' statistics counted apart
// (workers of one source, so that they do not share a cache line).
func (s *Stats) AddTo(dst *Stats) {
	for _, c := range [...][2]*atomic.Uint64{{&s.Packets, &dst.Packets}, {&s.Bytes, &dst.Bytes},
		{&s.Requests, &dst.Requests}, {&s.Responses, &dst.Responses}, {&s.HEPPackets, &dst.HEPPackets},
		{&s.HEPBytes, &dst.HEPBytes}, {&s.HEPAuthFailures, &dst.HEPAuthFailures}} {
		c[1].Add(c[0].Load())
	}
	addAll(dst.parseErrors[:], s.parseErrors[:])
	addAll(dst.skips[:], s.skips[:])
	addAll(dst.hepErrors[:], s.hepErrors[:])
	addAll(dst.hepTypes[:], s.hepTypes[:])
	addAll(dst.encaps[:], s.encaps[:])
	s.Stream.AddTo(&dst.Stream)
	s.Fragments.AddTo(&dst.Fragments)
}

func addAll(dst, src []atomic.Uint64) {
	for i := range src {
		dst[i].Add(src[i].Load())
	}
}

// ParseErrors calls fn for every parse error reason, with its count (zeros
// included, so that every series exists from the start).
func (s *Stats) ParseErrors(fn func(reason string, n uint64)) {
	for i := range s.parseErrors {
		fn(parseErrorNames[i], s.parseErrors[i].Load())
	}
}

// Skips calls fn for every skip reason with its count, zeros included.
func (s *Stats) Skips(fn func(reason string, n uint64)) {
	for i := range s.skips {
		fn(skipNames[i], s.skips[i].Load())
	}
}

// ParseError returns the count of one parse error reason.
func (s *Stats) ParseError(e ParseError) uint64 { return s.parseErrors[e].Load() }

// Skipped returns the count of one skip reason.
func (s *Stats) Skipped(r Skip) uint64 { return s.skips[r].Load() }

func (s *Stats) parseError(e ParseError) { s.parseErrors[e].Add(1) }
func (s *Stats) skip(r Skip)             { s.skips[r].Add(1) }

// sipParseError is the reason of an error of sip.Parse or sip.FrameLength
// other than sip.ErrNotSIP; an unknown one is a header error.
func sipParseError(err error) ParseError {
	switch err {
	case sip.ErrStatusLine:
		return ErrStatusLine
	case sip.ErrStatusCode:
		return ErrStatusCode
	case sip.ErrRequestLine:
		return ErrRequestLine
	case sip.ErrCSeq:
		return ErrCSeq
	case sip.ErrContentLength:
		return ErrContentLength
	case sip.ErrTooLong:
		return ErrTooLong
	}
	return ErrHeader
}

// The metrics of [Stats], labelled by packet source.
var (
	packetsDesc = prometheus.NewDesc("sip_exporter_packets_received_total",
		"Packets read from the source.", []string{"source"}, nil)
	bytesDesc = prometheus.NewDesc("sip_exporter_bytes_received_total",
		"Bytes of the packets read from the source, as long as they were on the wire.", []string{"source"}, nil)
	skippedDesc = prometheus.NewDesc("sip_exporter_packets_skipped_total",
		"Packets that hold no SIP message, by reason; not an error.", []string{"source", "reason"}, nil)
	parseErrorsDesc = prometheus.NewDesc("sip_exporter_parse_errors_total",
		"Malformed packets or SIP messages, by reason. Start-line errors drop the message; header errors are counted and the message too.",
		[]string{"source", "reason"}, nil)
	encapsDesc = prometheus.NewDesc("sip_exporter_packets_encapsulated_total",
		"Packets decoded through an encapsulation, by kind (vlan, pppoe, mpls, gre, erspan, vxlan, geneve, ip_in_ip, ppp: PPP in PPTP's GRE; websocket counts WebSocket messages); a packet counts once per layer.",
		[]string{"source", "encapsulation"}, nil)
	hepPacketsDesc = prometheus.NewDesc("sip_exporter_hep_packets_received_total",
		"HEP packets received by the listener (source udp://, tcp://, tls://) or found inside captured payloads.", []string{"source"}, nil)
	hepBytesDesc = prometheus.NewDesc("sip_exporter_hep_bytes_received_total",
		"Bytes of the HEP packets received.", []string{"source"}, nil)
	hepErrorsDesc = prometheus.NewDesc("sip_exporter_hep_decode_errors_total",
		"HEP packets that could not be decoded, by reason; on TCP the connection is closed.", []string{"source", "reason"}, nil)
	hepAuthDesc = prometheus.NewDesc("sip_exporter_hep_auth_failures_total",
		"HEP packets dropped because their auth key chunk is missing or wrong.", []string{"source"}, nil)
	hepNonSIPDesc = prometheus.NewDesc("sip_exporter_hep_non_sip_packets_total",
		"HEP packets of a protocol type other than SIP (1), ignored, by type in decimal (5: RTCP, 100: log, ...).",
		[]string{"source", "protocol_type"}, nil)
)

// Describe sends the descriptors of the metrics that [Stats.Collect] sends,
// those of the stream and defrag stages included.
func Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{packetsDesc, bytesDesc, skippedDesc, parseErrorsDesc, encapsDesc,
		hepPacketsDesc, hepBytesDesc, hepErrorsDesc, hepAuthDesc, hepNonSIPDesc} {
		ch <- d
	}
	stream.Describe(ch)
	defrag.Describe(ch)
}

// Collect sends the counters as the metrics of the packet source named
// source (label source), those of Stream and Fragments included. Every
// reason of a closed set is sent, zeros included; HEP protocol types only
// once seen.
func (s *Stats) Collect(ch chan<- prometheus.Metric, source string) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(packetsDesc, s.Packets.Load(), source)
	counter(bytesDesc, s.Bytes.Load(), source)
	for i := range s.skips {
		counter(skippedDesc, s.skips[i].Load(), source, skipNames[i])
	}
	for i := range s.parseErrors {
		counter(parseErrorsDesc, s.parseErrors[i].Load(), source, parseErrorNames[i])
	}
	for i := range s.encaps {
		counter(encapsDesc, s.encaps[i].Load(), source, encapNames[i])
	}
	s.Stream.Collect(ch, source)
	s.Fragments.Collect(ch, source)
	counter(hepPacketsDesc, s.HEPPackets.Load(), source)
	counter(hepBytesDesc, s.HEPBytes.Load(), source)
	for i, r := range hepErrorReasons {
		counter(hepErrorsDesc, s.hepErrors[i].Load(), source, r)
	}
	counter(hepAuthDesc, s.HEPAuthFailures.Load(), source)
	for i := range s.hepTypes {
		if n := s.hepTypes[i].Load(); n > 0 {
			counter(hepNonSIPDesc, n, source, strconv.Itoa(i))
		}
	}
}
