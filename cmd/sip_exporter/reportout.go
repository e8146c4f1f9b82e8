package main

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
	dto "github.com/prometheus/client_model/go"

	"github.com/sip-exporter/sip_exporter/capture/pipeline"
)

// newSummary returns the summary of the files read into rd and p, whose
// sip_ families are mfs.
func newSummary(files []namedSource, rd *reading, p *pipeline.Pipeline, mfs []*dto.MetricFamily) *summary {
	s := &summary{Version: summaryVersion, Files: make([]summaryFile, len(files))}
	s.Capture.ParseErrorsByReason = map[string]uint64{}
	var first, last *time.Time
	for i, file := range files {
		fr := rd.files[i]
		sf := summaryFile{Path: file.name, Node: file.node, Packets: fr.stats.Packets.Load(), Bytes: fr.stats.Bytes.Load(), Truncated: fr.truncated}
		if t := fr.latest.Load(); t != math.MinInt64 {
			sf.LastPacketTime = timeOf(t)
			if ft, ok := firstPacketTime(file.name); ok {
				sf.FirstPacketTime = &ft
			}
		}
		sf.DurationSeconds = spanSeconds(sf.FirstPacketTime, sf.LastPacketTime)
		s.Files[i] = sf
		if sf.FirstPacketTime != nil && (first == nil || sf.FirstPacketTime.Before(*first)) {
			first = sf.FirstPacketTime
		}
		if sf.LastPacketTime != nil && (last == nil || sf.LastPacketTime.After(*last)) {
			last = sf.LastPacketTime
		}
		c := &s.Capture
		c.Packets += sf.Packets
		c.Bytes += sf.Bytes
		c.SIPMessages += fr.stats.Requests.Load() + fr.stats.Responses.Load()
		fr.stats.ParseErrors(func(reason string, n uint64) {
			if n > 0 {
				c.ParseErrors += n
				c.ParseErrorsByReason[reason] += n
			}
		})
	}
	s.Capture.FirstPacketTime, s.Capture.LastPacketTime = first, last
	s.Capture.DurationSeconds = spanSeconds(first, last)
	s.Capture.DuplicatesRemoved = p.DuplicatesRemoved()
	s.TransactionsTracked = !p.Config().NoTx
	s.Total, s.LabelSets = summarize(mfs, s.TransactionsTracked)
	if s.LabelSets == nil {
		s.LabelSets = []labelSetSummary{}
	}
	return s
}

// timeOf returns the time of t ns since the Unix epoch, in UTC.
func timeOf(t int64) *time.Time {
	u := time.Unix(0, t).UTC()
	return &u
}

// spanSeconds returns last - first in seconds, 0 when either is nil.
func spanSeconds(first, last *time.Time) float64 {
	if first == nil || last == nil {
		return 0
	}
	return last.Sub(*first).Seconds()
}

// firstPacketTime returns the capture time of the first record of a pcap
// or pcapng file, gzip'd or not, as input reads it; false for a NetMon
// file, one without records, or one that cannot be read.
func firstPacketTime(path string) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return time.Time{}, false
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	magic, err := br.Peek(4)
	if err != nil {
		return time.Time{}, false
	}
	var r interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	switch {
	case string(magic) == "GMBU": // NetMon 2.x
		return time.Time{}, false
	case binary.LittleEndian.Uint32(magic) == 0x0A0D0D0A: // pcapng section header block
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return time.Time{}, false
		}
		r = ng
	default:
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return time.Time{}, false
		}
		r = pr
	}
	_, ci, err := r.ReadPacketData()
	if err != nil {
		return time.Time{}, false
	}
	return ci.Timestamp.UTC(), true
}

// writeJSON writes s as one JSON document.
func writeJSON(w io.Writer, s *summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// writeTable writes s for people: the capture, then per label set (a
// block each when there is more than one, or a named one) the requests,
// the responses with a total per class, the sessions with their ratios
// and delays, their outcomes, the registrations and the Reason causes;
// with several label sets, the total last.
func writeTable(w io.Writer, s *summary) error {
	bw := bufio.NewWriter(w)
	c := s.Capture
	files := "files"
	if len(s.Files) == 1 {
		files = "file"
	}
	fmt.Fprintf(bw, "%d %s, %d packets, %d bytes, %d SIP messages", len(s.Files), files, c.Packets, c.Bytes, c.SIPMessages)
	if c.DuplicatesRemoved > 0 {
		fmt.Fprintf(bw, " (%d copies removed)", c.DuplicatesRemoved)
	}
	fmt.Fprintf(bw, ", %d parse errors", c.ParseErrors)
	if c.ParseErrors > 0 {
		var reasons []string
		for r, n := range c.ParseErrorsByReason {
			reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		}
		slices.Sort(reasons)
		fmt.Fprintf(bw, " (%s)", strings.Join(reasons, ", "))
	}
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "capture: %s\n", spanText(c.summarySpan))
	named := len(s.LabelSets) > 1 || (len(s.LabelSets) == 1 && (s.LabelSets[0].Node != "" || s.LabelSets[0].Peer != ""))
	for _, ls := range s.LabelSets {
		fmt.Fprintln(bw)
		if named {
			switch {
			case ls.Peer != "":
				fmt.Fprintf(bw, "== node %q peer %q direction %s\n\n", ls.Node, ls.Peer, ls.Direction)
			default:
				fmt.Fprintf(bw, "== node %q\n\n", ls.Node)
			}
		}
		writeCounts(bw, &ls.countsSummary, s.TransactionsTracked)
	}
	if len(s.LabelSets) > 1 {
		fmt.Fprintf(bw, "\n== all %d label sets\n\n", len(s.LabelSets))
		writeCounts(bw, &s.Total, s.TransactionsTracked)
	}
	return bw.Flush()
}

// writeCounts writes the tables of one label set, or of all; without
// tracking, retransmissions are not shown; sessions and registrations
// only when there were some.
func writeCounts(w io.Writer, ls *countsSummary, tracking bool) {
	retrans := func(n uint64) string {
		if !tracking {
			return ""
		}
		return "\t" + strconv.FormatUint(n, 10)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "REQUEST\tCOUNT%s\n", header(tracking, "\tRETRANSMITTED"))
	var requests, requestsRetrans uint64
	for _, r := range ls.Requests {
		fmt.Fprintf(tw, "%s\t%d%s\n", r.Method, r.Count, retrans(r.Retransmissions))
		requests += r.Count
		requestsRetrans += r.Retransmissions
	}
	fmt.Fprintf(tw, "all\t%d%s\n", requests, retrans(requestsRetrans))
	tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "CODE\tREASON\tCLASS\tMETHOD\tCOUNT%s\n", header(tracking, "\tRETRANSMITTED"))
	var classTotal, classRetrans, total, totalRetrans uint64
	class := ""
	flush := func() {
		if class != "" {
			fmt.Fprintf(tw, "\t\t%s\ttotal\t%d%s\n", class, classTotal, retrans(classRetrans))
		}
	}
	for _, r := range ls.Responses {
		if r.Class != class {
			flush()
			class, classTotal, classRetrans = r.Class, 0, 0
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d%s\n", r.Code, r.Reason, r.Class, r.Method, r.Count, retrans(r.Retransmissions))
		classTotal += r.Count
		classRetrans += r.Retransmissions
		total += r.Count
		totalRetrans += r.Retransmissions
	}
	flush()
	fmt.Fprintf(tw, "\t\tall\tresponses\t%d%s\n", total, retrans(totalRetrans))
	tw.Flush()

	if ss := ls.Sessions; ss != nil && (ss.Attempts > 0 || ss.ActiveAtEnd > 0) {
		rows := [][3]string{
			{"attempts", fmt.Sprint(ss.Attempts), "initial INVITE transactions; a challenged one and its re-send are one"},
			{"challenged", fmt.Sprint(ss.Challenges), "401/407 answered by a re-send with credentials: not outcomes"},
			{"answered", fmt.Sprint(ss.Answered), "2xx"},
			{"timed out", fmt.Sprint(ss.Timeouts), "no final response"},
			{"completed", fmt.Sprint(ss.Completed), "answered, then ended by a BYE"},
			{"still up at the end", fmt.Sprint(ss.ActiveAtEnd), "answered, no BYE seen"},
			{"ASR", percent(ss.ASR), "answered / attempts (ITU-T E.411)"},
			{"NER", percent(ss.NER), "answered, busy, no answer, rejected or unknown number / attempts (ITU-T E.411)"},
			{"SER", percent(ss.SER), "200 / (attempts - 3xx) (RFC 6076 §4.6)"},
			{"SEER", percent(ss.SEER), "200, 480, 486, 600, 603 / (attempts - 3xx) (RFC 6076 §4.7)"},
			{"ISA", percent(ss.ISA), "408, 500, 503, 504, timed out / attempts (RFC 6076 §4.8)"},
			{"SCR", percent(ss.SCR), "completed / attempts (RFC 6076 §4.9)"},
			{"ACD", seconds(ss.ACDSeconds), "average duration of the completed sessions"},
		}
		writeRows(w, "SESSIONS", append(rows, delayRows("SRD", ss.SRD, "RFC 6076 §4.3")...))
		if len(ss.Outcomes) > 0 || ss.Timeouts > 0 {
			fmt.Fprintln(w)
			tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "OUTCOME\tREASON\tATTEMPTS\tSHARE")
			for _, o := range ss.Outcomes {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", o.Code, o.Reason, o.Count, percent(ratio(float64(o.Count), float64(ss.Attempts))))
			}
			if ss.Timeouts > 0 {
				fmt.Fprintf(tw, "-\ttimed out\t%d\t%s\n", ss.Timeouts, percent(ratio(float64(ss.Timeouts), float64(ss.Attempts))))
			}
			tw.Flush()
		}
	}
	if rs := ls.Registrations; rs != nil && rs.Attempts > 0 {
		rows := [][3]string{
			{"attempts", fmt.Sprint(rs.Attempts), "REGISTER transactions; a challenged one and its re-send are one"},
			{"challenged", fmt.Sprint(rs.Challenges), "401/407 answered by a re-send with credentials"},
			{"failed", fmt.Sprint(rs.Failures), "final response other than 2xx, 401, 407"},
			{"timed out", fmt.Sprint(rs.Timeouts), "no final response"},
			{"registered at the end", fmt.Sprint(rs.ActiveAtEnd), "addresses of record"},
			{"IRA", percent(rs.IRA), "failed, timed out / attempts (RFC 6076 §4.2)"},
		}
		writeRows(w, "REGISTRATIONS", append(rows, delayRows("RRD", rs.RRD, "RFC 6076 §4.1")...))
	}
	if len(ls.ReasonCauses) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "REASON\tCAUSE\tTEXT\tCOUNT")
		for _, c := range ls.ReasonCauses {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", c.Protocol, c.Cause, c.Text, c.Count)
		}
		tw.Flush()
	}
}

// writeRows writes a blank line, the title and rows of a name, a value
// and what it means, aligned.
func writeRows(w io.Writer, title string, rows [][3]string) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, title)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r[0], r[1], r[2])
	}
	tw.Flush()
}

// delayRows returns the rows of a delay metric (SRD, RRD) by outcome,
// those with observations: its percentiles, count and RFC section.
func delayRows(name string, delays map[string]delaySummary, section string) [][3]string {
	var rows [][3]string
	for _, outcome := range []string{"success", "failure", "challenge"} {
		if d := delays[outcome]; d.Count > 0 {
			rows = append(rows, [3]string{name + " " + outcome, fmt.Sprintf("p50 %s, p95 %s", seconds(d.P50), seconds(d.P95)), fmt.Sprintf("of %d (%s)", d.Count, section)})
		}
	}
	return rows
}

// header returns h when tracking, else "".
func header(tracking bool, h string) string {
	if !tracking {
		return ""
	}
	return h
}

// spanText renders a time span: "2006-01-02 15:04:05.000 to 15:05:00.123
// UTC (55.123s)", the date repeated when it changes.
func spanText(s summarySpan) string {
	const day, clock = "2006-01-02 ", "15:04:05.000"
	switch {
	case s.FirstPacketTime == nil && s.LastPacketTime == nil:
		return "no packets"
	case s.FirstPacketTime == nil:
		return "until " + s.LastPacketTime.Format(day+clock) + " UTC"
	}
	first, last := *s.FirstPacketTime, *s.LastPacketTime
	to := last.Format(clock)
	if first.Format(day) != last.Format(day) {
		to = last.Format(day + clock)
	}
	return fmt.Sprintf("%s to %s UTC (%s)", first.Format(day+clock), to, durationText(last.Sub(first)))
}

// durationText renders d to the millisecond, days apart from a day on:
// "2d3h4m5.006s".
func durationText(d time.Duration) string {
	d = d.Round(time.Millisecond)
	if days := d / (24 * time.Hour); days > 0 {
		return fmt.Sprintf("%dd%s", days, d-days*24*time.Hour)
	}
	return d.String()
}

// percent renders a ratio as a percentage with one decimal, "-" for nil.
func percent(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *r*100)
}

// seconds renders seconds as a duration rounded to the millisecond (to
// the second from a minute on), "-" for nil.
func seconds(s *float64) string {
	if s == nil {
		return "-"
	}
	d := time.Duration(*s * float64(time.Second))
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}
