package pipeline

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// exemplarCall is a rejected call, an INVITE and its 503, whose
// transaction is new each time it is observed (its CSeq) and whose time
// moves on by 40 s, past Timer H (32 s): the former one expires, so the
// tracker's tables stay as they are.
type exemplarCall struct {
	o           decode.Origin
	invite, rej sip.Message
}

func newExemplarCall() *exemplarCall {
	id := []byte("a84b4c76e66710@pc33.atlanta.com") // RFC 3261 §24.2
	c := &exemplarCall{o: benchOrigin}
	c.o.Time = 1_800_000_000e9
	c.invite = sip.Message{Method: []byte("INVITE"), CallID: id, CSeqMethod: []byte("INVITE"), ViaBranch: []byte("z9hG4bK776asdhds"), FromTag: []byte("1928301774")}
	c.rej = c.invite
	c.rej.Method, c.rej.Response, c.rej.StatusCode, c.rej.Reason, c.rej.ToTag = nil, true, 503, []byte("Service Unavailable"), []byte("a6c85cf")
	return c
}

// observe observes the next call in p.
func (c *exemplarCall) observe(p *Pipeline, sn *SourceNode) {
	c.o.Time += 40e9
	c.invite.CSeq++
	c.rej.CSeq = c.invite.CSeq
	p.Observe(sn, &c.o, &c.invite)
	c.o.Time += 2e8
	p.Observe(sn, &c.o, &c.rej)
}

// TestObserveExemplarAllocs: a message whose Call-ID becomes the exemplar
// of sip_responses_total, sip_session_outcomes_total and the SRD (a 503
// to an initial INVITE) allocates nothing on the per-message path, and
// the exemplars hold the Call-ID sent.
func TestObserveExemplarAllocs(t *testing.T) {
	for _, c := range observeCases(t) {
		sn := c.p.SourceNode("")
		call := newExemplarCall()
		for range 4 { // the series, their exemplars and the tables
			call.observe(c.p, sn)
		}
		if n := testing.AllocsPerRun(1000, func() { call.observe(c.p, sn) }); n != 0 {
			t.Errorf("%s: observing a call allocates %v times", c.name, n)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c.p.Collectors()...)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, family := range []string{"sip_responses_total", "sip_session_outcomes_total", "sip_session_request_delay_seconds"} {
			if got := exemplarIDs(mfs, family); len(got) != 1 || got[0] != string(call.invite.CallID) {
				t.Errorf("%s: %s exemplars %q, want one of %q", c.name, family, got, call.invite.CallID)
			}
		}
	}
}

// exemplarIDs returns the call_id of every exemplar of family.
func exemplarIDs(mfs []*dto.MetricFamily, family string) []string {
	var ids []string
	add := func(e *dto.Exemplar) {
		for _, l := range e.GetLabel() {
			if l.GetName() == "call_id" {
				ids = append(ids, l.GetValue())
			}
		}
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.Metric {
			add(m.GetCounter().GetExemplar())
			for _, b := range m.GetHistogram().GetBucket() {
				add(b.GetExemplar())
			}
		}
	}
	return ids
}

// BenchmarkObserveCall: the per-message path of a rejected call, whose
// 503 makes three exemplars; per op, two messages (against
// BenchmarkObserve's one 503 without Call-ID).
func BenchmarkObserveCall(b *testing.B) {
	for _, c := range observeCases(b) {
		b.Run(c.name, func(b *testing.B) {
			sn := c.p.SourceNode("")
			call := newExemplarCall()
			b.ReportAllocs()
			for b.Loop() {
				call.observe(c.p, sn)
			}
		})
	}
}
