// Package pipeline is the stage between the sources' decoders and the
// counters: it classifies each SIP message (its label set: node, peer,
// direction), shards it by Call-ID (REGISTER messages by their address of
// record), and runs, per shard on a goroutine of its own, the time-ordered
// merge of the shard's messages (capture/merge), the removal of copies
// (merge.Dedup), the counting (collector.Node.Shard) and the transaction
// tracker (collector.Trackers):
//
//	decoder -> Producer: classify, shard ─┬─> shard 0: merge -> dedup -> count, track
//	decoder -> Producer: classify, shard ─┼─> shard 1: merge -> dedup -> count, track
//	HEP connection -> ...                 ┘   ...
//
// Everything a transaction, a dialog or a registration needs shares a
// Call-ID (a registration its address of record), and the copies of a
// message share its bytes, so every shard is exact by itself and the
// counts, summed at scrape, are the same for any number of shards.
package pipeline
