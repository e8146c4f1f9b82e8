package collector

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"net/netip"
)

// TxEventFlags qualify a [TxEvent].
type TxEventFlags uint8

const (
	// TxResponse marks a response; without it the event is a request.
	TxResponse TxEventFlags = 1 << iota
	// TxToTag marks a message whose To header has a tag: a request inside a
	// dialog (RFC 3261 §12.2.1.1), such as a re-INVITE or a BYE.
	TxToTag
	// TxUnregister marks a REGISTER request that removes bindings: its
	// Contact is "*", or its expiry (the Contact's expires parameter, else
	// the Expires header) is 0 (RFC 3261 §10.2.2). A 2xx to it that gives
	// no expiry of its own removes the address of record.
	TxUnregister
)

// NoExpiry is [TxEvent.Expires] of a message that gives no expiry.
const NoExpiry = -1

// TxEvent is one SIP message as the transaction tracker sees it: hashes
// instead of the wire bytes, so that it is a small value that can be queued
// without allocation. Build it with [TxKey], [DialogKey] and [TagHash].
type TxEvent struct {
	// Time is the capture time, nanoseconds since the Unix epoch.
	Time int64
	// Key identifies the transaction (RFC 3261 §17.1.3, §17.2.3): [TxKey]
	// of Call-ID, CSeq number, CSeq method and the branch of the top Via.
	Key uint64
	// Dialog identifies the dialog: [DialogKey] of Call-ID, From tag and To
	// tag; it is the same in both directions. A REGISTER and its
	// responses belong to no dialog (RFC 3261 §10): for them it is
	// [AORKey] of the To URI, the address of record (§10.2) in its
	// canonical form (§10.3 step 5), or 0 without one; see [TxEvent.AOR].
	Dialog uint64
	// Node is the counters' node of the message.
	Node *Node
	// ToTag is [TagHash] of the To tag, 0 without one; responses to one
	// request from different forks differ in it (RFC 3261 §16.7).
	ToTag uint32
	// Expires is, for a response to REGISTER, the expiry it grants in
	// seconds: the largest expires parameter of its Contact values, else
	// its Expires header (RFC 3261 §10.3 step 8), capped at 2^31-1;
	// [NoExpiry] when it gives none.
	Expires int32
	// Code is the status code of a response (100..699); 0 for a request.
	Code uint16
	// SIPCause and Q850Cause are the causes of the message's Reason header
	// (RFC 3326): 100..699 and 0..127, or -1 when absent or out of range.
	SIPCause  int16
	Q850Cause int8
	// Method is the CSeq method.
	Method Method
	Flags  TxEventFlags
	// STIR is, for an initial INVITE, its attestation and verification
	// status (RFC 8588, ATIS-1000074); the zero value says none of either.
	STIR STIR
	// Retry is [RetryKey] of Call-ID and From tag, of Call-ID alone for
	// REGISTER and its responses. A request re-sent with credentials
	// after a 401 or 407 keeps them (RFC 3261 §8.1.3.5, §22.2; a UA keeps
	// the Call-ID of its REGISTERs to one registrar, §10.2, but some
	// change the From tag): with Leg and Method it links a challenged
	// initial INVITE or REGISTER to its re-send.
	Retry uint32
	// Leg is [LegKey] of the two hosts (IP addresses) between which the
	// message travels, the same in both directions: the leg of a proxy or
	// B2BUA that it belongs to.
	Leg uint32
}

// AOR returns, for REGISTER and its responses, [AORKey] of the To URI
// (kept in Dialog), or 0 without one; 0 for any other method.
func (ev *TxEvent) AOR() uint64 {
	if ev.Method != MethodREGISTER {
		return 0
	}
	return ev.Dialog
}

// hashSeed seeds every hash of the package; made once per process.
var hashSeed = maphash.MakeSeed()

// mix64 is the finaliser of SplitMix64: it spreads the bits of x.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// TxKey returns the key of the transaction of a message (RFC 3261 §17.1.3):
// Call-ID, CSeq number, CSeq method token and the branch parameter of the
// topmost Via (empty for RFC 2543 clients, which then rely on Call-ID and
// CSeq). The method is part of the key, so a CANCEL or the ACK of a non-2xx
// response, which share the INVITE's branch, are transactions of their own
// (§9.1, §17.1.1.3). callID is [CallIDHash] of the Call-ID. It does not
// allocate.
func TxKey(callID uint64, cseq uint32, method, branch []byte) uint64 {
	h := callID
	h ^= bits.RotateLeft64(maphash.Bytes(hashSeed, branch), 21)
	h ^= bits.RotateLeft64(maphash.Bytes(hashSeed, method), 42)
	return mix64(h ^ uint64(cseq)*0x9e3779b97f4a7c15)
}

// CallIDHash returns the 64-bit hash of a Call-ID (RFC 3261 §20.8) that
// [TxKey], [DialogKey] and [RetryKey] take, so that a message's Call-ID is
// hashed once. It does not allocate.
func CallIDHash(callID []byte) uint64 { return maphash.Bytes(hashSeed, callID) }

// TagHash returns a 32-bit hash of a From or To tag, 0 for an empty tag and
// never 0 otherwise. It does not allocate.
func TagHash(tag []byte) uint32 {
	if len(tag) == 0 {
		return 0
	}
	h := uint32(maphash.Bytes(hashSeed, tag))
	if h == 0 {
		h = 1
	}
	return h
}

// AORKey returns the key of an address of record, the To URI of a
// REGISTER (RFC 3261 §10.2), never 0: a hash of its canonical form, which
// a registrar indexes its bindings by (§10.3 step 5), so that every
// spelling of one address of record has one key. For a SIP or SIPS URI
// the canonical form drops the URI parameters (user=phone and any other)
// and the headers, unescapes the escaped characters ("%" HEX HEX), as
// §10.3 step 5 says, and puts the scheme and the host and port in lower
// case, the userinfo (user and password) keeping its case (§19.1.4); any
// other URI (a tel URI) is taken as sent. The hash is taken as the form
// is read, without building it: AORKey does not allocate.
func AORKey(uri []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	colon := bytes.IndexByte(uri, ':')
	if scheme := uri[:max(colon, 0)]; !bytes.EqualFold(scheme, []byte("sip")) && !bytes.EqualFold(scheme, []byte("sips")) {
		h.Write(uri)
		return mix64(h.Sum64()) | 1
	}
	writeCanonical(&h, uri[:colon+1], true)
	rest := uri[colon+1:]
	// The userinfo ends at the only "@" (§25.1: user, password, parameters
	// and headers escape theirs); it may hold ";" and "?", the host may not.
	if at := bytes.IndexByte(rest, '@'); at >= 0 {
		writeCanonical(&h, rest[:at+1], false)
		rest = rest[at+1:]
	}
	for i, c := range rest {
		if c == ';' || c == '?' {
			rest = rest[:i]
			break
		}
	}
	writeCanonical(&h, rest, true)
	return mix64(h.Sum64()) | 1
}

// writeCanonical writes b to h with its escaped characters ("%" HEX HEX)
// unescaped, and in lower case (ASCII) when fold.
func writeCanonical(h *maphash.Hash, b []byte, fold bool) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '%' && i+2 < len(b) {
			if hi, lo := unhex(b[i+1]), unhex(b[i+2]); hi|lo < 16 {
				c = hi<<4 | lo
				i += 2
			}
		}
		if fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h.WriteByte(c)
	}
}

// unhex returns the value of the hex digit c, or 16 when c is none.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 16
}

// RetryKey returns [TxEvent.Retry] of a message: a 32-bit hash of its
// Call-ID and its From tag ([TagHash]), which a request re-sent with
// credentials after a challenge keeps (RFC 3261 §22.2). callID is
// [CallIDHash] of the Call-ID. It does not allocate.
func RetryKey(callID uint64, fromTag uint32) uint32 {
	return uint32(mix64(callID^uint64(fromTag)*0xc2b2ae3d27d4eb4f) >> 32)
}

// LegKey returns [TxEvent.Leg] of a message sent from a to b: a hash of
// the two IP addresses (not the ports: a leg's requests and responses,
// its ACK and BYE included, travel between the same two hosts, in either
// direction, but not always between the same ports), the same for (a, b)
// and (b, a). An IPv4 address and its IPv4-mapped IPv6 form are the same
// host. It does not allocate.
func LegKey(a, b netip.Addr) uint32 {
	return uint32(mix64(hostHash(a)+hostHash(b)) >> 32)
}

// hostHash hashes an IP address for LegKey: a multiply of each half by an
// odd constant, a bijection of each, which is enough where keys only have
// to differ between the few legs of one call; LegKey mixes the sum.
func hostHash(a netip.Addr) uint64 {
	hi, lo := addrBits(a)
	return hi*0x9e3779b97f4a7c15 ^ bits.RotateLeft64(lo*0xc2b2ae3d27d4eb4f, 29)
}

// addrBits returns the 128 bits of the IPv6 form of a (IPv4-mapped for an
// IPv4 address, so that both forms of one host are the same) as two
// big-endian words; zero for the zero Addr. An IPv4 address, the usual,
// takes As4: netip's As16 costs several times as much (23 ns a LegKey
// with it, 5 without). Its twin is capture/merge's (leaf packages import
// none of ours).
func addrBits(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// DialogKey returns the key of the dialog of a message: Call-ID and the two
// tags (RFC 3261 §12), the same whichever side sends (From and To swap).
// callID is [CallIDHash] of the Call-ID.
func DialogKey(callID uint64, fromTag, toTag uint32) uint64 {
	return mix64(callID ^ (uint64(fromTag)+uint64(toTag))*0xff51afd7ed558ccd)
}
