package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/merge"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
)

// runReport reads o.reportFiles through the pipeline and prints the
// summary (table, json) or the exposition (prometheus). Exit code 1 when a
// file cannot be read; a truncated file is a warning.
func runReport(o *options, stdout, stderr io.Writer) int {
	files, err := parseSources("file", o.reportFiles)
	if err == nil {
		err = checkSourceNodes(o.pipeline.NodeName, o.pipeline.MaxNodes, files)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
		return 1
	}
	for _, file := range files {
		f, err := os.Open(file.name)
		if err != nil {
			fmt.Fprintf(stderr, "%s: error: %v\n", program, file.openError(err))
			return 1
		}
		f.Close()
	}
	if err := o.loadConfig(); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
		return 1
	}
	// The workers of one file run apart by at most what the merge drains
	// ahead of the slowest (half of MaxPending): that is also how much of
	// the mapped file is resident at once: 2^16 messages, some tens of MB.
	o.pipeline.Merge.MaxPending = reportMaxPending
	o.pipeline.Offline = true // nothing is served
	p, err := pipeline.New(o.pipeline)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
		return 1
	}
	var progress *progressLine
	if isTerminal(stderr) {
		progress = &progressLine{w: stderr, after: reportProgressAfter, every: time.Second}
	}
	rd, err := readCaptures(p, files, o.workers, progress, func(err error) {
		fmt.Fprintf(stderr, "%s: warning: %v; counted what came before\n", program, err)
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
		return 1
	}
	p.End() // sessions still without a final response time out
	mfs, err := gatherSIP(p)
	if err == nil {
		switch o.reportFormat {
		case "prometheus":
			err = encodeExposition(stdout, mfs)
		case "json":
			err = writeJSON(stdout, newSummary(files, rd, p, mfs))
		default:
			err = writeTable(stdout, newSummary(files, rd, p, mfs))
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
		return 1
	}
	return 0
}

// reportMaxPending is the merge's MaxPending in the report command.
const reportMaxPending = 1 << 16

// reportProgressAfter is how long report reads before it shows a progress
// line on a terminal.
const reportProgressAfter = 3 * time.Second

// readFiles reads the capture files at once, each through decoders of p
// of its own (counting into stats), and merges their messages by capture
// time, as mergecap does, before they are counted and tracked: rotated
// captures and captures of one traffic on several interfaces give the
// transactions of the whole. A plain pcap file is read in place by workers
// decoders at once, each taking the packets of its share of the IP address
// pairs (input.File), and their messages are merged back into the
// file's order; other files (pcapng, compressed, NetMon) by one. A
// truncated file, or one cut shorter while it was read, is passed to warn
// and what it held is counted; any other error is returned once every
// file has been read.
func readFiles(p *pipeline.Pipeline, paths []string, workers int, stats *decode.Stats, warn func(error)) error {
	files := make([]namedSource, len(paths))
	for i, path := range paths {
		files[i] = namedSource{name: path, arg: path}
	}
	return readSources(p, files, workers, stats, warn)
}

// readSources is readFiles of files each with its own node, or none
// (--capture.node-name).
func readSources(p *pipeline.Pipeline, files []namedSource, workers int, stats *decode.Stats, warn func(error)) error {
	rd, err := readCaptures(p, files, workers, nil, warn)
	if rd != nil {
		for _, f := range rd.files {
			f.stats.AddTo(stats)
		}
	}
	return err
}

// reading is what reading the capture files gave beside the counts of
// the pipeline: per file, its decoders' counts, the latest capture time
// of its records and whether it was cut short.
type reading struct {
	files []*fileReading
}

// fileReading is the reading of one file.
type fileReading struct {
	workers []*decode.Stats // per worker, counted while it reads
	stats   decode.Stats    // their sum, once read
	// latest is the latest capture time (ns) that the file's walk
	// reported (every 1,024 records and at its end), math.MinInt64
	// before.
	latest    atomic.Int64
	truncated bool
}

// packets returns the packets decoded so far, over every file; it may run
// while the files are read.
func (r *reading) packets() uint64 {
	var n uint64
	for _, f := range r.files {
		for _, st := range f.workers {
			n += st.Packets.Load()
		}
	}
	return n
}

// latest returns the latest capture time reported so far over every file,
// ns, or math.MinInt64.
func (r *reading) latest() int64 {
	t := int64(math.MinInt64)
	for _, f := range r.files {
		t = max(t, f.latest.Load())
	}
	return t
}

// readCaptures is readSources that returns the reading, and shows
// progress, when not nil, while the files are read. The reading is nil
// when a file cannot be opened.
func readCaptures(p *pipeline.Pipeline, files []namedSource, workers int, progress *progressLine, warn func(error)) (*reading, error) {
	ctx := context.Background()
	opened := make([]*input.File, 0, len(files))
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	rd := &reading{files: make([]*fileReading, len(files))}
	producers := make([][]*pipeline.Producer, len(files))
	for i, file := range files {
		f, err := input.OpenFile(input.FileConfig{Path: file.name}, workers)
		if err != nil {
			return nil, file.openError(err)
		}
		opened = append(opened, f)
		fr := &fileReading{workers: make([]*decode.Stats, f.Workers())}
		fr.latest.Store(math.MinInt64)
		for w := range fr.workers {
			fr.workers[w] = new(decode.Stats)
		}
		rd.files[i] = fr
		producers[i] = fileProducers(ctx, p, f, file.name, merge.Exact, p.SourceNode(file.node), fr.workers)
	}
	p.Seal()
	merged := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(merged)
	}()
	progress.start(rd)
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range opened {
		latest := &rd.files[i].latest
		wg.Go(func() {
			errs[i] = pipeline.ReadFile(ctx, f, producers[i], func(t int64) {
				for old := latest.Load(); t > old && !latest.CompareAndSwap(old, t); old = latest.Load() {
				}
			})
		})
	}
	wg.Wait()
	<-merged
	progress.end()
	for _, fr := range rd.files {
		for _, st := range fr.workers {
			st.AddTo(&fr.stats)
		}
	}
	for i, err := range errs {
		switch {
		case errors.Is(err, input.ErrTruncated), errors.Is(err, input.ErrShrunk):
			rd.files[i].truncated = true
			warn(err)
		case err != nil:
			return rd, err
		}
	}
	return rd, nil
}

// gatherSIP returns the sip_ families of p (not the sip_exporter_
// self-metrics), as /metrics serves them.
func gatherSIP(p *pipeline.Pipeline) ([]*dto.MetricFamily, error) {
	reg := prometheus.NewPedanticRegistry()
	for _, c := range p.Collectors() {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool { return strings.HasPrefix(mf.GetName(), "sip_exporter_") }), nil
}

// writeExposition writes the text exposition of the sip_ families of p
// (not the sip_exporter_ self-metrics), as /metrics serves them.
func writeExposition(w io.Writer, p *pipeline.Pipeline) error {
	mfs, err := gatherSIP(p)
	if err != nil {
		return err
	}
	return encodeExposition(w, mfs)
}

// encodeExposition writes the text exposition of the families mfs.
func encodeExposition(w io.Writer, mfs []*dto.MetricFamily) error {
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
