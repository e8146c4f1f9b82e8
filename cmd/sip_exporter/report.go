package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/merge"
	"github.com/sip-exporter/sip_exporter/capture/pipeline"
	"github.com/sip-exporter/sip_exporter/collector"
	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// runReport reads o.reportFiles through the pipeline and prints the counts.
// Exit code 1 when a file cannot be read; a truncated file is a warning.
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
	p, err := pipeline.New(o.pipeline)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
		return 1
	}
	var stats decode.Stats
	if err := readSources(p, files, o.workers, &stats, func(err error) {
		fmt.Fprintf(stderr, "%s: warning: %v; counted what came before\n", program, err)
	}); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
		return 1
	}
	p.End() // sessions still without a final response time out
	switch o.reportFormat {
	case "prometheus":
		err = writeExposition(stdout, p)
	default:
		err = writeTable(stdout, p.SIP(), &stats)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
		return 1
	}
	return 0
}

// reportMaxPending is the merge's MaxPending in the report command.
const reportMaxPending = 1 << 16

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
	ctx := context.Background()
	opened := make([]*input.File, 0, len(files))
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	producers := make([][]*pipeline.Producer, len(files))
	statsOf := make([][]*decode.Stats, len(files))
	for i, file := range files {
		f, err := input.OpenFile(input.FileConfig{Path: file.name}, workers)
		if err != nil {
			return file.openError(err)
		}
		opened = append(opened, f)
		statsOf[i] = make([]*decode.Stats, f.Workers())
		for w := range statsOf[i] {
			statsOf[i][w] = new(decode.Stats)
		}
		producers[i] = fileProducers(ctx, p, f, file.name, merge.Exact, p.SourceNode(file.node), statsOf[i])
	}
	p.Seal()
	merged := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(merged)
	}()
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range opened {
		wg.Go(func() { errs[i] = pipeline.ReadFile(ctx, f, producers[i]) })
	}
	wg.Wait()
	<-merged
	for _, ss := range statsOf {
		for _, st := range ss {
			st.AddTo(stats)
		}
	}
	for _, err := range errs {
		switch {
		case errors.Is(err, input.ErrTruncated), errors.Is(err, input.ErrShrunk):
			warn(err)
		case err != nil:
			return err
		}
	}
	return nil
}

// writeExposition writes the text exposition of the sip_ families of p
// (not the sip_exporter_ self-metrics), as /metrics serves them.
func writeExposition(w io.Writer, p *pipeline.Pipeline) error {
	reg := prometheus.NewPedanticRegistry()
	for _, c := range p.Collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "sip_exporter_") {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// writeTable writes one row per (code, method) in order of code then
// method, a total per class, and the totals of the run. With nodes other
// than the unnamed one, each node gets its own block.
func writeTable(w io.Writer, c *collector.SIP, stats *decode.Stats) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	nodes := c.Nodes()
	named := len(nodes) > 1 || (len(nodes) == 1 && (nodes[0].Label() != "" || nodes[0].Peer() != ""))
	for i, node := range nodes {
		if named {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			if node.Peer() != "" {
				fmt.Fprintf(tw, "node %q peer %q direction %s\n", node.Label(), node.Peer(), node.Direction())
			} else {
				fmt.Fprintf(tw, "node %q\n", node.Label())
			}
		}
		writeNodeTable(tw, node)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var errs uint64
	var reasons []string
	stats.ParseErrors(func(r string, n uint64) {
		if n > 0 {
			errs += n
			reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		}
	})
	detail := ""
	if len(reasons) > 0 {
		detail = " (" + strings.Join(reasons, ", ") + ")"
	}
	_, err := fmt.Fprintf(w, "\n%d packets, %d bytes, %d parse errors%s\n", stats.Packets.Load(), stats.Bytes.Load(), errs, detail)
	return err
}

// writeNodeTable writes the rows of one node.
func writeNodeTable(tw io.Writer, node *collector.Node) {
	fmt.Fprintln(tw, "CODE\tREASON\tCLASS\tMETHOD\tCOUNT")
	var classTotal, total uint64
	class := ""
	flush := func() {
		if class != "" {
			fmt.Fprintf(tw, "\t\t%s\ttotal\t%d\n", class, classTotal)
		}
	}
	node.EachResponse(func(code int, m collector.Method, n uint64) {
		if cl := sipstatus.Class(code); cl != class {
			flush()
			class, classTotal = cl, 0
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\n", code, sipstatus.Text(code), class, m, n)
		classTotal += n
		total += n
	})
	flush()
	var requests uint64
	for m := range collector.Methods {
		requests += node.Request(collector.Method(m))
	}
	fmt.Fprintf(tw, "\t\tall\tresponses\t%d\n", total)
	fmt.Fprintf(tw, "\t\tall\trequests\t%d\n", requests)
}
