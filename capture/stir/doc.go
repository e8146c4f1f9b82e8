// Package stir reads the STIR/SHAKEN fields of a SIP INVITE that an
// exporter counts by, from header values the SIP scanner (capture/sip)
// exposes: the attestation level of the SHAKEN PASSporT in the Identity
// header ([Attestation]; RFC 8224 §4, RFC 8225, RFC 8588 §4) and the
// verification status a terminating verification service adds to the
// caller's URI ([Verstat]; ATIS-1000074 §5.3.1).
//
// It decodes, it never verifies: no signature is checked, no certificate
// fetched (the info parameter's URL and the x5u claim are not looked at),
// no key held. The claims are those the signer wrote, unauthenticated;
// verstat is what the verifier that marked the INVITE concluded.
//
// Both functions are for the per-packet path: they import only the
// standard library, allocate nothing and read a bounded number of bytes
// whatever the input ([MaxPayloadLen]; [MaxDepth] for JSON nesting).
// Errors are pre-allocated sentinels ([*Error]). The tests fuzz the
// decoder against encoding/json (FuzzAttestation).
package stir
