package stir_test

import (
	"fmt"

	"github.com/sip-exporter/sip_exporter/capture/stir"
)

// The Identity header of a SHAKEN-signed INVITE (RFC 8224 §4, RFC 8588):
// its PASSporT's payload says attest "A"; the verification service of the
// terminating carrier marked the P-Asserted-Identity (ATIS-1000074).
func Example() {
	identity := []byte("eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3Bhc3Nwb3J0LmNlciJ9." +
		"eyJhdHRlc3QiOiJBIiwiZGVzdCI6eyJ0biI6WyIxMjE1NTU1MDEyMyJdfSwiaWF0IjoxNDQzMjA4MzQ1LCJvcmlnIjp7InRuIjoiMTIxNTU1NTAxOTkifSwib3JpZ2lkIjoiMTIzZTQ1NjctZTg5Yi0xMmQzLWE0NTYtNDI2NjU1NDQwMDAwIn0." +
		"MEUCIQCEFJXkDV1h9tGSwVfFmvM7HzEVVaVTpOSqwC2fTMThZAIgSBLaoSpV-vkv9TWSUEbKw1fOGMYrT1ArLsjLpHuDHgQ" +
		";info=<https://cert.example.org/passport.cer>;alg=ES256;ppt=shaken")
	pai := []byte(`<sip:+12155550199;verstat=TN-Validation-Passed@atlanta.example.com;user=phone>`)
	from := []byte(`"Alice" <sip:+12155550199@atlanta.example.com;user=phone>;tag=1928301774`)

	level, err := stir.Attestation(identity)
	fmt.Printf("attest %c, err %v\n", level, err)
	fmt.Printf("verstat %s\n", stir.Verstat(pai, from))

	_, err = stir.Attestation([]byte("bm90IGpzb24.bm90IGpzb24.c2ln;ppt=shaken"))
	fmt.Println(err)
	// Output:
	// attest A, err <nil>
	// verstat TN-Validation-Passed
	// stir: passport payload is not a json object
}

// An INVITE without an Identity header: no level and no error.
func ExampleAttestation_absent() {
	level, err := stir.Attestation(nil)
	fmt.Println(level, err)
	// Output: 0 <nil>
}
