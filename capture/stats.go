package capture

import "sync/atomic"

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
	SkipIPFragment               // IP fragment while reassembly is disabled (FragmentConfig.MaxDatagrams 0)
	SkipNotSIP                   // UDP/TCP payload or SCTP user message is not SIP (RTP, HTTP, STUN, ...)
	SkipKeepalive                // CRLF keep-alive (RFC 5626 §3.5.1)
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

// Eviction is why a TCP flow's reassembly state was dropped before the flow
// ended (label `reason` of sip_exporter_tcp_flows_evicted_total).
type Eviction uint8

// The eviction reasons.
const (
	EvictLimit   Eviction = iota // table full (TCPConfig.MaxFlows): least recently seen flow dropped
	EvictTimeout                 // no segment for TCPConfig.FlowTimeout
	numEvictions
)

var evictionNames = [numEvictions]string{"limit", "timeout"}

// String returns the label value, e.g. "limit".
func (e Eviction) String() string { return evictionNames[e] }

// Stats are the counters of one packet source. Every field is updated with
// atomic operations by the source's own goroutine and may be read at any
// time from another (a scrape); the zero value is ready to use.
type Stats struct {
	Packets       atomic.Uint64 // packets read from the source
	Bytes         atomic.Uint64 // bytes of those packets as on the wire (original length)
	KernelDrops   atomic.Uint64 // packets the kernel dropped before the ring (live capture)
	Requests      atomic.Uint64 // SIP requests found
	Responses     atomic.Uint64 // SIP responses found
	TCPFlows      atomic.Int64  // TCP flows currently tracked (a gauge)
	TCPRetrans    atomic.Uint64 // TCP segments whose data had been seen already
	TCPOutOfOrder atomic.Uint64 // TCP segments held back and put in order
	TCPGaps       atomic.Uint64 // times a missing TCP segment never came and the stream skipped ahead

	IPReassembling atomic.Int64 // IP datagrams in the fragment reassembly table (a gauge)

	HEPPackets       atomic.Uint64 // HEP packets received (listener) or found in captured payloads
	HEPBytes         atomic.Uint64 // bytes of those HEP packets
	HEPAuthFailures  atomic.Uint64 // HEP packets dropped for a missing or wrong auth key
	HEPConns         atomic.Int64  // HEP TCP connections open now (a gauge)
	HEPConnsTotal    atomic.Uint64 // HEP TCP connections accepted
	HEPConnsRejected atomic.Uint64 // HEP TCP connections closed at once: too many open

	parseErrors [numParseErrors]atomic.Uint64
	skips       [numSkips]atomic.Uint64
	evictions   [numEvictions]atomic.Uint64
	hepErrors   [maxHEPErrorReasons]atomic.Uint64
	hepTypes    [256]atomic.Uint64
	encaps      [numEncaps]atomic.Uint64
	frag        fragStats
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

// Evictions calls fn for every TCP flow eviction reason with its count,
// zeros included.
func (s *Stats) Evictions(fn func(reason string, n uint64)) {
	for i := range s.evictions {
		fn(evictionNames[i], s.evictions[i].Load())
	}
}

// ParseError returns the count of one parse error reason.
func (s *Stats) ParseError(e ParseError) uint64 { return s.parseErrors[e].Load() }

// Skipped returns the count of one skip reason.
func (s *Stats) Skipped(r Skip) uint64 { return s.skips[r].Load() }

// Evicted returns the count of one eviction reason.
func (s *Stats) Evicted(r Eviction) uint64 { return s.evictions[r].Load() }

func (s *Stats) parseError(e ParseError) { s.parseErrors[e].Add(1) }
func (s *Stats) skip(r Skip)             { s.skips[r].Add(1) }
func (s *Stats) evict(r Eviction)        { s.evictions[r].Add(1) }
