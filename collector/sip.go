package collector

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/cpu"

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

// Node holds the counters of one label set of the `sip_` families: one
// value of the `node` label and, when the collector has peer labels, one
// (`peer`, `direction`) pair. Other collectors key their own per-series
// state by *Node and take its label values from it. Its Observe methods are
// safe for concurrent use, take no lock and do not allocate: an index
// computation and one atomic add (and an allocation of 120 bytes the first
// time a status code is seen). A Node costs about 5 KiB plus 120 bytes per
// distinct status code counted, per shard ([SIPConfig.Shards]).
type Node struct {
	label     string // node label value
	peer      string // peer label value; "" without peer labels
	direction Direction
	values    []string   // values of the collector's series label names
	node      *nodeEntry // shared by the Nodes of one node label value
	overflow  bool       // node label "other" of the node limit
	shards    []*Counts  // one per shard; the Node's own methods count in the first
}

// maxShards bounds [SIPConfig.Shards].
const maxShards = 64

// Counts are the counters of one shard of a [Node]: the pipeline stage
// that counts the messages of a share of the Call-IDs, on its own
// goroutine, counts in its own, so that two shards never write one cache
// line; the collector sums them at scrape. Its methods are those of Node.
type Counts struct {
	_         cpu.CacheLinePad
	responses codeCounts
	requests  [numMethods]atomic.Uint64
	// serverErrors are the exemplars of the 5xx responses, made on the
	// first 5xx ([Counts.ObserveResponseCallID]).
	serverErrors atomic.Pointer[serverErrorExemplars]
	_            cpu.CacheLinePad
}

// serverErrorExemplars are the exemplars of one shard's 5xx responses by
// code (500..599), each row of methods made on the first count of its
// code: 15 × 104 bytes.
type serverErrorExemplars [100]atomic.Pointer[[numMethods]exemplar]

// serverError returns the exemplar of the 5xx response code to m, made on
// first use; nil if c has none yet and create is false.
func (c *Counts) serverError(code int, m Method, create bool) *exemplar {
	t := c.serverErrors.Load()
	if t == nil {
		if !create {
			return nil
		}
		c.serverErrors.CompareAndSwap(nil, new(serverErrorExemplars))
		t = c.serverErrors.Load()
	}
	row := &t[code-500]
	r := row.Load()
	if r == nil {
		if !create {
			return nil
		}
		row.CompareAndSwap(nil, new([numMethods]exemplar))
		r = row.Load()
	}
	return &r[m]
}

// ObserveResponseCallID is [Counts.ObserveResponseMethod] of a response
// whose Call-ID is id: a 5xx makes it the exemplar of its series
// (sip_responses_total, code 500..599), value 1, at its capture time at
// (ns since the Unix epoch; see [exemplar.record]). One goroutine per shard calls it (the shard's); it takes
// no lock and allocates only on the first 5xx of a code (1,560 bytes: the
// exemplars of its 15 methods) and on the first 5xx of all (800 bytes).
func (c *Counts) ObserveResponseCallID(code int, m Method, id *CallID, at int64) {
	if !sipstatus.Valid(code) {
		return
	}
	c.responses.add(code, m)
	if code >= 500 && code < 600 {
		c.serverError(code, m, true).record(id, 1, at)
	}
}

// Shard returns the counters of shard i (0 <= i < [SIPConfig.Shards]).
func (n *Node) Shard(i int) *Counts { return n.shards[i] }

// ObserveResponseMethod counts one response with status code (100..699;
// other values are ignored) to a request of method m, classified before
// (by [MethodOf]).
func (c *Counts) ObserveResponseMethod(code int, m Method) {
	if sipstatus.Valid(code) {
		c.responses.add(code, m)
	}
}

// ObserveRequestMethod counts one request of method m.
func (c *Counts) ObserveRequestMethod(m Method) { c.requests[m].Add(1) }

// Label returns the node label value.
func (n *Node) Label() string { return n.label }

// Peer returns the peer label value: a configured peer's name or
// [OtherPeer]; "" when the collector has no peer labels.
func (n *Node) Peer() string { return n.peer }

// Direction returns the direction of the peer label set
// ([DirectionUnknown] for [OtherPeer] and without peer labels).
func (n *Node) Direction() Direction { return n.direction }

// labelValues returns the values of the collector's seriesLabelNames for
// n, in order. Appending to the result copies it.
func (n *Node) labelValues() []string { return n.values[:len(n.values):len(n.values)] }

// ObserveResponse counts one response with status code (100..699; other
// values are ignored: the scanner rejects them) to a request of the CSeq
// method token (e.g. "INVITE"; empty when the CSeq is missing).
func (n *Node) ObserveResponse(code int, method []byte) {
	n.shards[0].ObserveResponseMethod(code, MethodOf(method))
}

// ObserveRequest counts one request of the method token.
func (n *Node) ObserveRequest(method []byte) {
	n.shards[0].ObserveRequestMethod(MethodOf(method))
}

// ObserveResponseMethod is [Counts.ObserveResponseMethod] of the first
// shard.
func (n *Node) ObserveResponseMethod(code int, m Method) {
	n.shards[0].ObserveResponseMethod(code, m)
}

// ObserveRequestMethod is [Counts.ObserveRequestMethod] of the first shard.
func (n *Node) ObserveRequestMethod(m Method) { n.shards[0].ObserveRequestMethod(m) }

// PhraseIndex returns the index of the reason phrase as sent (RFC 3261
// §7.2) among the phrases counted for status code, adding it while the
// code has room, for [Node.ObservePhraseIndex]; -1 when the collector does
// not count phrases. A known phrase takes no lock and does not allocate.
// It counts nothing: a message can be classified where it is decoded and
// counted later (after the merge removed copies).
func (n *Node) PhraseIndex(code int, phrase []byte) int {
	pc := n.node.phrases
	if pc == nil || !sipstatus.Valid(code) {
		return -1
	}
	return pc.t.index(code-sipstatus.MinCode, phrase)
}

// ObservePhraseIndex counts one response with status code under the phrase
// index i of [Node.PhraseIndex]; a negative i counts nothing.
func (n *Node) ObservePhraseIndex(code, i int) {
	if pc := n.node.phrases; pc != nil && i >= 0 && sipstatus.Valid(code) {
		ci := code - sipstatus.MinCode
		pc.counts[ci*(pc.t.max+1)+i].Add(1)
	}
}

// ObservePhrase counts the reason phrase of a response with status code as
// sent on the wire (RFC 3261 §7.2), under the node of n, when the
// collector counts phrases; otherwise it does nothing. A phrase already
// known for its code takes no lock and does not allocate.
func (n *Node) ObservePhrase(code int, phrase []byte) {
	if pc := n.node.phrases; pc != nil {
		pc.observe(code, phrase)
	}
}

// Response returns the count of responses with code to method m, over
// the shards.
func (n *Node) Response(code int, m Method) uint64 {
	var v uint64
	for _, c := range n.shards {
		v += c.responses.load(code, m)
	}
	return v
}

// Request returns the count of requests of method m, over the shards.
func (n *Node) Request(m Method) uint64 {
	var v uint64
	for _, c := range n.shards {
		v += c.requests[m].Load()
	}
	return v
}

// EachResponse calls fn, in order of code then method, for every (code,
// method) pair counted at least once, with its count over the shards.
func (n *Node) EachResponse(fn func(code int, m Method, count uint64)) {
	n.eachResponse(nil, func(i int, m Method, v uint64) { fn(i+sipstatus.MinCode, m, v) })
}

// serverErrorExemplar returns the latest exemplar over the shards of the
// 5xx response code to m.
func (n *Node) serverErrorExemplar(code int, m Method) exemplarRead {
	var es [maxShards]*exemplar
	for k, c := range n.shards {
		es[k] = c.serverError(code, m, false)
	}
	return latestExemplar(es[:len(n.shards)]...)
}

// eachResponse is eachSum over the shards' response counts.
func (n *Node) eachResponse(show *[numCodes][numMethods]bool, fn func(i int, m Method, v uint64)) {
	var cs [maxShards]*codeCounts
	for k, c := range n.shards {
		cs[k] = &c.responses
	}
	eachSum(show, fn, cs[:len(n.shards)]...)
}

// nodeEntry is one value of the node label: what the Nodes of its label
// sets share.
type nodeEntry struct {
	label   string
	phrases *phraseCounts // nil when phrases are not counted
}

// handleKey identifies a Node by its label values.
type handleKey struct {
	node, peer string
	dir        Direction
}

// view is the lookup state of one peer configuration. It is replaced, never
// modified, except that the Node pointers of its slots are filled in once.
type view struct {
	peers *Peers // nil without peer labels
	// names maps a node value as seen on the wire to its slots.
	names map[string]*nodeSlots
}

// nodeSlots are the Nodes of one raw node value under one peer
// configuration, by slot: 0 for peer "other", 1+2i and 2+2i for peer i
// inbound and outbound. Filled in on first use.
type nodeSlots struct {
	entry   *nodeEntry
	handles []atomic.Pointer[Node]
}

// nodeSlotsOf are the slots of one node entry under one peer
// configuration.
type nodeSlotsOf struct {
	peers *Peers
	nodeSlots
}

// slots returns the number of slots of a raw node value under v.
func (v *view) slots() int {
	if v.peers == nil {
		return 1
	}
	return 1 + 2*v.peers.Len()
}

// SIPConfig configures a [SIP] collector.
type SIPConfig struct {
	// MaxNodes bounds the node label values (plus "other"); at least 1.
	MaxNodes int
	// Peers, when not nil, gives the sip_ families the labels peer and
	// direction, and attributes messages to peers by address ([SIP.Lookup]).
	// It can be replaced with [SIP.SetPeers]; the label names stay.
	Peers *Peers
	// Phrases, when MaxPerCode is above 0, counts wire reason phrases in
	// sip_response_phrases_total, at most MaxPerCode distinct phrases per
	// status code.
	Phrases PhrasesConfig
	// Shards is the number of counters each Node keeps ([Node.Shard]),
	// 1 to 64; 0 means 1.
	Shards int
}

// SIP is the collector of the `sip_` families, sip_responses_total and
// sip_requests_total, labelled by node (and by peer and direction when
// peers are configured), of sip_response_phrases_total when phrases are
// counted, and of sip_peer_max_sessions (by peer) with peers. The set of nodes is bounded: past the limit, messages of new
// nodes are counted under node="other".
type SIP struct {
	maxNodes   int
	shards     int
	peerLabels bool
	// view is the current peer configuration and the raw node names seen
	// under it; replaced, never modified, so that lookups need no lock.
	view     atomic.Pointer[view]
	mu       sync.Mutex // serialises additions and reloads
	entries  map[string]*nodeEntry
	handles  map[handleKey]*Node
	ordered  []*Node    // in label order, the node "other" last; guarded by mu
	other    *nodeEntry // created on first overflow, guarded by mu
	overflow atomic.Uint64
	// full is set, under mu, once entries holds maxNodes labels: entries
	// is never written again and may be read without the lock.
	full atomic.Bool
	// otherSlots are the Nodes of "other" under the current peer
	// configuration, filled in under mu: past the limit, a name neither
	// seen nor a spelling of a tracked label resolves to them without a
	// lock and without allocating.
	otherSlots atomic.Pointer[nodeSlotsOf]
	phrases    *phraseTable // nil when phrases are not counted
	// show marks cells exported even at zero.
	show [numCodes][numMethods]bool

	responsesDesc, requestsDesc, nodesDesc, overflowDesc, phrasesDesc *prometheus.Desc
	// maxSessionsDesc is sip_peer_max_sessions; nil without peer labels.
	maxSessionsDesc *prometheus.Desc
}

// NewSIP returns a SIP collector labelled by node only, that tracks at most
// maxNodes node label values (plus "other"), with the common (method, code)
// pairs of each node pre-initialised at zero.
func NewSIP(maxNodes int) *SIP {
	c, err := NewSIPWithConfig(SIPConfig{MaxNodes: maxNodes})
	if err != nil {
		panic(err)
	}
	return c
}

// NewSIPWithConfig returns a SIP collector configured by cfg. Errors: a
// MaxNodes below 1, a Phrases.MaxPerCode above [MaxPhrasesPerCode].
func NewSIPWithConfig(cfg SIPConfig) (*SIP, error) {
	if cfg.MaxNodes < 1 {
		return nil, fmt.Errorf("max nodes %d: must be at least 1", cfg.MaxNodes)
	}
	if cfg.Phrases.MaxPerCode < 0 || cfg.Phrases.MaxPerCode > MaxPhrasesPerCode {
		return nil, fmt.Errorf("max phrases per code %d: must be 0 to %d", cfg.Phrases.MaxPerCode, MaxPhrasesPerCode)
	}
	if cfg.Shards == 0 {
		cfg.Shards = 1
	}
	if cfg.Shards < 1 || cfg.Shards > maxShards {
		return nil, fmt.Errorf("shards %d: must be 1 to %d", cfg.Shards, maxShards)
	}
	c := &SIP{
		shards:     cfg.Shards,
		maxNodes:   cfg.MaxNodes,
		peerLabels: cfg.Peers != nil,
		entries:    map[string]*nodeEntry{},
		handles:    map[handleKey]*Node{},
	}
	by := "node"
	if c.peerLabels {
		by = "node, peer, direction"
	}
	names := c.seriesLabelNames()
	c.responsesDesc = prometheus.NewDesc("sip_responses_total",
		"SIP response messages seen, by "+by+", CSeq method, status code, class and registry reason phrase (RFC 3261 §7.2).",
		append(names, "method", "code", "class", "reason"), nil)
	c.requestsDesc = prometheus.NewDesc("sip_requests_total",
		"SIP request messages seen, by "+by+" and method (RFC 3261 §7.1).",
		append(c.seriesLabelNames(), "method"), nil)
	c.nodesDesc = prometheus.NewDesc("sip_exporter_nodes",
		"Distinct node label values tracked (without \"other\").", nil, nil)
	c.overflowDesc = prometheus.NewDesc("sip_exporter_node_overflow_total",
		"SIP messages counted under node=\"other\" because the node limit was reached.", nil, nil)
	if cfg.Phrases.MaxPerCode > 0 {
		c.phrases = newPhraseTable(cfg.Phrases.MaxPerCode)
		c.phrasesDesc = prometheus.NewDesc("sip_response_phrases_total",
			"SIP response messages seen, by node, status code and reason phrase as sent (normalised; \"other\" past the limit of distinct phrases per code) (RFC 3261 §7.2).",
			[]string{"node", "code", "phrase"}, nil)
	}
	if c.peerLabels {
		c.maxSessionsDesc = prometheus.NewDesc("sip_peer_max_sessions",
			"Concurrent sessions (channels) the peer's contract allows, as declared by max_sessions in --config.file (the file in force, reloads included); absent for a peer that declares none. Compare with sip_sessions_active summed over the peer's nodes and directions.",
			[]string{"peer"}, nil)
	}
	c.view.Store(&view{peers: cfg.Peers, names: map[string]*nodeSlots{}})
	for m, codes := range preinitialised {
		for _, code := range codes {
			c.show[code-sipstatus.MinCode][m] = true
		}
	}
	return c, nil
}

// seriesLabelNames returns the label names that every sip_ family, in this
// collector and the others, starts with: node, and peer and direction when
// the collector has peer labels. [Node.labelValues] gives their values for
// one Node. They are fixed at construction. The result is a fresh slice.
func (c *SIP) seriesLabelNames() []string {
	if c.peerLabels {
		return []string{"node", "peer", "direction"}
	}
	return []string{"node"}
}

// SetPeers replaces the peer configuration (a reload): messages counted
// from now on are attributed by p. The label sets of peers no longer
// configured keep their counts and stay exported until restart. Error: the
// collector was made without peer labels, or p is nil.
func (c *SIP) SetPeers(p *Peers) error {
	if !c.peerLabels {
		return errors.New("set peers: the collector has no peer labels")
	}
	if p == nil {
		return errors.New("set peers: nil peers")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.view.Store(&view{peers: p, names: map[string]*nodeSlots{}})
	return nil
}

// Peers returns the current peer configuration; nil without peer labels.
func (c *SIP) Peers() *Peers { return c.view.Load().peers }

// Node returns the counters of the node called name as seen on the wire (a
// HEP node name, a capture agent ID in decimal, or a configured name), for
// peer "other" when the collector has peer labels. The label value is the
// display name configured for name, else name made safe: bytes outside
// printable ASCII become '_', and it is cut to MaxNodeLabelBytes. Looking
// up a known name takes no lock and does not allocate; a new one is added
// under a lock. Past the node limit the "other" node is returned and the
// overflow counted, also without a lock and without allocating (a sender
// spraying random node IDs slows no other source).
func (c *SIP) Node(name []byte) *Node {
	v := c.view.Load()
	if s := v.names[string(name)]; s != nil {
		if n := s.handles[0].Load(); n != nil {
			return n
		}
	}
	return c.resolve(v, name, 0)
}

// Lookup returns the counters of a message seen by node name (as for
// [SIP.Node]) from src to dst: with peer labels, of the peer and direction
// that [Peers.Match] attributes it to. Looking up a known label set takes
// no lock and does not allocate.
func (c *SIP) Lookup(name []byte, src, dst netip.AddrPort) *Node {
	v := c.view.Load()
	slot := 0
	if v.peers != nil {
		if peer, dir := v.peers.Match(src, dst); peer >= 0 {
			slot = 1 + 2*peer + int(dir-DirectionInbound)
		}
	}
	if s := v.names[string(name)]; s != nil {
		if n := s.handles[slot].Load(); n != nil {
			return n
		}
	}
	return c.resolve(v, name, slot)
}

// resolve is the slow path of Lookup: it adds the raw name to the view and
// the label set to the collector as needed. Past the node limit, a name
// that is not a spelling of a tracked label is counted under "other"
// without a lock and without allocating (see overflowNode).
func (c *SIP) resolve(v *view, name []byte, slot int) *Node {
	if n := c.overflowNode(v, name, slot); n != nil {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.view.Load(); cur.peers == v.peers {
		v = cur // same configuration: slot means the same label set
	}
	s := v.names[string(name)]
	if s == nil {
		entry := c.entryLocked(v, name)
		if entry == c.other {
			c.overflow.Add(1)
			os := c.otherSlots.Load()
			if os == nil || os.peers != v.peers {
				os = &nodeSlotsOf{peers: v.peers, nodeSlots: nodeSlots{entry: entry, handles: make([]atomic.Pointer[Node], v.slots())}}
				c.otherSlots.Store(os)
			}
			n := os.handles[slot].Load()
			if n == nil {
				n = c.handleLocked(entry, v, slot)
				os.handles[slot].Store(n)
			}
			return n
		}
		s = &nodeSlots{entry: entry, handles: make([]atomic.Pointer[Node], v.slots())}
		// Raw spellings of known labels are bounded too; past the bound
		// they are found under the lock.
		if c.view.Load() == v && len(v.names) < 4*c.maxNodes {
			m := make(map[string]*nodeSlots, len(v.names)+1)
			maps.Copy(m, v.names)
			m[string(name)] = s
			c.view.Store(&view{peers: v.peers, names: m})
		}
	}
	n := s.handles[slot].Load()
	if n == nil {
		n = c.handleLocked(s.entry, v, slot)
		s.handles[slot].Store(n)
	}
	return n
}

// entryLocked returns the node label value entry of a raw node name under
// v, or c.other past the node limit.
func (c *SIP) entryLocked(v *view, name []byte) *nodeEntry {
	var label string
	if display, ok := v.peers.NodeName(name); ok {
		label = display
	} else {
		label = nodeLabel(name)
	}
	if e := c.entries[label]; e != nil {
		return e
	}
	if len(c.entries) >= c.maxNodes || label == OtherNode {
		if c.other == nil {
			c.other = c.newEntry(OtherNode)
		}
		return c.other
	}
	e := c.newEntry(label)
	c.entries[label] = e
	if len(c.entries) >= c.maxNodes {
		c.full.Store(true) // entries is final: see overflowNode
	}
	return e
}

// overflowNode returns the Node of "other" for slot under v when the node
// limit has been reached, name is not a spelling of a tracked label (its
// display name or safe label is not among the entries) and "other" has
// been resolved for slot before; else nil, for resolve to decide under
// the lock. It takes no lock and does not allocate: past the limit the
// entries map is no longer written, and the label is made on the stack.
// It counts the overflow.
func (c *SIP) overflowNode(v *view, name []byte, slot int) *Node {
	if !c.full.Load() {
		return nil
	}
	os := c.otherSlots.Load()
	if os == nil || os.peers != v.peers {
		return nil
	}
	n := os.handles[slot].Load()
	if n == nil {
		return nil
	}
	if display, ok := v.peers.NodeName(name); ok {
		if c.entries[display] != nil {
			return nil
		}
	} else {
		var buf [MaxNodeLabelBytes]byte
		if c.entries[string(appendNodeLabel(buf[:0], name))] != nil {
			return nil
		}
	}
	c.overflow.Add(1)
	return n
}

func (c *SIP) newEntry(label string) *nodeEntry {
	e := &nodeEntry{label: label}
	if c.phrases != nil {
		e.phrases = c.phrases.newCounts()
	}
	return e
}

// handleLocked returns the Node of entry and slot under v, made on first
// use.
func (c *SIP) handleLocked(entry *nodeEntry, v *view, slot int) *Node {
	key := handleKey{node: entry.label}
	if c.peerLabels {
		key.peer = OtherPeer
		if slot > 0 {
			key.peer = v.peers.Name((slot - 1) / 2)
			key.dir = DirectionInbound + Direction((slot-1)%2)
		}
	}
	if n := c.handles[key]; n != nil {
		return n
	}
	n := &Node{label: key.node, peer: key.peer, direction: key.dir, node: entry, overflow: entry == c.other, shards: make([]*Counts, c.shards)}
	for k := range n.shards {
		n.shards[k] = new(Counts)
	}
	n.values = []string{key.node}
	if c.peerLabels {
		n.values = append(n.values, key.peer, key.dir.String())
	}
	c.handles[key] = n
	i, _ := slices.BinarySearchFunc(c.ordered, n, compareNodes)
	c.ordered = slices.Insert(c.ordered, i, n)
	return n
}

// compareNodes orders Nodes by node label, the overflow node "other" last,
// then by peer and direction.
func compareNodes(a, b *Node) int {
	if a.overflow != b.overflow {
		if a.overflow {
			return 1
		}
		return -1
	}
	if c := strings.Compare(a.label, b.label); c != 0 {
		return c
	}
	if c := strings.Compare(a.peer, b.peer); c != 0 {
		return c
	}
	return int(a.direction) - int(b.direction)
}

// nodeLabel makes a node name safe as a label value.
func nodeLabel(name []byte) string {
	var buf [MaxNodeLabelBytes]byte
	return string(appendNodeLabel(buf[:0], name))
}

// appendNodeLabel appends to b the label value of a node name: cut to
// MaxNodeLabelBytes, bytes outside printable ASCII replaced by '_'.
func appendNodeLabel(b, name []byte) []byte {
	if len(name) > MaxNodeLabelBytes {
		name = name[:MaxNodeLabelBytes]
	}
	for _, ch := range name {
		if ch < 0x20 || ch > 0x7e {
			ch = '_'
		}
		b = append(b, ch)
	}
	return b
}

// Nodes returns the Nodes of every label set seen, in label order (node,
// peer, direction), those of node "other" last.
func (c *SIP) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ordered)
}

// nodeEntries returns the node label values seen, in label order, "other"
// last if used, and how many there are without "other".
func (c *SIP) nodeEntries() (entries []*nodeEntry, tracked int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*nodeEntry, 0, len(c.entries)+1)
	for _, e := range c.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *nodeEntry) int { return strings.Compare(a.label, b.label) })
	if c.other != nil {
		out = append(out, c.other)
	}
	return out, len(c.entries)
}

// Describe implements [prometheus.Collector].
func (c *SIP) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.responsesDesc
	ch <- c.requestsDesc
	ch <- c.nodesDesc
	ch <- c.overflowDesc
	if c.phrasesDesc != nil {
		ch <- c.phrasesDesc
	}
	if c.maxSessionsDesc != nil {
		ch <- c.maxSessionsDesc
	}
}

// codeLabels are the decimal label values of every status code, made once.
var codeLabels = func() (l [numCodes]string) {
	for i := range l {
		code := i + sipstatus.MinCode
		l[i] = string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
	}
	return l
}()

// Collect implements [prometheus.Collector]: per label set, one sample per
// (method, code) pair seen or pre-initialised, and one per request method;
// per node, one sample per (code, phrase) seen.
func (c *SIP) Collect(ch chan<- prometheus.Metric) {
	for _, n := range c.Nodes() {
		lv := n.labelValues()
		n.eachResponse(&c.show, func(i int, m Method, v uint64) {
			code := i + sipstatus.MinCode
			metric := prometheus.MustNewConstMetric(c.responsesDesc, prometheus.CounterValue, float64(v),
				append(lv, Methods[m], codeLabels[i], sipstatus.Class(code), sipstatus.Text(code))...)
			if code >= 500 && code < 600 {
				metric = withExemplar(metric, n.serverErrorExemplar(code, m), n.label)
			}
			ch <- metric
		})
		for m := range numMethods {
			ch <- prometheus.MustNewConstMetric(c.requestsDesc, prometheus.CounterValue, float64(n.Request(m)), append(lv, Methods[m])...)
		}
	}
	entries, tracked := c.nodeEntries()
	if c.phrases != nil {
		for _, e := range entries {
			c.phrases.collect(ch, c.phrasesDesc, e.label, e.phrases)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.nodesDesc, prometheus.GaugeValue, float64(tracked))
	ch <- prometheus.MustNewConstMetric(c.overflowDesc, prometheus.CounterValue, float64(c.overflow.Load()))
	if p := c.Peers(); p != nil {
		for i := range p.Len() {
			if m := p.MaxSessions(i); m > 0 {
				ch <- prometheus.MustNewConstMetric(c.maxSessionsDesc, prometheus.GaugeValue, float64(m), p.Name(i))
			}
		}
	}
}
