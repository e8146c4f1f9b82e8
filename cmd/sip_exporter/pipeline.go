package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/merge"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
)

// defaultPipelineConfig returns the defaults of the flags.
func defaultPipelineConfig() pipeline.Config {
	cfg := pipeline.DefaultConfig()
	cfg.Shards = defaultShards(runtime.NumCPU())
	return cfg
}

// defaultShards is the default of --capture.shards on a machine of cpus
// CPUs: one per CPU, at most 8, as --capture.workers.
func defaultShards(cpus int) int { return min(max(cpus, 1), 8) }

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
	// in is the source's producer (nil with ownDecoders), added by
	// newSources before the merge runs, so that no file is merged before
	// the others are in.
	in *pipeline.Producer
	// node is the node of its messages that bring none of their own.
	node *pipeline.SourceNode
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
func hepSources(ctx context.Context, o *options, p *pipeline.Pipeline) ([]*source, error) {
	cfg := o.hep
	cfg.ReadInterval = p.Config().Merge.ReadInterval() // the time model: readers wake with the merge
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
	dc := p.Config().DecoderConfig()
	dc.HEP.Decapsulate, dc.HEP.AuthKey = true, o.hepAuthKey
	// A HEP packet names its node; one without is counted under
	// --capture.node-name.
	sn := p.SourceNode("")
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
		udpSource := p.Source(udp.Name)
		ds := make([]*decode.Decoder, cfg.UDPWorkers)
		for i, st := range udp.Stats.NewWorkers(cfg.UDPWorkers) {
			ds[i] = p.NewProducer(ctx, udpSource, merge.Live, 0, dc, st, sn).Decoder()
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
		tcpSource := p.Source(tcp.Name)
		newDecoder := func() (*decode.Decoder, func()) {
			pr := p.NewProducer(ctx, tcpSource, merge.Live, hepConnQueueSize, dc, &tcp.Stats.Decode, sn)
			return pr.Decoder(), pr.Close
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
func newSources(ctx context.Context, o *options, p *pipeline.Pipeline) ([]*source, error) {
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
	if c := p.Config().Merge.ClockThreshold(); len(o.interfaces) > 0 && o.blockTimeout >= c {
		return nil, fmt.Errorf("--capture.block-timeout %v: must be below the clock threshold %v (a tenth of --capture.max-lateness %v, at most 100ms), or a right kernel clock whose packets waited in the ring would be corrected", o.blockTimeout, c, p.Config().Merge.Lateness)
	}
	ifaces, err := parseSources("--capture.interface", o.interfaces)
	if err != nil {
		return nil, err
	}
	files, err := parseSources("--capture.pcap-file", o.pcapFiles)
	if err != nil {
		return nil, err
	}
	if err := checkSourceNodes(o.pipeline.NodeName, o.pipeline.MaxNodes, ifaces, files); err != nil {
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
			node: p.SourceNode(iface.node), ownDecoders: true}
		// A decoder, counters and producer per capture worker
		// (--capture.workers), made once and kept across reopenings; the
		// workers share the source's reassembly limits.
		dc, in := p.Config().DecoderConfig().Split(o.workers), p.Source(name)
		ds := make([]*decode.Decoder, o.workers)
		for i, st := range s.Stats.NewWorkers(o.workers) {
			ds[i] = p.NewProducer(ctx, in, merge.Live, 0, dc, st, s.node).Decoder()
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
		s := &source{Source: input.Source{Name: path, Type: "pcap"}, kind: kind, node: p.SourceNode(file.node), ownDecoders: true}
		producers := fileProducers(ctx, p, f, path, kind, s.node, s.Stats.NewWorkers(f.Workers()))
		s.run = func(ctx context.Context, _ *decode.Decoder, _ *input.Stats, started func()) error {
			started()
			defer f.Close()
			return pipeline.ReadFile(ctx, f, producers, nil)
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
			s.in = p.NewProducer(ctx, p.Source(s.Name), s.kind, 0, p.Config().DecoderConfig(), &s.Stats.Decode, s.node)
		}
	}
	return sources, nil
}

// fileProducers returns the producers of the workers of file f of source
// name, of merge kind k, counting into stats (one per worker).
func fileProducers(ctx context.Context, p *pipeline.Pipeline, f *input.File, name string, k merge.Kind, sn *pipeline.SourceNode, stats []*decode.Stats) []*pipeline.Producer {
	src := p.Source(name)
	producers := make([]*pipeline.Producer, f.Workers())
	for w := range producers {
		producers[w] = p.NewProducer(ctx, src, k, 0, p.Config().DecoderConfig(), stats[w], sn)
	}
	return producers
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
func startSources(ctx context.Context, sources []*source, restarts *prometheus.CounterVec, logger *slog.Logger) error {
	for _, s := range sources {
		startedc := make(chan struct{})
		errc := make(chan error, 1)
		in := s.in
		var d *decode.Decoder
		if in != nil {
			d = in.Decoder()
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
