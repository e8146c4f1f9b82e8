package pipeline

import (
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stir"
	"github.com/sip-exporter/sip_exporter/collector"
)

// stirOf returns the STIR/SHAKEN view of an initial INVITE m: the
// attestation of its Identity header's PASSporT ([stir.Attestation]:
// invalid when it cannot be read) and the verstat of its
// P-Asserted-Identity, else From ([stir.Verstat]). It does not allocate.
func stirOf(m *sip.Message) collector.STIR {
	a := collector.AttestationNone
	switch level, err := stir.Attestation(m.Identity); {
	case err != nil:
		a = collector.AttestationInvalid
	case level != 0:
		a = collector.AttestationA + collector.Attestation(level-'A')
	}
	return collector.NewSTIR(a, collector.VerstatOf(stir.Verstat(m.PAssertedIdentity, m.From)))
}
