// Package capture is sip_exporter's capture engine: packet sources in, SIP
// messages with their [Origin] out. Its stages are packages of their own,
// and the flow runs one way through them:
//
//	input   sources: AF_PACKET live capture, pcap/pcapng/NetMon files,
//	        the HEP listener; each feeds a decoder of its own
//	decode  per source: link layer, IP, tunnels, SCTP, HEP; bytes to
//	        transport payloads, SIP scanned with package sip
//	stream  TCP reassembly and WebSocket framing, below decode
//	defrag  IP fragment reassembly, below decode
//	merge   (to come) the sources' messages in time order, copies removed
//
// and then, in package main, the counters and the transaction tracker of
// package collector, which never imports capture. A package imports only
// the stages below it; sip and hep are leaves that import only the
// standard library.
//
// Each stage declares the counters it increments in a Stats of its own and
// exports them from there as sip_exporter_ self-metrics, labelled by
// source; input.Collector collects them all, source by source.
//
// This package itself holds [Dedup], which removes copies of a message
// seen by several sources within a window, and [Origin].
package capture
