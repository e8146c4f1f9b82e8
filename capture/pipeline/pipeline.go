package pipeline

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/defrag"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/merge"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
	"github.com/sip-exporter/sip_exporter/collector"
)

// Config configures a [Pipeline]: what the exporter's flags give it.
type Config struct {
	TCP       stream.Config
	HEP       decode.HEPConfig
	Fragments defrag.Config
	// NodeName is the node of the sources without their own
	// (--capture.node-name).
	NodeName string
	// MaxNodes bounds the node label values (--hep.max-nodes), at least 1.
	MaxNodes int
	// DedupWindow: copies of a message within it are counted once
	// (--capture.dedup-window); 0 disables. It must be 0 or at least the
	// merge's skew window ([merge.Config.SkewWindow]).
	DedupWindow time.Duration
	// DedupSlots is the size of the dedup table, shared out among the
	// shards (each gets its share, a power of two, at least 4,096: it sees
	// its share of the messages); 0 for [merge.DefaultDedupSlots].
	DedupSlots int
	// Merge configures the time-ordered merge (--capture.max-lateness); the
	// zero value means [merge.DefaultConfig].
	Merge merge.Config
	// Peers, when not nil (--config.file), adds the peer and direction
	// labels and attributes messages to peers.
	Peers *collector.Peers
	// MaxPhrases counts wire reason phrases, at most this many per status
	// code (--collector.response-phrases-per-code); 0 counts none.
	MaxPhrases int
	// Tx configures the transaction tracker; its bounds are those of all
	// shards together.
	Tx collector.TrackerConfig
	// NoTx turns the transaction tracker off (--no-sip.transactions).
	NoTx bool
	// Shards is the number of shards (--capture.shards), 1 to 64; 0 means 1.
	Shards int
	// Offline is for a pipeline whose metrics are not served (the report
	// command): each message's Call-ID is left out of what the counters
	// and the tracker get, so that no exemplar is recorded (by default
	// the failure series and the delay histograms carry one:
	// collector/README.md, "Exemplars"), and the delay histograms keep no
	// native buckets ([collector.TrackerConfig.ClassicHistograms]).
	Offline bool
}

// DefaultDedupWindow is the default of [Config.DedupWindow]: the largest
// skew window of the time model ([merge.Config.SkewWindow]), so that it is
// valid whatever the lateness.
const DefaultDedupWindow = 200 * time.Millisecond

// DefaultConfig returns the defaults of the flags, with one shard.
func DefaultConfig() Config {
	dc := decode.DefaultConfig()
	return Config{TCP: dc.TCP, HEP: dc.HEP, Fragments: dc.Fragments, MaxNodes: 256, DedupWindow: DefaultDedupWindow,
		Merge: merge.DefaultConfig(), Tx: collector.DefaultTrackerConfig(), Shards: 1}
}

// DecoderConfig returns the configuration of the sources' decoders.
func (c Config) DecoderConfig() decode.Config {
	dc := decode.DefaultConfig()
	dc.TCP, dc.HEP, dc.Fragments = c.TCP, c.HEP, c.Fragments
	return dc
}

// message is one SIP message on its way from its source's decoder through
// the time-ordered merge to the counters: what counting it needs, already
// classified and hashed where it was decoded (on the source's goroutine),
// with no pointer into packet memory. X is what it carries for the
// exemplars (exemplarID). The fields are in the order that packs them:
// 144 bytes with the Call-ID, 80 without.
type message[X exemplarID] struct {
	id     X
	phrase int16            // collector.Node.PhraseIndex; -1 when not counted
	code   uint16           // status code of a response, 0 for a request
	method collector.Method // request method, or a response's CSeq method
	hasTx  bool             // tx is filled in: the message has a Call-ID and CSeq
	tx     collector.TxEvent
	dedup  uint64 // merge.Dedup key: bytes, addresses, ports, IPv4 ID
}

// exemplarID is what a message carries for the exemplars of the series it
// counts in: its Call-ID (withCallID), or nothing (noCallID, with
// [Config.Offline]: the report command), so that a message that gives
// none is the smaller to queue.
type exemplarID interface{ withCallID | noCallID }

// withCallID is a message's Call-ID as seen on the wire, cut to
// [collector.CallIDBytes].
type withCallID struct{ id collector.CallID }

// noCallID carries nothing.
type noCallID struct{}

// setCallID keeps id in x, when x keeps one.
func setCallID[X exemplarID](x *X, id []byte) {
	if w, ok := any(x).(*withCallID); ok {
		w.id.Set(id)
	}
}

// callID returns the Call-ID x keeps, nil when it keeps none.
func callID[X exemplarID](x *X) *collector.CallID {
	if w, ok := any(x).(*withCallID); ok {
		return &w.id
	}
	return nil
}

// Pipeline connects the sources' decoders, through the sharded
// time-ordered merge and dedup, to the SIP collector and the transaction
// tracker (see the package documentation).
type Pipeline struct {
	cfg    Config
	sip    *collector.SIP
	tx     *collector.Trackers // nil with NoTx
	merge  group               // of message[withCallID], or of message[noCallID] when Offline
	shards []*shard
	keys   *merge.Dedup // computes the dedup keys of every shard; nil when disabled
	seed   maphash.Seed // of the hash of the bytes of a message without a Call-ID, which picks its shard
	// nodes are the nodes of interface and file sources by value, made
	// when the sources are set up (SourceNode).
	nodesMu sync.Mutex
	nodes   map[string]*SourceNode
}

// group is what the pipeline uses of its merge.Group, whatever its
// message type, and what that type decides: the producers' way in.
type group interface {
	prometheus.Collector
	Source(name string) *merge.Source
	Seal()
	Run(ctx context.Context)
	// inputs returns pr's merge inputs, one per shard, and its handler.
	inputs(pr *Producer, src *merge.Source, k merge.Kind, queue int) ([]inputCtl, func(*decode.Origin, *sip.Message))
	// observe is Pipeline.Observe.
	observe(sn *SourceNode, o *decode.Origin, m *sip.Message)
}

// inputCtl is what a producer does with its merge inputs besides pushing.
type inputCtl interface {
	Progress(ctx context.Context, t int64) bool
	Close()
}

// stage is the merge group of the pipeline's message type.
type stage[X exemplarID] struct {
	*merge.Group[message[X]]
	p *Pipeline
}

// shard is one shard's stage after its merge: dedup, counting, tracking.
// It runs on its merge's goroutine.
type shard struct {
	i     int
	dedup *merge.Dedup       // nil when disabled
	tx    *collector.Tracker // nil with NoTx
}

// sink is a shard as the merge of message type X hands it messages.
type sink[X exemplarID] struct{ *shard }

// New returns a pipeline, or an error naming the flag of a value out of
// range.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Shards == 0 {
		cfg.Shards = 1
	}
	if cfg.Shards < 1 || cfg.Shards > 64 {
		return nil, fmt.Errorf("--capture.shards %d: must be 1 to 64", cfg.Shards)
	}
	if _, err := decode.New(cfg.DecoderConfig(), new(decode.Stats), nil); err != nil {
		return nil, err
	}
	if cfg.MaxNodes < 1 {
		return nil, fmt.Errorf("--hep.max-nodes %d: must be at least 1", cfg.MaxNodes)
	}
	c, err := collector.NewSIPWithConfig(collector.SIPConfig{
		MaxNodes: cfg.MaxNodes,
		Peers:    cfg.Peers,
		Phrases:  collector.PhrasesConfig{MaxPerCode: cfg.MaxPhrases},
		Shards:   cfg.Shards,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Merge == (merge.Config{}) {
		cfg.Merge = merge.DefaultConfig()
	}
	p := &Pipeline{cfg: cfg, sip: c, seed: maphash.MakeSeed()}
	if cfg.DedupWindow < 0 {
		return nil, fmt.Errorf("--capture.dedup-window %v: must not be negative", cfg.DedupWindow)
	}
	// The time model (merge.Config.SkewWindow): copies from two clocks the
	// merge leaves uncorrected may be this far apart.
	if w := cfg.Merge.SkewWindow(); cfg.DedupWindow > 0 && cfg.DedupWindow < w {
		return nil, fmt.Errorf("--capture.dedup-window %v: must be 0 or at least %v, the skew two clocks may keep uncorrected (a fifth of --capture.max-lateness %v, at most 200ms), or copies from two HEP agents or taps would be counted twice", cfg.DedupWindow, w, cfg.Merge.Lateness)
	}
	if !cfg.NoTx {
		tcfg := cfg.Tx
		tcfg.SIP = c
		tcfg.EarlyResponseWindow = cfg.Merge.SkewWindow() // the time model: clocks left uncorrected
		tcfg.ClassicHistograms = tcfg.ClassicHistograms || cfg.Offline
		if p.tx, err = collector.NewTrackers(tcfg, cfg.Shards); err != nil {
			return nil, fmt.Errorf("--sip.max-transactions/--sip.invite-timeout: %w", err)
		}
	}
	for i := range cfg.Shards {
		s := &shard{i: i}
		if cfg.DedupWindow > 0 {
			if s.dedup, err = merge.NewDedup(cfg.DedupWindow, dedupShare(cfg.DedupSlots, cfg.Shards)); err != nil {
				return nil, fmt.Errorf("--capture.dedup-window: %w", err)
			}
		}
		if p.tx != nil {
			s.tx = p.tx.Shard(i)
		}
		p.shards = append(p.shards, s)
	}
	p.keys = p.shards[0].dedup
	if cfg.Offline {
		p.merge, err = newStage[noCallID](p)
	} else {
		p.merge, err = newStage[withCallID](p)
	}
	if err != nil {
		return nil, fmt.Errorf("--capture.max-lateness: %w", err)
	}
	return p, nil
}

// newStage returns the merge group of p's shards for messages of type X.
func newStage[X exemplarID](p *Pipeline) (*stage[X], error) {
	sinks := make([]merge.Sink[message[X]], len(p.shards))
	for i, s := range p.shards {
		sinks[i] = sink[X]{s}
	}
	g, err := merge.NewGroup(p.cfg.Merge, sinks)
	if err != nil {
		return nil, err
	}
	return &stage[X]{Group: g, p: p}, nil
}

// dedupShare returns the dedup table of one of n shards for a table of
// slots in all (0: merge.DefaultDedupSlots).
func dedupShare(slots, n int) int {
	if slots == 0 {
		slots = merge.DefaultDedupSlots
	}
	share := 4096
	for share*2 <= slots/n {
		share *= 2
	}
	return min(share, slots)
}

// Config returns the configuration, its defaults filled in.
func (p *Pipeline) Config() Config { return p.cfg }

// SIP returns the collector of the sip_ response and request counters.
func (p *Pipeline) SIP() *collector.SIP { return p.sip }

// Tracker returns the transaction tracker, nil with NoTx.
func (p *Pipeline) Tracker() *collector.Trackers { return p.tx }

// Collectors returns the pipeline's collectors to register: the SIP
// counters, the tracker (unless NoTx) and the merge's self-metrics.
func (p *Pipeline) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{p.sip}
	if p.tx != nil {
		cs = append(cs, p.tx)
	}
	return append(cs, p.merge)
}

// Source returns the merge counters of the named packet source.
func (p *Pipeline) Source(name string) *merge.Source { return p.merge.Source(name) }

// Seal says that no producer will be added (see [merge.Merger.Seal]).
func (p *Pipeline) Seal() { p.merge.Seal() }

// Run runs the shards until ctx is done or, once sealed, until every
// producer is closed and its messages handed on.
func (p *Pipeline) Run(ctx context.Context) { p.merge.Run(ctx) }

// End ends the tracker's open transactions and sessions as at the end of
// capture files ([collector.Tracker.End]); call it once Run has returned.
func (p *Pipeline) End() {
	if p.tx != nil {
		p.tx.End()
	}
}

// DuplicatesRemoved returns the copies removed by dedup, over the shards;
// 0 when it is disabled.
func (p *Pipeline) DuplicatesRemoved() uint64 {
	var n uint64
	for _, s := range p.shards {
		if s.dedup != nil {
			n += s.dedup.Removed()
		}
	}
	return n
}

// Dedup reports whether copies are removed (DedupWindow above 0).
func (p *Pipeline) Dedup() bool { return p.keys != nil }

// SourceNode is the node of the messages of one source that carry none of
// their own: its value as configured, which the configuration file's nodes
// may map to a display name, and its label set for peer "other". A
// source's producers hold it, so that classifying a message needs no
// lookup by source.
type SourceNode struct {
	name []byte
	node *collector.Node // the label set without peers (and peer "other" with them)
}

// Node returns the label set of the source's messages without peers.
func (sn *SourceNode) Node() *collector.Node { return sn.node }

// SourceNode returns the node of a source whose own node value is own, ""
// for NodeName. Sources of one value share it. Call it when a source is
// set up, never per message.
func (p *Pipeline) SourceNode(own string) *SourceNode {
	if own == "" {
		own = p.cfg.NodeName
	}
	p.nodesMu.Lock()
	defer p.nodesMu.Unlock()
	if sn := p.nodes[own]; sn != nil {
		return sn
	}
	sn := &SourceNode{name: []byte(own), node: p.sip.Node([]byte(own))}
	if p.nodes == nil {
		p.nodes = map[string]*SourceNode{}
	}
	p.nodes[own] = sn
	return sn
}

// Producer is one decoder's way into the shards: a merge input per shard,
// and the decoder whose handler classifies each message, picks its shard
// and pushes it there. It belongs to one goroutine (an interface's capture
// worker, a HEP socket or connection, a file's worker).
type Producer struct {
	p   *Pipeline
	ctx context.Context
	ins []inputCtl
	sn  *SourceNode
	dec *decode.Decoder
}

// producer is a Producer's handler for messages of type X.
type producer[X exemplarID] struct {
	*Producer
	ins []*merge.Input[message[X]]
}

// NewProducer returns a producer of the packet source src (see
// [Pipeline.Source]) whose merge inputs are of kind k and hold queue
// messages together (0 for the merge's default; each shard's input holds
// its share, at least 64), with a decoder of
// configuration dc counting into stats; messages that bring no node of
// their own are counted under sn. Pushing waits for room until ctx is
// done (see [merge.Input.Push]). dc must be the pipeline's
// [Config.DecoderConfig], split or with a HEP auth key: New checked it.
func (p *Pipeline) NewProducer(ctx context.Context, src *merge.Source, k merge.Kind, queue int, dc decode.Config, stats *decode.Stats, sn *SourceNode) *Producer {
	// The producer's queue is shared out among the shards, as its
	// messages are: its memory does not grow with them.
	if queue <= 0 {
		queue = p.cfg.Merge.QueueSize
	}
	queue = max(queue/len(p.shards), minShardQueue)
	pr := &Producer{p: p, ctx: ctx, sn: sn}
	var handle func(*decode.Origin, *sip.Message)
	pr.ins, handle = p.merge.inputs(pr, src, k, queue)
	d, err := decode.New(dc, stats, handle)
	if err != nil {
		panic(err) // checked in New
	}
	pr.dec = d
	return pr
}

// minShardQueue is the least queue of a producer into one shard.
const minShardQueue = 64

// Decoder returns the producer's decoder.
func (pr *Producer) Decoder() *decode.Decoder { return pr.dec }

// Progress says that the producer will push nothing captured before t
// (ns since the Unix epoch), into every shard ([merge.Input.Progress]).
func (pr *Producer) Progress(t int64) {
	for _, in := range pr.ins {
		in.Progress(pr.ctx, t)
	}
}

// Close says the producer is done.
func (pr *Producer) Close() {
	for _, in := range pr.ins {
		in.Close()
	}
}

// handle is the decoder's handler: it classifies m (label set: under the
// HEP sender's node when it came over HEP, else under the source's; with
// peers, under the peer and direction its addresses match), hashes it for
// dedup and the tracker, and pushes it into its shard. It takes no lock
// and does not allocate once the label set and clock have been seen.
func (pr producer[X]) handle(o *decode.Origin, m *sip.Message) {
	var msg message[X]
	clock, call := classify(pr.p, o, m, &msg, pr.sn)
	s := 0
	if len(pr.ins) > 1 {
		s = shardOf(pr.p, o, m, &msg, call)
	}
	pr.ins[s].PushReceived(pr.ctx, o.Time, o.Seq, o.Received, clock, &msg)
}

// inputs implements group.
func (st *stage[X]) inputs(pr *Producer, src *merge.Source, k merge.Kind, queue int) ([]inputCtl, func(*decode.Origin, *sip.Message)) {
	h := producer[X]{Producer: pr, ins: st.Inputs(src, k, queue)}
	ins := make([]inputCtl, len(h.ins))
	for i, in := range h.ins {
		ins[i] = in
	}
	return ins, h.handle
}

// shardOf returns the shard of a classified message: by its address of
// record for REGISTER and its responses (a registration may be refreshed
// or removed with another Call-ID), by its peer for the OPTIONS of a
// configured peer (keepaliveKey), else by Call-ID (every transaction and
// dialog lies within one), else by its bytes (copies meet). call is the
// Call-ID's hash that classify returned.
func shardOf[X exemplarID](p *Pipeline, o *decode.Origin, m *sip.Message, msg *message[X], call uint64) int {
	h, keepalive := keepaliveKey(p, o, msg)
	switch {
	case keepalive:
	case msg.hasTx && msg.tx.AOR() != 0:
		h = msg.tx.AOR()
	case m.CallID != nil:
		h = call
	case p.keys != nil:
		h = msg.dedup
	default:
		h = maphash.Bytes(p.seed, o.Payload)
	}
	return int((h >> 32) * uint64(len(p.shards)) >> 32)
}

// keepaliveKey returns the shard key of an OPTIONS request or response
// (by its CSeq method) whose request is attributed to a configured peer:
// a hash of that peer's name. The tracker's reachability of a peer
// (sip_peer_up) follows all its keepalives in order, each with a new
// Call-ID as a rule, so they must meet in one shard; a response is
// attributed by its addresses swapped, as its request, and copies have
// the same addresses. The name, not the index, so that a reload that
// keeps it keeps the shard. ok is false for any other message. It takes
// no lock and does not allocate.
func keepaliveKey[X exemplarID](p *Pipeline, o *decode.Origin, msg *message[X]) (h uint64, ok bool) {
	if msg.method != collector.MethodOPTIONS {
		return 0, false
	}
	peers := p.sip.Peers()
	if peers == nil {
		return 0, false
	}
	src, dst := o.Src, o.Dst
	if msg.code != 0 { // a response
		src, dst = dst, src
	}
	i, _ := peers.Match(src, dst)
	if i < 0 {
		return 0, false
	}
	return maphash.String(p.seed, peers.Name(i)), true
}

// classify fills msg for m seen at o by a source of node sn, and returns
// the key of the clock that stamped it: the node of a HEP agent (bounded
// by MaxNodes), "" for a source with one clock. The node is o.Node when
// the message brought one (HEP), else the source's; and
// [collector.CallIDHash] of its Call-ID (0 without one), hashed once for
// the tracker's keys and the shard.
func classify[X exemplarID](p *Pipeline, o *decode.Origin, m *sip.Message, msg *message[X], sn *SourceNode) (clock string, call uint64) {
	var n *collector.Node
	switch {
	case p.cfg.Peers != nil:
		name := o.Node
		if name == nil {
			name = sn.name
		}
		n = p.sip.Lookup(name, o.Src, o.Dst)
	case o.Node != nil:
		n = p.sip.Node(o.Node)
	default:
		n = sn.node
	}
	*msg = message[X]{phrase: -1}
	if m.Response {
		msg.code = uint16(m.StatusCode)
		msg.method = collector.MethodOf(m.CSeqMethod)
		msg.phrase = int16(n.PhraseIndex(m.StatusCode, m.Reason))
	} else {
		msg.method = collector.MethodOf(m.Method)
	}
	if p.keys != nil {
		msg.dedup = p.keys.Key(o.Payload, o.Src, o.Dst, o.IPID)
	}
	if m.CallID != nil {
		call = collector.CallIDHash(m.CallID)
	}
	msg.hasTx = p.tx != nil && txEvent(o, m, call, n, &msg.tx)
	msg.tx.Node = n
	setCallID(&msg.id, m.CallID) // with or without the tracker
	if o.Node != nil {
		return n.Label(), call
	}
	return "", call
}

// Observe handles m seen at o by a source of node sn at once, on the
// calling goroutine and in shard 0, without the merge: classify, dedup,
// count and track, the whole per-message path but the queues. It is for
// benchmarks and allocation tests; a running pipeline must not be given
// messages this way.
func (p *Pipeline) Observe(sn *SourceNode, o *decode.Origin, m *sip.Message) {
	p.merge.observe(sn, o, m)
}

// observe implements group.
func (st *stage[X]) observe(sn *SourceNode, o *decode.Origin, m *sip.Message) {
	var msg message[X]
	classify(st.p, o, m, &msg, sn)
	sink[X]{st.p.shards[0]}.Message(o.Time, &msg, false)
}

// Message implements merge.Sink: it counts one message, in capture time
// order, unless it is a copy of one seen within the dedup window. It runs
// on the shard's merge goroutine and does not allocate once the label set
// has been seen.
func (s sink[X]) Message(t int64, m *message[X], late bool) {
	if s.dedup != nil && s.dedup.Seen(m.dedup, t) {
		return
	}
	n := m.tx.Node
	c := n.Shard(s.i)
	id := callID(&m.id)
	if m.code != 0 {
		c.ObserveResponseCallID(int(m.code), m.method, id, t)
		n.ObservePhraseIndex(int(m.code), int(m.phrase))
	} else {
		c.ObserveRequestMethod(m.method)
	}
	if m.hasTx {
		m.tx.Time = t
		s.tx.ObserveCallID(&m.tx, id)
	}
}

// Advance implements merge.Sink: the tracker's time is the merge's
// watermark.
func (s sink[X]) Advance(w int64) {
	if s.tx != nil {
		s.tx.Advance(w)
	}
}

// ReadFile reads the capture file f with one producer per worker
// ([input.File.Workers]), each on a goroutine of its own, marking their
// progress in the shards, and closes the producers when they are done. It
// returns the first worker's error (every worker meets the same one).
// progress, when not nil, is also told each worker's progress (a capture
// time in ns, see [input.File.Read]), from the workers' goroutines.
func ReadFile(ctx context.Context, f *input.File, producers []*Producer, progress func(t int64)) error {
	errs := make([]error, len(producers))
	var wg sync.WaitGroup
	for w, pr := range producers {
		mark := pr.Progress
		if progress != nil {
			mark = func(t int64) {
				progress(t)
				pr.Progress(t)
			}
		}
		wg.Go(func() {
			defer pr.Close()
			errs[w] = f.Read(ctx, w, pr.dec, mark)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
