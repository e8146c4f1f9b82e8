package input

import (
	"fmt"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture/hep"
)

// MediaFilter returns the default kernel filter of a live capture on an
// interface of link type lt (Ethernet, which loopback is too, or raw IP
// for tun, WireGuard and IP tunnel devices): a classic BPF program that
// drops, by content, UDP datagrams that cannot start a SIP message or a
// HEP packet, so that media (RTP, RTCP, SRTP, STUN, DTLS) never reaches
// user space. It passes everything else:
//
//   - anything that is not IPv4 or IPv6 after at most two 802.1Q/802.1ad
//     tags (MPLS, PPPoE, ARP, deeper VLAN stacks): it cannot see into it;
//   - IP protocols other than UDP: TCP (SIP, WebSocket, HEP streams), SCTP,
//     GRE and ERSPAN, IP-in-IP, and the rest;
//   - IPv4 fragments (MF set or a non-zero offset: fragments after the
//     first have no UDP header) and IPv6 packets whose next header is not
//     UDP (extension headers, fragment headers);
//   - UDP from or to the VXLAN (4789, 8472) and Geneve (6081) ports;
//   - UDP whose payload starts with a byte from '!' to '~' followed by
//     bytes from '!' to '~' up to a space or for three bytes (a method
//     token, "SIP/2.0 ", "HEP3", "EEP3"; RFC 3261 §25.1), with CR or LF
//     (keep-alives, RFC 5626 §3.5.1), or with a HEPv1/v2 header.
//
// The rest of UDP is dropped: first byte 0x7f and above (RTP, RTCP, SRTP
// and SRTCP are 0x80 to 0xbf, version 2; RFC 3550 §5.1, RFC 7983 §7),
// below '!' (STUN 0 to 3, ZRTP 16 to 19, DTLS 20 to 32 of RFC 7983's 20
// to 63, empty payloads and padding), and printable starts that do not go
// on as a token (mostly: the rest of DTLS, 33 to 63, where DTLS 1.3
// unified headers fall, and TURN channel data, 64 to 79). Every packet that [decode.Decoder] turns into a SIP
// message, or a fragment or segment of one, passes: a UDP payload that
// sip.IsStart accepts begins with "SIP/2.0 " or with a method token
// (printable) ended by a space.
//
// A packet that does not hold the bytes the program loads (a runt, or a
// UDP payload shorter than four bytes that starts like a token) is
// dropped, as the kernel does. It returns an error for other link types.
func MediaFilter(lt layers.LinkType) ([]bpf.RawInstruction, error) {
	a := newAssembler()
	switch lt {
	case layers.LinkTypeEthernet:
		a.ethernet()
	case layers.LinkTypeRaw:
		a.ipVersion(0)
	default:
		return nil, fmt.Errorf("media filter: link type %s is not filtered (Ethernet and raw IP are)", lt)
	}
	a.udp()
	a.mark(lAccept)
	a.emit(bpf.RetConstant{Val: acceptBytes})
	a.mark(lDrop)
	a.emit(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// acceptBytes is the snap length a passing packet is kept with, tcpdump's:
// more than any packet.
const acceptBytes = 1 << 18

// vlanTags is how many 802.1Q/802.1ad tags the filter looks past. On
// receive the kernel takes the outer tag out of the frame (it is put back
// for user space, with OptAddVLANHeader), so the filter sees one tag
// fewer than the decoder.
const vlanTags = 2

// UDP ports of the tunnels that decode recognises by port.
const (
	portVXLAN      = 4789
	portVXLANLinux = 8472
	portGeneve     = 6081
)

// ethernet emits the Ethernet header and its VLAN tags, then the IPv4 and
// IPv6 headers at each possible offset.
func (a *assembler) ethernet() {
	for tags := 0; tags <= vlanTags; tags++ {
		l := uint32(14 + 4*tags)
		a.mark(label{"ethertype", l})
		a.emit(bpf.LoadAbsolute{Off: l - 2, Size: 2})
		a.jumpIf(bpf.JumpEqual, 0x0800, label{"ipv4", l}, lNext)
		a.jumpIf(bpf.JumpEqual, 0x86dd, label{"ipv6", l}, lNext)
		if tags == vlanTags {
			a.jump(lAccept)
			break
		}
		a.jumpIf(bpf.JumpEqual, 0x8100, label{"ethertype", l + 4}, lNext)
		a.jumpIf(bpf.JumpEqual, 0x88a8, label{"ethertype", l + 4}, lNext)
		a.jumpIf(bpf.JumpEqual, 0x9100, label{"ethertype", l + 4}, lAccept)
	}
	for tags := 0; tags <= vlanTags; tags++ {
		l := uint32(14 + 4*tags)
		a.ipv4(l)
		a.ipv6(l)
	}
}

// ipVersion emits the dispatch on the IP version nibble at offset l (raw
// IP link types), then the IPv4 and IPv6 headers.
func (a *assembler) ipVersion(l uint32) {
	a.emit(bpf.LoadAbsolute{Off: l, Size: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0})
	a.jumpIf(bpf.JumpEqual, 0x40, label{"ipv4", l}, lNext)
	a.jumpIf(bpf.JumpEqual, 0x60, label{"ipv6", l}, lAccept)
	a.ipv4(l)
	a.ipv6(l)
}

// ipv4 emits the IPv4 header at offset l (RFC 791): UDP that is not a
// fragment goes on to the UDP check with X at the UDP header.
func (a *assembler) ipv4(l uint32) {
	a.mark(label{"ipv4", l})
	a.emit(bpf.LoadAbsolute{Off: l + 9, Size: 1})
	a.jumpIf(bpf.JumpEqual, 17, lNext, lAccept)
	a.emit(bpf.LoadAbsolute{Off: l + 6, Size: 2})
	a.jumpIf(bpf.JumpBitsSet, 0x3fff, lAccept, lNext) // MF or offset
	a.emit(bpf.LoadMemShift{Off: l})                  // X = 4 * IHL
	if l != 0 {
		a.emit(bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: l}, bpf.TAX{})
	}
	a.jump(lUDP)
}

// ipv6 emits the IPv6 header at offset l (RFC 8200): a UDP next header
// goes on to the UDP check with X at the UDP header; extension headers,
// fragments among them, pass.
func (a *assembler) ipv6(l uint32) {
	a.mark(label{"ipv6", l})
	a.emit(bpf.LoadAbsolute{Off: l + 6, Size: 1})
	a.jumpIf(bpf.JumpEqual, 17, lNext, lAccept)
	a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: l + 40})
	a.jump(lUDP)
}

// udp emits the check of a UDP datagram whose header is at X.
func (a *assembler) udp() {
	first := bpf.LoadIndirect{Off: 8, Size: 1}
	a.mark(lUDP)
	a.emit(first)
	a.jumpIf(bpf.JumpGreaterOrEqual, 0x7f, lDrop, lNext) // RTP, RTCP, SRTP: the fast path
	for _, off := range []uint32{0, 2} {                 // source, destination port
		a.emit(bpf.LoadIndirect{Off: off, Size: 2})
		a.jumpIf(bpf.JumpEqual, portVXLAN, lAccept, lNext)
		a.jumpIf(bpf.JumpEqual, portVXLANLinux, lAccept, lNext)
		a.jumpIf(bpf.JumpEqual, portGeneve, lAccept, lNext)
	}
	a.emit(first)
	a.jumpIf(bpf.JumpGreaterOrEqual, '!', label{"token", 1}, lNext)
	a.jumpIf(bpf.JumpEqual, '\r', lAccept, lNext)
	a.jumpIf(bpf.JumpEqual, '\n', lAccept, lNext)
	a.jumpIf(bpf.JumpEqual, 1, lHEP, lNext)
	a.jumpIf(bpf.JumpEqual, 2, lHEP, lDrop)
	// A token goes on up to a space; look at three more bytes.
	for i := uint32(1); i <= 3; i++ {
		a.mark(label{"token", i})
		a.emit(bpf.LoadIndirect{Off: 8 + i, Size: 1})
		a.jumpIf(bpf.JumpEqual, ' ', lAccept, lNext)
		a.jumpIf(bpf.JumpGreaterThan, '~', lDrop, lNext)
		a.jumpIf(bpf.JumpGreaterOrEqual, '!', lNext, lDrop)
	}
	a.jump(lAccept)
	// HEPv1/v2: header length and address family (hep.IsHEP).
	a.mark(lHEP)
	a.emit(bpf.LoadIndirect{Off: 9, Size: 2})
	a.jumpIf(bpf.JumpEqual, 16<<8|uint32(hep.FamilyIPv4), lAccept, lNext)
	a.jumpIf(bpf.JumpEqual, 40<<8|uint32(hep.FamilyIPv6), lAccept, lDrop)
}

// label names a place in the program: a name and an offset.
type label struct {
	name string
	off  uint32
}

var (
	lNext   = label{} // the next instruction
	lAccept = label{"accept", 0}
	lDrop   = label{"drop", 0}
	lUDP    = label{"udp", 0}
	lHEP    = label{"hep", 0}
)

// assembler builds a classic BPF program with forward jumps to labels.
type assembler struct {
	ins     []bpf.Instruction
	targets map[int][2]label // jump instruction index: true and false (or only) target
	at      map[label]int
}

func newAssembler() *assembler {
	return &assembler{targets: map[int][2]label{}, at: map[label]int{}}
}

func (a *assembler) emit(ins ...bpf.Instruction) { a.ins = append(a.ins, ins...) }

func (a *assembler) mark(l label) { a.at[l] = len(a.ins) }

// jumpIf emits a conditional jump to t when A cond val holds, to f if not.
func (a *assembler) jumpIf(cond bpf.JumpTest, val uint32, t, f label) {
	a.targets[len(a.ins)] = [2]label{t, f}
	a.emit(bpf.JumpIf{Cond: cond, Val: val})
}

// jump emits an unconditional jump to l.
func (a *assembler) jump(l label) {
	a.targets[len(a.ins)] = [2]label{l}
	a.emit(bpf.Jump{})
}

// assemble resolves the jumps, which go forward only, and assembles.
func (a *assembler) assemble() ([]bpf.RawInstruction, error) {
	skip := func(i int, l label) (uint32, error) {
		if l == lNext {
			return 0, nil
		}
		to, ok := a.at[l]
		if !ok || to <= i {
			return 0, fmt.Errorf("media filter: jump from %d to %v, not a later label", i, l)
		}
		return uint32(to - i - 1), nil
	}
	for i, t := range a.targets {
		switch ins := a.ins[i].(type) {
		case bpf.JumpIf:
			st, err := skip(i, t[0])
			if err != nil {
				return nil, err
			}
			sf, err := skip(i, t[1])
			if err != nil {
				return nil, err
			}
			if st > 255 || sf > 255 {
				return nil, fmt.Errorf("media filter: conditional jump from %d is %d or %d long", i, st, sf)
			}
			ins.SkipTrue, ins.SkipFalse = uint8(st), uint8(sf)
			a.ins[i] = ins
		case bpf.Jump:
			s, err := skip(i, t[0])
			if err != nil {
				return nil, err
			}
			ins.Skip = s
			a.ins[i] = ins
		}
	}
	return bpf.Assemble(a.ins)
}
