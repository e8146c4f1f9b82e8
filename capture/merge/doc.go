// Package merge is the stage of the capture engine where every packet
// source's SIP messages meet: sources (package input) → a decoder per
// source (package decode) → merge → the counters and the transaction
// tracker (package collector, wired by main).
//
// A [Merger] takes one single-producer [Input] per source (per HEP
// connection) and hands its [Sink] one stream in capture-time order, with
// a watermark ([Sink.Advance]) that says how far time has got: the
// transaction tracker's time. Capture files read as fast as possible are
// [Exact] inputs, waited for as mergecap merges files; interfaces, HEP and
// files paced in real time are [Live] inputs, merged with a bounded
// lateness (the TPACKET_V3 block timeout and HEP agents' batching must fit
// in it). Later messages are still handed on, and counted as late. Each
// clock (a HEP agent) has its offset from the exporter's wall clock
// estimated and exported, and corrected when it is large, so that one
// skewed agent cannot move the others' time.
//
// [Dedup] then recognises copies of a message (the same bytes between the
// same addresses and ports, seen within a window below T1 = 500 ms): the
// first copy in merge order is counted, under its source's node.
//
// Pushing takes no lock and does not allocate; the merge sleeps while it
// has nothing to do and, with live inputs, wakes on a grid of ticks (50 ms
// at the default lateness) while messages wait, and once a second to move
// the watermark on. A live producer may hand on, per batch it reads, the
// time it read the batch ([Input.PushReceived]): then no message costs a
// reading of the wall clock.
package merge
