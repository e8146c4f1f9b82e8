package collector

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func TestCallIDSet(t *testing.T) {
	long := strings.Repeat("a", CallIDBytes-1)
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"RFC 3261 example", "a84b4c76e66710@pc33.atlanta.com", "a84b4c76e66710@pc33.atlanta.com"},
		{"exactly the bound", long + "b", long + "b"},
		{"cut", long + "bc", long + "b"},
		// "é" is 2 bytes: cut after its first byte, it goes whole.
		{"cut inside a 2-byte rune", long + "é", long},
		// "€" is 3 bytes, "😀" 4: cut inside either, it goes whole.
		{"cut inside a 3-byte rune", long[:CallIDBytes-2] + "€", long[:CallIDBytes-2]},
		{"cut inside a 4-byte rune", long[:CallIDBytes-3] + "😀x", long[:CallIDBytes-3]},
		{"4-byte rune ending at the bound", long[:CallIDBytes-4] + "😀x", long[:CallIDBytes-4] + "😀"},
		// Bytes that are no UTF-8 are kept (replaced at exposition).
		{"invalid bytes kept", long + "\xff\xfe", long + "\xff"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var id CallID
			id.Set([]byte(c.in))
			if got := string(id.Bytes()); got != c.want {
				t.Errorf("Set(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestExemplarLabels(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, c := range []struct {
		name, id, node string
		wantID         string
	}{
		{"short", "a84b4c76e66710@pc33.atlanta.com", "sbc-1", "a84b4c76e66710@pc33.atlanta.com"},
		// 128 - len("call_id") - len("node") - 5 = 112 runes of Call-ID.
		{"Call-ID cut to the budget", long, "sbc-1", long[:112]},
		// A node label of MaxNodeLabelBytes leaves 53 runes.
		{"longest node", long, strings.Repeat("n", MaxNodeLabelBytes), long[:53]},
		{"invalid UTF-8 replaced", "abc\xffdef", "n", "abc\uFFFDdef"},
		{"cut at a rune", strings.Repeat("é", 200), "sbc-1", strings.Repeat("é", 112)},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := exemplarLabels([]byte(c.id), c.node)
			if l[ExemplarCallIDLabel] != c.wantID {
				t.Errorf("call_id %q, want %q", l[ExemplarCallIDLabel], c.wantID)
			}
			runes := 0
			for k, v := range l {
				runes += utf8.RuneCountInString(k) + utf8.RuneCountInString(v)
			}
			if runes > prometheus.ExemplarMaxRunes {
				t.Errorf("%d runes, more than %d", runes, prometheus.ExemplarMaxRunes)
			}
			if _, err := prometheus.NewMetricWithExemplars(prometheus.NewCounter(prometheus.CounterOpts{Name: "c"}),
				prometheus.Exemplar{Value: 1, Labels: l}); err != nil {
				t.Errorf("client_golang refuses the labels: %v", err)
			}
		})
	}
}

// TestExemplarSize pins the memory of an exemplar, per series and shard
// (documented in collector/README.md).
func TestExemplarSize(t *testing.T) {
	if n := unsafe.Sizeof(exemplar{}); n != 104 {
		t.Errorf("exemplar is %d bytes, want 104", n)
	}
	if n := unsafe.Sizeof(inviteCallIDs{}); n != 80*inviteIDSlots {
		t.Errorf("inviteCallIDs is %d bytes, want %d", n, 80*inviteIDSlots)
	}
}

// exemplarCall is the events of one call of TestExemplarsOpenMetrics.
type exemplarCall struct {
	id    string
	shard int
	evs   []TxEvent
}

// TestExemplarsOpenMetrics tracks calls in two shards and reads the
// exemplars of the OpenMetrics exposition: each series' latest Call-ID
// over the shards, the values by hand from the calls' times, nothing in
// the text format.
func TestExemplarsOpenMetrics(t *testing.T) {
	sip, err := NewSIPWithConfig(SIPConfig{MaxNodes: 4, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := NewTrackers(TrackerConfig{MaxTransactions: 1 << 10, InviteTimeout: time.Minute, SIP: sip}, 2)
	if err != nil {
		t.Fatal(err)
	}
	n := sip.Node([]byte("pbx-1"))
	const s = 1000 // ms
	bye := func(call uint64, ms int64, code uint16) TxEvent {
		e := ev(n, call+100, ms, code, MethodBYE, TxToTag)
		e.Dialog = mix64(call + 7) // the INVITE's dialog
		return e
	}
	// In the order they are recorded: the 503 of call b, then of call c
	// in the other shard (latest); a call answered and ended; one timing
	// out at End.
	calls := []exemplarCall{
		{"b-503@example.net", 1, []TxEvent{ev(n, 2, 0, 0, MethodINVITE, 0), ev(n, 2, 200, 503, MethodINVITE, TxToTag)}},
		{"c-503@example.net", 0, []TxEvent{ev(n, 3, 0, 0, MethodINVITE, 0), ev(n, 3, 500, 503, MethodINVITE, TxToTag)}},
		{"a84b4c76e66710@pc33.atlanta.com", 0, []TxEvent{
			ev(n, 1, 0, 0, MethodINVITE, 0), ev(n, 1, 100, 180, MethodINVITE, TxToTag), ev(n, 1, s, 200, MethodINVITE, TxToTag),
			bye(1, 61*s, 0), bye(1, 61*s+50, 200)}},
		{"d-timeout@example.net", 1, []TxEvent{ev(n, 4, 0, 0, MethodINVITE, 0)}},
	}
	for _, c := range calls {
		var id CallID
		id.Set([]byte(c.id))
		for _, e := range c.evs {
			if e.Code != 0 {
				n.Shard(c.shard).ObserveResponseCallID(int(e.Code), e.Method, &id, e.Time)
			}
			ts.Shard(c.shard).ObserveCallID(&e, &id)
		}
	}
	ts.End()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(sip, ts)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		family string
		labels map[string]string
		id     string
		value  float64
	}
	for _, w := range []want{
		{"sip_session_outcomes_total", map[string]string{"code": "503"}, "c-503@example.net", 1},
		{"sip_responses_total", map[string]string{"code": "503", "method": "INVITE"}, "c-503@example.net", 1},
		{"sip_session_timeouts_total", nil, "d-timeout@example.net", 1},
		{"sip_session_request_delay_seconds", map[string]string{"outcome": "failure"}, "c-503@example.net", 0.5},
		{"sip_session_request_delay_seconds", map[string]string{"outcome": "success"}, "a84b4c76e66710@pc33.atlanta.com", 0.1},
		{"sip_session_duration_seconds", nil, "a84b4c76e66710@pc33.atlanta.com", 60},
		{"sip_session_disconnect_delay_seconds", nil, "a84b4c76e66710@pc33.atlanta.com", 0.05},
	} {
		es := exemplarsOf(mfs, w.family, w.labels)
		if len(es) != 1 {
			t.Errorf("%s%v: %d exemplars, want 1", w.family, w.labels, len(es))
			continue
		}
		e := es[0]
		got := map[string]string{}
		for _, l := range e.Label {
			got[l.GetName()] = l.GetValue()
		}
		if got["call_id"] != w.id || got["node"] != "pbx-1" || len(got) != 2 || e.GetValue() != w.value {
			t.Errorf("%s%v: exemplar %v %v, want call_id %q node pbx-1, value %v", w.family, w.labels, got, e.GetValue(), w.id, w.value)
		}
	}
	// No exemplar on 2xx outcomes, attempts, nor on a 2xx response.
	for _, f := range []struct {
		family string
		labels map[string]string
	}{
		{"sip_session_outcomes_total", map[string]string{"code": "200"}},
		{"sip_session_attempts_total", nil},
		{"sip_responses_total", map[string]string{"code": "200"}},
		{"sip_responses_total", map[string]string{"code": "180"}},
	} {
		if es := exemplarsOf(mfs, f.family, f.labels); len(es) != 0 {
			t.Errorf("%s%v: %d exemplars, want none", f.family, f.labels, len(es))
		}
	}

	// The OpenMetrics text: the exemplar after its sample, labels in
	// order; the text format has none.
	encode := func(f expfmt.Format) string {
		var b bytes.Buffer
		enc := expfmt.NewEncoder(&b, f)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	om := encode(expfmt.NewFormat(expfmt.TypeOpenMetrics))
	for _, line := range []string{
		`sip_session_outcomes_total{class="5xx",code="503",node="pbx-1",reason="Service Unavailable"} 2.0 # {call_id="c-503@example.net",node="pbx-1"} 1.0 `,
		`sip_session_duration_seconds_bucket{node="pbx-1",le="60.0"} 1 # {call_id="a84b4c76e66710@pc33.atlanta.com",node="pbx-1"} 60.0 `,
	} {
		if !strings.Contains(om, "\n"+line) {
			t.Errorf("OpenMetrics exposition lacks %q", line)
		}
	}
	if text := encode(expfmt.NewFormat(expfmt.TypeTextPlain)); strings.Contains(text, "call_id") {
		t.Errorf("the text format shows exemplars:\n%s", text)
	}
}

// exemplarsOf returns the exemplars of the series of family that have
// labels: a counter's, a histogram's buckets'.
func exemplarsOf(mfs []*dto.MetricFamily, family string, labels map[string]string) []*dto.Exemplar {
	var out []*dto.Exemplar
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	metrics:
		for _, m := range mf.Metric {
			for k, v := range labels {
				found := false
				for _, l := range m.Label {
					found = found || l.GetName() == k && l.GetValue() == v
				}
				if !found {
					continue metrics
				}
			}
			if c := m.Counter; c != nil && c.Exemplar != nil {
				out = append(out, c.Exemplar)
			}
			if h := m.Histogram; h != nil {
				for _, b := range h.Bucket {
					if b.Exemplar != nil {
						out = append(out, b.Exemplar)
					}
				}
			}
		}
	}
	return out
}

// TestExemplarAllocs: recording an exemplar, with its Call-ID, allocates
// nothing once its series has one (the per-message path).
func TestExemplarAllocs(t *testing.T) {
	sip, err := NewSIPWithConfig(SIPConfig{MaxNodes: 4, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	c := sip.Node([]byte("pbx-1")).Shard(1)
	var id CallID
	wire := []byte("a84b4c76e66710@pc33.atlanta.com")
	id.Set(wire)
	c.ObserveResponseCallID(503, MethodINVITE, &id, 1) // the row of 503
	var e exemplar
	// Each call a second later than the one before: every one records.
	var at int64
	later := func() int64 { at += int64(time.Second); return at }
	o := observer{h: &histPart{h: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h"})}, ex: &e}
	for _, f := range []struct {
		name string
		f    func()
	}{
		{"CallID.Set", func() { id.Set(wire) }},
		{"Counts.ObserveResponseCallID", func() { c.ObserveResponseCallID(503, MethodINVITE, &id, later()) }},
		{"exemplar.record", func() { e.record(&id, 1, later()) }},
		{"observer.observe", func() { o.observe(12_345_678, &id, later()) }}, // last: e holds its value
	} {
		if n := testing.AllocsPerRun(1000, f.f); n != 0 {
			t.Errorf("%s allocates %v times", f.name, n)
		}
	}
	if r := e.read(); string(r.id[:r.n]) != string(wire) || r.value != 0.012345678 {
		t.Errorf("exemplar %q %v, want %q 0.012345678", r.id[:r.n], r.value, wire)
	}
}

// BenchmarkExemplar: the cost a 5xx response adds by its exemplar
// (count+exemplar against count), and the copy of a Call-ID into a
// message (CallID.Set, once per message).
func BenchmarkExemplar(b *testing.B) {
	sip := NewSIP(4)
	c := sip.Node([]byte("pbx-1")).Shard(0)
	var id CallID
	wire := []byte("a84b4c76e66710@pc33.atlanta.com")
	id.Set(wire)
	b.Run("count", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.ObserveResponseMethod(503, MethodINVITE)
		}
	})
	// Every 5xx a second after the one before: each is recorded.
	b.Run("count+exemplar", func(b *testing.B) {
		b.ReportAllocs()
		var at int64
		for b.Loop() {
			at += int64(time.Second)
			c.ObserveResponseCallID(503, MethodINVITE, &id, at)
		}
	})
	// 5xx a microsecond apart: one in 100,000 is recorded.
	b.Run("count+exemplar-throttled", func(b *testing.B) {
		b.ReportAllocs()
		var at int64
		for b.Loop() {
			at += int64(time.Microsecond)
			c.ObserveResponseCallID(503, MethodINVITE, &id, at)
		}
	})
	b.Run("CallID.Set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			id.Set(wire)
		}
	})
}

// TestExemplarEvery: an event less than publishEvery (100 ms of capture
// time) after the one recorded leaves the exemplar in place; one at or
// after it replaces it.
func TestExemplarEvery(t *testing.T) {
	var e exemplar
	const ms = int64(time.Millisecond)
	t0 := int64(1_700_000_000) * int64(time.Second)
	for _, step := range []struct {
		id   string
		at   int64
		want string
	}{
		{"a@example.com", t0, "a@example.com"},
		{"b@example.com", t0 + 50*ms, "a@example.com"},
		{"c@example.com", t0 + 99*ms, "a@example.com"},
		{"d@example.com", t0 + 100*ms, "d@example.com"},
		{"e@example.com", t0 + 150*ms, "d@example.com"},
		{"f@example.com", t0 + 10_000*ms, "f@example.com"},
	} {
		var id CallID
		id.Set([]byte(step.id))
		e.record(&id, 1, step.at)
		if r := e.read(); string(r.id[:r.n]) != step.want {
			t.Errorf("after %s at +%d ms: exemplar %q, want %q", step.id, (step.at-t0)/ms, r.id[:r.n], step.want)
		}
	}
}
