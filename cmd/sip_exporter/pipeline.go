package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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
	nodeName string // node label of interface and file sources
	maxNodes int
}

// pipeline connects decoders to the SIP collector.
type pipeline struct {
	cfg  pipelineConfig
	sip  *collector.SIP
	node *collector.Node // of interface and file sources
}

func newPipeline(cfg pipelineConfig) (*pipeline, error) {
	dc := capture.DefaultConfig()
	dc.TCP = cfg.tcp
	if _, err := capture.NewDecoder(dc, new(capture.Stats), nil); err != nil {
		return nil, err
	}
	if cfg.maxNodes < 1 {
		return nil, fmt.Errorf("--hep.max-nodes %d: must be at least 1", cfg.maxNodes)
	}
	c := collector.NewSIP(cfg.maxNodes)
	return &pipeline{cfg: cfg, sip: c, node: c.Node([]byte(cfg.nodeName))}, nil
}

// observe counts one SIP message under node n.
func observe(n *collector.Node, m *sip.Message) {
	if m.Response {
		n.ObserveResponse(m.StatusCode, m.CSeqMethod)
	} else {
		n.ObserveRequest(m.Method)
	}
}

// decoder returns a new decoder for one source, counting into stats.
func (p *pipeline) decoder(stats *capture.Stats) *capture.Decoder {
	dc := capture.DefaultConfig()
	dc.TCP = p.cfg.tcp
	node := p.node
	d, err := capture.NewDecoder(dc, stats, func(m *sip.Message) { observe(node, m) })
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

// newSources checks the source flags and returns the sources, or an error
// that names the problem.
func newSources(o *options) ([]*source, error) {
	if len(o.interfaces) == 0 && len(o.pcapFiles) == 0 {
		return nil, fmt.Errorf("no packet source: give at least one --capture.interface or --capture.pcap-file")
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
		}
		add := func(dst *[]collector.ReasonCount) func(string, uint64) {
			return func(r string, n uint64) { *dst = append(*dst, collector.ReasonCount{Reason: r, Count: n}) }
		}
		st.ParseErrors(add(&ss.ParseErrors))
		st.Skips(add(&ss.Skipped))
		st.Evictions(add(&ss.TCPEvictions))
		out = append(out, ss)
	}
	return out
}
