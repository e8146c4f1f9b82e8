// Package collector holds the Prometheus collectors of sip_exporter.
//
// [SIP] counts SIP messages into fixed arrays of atomic counters, indexed by
// status code and method, so that the per-message path is an index
// computation and one atomic add: no map, no lock, no allocation. At scrape
// time the arrays are turned into constant metrics (client_golang's advice
// for mirroring counts kept elsewhere), with reason and class taken from the
// response-code registry [sipstatus], never from the wire.
//
// With a peer table ([Peers], from the configuration file), every label set
// (node, peer, direction) has its own [Node] of counters. [SIP.Lookup]
// attributes a message by its transport addresses ([Peers.Match]: the
// source's peer, inbound, else the destination's, outbound, else "other")
// and finds the Node without lock or allocation: the peer table and the
// Nodes seen under it form one immutable view, replaced atomically on
// reload ([SIP.SetPeers]). Wire reason phrases are counted per node and
// code, bounded per code, when [PhrasesConfig] asks for it.
//
// [Tracker] follows SIP transactions and dialogs (RFC 3261 §12, §17) from
// small value events that readers push into a lock-free bounded queue, and
// counts retransmissions, session attempts, outcomes and timeouts, Reason
// causes (RFC 3326) and the RFC 6076 delays as histograms. It also keeps
// the established sessions until their BYE or a maximum age, the
// registered addresses of record until their expiry (RFC 3261 §10), and
// the last OPTIONS keepalive success and failure per peer, and counts
// initial INVITEs by STIR/SHAKEN attestation and verstat (stir.go). Its state
// machine (tracker.go, with its events in txevent.go) counts into plain
// atomic counters and imports no Prometheus package; its exposition
// (trackermetrics.go) turns them into metrics at scrape time. Its tables
// ([txTable]) each have one kind of expiring queue ([expiryQueue]: FIFO
// per timeout class, or ordered by expiry for registrations) with lazy
// deletion and compaction, so that only open entries count against the
// bounds.
//
// The exporter's own health (packets, bytes, drops, parse errors, TCP and
// IP reassembly) is exported by the capture stages that count it (the
// collector of package capture/input); this package does not depend on
// capture.
package collector
