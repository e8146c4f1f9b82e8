package collector

import (
	"bytes"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Attestation is the STIR/SHAKEN attestation of an initial INVITE: the
// attest claim of the SHAKEN PASSporT (RFC 8588 §4) in its Identity header
// (RFC 8224 §4), or none, or invalid. It is the attest label of
// sip_stir_attestations_total.
type Attestation uint8

// Attestations. The three levels are ATIS-1000074's: A (full: the signer
// knows the caller and its right to the number), B (partial: the caller,
// not its right to the number), C (gateway: neither).
const (
	AttestationNone    Attestation = iota // no Identity header
	AttestationA                          // "attest":"A"
	AttestationB                          // "attest":"B"
	AttestationC                          // "attest":"C"
	AttestationInvalid                    // an Identity header whose PASSporT payload cannot be read
	numAttestations
)

// attestLabels are the attest label values, by Attestation.
var attestLabels = [numAttestations]string{"none", "A", "B", "C", "invalid"}

// String returns the label value of a.
func (a Attestation) String() string {
	if a < numAttestations {
		return attestLabels[a]
	}
	return "invalid"
}

// Verstat is the verification status of an initial INVITE: the verstat
// parameter a verification service puts on its P-Asserted-Identity or
// From URI (ATIS-1000074 §5.3.1), in a closed set. It is the verstat label
// of sip_stir_verifications_total.
type Verstat uint8

// Verstats: the three values of ATIS-1000074, none (no parameter), other
// (any other value, such as a vendor's).
const (
	VerstatNone         Verstat = iota // no verstat parameter
	VerstatPassed                      // TN-Validation-Passed
	VerstatFailed                      // TN-Validation-Failed
	VerstatNoValidation                // No-TN-Validation
	VerstatOther                       // any other value
	numVerstats
)

// verstatLabels are the verstat label values, by Verstat: the values of
// ATIS-1000074 as it spells them.
var verstatLabels = [numVerstats]string{"none", "TN-Validation-Passed", "TN-Validation-Failed", "No-TN-Validation", "other"}

// String returns the label value of v.
func (v Verstat) String() string {
	if v < numVerstats {
		return verstatLabels[v]
	}
	return "other"
}

// VerstatOf returns the Verstat of a verstat parameter's value as sent:
// VerstatNone for nil (no parameter), one of the three values of
// ATIS-1000074 matched without regard to case, else VerstatOther (an
// empty value included). It does not allocate.
func VerstatOf(value []byte) Verstat {
	if value == nil {
		return VerstatNone
	}
	for v := VerstatPassed; v < VerstatOther; v++ {
		if bytes.EqualFold(value, []byte(verstatLabels[v])) {
			return v
		}
	}
	return VerstatOther
}

// STIR is an initial INVITE's Attestation and Verstat in one byte, which
// a [TxEvent] holds in what was padding. Its zero value is AttestationNone and
// VerstatNone.
type STIR uint8

// NewSTIR returns the STIR of a and v.
func NewSTIR(a Attestation, v Verstat) STIR { return STIR(a&15) | STIR(v&15)<<4 }

// Attestation returns the attestation of s.
func (s STIR) Attestation() Attestation { return Attestation(s & 15) }

// Verstat returns the verification status of s.
func (s STIR) Verstat() Verstat { return Verstat(s >> 4) }

// stirCounts counts a label set's initial INVITE transactions by
// Attestation and by Verstat.
type stirCounts struct {
	attest  [numAttestations]atomic.Uint64
	verstat [numVerstats]atomic.Uint64
}

// observe counts one initial INVITE transaction; values out of range
// count as invalid and other.
func (c *stirCounts) observe(s STIR) {
	c.attest[min(s.Attestation(), AttestationInvalid)].Add(1)
	c.verstat[min(s.Verstat(), VerstatOther)].Add(1)
}

// stirMetrics are the descriptions of the STIR/SHAKEN families.
type stirMetrics struct {
	attestDesc, verstatDesc *prometheus.Desc
}

// newStirMetrics returns the descriptions, with the label names of the
// label sets, lbl, first.
func newStirMetrics(lbl func(extra ...string) []string) stirMetrics {
	return stirMetrics{
		attestDesc: prometheus.NewDesc("sip_stir_attestations_total",
			"Initial INVITE transactions (no To tag; each once, retransmissions not counted, an INVITE re-sent with credentials after a 401 or 407 counted again) by the attest claim of the SHAKEN PASSporT in their Identity header (RFC 8224, RFC 8588): A, B, C; none without an Identity header; invalid when its payload cannot be read (not base64url, not a JSON object, no or another attest, over 4096 characters). Signatures are never verified.",
			lbl("attest"), nil),
		verstatDesc: prometheus.NewDesc("sip_stir_verifications_total",
			"Initial INVITE transactions, counted as sip_stir_attestations_total, by the verstat parameter of their P-Asserted-Identity, else From, URI (ATIS-1000074): TN-Validation-Passed, TN-Validation-Failed, No-TN-Validation; none without one; other for any other value.",
			lbl("verstat"), nil),
	}
}

func (m *stirMetrics) describe(ch chan<- *prometheus.Desc) {
	ch <- m.attestDesc
	ch <- m.verstatDesc
}

// collect exports the sums over tns, the txNodes of one label set (label
// values lv), every value of both families, at zero too.
func (m *stirMetrics) collect(ch chan<- prometheus.Metric, tns []*txNode, lv []string) {
	with := func(v string) []string { return append(lv[:len(lv):len(lv)], v) }
	for a := range numAttestations {
		var n uint64
		for _, tn := range tns {
			n += tn.stir.attest[a].Load()
		}
		ch <- prometheus.MustNewConstMetric(m.attestDesc, prometheus.CounterValue, float64(n), with(attestLabels[a])...)
	}
	for v := range numVerstats {
		var n uint64
		for _, tn := range tns {
			n += tn.stir.verstat[v].Load()
		}
		ch <- prometheus.MustNewConstMetric(m.verstatDesc, prometheus.CounterValue, float64(n), with(verstatLabels[v])...)
	}
}
