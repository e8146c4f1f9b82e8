package collector_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sip-exporter/sip_exporter/collector"
)

func TestMethodOf(t *testing.T) {
	for _, tc := range []struct {
		token string
		want  collector.Method
	}{
		{"INVITE", collector.MethodINVITE},
		{"ACK", collector.MethodACK},
		{"UPDATE", collector.MethodUPDATE},
		{"invite", collector.MethodOther}, // methods are case-sensitive (RFC 3261 §7.1)
		{"", collector.MethodOther},
		{"FOO", collector.MethodOther},
	} {
		if got := collector.MethodOf([]byte(tc.token)); got != tc.want {
			t.Errorf("MethodOf(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
	for i, name := range collector.Methods {
		if got := collector.MethodOf([]byte(name)); name != "OTHER" && int(got) != i {
			t.Errorf("MethodOf(%q) = %d, want %d", name, got, i)
		}
	}
}

func TestSIPCollect(t *testing.T) {
	col := collector.NewSIP(4)
	c := col.Node(nil)
	c.ObserveResponse(486, []byte("INVITE"))
	c.ObserveResponse(486, []byte("INVITE"))
	c.ObserveResponse(299, []byte("NOTIFY"))   // unassigned code
	c.ObserveResponse(200, []byte("WHATEVER")) // unknown method
	c.ObserveResponse(200, nil)                // no CSeq
	c.ObserveResponse(700, []byte("INVITE"))   // not a status code: ignored
	c.ObserveRequest([]byte("INVITE"))
	c.ObserveRequest([]byte("FOO"))

	want := `
# HELP sip_responses_total SIP response messages seen, by node, CSeq method, status code, class and registry reason phrase (RFC 3261 §7.2).
# TYPE sip_responses_total counter
sip_responses_total{class="1xx",code="100",method="INVITE",node="",reason="Trying"} 0
sip_responses_total{class="1xx",code="180",method="INVITE",node="",reason="Ringing"} 0
sip_responses_total{class="1xx",code="183",method="INVITE",node="",reason="Session Progress"} 0
sip_responses_total{class="2xx",code="200",method="BYE",node="",reason="OK"} 0
sip_responses_total{class="2xx",code="200",method="CANCEL",node="",reason="OK"} 0
sip_responses_total{class="2xx",code="200",method="INVITE",node="",reason="OK"} 0
sip_responses_total{class="2xx",code="200",method="OPTIONS",node="",reason="OK"} 0
sip_responses_total{class="2xx",code="200",method="OTHER",node="",reason="OK"} 2
sip_responses_total{class="2xx",code="200",method="REGISTER",node="",reason="OK"} 0
sip_responses_total{class="2xx",code="299",method="NOTIFY",node="",reason="Unassigned"} 1
sip_responses_total{class="4xx",code="401",method="INVITE",node="",reason="Unauthorized"} 0
sip_responses_total{class="4xx",code="401",method="REGISTER",node="",reason="Unauthorized"} 0
sip_responses_total{class="4xx",code="403",method="INVITE",node="",reason="Forbidden"} 0
sip_responses_total{class="4xx",code="403",method="REGISTER",node="",reason="Forbidden"} 0
sip_responses_total{class="4xx",code="404",method="INVITE",node="",reason="Not Found"} 0
sip_responses_total{class="4xx",code="407",method="INVITE",node="",reason="Proxy Authentication Required"} 0
sip_responses_total{class="4xx",code="407",method="REGISTER",node="",reason="Proxy Authentication Required"} 0
sip_responses_total{class="4xx",code="408",method="INVITE",node="",reason="Request Timeout"} 0
sip_responses_total{class="4xx",code="408",method="REGISTER",node="",reason="Request Timeout"} 0
sip_responses_total{class="4xx",code="480",method="INVITE",node="",reason="Temporarily Unavailable"} 0
sip_responses_total{class="4xx",code="481",method="BYE",node="",reason="Call/Transaction Does Not Exist"} 0
sip_responses_total{class="4xx",code="486",method="INVITE",node="",reason="Busy Here"} 2
sip_responses_total{class="4xx",code="487",method="INVITE",node="",reason="Request Terminated"} 0
sip_responses_total{class="4xx",code="488",method="INVITE",node="",reason="Not Acceptable Here"} 0
sip_responses_total{class="5xx",code="500",method="INVITE",node="",reason="Server Internal Error"} 0
sip_responses_total{class="5xx",code="500",method="REGISTER",node="",reason="Server Internal Error"} 0
sip_responses_total{class="5xx",code="502",method="INVITE",node="",reason="Bad Gateway"} 0
sip_responses_total{class="5xx",code="503",method="INVITE",node="",reason="Service Unavailable"} 0
sip_responses_total{class="5xx",code="503",method="REGISTER",node="",reason="Service Unavailable"} 0
sip_responses_total{class="5xx",code="504",method="INVITE",node="",reason="Server Time-out"} 0
sip_responses_total{class="6xx",code="600",method="INVITE",node="",reason="Busy Everywhere"} 0
sip_responses_total{class="6xx",code="603",method="INVITE",node="",reason="Decline"} 0
# HELP sip_requests_total SIP request messages seen, by node and method (RFC 3261 §7.1).
# TYPE sip_requests_total counter
sip_requests_total{method="ACK",node=""} 0
sip_requests_total{method="BYE",node=""} 0
sip_requests_total{method="CANCEL",node=""} 0
sip_requests_total{method="INFO",node=""} 0
sip_requests_total{method="INVITE",node=""} 1
sip_requests_total{method="MESSAGE",node=""} 0
sip_requests_total{method="NOTIFY",node=""} 0
sip_requests_total{method="OPTIONS",node=""} 0
sip_requests_total{method="OTHER",node=""} 1
sip_requests_total{method="PRACK",node=""} 0
sip_requests_total{method="PUBLISH",node=""} 0
sip_requests_total{method="REFER",node=""} 0
sip_requests_total{method="REGISTER",node=""} 0
sip_requests_total{method="SUBSCRIBE",node=""} 0
sip_requests_total{method="UPDATE",node=""} 0
`
	// Counted pairs, plus the pre-initialised pairs at zero.
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "sip_responses_total", "sip_requests_total"); err != nil {
		t.Error(err)
	}
	if got := c.Response(486, collector.MethodINVITE); got != 2 {
		t.Errorf("486 INVITE = %d, want 2", got)
	}
	if got := c.Request(collector.MethodOther); got != 1 {
		t.Errorf("requests OTHER = %d, want 1", got)
	}
	problems, err := testutil.CollectAndLint(col)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestSIPObserveAllocs(t *testing.T) {
	c := collector.NewSIP(4).Node([]byte("sbc1"))
	method := []byte("REGISTER")
	if n := testing.AllocsPerRun(1000, func() {
		c.ObserveResponse(401, method)
		c.ObserveRequest(method)
	}); n != 0 {
		t.Errorf("Observe allocates %v times per call", n)
	}
}

func BenchmarkObserveResponse(b *testing.B) {
	c := collector.NewSIP(4).Node(nil)
	method := []byte("INVITE")
	b.ReportAllocs()
	for b.Loop() {
		c.ObserveResponse(200, method)
	}
}

func TestSIPNodes(t *testing.T) {
	c := collector.NewSIP(2)
	a := c.Node([]byte("sbc-a"))
	if c.Node([]byte("sbc-a")) != a {
		t.Error("same name gave another node")
	}
	b := c.Node([]byte("sbc\x00b")) // made safe: sbc_b
	if b.Label() != "sbc_b" {
		t.Errorf("label %q, want sbc_b", b.Label())
	}
	if c.Node([]byte("sbc_b")) != b {
		t.Error("a raw spelling of a known label gave another node")
	}
	o := c.Node([]byte("sbc-c")) // past the limit
	if o.Label() != collector.OtherNode {
		t.Errorf("third node label %q, want other", o.Label())
	}
	a.ObserveResponse(200, []byte("OPTIONS"))
	o.ObserveResponse(503, []byte("INVITE"))
	want := `
# HELP sip_exporter_node_overflow_total SIP messages counted under node="other" because the node limit was reached.
# TYPE sip_exporter_node_overflow_total counter
sip_exporter_node_overflow_total 1
# HELP sip_exporter_nodes Distinct node label values tracked (without "other").
# TYPE sip_exporter_nodes gauge
sip_exporter_nodes 2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sip_exporter_nodes", "sip_exporter_node_overflow_total"); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(c, "sip_requests_total"); got != 3*len(collector.Methods) {
		t.Errorf("%d request series, want %d (15 per node)", got, 3*len(collector.Methods))
	}
	long := strings.Repeat("x", 100)
	if got := collector.NewSIP(1).Node([]byte(long)).Label(); len(got) != collector.MaxNodeLabelBytes {
		t.Errorf("label of %d bytes, want %d", len(got), collector.MaxNodeLabelBytes)
	}
}

func TestSIPNodeLookupAllocs(t *testing.T) {
	c := collector.NewSIP(4)
	name := []byte("sbc-a")
	c.Node(name)
	if n := testing.AllocsPerRun(1000, func() { c.Node(name).ObserveRequest([]byte("ACK")) }); n != 0 {
		t.Errorf("Node lookup allocates %v times", n)
	}
}
