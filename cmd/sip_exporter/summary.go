package main

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sip-exporter/sip_exporter/collector"
	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// The summary of the report command: what --format=json writes and the
// table shows, computed from the exposition of the sip_ families (the
// numbers /metrics would serve at the end of the files) with the formulas
// of README "SLA formulas" and deploy/prometheus/rules/sip-recording.yml:
// RFC 6076 §4 and ITU-T E.411.

// summaryVersion is the version of the JSON document. It changes when a
// field is removed or changes meaning; fields may be added within a
// version, so readers ignore fields they do not know.
const summaryVersion = 1

// summary is the JSON document of report --format=json.
type summary struct {
	// Version is summaryVersion.
	Version int `json:"version"`
	// TransactionsTracked is false with --no-sip.transactions: then
	// retransmissions are 0, and sessions and registrations null, for
	// want of tracking, not of traffic.
	TransactionsTracked bool `json:"transactions_tracked"`
	// Files are the capture files in the order given.
	Files []summaryFile `json:"files"`
	// Capture is the whole capture: the files merged by time.
	Capture summaryCapture `json:"capture"`
	// Total is over every label set: the sums of their counts, and the
	// ratios and quantiles of those sums.
	Total countsSummary `json:"total"`
	// LabelSets are the counts per label set, in order of node, peer and
	// direction: one per node, and per node, peer and direction with
	// --config.file.
	LabelSets []labelSetSummary `json:"label_sets"`
}

// summaryFile is one capture file.
type summaryFile struct {
	Path string `json:"path"`
	// Node is the file's own node label value (FILE=NODE), or "" for
	// --capture.node-name.
	Node string `json:"node"`
	summarySpan
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Truncated is true when the file ended in the middle of a record (or
	// was cut shorter while it was read): what came before is counted.
	Truncated bool `json:"truncated"`
}

// summarySpan is the time span of packets: the capture time of the first
// record of a file (of the earliest file, for the capture) and the latest
// time of any record, RFC 3339 in UTC. Both are null without packets, and
// first_packet_time for NetMon files, whose first time is not read. Of a
// truncated file the last time may be up to 1,023 records before the cut.
type summarySpan struct {
	FirstPacketTime *time.Time `json:"first_packet_time"`
	LastPacketTime  *time.Time `json:"last_packet_time"`
	// DurationSeconds is last minus first, 0 when either is null.
	DurationSeconds float64 `json:"duration_seconds"`
}

// summaryCapture is what was read, over every file.
type summaryCapture struct {
	summarySpan
	Packets uint64 `json:"packets"`
	// Bytes are of the packets as on the wire (their original length).
	Bytes uint64 `json:"bytes"`
	// SIPMessages are the SIP requests and responses decoded, before
	// copies are removed (DuplicatesRemoved).
	SIPMessages uint64 `json:"sip_messages"`
	// DuplicatesRemoved are copies of a message seen within
	// --capture.dedup-window and counted once.
	DuplicatesRemoved uint64 `json:"duplicates_removed"`
	ParseErrors       uint64 `json:"parse_errors"`
	// ParseErrorsByReason holds the reasons of ParseErrors that occurred
	// (sip_exporter_parse_errors_total's reason values).
	ParseErrorsByReason map[string]uint64 `json:"parse_errors_by_reason"`
}

// labelSetSummary is the summary of one label set.
type labelSetSummary struct {
	Node      string `json:"node"`
	Peer      string `json:"peer,omitempty"`      // with --config.file
	Direction string `json:"direction,omitempty"` // inbound, outbound; with --config.file
	countsSummary
}

// countsSummary is what happened in a label set, or in all.
type countsSummary struct {
	// Requests are per method that occurred, in the order of the method
	// label values (INVITE, ACK, BYE, CANCEL, REGISTER, OPTIONS, ...).
	Requests []requestSummary `json:"requests"`
	// Responses are per status code and CSeq method that occurred, in
	// order of code, then method.
	Responses []responseSummary `json:"responses"`
	// Sessions and Registrations are null with --no-sip.transactions.
	Sessions      *sessionSummary      `json:"sessions"`
	Registrations *registrationSummary `json:"registrations"`
	// ReasonCauses are the causes of Reason headers (RFC 3326) of
	// responses, BYE and CANCEL, in order of protocol then cause; empty
	// with --no-sip.transactions.
	ReasonCauses []causeSummary `json:"reason_causes"`
}

// requestSummary is sip_requests_total and
// sip_request_retransmissions_total of one method.
type requestSummary struct {
	Method string `json:"method"`
	Count  uint64 `json:"count"`
	// Retransmissions are the subset of Count that repeated a request of
	// an open transaction (RFC 3261 §17).
	Retransmissions uint64 `json:"retransmissions"`
}

// responseSummary is sip_responses_total and
// sip_response_retransmissions_total of one code and method.
type responseSummary struct {
	Code            int    `json:"code"`
	Reason          string `json:"reason"` // the registry's phrase (sipstatus)
	Class           string `json:"class"`  // 1xx..6xx
	Method          string `json:"method"` // CSeq method
	Count           uint64 `json:"count"`
	Retransmissions uint64 `json:"retransmissions"`
}

// sessionSummary is about initial INVITE transactions (session attempts).
// A ratio is null when its denominator is 0.
type sessionSummary struct {
	// Attempts are initial INVITE transactions; one challenged (401, 407)
	// and its re-send with credentials are one attempt.
	Attempts uint64 `json:"attempts"`
	// Challenges are the 401 and 407 answered by a re-send: part of an
	// attempt, not an outcome.
	Challenges uint64 `json:"challenges"`
	// Answered are attempts whose first final response was a 2xx.
	Answered uint64 `json:"answered"`
	// Timeouts are attempts without any final response (timed out, or
	// still open at the end of the files).
	Timeouts uint64 `json:"timeouts"`
	// ActiveAtEnd are established sessions without a BYE at the end of
	// the files: calls still up (sip_sessions_active).
	ActiveAtEnd uint64 `json:"active_at_end"`
	// Completed are established sessions ended by a BYE.
	Completed uint64 `json:"completed"`
	// Outcomes are the attempts per first final response that occurred,
	// in order of code.
	Outcomes []outcomeSummary `json:"outcomes"`
	// ASR, answer-seizure ratio (ITU-T E.411): Answered / Attempts.
	ASR *float64 `json:"asr"`
	// NER, network effectiveness ratio (ITU-T E.411): attempts answered
	// or ended by the user or a correct answer about the user (2xx, 404,
	// 480, 484, 486, 487, 600, 603, 604) / Attempts.
	NER *float64 `json:"ner"`
	// SER, session establishment ratio (RFC 6076 §4.6): 200 /
	// (Attempts - 3xx).
	SER *float64 `json:"ser"`
	// SEER, session establishment effectiveness ratio (RFC 6076 §4.7):
	// (200, 480, 486, 600, 603) / (Attempts - 3xx).
	SEER *float64 `json:"seer"`
	// ISA, ineffective session attempts (RFC 6076 §4.8): (408, 500, 503,
	// 504, Timeouts) / Attempts.
	ISA *float64 `json:"isa"`
	// SCR, session completion ratio (RFC 6076 §4.9): Completed / Attempts.
	SCR *float64 `json:"scr"`
	// SRD, session request delay (RFC 6076 §4.3), by outcome: success
	// (to the first 18x or 2xx), failure, challenge (a 401 or 407 no
	// re-send answered), each from the first request of the attempt.
	SRD map[string]delaySummary `json:"srd_seconds"`
	// ACDSeconds, average duration of the Completed sessions; null when
	// none.
	ACDSeconds *float64 `json:"acd_seconds"`
}

// outcomeSummary is the attempts of one first final response.
type outcomeSummary struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	Class  string `json:"class"`
	Count  uint64 `json:"count"`
}

// registrationSummary is about REGISTER transactions.
type registrationSummary struct {
	// Attempts are REGISTER transactions; one challenged and its re-send
	// are one attempt.
	Attempts uint64 `json:"attempts"`
	// Challenges are the 401 and 407 answered by a re-send.
	Challenges uint64 `json:"challenges"`
	// Timeouts are REGISTERs without a final response.
	Timeouts uint64 `json:"timeouts"`
	// Failures are REGISTERs with a final response other than 2xx and
	// the challenges 401 and 407.
	Failures uint64 `json:"failures"`
	// ActiveAtEnd are addresses of record registered at the end of the
	// files (sip_registrations_active).
	ActiveAtEnd uint64 `json:"active_at_end"`
	// IRA, ineffective registration attempts (RFC 6076 §4.2): (Timeouts
	// + Failures) / Attempts; null without attempts.
	IRA *float64 `json:"ira"`
	// RRD, registration request delay (RFC 6076 §4.1), by outcome:
	// success, failure, challenge.
	RRD map[string]delaySummary `json:"rrd_seconds"`
}

// delaySummary is a delay histogram: its count and its 50th and 95th
// percentiles in seconds, estimated from its buckets as PromQL's
// histogram_quantile does (linear within a bucket; the highest finite
// bucket bound when the rank falls in +Inf); null when the count is 0.
type delaySummary struct {
	Count uint64   `json:"count"`
	P50   *float64 `json:"p50"`
	P95   *float64 `json:"p95"`
}

// causeSummary is sip_reason_causes_total of one cause.
type causeSummary struct {
	Protocol string `json:"protocol"` // "Q.850" or "SIP"
	Cause    int    `json:"cause"`
	// Text is the cause's name: ITU-T Q.850's for the common Q.850 causes
	// (else ""), the registry's phrase for SIP.
	Text  string `json:"text"`
	Count uint64 `json:"count"`
}

// labelKey is the label set of a series: node, and peer and direction
// with --config.file.
type labelKey struct{ node, peer, direction string }

// tally gathers the series of one label set, or of all.
type tally struct {
	requests      map[string]*requestSummary
	responses     map[[2]string]*responseSummary // code, method
	tx, regs      bool                           // sessions, registrations tracked
	attempts      float64
	challenges    float64
	timeouts      float64
	active        float64
	outcomes      map[int]*outcomeSummary
	srd           map[string]*bucketCounts
	duration      bucketCounts
	regAttempts   float64
	regChallenges float64
	regTimeouts   float64
	regActive     float64
	rrd           map[string]*bucketCounts
	causes        map[[2]string]float64 // protocol, cause
}

func newTally() *tally {
	return &tally{
		requests:  map[string]*requestSummary{},
		responses: map[[2]string]*responseSummary{},
		outcomes:  map[int]*outcomeSummary{},
		srd:       map[string]*bucketCounts{},
		rrd:       map[string]*bucketCounts{},
		causes:    map[[2]string]float64{},
	}
}

// bucketCounts is a classic histogram: cumulative counts by upper bound,
// the +Inf bucket being Count.
type bucketCounts struct {
	bounds []float64
	cum    []float64
	count  float64
	sum    float64
}

// add adds the classic buckets of h.
func (b *bucketCounts) add(h *dto.Histogram) {
	if b.bounds == nil {
		for _, bk := range h.GetBucket() {
			if !math.IsInf(bk.GetUpperBound(), 1) {
				b.bounds = append(b.bounds, bk.GetUpperBound())
			}
		}
		b.cum = make([]float64, len(b.bounds))
	}
	for _, bk := range h.GetBucket() {
		if i, ok := slices.BinarySearch(b.bounds, bk.GetUpperBound()); ok {
			b.cum[i] += float64(bk.GetCumulativeCount())
		}
	}
	b.count += float64(h.GetSampleCount())
	b.sum += h.GetSampleSum()
}

// quantile returns the q-quantile as PromQL's histogram_quantile
// estimates it from classic buckets, or nil without observations.
func (b *bucketCounts) quantile(q float64) *float64 {
	if b == nil || b.count == 0 {
		return nil
	}
	rank := q * b.count
	prevBound, prevCum := 0.0, 0.0
	for i, upper := range b.bounds {
		if b.cum[i] >= rank {
			if i == 0 && upper <= 0 {
				return &upper
			}
			v := prevBound + (upper-prevBound)*(rank-prevCum)/(b.cum[i]-prevCum)
			return &v
		}
		prevBound, prevCum = upper, b.cum[i]
	}
	if len(b.bounds) == 0 {
		return nil
	}
	v := b.bounds[len(b.bounds)-1] // the rank is in the +Inf bucket
	return &v
}

// delay returns the delaySummary of b.
func (b *bucketCounts) delay() delaySummary {
	if b == nil {
		return delaySummary{}
	}
	return delaySummary{Count: uint64(b.count), P50: b.quantile(0.5), P95: b.quantile(0.95)}
}

// summarize computes the label sets and the total from the gathered sip_
// families; tracking says whether transactions were tracked (else
// sessions and registrations are null).
func summarize(mfs []*dto.MetricFamily, tracking bool) (total countsSummary, sets []labelSetSummary) {
	all := newTally()
	all.tx, all.regs = tracking, tracking
	byKey := map[labelKey]*tally{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			k := labelKey{l["node"], l["peer"], l["direction"]}
			t := byKey[k]
			if t == nil {
				t = newTally()
				t.tx, t.regs = tracking, tracking
				byKey[k] = t
			}
			t.observe(mf.GetName(), l, m)
			all.observe(mf.GetName(), l, m)
		}
	}
	keys := make([]labelKey, 0, len(byKey))
	for k, t := range byKey {
		if t.empty() {
			continue
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b labelKey) int {
		return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.peer, b.peer), cmp.Compare(a.direction, b.direction))
	})
	for _, k := range keys {
		sets = append(sets, labelSetSummary{Node: k.node, Peer: k.peer, Direction: k.direction, countsSummary: byKey[k].summary()})
	}
	return all.summary(), sets
}

// observe adds the metric m of family name, with labels l.
func (t *tally) observe(name string, l map[string]string, m *dto.Metric) {
	v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
	switch name {
	case "sip_requests_total":
		t.request(l["method"]).Count += uint64(v)
	case "sip_request_retransmissions_total":
		t.request(l["method"]).Retransmissions += uint64(v)
	case "sip_responses_total", "sip_response_retransmissions_total":
		k := [2]string{l["code"], l["method"]}
		r := t.responses[k]
		if r == nil {
			code, _ := strconv.Atoi(l["code"])
			r = &responseSummary{Code: code, Reason: l["reason"], Class: l["class"], Method: l["method"]}
			t.responses[k] = r
		}
		if name == "sip_responses_total" {
			r.Count += uint64(v)
		} else {
			r.Retransmissions += uint64(v)
		}
	case "sip_session_attempts_total":
		t.attempts += v
	case "sip_session_challenges_total":
		t.challenges += v
	case "sip_registration_challenges_total":
		t.regChallenges += v
	case "sip_session_timeouts_total":
		t.timeouts += v
	case "sip_sessions_active":
		t.active += v
	case "sip_session_outcomes_total":
		code, _ := strconv.Atoi(l["code"])
		o := t.outcomes[code]
		if o == nil {
			o = &outcomeSummary{Code: code, Reason: l["reason"], Class: l["class"]}
			t.outcomes[code] = o
		}
		o.Count += uint64(v)
	case "sip_session_request_delay_seconds":
		t.histogram(t.srd, l["outcome"]).add(m.GetHistogram())
	case "sip_session_duration_seconds":
		t.duration.add(m.GetHistogram())
	case "sip_registration_attempts_total":
		t.regAttempts += v
	case "sip_registration_timeouts_total":
		t.regTimeouts += v
	case "sip_registrations_active":
		t.regActive += v
	case "sip_registration_request_delay_seconds":
		t.histogram(t.rrd, l["outcome"]).add(m.GetHistogram())
	case "sip_reason_causes_total":
		t.causes[[2]string{l["protocol"], l["cause"]}] += v
	}
}

func (t *tally) request(method string) *requestSummary {
	r := t.requests[method]
	if r == nil {
		r = &requestSummary{Method: method}
		t.requests[method] = r
	}
	return r
}

func (t *tally) histogram(m map[string]*bucketCounts, outcome string) *bucketCounts {
	b := m[outcome]
	if b == nil {
		b = &bucketCounts{}
		m[outcome] = b
	}
	return b
}

// empty reports whether the label set saw nothing: no request, response,
// attempt or registration (a series pre-initialised at zero only).
func (t *tally) empty() bool {
	for _, r := range t.requests {
		if r.Count > 0 {
			return false
		}
	}
	for _, r := range t.responses {
		if r.Count > 0 {
			return false
		}
	}
	return t.attempts == 0 && t.regAttempts == 0 && t.active == 0 && t.regActive == 0
}

// summary returns the summary of t.
func (t *tally) summary() countsSummary {
	s := countsSummary{Requests: []requestSummary{}, Responses: []responseSummary{}, ReasonCauses: []causeSummary{}}
	for _, r := range t.requests {
		if r.Count > 0 || r.Retransmissions > 0 {
			s.Requests = append(s.Requests, *r)
		}
	}
	slices.SortFunc(s.Requests, func(a, b requestSummary) int { return cmp.Compare(methodIndex(a.Method), methodIndex(b.Method)) })
	for _, r := range t.responses {
		if r.Count > 0 || r.Retransmissions > 0 {
			s.Responses = append(s.Responses, *r)
		}
	}
	slices.SortFunc(s.Responses, func(a, b responseSummary) int {
		return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(methodIndex(a.Method), methodIndex(b.Method)))
	})
	if t.tx {
		s.Sessions = t.sessions()
	}
	if t.regs {
		failures := uint64(0)
		if b := t.rrd["failure"]; b != nil {
			failures = uint64(b.count)
		}
		r := &registrationSummary{
			Attempts: uint64(t.regAttempts), Challenges: uint64(t.regChallenges), Timeouts: uint64(t.regTimeouts), Failures: failures,
			ActiveAtEnd: uint64(t.regActive), RRD: map[string]delaySummary{},
		}
		r.IRA = ratio(float64(r.Timeouts+r.Failures), t.regAttempts)
		for outcome, b := range t.rrd {
			r.RRD[outcome] = b.delay()
		}
		s.Registrations = r
	}
	for k, v := range t.causes {
		if v == 0 {
			continue
		}
		cause, _ := strconv.Atoi(k[1])
		c := causeSummary{Protocol: k[0], Cause: cause, Count: uint64(v)}
		if c.Protocol == "Q.850" {
			c.Text = q850Text(cause)
		} else {
			c.Text = sipstatus.Text(cause)
		}
		s.ReasonCauses = append(s.ReasonCauses, c)
	}
	slices.SortFunc(s.ReasonCauses, func(a, b causeSummary) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Cause, b.Cause))
	})
	return s
}

// sessions returns the session summary of t.
func (t *tally) sessions() *sessionSummary {
	s := &sessionSummary{
		Attempts: uint64(t.attempts), Challenges: uint64(t.challenges), Timeouts: uint64(t.timeouts), ActiveAtEnd: uint64(t.active),
		Completed: uint64(t.duration.count), Outcomes: []outcomeSummary{}, SRD: map[string]delaySummary{},
	}
	var answered, ner, ser, seer, isa, redirected float64
	for code, o := range t.outcomes {
		n := float64(o.Count)
		if n == 0 {
			continue
		}
		s.Outcomes = append(s.Outcomes, *o)
		switch {
		case code >= 200 && code < 300:
			answered += n
			ner += n
		case code >= 300 && code < 400:
			redirected += n
		}
		switch code {
		case 404, 480, 484, 486, 487, 600, 603, 604:
			ner += n
		}
		switch code {
		case 200:
			ser += n
			seer += n
		case 480, 486, 600, 603:
			seer += n
		case 408, 500, 503, 504:
			isa += n
		}
	}
	slices.SortFunc(s.Outcomes, func(a, b outcomeSummary) int { return cmp.Compare(a.Code, b.Code) })
	s.Answered = uint64(answered)
	s.ASR = ratio(answered, t.attempts)
	s.NER = ratio(ner, t.attempts)
	s.SER = ratio(ser, t.attempts-redirected)
	s.SEER = ratio(seer, t.attempts-redirected)
	s.ISA = ratio(isa+t.timeouts, t.attempts)
	s.SCR = ratio(t.duration.count, t.attempts)
	if t.duration.count > 0 {
		acd := t.duration.sum / t.duration.count
		s.ACDSeconds = &acd
	}
	for outcome, b := range t.srd {
		s.SRD[outcome] = b.delay()
	}
	return s
}

// ratio returns num/den, or nil when den is not positive.
func ratio(num, den float64) *float64 {
	if den <= 0 {
		return nil
	}
	r := num / den
	return &r
}

// methodIndex orders method label values as collector.Methods does.
func methodIndex(m string) int {
	if i := slices.Index(collector.Methods[:], m); i >= 0 {
		return i
	}
	return len(collector.Methods)
}
