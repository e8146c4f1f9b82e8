//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The traffic of TestReportCookedVLANWorkers, for each of SLL and SLL2.
const (
	cookedTCPConns    = 96  // IPv4 TCP connections, one dialog each, every message in two segments
	cookedTCP6Conns   = 32  // the same over IPv6
	cookedFragDialogs = 96  // UDP dialogs whose INVITE is cut into IPv4 fragments
	cookedActive      = 24  // dialogs and connections interleaved at once
	cookedMTU         = 576 // the largest IPv4 packet written: an INVITE takes 4 to 6 fragments
)

// TestReportCookedVLANWorkers reads captures of a VLAN trunk taken with
// `tcpdump -i any` through `report --capture.workers` 1, 2 and 4: the
// whole sip_ exposition must be the same for every worker count and count
// what the generator wrote.
//
// On Linux, a VLAN tag that the NIC stripped (VLAN offload) is put back by
// libpcap from the packet's auxiliary data: in a LINKTYPE_LINUX_SLL frame
// at the protocol field, which then holds the TPID (0x8100, or 0x88a8),
// followed by the TCI and the original protocol; a tag that the kernel left
// in the frame (no offload, a bridge, a trunk seen on its parent device)
// is there the same way, in SLL2 frames too, whose protocol field comes
// first. Wireshark decodes such a frame as "Linux cooked capture, protocol
// 802.1Q Virtual LAN", then the tag, then IP. The captures hold every
// priority (PCP 0 to 7, the drop eligible bit on some), single tags and
// QinQ stacks (0x88a8, 0x9100 outside 0x8100):
//   - IPv4 and IPv6 TCP connections, one to a UA, each of one dialog of
//     TestLiveWorkersReplay's kinds (INVITE answered, busy, declined, or an
//     OPTIONS), every message cut into two segments at a random point,
//     the segments of several connections interleaved;
//   - UDP dialogs whose INVITE (a 1,500-byte SDP) is cut into IPv4
//     fragments of at most 576 bytes.
//
// The figures to meet are counted by the generator (fanoutGen's): requests
// by method, responses by code and method, and the session figures (INVITE
// attempts, outcomes, request delays, durations, no timeout).
//
// The frame's bytes after the SLL header begin with the TCI, whose first
// nibble is the priority and the drop eligible bit: 4 for priority 2, 6
// for priority 3. A flow hash that takes those bytes for an IPv4 or IPv6
// header hashes each packet of the flow differently (its checksum and
// sequence number in the hashed bytes), and the workers each see parts of
// TCP streams and fragmented datagrams.
func TestReportCookedVLANWorkers(t *testing.T) {
	for _, lt := range []layers.LinkType{layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2} {
		t.Run(lt.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "trunk.pcap")
			g := writeCookedCapture(t, path, lt)
			t.Logf("%s: %d frames, %d TCP segments carrying half a message, %d fragmented datagrams, %d INVITEs, %d responses",
				lt, g.frames, g.halves, g.fragmented, g.want.requests["INVITE"], sumOf(g.want.responses))
			var one string
			for _, workers := range []int{1, 2, 4} {
				var stdout, stderr bytes.Buffer
				args := []string{"report", "--format=prometheus", "--capture.workers=" + strconv.Itoa(workers), path}
				if code := run(args, &stdout, &stderr); code != 0 {
					t.Fatalf("%v: exit code %d, stderr: %s", args, code, stderr.String())
				}
				out := stdout.String()
				parser := expfmt.NewTextParser(model.UTF8Validation)
				mfs, err := parser.TextToMetricFamilies(bytes.NewReader(stdout.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				got := countsOfExposition(mfs)
				if table, ok := compareCounts(g.want, got); !ok {
					t.Errorf("--capture.workers=%d: SIP messages differ from what the test wrote:\n%s", workers, table)
				} else {
					t.Logf("--capture.workers=%d: %d INVITEs, %d responses, as written", workers, got.requests["INVITE"], sumOf(got.responses))
				}
				if table, ok := compareFigures([]string{"written", "report"}, []map[string]float64{g.fig, sessionFigures(mfs)}); !ok {
					t.Errorf("--capture.workers=%d: session figures differ from what the test wrote:\n%s", workers, table)
				}
				if workers == 1 {
					one = out
				} else if out != one {
					t.Errorf("--capture.workers=%d: exposition differs from one worker's:\n%s", workers, lineDiff(one, out))
				}
			}
		})
	}
}

// cookedGen writes the capture of TestReportCookedVLANWorkers: the
// dialogs, the counts and the IPv4 headers are fanoutGen's, the frames
// its own.
type cookedGen struct {
	*fanoutGen
	lt     layers.LinkType
	halves int // TCP segments written that carry part of a message
}

// vlanStack is the 802.1Q tags of one flow, outermost first: TPID and TCI.
type vlanStack [][2]uint16

// stackOf returns the tags of flow i: priority i%8, the drop eligible bit
// on every fifth flow, one tag or a QinQ stack.
func stackOf(i int) vlanStack {
	tci := uint16(i%8)<<13 | uint16(100+i%40)
	if i%5 == 4 {
		tci |= 1 << 12
	}
	switch i % 3 {
	case 1:
		return vlanStack{{0x88a8, uint16(7-i%8)<<13 | 20}, {0x8100, tci}}
	case 2:
		return vlanStack{{0x9100, uint16(i%8)<<13 | 30}, {0x8100, tci}}
	}
	return vlanStack{{0x8100, tci}}
}

// writeCookedCapture writes the capture of link type lt to path.
func writeCookedCapture(t *testing.T, path string, lt layers.LinkType) *cookedGen {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	g := &cookedGen{lt: lt, fanoutGen: &fanoutGen{w: pcapgo.NewWriterNanos(bw), t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
		rng: rand.New(rand.NewPCG(18, 6)), want: newSIPCounts(), fig: sessionFigures(nil)}}
	if err := g.w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	server4 := netip.MustParseAddrPort("10.90.0.1:5060")
	server6 := netip.MustParseAddrPort("[2001:db8:90::1]:5060")
	var programs [][]step
	flow := 0
	for i := range cookedTCPConns {
		ua := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 91, byte(i / 200), byte(1 + i%200)}), uint16(40000+i))
		programs = append(programs, g.tcpDialog(ua, server4, stackOf(flow), "t"+strconv.Itoa(i), i%10))
		flow++
	}
	for i := range cookedTCP6Conns {
		ua := netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8:91::%x", i+1)), uint16(41000+i))
		programs = append(programs, g.tcpDialog(ua, server6, stackOf(flow), "s"+strconv.Itoa(i), i%10))
		flow++
	}
	for i := range cookedFragDialogs {
		ua := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 92, byte(i / 200), byte(1 + i%200)}), 5060)
		programs = append(programs, g.udpDialog(ua, server4, stackOf(flow), "u"+strconv.Itoa(i), i%9))
		flow++
	}
	g.rng.Shuffle(len(programs), func(i, j int) { programs[i], programs[j] = programs[j], programs[i] })
	var active [][]step
	next := 0
	for len(active) > 0 || next < len(programs) {
		for len(active) < cookedActive && next < len(programs) {
			active = append(active, programs[next])
			next++
		}
		i := g.rng.IntN(len(active))
		active[i][0]()
		if active[i] = active[i][1:]; len(active[i]) == 0 {
			active[i] = active[len(active)-1]
			active = active[:len(active)-1]
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return g
}

// tcpDialog returns the steps of a TCP connection from ua to server with
// tags tags: the handshake, one dialog of kind k (see dialogTurns) whose
// every message is sent in two segments cut at a random point, each
// segment a step of its own, and FIN from both ends.
func (g *cookedGen) tcpDialog(ua, server netip.AddrPort, tags vlanStack, id string, k int) []step {
	seq := [2]uint32{g.rng.Uint32(), g.rng.Uint32()} // next sequence number: from ua, from server
	ends := [2]netip.AddrPort{ua, server}
	seg := func(from int, flags uint8, payload []byte) {
		g.tcp(tags, ends[from], ends[1-from], seq[from], seq[1-from], flags, payload)
		seq[from] += uint32(len(payload))
		if flags&(tcpFlagSYN|tcpFlagFIN) != 0 {
			seq[from]++
		}
	}
	steps := []step{func() {
		seg(0, tcpFlagSYN, nil)
		seg(1, tcpFlagSYN|tcpFlagACK, nil)
		seg(0, tcpFlagACK, nil)
	}}
	d := &fanDialog{uac: ua, uas: server, id: id, transport: "TCP"}
	for _, tn := range g.dialogTurns(d, k, 0) {
		from := 0
		if tn.fromUAS {
			from = 1
		}
		for _, m := range tn.msgs {
			cut := 1 + g.rng.IntN(len(m)-1)
			steps = append(steps,
				func() { seg(from, tcpFlagACK, m[:cut]); g.halves++ },
				func() { seg(from, tcpFlagACK|tcpFlagPSH, m[cut:]); g.halves++ })
		}
	}
	return append(steps, func() {
		seg(0, tcpFlagFIN|tcpFlagACK, nil)
		seg(1, tcpFlagFIN|tcpFlagACK, nil)
		seg(0, tcpFlagACK, nil)
	})
}

// udpDialog returns the steps of a UDP dialog of kind k (see dialogTurns)
// between ua and server with tags tags, a datagram per message, the
// INVITE (an SDP of 1,500 bytes) cut into fragments.
func (g *cookedGen) udpDialog(ua, server netip.AddrPort, tags vlanStack, id string, k int) []step {
	d := &fanDialog{uac: ua, uas: server, id: id, transport: "UDP"}
	var steps []step
	for _, tn := range g.dialogTurns(d, k, 1500) {
		src, dst := ua, server
		if tn.fromUAS {
			src, dst = dst, src
		}
		steps = append(steps, func() {
			for _, m := range tn.msgs {
				g.udp(tags, src, dst, m)
			}
		})
	}
	return steps
}

// ip returns the IPv4 (fanoutGen's) or IPv6 header of the next packet.
func (g *cookedGen) ip(src, dst netip.Addr, proto layers.IPProtocol) gopacket.NetworkLayer {
	if src.Is6() {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	return g.ipv4(src, dst, proto)
}

// tcp writes a segment.
func (g *cookedGen) tcp(tags vlanStack, src, dst netip.AddrPort, seq, ack uint32, flags uint8, payload []byte) {
	ip := g.ip(src.Addr(), dst.Addr(), layers.IPProtocolTCP)
	s := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, Ack: ack, Window: 65535,
		FIN: flags&tcpFlagFIN != 0, SYN: flags&tcpFlagSYN != 0, PSH: flags&tcpFlagPSH != 0, ACK: flags&tcpFlagACK != 0}
	_ = s.SetNetworkLayerForChecksum(ip)
	g.frame(tags, ip.(gopacket.SerializableLayer), s, gopacket.Payload(payload))
}

// udp writes an IPv4 datagram, cut into fragments of at most cookedMTU
// bytes when it does not fit one.
func (g *cookedGen) udp(tags vlanStack, src, dst netip.AddrPort, payload []byte) {
	ip := g.ipv4(src.Addr(), dst.Addr(), layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	_ = u.SetNetworkLayerForChecksum(ip)
	if 20+8+len(payload) <= cookedMTU {
		g.frame(tags, ip, u, gopacket.Payload(payload))
		return
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, u, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	dgram := buf.Bytes()
	const size = (cookedMTU - 20) &^ 7
	for off := 0; off < len(dgram); off += size {
		end := min(off+size, len(dgram))
		frag := *ip
		frag.FragOffset = uint16(off / 8)
		if end < len(dgram) {
			frag.Flags = layers.IPv4MoreFragments
		}
		g.frame(tags, &frag, gopacket.Payload(dgram[off:end]))
	}
	g.fragmented++
}

// frame writes the IP packet of the layers behind a Linux cooked header
// (SLL or SLL2: protocol the first tag's TPID) and the tags, each tag's
// TCI followed by the next one's TPID or the IP ethertype, as libpcap
// writes a tag it puts back; 50 µs after the previous frame.
func (g *cookedGen) frame(tags vlanStack, ls ...gopacket.SerializableLayer) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(err)
	}
	ip := buf.Bytes()
	etype := uint16(0x0800)
	if ip[0]>>4 == 6 {
		etype = 0x86dd
	}
	var b []byte
	mac := []byte{2, 0, 0, 0x18, 0, 6, 0, 0} // 6 bytes of address, 2 of padding
	if g.lt == layers.LinkTypeLinuxSLL2 {
		b = binary.BigEndian.AppendUint16(b, tags[0][0]) // protocol
		b = append(b, 0, 0)                              // reserved
		b = binary.BigEndian.AppendUint32(b, 3)          // interface index
		b = binary.BigEndian.AppendUint16(b, 1)          // ARPHRD_ETHER
		b = append(b, 0, 6)                              // packet type (to us), address length
		b = append(b, mac...)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0) // packet type: to us
		b = binary.BigEndian.AppendUint16(b, 1) // ARPHRD_ETHER
		b = binary.BigEndian.AppendUint16(b, 6) // address length
		b = append(b, mac...)
		b = binary.BigEndian.AppendUint16(b, tags[0][0]) // protocol
	}
	for i, tag := range tags {
		next := etype
		if i+1 < len(tags) {
			next = tags[i+1][0]
		}
		b = binary.BigEndian.AppendUint16(b, tag[1])
		b = binary.BigEndian.AppendUint16(b, next)
	}
	b = append(b, ip...)
	g.t = g.t.Add(50 * time.Microsecond)
	if err := g.w.WritePacket(gopacket.CaptureInfo{Timestamp: g.t, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		panic(err)
	}
	g.frames++
	g.bytes += len(b)
}
