package pipeline

import (
	"math"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/collector"
)

// txEvent fills ev with the transaction tracker's view of m, counted under
// node n; call is [collector.CallIDHash] of its Call-ID. It returns false
// for a message without Call-ID or CSeq, which belongs to no transaction.
// It does not allocate.
func txEvent(o *decode.Origin, m *sip.Message, call uint64, n *collector.Node, ev *collector.TxEvent) bool {
	if m.CSeqMethod == nil || m.CallID == nil {
		return false
	}
	toTag, fromTag := collector.TagHash(m.ToTag), collector.TagHash(m.FromTag)
	// A looped capture file's later passes are other traffic with the
	// same Call-IDs: their transactions and dialogs are others.
	salt := uint64(o.Pass) * 0x9e3779b97f4a7c15
	*ev = collector.TxEvent{
		Time:      o.Time,
		Key:       collector.TxKey(call, m.CSeq, m.CSeqMethod, m.ViaBranch) ^ salt,
		Dialog:    collector.DialogKey(call, fromTag, toTag) ^ salt,
		Retry:     collector.RetryKey(call, fromTag) ^ uint32(salt>>32), // REGISTER's: below
		Leg:       collector.LegKey(o.Src.Addr(), o.Dst.Addr()),
		Node:      n,
		ToTag:     toTag,
		Method:    collector.MethodOf(m.CSeqMethod),
		Q850Cause: int8(cause(m.Q850Cause, 127)),
		SIPCause:  cause(m.SIPCause, 699),
	}
	if m.Response {
		ev.Flags |= collector.TxResponse
		ev.Code = uint16(m.StatusCode)
	}
	if toTag != 0 {
		ev.Flags |= collector.TxToTag
	} else if !m.Response && ev.Method == collector.MethodINVITE {
		ev.STIR = stirOf(m) // an initial INVITE
	}
	ev.Expires = collector.NoExpiry
	if ev.Method == collector.MethodREGISTER {
		// A UA keeps the Call-ID of its registrations with a registrar
		// (RFC 3261 §10.2), but some put a new From tag in a REGISTER
		// re-sent with credentials: its Retry is the Call-ID's alone.
		ev.Retry = collector.RetryKey(call, 0) ^ uint32(salt>>32)
		// No dialog (RFC 3261 §10): the Dialog of a REGISTER is its
		// address of record.
		ev.Dialog = 0
		if m.ToURI != nil {
			ev.Dialog = collector.AORKey(m.ToURI)
		}
		// The expiry of a binding: the Contact's expires parameter, else
		// the Expires header (RFC 3261 §10.2.1.1, §10.3 step 8).
		exp := expiry(m.ContactExpires)
		if exp < 0 {
			exp = expiry(m.Expires)
		}
		switch {
		case m.Response:
			ev.Expires = exp
		case m.ContactStar || exp == 0:
			ev.Flags |= collector.TxUnregister
		}
	}
	return true
}

// expiry parses delta-seconds (RFC 3261 §20.19, 1*DIGIT), capped at
// 2^31-1; collector.NoExpiry when b is absent or not such a number.
func expiry(b []byte) int32 {
	if len(b) == 0 {
		return collector.NoExpiry
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return collector.NoExpiry
		}
		if n = n*10 + int64(c-'0'); n > math.MaxInt32 {
			n = math.MaxInt32
		}
	}
	return int32(n)
}

// cause parses a Reason cause of at most three digits no larger than max;
// -1 when absent or not such a number. The tracker checks the lower bound.
func cause(b []byte, max int16) int16 {
	if len(b) == 0 || len(b) > 3 {
		return -1
	}
	var n int16
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int16(c-'0')
	}
	if n > max {
		return -1
	}
	return n
}
