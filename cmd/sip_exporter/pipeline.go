package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/collector"
)

// pipelineConfig is what the pipeline takes from the flags.
type pipelineConfig struct {
	tcp      capture.TCPConfig
	hep      capture.HEPDecodeConfig
	frag     capture.FragmentConfig
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
	if _, err := capture.NewDecoder(cfg.decoderConfig(), new(capture.Stats), nil); err != nil {
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
	dc := capture.DefaultConfig()
	return pipelineConfig{tcp: dc.TCP, hep: dc.HEP, frag: dc.Fragments, maxNodes: 256, dedupWindow: defaultDedupWindow, tx: collector.DefaultTrackerConfig()}
}

// decoderConfig returns the decoder configuration of the flags.
func (c pipelineConfig) decoderConfig() capture.Config {
	dc := capture.DefaultConfig()
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
func (p *pipeline) decoder(stats *capture.Stats) *capture.Decoder {
	return p.decoderOf(p.cfg.decoderConfig(), stats)
}

// decoderOf returns a new decoder of configuration dc (checked in
// newPipeline but for the HEP auth key) that counts into stats and hands
// messages to this pipeline (never a copy of it: the tracker's queueing
// mode is switched on p).
func (p *pipeline) decoderOf(dc capture.Config, stats *capture.Stats) *capture.Decoder {
	d, err := capture.NewDecoder(dc, stats, p.observe)
	if err != nil {
		panic(err) // checked in newPipeline
	}
	return d
}

// source is one configured packet source.
type source struct {
	name, typ string
	stats     capture.Stats
	up        atomic.Bool
	// run reads the source until it ends or ctx is done; started is called
	// once reading has begun.
	run func(ctx context.Context, d *capture.Decoder, started func()) error
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
	udp := &source{name: "udp://" + cfg.Addr, typ: "hep"}
	tcpName := "tcp://" + cfg.Addr
	if cfg.TLS != nil {
		tcpName = "tls://" + cfg.Addr
	}
	tcp := &source{name: tcpName, typ: "hep"}
	// The listener's decoders always decode HEP and check the auth key.
	dc := p.cfg.decoderConfig()
	dc.HEP.Decapsulate, dc.HEP.AuthKey = true, o.hepAuthKey
	l, err := capture.ListenHEP(cfg, p.decoderOf(dc, &udp.stats), func() *capture.Decoder { return p.decoderOf(dc, &tcp.stats) }, &tcp.stats)
	if err != nil {
		return nil, err
	}
	var out []*source
	if cfg.UDP {
		udp.run = func(ctx context.Context, _ *capture.Decoder, started func()) error {
			started()
			return l.ServeUDP(ctx)
		}
		out = append(out, udp)
	}
	if cfg.TCP {
		tcp.run = func(ctx context.Context, _ *capture.Decoder, started func()) error {
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
		filter, err = capture.ParseBPF(f)
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
		cfg := capture.LiveConfig{Interface: name, RingBytes: int(o.ringSize), Promiscuous: o.promisc, Filter: filter}
		sources = append(sources, &source{name: name, typ: "interface",
			run: func(ctx context.Context, d *capture.Decoder, started func()) error {
				return capture.Live(ctx, cfg, d, started)
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
		cfg := capture.FileConfig{Path: path, Realtime: o.pcapSpeed == "realtime", Loop: o.pcapLoop}
		sources = append(sources, &source{name: path, typ: "pcap",
			run: func(ctx context.Context, d *capture.Decoder, started func()) error {
				started()
				return capture.ReadFile(ctx, cfg, d)
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
		d := p.decoder(&s.stats)
		go func() {
			err := s.run(ctx, d, func() {
				s.up.Store(true)
				close(startedc)
			})
			s.up.Store(false)
			errc <- err
		}()
		select {
		case <-startedc:
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-time.After(startupTimeout):
			return fmt.Errorf("%s %q: not started after %v", s.typ, s.name, startupTimeout)
		}
		logger.Info("source started", "type", s.typ, "name", s.name)
		go func() {
			err := <-errc
			switch {
			case err != nil:
				logger.Error("source failed", "type", s.typ, "name", s.name, "err", err, "packets", s.stats.Packets.Load())
			default:
				logger.Info("source ended", "type", s.typ, "name", s.name, "packets", s.stats.Packets.Load())
			}
		}()
	}
	return nil
}

// snapshot copies the sources' counters for a scrape.
func snapshot(sources []*source) []collector.SourceStats {
	out := make([]collector.SourceStats, 0, len(sources))
	for _, s := range sources {
		st := &s.stats
		ss := collector.SourceStats{
			Source: s.name, Type: s.typ, Up: s.up.Load(),
			Packets: st.Packets.Load(), Bytes: st.Bytes.Load(), KernelDrops: st.KernelDrops.Load(),
			TCPFlows: st.TCPFlows.Load(), TCPRetransmitted: st.TCPRetrans.Load(),
			TCPOutOfOrder: st.TCPOutOfOrder.Load(), TCPGaps: st.TCPGaps.Load(),
			IPReassembling: st.IPReassembling.Load(),
			HEPPackets:     st.HEPPackets.Load(), HEPBytes: st.HEPBytes.Load(), HEPAuthFailures: st.HEPAuthFailures.Load(),
			HEPConns: st.HEPConns.Load(), HEPConnsTotal: st.HEPConnsTotal.Load(), HEPConnsRejected: st.HEPConnsRejected.Load(),
		}
		add := func(dst *[]collector.ReasonCount) func(string, uint64) {
			return func(r string, n uint64) { *dst = append(*dst, collector.ReasonCount{Reason: r, Count: n}) }
		}
		st.ParseErrors(add(&ss.ParseErrors))
		st.Skips(add(&ss.Skipped))
		st.Encapsulations(add(&ss.Encaps))
		st.Evictions(add(&ss.TCPEvictions))
		st.Reassembled(add(&ss.IPReassembled))
		st.FragmentDrops(func(f, r string, n uint64) {
			ss.IPFragmentsDrops = append(ss.IPFragmentsDrops, collector.FragmentDropCount{Family: f, Reason: r, Count: n})
		})
		st.HEPErrors(add(&ss.HEPErrors))
		st.HEPTypes(func(t uint8, n uint64) {
			ss.HEPNonSIP = append(ss.HEPNonSIP, collector.ReasonCount{Reason: strconv.Itoa(int(t)), Count: n})
		})
		out = append(out, ss)
	}
	return out
}
