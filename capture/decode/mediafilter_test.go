package decode_test

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/input"
)

// The tests here run input.MediaFilter in x/net/bpf's virtual machine, which
// behaves as the kernel's classic BPF for the instructions it uses (a load
// past the end of the packet drops it). They sit beside the decoder so that
// "SIP" means what the decoder finds.

// mediaFilter runs the media filter of every link type a live capture has.
type mediaFilter map[layers.LinkType]*bpf.VM

func newMediaFilter(tb testing.TB) mediaFilter {
	tb.Helper()
	f := mediaFilter{}
	for _, lt := range []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw} {
		raw, err := input.MediaFilter(lt)
		if err != nil {
			tb.Fatal(err)
		}
		ins, ok := bpf.Disassemble(raw)
		if !ok {
			tb.Fatalf("%s: media filter does not disassemble", lt)
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			tb.Fatalf("%s: %v", lt, err)
		}
		f[lt] = vm
	}
	return f
}

// passes reports whether the filter keeps a frame of link type lt, after
// turning it into what AF_PACKET hands over: an Ethernet frame, or a raw IP
// packet. SLL headers become Ethernet, null/loopback ones go.
func (f mediaFilter) passes(tb testing.TB, lt layers.LinkType, data []byte) bool {
	tb.Helper()
	switch lt {
	case layers.LinkTypeEthernet:
	case layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2:
		at, hl := 14, 16
		if lt == layers.LinkTypeLinuxSLL2 {
			at, hl = 0, 20
		}
		if len(data) < hl {
			return false
		}
		data = append(append(make([]byte, 12, 14+len(data)), data[at:at+2]...), data[hl:]...)
		lt = layers.LinkTypeEthernet
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(data) < 4 {
			return false
		}
		data, lt = data[4:], layers.LinkTypeRaw
	default:
		lt = layers.LinkTypeRaw
	}
	n, err := f[lt].Run(data)
	if err != nil {
		tb.Fatalf("filter: %v", err)
	}
	return n > 0
}

// filterCheck decodes frames twice, all of them and only those the filter
// passes, and fails the test unless both give the same messages and
// counters (apart from skips of non-SIP datagrams, which the filter
// saves), and unless every dropped frame, decoded alone, gives no message.
// It returns how many frames passed and how many were dropped.
func filterCheck(t *testing.T, f mediaFilter, frames []packet) (passed, dropped int) {
	t.Helper()
	all, allSt, allRec := newDecoder(t, nil)
	kept, keptSt, keptRec := newDecoder(t, nil)
	for _, p := range frames {
		feed(all, p)
		if f.passes(t, p.lt, p.data) {
			passed++
			feed(kept, p)
			continue
		}
		dropped++
		alone, st, rec := newDecoder(t, nil)
		feed(alone, p)
		if len(rec.msgs) != 0 || st.Requests.Load()+st.Responses.Load() != 0 {
			t.Errorf("dropped frame %x... decodes to %v", p.data[:min(len(p.data), 64)], rec.msgs)
		}
	}
	if !sameMsgs(allRec.msgs, keptRec.msgs) {
		t.Errorf("messages through the filter:\n got %v\nwant %v", keptRec.msgs, allRec.msgs)
	}
	a, k := counts(allSt), counts(keptSt)
	for _, m := range []map[string]uint64{a, k} {
		for _, r := range []string{"skip/not_sip", "skip/ip_protocol", "skip/keepalive"} {
			delete(m, r)
		}
	}
	if !sameCounts(a, k) {
		t.Errorf("counters through the filter: %v, want %v", k, a)
	}
	return passed, dropped
}

// TestMediaFilterCorpus: over every packet of the shared corpus, the media
// filter passes every packet the decoder needs; the dropped ones are media.
func TestMediaFilterCorpus(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/corpus/*.expected.tsv")
	if len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no corpus at ../../../shared/corpus")
		}
		t.Skip("no corpus at ../../../shared/corpus (shared/ is not beside the repository)")
	}
	f := newMediaFilter(t)
	var passed, dropped, media int
	for _, exp := range files {
		path := strings.TrimSuffix(exp, ".expected.tsv")
		frames, _ := readFrames(t, path)
		t.Run(filepath.Base(path), func(t *testing.T) {
			if len(frames) == 0 {
				t.Skip("not pcap or pcapng")
			}
			p, d := filterCheck(t, f, frames)
			for _, fr := range frames {
				if b, ok := udpPayload(fr); ok && len(b) > 0 && b[0]&0xc0 == 0x80 && !f.passes(t, fr.lt, fr.data) {
					media++
				}
			}
			passed += p
			dropped += d
			if d > 0 {
				t.Logf("%d frames passed, %d dropped", p, d)
			}
		})
	}
	t.Logf("corpus: %d frames passed, %d dropped (%d of them RTP/RTCP/SRTP, version 2)", passed, dropped, media)
	if media == 0 {
		t.Error("no RTP dropped in the corpus: sipnab__h263-over-rtp.pcap has some")
	}
}

// udpPayload returns the UDP payload of an unfragmented IPv4 or IPv6
// packet of a corpus frame, for the statistics of the test.
func udpPayload(p packet) ([]byte, bool) {
	d := p.data
	switch p.lt {
	case layers.LinkTypeEthernet:
		if len(d) < 14 {
			return nil, false
		}
		d = d[14:]
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(d) < 4 {
			return nil, false
		}
		d = d[4:]
	}
	pkt := gopacket.NewPacket(d, layers.LayerTypeIPv4, gopacket.Default)
	if len(d) > 0 && d[0]>>4 == 6 {
		pkt = gopacket.NewPacket(d, layers.LayerTypeIPv6, gopacket.Default)
	}
	if u, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		return u.Payload, true
	}
	return nil, false
}

// TestMediaFilterGenerated: the decoder's generated captures (every link
// type, every tunnel, UDP and TCP, IPv4 and IPv6, whole and in fragments
// in both orders) give the same messages through the filter.
func TestMediaFilterGenerated(t *testing.T) {
	f := newMediaFilter(t)
	var total int
	ls := append(append([]link{}, links...), tunnelLinks()...)
	for _, l := range ls {
		for _, ipv := range []struct {
			name     string
			src, dst netip.AddrPort
		}{{"ipv4", alice4, bob4}, {"ipv6", alice6, bob6}} {
			for _, transport := range []string{"udp", "tcp"} {
				for _, frag := range []string{"whole", "fragments", "fragments reversed"} {
					t.Run(l.name+"/"+ipv.name+"/"+transport+"/"+frag, func(t *testing.T) {
						var frames []packet
						rec := link{l.name, l.lt, func(tb testing.TB, ip []byte) []byte {
							lt, fr := l.frame(tb, ip)
							frames = append(frames, packet{lt: lt, data: fr})
							return fr
						}}
						d, _, _ := newDecoder(t, nil)
						switch frag {
						case "whole":
							sendCorpus(t, d, rec, transport, ipv.src, ipv.dst)
						default:
							sendFragmented(t, d, rec, transport, ipv.src, ipv.dst, frag != "fragments")
						}
						passed, dropped := filterCheck(t, f, frames)
						if dropped != 0 || passed != len(frames) {
							t.Errorf("%d of %d frames dropped", dropped, len(frames))
						}
						total += passed
					})
				}
			}
		}
	}
	t.Logf("generated captures: %d frames, all passed", total)
}

// Media and other UDP payloads: what the filter does with each.
var mediaPayloads = []struct {
	name string
	p    []byte
	pass bool
}{
	{"rtp pcmu", append([]byte{0x80, 0x00, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef}, make([]byte, 160)...), false},
	{"rtp marker dynamic", append([]byte{0x80, 0xe0, 0x00, 0x01, 0, 0, 0, 0, 1, 2, 3, 4}, "GET / HTTP/1.1"...), false},
	{"rtp padding csrc", []byte{0xbf, 0x08, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0}, false},
	{"rtcp sender report", []byte{0x81, 0xc8, 0x00, 0x0c, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
	{"rtcp receiver report + sdes", []byte{0x81, 0xc9, 0x00, 0x07, 1, 2, 3, 4, 0x81, 0xca, 0x00, 0x02, 1, 2, 3, 4, 1, 1, 'a', 0}, false},
	{"srtp", []byte{0x80, 0x08, 0x9a, 0x0b, 0x00, 0x01, 0xf4, 0x00, 0xca, 0xfe, 0xba, 0xbe, 'S', 'I', 'P', '/', '2', '.', '0', ' '}, false},
	{"srtcp", []byte{0x80, 0xc8, 0x00, 0x06, 1, 2, 3, 4, 0x9c, 0x21, 0x7e, 0x33, 0x80, 0, 0, 1}, false},
	{"stun binding request", stunMsg(0x0001), false},
	{"stun binding success", stunMsg(0x0101), false},
	{"stun binding error", stunMsg(0x0111), false},
	{"stun indication", stunMsg(0x0011), false},
	{"dtls 1.2 client hello", []byte{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x40, 0x01, 0, 0, 0x34}, false},
	{"dtls change cipher spec", []byte{0x14, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 5, 0, 1, 1}, false},
	{"dtls application data", []byte{0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 0x20, 0x8a, 0x11}, false},
	{"dtls 1.3 unified header, digit", []byte{0x30, 0x9c, 0x01, 0xf2, 0x77, 0x10}, false},
	{"dtls 1.3 unified header, +", []byte{0x2b, 0x41, 0x07, 0x80, 0x11}, false},
	{"zrtp", []byte{0x10, 0x00, 0x00, 0x01, 'Z', 'R', 'T', 'P', 1, 2, 3, 4}, false},
	{"turn channel data", []byte{0x40, 0x00, 0x00, 0x0c, 0x80, 0, 0, 1}, false},
	{"empty", nil, false},
	{"invite", []byte(inviteText), true},
	{"200 ok", []byte(ok200), true},
	{"request, one-letter method", []byte("X sip:a@b SIP/2.0\r\n\r\n"), true},
	{"request, digit method", []byte("1 sip:a@b SIP/2.0\r\n\r\n"), true},
	{"request, odd token", []byte("!%x sip:a@b SIP/2.0\r\n\r\n"), true},
	{"request, long token", []byte("SUBSCRIBE sip:a@b SIP/2.0\r\n\r\n"), true},
	{"crlf keep-alive", []byte("\r\n\r\n"), true},
	{"lf keep-alive", []byte("\n"), true},
	{"hepv3", hepV3(), true},
	{"hepv2 ipv4", hepV2(hep.FamilyIPv4), true},
	{"hepv2 ipv6", hepV2(hep.FamilyIPv6), true},
}

func stunMsg(typ uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, 8)
	b = binary.BigEndian.AppendUint32(b, 0x2112a442)
	return append(b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x80, 0x22, 0, 4, 'p', 'j', 'n', 'a')
}

func hepV3() []byte {
	h, err := hep.AppendV3(nil, &hep.Packet{IPFamily: hep.FamilyIPv4, IPProtocol: 17, SrcIP: []byte{192, 0, 2, 10}, DstIP: []byte{192, 0, 2, 20},
		SrcPort: 5060, DstPort: 5060, TimestampSeconds: 1700000000, ProtocolType: 1, CaptureAgentID: 2001, Payload: []byte(ok200)})
	if err != nil {
		panic(err)
	}
	return h
}

func hepV2(family uint8) []byte {
	p := &hep.Packet{IPFamily: family, IPProtocol: 17, SrcIP: []byte{192, 0, 2, 10}, DstIP: []byte{192, 0, 2, 20},
		SrcPort: 5060, DstPort: 5060, TimestampSeconds: 1700000000, CaptureAgentID: 2001, Payload: []byte(ok200)}
	if family == hep.FamilyIPv6 {
		p.SrcIP, p.DstIP = netip.MustParseAddr("2001:db8::10").AsSlice(), netip.MustParseAddr("2001:db8::20").AsSlice()
	}
	h, err := hep.AppendV2(nil, p)
	if err != nil {
		panic(err)
	}
	return h
}

// TestMediaFilterPayloads: media is dropped and SIP, keep-alives and HEP
// pass, on every link type and over IPv4 and IPv6, on the SIP port and
// on the ports media use; the decoder agrees on what is SIP.
func TestMediaFilterPayloads(t *testing.T) {
	f := newMediaFilter(t)
	for _, l := range links {
		for _, ports := range [][2]uint16{{5060, 5060}, {16384, 16386}, {3478, 50000}} {
			for _, ipv := range []struct {
				name     string
				src, dst netip.Addr
			}{{"ipv4", alice4.Addr(), bob4.Addr()}, {"ipv6", alice6.Addr(), bob6.Addr()}} {
				for _, m := range mediaPayloads {
					src, dst := netip.AddrPortFrom(ipv.src, ports[0]), netip.AddrPortFrom(ipv.dst, ports[1])
					lt, fr := l.frame(t, udpPacket(t, src, dst, m.p))
					if got := f.passes(t, lt, fr); got != m.pass {
						t.Errorf("%s/%s/%d: %s: passes %v, want %v", l.name, ipv.name, ports[1], m.name, got, m.pass)
					}
					if !m.pass {
						d, st, rec := newDecoder(t, nil)
						feed(d, packet{lt: lt, data: fr})
						if len(rec.msgs) != 0 || st.Requests.Load()+st.Responses.Load() != 0 {
							t.Errorf("%s: the decoder finds SIP in what the filter drops: %v", m.name, rec.msgs)
						}
					}
				}
			}
		}
	}
}

// TestMediaFilterPasses: what the filter passes whole, without looking at
// UDP: TCP, SCTP, other IP protocols, IP fragments, IPv6 extension
// headers, tunnels by port, non-IP frames and deep VLAN stacks.
func TestMediaFilterPasses(t *testing.T) {
	f := newMediaFilter(t)
	rtp := mediaPayloads[0].p
	udp4 := udpPacket(t, alice4, bob4, rtp)
	udp6 := udpPacket(t, alice6, bob6, rtp)
	frag4 := fragments(t, udpPacket(t, alice4, bob4, append(append([]byte{}, rtp...), make([]byte, 600)...)), 304, 9)
	frag6 := fragments(t, udpPacket(t, alice6, bob6, append(append([]byte{}, rtp...), make([]byte, 600)...)), 304, 9)
	vlan := func(n int, ip []byte) []byte {
		ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q}}
		for i := 0; i < n; i++ {
			typ := layers.EthernetTypeDot1Q
			if i == n-1 {
				typ = ethType(ip)
			}
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(10 + i), Type: typ})
		}
		return serialize(t, append(ls, gopacket.Payload(ip))...)
	}
	for _, tc := range []struct {
		name string
		lt   layers.LinkType
		data []byte
		pass bool
	}{
		{"rtp ipv4", layers.LinkTypeEthernet, ether(t, udp4), false},
		{"rtp ipv6", layers.LinkTypeEthernet, ether(t, udp6), false},
		{"rtp ipv4 options", layers.LinkTypeEthernet, ether(t, ipv4Options(t, rtp)), false},
		{"rtp raw", layers.LinkTypeRaw, udp4, false},
		{"rtp 802.1Q", layers.LinkTypeEthernet, vlan(1, udp4), false},
		{"rtp QinQ", layers.LinkTypeEthernet, vlan(2, udp6), false},
		{"rtp three tags", layers.LinkTypeEthernet, vlan(3, udp4), true},
		{"rtp in ipv6 with extension headers", layers.LinkTypeEthernet, ether(t, withIPv6Ext(udp6, 0)), true},
		{"rtp first fragment ipv4", layers.LinkTypeEthernet, ether(t, frag4[0]), true},
		{"rtp last fragment ipv4", layers.LinkTypeEthernet, ether(t, frag4[len(frag4)-1]), true},
		{"rtp fragment ipv6", layers.LinkTypeEthernet, ether(t, frag6[1]), true},
		{"tcp", layers.LinkTypeEthernet, ether(t, tcpPacket(t, alice4, bob4, 1, fACK, rtp)), true},
		{"tcp syn raw ipv6", layers.LinkTypeRaw, tcpPacket(t, alice6, bob6, 1, fSYN, nil), true},
		{"sctp", layers.LinkTypeEthernet, ether(t, sctpPacket(t, alice4, bob4, dataChunk(ok200, true, true))), true},
		{"icmp error", layers.LinkTypeEthernet, ether(t, icmpError(t, udp4)), true},
		{"vxlan", layers.LinkTypeEthernet, outerUDP(t, 4789, cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, ether(t, udp4))), true},
		{"vxlan linux", layers.LinkTypeEthernet, outerUDP(t, 8472, cat([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, ether(t, udp4))), true},
		{"geneve", layers.LinkTypeEthernet, outerUDP(t, 6081, cat([]byte{0, 0, 0x65, 0x58, 0, 0, 42, 0}, ether(t, udp4))), true},
		{"mpls", layers.LinkTypeEthernet, serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeMPLSUnicast}, gopacket.Payload(cat(mpls(), udp4))), true},
		{"arp", layers.LinkTypeEthernet, serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeARP}, gopacket.Payload(make([]byte, 28))), true},
		{"runt", layers.LinkTypeEthernet, []byte{1, 2, 3}, false},
		{"raw, not ip", layers.LinkTypeRaw, []byte{0x10, 0, 0, 0}, true},
	} {
		if got := f.passes(t, tc.lt, tc.data); got != tc.pass {
			t.Errorf("%s: passes %v, want %v", tc.name, got, tc.pass)
		}
	}
}

// BenchmarkMediaFilter runs the filter over an RTP packet and an INVITE in
// x/net/bpf's virtual machine (much slower than the kernel's JIT: it
// shows the number of instructions, not the kernel's cost).
func BenchmarkMediaFilter(b *testing.B) {
	f := newMediaFilter(b)
	for _, tc := range []struct {
		name string
		p    []byte
	}{{"rtp", mediaPayloads[0].p}, {"invite", []byte(inviteText[:200])}} {
		fr := ether(b, udpPacket(b, alice4, bob4, tc.p))
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f[layers.LinkTypeEthernet].Run(fr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
