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
	c := collector.NewSIP()
	c.ObserveResponse(486, []byte("INVITE"))
	c.ObserveResponse(486, []byte("INVITE"))
	c.ObserveResponse(299, []byte("NOTIFY"))   // unassigned code
	c.ObserveResponse(200, []byte("WHATEVER")) // unknown method
	c.ObserveResponse(200, nil)                // no CSeq
	c.ObserveResponse(700, []byte("INVITE"))   // not a status code: ignored
	c.ObserveRequest([]byte("INVITE"))
	c.ObserveRequest([]byte("FOO"))

	want := `
# HELP sip_responses_total SIP response messages seen, by CSeq method, status code, class and registry reason phrase (RFC 3261 §7.2).
# TYPE sip_responses_total counter
sip_responses_total{class="1xx",code="100",method="INVITE",reason="Trying"} 0
sip_responses_total{class="1xx",code="180",method="INVITE",reason="Ringing"} 0
sip_responses_total{class="1xx",code="183",method="INVITE",reason="Session Progress"} 0
sip_responses_total{class="2xx",code="200",method="BYE",reason="OK"} 0
sip_responses_total{class="2xx",code="200",method="CANCEL",reason="OK"} 0
sip_responses_total{class="2xx",code="200",method="INVITE",reason="OK"} 0
sip_responses_total{class="2xx",code="200",method="OPTIONS",reason="OK"} 0
sip_responses_total{class="2xx",code="200",method="OTHER",reason="OK"} 2
sip_responses_total{class="2xx",code="200",method="REGISTER",reason="OK"} 0
sip_responses_total{class="2xx",code="299",method="NOTIFY",reason="Unassigned"} 1
sip_responses_total{class="4xx",code="401",method="INVITE",reason="Unauthorized"} 0
sip_responses_total{class="4xx",code="401",method="REGISTER",reason="Unauthorized"} 0
sip_responses_total{class="4xx",code="403",method="INVITE",reason="Forbidden"} 0
sip_responses_total{class="4xx",code="403",method="REGISTER",reason="Forbidden"} 0
sip_responses_total{class="4xx",code="404",method="INVITE",reason="Not Found"} 0
sip_responses_total{class="4xx",code="407",method="INVITE",reason="Proxy Authentication Required"} 0
sip_responses_total{class="4xx",code="407",method="REGISTER",reason="Proxy Authentication Required"} 0
sip_responses_total{class="4xx",code="408",method="INVITE",reason="Request Timeout"} 0
sip_responses_total{class="4xx",code="408",method="REGISTER",reason="Request Timeout"} 0
sip_responses_total{class="4xx",code="480",method="INVITE",reason="Temporarily Unavailable"} 0
sip_responses_total{class="4xx",code="481",method="BYE",reason="Call/Transaction Does Not Exist"} 0
sip_responses_total{class="4xx",code="486",method="INVITE",reason="Busy Here"} 2
sip_responses_total{class="4xx",code="487",method="INVITE",reason="Request Terminated"} 0
sip_responses_total{class="4xx",code="488",method="INVITE",reason="Not Acceptable Here"} 0
sip_responses_total{class="5xx",code="500",method="INVITE",reason="Server Internal Error"} 0
sip_responses_total{class="5xx",code="500",method="REGISTER",reason="Server Internal Error"} 0
sip_responses_total{class="5xx",code="502",method="INVITE",reason="Bad Gateway"} 0
sip_responses_total{class="5xx",code="503",method="INVITE",reason="Service Unavailable"} 0
sip_responses_total{class="5xx",code="503",method="REGISTER",reason="Service Unavailable"} 0
sip_responses_total{class="5xx",code="504",method="INVITE",reason="Server Time-out"} 0
sip_responses_total{class="6xx",code="600",method="INVITE",reason="Busy Everywhere"} 0
sip_responses_total{class="6xx",code="603",method="INVITE",reason="Decline"} 0
# HELP sip_requests_total SIP request messages seen, by method (RFC 3261 §7.1).
# TYPE sip_requests_total counter
sip_requests_total{method="ACK"} 0
sip_requests_total{method="BYE"} 0
sip_requests_total{method="CANCEL"} 0
sip_requests_total{method="INFO"} 0
sip_requests_total{method="INVITE"} 1
sip_requests_total{method="MESSAGE"} 0
sip_requests_total{method="NOTIFY"} 0
sip_requests_total{method="OPTIONS"} 0
sip_requests_total{method="OTHER"} 1
sip_requests_total{method="PRACK"} 0
sip_requests_total{method="PUBLISH"} 0
sip_requests_total{method="REFER"} 0
sip_requests_total{method="REGISTER"} 0
sip_requests_total{method="SUBSCRIBE"} 0
sip_requests_total{method="UPDATE"} 0
`
	// Counted pairs, plus the pre-initialised pairs at zero.
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if got := c.Response(486, collector.MethodINVITE); got != 2 {
		t.Errorf("486 INVITE = %d, want 2", got)
	}
	if got := c.Request(collector.MethodOther); got != 1 {
		t.Errorf("requests OTHER = %d, want 1", got)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestSIPObserveAllocs(t *testing.T) {
	c := collector.NewSIP()
	method := []byte("REGISTER")
	if n := testing.AllocsPerRun(1000, func() {
		c.ObserveResponse(401, method)
		c.ObserveRequest(method)
	}); n != 0 {
		t.Errorf("Observe allocates %v times per call", n)
	}
}

func BenchmarkObserveResponse(b *testing.B) {
	c := collector.NewSIP()
	method := []byte("INVITE")
	b.ReportAllocs()
	for b.Loop() {
		c.ObserveResponse(200, method)
	}
}
