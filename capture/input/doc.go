// Package input holds the packet sources of the capture engine, the first
// stage of the flow: sources → decode (one decoder per source) → merge →
// the collectors.
//
//   - [Live] captures a network interface with an AF_PACKET TPACKET_V3
//     ring (pure Go, no libpcap), optionally behind a classic BPF filter
//     ([ParseBPF] reads `tcpdump -ddd` output); kernel drops are counted.
//   - [ReadFile] reads pcap, pcapng (gzip too) and NetMon 2.x capture files,
//     as fast as possible or at the pace they were captured, once or looped.
//   - [ListenHEP] receives HEP over UDP and TCP (optionally TLS) from SIP
//     servers and capture agents (Kamailio siptrace, OpenSIPS proto_hep,
//     FreeSWITCH, Asterisk res_hep, heplify, captagent), with bounded
//     connections; UDP is read in batches (recvmmsg), on one socket or
//     on several sharing the port with SO_REUSEPORT, each with its own
//     decoder, outside the runtime's poller: a worker whose read found
//     little waits for the next tick of [HEPConfig.ReadInterval] (the
//     socket holds what comes meanwhile) and reads the wall clock once
//     per batch, so that a moderate source costs wake-ups per interval,
//     not per datagram; datagrams the kernel drops are counted.
//
// Each source hands its packets to a [decode.Decoder] of its own and counts
// what happens before decoding in its [Stats]; Stats.Decode holds the
// counters of its decoders. A [Source] names a source for its metrics, and
// [Collector] exports every source's self-metrics (its own and those of
// the decode, stream and defrag stages, from where they are counted) to
// Prometheus.
package input
