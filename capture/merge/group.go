package merge

import (
	"context"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Group is a merge split into shards: one [Merger] per shard, each with
// its own goroutine and sink, that share their packet sources and
// counters. A producer has one input per shard ([Group.Inputs]) and
// pushes each message into the shard of its choice (the pipeline's: by
// Call-ID); each shard merges its own messages in time order, so that a
// sink that needs only the messages of one shard (a transaction, a
// dialog) sees them exactly as one merge of all would hand them on.
type Group[E any] struct {
	shards  []*Merger[E]
	sources *sourceSet
}

// NewGroup returns a group of len(sinks) shards (1 to 64), shard i handing
// its stream to sinks[i]. It fails when cfg is out of range, as [New].
func NewGroup[E any](cfg Config, sinks []Sink[E]) (*Group[E], error) {
	if len(sinks) < 1 || len(sinks) > 64 {
		return nil, fmt.Errorf("merge shards %d: must be 1 to 64", len(sinks))
	}
	if _, err := New(cfg, sinks[0]); err != nil {
		return nil, err
	}
	g := &Group[E]{sources: &sourceSet{byName: map[string]*Source{}}}
	for _, sink := range sinks {
		g.shards = append(g.shards, newMerger(cfg, sink, g.sources))
	}
	return g, nil
}

// Len returns the number of shards.
func (g *Group[E]) Len() int { return len(g.shards) }

// Shard returns the merger of shard i.
func (g *Group[E]) Shard(i int) *Merger[E] { return g.shards[i] }

// Source returns the counters of the named packet source, shared by the
// shards, made on first use.
func (g *Group[E]) Source(name string) *Source { return g.sources.source(name) }

// Inputs adds one input of kind k counting into s to every shard (see
// [Merger.Input]) and returns them by shard.
func (g *Group[E]) Inputs(s *Source, k Kind, size int) []*Input[E] {
	ins := make([]*Input[E], len(g.shards))
	for i, m := range g.shards {
		ins[i] = m.Input(s, k, size)
	}
	return ins
}

// Seal seals every shard ([Merger.Seal]).
func (g *Group[E]) Seal() {
	for _, m := range g.shards {
		m.Seal()
	}
}

// Run runs every shard on a goroutine of its own ([Merger.Run]) and
// returns when all have returned.
func (g *Group[E]) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range g.shards {
		wg.Go(func() { m.Run(ctx) })
	}
	wg.Wait()
}

// Describe implements [prometheus.Collector].
func (g *Group[E]) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(g, ch)
}

// Collect implements [prometheus.Collector]: the sources' counters, and
// the messages pending in all shards.
func (g *Group[E]) Collect(ch chan<- prometheus.Metric) {
	g.sources.collect(ch)
	var pending int64
	for _, m := range g.shards {
		pending += m.pending.Load()
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending))
}
