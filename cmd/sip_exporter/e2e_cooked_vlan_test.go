//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The traffic of TestReportCookedVLANWorkers.
const (
	cookedTCPConns    = 128 // TCP connections, one dialog each, every message in two segments
	cookedFragDialogs = 96  // UDP dialogs whose INVITE is cut into IPv4 fragments
	cookedActive      = 24  // dialogs and connections interleaved at once
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
// 802.1Q Virtual LAN", then the tag, then IP. The captures (the same
// traffic as SLL and as SLL2) hold every priority (PCP 0 to 7, the drop
// eligible bit on some flows), single tags and QinQ stacks (0x88a8, 0x9100
// outside 0x8100), a stack of its own for each UA:
//   - TCP connections, one to a UA, each of one dialog of
//     TestLiveWorkersReplay's kinds (INVITE answered, busy, declined, or an
//     OPTIONS), every message cut into two segments at a random point, the
//     segments of several connections interleaved;
//   - UDP dialogs whose INVITE (a 3,000-byte SDP) is cut into 3 IPv4
//     fragments.
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
	g, eth := writeTrunkTraffic(t)
	t.Logf("%d frames, %d TCP segments carrying half a message, %d fragmented datagrams, %d INVITEs, %d responses",
		g.frames, g.halves, g.fragmented, g.want.requests["INVITE"], sumOf(g.want.responses))
	for _, lt := range []layers.LinkType{layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2} {
		t.Run(lt.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "trunk.pcap")
			g.cook(t, eth, path, lt)
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

// cookedGen writes the traffic of TestReportCookedVLANWorkers as
// fanoutGen does (dialogs, counts, Ethernet frames), then cooks it.
type cookedGen struct {
	*fanoutGen
	halves int                      // TCP segments written that carry part of a message
	tags   map[netip.Addr]vlanStack // the tags of each UA's packets
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

// writeTrunkTraffic writes the traffic as an Ethernet capture, without
// tags, and returns it with its generator.
func writeTrunkTraffic(t *testing.T) (*cookedGen, []byte) {
	t.Helper()
	var eth bytes.Buffer
	g := &cookedGen{tags: map[netip.Addr]vlanStack{}, fanoutGen: &fanoutGen{w: pcapgo.NewWriterNanos(&eth),
		t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC), rng: rand.New(rand.NewPCG(18, 6)), want: newSIPCounts(), fig: sessionFigures(nil)}}
	if err := g.w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	server := netip.MustParseAddrPort("10.90.0.1:5060")
	var programs [][]step
	for i := range cookedTCPConns {
		ua := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 91, byte(i / 200), byte(1 + i%200)}), uint16(40000+i))
		g.tags[ua.Addr()] = stackOf(i)
		programs = append(programs, g.tcpDialog(ua, server, "t"+strconv.Itoa(i), i%10))
	}
	for i := range cookedFragDialogs {
		ua := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 92, byte(i / 200), byte(1 + i%200)}), 5060)
		g.tags[ua.Addr()] = stackOf(cookedTCPConns + i)
		programs = append(programs, g.udpDialog(&fanDialog{uac: ua, uas: server, id: "u" + strconv.Itoa(i)}, i%9, 3000))
	}
	interleave(g.rng, programs, cookedActive)
	return g, eth.Bytes()
}

// interleave shuffles programs and runs them, window at a time, each step
// taken from one of the window at random, a program's steps in order.
func interleave(rng *rand.Rand, programs [][]step, window int) {
	rng.Shuffle(len(programs), func(i, j int) { programs[i], programs[j] = programs[j], programs[i] })
	var active [][]step
	next := 0
	for len(active) > 0 || next < len(programs) {
		for len(active) < window && next < len(programs) {
			active = append(active, programs[next])
			next++
		}
		i := rng.IntN(len(active))
		active[i][0]()
		if active[i] = active[i][1:]; len(active[i]) == 0 {
			active[i] = active[len(active)-1]
			active = active[:len(active)-1]
		}
	}
}

// tcpDialog returns the steps of a TCP connection from ua to server: the
// handshake, one dialog of kind k (see dialogTurns) whose every message is
// sent in two segments cut at a random point, each segment a step of its
// own, and FIN from both ends.
func (g *cookedGen) tcpDialog(ua, server netip.AddrPort, id string, k int) []step {
	seq := [2]uint32{g.rng.Uint32(), g.rng.Uint32()} // next sequence number: from ua, from server
	ends := [2]netip.AddrPort{ua, server}
	seg := func(from int, flags uint8, payload []byte) {
		g.tcp(ends[from], ends[1-from], seq[from], seq[1-from], flags, payload)
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

// cook writes the Ethernet capture eth to path as link type lt (SLL or
// SLL2): each frame's IP packet behind a Linux cooked header and the tags
// of its UA, each tag's TCI followed by the next one's TPID or the IP
// ethertype, as libpcap writes a tag it puts back; the cooked protocol
// field holds the first tag's TPID.
func (g *cookedGen) cook(t *testing.T, eth []byte, path string, lt layers.LinkType) {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(eth))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	mac := []byte{2, 0, 0, 0x77, 0, 1, 0, 0} // 6 bytes of address, 2 of padding
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		ip := data[14:]
		tags, ok := g.tags[netip.AddrFrom4([4]byte(ip[12:16]))]
		if !ok {
			tags = g.tags[netip.AddrFrom4([4]byte(ip[16:20]))]
		}
		var b []byte
		if lt == layers.LinkTypeLinuxSLL2 {
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
			next := binary.BigEndian.Uint16(data[12:]) // the IP ethertype
			if i+1 < len(tags) {
				next = tags[i+1][0]
			}
			b = binary.BigEndian.AppendUint16(b, tag[1])
			b = binary.BigEndian.AppendUint16(b, next)
		}
		b = append(b, ip...)
		ci.CaptureLength, ci.Length = len(b), len(b)
		if err := w.WritePacket(ci, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
