package decode_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// sctpPacket returns an IP packet (no link header) with an SCTP packet of
// the given chunks from src to dst, serialised by gopacket.
func sctpPacket(tb testing.TB, src, dst netip.AddrPort, chunks ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	ip := ipLayer(src.Addr(), dst.Addr(), layers.IPProtocolSCTP)
	ls := []gopacket.SerializableLayer{ip.(gopacket.SerializableLayer),
		&layers.SCTP{SrcPort: layers.SCTPPort(src.Port()), DstPort: layers.SCTPPort(dst.Port()), VerificationTag: 0x5ca1ab1e}}
	return serialize(tb, append(ls, chunks...)...)
}

// sctpTSN numbers the DATA chunks the tests build.
var sctpTSN uint32 = 1000

// dataChunk returns a DATA chunk holding p with the B and E flags given;
// payload protocol identifier 0 (RFC 4168 leaves it unset).
func dataChunk(p string, begin, end bool) *layers.SCTPData {
	sctpTSN++
	return &layers.SCTPData{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeData, Length: uint16(16 + len(p))},
		BeginFragment: begin, EndFragment: end, TSN: sctpTSN, StreamId: 1, StreamSequence: uint16(sctpTSN), Payload: []byte(p)}
}

// whole returns a DATA chunk with a whole user message.
func whole(p string) *layers.SCTPData { return dataChunk(p, true, true) }

// iData returns an I-DATA chunk (RFC 8260) holding a whole user message
// p, PPID 39 (SIP), built by hand: gopacket does not know it.
func iData(p string) gopacket.Payload {
	c := []byte{64, 0x03, 0, 0, 0, 0, 0x10, 0x01, 0, 2, 0, 0, 0, 0, 0, 7, 0, 0, 0, 39}
	binary.BigEndian.PutUint16(c[2:], uint16(len(c)+len(p)))
	c = append(c, p...)
	for len(c)%4 != 0 {
		c = append(c, 0)
	}
	return c
}

// Control chunks seen on a SIP association.
var (
	sack      = &layers.SCTPSack{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeSack}, CumulativeTSNAck: 77, AdvertisedReceiverWindowCredit: 106496}
	heartbeat = &layers.SCTPHeartbeat{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeHeartbeat},
		Parameters: []layers.SCTPHeartbeatParameter{{Type: 1, Length: 12, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}}
	initChunk = &layers.SCTPInit{SCTPChunk: layers.SCTPChunk{Type: layers.SCTPChunkTypeInit}, InitiateTag: 0x5ca1ab1e,
		AdvertisedReceiverWindowCredit: 106496, OutboundStreams: 10, InboundStreams: 10, InitialTSN: 1}
)

func TestSCTP(t *testing.T) {
	s4 := func(chunks ...gopacket.SerializableLayer) packet {
		return pk(layers.LinkTypeEthernet, ether(t, sctpPacket(t, alice4, bob4, chunks...)))
	}
	s6 := func(chunks ...gopacket.SerializableLayer) packet {
		return pk(layers.LinkTypeEthernet, ether(t, sctpPacket(t, alice6, bob6, chunks...)))
	}
	inv, ok := messages[0], messages[3]
	for _, tc := range []struct {
		name   string
		frames []packet
		msgs   []got
		counts map[string]uint64
	}{
		{"one data chunk", []packet{s4(whole(ok.text))}, want(ok), map[string]uint64{"responses": 1}},
		{"ipv6", []packet{s6(whole(ok.text))}, want(ok), map[string]uint64{"responses": 1}},
		{"several chunks and control chunks", []packet{s4(sack, whole(inv.text), whole(trying), heartbeat, whole(ok.text))},
			[]got{{0, "INVITE"}, {100, "INVITE"}, {200, "INVITE"}}, map[string]uint64{"requests": 1, "responses": 2}},
		{"control chunks only", []packet{s4(initChunk), s4(sack), s4(heartbeat, sack)}, nil, map[string]uint64{"skip/sctp_control": 3}},
		{"no chunks", []packet{s4()}, nil, map[string]uint64{"skip/sctp_control": 1}},
		{"not sip", []packet{s4(whole(string(rtp)), whole("\r\n\r\n"), whole(ok.text))}, want(ok),
			map[string]uint64{"responses": 1, "skip/not_sip": 1, "skip/keepalive": 1}},
		{"split user message", []packet{s4(dataChunk(inv.text[:500], true, false)), s4(dataChunk(inv.text[500:], false, true), whole(trying))},
			[]got{{100, "INVITE"}}, map[string]uint64{"responses": 1, "skip/sctp_fragment": 2}},
		{"i-data", []packet{s4(sack, iData(ok.text), iData(trying))}, []got{{200, "INVITE"}, {100, "INVITE"}}, map[string]uint64{"responses": 2}},
		{"chunk past the end", []packet{pk(layers.LinkTypeEthernet, ether(t, sctpPacket(t, alice4, bob4, whole(trying), whole(ok.text))[:20+12+16+len(trying)+40]))},
			[]got{{100, "INVITE"}}, map[string]uint64{"responses": 1, "error/sctp_header": 1}},
		{"common header truncated", []packet{pk(layers.LinkTypeRaw, sctpPacket(t, alice4, bob4)[:20+11])}, nil, map[string]uint64{"error/sctp_header": 1}},
		{"data chunk header truncated", []packet{pk(layers.LinkTypeRaw, sctpPacket(t, alice4, bob4, gopacket.Payload{0, 3, 0, 12, 0, 0, 0, 1, 0, 1, 0, 0}))}, nil, map[string]uint64{"error/sctp_header": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, st, rec := newDecoder(t, nil)
			feed(d, tc.frames...)
			if g := counts(st); !sameCounts(g, tc.counts) {
				t.Errorf("counts = %v, want %v", g, tc.counts)
			}
			if !sameMsgs(rec.msgs, tc.msgs) {
				t.Errorf("messages = %v, want %v", rec.msgs, tc.msgs)
			}
		})
	}
}

// TestSCTPOrigin: the message has the SCTP ports of its packet.
func TestSCTPOrigin(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.0.2.10:5061"), netip.MustParseAddrPort("[2001:db8::20]:5062")
	for _, ap := range [][2]netip.AddrPort{{src, netip.MustParseAddrPort("192.0.2.20:5062")}, {netip.MustParseAddrPort("[2001:db8::10]:5061"), dst}} {
		var got [2]netip.AddrPort
		d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, _ *sip.Message) {
			got = [2]netip.AddrPort{o.Src, o.Dst}
		})
		if err != nil {
			t.Fatal(err)
		}
		f := ether(t, sctpPacket(t, ap[0], ap[1], sack, whole(ok200)))
		d.Packet(layers.LinkTypeEthernet, f, 0, len(f))
		if got != ap {
			t.Errorf("origin %v, want %v", got, ap)
		}
	}
}

// TestDecodeSCTPCorpus sends the corpus over SCTP, three DATA chunks and a
// SACK per packet, IPv4 and IPv6, plain, inside every tunnel and with
// every packet in IP fragments, and expects what the plain UDP capture
// gives.
func TestDecodeSCTPCorpus(t *testing.T) {
	for _, ipv := range []struct {
		name     string
		src, dst netip.AddrPort
	}{{"ipv4", alice4, bob4}, {"ipv6", alice6, bob6}} {
		d, st, rec := newDecoder(t, nil)
		sendCorpus(t, d, ethernet, "udp", ipv.src, ipv.dst)
		plainMsgs, plainCounts := rec.msgs, counts(st)
		for _, tun := range append([]link{ethernet}, tunnelLinks()...) {
			for _, frag := range []bool{false, true} {
				name := ipv.name + "/" + tun.name
				if frag {
					name += "/ip-fragments"
				}
				t.Run(name, func(t *testing.T) {
					d, st, rec := newDecoder(t, nil)
					for i := 0; i < len(messages); i += 3 {
						chunks := []gopacket.SerializableLayer{sack}
						for _, m := range messages[i:min(i+3, len(messages))] {
							chunks = append(chunks, whole(m.text))
						}
						ip := sctpPacket(t, ipv.src, ipv.dst, chunks...)
						ips := [][]byte{ip}
						if frag {
							ips = fragments(t, ip, 504, uint32(i))
						}
						for _, p := range ips {
							lt, f := tun.frame(t, p)
							d.Packet(lt, f, 0, len(f))
						}
					}
					c := counts(st)
					delete(c, "reassembled/"+ipv.name)
					if !sameMsgs(rec.msgs, plainMsgs) {
						t.Errorf("messages:\n got %v\nwant %v", rec.msgs, plainMsgs)
					}
					if !sameCounts(c, plainCounts) {
						t.Errorf("counts = %v, want %v", c, plainCounts)
					}
				})
			}
		}
	}
}
