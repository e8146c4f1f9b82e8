package decode

import (
	"encoding/binary"

	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// SCTP chunk types carrying user data.
const (
	sctpData  = 0  // DATA (RFC 9260 §3.3.1)
	sctpIData = 64 // I-DATA (RFC 8260 §2.1)
)

// SCTP DATA and I-DATA chunk flags: beginning and end of a user message.
const (
	sctpBegin = 0x02
	sctpEnd   = 0x01
)

// sctp decodes an SCTP packet (RFC 9260 §3: a 12-byte common header, then
// chunks padded to 4 bytes) between the addresses of key. SIP over SCTP
// (RFC 4168) puts one SIP message in each user message: every DATA or
// I-DATA chunk of the packet that holds a whole user message (B and E set)
// is handed on as a datagram, whatever its payload protocol identifier (0
// or 39 are both seen), SIP being found by content as for UDP.
//
// Not done: user messages split across several chunks (B and E not both
// set) are not reassembled and are counted as SkipSCTPFragment; chunks
// retransmitted by SCTP are decoded again (there is no association
// state); the CRC32c checksum is not verified (capture before checksum
// offload). A packet with no DATA or I-DATA chunk at all (INIT, SACK,
// HEARTBEAT, ...) is counted as SkipSCTPControl; a chunk whose length
// runs past the packet as ErrSCTPHeader, after the chunks before it were
// decoded.
func (d *Decoder) sctp(key *stream.Key, data []byte) {
	if len(data) < 12 {
		d.stats.parseError(ErrSCTPHeader)
		return
	}
	d.setAddrs(key, binary.BigEndian.Uint16(data[0:]), binary.BigEndian.Uint16(data[2:]))
	data = data[12:]
	user := false
	for len(data) > 0 {
		if len(data) < 4 {
			d.stats.parseError(ErrSCTPHeader)
			return
		}
		typ, flags, n := data[0], data[1], int(binary.BigEndian.Uint16(data[2:]))
		if n < 4 || n > len(data) {
			d.stats.parseError(ErrSCTPHeader)
			return
		}
		chunk := data[:n]
		data = data[min((n+3)&^3, len(data)):]
		hl := 0
		switch typ {
		case sctpData: // TSN, stream identifier, stream sequence number, PPID
			hl = 16
		case sctpIData: // TSN, stream identifier, reserved, MID, PPID or FSN
			hl = 20
		default:
			continue
		}
		if n < hl {
			d.stats.parseError(ErrSCTPHeader)
			return
		}
		user = true
		if flags&(sctpBegin|sctpEnd) != sctpBegin|sctpEnd {
			d.stats.skip(SkipSCTPFragment)
			continue
		}
		d.Datagram(chunk[hl:])
	}
	if !user {
		d.stats.skip(SkipSCTPControl)
	}
}
