package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/defrag"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/merge"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
	"github.com/sip-exporter/sip_exporter/collector"
)

// pipelineConfig is what the pipeline takes from the flags.
type pipelineConfig struct {
	tcp      stream.Config
	hep      decode.HEPConfig
	frag     defrag.Config
	nodeName string // --capture.node-name: node of the sources without their own
	maxNodes int
	// dedupWindow is --capture.dedup-window: copies of a message within it
	// are counted once (0 disables).
	dedupWindow time.Duration
	dedupSlots  int // table size; 0 for merge.DefaultDedupSlots
	// merge configures the time-ordered merge of all sources
	// (--capture.max-lateness).
	merge merge.Config
	// peers, when not nil (--config.file), adds the peer and direction
	// labels and attributes messages to peers.
	peers *collector.Peers
	// maxPhrases is --collector.response-phrases-per-code with
	// --collector.response-phrases, else 0 (phrases not counted).
	maxPhrases int
	tx         collector.TrackerConfig
	noTx       bool // --no-sip.transactions
}

// message is one SIP message on its way from its source's decoder through
// the time-ordered merge to the counters: what counting it needs, already
// classified and hashed where it was decoded (on the source's goroutine),
// with no pointer into packet memory.
type message struct {
	tx       collector.TxEvent // Node is the label set; Time is set by the merge
	dedup    uint64            // merge.Dedup key: bytes, addresses, ports, IPv4 ID
	phrase   int16             // collector.Node.PhraseIndex; -1 when not counted
	code     uint16            // status code of a response
	method   collector.Method  // request method, or a response's CSeq method
	response bool
	hasTx    bool // tx is filled in: the message has a Call-ID and CSeq
}

// pipeline connects the sources' decoders, through the time-ordered merge
// and dedup, to the SIP collector and the transaction tracker:
//
//	source -> decoder -> Input.Push ─┐
//	source -> decoder -> Input.Push ─┼─> merge (capture time order) -> dedup -> counters, tracker
//	HEP connection -> decoder -> ... ┘
type pipeline struct {
	cfg   pipelineConfig
	sip   *collector.SIP
	dedup *merge.Dedup // nil when disabled
	// nodes are the nodes of interface and file sources by value, made
	// when the sources are set up (sourceNode).
	nodesMu sync.Mutex
	nodes   map[string]*sourceNode
	// tx follows transactions; nil with --no-sip.transactions. It is fed
	// by the merge's goroutine only.
	tx    *collector.Tracker
	merge *merge.Merger[message]
}

func newPipeline(cfg pipelineConfig) (*pipeline, error) {
	if _, err := decode.New(cfg.decoderConfig(), new(decode.Stats), nil); err != nil {
		return nil, err
	}
	if cfg.maxNodes < 1 {
		return nil, fmt.Errorf("--hep.max-nodes %d: must be at least 1", cfg.maxNodes)
	}
	c, err := collector.NewSIPWithConfig(collector.SIPConfig{
		MaxNodes: cfg.maxNodes,
		Peers:    cfg.peers,
		Phrases:  collector.PhrasesConfig{MaxPerCode: cfg.maxPhrases},
	})
	if err != nil {
		return nil, err
	}
	p := &pipeline{cfg: cfg, sip: c}
	mcfg := cfg.merge
	if mcfg == (merge.Config{}) {
		mcfg = merge.DefaultConfig()
	}
	if cfg.dedupWindow < 0 {
		return nil, fmt.Errorf("--capture.dedup-window %v: must not be negative", cfg.dedupWindow)
	}
	// The time model (merge.Config.SkewWindow): copies from two clocks the
	// merge leaves uncorrected may be this far apart.
	if w := mcfg.SkewWindow(); cfg.dedupWindow > 0 && cfg.dedupWindow < w {
		return nil, fmt.Errorf("--capture.dedup-window %v: must be 0 or at least %v, the skew two clocks may keep uncorrected (a fifth of --capture.max-lateness %v, at most 200ms), or copies from two HEP agents or taps would be counted twice", cfg.dedupWindow, w, mcfg.Lateness)
	}
	if cfg.dedupWindow > 0 {
		d, err := merge.NewDedup(cfg.dedupWindow, cfg.dedupSlots)
		if err != nil {
			return nil, fmt.Errorf("--capture.dedup-window: %w", err)
		}
		p.dedup = d
	}
	if !cfg.noTx {
		tcfg := cfg.tx
		tcfg.SIP = c
		tcfg.EarlyResponseWindow = mcfg.SkewWindow() // the time model: clocks left uncorrected
		tx, err := collector.NewTracker(tcfg)
		if err != nil {
			return nil, fmt.Errorf("--sip.max-transactions/--sip.invite-timeout: %w", err)
		}
		p.tx = tx
	}
	if p.merge, err = merge.New[message](mcfg, p); err != nil {
		return nil, fmt.Errorf("--capture.max-lateness: %w", err)
	}
	return p, nil
}

// defaultPipelineConfig returns the defaults of the flags.
func defaultPipelineConfig() pipelineConfig {
	dc := decode.DefaultConfig()
	return pipelineConfig{tcp: dc.TCP, hep: dc.HEP, frag: dc.Fragments, maxNodes: 256, dedupWindow: defaultDedupWindow,
		merge: merge.DefaultConfig(), tx: collector.DefaultTrackerConfig()}
}

// decoderConfig returns the decoder configuration of the flags.
func (c pipelineConfig) decoderConfig() decode.Config {
	dc := decode.DefaultConfig()
	dc.TCP, dc.HEP, dc.Fragments = c.tcp, c.hep, c.frag
	return dc
}

// defaultDedupWindow is the default of --capture.dedup-window: the
// largest skew window of the time model (merge.Config.SkewWindow), so that
// it is valid whatever --capture.max-lateness.
const defaultDedupWindow = 200 * time.Millisecond

// handler returns the decoders' handler of one merge input, whose source
// has node sn: it classifies each message (label set: under the HEP
// sender's node when it came over HEP, else under sn; with peers, under
// the peer and direction its addresses match), hashes it for dedup and the
// tracker, and pushes it into the merge. It takes no lock and does not
// allocate once the label set and clock have been seen.
func (p *pipeline) handler(ctx context.Context, in *merge.Input[message], sn *sourceNode) decode.Handler {
	return func(o *decode.Origin, m *sip.Message) {
		var msg message
		clock := p.classify(o, m, &msg, sn)
		in.PushOrdered(ctx, o.Time, o.Seq, clock, &msg)
	}
}

// classify fills msg for m seen at o by a source of node sn, and returns
// the key of the clock that stamped it: the node of a HEP agent (bounded
// by --hep.max-nodes), "" for a source with one clock. The node is o.Node
// when the message brought one (HEP), else the source's.
func (p *pipeline) classify(o *decode.Origin, m *sip.Message, msg *message, sn *sourceNode) (clock string) {
	var n *collector.Node
	switch {
	case p.cfg.peers != nil:
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
	*msg = message{response: m.Response, phrase: -1}
	if m.Response {
		msg.code = uint16(m.StatusCode)
		msg.method = collector.MethodOf(m.CSeqMethod)
		msg.phrase = int16(n.PhraseIndex(m.StatusCode, m.Reason))
	} else {
		msg.method = collector.MethodOf(m.Method)
	}
	if p.dedup != nil {
		msg.dedup = p.dedup.Key(o.Payload, o.Src, o.Dst, o.IPID)
	}
	msg.hasTx = p.tx != nil && txEvent(o, m, n, &msg.tx)
	msg.tx.Node = n
	if o.Node != nil {
		return n.Label()
	}
	return ""
}

// Message implements merge.Sink: it counts one message, in capture time
// order, unless it is a copy of one seen within the dedup window. It runs
// on the merge's goroutine and does not allocate once the label set has
// been seen.
func (p *pipeline) Message(t int64, m *message, late bool) {
	if p.dedup != nil && p.dedup.Seen(m.dedup, t) {
		return
	}
	n := m.tx.Node
	if m.response {
		n.ObserveResponseMethod(int(m.code), m.method)
		n.ObservePhraseIndex(int(m.code), int(m.phrase))
	} else {
		n.ObserveRequestMethod(m.method)
	}
	if m.hasTx {
		m.tx.Time = t
		p.tx.Observe(&m.tx)
	}
}

// Advance implements merge.Sink: the tracker's time is the merge's
// watermark.
func (p *pipeline) Advance(w int64) {
	if p.tx != nil {
		p.tx.Advance(w)
	}
}

// decoder returns a new decoder for one merge input of a source of node
// sn, counting into stats.
func (p *pipeline) decoder(ctx context.Context, in *merge.Input[message], stats *decode.Stats, sn *sourceNode) *decode.Decoder {
	return p.decoderOf(ctx, p.cfg.decoderConfig(), in, stats, sn)
}

// decoderOf returns a new decoder of configuration dc (checked in
// newPipeline but for the HEP auth key) that counts into stats and pushes
// messages, under node sn unless they bring their own, into the merge
// input in.
func (p *pipeline) decoderOf(ctx context.Context, dc decode.Config, in *merge.Input[message], stats *decode.Stats, sn *sourceNode) *decode.Decoder {
	d, err := decode.New(dc, stats, p.handler(ctx, in, sn))
	if err != nil {
		panic(err) // checked in newPipeline
	}
	return d
}

// source is one configured packet source.
type source struct {
	input.Source
	kind merge.Kind // Exact for files read as fast as possible
	// retry reopens the source with backoff when it fails (interfaces, the
	// HEP listener's sockets).
	retry bool
	// ownDecoders marks a source that makes its decoders and merge inputs
	// itself (the HEP listener); run then gets a nil decoder.
	ownDecoders bool
	// in is the source's merge input (nil with ownDecoders), added by
	// newSources before the merge runs, so that no file is merged before
	// the others are in.
	in *merge.Input[message]
	// node is the node of its messages that bring none of their own.
	node *sourceNode
	// run reads the source until it ends or ctx is done, counting into st;
	// started is called once reading has begun.
	run func(ctx context.Context, d *decode.Decoder, st *input.Stats, started func()) error
}

// hepConnQueueSize is the merge queue of one HEP TCP connection: 1,024
// messages of about 80 bytes, so that --hep.max-connections connections
// hold at most 80 MiB; a half-full queue wakes the merge.
const hepConnQueueSize = 1 << 10

// defaultUDPWorkers is the default of --hep.udp-workers on a machine of
// cpus CPUs: half of them, 1 to 4. The workers decode; the merge, dedup
// and counting run on one goroutine beside them.
func defaultUDPWorkers(cpus int) int { return min(max(cpus/2, 1), 4) }

// hepSources opens the HEP listener of o and returns a source per
// transport, so that their counters stay apart.
func hepSources(ctx context.Context, o *options, p *pipeline) ([]*source, error) {
	cfg := o.hep
	switch o.hepTransport {
	case "udp":
		cfg.TCP = false
	case "tcp":
		cfg.UDP = false
	}
	if (o.hepCertFile == "") != (o.hepKeyFile == "") {
		return nil, fmt.Errorf("--hep.tls-cert-file and --hep.tls-key-file go together")
	}
	if err := cfg.Validate(); err != nil { // at start: the sockets are retried
		return nil, err
	}
	if o.hepCertFile != "" {
		if !cfg.TCP {
			return nil, fmt.Errorf("--hep.tls-cert-file needs --hep.transport=tcp or both")
		}
		cert, err := tls.LoadX509KeyPair(o.hepCertFile, o.hepKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--hep.tls-cert-file/--hep.tls-key-file: %w", err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	udp := &source{Source: input.Source{Name: "udp://" + cfg.Addr, Type: "hep"}, kind: merge.Live}
	tcpName := "tcp://" + cfg.Addr
	if cfg.TLS != nil {
		tcpName = "tls://" + cfg.Addr
	}
	tcp := &source{Source: input.Source{Name: tcpName, Type: "hep"}, kind: merge.Live}
	// The listener's decoders always decode HEP and check the auth key.
	dc := p.cfg.decoderConfig()
	dc.HEP.Decapsulate, dc.HEP.AuthKey = true, o.hepAuthKey
	// A HEP packet names its node; one without is counted under
	// --capture.node-name.
	sn := p.sourceNode("")
	// Datagrams go into one merge input per UDP worker; each TCP connection gets its own
	// (an input has one producer), closed when the connection ends. Each
	// transport opens its socket when it starts, so that a socket that
	// fails is reopened with backoff like an interface.
	var out []*source
	if cfg.UDP {
		udpCfg := cfg
		udpCfg.TCP = false
		// A decoder and a merge input per UDP worker (socket), made once
		// and kept across reopenings.
		udpSource := p.merge.Source(udp.Name)
		ds := make([]*decode.Decoder, cfg.UDPWorkers)
		for i, st := range udp.Stats.NewWorkers(cfg.UDPWorkers) {
			ds[i] = p.decoderOf(ctx, dc, p.merge.Input(udpSource, merge.Live, 0), st, sn)
		}
		udp.ownDecoders, udp.retry = true, true
		udp.run = func(ctx context.Context, _ *decode.Decoder, _ *input.Stats, started func()) error {
			l, err := input.ListenHEP(udpCfg, ds, &udp.Stats, nil, &tcp.Stats)
			if err != nil {
				return err
			}
			defer l.Close()
			for _, d := range ds {
				d.Reset()
			}
			started()
			return l.ServeUDP(ctx)
		}
		out = append(out, udp)
	}
	if cfg.TCP {
		tcpCfg := cfg
		tcpCfg.UDP = false
		tcpSource := p.merge.Source(tcp.Name)
		newDecoder := func() (*decode.Decoder, func()) {
			in := p.merge.Input(tcpSource, merge.Live, hepConnQueueSize)
			return p.decoderOf(ctx, dc, in, &tcp.Stats.Decode, sn), in.Close
		}
		tcp.ownDecoders, tcp.retry = true, true
		tcp.run = func(ctx context.Context, _ *decode.Decoder, _ *input.Stats, started func()) error {
			l, err := input.ListenHEP(tcpCfg, nil, &udp.Stats, newDecoder, &tcp.Stats)
			if err != nil {
				return err
			}
			defer l.Close()
			started()
			return l.ServeTCP(ctx)
		}
		out = append(out, tcp)
	}
	return out, nil
}

// newSources checks the source flags and returns the sources, with their
// merge inputs, or an error that names the problem. Call it before the
// merge runs.
func newSources(ctx context.Context, o *options, p *pipeline) ([]*source, error) {
	if len(o.interfaces) == 0 && len(o.pcapFiles) == 0 && o.hep.Addr == "" {
		return nil, fmt.Errorf("no packet source: give at least one --capture.interface, --capture.pcap-file or --hep.listen-address")
	}
	if o.hep.Addr == "" && (o.hepCertFile != "" || o.hepAuthKey != nil) {
		return nil, fmt.Errorf("--hep.tls-cert-file and --hep.auth-key need --hep.listen-address")
	}
	if (o.pcapLoop || o.pcapSpeed != "fast") && len(o.pcapFiles) == 0 {
		return nil, fmt.Errorf("--capture.pcap-loop and --capture.pcap-speed need --capture.pcap-file")
	}
	if o.bpfFile != "" && len(o.interfaces) == 0 {
		return nil, fmt.Errorf("--capture.bpf-file needs --capture.interface")
	}
	if len(o.pcapFiles) > 0 && o.pcapSpeed == "fast" && (len(o.interfaces) > 0 || o.hep.Addr != "") {
		return nil, fmt.Errorf("--capture.pcap-file read fast cannot be merged in time order with live sources (--capture.interface, --hep.listen-address): its capture times are not theirs; use --capture.pcap-speed=realtime")
	}
	if c := o.pipeline.merge.ClockThreshold(); len(o.interfaces) > 0 && o.blockTimeout >= c {
		return nil, fmt.Errorf("--capture.block-timeout %v: must be below the clock threshold %v (a tenth of --capture.max-lateness %v, at most 100ms), or a right kernel clock whose packets waited in the ring would be corrected", o.blockTimeout, c, o.pipeline.merge.Lateness)
	}
	ifaces, err := parseSources("--capture.interface", o.interfaces)
	if err != nil {
		return nil, err
	}
	files, err := parseSources("--capture.pcap-file", o.pcapFiles)
	if err != nil {
		return nil, err
	}
	if err := checkSourceNodes(o.pipeline.nodeName, o.pipeline.maxNodes, ifaces, files); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var sources []*source
	var filter []bpf.RawInstruction
	if o.bpfFile != "" {
		f, err := os.Open(o.bpfFile)
		if err != nil {
			return nil, fmt.Errorf("--capture.bpf-file: %w", err)
		}
		filter, err = input.ParseBPF(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--capture.bpf-file %q: %w", o.bpfFile, err)
		}
	}
	for _, iface := range ifaces {
		name := iface.name
		if seen["interface:"+name] {
			return nil, fmt.Errorf("--capture.interface %q given twice", name)
		}
		seen["interface:"+name] = true
		cfg := input.LiveConfig{Interface: name, RingBytes: int(o.ringSize), Promiscuous: o.promisc, Filter: filter, MediaFilter: o.filterRTP, BlockTimeout: o.blockTimeout}
		s := &source{Source: input.Source{Name: name, Type: "interface"}, kind: merge.Live, retry: true,
			node: p.sourceNode(iface.node), ownDecoders: true}
		// A decoder, counters and merge input per capture worker
		// (--capture.workers), made once and kept across reopenings; the
		// workers share the source's reassembly limits.
		dc, in := p.cfg.decoderConfig().Split(o.workers), p.merge.Source(name)
		ds := make([]*decode.Decoder, o.workers)
		for i, st := range s.Stats.NewWorkers(o.workers) {
			ds[i] = p.decoderOf(ctx, dc, p.merge.Input(in, merge.Live, 0), st, s.node)
		}
		s.run = func(ctx context.Context, _ *decode.Decoder, st *input.Stats, started func()) error {
			for _, d := range ds {
				d.Reset()
			}
			return input.Live(ctx, cfg, ds, st, started)
		}
		sources = append(sources, s)
	}
	for _, file := range files {
		path := file.name
		if seen["pcap:"+path] {
			return nil, fmt.Errorf("--capture.pcap-file %q given twice", path)
		}
		seen["pcap:"+path] = true
		cfg := input.FileConfig{Path: path, Realtime: o.pcapSpeed == "realtime", Loop: o.pcapLoop}
		f, err := input.OpenFile(cfg, o.workers)
		if err != nil {
			return nil, fmt.Errorf("--capture.pcap-file: %w", file.openError(err))
		}
		kind := merge.Exact
		if cfg.Realtime {
			kind = merge.Live // its times are mapped onto the wall clock
		}
		s := &source{Source: input.Source{Name: path, Type: "pcap"}, kind: kind, node: p.sourceNode(file.node), ownDecoders: true}
		readers := p.fileReaders(ctx, f, p.merge.Source(path), kind, s.node, s.Stats.NewWorkers(f.Workers()))
		s.run = func(ctx context.Context, _ *decode.Decoder, _ *input.Stats, started func()) error {
			started()
			defer f.Close()
			return readFile(ctx, f, readers)
		}
		sources = append(sources, s)
	}
	if o.hep.Addr != "" {
		hs, err := hepSources(ctx, o, p)
		if err != nil {
			return nil, err
		}
		sources = append(sources, hs...)
	}
	for _, s := range sources {
		if !s.ownDecoders {
			s.in = p.merge.Input(p.merge.Source(s.Name), s.kind, 0)
		}
	}
	return sources, nil
}

// fileReader is one worker's part of reading a capture file: its decoder
// and merge input.
type fileReader struct {
	in  *merge.Input[message]
	dec *decode.Decoder
}

// fileReaders returns the readers of the workers of f, one merge input of
// source src and kind k and one decoder each (messages of node sn unless
// they bring their own), counting into stats (one per worker).
func (p *pipeline) fileReaders(ctx context.Context, f *input.File, src *merge.Source, k merge.Kind, sn *sourceNode, stats []*decode.Stats) []fileReader {
	readers := make([]fileReader, f.Workers())
	for w := range readers {
		r := &readers[w]
		r.in = p.merge.Input(src, k, 0)
		r.dec = p.decoder(ctx, r.in, stats[w], sn)
	}
	return readers
}

// readFile reads f with its workers' readers, one goroutine each, marking
// their progress in the merge, and closes their inputs when they are done.
// It returns the first worker's error (every worker meets the same one).
func readFile(ctx context.Context, f *input.File, readers []fileReader) error {
	errs := make([]error, len(readers))
	var wg sync.WaitGroup
	for w := range readers {
		r := &readers[w]
		wg.Go(func() {
			defer r.in.Close()
			errs[w] = f.Read(ctx, w, r.dec, func(t int64) { r.in.Progress(ctx, t) })
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

// startupTimeout bounds how long a live source may take to open.
const startupTimeout = 10 * time.Second

// Backoff of a failed source's reopening: 1 s, doubling up to 30 s.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// startSources starts a goroutine per source, each feeding its own merge
// input (the HEP listener makes its own). It waits until every source has
// started reading and returns the first start-up error, so that a bad
// interface fails the exporter at start. A source that fails later is
// reopened with backoff when it retries (sip_exporter_source_up is 0
// meanwhile and each reopening counts in restarts); a file that ends is
// not an error.
func startSources(ctx context.Context, sources []*source, p *pipeline, restarts *prometheus.CounterVec, logger *slog.Logger) error {
	for _, s := range sources {
		startedc := make(chan struct{})
		errc := make(chan error, 1)
		in := s.in
		var d *decode.Decoder
		if in != nil {
			d = p.decoder(ctx, in, &s.Stats.Decode, s.node)
		}
		restart := restarts.WithLabelValues(s.Name, s.Type)
		var once sync.Once
		go func() {
			err := s.run(ctx, d, &s.Stats, func() {
				s.Up.Store(true)
				once.Do(func() { close(startedc) })
			})
			s.Up.Store(false)
			errc <- err
		}()
		select {
		case <-startedc:
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-time.After(startupTimeout):
			return fmt.Errorf("%s %q: not started after %v", s.Type, s.Name, startupTimeout)
		}
		logger.Info("source started", "type", s.Type, "name", s.Name)
		go func() {
			s.supervise(ctx, <-errc, d, restart, logger)
			if in != nil {
				in.Close()
			}
		}()
	}
	return nil
}

// supervise handles the end of a source's first run with err: a source
// that retries is reopened with backoff until ctx is done; otherwise the
// end is logged.
func (s *source) supervise(ctx context.Context, err error, d *decode.Decoder, restart prometheus.Counter, logger *slog.Logger) {
	backoff := minBackoff
	for {
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			logger.Info("source ended", "type", s.Type, "name", s.Name, "packets", s.Stats.Packets())
			return
		case !s.retry:
			logger.Error("source failed", "type", s.Type, "name", s.Name, "err", err, "packets", s.Stats.Packets())
			return
		}
		logger.Error("source failed; reopening", "type", s.Type, "name", s.Name, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
		if d != nil {
			d.Reset()
		}
		var opened time.Time
		err = s.run(ctx, d, &s.Stats, func() {
			s.Up.Store(true)
			restart.Inc()
			opened = time.Now()
			logger.Info("source reopened", "type", s.Type, "name", s.Name)
		})
		s.Up.Store(false)
		// Back off afresh only after the source has stayed up a while: an
		// interface that is down opens and then fails at once.
		if !opened.IsZero() && time.Since(opened) >= maxBackoff {
			backoff = minBackoff
		}
		if err == nil && ctx.Err() == nil {
			err = fmt.Errorf("%s %q: ended", s.Type, s.Name) // a live source does not end by itself
		}
	}
}

// inputs returns the sources for the collector of their self-metrics.
func inputs(sources []*source) []*input.Source {
	out := make([]*input.Source, len(sources))
	for i, s := range sources {
		out[i] = &s.Source
	}
	return out
}
