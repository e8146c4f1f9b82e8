package collector

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// Histogram buckets, seconds.
var (
	// DelayBuckets suit RFC 6076 delays: 10 ms .. 60 s.
	DelayBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// DurationBuckets suit call durations: 1 s .. 2 h, with the bands of
	// NOC KPI dictionaries: short calls under 6 s, and 6 to 12 s.
	DurationBuckets = []float64{1, 5, 6, 10, 12, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}
)

// trackerMetrics is the exposition of a [Tracker]: the descriptions of
// the families it mirrors from its counts at scrape time, and the
// histograms it observes into.
type trackerMetrics struct {
	srdVec, rrdVec, sddVec, durationVec *prometheus.HistogramVec

	attemptsDesc, outcomesDesc, timeoutsDesc, respRetransDesc, reqRetransDesc, causesDesc *prometheus.Desc
	openDesc, evictedDesc, timedOutDesc, dialogsDesc, dialogsEvictedDesc                  *prometheus.Desc
	unmatchedDesc, earlyDesc                                                              *prometheus.Desc
	sessionsDesc, endedDesc, regsDesc, regAttemptsDesc, regTimeoutsDesc                   *prometheus.Desc
	optionsOKDesc, optionsFailedDesc, regsTrackedDesc, regsEvictedDesc                    *prometheus.Desc
	peerUpDesc                                                                            *prometheus.Desc
	challengesDesc, regChallengesDesc                                                     *prometheus.Desc
	// peerLabels: the label sets have a peer (--config.file): the
	// sip_peer_options_* families are exported.
	peerLabels bool
	// exact are the series of the histograms, shared by the shards.
	exact *exactSet
	stir  stirMetrics
}

// exactHistogram is one series of a delay or duration histogram whose
// _sum is kept in integer nanoseconds: it is exact, and the same whatever
// the order of the observations and however many shards make them (a
// float sum depends on the order of its additions). Its buckets are those
// of the client library's histogram, counts that commute.
//
// Each shard observes into a part of its own (histPart), so that shards
// do not take one another's cache lines at every delay; the scrape sums
// the parts (mergedHistogram). Each shard keeps its own exemplar of the
// series too (the latest delay it observed and its Call-ID); the scrape
// shows the latest of them.
type exactHistogram struct {
	parts []*histPart // one per shard that observes it; guarded by exactSet.mu
	node  string      // the node label value, for the exemplar
	exs   []*exemplar // one per shard that observes it; guarded by exactSet.mu
}

// histPart is one shard's part of a series.
type histPart struct {
	h  prometheus.Histogram
	ns atomic.Int64
}

// observe records a delay of d ns; a negative one (clock skew between
// sources) counts as 0.
func (p *histPart) observe(d int64) {
	d = max(d, 0)
	p.ns.Add(d)
	p.h.Observe(float64(d) / 1e9)
}

// exactSet holds the series of a tracker's histograms by family and label
// values, made on first use, for the shards that share them.
type exactSet struct {
	mu   sync.Mutex
	by   map[string]*exactHistogram
	list []*exactHistogram
	// families gives, for the vector of each family (the one Describe
	// sends), the vectors of the parts: the i-th part of every series of
	// the family is in the i-th, made as the first (the same options and
	// labels).
	families map[*prometheus.HistogramVec]*histFamily
}

// histFamily is the vectors of the parts of a family's series.
type histFamily struct {
	vecs []*prometheus.HistogramVec
	make func() *prometheus.HistogramVec
}

// family makes the vector of a family with mk and keeps mk for the
// vectors of the parts.
func (s *exactSet) family(mk func() *prometheus.HistogramVec) *prometheus.HistogramVec {
	v := mk()
	s.families[v] = &histFamily{vecs: []*prometheus.HistogramVec{v}, make: mk}
	return v
}

// observer returns a new shard's observer of the series of vec with label
// values lv (the node first): a part of the series of its own, the series
// made on first use, and an exemplar of the shard's own.
func (s *exactSet) observer(vec *prometheus.HistogramVec, lv ...string) observer {
	key := fmt.Sprintf("%p\xff%s", vec, strings.Join(lv, "\xff"))
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.by[key]
	if e == nil {
		e = &exactHistogram{node: lv[0]}
		s.by[key] = e
		s.list = append(s.list, e)
	}
	f := s.families[vec]
	i := len(e.parts)
	for len(f.vecs) <= i {
		f.vecs = append(f.vecs, f.make())
	}
	p := &histPart{h: f.vecs[i].WithLabelValues(lv...).(prometheus.Histogram)}
	e.parts = append(e.parts, p)
	ex := new(exemplar)
	e.exs = append(e.exs, ex)
	return observer{h: p, ex: ex}
}

// collect sends every series, its parts summed and its sum the exact one,
// with the latest exemplar of its shards.
func (s *exactSet) collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	list := slices.Clone(s.list)
	parts := make([][]*histPart, len(list))
	exs := make([][]*exemplar, len(list))
	for i, e := range list {
		parts[i] = slices.Clone(e.parts)
		exs[i] = slices.Clone(e.exs)
	}
	s.mu.Unlock()
	for i, e := range list {
		var ns int64
		for _, p := range parts[i] {
			ns += p.ns.Load()
		}
		ch <- withExemplar(mergedHistogram{parts: parts[i], sum: float64(ns) / 1e9}, latestExemplar(exs[i]...), e.node)
	}
}

// mergedHistogram is the metric of a series: the sum of its parts, its
// sum replaced by the exact one.
type mergedHistogram struct {
	parts []*histPart
	sum   float64
}

// Desc implements [prometheus.Metric]: the parts share it.
func (m mergedHistogram) Desc() *prometheus.Desc { return m.parts[0].h.Desc() }

// Write implements [prometheus.Metric].
func (m mergedHistogram) Write(out *dto.Metric) error {
	if err := m.parts[0].h.Write(out); err != nil {
		return err
	}
	for _, p := range m.parts[1:] {
		var d dto.Metric
		if err := p.h.Write(&d); err != nil {
			return err
		}
		mergeHistogram(out.Histogram, d.Histogram)
	}
	out.Histogram.SampleSum = &m.sum
	return nil
}

// mergeHistogram adds the histogram src into dst, both of one series
// written by the client library (the same classic buckets and native
// options): counts, classic buckets, and native buckets at the coarser of
// the two schemas (a part that had more than the bucket limit has
// halved its resolution, maybe more than once). The sum is left to the
// caller.
func mergeHistogram(dst, src *dto.Histogram) {
	dst.SampleCount = new(dst.GetSampleCount() + src.GetSampleCount())
	for i, b := range dst.Bucket {
		if i < len(src.Bucket) {
			b.CumulativeCount = new(b.GetCumulativeCount() + src.Bucket[i].GetCumulativeCount())
		}
	}
	if dst.Schema == nil || src.Schema == nil {
		return // classic only
	}
	schema := min(dst.GetSchema(), src.GetSchema())
	pos := nativeBuckets(dst.PositiveSpan, dst.PositiveDelta, dst.GetSchema()-schema)
	for k, v := range nativeBuckets(src.PositiveSpan, src.PositiveDelta, src.GetSchema()-schema) {
		pos[k] += v
	}
	neg := nativeBuckets(dst.NegativeSpan, dst.NegativeDelta, dst.GetSchema()-schema)
	for k, v := range nativeBuckets(src.NegativeSpan, src.NegativeDelta, src.GetSchema()-schema) {
		neg[k] += v
	}
	dst.Schema = new(schema)
	dst.ZeroThreshold = new(max(dst.GetZeroThreshold(), src.GetZeroThreshold()))
	dst.ZeroCount = new(dst.GetZeroCount() + src.GetZeroCount())
	dst.PositiveSpan, dst.PositiveDelta = nativeSpans(pos)
	dst.NegativeSpan, dst.NegativeDelta = nativeSpans(neg)
	if len(dst.PositiveSpan) == 0 && len(dst.NegativeSpan) == 0 {
		// An empty native histogram keeps the one empty span that tells
		// it from a classic one.
		dst.PositiveSpan = []*dto.BucketSpan{{Offset: new(int32(0)), Length: new(uint32(0))}}
	}
}

// nativeBuckets returns the counts of native buckets given as spans and
// deltas, by index, at a schema down lower than theirs: the bucket of
// index i at schema s lies in the bucket ceil(i / 2^down) at schema
// s-down.
func nativeBuckets(spans []*dto.BucketSpan, deltas []int64, down int32) map[int32]int64 {
	out := map[int32]int64{}
	idx, k, count := int32(0), 0, int64(0)
	for _, sp := range spans {
		idx += sp.GetOffset()
		for range sp.GetLength() {
			count += deltas[k]
			k++
			if count != 0 {
				out[-((-idx) >> down)] += count
			}
			idx++
		}
	}
	return out
}

// nativeSpans returns the spans and deltas of native buckets by index,
// the buckets in runs of consecutive indices.
func nativeSpans(b map[int32]int64) ([]*dto.BucketSpan, []int64) {
	idx := slices.Sorted(maps.Keys(b))
	var (
		spans  []*dto.BucketSpan
		deltas []int64
		prev   int64
		next   int32 // the index after the last span's last bucket
	)
	for i, x := range idx {
		if i == 0 || x != next {
			off := x
			if i > 0 {
				off = x - next
			}
			spans = append(spans, &dto.BucketSpan{Offset: new(off), Length: new(uint32(0))})
		}
		sp := spans[len(spans)-1]
		sp.Length = new(sp.GetLength() + 1)
		deltas = append(deltas, b[x]-prev)
		prev = b[x]
		next = x + 1
	}
	return spans, deltas
}

// newTrackerMetrics returns the exposition of a tracker whose label sets
// are those of sip (nil: the node label only); classic leaves out the
// histograms' native buckets ([TrackerConfig.ClassicHistograms]).
func newTrackerMetrics(sip *SIP, classic bool) trackerMetrics {
	factor := 1.1
	if classic {
		factor = 0
	}
	series := []string{"node"}
	if sip != nil {
		series = sip.seriesLabelNames()
	}
	lbl := func(extra ...string) []string { return append(slices.Clone(series), extra...) }
	exact := &exactSet{by: map[string]*exactHistogram{}, families: map[*prometheus.HistogramVec]*histFamily{}}
	hist := func(name, help string, buckets []float64, extra ...string) *prometheus.HistogramVec {
		return exact.family(func() *prometheus.HistogramVec {
			return prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: name, Help: help, Buckets: buckets,
				NativeHistogramBucketFactor:     factor,
				NativeHistogramMaxBucketNumber:  160,
				NativeHistogramMinResetDuration: time.Hour,
			}, lbl(extra...))
		})
	}
	m := trackerMetrics{
		srdVec: hist("sip_session_request_delay_seconds",
			"Session request delay (SRD, RFC 6076 §4.3), seconds, of each session attempt: from its first INVITE (a challenged one: the challenge and the re-sent INVITE are within) to the first 18x or 2xx (outcome=\"success\"), else to its final response (outcome=\"failure\"), or to a 401 or 407 challenge that no INVITE re-sent within 64*T1 = 32 s (outcome=\"challenge\").",
			DelayBuckets, "outcome"),
		rrdVec: hist("sip_registration_request_delay_seconds",
			"Registration request delay (RRD, RFC 6076 §4.1), seconds, of each registration attempt: from its first REGISTER (a challenged one: the challenge and the re-sent REGISTER are within) to its final response, success (2xx) or failure, or to a 401 or 407 challenge that no REGISTER re-sent within 64*T1 = 32 s (outcome=\"challenge\").",
			DelayBuckets, "outcome"),
		sddVec: hist("sip_session_disconnect_delay_seconds",
			"Session disconnect delay (SDD, RFC 6076 §4.4), seconds: from a BYE to its final response.",
			DelayBuckets),
		durationVec: hist("sip_session_duration_seconds",
			"Session duration (SDT, RFC 6076 §4.5), seconds: from the 2xx of an initial INVITE to the first BYE of that dialog on the same leg (the same two hosts, either way; both sides of a proxy are two sessions).",
			DurationBuckets),
		attemptsDesc: prometheus.NewDesc("sip_session_attempts_total",
			"Session attempts: initial INVITE transactions (no To tag), each counted once; one challenged with 401 or 407 and the INVITE re-sent with credentials (same Call-ID and From tag, on the same leg, within 32 s) are one attempt. The attempts of SER, SEER, ISA and SCR (RFC 6076 §4.6-4.9).", lbl(), nil),
		outcomesDesc: prometheus.NewDesc("sip_session_outcomes_total",
			"Session attempts by their final response, the first one seen: that of the re-sent INVITE after a challenge, or the challenge (401, 407) when none was re-sent within 64*T1 = 32 s (SER, SEER, ISA: RFC 6076 §4.6-4.8).", lbl("code", "class", "reason"), nil),
		challengesDesc: prometheus.NewDesc("sip_session_challenges_total",
			"Digest challenges (401 Unauthorized, 407 Proxy Authentication Required; RFC 3261 §22) to the INVITEs of session attempts, each counted once; not outcomes: the INVITE re-sent with credentials is the same attempt.", lbl("code"), nil),
		regChallengesDesc: prometheus.NewDesc("sip_registration_challenges_total",
			"Digest challenges (401 Unauthorized, 407 Proxy Authentication Required; RFC 3261 §22) to REGISTERs, each counted once; the REGISTER re-sent with credentials is the same registration attempt.", lbl("code"), nil),
		sessionsDesc: prometheus.NewDesc("sip_sessions_active",
			"Established sessions: dialogs whose initial INVITE got a 2xx (each fork's dialog once, on each leg once: both sides of a proxy are two sessions, each under the label set of its own INVITE) and that have not ended (sip_sessions_ended_total).", lbl(), nil),
		endedDesc: prometheus.NewDesc("sip_sessions_ended_total",
			"Established sessions that ended, by reason: bye (a BYE from either side), no_dialog (a 481 Call/Transaction Does Not Exist to a request inside the dialog: the far end no longer has it, RFC 3261 §12.2.1.2), request_timeout (a 408 Request Timeout to a request inside the dialog, likewise), max_age (no BYE seen within --sip.session-max-age of the 2xx), evicted (the dialog table was full).", lbl("reason"), nil),
		regsDesc: prometheus.NewDesc("sip_registrations_active",
			"Addresses of record (To URI of REGISTER) with an unexpired registration: a 2xx to REGISTER granting a positive expiry (its Contact's expires parameter, else its Expires header, seconds; RFC 3261 §10.3) until then; an expiry of 0 removes it.", lbl(), nil),
		regAttemptsDesc: prometheus.NewDesc("sip_registration_attempts_total",
			"Registration attempts: REGISTER transactions, each counted once; one challenged with 401 or 407 and the REGISTER re-sent with credentials (same Call-ID and From tag, on the same leg, within 32 s) are one attempt. The denominator of IRA (RFC 6076 §4.2).", lbl(), nil),
		regTimeoutsDesc: prometheus.NewDesc("sip_registration_timeouts_total",
			"Registration attempts whose (last) REGISTER transaction ended (64*T1 = 32 s, or end of the capture files) without a final response: ineffective registration attempts (IRA, RFC 6076 §4.2) with the failure outcomes of sip_registration_request_delay_seconds.", lbl(), nil),
		optionsOKDesc: prometheus.NewDesc("sip_peer_options_last_success_timestamp_seconds",
			"Capture time, Unix seconds, of the last 2xx to an OPTIONS request (a keepalive) of this peer and direction; with --config.file only, absent until one is seen.", lbl(), nil),
		optionsFailedDesc: prometheus.NewDesc("sip_peer_options_last_failure_timestamp_seconds",
			"Capture time, Unix seconds, of the last OPTIONS transaction of this peer and direction that failed: a final response other than 2xx, or none within 64*T1 = 32 s (the time it timed out); with --config.file only, absent until one is seen.", lbl(), nil),
		peerUpDesc: prometheus.NewDesc("sip_peer_up",
			"Whether the peer answers the OPTIONS keepalives of this direction, as the SIP address reachability services of SBCs judge it: 0 after keepalive_down_after (default 3) consecutive failed keepalives (a final response other than 2xx, or none within 64*T1 = 32 s), 1 after keepalive_up_after (default 2) consecutive 2xx; with --config.file only, absent until one of the two runs first completes.", lbl(), nil),
		regsTrackedDesc: prometheus.NewDesc("sip_exporter_registrations",
			"Addresses of record with an unexpired registration, tracked for sip_registrations_active.", nil, nil),
		regsEvictedDesc: prometheus.NewDesc("sip_exporter_registrations_evicted_total",
			"Registrations forgotten before they expired because the table was full (--sip.max-registrations; the one expiring soonest goes).", nil, nil),
		timeoutsDesc: prometheus.NewDesc("sip_session_timeouts_total",
			"Session attempts whose (last) initial INVITE transaction ended (timeout, or end of the capture files) without a final response.", lbl(), nil),
		respRetransDesc: prometheus.NewDesc("sip_response_retransmissions_total",
			"SIP responses that repeat a response of an open transaction (same code and To tag), the retransmitted subset of sip_responses_total (RFC 3261 §17).",
			lbl("method", "code", "class", "reason"), nil),
		reqRetransDesc: prometheus.NewDesc("sip_request_retransmissions_total",
			"SIP requests of a transaction that is open already, the retransmitted subset of sip_requests_total (RFC 3261 §17).", lbl("method"), nil),
		causesDesc: prometheus.NewDesc("sip_reason_causes_total",
			"Causes in the Reason header (RFC 3326) of responses, BYE and CANCEL requests, retransmissions not counted: protocol Q.850 (cause 0-127) or SIP (100-699).",
			lbl("protocol", "cause"), nil),
		openDesc: prometheus.NewDesc("sip_exporter_transactions",
			"SIP transactions being tracked.", nil, nil),
		evictedDesc: prometheus.NewDesc("sip_exporter_transactions_evicted_total",
			"SIP transactions forgotten before their timeout because the table was full (the oldest goes).", nil, nil),
		timedOutDesc: prometheus.NewDesc("sip_exporter_transactions_timed_out_total",
			"SIP transactions that expired without a final response, by kind (invite, non_invite); ACKs excluded.", []string{"kind"}, nil),
		dialogsDesc: prometheus.NewDesc("sip_exporter_dialogs",
			"Answered SIP dialogs tracked until their BYE, one per leg, for sip_session_duration_seconds and sip_sessions_active.", nil, nil),
		dialogsEvictedDesc: prometheus.NewDesc("sip_exporter_dialogs_evicted_total",
			"Answered dialogs forgotten before their BYE because the dialog table was full (the oldest goes).", nil, nil),
		unmatchedDesc: prometheus.NewDesc("sip_exporter_transaction_responses_unmatched_total",
			"SIP responses whose request was not seen within the early-response window of capture time after them (the skew window of --capture.max-lateness, 200 ms by default), or is no longer tracked.", nil, nil),
		earlyDesc: prometheus.NewDesc("sip_exporter_transaction_responses_early_total",
			"SIP responses captured before their request (by at most the early-response window, 200 ms by default) and matched when it came: the capture clocks of two sources disagree; their delays count as 0.", nil, nil),
	}
	m.peerLabels = len(series) > 1
	m.exact = exact
	m.stir = newStirMetrics(lbl)
	return m
}

// observers gives a new txNode its histograms.
func (m *trackerMetrics) observers(tn *txNode) {
	for k, o := range []string{"success", "failure", "challenge"} {
		tn.srd[k] = m.exact.observer(m.srdVec, append(slices.Clone(tn.lv), o)...)
		tn.rrd[k] = m.exact.observer(m.rrdVec, append(slices.Clone(tn.lv), o)...)
	}
	tn.sdd = m.exact.observer(m.sddVec, tn.lv...)
	tn.duration = m.exact.observer(m.durationVec, tn.lv...)
}

// latestOf returns the latest exemplar of the txNodes of one label set
// (its shards), f giving each one's (nil: none).
func latestOf(tns []*txNode, f func(*txNode) *exemplar) exemplarRead {
	var es [maxShards]*exemplar
	for k, tn := range tns {
		es[k] = f(tn)
	}
	return latestExemplar(es[:len(tns)]...)
}

// endReasons are the label values of sip_sessions_ended_total, indexed
// by how a session ended: a closed set, each exported from the start.
var endReasons = [numEnds]string{endBye: "bye", endMaxAge: "max_age", endEvicted: "evicted",
	endNoDialog: "no_dialog", endRequestTimeout: "request_timeout"}

// unixSeconds converts a time in ns since the Unix epoch to seconds, the
// float64 nearest to the exact value.
func unixSeconds(ns int64) float64 {
	return float64(ns/1e9) + float64(ns%1e9)/1e9
}

// Describe implements [prometheus.Collector].
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) { t.describe(ch) }

// Describe implements [prometheus.Collector].
func (ts *Trackers) Describe(ch chan<- *prometheus.Desc) { ts.describe(ch) }

func (t *trackerMetrics) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{t.attemptsDesc, t.outcomesDesc, t.timeoutsDesc, t.respRetransDesc, t.reqRetransDesc,
		t.causesDesc, t.openDesc, t.evictedDesc, t.timedOutDesc, t.dialogsDesc, t.dialogsEvictedDesc, t.unmatchedDesc, t.earlyDesc,
		t.sessionsDesc, t.endedDesc, t.regsDesc, t.regAttemptsDesc, t.regTimeoutsDesc, t.optionsOKDesc, t.optionsFailedDesc, t.peerUpDesc,
		t.regsTrackedDesc, t.regsEvictedDesc, t.challengesDesc, t.regChallengesDesc} {
		ch <- d
	}
	t.srdVec.Describe(ch)
	t.rrdVec.Describe(ch)
	t.sddVec.Describe(ch)
	t.durationVec.Describe(ch)
	t.stir.describe(ch)
}

// keepaliveState returns the reachability of a label set from the txNodes
// of its shards: that of the one whose last keepalive outcome is the
// latest among those that know one. The pipeline puts all of a peer's
// keepalives in one shard, so that one state machine sees them all in
// order; this only chooses that shard.
func keepaliveState(tns []*txNode) int32 {
	st, at := peerUnknown, int64(0)
	for _, tn := range tns {
		s := tn.keepalive.state.Load()
		if last := max(tn.optionsOK.Load(), tn.optionsFailed.Load()); s != peerUnknown && (st == peerUnknown || last > at) {
			st, at = s, last
		}
	}
	return st
}

// q850Labels are the decimal label values of the Q.850 causes.
var q850Labels = func() (l [128]string) {
	for i := range l {
		l[i] = fmt.Sprint(i)
	}
	return l
}()

// outcomeShown are the session outcomes exported at zero, as
// sip_responses_total pre-initialises the INVITE final responses.
var outcomeShown = func() (s [numCodes]bool) {
	for _, code := range preinitialised[MethodINVITE] {
		if code >= 200 {
			s[code-sipstatus.MinCode] = true
		}
	}
	return s
}()

// responseShown are the (code, method) pairs of response retransmissions
// exported at zero: those of sip_responses_total.
var responseShown = func() (s [numCodes][numMethods]bool) {
	for m, codes := range preinitialised {
		for _, code := range codes {
			s[code-sipstatus.MinCode][m] = true
		}
	}
	return s
}()

// Collect implements [prometheus.Collector]. Retransmission counters are
// exported at zero for the (method, code) pairs that sip_responses_total
// pre-initialises, so that the difference of the two always has a series.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) { t.collect(ch, []*Tracker{t}) }

// Collect implements [prometheus.Collector]: the sums of the shards, as
// [Tracker.Collect] exports one.
func (ts *Trackers) Collect(ch chan<- prometheus.Metric) { ts.collect(ch, ts.shards) }

// collect exports the sums of the counters of shards, whose histograms
// are those of t.
func (t *trackerMetrics) collect(ch chan<- prometheus.Metric, shards []*Tracker) {
	// The label sets of every shard, each with its shards' txNodes.
	byNode := map[*Node][]*txNode{}
	var order []*txNode
	for _, sh := range shards {
		sh.mu.Lock()
		for _, tn := range sh.published {
			if byNode[tn.node] == nil {
				order = append(order, tn)
			}
			byNode[tn.node] = append(byNode[tn.node], tn)
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(order, func(a, b *txNode) int { return slices.Compare(a.lv, b.lv) })
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	sum := func(tns []*txNode, f func(*txNode) uint64) uint64 {
		var v uint64
		for _, tn := range tns {
			v += f(tn)
		}
		return v
	}
	latest := func(tns []*txNode, f func(*txNode) int64) int64 {
		var v int64
		for _, tn := range tns {
			v = max(v, f(tn))
		}
		return v
	}
	for _, first := range order {
		tns := byNode[first.node]
		lv := first.lv
		with := func(extra ...string) []string { return append(slices.Clone(lv), extra...) }
		counter(t.attemptsDesc, sum(tns, func(n *txNode) uint64 { return n.attempts.Load() }), lv...)
		ch <- withExemplar(prometheus.MustNewConstMetric(t.timeoutsDesc, prometheus.CounterValue,
			float64(sum(tns, func(n *txNode) uint64 { return n.timeouts.Load() })), lv...),
			latestOf(tns, func(n *txNode) *exemplar { return &n.timeoutEx }), first.node.label)
		gauge(t.sessionsDesc, float64(sum(tns, func(n *txNode) uint64 { return uint64(n.sessions.Load()) })), lv...)
		for r := range first.ended {
			counter(t.endedDesc, sum(tns, func(n *txNode) uint64 { return n.ended[r].Load() }), with(endReasons[r])...)
		}
		gauge(t.regsDesc, float64(sum(tns, func(n *txNode) uint64 { return uint64(n.registrations.Load()) })), lv...)
		counter(t.regAttemptsDesc, sum(tns, func(n *txNode) uint64 { return n.regAttempts.Load() }), lv...)
		counter(t.regTimeoutsDesc, sum(tns, func(n *txNode) uint64 { return n.regTimeouts.Load() }), lv...)
		for i, code := range challengeCodes {
			counter(t.challengesDesc, sum(tns, func(n *txNode) uint64 { return n.challenges[i].Load() }), with(code)...)
			counter(t.regChallengesDesc, sum(tns, func(n *txNode) uint64 { return n.regChallenges[i].Load() }), with(code)...)
		}
		if t.peerLabels && first.node.Peer() != OtherPeer {
			if ns := latest(tns, func(n *txNode) int64 { return n.optionsOK.Load() }); ns != 0 {
				gauge(t.optionsOKDesc, unixSeconds(ns), lv...)
			}
			if ns := latest(tns, func(n *txNode) int64 { return n.optionsFailed.Load() }); ns != 0 {
				gauge(t.optionsFailedDesc, unixSeconds(ns), lv...)
			}
			if st := keepaliveState(tns); st != peerUnknown {
				up := 0.0
				if st == peerUp {
					up = 1
				}
				gauge(t.peerUpDesc, up, lv...)
			}
		}
		for i := range first.outcomes {
			if v := sum(tns, func(n *txNode) uint64 { return n.outcomes[i].Load() }); v > 0 || outcomeShown[i] {
				code := i + sipstatus.MinCode
				ch <- withExemplar(prometheus.MustNewConstMetric(t.outcomesDesc, prometheus.CounterValue, float64(v),
					with(codeLabels[i], sipstatus.Class(code), sipstatus.Text(code))...),
					latestOf(tns, func(n *txNode) *exemplar { return n.outcomeEx[i].Load() }), first.node.label)
			}
		}
		retrans := make([]*codeCounts, len(tns))
		for k, tn := range tns {
			retrans[k] = &tn.respRetrans
		}
		eachSum(&responseShown, func(i int, m Method, v uint64) {
			code := i + sipstatus.MinCode
			counter(t.respRetransDesc, v, with(Methods[m], codeLabels[i], sipstatus.Class(code), sipstatus.Text(code))...)
		}, retrans...)
		t.stir.collect(ch, tns, lv)
		for m := range first.reqRetrans {
			counter(t.reqRetransDesc, sum(tns, func(n *txNode) uint64 { return n.reqRetrans[m].Load() }), with(Methods[m])...)
		}
		for c := range first.q850 {
			if v := sum(tns, func(n *txNode) uint64 { return n.q850[c].Load() }); v > 0 {
				counter(t.causesDesc, v, with("Q.850", q850Labels[c])...)
			}
		}
		for i := range first.sipCause {
			if v := sum(tns, func(n *txNode) uint64 { return n.sipCause[i].Load() }); v > 0 {
				counter(t.causesDesc, v, with("SIP", codeLabels[i])...)
			}
		}
	}
	t.exact.collect(ch)
	var open, dialogs, regs int64
	var evicted, dialogsEvicted, regsEvicted, toInvite, toOther, unmatched, early uint64
	for _, sh := range shards {
		open += sh.open.Load()
		dialogs += sh.openDialogs.Load()
		regs += sh.openRegs.Load()
		evicted += sh.evicted.Load()
		dialogsEvicted += sh.dialogsEvicted.Load()
		regsEvicted += sh.regsEvicted.Load()
		toInvite += sh.timedOutInvite.Load()
		toOther += sh.timedOutNonInvite.Load()
		unmatched += sh.unmatched.Load()
		early += sh.early.Load()
	}
	gauge(t.openDesc, float64(open))
	gauge(t.dialogsDesc, float64(dialogs))
	counter(t.evictedDesc, evicted)
	counter(t.dialogsEvictedDesc, dialogsEvicted)
	gauge(t.regsTrackedDesc, float64(regs))
	counter(t.regsEvictedDesc, regsEvicted)
	counter(t.timedOutDesc, toInvite, "invite")
	counter(t.timedOutDesc, toOther, "non_invite")
	counter(t.unmatchedDesc, unmatched)
	counter(t.earlyDesc, early)
}
