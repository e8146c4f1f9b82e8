// Package sipstatus is the SIP response-code registry: status code to
// canonical reason phrase, class and defining reference, in the manner of
// net/http's status.go.
//
// The table holds every code of the IANA "Session Initiation Protocol (SIP)
// Parameters — Response Codes" registry plus the two RFC 2543 codes that RFC
// 3261 removed but that still circulate on the wire (409 Conflict and 411
// Length Required). Metric label values for the reason and class come from
// here, never from the wire: the reason phrase a peer sends is free text
// (RFC 3261 §21: "the reason phrase is intended for the human user"), and
// using it as a label would make series identity depend on the peer's
// software.
//
// Reason texts are part of series identity: changing one is a breaking
// change and goes in the changelog. Some tables in circulation misname codes;
// this one follows the registry: 181 is "Call Is Being Forwarded", 183
// "Session Progress", 380 "Alternative Service", 504 "Server Time-out".
package sipstatus
