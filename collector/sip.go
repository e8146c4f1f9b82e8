package collector

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// Method is an index into [Methods]: the closed set of values of the
// `method` label.
type Method uint8

// Methods are the method label values: the methods of RFC 3261 and its
// extensions that the exporter names, and OTHER for any other token or a
// missing CSeq. Indexed by [Method].
var Methods = [...]string{
	"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK",
	"SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
	"OTHER",
}

// The methods, in the order of [Methods].
const (
	MethodINVITE Method = iota
	MethodACK
	MethodBYE
	MethodCANCEL
	MethodREGISTER
	MethodOPTIONS
	MethodPRACK
	MethodSUBSCRIBE
	MethodNOTIFY
	MethodPUBLISH
	MethodINFO
	MethodREFER
	MethodMESSAGE
	MethodUPDATE
	MethodOther
	numMethods
)

// String returns the label value of m.
func (m Method) String() string { return Methods[m] }

// MethodOf classifies a method token as sent on the wire (case-sensitive,
// RFC 3261 §7.1) into one of [Methods]; anything else, empty included, is
// [MethodOther]. It does not allocate.
func MethodOf(token []byte) Method {
	switch string(token) { // the compiler does not allocate for this switch
	case "INVITE":
		return MethodINVITE
	case "ACK":
		return MethodACK
	case "BYE":
		return MethodBYE
	case "CANCEL":
		return MethodCANCEL
	case "REGISTER":
		return MethodREGISTER
	case "OPTIONS":
		return MethodOPTIONS
	case "PRACK":
		return MethodPRACK
	case "SUBSCRIBE":
		return MethodSUBSCRIBE
	case "NOTIFY":
		return MethodNOTIFY
	case "PUBLISH":
		return MethodPUBLISH
	case "INFO":
		return MethodINFO
	case "REFER":
		return MethodREFER
	case "MESSAGE":
		return MethodMESSAGE
	case "UPDATE":
		return MethodUPDATE
	}
	return MethodOther
}

const numCodes = sipstatus.MaxCode - sipstatus.MinCode + 1

// preinitialised are the (method, code) pairs exported at zero before they
// are first seen, so that alerting rules see a series start at 0 rather than
// miss the first increase. Kept to the outcomes a NOC alerts on.
var preinitialised = map[Method][]int{
	MethodINVITE:   {100, 180, 183, 200, 401, 403, 404, 407, 408, 480, 486, 487, 488, 500, 502, 503, 504, 600, 603},
	MethodREGISTER: {200, 401, 403, 407, 408, 500, 503},
	MethodOPTIONS:  {200},
	MethodBYE:      {200, 481},
	MethodCANCEL:   {200},
}

// SIP is the collector of the `sip_` families: sip_responses_total and
// sip_requests_total. Observe methods are safe for concurrent use, take no
// lock and do not allocate.
type SIP struct {
	responses [numCodes][numMethods]atomic.Uint64
	requests  [numMethods]atomic.Uint64
	// show marks cells exported even at zero.
	show [numCodes][numMethods]bool

	responsesDesc *prometheus.Desc
	requestsDesc  *prometheus.Desc
}

// NewSIP returns a SIP collector with the common (method, code) pairs
// pre-initialised at zero.
func NewSIP() *SIP {
	c := &SIP{
		responsesDesc: prometheus.NewDesc("sip_responses_total",
			"SIP response messages seen, by CSeq method, status code, class and registry reason phrase (RFC 3261 §7.2).",
			[]string{"method", "code", "class", "reason"}, nil),
		requestsDesc: prometheus.NewDesc("sip_requests_total",
			"SIP request messages seen, by method (RFC 3261 §7.1).",
			[]string{"method"}, nil),
	}
	for m, codes := range preinitialised {
		for _, code := range codes {
			c.show[code-sipstatus.MinCode][m] = true
		}
	}
	return c
}

// ObserveResponse counts one response with status code (100..699; other
// values are ignored: the scanner rejects them) to a request of the CSeq
// method token (e.g. "INVITE"; empty when the CSeq is missing).
func (c *SIP) ObserveResponse(code int, method []byte) {
	if !sipstatus.Valid(code) {
		return
	}
	c.responses[code-sipstatus.MinCode][MethodOf(method)].Add(1)
}

// ObserveRequest counts one request of the method token.
func (c *SIP) ObserveRequest(method []byte) {
	c.requests[MethodOf(method)].Add(1)
}

// Response returns the count of responses with code to method.
func (c *SIP) Response(code int, m Method) uint64 {
	if !sipstatus.Valid(code) {
		return 0
	}
	return c.responses[code-sipstatus.MinCode][m].Load()
}

// Request returns the count of requests of method m.
func (c *SIP) Request(m Method) uint64 { return c.requests[m].Load() }

// EachResponse calls fn, in order of code then method, for every (code,
// method) pair counted at least once.
func (c *SIP) EachResponse(fn func(code int, m Method, n uint64)) {
	for i := range c.responses {
		for m := range c.responses[i] {
			if n := c.responses[i][m].Load(); n > 0 {
				fn(i+sipstatus.MinCode, Method(m), n)
			}
		}
	}
}

// Describe implements [prometheus.Collector].
func (c *SIP) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.responsesDesc
	ch <- c.requestsDesc
}

// codeLabels are the decimal label values of every status code, made once.
var codeLabels = func() (l [numCodes]string) {
	for i := range l {
		code := i + sipstatus.MinCode
		l[i] = string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
	}
	return l
}()

// Collect implements [prometheus.Collector]: one sample per (method, code)
// pair seen or pre-initialised, and one per request method.
func (c *SIP) Collect(ch chan<- prometheus.Metric) {
	for i := range c.responses {
		code := i + sipstatus.MinCode
		for m := range c.responses[i] {
			n := c.responses[i][m].Load()
			if n == 0 && !c.show[i][m] {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.responsesDesc, prometheus.CounterValue, float64(n),
				Methods[m], codeLabels[i], sipstatus.Class(code), sipstatus.Text(code))
		}
	}
	for m := range c.requests {
		ch <- prometheus.MustNewConstMetric(c.requestsDesc, prometheus.CounterValue, float64(c.requests[m].Load()), Methods[m])
	}
}
