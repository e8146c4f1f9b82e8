// Package hep decodes HEP, the Homer Encapsulation Protocol (also called
// EEP, Extensible Encapsulation Protocol), with which SIP servers and
// capture agents (Kamailio siptrace, OpenSIPS proto_hep, FreeSWITCH,
// Asterisk, rtpengine, heplify, captagent) mirror the packets they see to a
// collector. sip_exporter acts as such a collector to count SIP traffic.
//
// Three wire formats are understood:
//
//   - HEPv3, as specified in the "HEP3 Network Protocol Specification"
//     (github.com/sipcapture/HEP): the magic "HEP3" (or "EEP3"), a 16-bit
//     total length, then chunks of vendor ID, type ID and length. The
//     generic chunks (vendor 0x0000) 0x0001 to 0x0013 are decoded into a
//     [Packet]; vendor chunks and unknown types are skipped. A compressed
//     payload (chunk 0x0010, zlib or gzip) is inflated up to a limit.
//   - HEPv2 and HEPv1, the older binary headers that Kamailio, OpenSIPS and
//     captagent still send over UDP: an 8-byte header, the two addresses,
//     for v2 a 12-byte time header, and the payload to the end of the
//     datagram. There is no magic, so v1/v2 are recognised by their first
//     byte and header length.
//
// [Decoder.Decode] decodes one packet into a caller-owned [Packet] whose
// byte slices alias the input; it allocates nothing unless the payload is
// compressed. [PacketLength] frames HEPv3 on stream transports, [IsHEP]
// recognises HEP inside captured payloads, and [AppendV3] and [AppendV2]
// encode packets for tests and traffic tools.
//
// Errors are the pre-allocated [*Error] sentinels; their Reason is a
// snake_case word suitable as a metric label, and [ErrorReasons] lists the
// ones Decode can return.
//
// The package imports only the standard library. Its tests decode the
// example packet of the HEP3 specification and packets laid out as
// Kamailio and heplify send them, assert zero allocations, round-trip the
// encoders and fuzz the decoder.
package hep
