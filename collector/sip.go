package collector

import (
	"slices"
	"strings"
	"sync"
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

// MaxNodeLabelBytes bounds the length of a node label value.
const MaxNodeLabelBytes = 64

// OtherNode is the node label value of messages from nodes past the limit.
const OtherNode = "other"

// Node holds the counters of one value of the `node` label. Its Observe
// methods are safe for concurrent use, take no lock and do not allocate:
// an index computation and one atomic add. A Node costs about 72 KiB.
type Node struct {
	label     string
	responses [numCodes][numMethods]atomic.Uint64
	requests  [numMethods]atomic.Uint64
}

// Label returns the node label value.
func (n *Node) Label() string { return n.label }

// seriesLabelNames are the label names that every sip_ family, in this
// collector and the others, starts with; [Node.labelValues] gives their
// values for one Node.
var seriesLabelNames = []string{"node"}

// labelValues returns the values of seriesLabelNames for n, in order.
func (n *Node) labelValues() []string { return []string{n.label} }

// ObserveResponse counts one response with status code (100..699; other
// values are ignored: the scanner rejects them) to a request of the CSeq
// method token (e.g. "INVITE"; empty when the CSeq is missing).
func (n *Node) ObserveResponse(code int, method []byte) {
	if !sipstatus.Valid(code) {
		return
	}
	n.responses[code-sipstatus.MinCode][MethodOf(method)].Add(1)
}

// ObserveRequest counts one request of the method token.
func (n *Node) ObserveRequest(method []byte) {
	n.requests[MethodOf(method)].Add(1)
}

// Response returns the count of responses with code to method m.
func (n *Node) Response(code int, m Method) uint64 {
	if !sipstatus.Valid(code) {
		return 0
	}
	return n.responses[code-sipstatus.MinCode][m].Load()
}

// Request returns the count of requests of method m.
func (n *Node) Request(m Method) uint64 { return n.requests[m].Load() }

// EachResponse calls fn, in order of code then method, for every (code,
// method) pair counted at least once.
func (n *Node) EachResponse(fn func(code int, m Method, count uint64)) {
	for i := range n.responses {
		for m := range n.responses[i] {
			if v := n.responses[i][m].Load(); v > 0 {
				fn(i+sipstatus.MinCode, Method(m), v)
			}
		}
	}
}

// SIP is the collector of the `sip_` families, sip_responses_total and
// sip_requests_total, labelled by node. The set of nodes is bounded: past
// the limit, messages of new nodes are counted under node="other".
type SIP struct {
	maxNodes int
	// nodes maps a node name as seen on the wire to its counters; it is
	// replaced, never modified, so that lookups need no lock.
	nodes    atomic.Pointer[map[string]*Node]
	mu       sync.Mutex // serialises additions
	labels   map[string]*Node
	ordered  []*Node // in label order, guarded by mu
	other    *Node   // created on first overflow, guarded by mu
	overflow atomic.Uint64
	// show marks cells exported even at zero.
	show [numCodes][numMethods]bool

	responsesDesc, requestsDesc, nodesDesc, overflowDesc *prometheus.Desc
}

// NewSIP returns a SIP collector that tracks at most maxNodes node label
// values (plus "other"), with the common (method, code) pairs of each node
// pre-initialised at zero.
func NewSIP(maxNodes int) *SIP {
	c := &SIP{
		maxNodes: maxNodes,
		labels:   map[string]*Node{},
		responsesDesc: prometheus.NewDesc("sip_responses_total",
			"SIP response messages seen, by node, CSeq method, status code, class and registry reason phrase (RFC 3261 §7.2).",
			append(slices.Clone(seriesLabelNames), "method", "code", "class", "reason"), nil),
		requestsDesc: prometheus.NewDesc("sip_requests_total",
			"SIP request messages seen, by node and method (RFC 3261 §7.1).",
			append(slices.Clone(seriesLabelNames), "method"), nil),
		nodesDesc: prometheus.NewDesc("sip_exporter_nodes",
			"Distinct node label values tracked (without \"other\").", nil, nil),
		overflowDesc: prometheus.NewDesc("sip_exporter_node_overflow_total",
			"SIP messages counted under node=\"other\" because the node limit was reached.", nil, nil),
	}
	empty := map[string]*Node{}
	c.nodes.Store(&empty)
	for m, codes := range preinitialised {
		for _, code := range codes {
			c.show[code-sipstatus.MinCode][m] = true
		}
	}
	return c
}

// Node returns the counters of the node called name as seen on the wire (a
// HEP node name, a capture agent ID in decimal, or a configured name). The
// label value is name made safe: bytes outside printable ASCII become '_',
// and it is cut to MaxNodeLabelBytes. Looking up a known name takes no lock
// and does not allocate; a new one is added under a lock, and past the node
// limit the "other" node is returned and the overflow counted.
func (c *SIP) Node(name []byte) *Node {
	if n := (*c.nodes.Load())[string(name)]; n != nil {
		return n
	}
	return c.addNode(name)
}

func (c *SIP) addNode(name []byte) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.nodes.Load()
	if n := old[string(name)]; n != nil {
		return n
	}
	label := nodeLabel(name)
	n := c.labels[label]
	if n == nil {
		if len(c.labels) >= c.maxNodes || label == OtherNode {
			c.overflow.Add(1)
			if c.other == nil {
				c.other = &Node{label: OtherNode}
			}
			return c.other
		}
		n = &Node{label: label}
		c.labels[label] = n
		i, _ := slices.BinarySearchFunc(c.ordered, label, func(n *Node, l string) int { return strings.Compare(n.label, l) })
		c.ordered = slices.Insert(c.ordered, i, n)
	}
	if len(old) >= 4*c.maxNodes { // raw spellings of known labels are bounded too
		return n
	}
	m := make(map[string]*Node, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[string(name)] = n
	c.nodes.Store(&m)
	return n
}

// nodeLabel makes a node name safe as a label value.
func nodeLabel(name []byte) string {
	if len(name) > MaxNodeLabelBytes {
		name = name[:MaxNodeLabelBytes]
	}
	b := []byte(string(name))
	for i, ch := range b {
		if ch < 0x20 || ch > 0x7e {
			b[i] = '_'
		}
	}
	return string(b)
}

// Nodes returns the tracked nodes in label order, "other" last if used.
func (c *SIP) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes := slices.Clone(c.ordered)
	if c.other != nil {
		nodes = append(nodes, c.other)
	}
	return nodes
}

// Describe implements [prometheus.Collector].
func (c *SIP) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.responsesDesc
	ch <- c.requestsDesc
	ch <- c.nodesDesc
	ch <- c.overflowDesc
}

// codeLabels are the decimal label values of every status code, made once.
var codeLabels = func() (l [numCodes]string) {
	for i := range l {
		code := i + sipstatus.MinCode
		l[i] = string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
	}
	return l
}()

// Collect implements [prometheus.Collector]: per node, one sample per
// (method, code) pair seen or pre-initialised, and one per request method.
func (c *SIP) Collect(ch chan<- prometheus.Metric) {
	nodes := c.Nodes()
	for _, n := range nodes {
		lv := n.labelValues()
		for i := range n.responses {
			code := i + sipstatus.MinCode
			for m := range n.responses[i] {
				v := n.responses[i][m].Load()
				if v == 0 && !c.show[i][m] {
					continue
				}
				ch <- prometheus.MustNewConstMetric(c.responsesDesc, prometheus.CounterValue, float64(v),
					append(lv, Methods[m], codeLabels[i], sipstatus.Class(code), sipstatus.Text(code))...)
			}
		}
		for m := range n.requests {
			ch <- prometheus.MustNewConstMetric(c.requestsDesc, prometheus.CounterValue, float64(n.requests[m].Load()), append(lv, Methods[m])...)
		}
	}
	tracked := len(nodes)
	if len(nodes) > 0 && nodes[len(nodes)-1] == c.other {
		tracked--
	}
	ch <- prometheus.MustNewConstMetric(c.nodesDesc, prometheus.GaugeValue, float64(tracked))
	ch <- prometheus.MustNewConstMetric(c.overflowDesc, prometheus.CounterValue, float64(c.overflow.Load()))
}
