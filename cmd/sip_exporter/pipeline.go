package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture"
	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/defrag"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
	"github.com/sip-exporter/sip_exporter/collector"
)

// pipelineConfig is what the pipeline takes from the flags.
type pipelineConfig struct {
	tcp      stream.Config
	hep      decode.HEPConfig
	frag     defrag.Config
	nodeName string // node label of interface and file sources
	maxNodes int
	// dedupWindow is --capture.dedup-window: copies of a message within it
	// are counted once (0 disables).
	dedupWindow time.Duration
	dedupSlots  int // table size; 0 for capture.DefaultDedupSlots
	// peers, when not nil (--config.file), adds the peer and direction
	// labels and attributes messages to peers.
	peers *collector.Peers
	// maxPhrases is --collector.max-phrases-per-code with
	// --collector.response-phrases, else 0 (phrases not counted).
	maxPhrases int
	tx         collector.TrackerConfig
	noTx       bool // --no-sip.transactions
}

// pipeline connects decoders to the SIP collector.
type pipeline struct {
	cfg      pipelineConfig
	sip      *collector.SIP
	node     *collector.Node // of interface and file sources (for peer "other")
	nodeName []byte          // of interface and file sources
	dedup    *capture.Dedup  // nil when disabled
	// tx follows transactions; nil with --no-sip.transactions. Events go
	// to tx.Observe at once (report: one reader) until queued is set
	// (serve: tx.Push, and tx.Run on its own goroutine).
	tx     *collector.Tracker
	queued bool
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
	p := &pipeline{cfg: cfg, sip: c, node: c.Node([]byte(cfg.nodeName)), nodeName: []byte(cfg.nodeName)}
	if cfg.dedupWindow < 0 {
		return nil, fmt.Errorf("--capture.dedup-window %v: must not be negative", cfg.dedupWindow)
	}
	if cfg.dedupWindow > 0 {
		d, err := capture.NewDedup(cfg.dedupWindow, cfg.dedupSlots)
		if err != nil {
			return nil, fmt.Errorf("--capture.dedup-window: %w", err)
		}
		p.dedup = d
	}
	if !cfg.noTx {
		tcfg := cfg.tx
		tcfg.SIP = c
		tx, err := collector.NewTracker(tcfg)
		if err != nil {
			return nil, fmt.Errorf("--sip.max-transactions/--sip.invite-timeout: %w", err)
		}
		p.tx = tx
	}
	return p, nil
}

// defaultPipelineConfig returns the defaults of the flags.
func defaultPipelineConfig() pipelineConfig {
	dc := decode.DefaultConfig()
	return pipelineConfig{tcp: dc.TCP, hep: dc.HEP, frag: dc.Fragments, maxNodes: 256, dedupWindow: defaultDedupWindow, tx: collector.DefaultTrackerConfig()}
}

// decoderConfig returns the decoder configuration of the flags.
func (c pipelineConfig) decoderConfig() decode.Config {
	dc := decode.DefaultConfig()
	dc.TCP, dc.HEP, dc.Fragments = c.tcp, c.hep, c.frag
	return dc
}

// defaultDedupWindow is the default of --capture.dedup-window.
const defaultDedupWindow = 100 * time.Millisecond

// observe counts one SIP message: under the HEP sender's node when it came
// over HEP, else under the node of interface and file sources; with peers,
// under the peer and direction its addresses match. A copy of a message
// seen within the dedup window is not counted. It takes no lock and does
// not allocate once the label set has been seen.
func (p *pipeline) observe(o *capture.Origin, m *sip.Message) {
	if p.dedup != nil && p.dedup.Seen(o.Payload, o.IPID, o.Time) {
		return
	}
	var n *collector.Node
	switch {
	case p.cfg.peers != nil:
		name := o.Node
		if name == nil {
			name = p.nodeName
		}
		n = p.sip.Lookup(name, o.Src, o.Dst)
	case o.Node != nil:
		n = p.sip.Node(o.Node)
	default:
		n = p.node
	}
	if m.Response {
		n.ObserveResponse(m.StatusCode, m.CSeqMethod)
		n.ObservePhrase(m.StatusCode, m.Reason)
	} else {
		n.ObserveRequest(m.Method)
	}
	var ev collector.TxEvent
	if p.tx != nil && txEvent(o, m, n, &ev) {
		if p.queued {
			p.tx.Push(&ev)
		} else {
			p.tx.Observe(&ev)
		}
	}
}

// decoder returns a new decoder for one source, counting into stats.
func (p *pipeline) decoder(stats *decode.Stats) *decode.Decoder {
	return p.decoderOf(p.cfg.decoderConfig(), stats)
}

// decoderOf returns a new decoder of configuration dc (checked in
// newPipeline but for the HEP auth key) that counts into stats and hands
// messages to this pipeline (never a copy of it: the tracker's queueing
// mode is switched on p).
func (p *pipeline) decoderOf(dc decode.Config, stats *decode.Stats) *decode.Decoder {
	d, err := decode.New(dc, stats, p.observe)
	if err != nil {
		panic(err) // checked in newPipeline
	}
	return d
}

// source is one configured packet source.
type source struct {
	input.Source
	// run reads the source until it ends or ctx is done, counting into st;
	// started is called once reading has begun.
	run func(ctx context.Context, d *decode.Decoder, st *input.Stats, started func()) error
}

// hepSources opens the HEP listener of o and returns a source per
// transport, so that their counters stay apart.
func hepSources(o *options, p *pipeline) ([]*source, error) {
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
	udp := &source{Source: input.Source{Name: "udp://" + cfg.Addr, Type: "hep"}}
	tcpName := "tcp://" + cfg.Addr
	if cfg.TLS != nil {
		tcpName = "tls://" + cfg.Addr
	}
	tcp := &source{Source: input.Source{Name: tcpName, Type: "hep"}}
	// The listener's decoders always decode HEP and check the auth key.
	dc := p.cfg.decoderConfig()
	dc.HEP.Decapsulate, dc.HEP.AuthKey = true, o.hepAuthKey
	l, err := input.ListenHEP(cfg, p.decoderOf(dc, &udp.Stats.Decode), &udp.Stats, func() *decode.Decoder { return p.decoderOf(dc, &tcp.Stats.Decode) }, &tcp.Stats)
	if err != nil {
		return nil, err
	}
	var out []*source
	if cfg.UDP {
		udp.run = func(ctx context.Context, _ *decode.Decoder, _ *input.Stats, started func()) error {
			started()
			return l.ServeUDP(ctx)
		}
		out = append(out, udp)
	}
	if cfg.TCP {
		tcp.run = func(ctx context.Context, _ *decode.Decoder, _ *input.Stats, started func()) error {
			started()
			return l.ServeTCP(ctx)
		}
		out = append(out, tcp)
	}
	return out, nil
}

// newSources checks the source flags and returns the sources, or an error
// that names the problem.
func newSources(o *options, p *pipeline) ([]*source, error) {
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
	for _, name := range o.interfaces {
		if seen["interface:"+name] {
			return nil, fmt.Errorf("--capture.interface %q given twice", name)
		}
		seen["interface:"+name] = true
		cfg := input.LiveConfig{Interface: name, RingBytes: int(o.ringSize), Promiscuous: o.promisc, Filter: filter}
		sources = append(sources, &source{Source: input.Source{Name: name, Type: "interface"},
			run: func(ctx context.Context, d *decode.Decoder, st *input.Stats, started func()) error {
				return input.Live(ctx, cfg, d, st, started)
			}})
	}
	for _, path := range o.pcapFiles {
		if seen["pcap:"+path] {
			return nil, fmt.Errorf("--capture.pcap-file %q given twice", path)
		}
		seen["pcap:"+path] = true
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--capture.pcap-file: %w", err)
		}
		f.Close()
		cfg := input.FileConfig{Path: path, Realtime: o.pcapSpeed == "realtime", Loop: o.pcapLoop}
		sources = append(sources, &source{Source: input.Source{Name: path, Type: "pcap"},
			run: func(ctx context.Context, d *decode.Decoder, _ *input.Stats, started func()) error {
				started()
				return input.ReadFile(ctx, cfg, d)
			}})
	}
	if o.hep.Addr != "" {
		hs, err := hepSources(o, p)
		if err != nil {
			return nil, err
		}
		sources = append(sources, hs...)
	}
	return sources, nil
}

// startupTimeout bounds how long a live source may take to open.
const startupTimeout = 10 * time.Second

// startSources starts a goroutine per source. It waits until every source
// has started reading and returns the first start-up error, so that a bad
// interface fails the exporter at start.
func startSources(ctx context.Context, sources []*source, p *pipeline, logger *slog.Logger) error {
	for _, s := range sources {
		startedc := make(chan struct{})
		errc := make(chan error, 1)
		d := p.decoder(&s.Stats.Decode)
		go func() {
			err := s.run(ctx, d, &s.Stats, func() {
				s.Up.Store(true)
				close(startedc)
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
			err := <-errc
			switch {
			case err != nil:
				logger.Error("source failed", "type", s.Type, "name", s.Name, "err", err, "packets", s.Stats.Decode.Packets.Load())
			default:
				logger.Info("source ended", "type", s.Type, "name", s.Name, "packets", s.Stats.Decode.Packets.Load())
			}
		}()
	}
	return nil
}

// inputs returns the sources for the collector of their self-metrics.
func inputs(sources []*source) []*input.Source {
	out := make([]*input.Source, len(sources))
	for i, s := range sources {
		out[i] = &s.Source
	}
	return out
}
