// Package capture is sip_exporter's capture engine: packet sources in, one
// time-ordered stream of SIP messages out. Its stages are packages of
// their own, and the flow runs one way through them:
//
//	input   sources: AF_PACKET live capture, pcap/pcapng/NetMon files,
//	        the HEP listener; each feeds a decoder of its own
//	decode  per source: link layer, IP, tunnels, SCTP, HEP; bytes to
//	        transport payloads, SIP scanned with package sip
//	stream  TCP reassembly and WebSocket framing, below decode
//	defrag  IP fragment reassembly, below decode
//	merge   every source's messages in capture-time order (files waited
//	        for, live sources with a bounded lateness, a clock per HEP
//	        agent), then copies removed (Dedup)
//
// and then, in package main, the counters and the transaction tracker of
// package collector, which never imports capture: main turns each decoded
// message into a small value (label set, status code, method, hashes) on
// the source's goroutine and pushes it into the merge, whose one goroutine
// counts and tracks. A package imports only the stages below it; sip, hep
// and stir (the STIR/SHAKEN fields of an INVITE) are leaves that import
// only the standard library.
//
// Each stage declares the counters it increments in a Stats of its own and
// exports them from there as sip_exporter_ self-metrics, labelled by
// source; input.Collector collects them all, source by source, and the
// merge collects its own (late and dropped messages, clock offsets).
package capture
