package collector

import "github.com/sip-exporter/sip_exporter/collector/sipstatus"

// Digest challenges (RFC 3261 §22.2, §22.3): a UAS or registrar answers
// an initial INVITE or a REGISTER with 401 (Unauthorized), a proxy with
// 407 (Proxy Authentication Required), and the UA sends the request again
// with credentials in a new transaction: the same Call-ID and From tag,
// the next CSeq number (§8.1.3.5), another Via branch, on the same leg
// (between the same two hosts) and so under the same label set.
// The tracker makes the challenged request and its re-send one attempt,
// measured from the first request: RFC 6076 measures RRD (§4.1) from
// "the first bit of the initial REGISTER message" to the 200 OK, "an
// expected authentication challenge prior to receiving the 200 OK"
// included, and its session flows of SRD (§4.3) challenge the INVITE
// likewise; IRA (§4.2) does not count 401 and 407 as failures.
//
// A challenge is kept in Tracker.challenges under the key of the re-send
// it waits for (retryKey: Call-ID, From tag or address of record, leg,
// method, label set): the
// time of the attempt's first request, its label set and the code. The
// next new transaction with that key, an initial INVITE or a REGISTER,
// is the re-send (its CSeq number is not compared: the event has none):
// it is no new attempt, and finds the first request's time there until
// its final response. A challenge that no re-send answers within
// NonInviteTimeout (64*T1, the lifetime of the challenged transaction)
// ends the attempt with the challenge as its outcome.

// challengeEntry is one challenge to an attempt: 24 bytes, no pointers.
type challengeEntry struct {
	first  int64  // capture time of the attempt's first request, ns
	at     int64  // the time its queue item counts from: the challenge's, then the re-send's
	node   uint32 // index into Tracker.nodes: the attempt's label set
	code   uint16 // 401 or 407
	method Method // INVITE or REGISTER
	flags  uint8
}

// Challenge flags.
const (
	chResent uint8 = 1 << iota // the re-send came: its transaction is open
	chSRD                      // the attempt's SRD was measured (an 18x before the challenge)
)

// The timeout classes of Tracker.challengeQ.
const (
	chWaiting = iota // NonInviteTimeout after the challenge: the re-send's wait
	chOpen           // the re-send's transaction's lifetime, from the re-send
)

// isChallenge reports whether code is a digest challenge: 401
// (Unauthorized) or 407 (Proxy Authentication Required), RFC 3261 §22.
func isChallenge(code int) bool { return code == 401 || code == 407 }

// challengeIndex is the index of a challenge code in the challenge
// counters: 0 for 401, 1 for 407.
func challengeIndex(code int) int {
	if code == 407 {
		return 1
	}
	return 0
}

// challengeCodes are the label values of the challenge counters, by
// challengeIndex.
var challengeCodes = [2]string{"401", "407"}

// retryKey returns the key under which the challenge of a request of
// ev's Call-ID and From tag (a REGISTER's: Call-ID and address of record,
// since a UA may keep one Call-ID for several), leg and method, and label
// set node (the index of the request's), waits for its re-send, and the
// re-send for its final response.
func retryKey(ev *TxEvent, node uint32) uint64 {
	return mix64(uint64(ev.Retry)<<32 | uint64(ev.Leg) + uint64(ev.Method)*0xa0761d6478bd642f +
		uint64(node)*0x9e3779b97f4a7c15 + ev.AOR()*0xd6e8feb86659fd93)
}

// challengeLive reports whether a challenge's item is its current one.
func (t *Tracker) challengeLive(class int, it *timed[uint64]) bool {
	c := t.challenges.get(it.v)
	return c != nil && c.at == it.at && c.class() == class
}

func (c *challengeEntry) class() int {
	if c.flags&chResent != 0 {
		return chOpen
	}
	return chWaiting
}

// resend reports whether ev, the request of new transaction e (an
// initial INVITE or a REGISTER), re-sends a challenged one: then e takes
// the attempt's label set, is marked txResent (and txSRD when the
// attempt's SRD is measured) and its challenge waits for its final
// response.
func (t *Tracker) resend(ev *TxEvent, e *txEntry) bool {
	if t.challenges.len() == 0 {
		return false
	}
	key := retryKey(ev, e.node)
	c := t.challenges.get(key)
	if c == nil || c.flags&chResent != 0 {
		return false
	}
	c.flags |= chResent
	c.at = ev.Time
	t.challengeQ.deleted()
	t.challengeQ.push(chOpen, timed[uint64]{ev.Time, key}) // no eviction: one fewer is live
	e.node = c.node
	e.flags |= txResent
	if c.flags&chSRD != 0 {
		e.flags |= txSRD
	}
	return true
}

// firstRequest returns the capture time of the first request of the
// attempt of transaction e, to which response ev belongs: that of the
// challenged request when e re-sends it, else e's own start.
func (t *Tracker) firstRequest(ev *TxEvent, e *txEntry) int64 {
	if e.flags&txResent != 0 {
		if c := t.challenges.get(retryKey(ev, e.node)); c != nil && c.flags&chResent != 0 {
			return c.first
		}
	}
	return e.start
}

// challenged handles a 401 or 407, ev, the first final response of
// transaction e (an initial INVITE or a REGISTER), whose attempt started
// at first: it counts the challenge and waits for the re-send.
func (t *Tracker) challenged(ev *TxEvent, e *txEntry, first int64) {
	code := int(ev.Code)
	n := t.nodes[e.node]
	if e.method == MethodREGISTER {
		n.regChallenges[challengeIndex(code)].Add(1)
	} else {
		n.challenges[challengeIndex(code)].Add(1)
	}
	t.settle(ev, e)
	c := challengeEntry{first: first, at: ev.Time, node: e.node, code: uint16(code), method: e.method}
	if e.flags&txSRD != 0 {
		c.flags |= chSRD
	}
	e.flags |= txSRD // the attempt's SRD is no longer this transaction's
	key := retryKey(ev, e.node)
	if old, ok := t.challenges.del(key); ok {
		// Another attempt waits for the same re-send (the same request
		// challenged twice in one leg): it is given up.
		t.challengeQ.deleted()
		t.challengeEnded(old, old.class())
	}
	if old, ok := t.challengeQ.push(chWaiting, timed[uint64]{ev.Time, key}); ok {
		if o, ok := t.challenges.del(old.v); ok {
			t.challengeEnded(o, o.class())
		}
	}
	t.challenges.put(key, c)
}

// settle forgets the challenge of transaction e, a re-send, once ev, its
// final response, has settled its attempt.
func (t *Tracker) settle(ev *TxEvent, e *txEntry) {
	if e.flags&txResent == 0 {
		return
	}
	key := retryKey(ev, e.node)
	if c := t.challenges.get(key); c != nil && c.flags&chResent != 0 {
		t.challenges.del(key)
		t.challengeQ.deleted()
	}
}

// expireChallenges ends the challenges whose item is due at now: one no
// re-send answered ends its attempt with the challenge as its outcome;
// one re-sent is forgotten (its transaction has ended and counted its
// timeout).
func (t *Tracker) expireChallenges(now int64) {
	if t.challengeQ.held() == 0 {
		return
	}
	for class := range 2 {
		for t.challengeQ.due(class, now) {
			if it, live := t.challengeQ.pop(class); live {
				c, _ := t.challenges.del(it.v)
				t.challengeEnded(c, class)
			}
		}
	}
}

// challengeEnded ends challenge c, taken out of its table and queue, of
// class: one still waiting for its re-send ends its attempt with the
// challenge as its outcome and its delay, to the challenge, as the SRD or
// RRD of outcome "challenge".
func (t *Tracker) challengeEnded(c challengeEntry, class int) {
	if class != chWaiting {
		return
	}
	n := t.nodes[c.node]
	if c.method == MethodREGISTER {
		n.rrd[2].observe(c.at-c.first, nil, c.at) // a challenge keeps no Call-ID: no exemplar
		return
	}
	n.outcomes[int(c.code)-sipstatus.MinCode].Add(1)
	if c.flags&chSRD == 0 {
		n.srd[2].observe(c.at-c.first, nil, c.at)
	}
}
