package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"
)

// The transaction test's SIPp pairs use 127.0.2.0/24: UAS on .10+2i, UAC
// on the next address.
const (
	txCIDR  = "127.0.2.0/24"
	txCalls = 10
	txLost  = 20 // percent of the UAS's received requests that SIPp ignores
)

// txMix is the traffic of the transaction test: each INVITE pair has one
// final response, so the outcomes are known from the call counts. The UACs
// measure their response times (SIPp rtd, see the _rtd scenarios).
var txMix = []sippPair{
	{name: "invite-200", uas: "uas_invite.xml", uac: "uac_invite_rtd.xml", uasArgs: []string{"-set", "code", "200"}},
	{name: "invite-486", uas: "uas_invite.xml", uac: "uac_invite_rtd.xml", uasArgs: []string{"-set", "code", "486"}},
	{name: "invite-603", uas: "uas_invite.xml", uac: "uac_invite_rtd.xml", uasArgs: []string{"-set", "code", "603"}},
	{name: "invite-503", uas: "uas_invite_reject.xml", uac: "uac_invite_rtd.xml"},
	{name: "register", uas: "uas_register.xml", uac: "uac_register_rtd.xml"},
	{name: "options", uas: "uas_options.xml", uac: "uac_options.xml"},
}

// txSRDOutcome is the SRD outcome of the calls of each INVITE UAS
// scenario (RFC 6076 §4.3): uas_invite.xml always sends 180 Ringing before
// its final response (success), uas_invite_reject.xml rejects with 503
// without ringing (failure). SIPp's rtd "srd" ends at whichever comes
// first, but its log does not say which, hence this table.
var txSRDOutcome = map[string]string{"uas_invite.xml": "success", "uas_invite_reject.xml": "failure"}

// txRTD maps the rtd names of the _rtd scenarios to the exporter's
// histogram series, keyed like txScrape ("srd" is resolved with
// txSRDOutcome).
var txRTD = map[string]string{
	"sdd": "sip_session_disconnect_delay_seconds",
	// From the first REGISTER to the 200, the 401 challenge within: one
	// registration attempt (RFC 6076 §4.1).
	"rrd": "sip_registration_request_delay_seconds{outcome=success}",
}

// TestLiveTransactionsSIPp runs the real binary capturing on lo while SIPp
// pairs play answered, busy and declined calls, REGISTER and OPTIONS over
// UDP, with the UAS ignoring txLost % of the requests it receives (SIPp's
// lost attribute on its <recv>, see uasLossRE), so that the UAC
// retransmits them (RFC 3261 Timer A/E) and the UAS, missing the ACK of a
// rejection, retransmits the rejection (Timer G), which the UAC ACKs again.
// It checks:
//
//   - sip_session_attempts_total grew by the INVITEs the UACs sent, and
//     sip_session_outcomes_total by their calls per final response;
//   - sip_request_retransmissions_total and sip_response_retransmissions_total
//     grew by the retransmissions in SIPp's -trace_counts (the Retrans
//     columns), and by the repeats in SIPp's -trace_msg logs of what went on
//     the wire;
//   - the SRD, RRD and SDD histograms (sip_session_request_delay_seconds
//     per outcome, sip_registration_request_delay_seconds per outcome,
//     sip_session_disconnect_delay_seconds) grew by as many samples as the
//     UACs' response-time logs hold (-trace_rtt -rtt_freq 1, one line per
//     rtd sample), and their sums by SIPp's sums within the tolerance of
//     txDelayTolerance.
func TestLiveTransactionsSIPp(t *testing.T) {
	requireLive(t, "sipp")
	start := time.Now()
	bin := buildExporter(t)
	_, ipnet, err := net.ParseCIDR(txCIDR)
	if err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, bin, "--capture.interface="+liveInterface, "--capture.bpf-file="+writeNetFilter(t, ipnet))
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	e.settle(t, 5*time.Second)
	// SIPp's lost= is random: a round in which it lost nothing (seen
	// once in CI) tests no retransmission, so it is run once more.
	var wantCounts, wantWire, got map[string]float64
	var wantRTT map[string][]float64    // SIPp's rtd samples, seconds, keyed like txScrape
	var gotDelays map[string]delayStats // the exporter's, grown during the round
	for attempt := 1; ; attempt++ {
		before, beforeDelays := txScrape(t, e)

		dir := t.TempDir()
		type pairResult struct {
			counts, wire map[string]float64
			rtt          map[string][]float64
		}
		results := make([]pairResult, len(txMix))
		runEach(t, len(txMix), func(i int) error {
			p := txMix[i]
			uasIP, uacIP := fmt.Sprintf("127.0.2.%d", 10+2*i), fmt.Sprintf("127.0.2.%d", 11+2*i)
			counts, wire, rtt, err := runLossyPair(t, filepath.Join(dir, p.name), p, uasIP, uacIP)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			results[i] = pairResult{counts, wire, rtt}
			return nil
		})
		wantCounts, wantWire, wantRTT = map[string]float64{}, map[string]float64{}, map[string][]float64{}
		var errs []error
		for i, r := range results {
			p := txMix[i]
			for name, samples := range r.rtt {
				key, ok := txRTD[name]
				if name == "srd" {
					key, ok = "sip_session_request_delay_seconds{outcome="+txSRDOutcome[p.uas]+"}", txSRDOutcome[p.uas] != ""
				}
				if !ok {
					errs = append(errs, fmt.Errorf("%s: rtd %q of %s is not a delay the test knows", p.name, name, p.uac))
					continue
				}
				wantRTT[key] = append(wantRTT[key], samples...)
			}
			for k, v := range r.counts {
				wantCounts[k] += v
			}
			for k, v := range r.wire {
				wantWire[k] += v
			}
			if code, ok := strings.CutPrefix(p.name, "invite-"); ok {
				wantCounts["sip_session_attempts_total"] += txCalls
				wantCounts["sip_session_outcomes_total{code="+code+"}"] += txCalls
			}
		}
		if len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		e.settle(t, 5*time.Second)
		time.Sleep(200 * time.Millisecond) // the tracker's queue drains within a few ms
		after, afterDelays := txScrape(t, e)
		got = map[string]float64{}
		for k, v := range after {
			if d := v - before[k]; d != 0 {
				got[k] = d
			}
		}
		gotDelays = map[string]delayStats{}
		for k, v := range afterDelays {
			b := beforeDelays[k]
			if d := (delayStats{v.count - b.count, v.sum - b.sum}); d.count != 0 {
				gotDelays[k] = d
			}
		}
		var retrans float64
		for k, v := range wantCounts {
			if strings.Contains(k, "retransmissions") {
				retrans += v
			}
		}
		if retrans > 0 || attempt == 2 {
			break
		}
		t.Logf("round %d: SIPp lost nothing, so nothing was retransmitted; once more", attempt)
	}
	if retrans := func() (n float64) {
		for k, v := range wantCounts {
			if strings.Contains(k, "retransmissions") {
				n += v
			}
		}
		return n
	}(); retrans == 0 {
		t.Errorf("SIPp reports no retransmission in two rounds: the loss did not work")
	}
	for _, cmp := range []struct {
		what     string
		want     map[string]float64
		sessions bool // compare the sip_session_ counters too
	}{{"SIPp -trace_counts and call counts", wantCounts, true}, {"SIPp -trace_msg (the wire)", wantWire, false}} {
		var diff []string
		var also []string // of got, those the comparison covers without want
		for k := range got {
			if strings.Contains(k, "retransmissions") || cmp.sessions && strings.HasPrefix(k, "sip_session_") {
				also = append(also, k)
			}
		}
		var table strings.Builder
		for _, k := range sortedUnion(maps.Keys(cmp.want), slices.Values(also)) {
			mark := ""
			if got[k] != cmp.want[k] {
				mark = "  <- differs"
				diff = append(diff, k)
			}
			fmt.Fprintf(&table, "%-70s want %4v got %4v%s\n", k, cmp.want[k], got[k], mark)
		}
		if len(diff) > 0 {
			t.Errorf("exporter differs from %s:\n%s", cmp.what, table.String())
		} else {
			t.Logf("exporter equals %s:\n%s", cmp.what, table.String())
		}
	}
	for k, v := range got {
		if strings.HasPrefix(k, "sip_exporter_messages_") && v != 0 {
			t.Errorf("%s = %v, want 0 (nothing dropped or late in the merge)", k, v)
		}
	}
	compareDelays(t, wantRTT, gotDelays)
	t.Logf("transaction test took %s", time.Since(start).Round(time.Millisecond))
}

// txScrape scrapes the exporter once and returns the tracker's counters,
// keyed by family and txLabels, and the count and sum of the
// txDelayFamilies series, keyed the same way:
// "sip_session_request_delay_seconds{outcome=success}".
func txScrape(t *testing.T, e *exporterProcess) (map[string]float64, map[string]delayStats) {
	t.Helper()
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "sip_session_") && !strings.Contains(name, "retransmissions") && !strings.HasPrefix(name, "sip_exporter_messages_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetCounter() == nil {
				continue
			}
			out[name+txLabels(m)] = m.GetCounter().GetValue()
		}
	}
	delays := map[string]delayStats{}
	for _, name := range txDelayFamilies {
		for _, m := range mfs[name].GetMetric() {
			if h := m.GetHistogram(); h != nil {
				delays[name+txLabels(m)] = delayStats{h.GetSampleCount(), h.GetSampleSum()}
			}
		}
	}
	return out, delays
}

// txLabels renders the labels of m other than node, class and reason as
// {a=1,b=2}, sorted; "" without any.
func txLabels(m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		// reason is the registry text of a code (dropped) beside class,
		// else a value of its own (sip_sessions_ended_total).
		switch l.GetName() {
		case "node", "class":
		case "reason":
			if labelValue(m, "class") == "" {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
		default:
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
	}
	if len(ls) == 0 {
		return ""
	}
	sort.Strings(ls)
	return "{" + strings.Join(ls, ",") + "}"
}

// The <recv> elements the lossy UAS may ignore: requests, which the UAC
// then retransmits, and the ACK of a rejection, which makes the UAS
// retransmit the rejection until an ACK comes. Not the ACK of a 2xx: the
// scenario cannot take the BYE that follows in its place. (SIPp does not
// apply lost="" to the optional <recv> of the UAC's final responses.)
var uasLossRE = regexp.MustCompile(`<recv request="(INVITE|BYE|REGISTER|OPTIONS)"|<recv request="ACK" next="end"`)

// uacWaitRE is the UAC's wait at the end of a call, during which it ACKs
// retransmitted final responses again; the lossy UAC waits 8 s, time for
// four retransmissions (Timer G: 0.5, 1.5, 3.5, 7.5 s).
var uacWaitRE = regexp.MustCompile(`<timewait milliseconds="1000"/>`)

// lossyScenario writes a copy of the scenario name into dir with
// lost="txLost" on the <recv> elements that re matches (if not nil) and the
// longer wait of uacWaitRE, and returns its
// path relative to sippDir (startSIPp takes scenarios there).
func lossyScenario(dir, name string, re *regexp.Regexp) (string, error) {
	b, err := os.ReadFile(filepath.Join(sippDir, name))
	if err != nil {
		return "", err
	}
	if re != nil {
		b = re.ReplaceAllFunc(b, func(m []byte) []byte { return fmt.Appendf(nil, `%s lost="%d"`, m, txLost) })
	}
	b = uacWaitRE.ReplaceAll(b, []byte(`<timewait milliseconds="8000"/>`))
	path := filepath.Join(dir, "lossy_"+name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", err
	}
	absDir, err := filepath.Abs(sippDir)
	if err != nil {
		return "", err
	}
	return filepath.Rel(absDir, path)
}

// runLossyPair runs one pair over UDP with the lossy UAS and returns the
// retransmissions SIPp counted (-trace_counts, Retrans columns of what each
// side sent), those on the wire according to its -trace_msg logs, and the
// UAC's response-time samples (-trace_rtt) in seconds by rtd name.
func runLossyPair(t *testing.T, dir string, p sippPair, uasIP, uacIP string) (counts, wire map[string]float64, rtt map[string][]float64, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, err
	}
	uasScenario, err := lossyScenario(dir, p.uas, uasLossRE)
	if err != nil {
		return nil, nil, nil, err
	}
	uacScenario, err := lossyScenario(dir, p.uac, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	uas, err := startSIPp(ctx, "", filepath.Join(dir, "uas"), uasScenario, "u1", uasIP, txCalls, append([]string{"-trace_msg"}, p.uasArgs...)...)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := waitListening(uas.cmd.Process.Pid, "udp", uasIP, sippPort, uas.exited, 5*time.Second); err != nil {
		cancel()
		uas.wait()
		return nil, nil, nil, fmt.Errorf("UAS: %w%s", err, uas.details())
	}
	// -rtt_freq 1 writes each rtd sample as it is taken (the default, 200,
	// buffers them).
	uac, err := startSIPp(ctx, "", filepath.Join(dir, "uac"), uacScenario, "u1", uacIP, txCalls,
		"-trace_msg", "-trace_rtt", "-rtt_freq", "1",
		"-r", strconv.Itoa(sippRate), net.JoinHostPort(uasIP, strconv.Itoa(sippPort)))
	if err != nil {
		cancel()
		uas.wait()
		return nil, nil, nil, err
	}
	var failed []error
	if err := uac.wait(); err != nil {
		failed = append(failed, fmt.Errorf("UAC %s: %w%s", p.uac, err, uac.details()))
	}
	if err := uas.wait(); err != nil {
		failed = append(failed, fmt.Errorf("UAS %s: %w%s", p.uas, err, uas.details()))
	}
	if len(failed) > 0 {
		return nil, nil, nil, errors.Join(failed...)
	}
	counts, wire = map[string]float64{}, map[string]float64{}
	for _, s := range []*sippProcess{uas, uac} {
		if err := sippRetrans(s, counts); err != nil {
			return nil, nil, nil, err
		}
		if err := wireRetrans(s.dir, wire); err != nil {
			return nil, nil, nil, err
		}
	}
	rtt, err = sippRTT(uac.dir)
	if err != nil {
		return nil, nil, nil, err
	}
	return counts, wire, rtt, nil
}

// sippRTT reads the -trace_rtt file SIPp wrote in dir,
// <scenario>_<pid>_rtt.csv, and returns its samples in seconds by rtd
// name. Each line is "Date_ms;response_time_ms;rtd_no": the time the rtd
// stopped, the response time in milliseconds, the rtd's name. SIPp takes
// one sample per rtd per call (the first stop; repeat_rtd is not used).
// No file: the scenario has no rtd.
func sippRTT(dir string) (map[string][]float64, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	out := map[string][]float64{}
	switch len(files) {
	case 0:
		return out, nil
	case 1:
	default:
		return nil, fmt.Errorf("%s: want at most one *_rtt.csv, found %d", dir, len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if lines[0] != "Date_ms;response_time_ms;rtd_no" {
		return nil, fmt.Errorf("%s: unexpected header %q", files[0], lines[0])
	}
	for i, l := range lines[1:] {
		f := strings.Split(strings.TrimSpace(l), ";")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s: line %d: %q", files[0], i+2, l)
		}
		ms, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", files[0], i+2, err)
		}
		out[f[2]] = append(out[f[2]], ms/1e3)
	}
	return out, nil
}

// delayStats is the count and sum of a delay histogram series.
type delayStats struct {
	count uint64
	sum   float64
}

// txDelayFamilies are the delay histograms the SIPp UACs measure too.
var txDelayFamilies = []string{"sip_session_request_delay_seconds", "sip_registration_request_delay_seconds", "sip_session_disconnect_delay_seconds"}

// txDelayTolerance bounds sipp - ours, the difference between SIPp's sum
// of n response times and the exporter's, as lo < diff <= hi.
//
// SIPp reads its clock with CLOCK_MONOTONIC_COARSE (src/time.cpp
// getmicroseconds), which moves in steps of tick (the kernel's jiffy,
// clock_getres: 4 ms at HZ=250), and logs the response time in
// milliseconds with microsecond digits: each of its samples is
// floor(stop) - floor(start) in ticks, within one tick either way of the
// true interval between its two clock reads. Those reads bracket what the
// exporter measures: SIPp reads the start before it builds and sends the
// request (do_bookkeeping, not repeated for retransmissions), and the
// stop after the response has crossed lo, been read and parsed, while the
// exporter takes both times from the capture (the kernel's timestamps of
// the two packets on lo). So per sample ours - tick < sipp < ours + tick
// + d, where d >= 0 is SIPp's own processing at both ends (building and
// sendto before the request reaches the tap; wake-up, recvfrom and
// parsing after the response does): microseconds on an idle machine, a
// few milliseconds under load (the tests share two CPUs with other live
// tests); txDelaySlackPerSample allows 10 ms. The capture timestamps are
// CLOCK_REALTIME, but the kernel slews CLOCK_MONOTONIC with NTP exactly
// as it does CLOCK_REALTIME: intervals agree unless the wall clock is
// stepped during the round. Hence lo = -n*tick, hi = n*(tick+slack).
// Measured here: SIPp's sums come out a little below ours, about -1 ms
// per sample; it reads its start just after waking on a timer tick, so
// the floor costs the start little and the stop up to a tick.
//
// What this still catches: a delay measured from a retransmission rather
// than the first request, or to a later response, is off by T1 = 500 ms
// or more, more than the whole allowance of a series of up to 35 samples
// (n*14 ms; the largest here has 30); a sample counted twice, missed or
// under the wrong outcome shows in the counts, which must be equal.
func txDelayTolerance(n int, tick time.Duration) (lo, hi float64) {
	return -float64(n) * tick.Seconds(), float64(n) * (tick + txDelaySlackPerSample).Seconds()
}

// txDelaySlackPerSample is d of txDelayTolerance.
const txDelaySlackPerSample = 10 * time.Millisecond

// sippClockTick is the resolution of SIPp's clock, CLOCK_MONOTONIC_COARSE.
func sippClockTick(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		t.Fatalf("clock_getres(CLOCK_MONOTONIC_COARSE): %v", err)
	}
	return time.Duration(ts.Nano())
}

// compareDelays compares the delay histograms the exporter grew with
// SIPp's rtd samples: counts equal, sums within txDelayTolerance.
func compareDelays(t *testing.T, want map[string][]float64, got map[string]delayStats) {
	t.Helper()
	tick := sippClockTick(t)
	var table strings.Builder
	fmt.Fprintf(&table, "SIPp clock tick %s, slack %s per sample\n", tick, txDelaySlackPerSample)
	bad := false
	for _, k := range sortedUnion(maps.Keys(want), maps.Keys(got)) {
		var sum float64
		for _, s := range want[k] {
			sum += s
		}
		n, g := len(want[k]), got[k]
		lo, hi := txDelayTolerance(n, tick)
		diff := sum - g.sum
		mark := ""
		if g.count != uint64(n) || diff <= lo || diff > hi {
			mark = "  <- differs"
			bad = true
		}
		fmt.Fprintf(&table, "%-60s count SIPp %3d ours %3d  sum SIPp %9.4f s ours %9.4f s  SIPp-ours %+8.4f s (allowed (%+.3f, %+.3f])%s\n",
			k, n, g.count, sum, g.sum, diff, lo, hi, mark)
	}
	if len(want) == 0 {
		t.Errorf("no SIPp rtd sample: -trace_rtt wrote nothing")
	}
	if bad {
		t.Errorf("delay histograms differ from SIPp's -trace_rtt:\n%s", table.String())
	} else {
		t.Logf("delay histograms agree with SIPp's -trace_rtt:\n%s", table.String())
	}
}

// sippRetrans adds the Retrans columns of the -trace_counts file of s to
// into, keyed like txScrape.
func sippRetrans(s *sippProcess, into map[string]float64) error {
	sends, err := sippSends(s.scenario)
	if err != nil {
		return err
	}
	file, header, last, err := sippCountsOf(s.dir)
	if err != nil {
		return err
	}
	i := 0
	for k, h := range header {
		p, ok := strings.CutSuffix(h, "_Sent")
		if !ok {
			continue
		}
		if i >= len(sends) {
			return fmt.Errorf("%s: more sent columns than <send>", file)
		}
		m := sends[i]
		i++
		for j := k; j < len(header); j++ {
			if header[j] == p+"_Retrans" && j < len(last) {
				n, _ := strconv.Atoi(last[j])
				if m.code != "" {
					into["sip_response_retransmissions_total{code="+m.code+",method="+m.method+"}"] += float64(n)
				} else {
					into["sip_request_retransmissions_total{method="+m.method+"}"] += float64(n)
				}
			}
		}
	}
	return nil
}

// wireRetrans reads the -trace_msg log in dir and adds to into the
// messages SIPp sent that repeat one it sent before: a request with the
// same Call-ID, CSeq and top Via branch, a response with these and the same
// code and To tag (RFC 3261 §17). Entries of messages SIPp ignored on
// receipt ("voluntary lost") are not sends and are skipped.
func wireRetrans(dir string, into map[string]float64) error {
	file, data, err := sippFile(dir, "_messages.log")
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, entry := range strings.Split(string(data), sippTraceSeparator) {
		lines := strings.Split(strings.ReplaceAll(entry, "\r", ""), "\n")
		if i == 0 || len(lines) < 4 || !strings.Contains(lines[1], " message sent (") {
			continue
		}
		start := strings.Fields(lines[2])
		if len(start) == 0 && len(lines) > 3 {
			start = strings.Fields(lines[3])
		}
		var callID, cseq, branch, toTag string
		for _, l := range lines[2:] {
			name, value, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			value = strings.TrimSpace(value)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "call-id":
				callID = value
			case "cseq":
				cseq = value
			case "via":
				if branch == "" {
					_, branch, _ = strings.Cut(value, "branch=")
					branch, _, _ = strings.Cut(branch, ";")
				}
			case "to":
				_, toTag, _ = strings.Cut(value, ";tag=")
			}
		}
		f := strings.Fields(cseq)
		if len(start) < 2 || len(f) != 2 || callID == "" {
			return fmt.Errorf("%s: entry %d: no start line, CSeq or Call-ID", file, i)
		}
		key := callID + "|" + cseq + "|" + branch
		if start[0] == "SIP/2.0" {
			key += "|" + start[1] + "|" + toTag
		}
		if !seen[key] {
			seen[key] = true
			continue
		}
		if start[0] == "SIP/2.0" {
			into["sip_response_retransmissions_total{code="+start[1]+",method="+f[1]+"}"]++
		} else {
			into["sip_request_retransmissions_total{method="+start[0]+"}"]++
		}
	}
	return nil
}
