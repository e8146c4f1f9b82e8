// Package defrag reassembles IPv4 and IPv6 fragments (RFC 791 §3.2, RFC
// 8200 §4.5) of one packet source. It sits below the decoder (package
// decode), which hands it each fragment ([Table.Add]) and decodes each
// datagram it completes like any other; it imports only the standard
// library and, for its metrics, client_golang.
//
// Fragments may come in any order, interleaved across datagrams; exact
// duplicates are dropped alone, other overlaps drop the datagram (RFC
// 5722), and the table is bounded in datagrams, bytes and time (capture
// time) by [Config]. Every fragment ends up in exactly one datagram or is
// counted once under a [Drop] reason in [Stats], exported by
// [Stats.Collect].
package defrag
