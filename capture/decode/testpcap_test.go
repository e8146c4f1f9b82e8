package decode_test

// Test helpers: realistic SIP messages, frames built with gopacket for every
// link type the decoder supports, TCP connections, capture files written
// with pcapgo, and a handler that records what the decoder hands on.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// crlf turns the LF line ends of a readable literal into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// withBody returns header (LF line ends, "Content-Length: N" or "l: N"
// placeholder) followed by body, both with CRLF line ends, and the length
// filled in.
func withBody(header, body string) string {
	body = crlf(body)
	n := fmt.Sprint(len(body))
	header = strings.Replace(header, "Content-Length: N\n", "Content-Length: "+n+"\n", 1)
	header = strings.Replace(header, "\nl: N\n", "\nl: "+n+"\n", 1)
	return crlf(header) + body
}

const sdpOffer = `v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 49170 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
`

const sdpAnswer = `v=0
o=bob 2808844564 2808844564 IN IP4 192.0.2.20
s=-
c=IN IP4 192.0.2.20
t=0 0
m=audio 3456 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=ptime:20
a=sendrecv
`

// dialogHeaders are the headers shared by the messages of one call, with
// %[1]s the CSeq number and method and %[2]s the Call-ID.
const dialogHeaders = `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: %[2]s
CSeq: %[1]s
Contact: <sip:alice@192.0.2.10:5060>
User-Agent: ExampleUA/2.1
`

// respHeaders are the headers of a response, with %[1]s the CSeq and %[2]s
// the Call-ID.
const respHeaders = `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;received=192.0.2.10;rport=5060
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356
Call-ID: %[2]s
CSeq: %[1]s
Server: ExampleProxy/3.4
`

// sipMessage is one message of the corpus and what the handler must see.
type sipMessage struct {
	name   string
	text   string
	code   int    // status code, 0 for a request
	method string // request method, or CSeq method of a response
}

// corpus returns the test messages of one call family with the Call-ID id.
func corpus(id string) []sipMessage {
	req := func(method, uri, cseq, extra, body string) string {
		h := method + " " + uri + " SIP/2.0\n" + fmt.Sprintf(dialogHeaders, cseq, id) + extra
		if body == "" {
			return crlf(h + "Content-Length: 0\n\n")
		}
		return withBody(h+"Content-Type: application/sdp\nContent-Length: N\n\n", body)
	}
	resp := func(status, cseq, extra, body string) string {
		h := "SIP/2.0 " + status + "\n" + fmt.Sprintf(respHeaders, cseq, id) + extra
		if body == "" {
			return crlf(h + "Content-Length: 0\n\n")
		}
		return withBody(h+"Content-Type: application/sdp\nContent-Length: N\n\n", body)
	}
	return []sipMessage{
		{"INVITE", req("INVITE", "sip:bob@biloxi.example.com", "1 INVITE", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\nSupported: replaces, timer\n", sdpOffer), 0, "INVITE"},
		{"100 Trying", resp("100 Trying", "1 INVITE", "", ""), 100, "INVITE"},
		{"180 Ringing", resp("180 Ringing", "1 INVITE", "Contact: <sip:bob@192.0.2.20>\n", ""), 180, "INVITE"},
		{"200 OK INVITE", resp("200 OK", "1 INVITE", "Contact: <sip:bob@192.0.2.20>\nAllow: INVITE, ACK, CANCEL, BYE\n", sdpAnswer), 200, "INVITE"},
		{"ACK", req("ACK", "sip:bob@192.0.2.20", "1 ACK", "", ""), 0, "ACK"},
		{"BYE", req("BYE", "sip:bob@192.0.2.20", "2 BYE", "", ""), 0, "BYE"},
		{"200 OK BYE", resp("200 OK", "2 BYE", "", ""), 200, "BYE"},
		{"REGISTER", req("REGISTER", "sip:registrar.example.com", "3 REGISTER", "Expires: 3600\n", ""), 0, "REGISTER"},
		{"401", resp("401 Unauthorized", "3 REGISTER", `WWW-Authenticate: Digest realm="example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5, qop="auth"`+"\n", ""), 401, "REGISTER"},
		{"OPTIONS", req("OPTIONS", "sip:proxy.example.com", "4 OPTIONS", "Accept: application/sdp\n", ""), 0, "OPTIONS"},
		{"200 OK OPTIONS", resp("200 OK", "4 OPTIONS", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\n", ""), 200, "OPTIONS"},
		{"486", resp("486 Busy Here", "5 INVITE", "", ""), 486, "INVITE"},
		{"503", resp("503 Service Unavailable", "6 INVITE", "Retry-After: 30\n", ""), 503, "INVITE"},
		{"compact 183", withBody("SIP/2.0 183 Session Progress\nv: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds8\nf: <sip:alice@atlanta.example.com>;tag=1928301774\nt: <sip:bob@biloxi.example.com>;tag=a6c85cf\ni: "+id+"\nCSeq: 7 INVITE\nc: application/sdp\nl: N\n\n", sdpAnswer), 183, "INVITE"},
	}
}

// messages is the default corpus.
var messages = corpus("a84b4c76e66710@pc33.atlanta.example.com")

// got is what the recorder keeps of one message.
type got struct {
	code   int
	method string
}

func (g got) String() string { return fmt.Sprintf("%d/%s", g.code, g.method) }

// recorder is a Handler that copies what it needs out of each message.
type recorder struct{ msgs []got }

func (r *recorder) handle(_ *decode.Origin, m *sip.Message) {
	if m.Response {
		r.msgs = append(r.msgs, got{m.StatusCode, string(m.CSeqMethod)})
	} else {
		r.msgs = append(r.msgs, got{0, string(m.Method)})
	}
}

func (r *recorder) String() string { return fmt.Sprint(r.msgs) }

// want returns what a recorder should hold after ms.
func want(ms ...sipMessage) []got {
	var g []got
	for _, m := range ms {
		g = append(g, got{m.code, m.method})
	}
	return g
}

// newDecoder returns a decoder with cfg (nil: the defaults) recording into a
// new recorder.
func newDecoder(tb testing.TB, tcp *stream.Config) (*decode.Decoder, *decode.Stats, *recorder) {
	tb.Helper()
	cfg := decode.DefaultConfig()
	if tcp != nil {
		cfg.TCP = *tcp
	}
	st, rec := new(decode.Stats), new(recorder)
	d, err := decode.New(cfg, st, rec.handle)
	if err != nil {
		tb.Fatal(err)
	}
	return d, st, rec
}

// counts returns every non-zero counter of st except packets and bytes,
// keyed by name ("requests", "skip/not_sip", "error/ip_header", ...).
func counts(st *decode.Stats) map[string]uint64 {
	m := map[string]uint64{}
	put := func(k string, n uint64) {
		if n != 0 {
			m[k] = n
		}
	}
	put("requests", st.Requests.Load())
	put("responses", st.Responses.Load())
	put("tcp_flows", uint64(st.Stream.Flows.Load()))
	put("tcp_retrans", st.Stream.Retransmitted.Load())
	put("tcp_out_of_order", st.Stream.OutOfOrder.Load())
	put("tcp_gaps", st.Stream.Gaps.Load())
	put("tcp_resyncs", st.Stream.Resyncs.Load())
	st.ParseErrors(func(r string, n uint64) { put("error/"+r, n) })
	st.Skips(func(r string, n uint64) { put("skip/"+r, n) })
	st.Stream.Evictions(func(r string, n uint64) { put("evict/"+r, n) })
	st.Fragments.Reassembled(func(f string, n uint64) { put("reassembled/"+f, n) })
	st.Fragments.Drops(func(f, r string, n uint64) { put("frag_drop/"+f+"/"+r, n) })
	return m
}

func sameCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameMsgs(a, b []got) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Addresses used by the tests.
var (
	alice4 = netip.MustParseAddrPort("192.0.2.10:5060")
	bob4   = netip.MustParseAddrPort("192.0.2.20:5060")
	alice6 = netip.MustParseAddrPort("[2001:db8::10]:5060")
	bob6   = netip.MustParseAddrPort("[2001:db8::20]:5060")
)

// serialize runs gopacket.SerializeLayers with lengths and checksums fixed.
func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipLayer returns the IPv4 or IPv6 layer from src to dst carrying proto.
func ipLayer(src, dst netip.Addr, proto layers.IPProtocol) gopacket.NetworkLayer {
	if src.Is4() {
		return &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
}

// udpPacket returns an IP packet (no link header) with a UDP datagram.
func udpPacket(tb testing.TB, src, dst netip.AddrPort, payload []byte) []byte {
	tb.Helper()
	ip := ipLayer(src.Addr(), dst.Addr(), layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return serialize(tb, ip.(gopacket.SerializableLayer), udp, gopacket.Payload(payload))
}

// TCP flag sets for tcpPacket.
const (
	fACK = 1 << iota
	fSYN
	fFIN
	fRST
	fPSH
)

// tcpPacket returns an IP packet (no link header) with a TCP segment.
func tcpPacket(tb testing.TB, src, dst netip.AddrPort, seq uint32, flags int, payload []byte) []byte {
	tb.Helper()
	ip := ipLayer(src.Addr(), dst.Addr(), layers.IPProtocolTCP)
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Ack: 1, Window: 65535,
		ACK: flags&fACK != 0, SYN: flags&fSYN != 0, FIN: flags&fFIN != 0, RST: flags&fRST != 0, PSH: flags&fPSH != 0,
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return serialize(tb, ip.(gopacket.SerializableLayer), tcp, gopacket.Payload(payload))
}

// link is one way of framing an IP packet.
type link struct {
	name string
	lt   layers.LinkType
	wrap func(tb testing.TB, ip []byte) []byte
}

var (
	macA = []byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = []byte{0x02, 0, 0, 0, 0, 0x0b}
)

func ethType(ip []byte) layers.EthernetType {
	if ip[0]>>4 == 6 {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// family returns the address family of ip: 2 (AF_INET) or v6 for IPv6.
func family(ip []byte, v6 uint32) uint32 {
	if ip[0]>>4 == 6 {
		return v6
	}
	return 2
}

func ether(tb testing.TB, ip []byte) []byte {
	return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: ethType(ip)}, gopacket.Payload(ip))
}

// sll returns a Linux cooked v1 header (16 bytes) followed by ip.
func sll(ip []byte) []byte {
	h := make([]byte, 16, 16+len(ip))
	binary.BigEndian.PutUint16(h[0:], 0) // packet type: to us
	binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], 6)
	copy(h[6:], macA)
	binary.BigEndian.PutUint16(h[14:], uint16(ethType(ip)))
	return append(h, ip...)
}

// sll2 returns a Linux cooked v2 header (20 bytes) followed by ip.
func sll2(ip []byte) []byte {
	h := make([]byte, 20, 20+len(ip))
	binary.BigEndian.PutUint16(h[0:], uint16(ethType(ip))) // protocol
	binary.BigEndian.PutUint32(h[4:], 2)                   // interface index
	binary.BigEndian.PutUint16(h[8:], 1)                   // ARPHRD_ETHER
	h[10] = 0                                              // packet type
	h[11] = 6                                              // address length
	copy(h[12:], macA)
	return append(h, ip...)
}

// sllTagged returns an SLL frame of ip with an 802.1Q tag of priority
// pcp and VLAN 100, as libpcap puts back a tag the NIC stripped: the TPID
// at the protocol field, then the TCI and the protocol.
func sllTagged(ip []byte, pcp uint16) []byte {
	f := sll(ip)
	return slices.Concat(f[:14], []byte{0x81, 0x00, byte(pcp << 5), 100}, f[14:])
}

// sll2QinQ returns an SLL2 frame of ip behind an 802.1ad and an 802.1Q
// tag, both of priority pcp, as the kernel leaves tags it did not strip:
// the outer TPID at the protocol field, the tags after the header.
func sll2QinQ(ip []byte, pcp uint16) []byte {
	f := sll2(ip)
	return slices.Concat([]byte{0x88, 0xa8}, f[2:20], []byte{byte(pcp << 5), 10, 0x81, 0x00, byte(pcp<<5) | 0x10, 200}, f[0:2], f[20:])
}

// links lists every link type the decoder supports, with the framing of a
// real capture.
var links = []link{
	{"ethernet", layers.LinkTypeEthernet, ether},
	{"802.1Q", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: ethType(ip)}, gopacket.Payload(ip))
	}},
	{"QinQ", layers.LinkTypeEthernet, func(tb testing.TB, ip []byte) []byte {
		return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeQinQ},
			&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 200, Type: ethType(ip)}, gopacket.Payload(ip))
	}},
	{"SLL", layers.LinkTypeLinuxSLL, func(_ testing.TB, ip []byte) []byte { return sll(ip) }},
	{"SLL2", layers.LinkTypeLinuxSLL2, func(_ testing.TB, ip []byte) []byte { return sll2(ip) }},
	{"SLL 802.1Q priority 3", layers.LinkTypeLinuxSLL, func(_ testing.TB, ip []byte) []byte { return sllTagged(ip, 3) }},
	{"SLL2 QinQ priority 2", layers.LinkTypeLinuxSLL2, func(_ testing.TB, ip []byte) []byte { return sll2QinQ(ip, 2) }},
	{"raw", layers.LinkTypeRaw, func(_ testing.TB, ip []byte) []byte { return ip }},
	{"ipv4/ipv6", 0, nil}, // placeholder replaced below: 228 or 229 by version
	{"null/24", layers.LinkTypeNull, func(tb testing.TB, ip []byte) []byte {
		return serialize(tb, &layers.Loopback{Family: layers.ProtocolFamily(family(ip, 24))}, gopacket.Payload(ip))
	}},
	{"null/28", layers.LinkTypeNull, func(tb testing.TB, ip []byte) []byte {
		return serialize(tb, &layers.Loopback{Family: layers.ProtocolFamily(family(ip, 28))}, gopacket.Payload(ip))
	}},
	{"null/30", layers.LinkTypeNull, func(tb testing.TB, ip []byte) []byte {
		return serialize(tb, &layers.Loopback{Family: layers.ProtocolFamily(family(ip, 30))}, gopacket.Payload(ip))
	}},
	{"loop", layers.LinkTypeLoop, func(_ testing.TB, ip []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, family(ip, 24)), ip...)
	}},
}

// rawByVersion frames ip as LINKTYPE_IPV4 (228) or LINKTYPE_IPV6 (229).
func rawByVersion(ip []byte) (layers.LinkType, []byte) {
	if ip[0]>>4 == 6 {
		return layers.LinkTypeIPv6, ip
	}
	return layers.LinkTypeIPv4, ip
}

// frame frames ip for link l and returns the link type to decode it as.
func (l link) frame(tb testing.TB, ip []byte) (layers.LinkType, []byte) {
	tb.Helper()
	if l.wrap == nil {
		return rawByVersion(ip)
	}
	return l.lt, l.wrap(tb, ip)
}

var ethernet = links[0]

// tcpConn builds the segments of one direction of a TCP connection.
type tcpConn struct {
	tb       testing.TB
	l        link
	src, dst netip.AddrPort
	seq      uint32 // next sequence number
}

func newConn(tb testing.TB, l link, src, dst netip.AddrPort, isn uint32) *tcpConn {
	return &tcpConn{tb: tb, l: l, src: src, dst: dst, seq: isn}
}

// at returns a segment at seq without moving the connection on.
func (c *tcpConn) at(seq uint32, flags int, payload []byte) (layers.LinkType, []byte) {
	c.tb.Helper()
	return c.l.frame(c.tb, tcpPacket(c.tb, c.src, c.dst, seq, flags, payload))
}

// next returns the next segment in order and moves the connection on.
func (c *tcpConn) next(flags int, payload []byte) (layers.LinkType, []byte) {
	c.tb.Helper()
	lt, f := c.at(c.seq, flags, payload)
	c.seq += uint32(len(payload))
	if flags&(fSYN|fFIN) != 0 {
		c.seq++
	}
	return lt, f
}

// syn returns the SYN of the connection.
func (c *tcpConn) syn() (layers.LinkType, []byte) { return c.next(fSYN, nil) }

// data returns the next data segment.
func (c *tcpConn) data(s string) (layers.LinkType, []byte) { return c.next(fACK|fPSH, []byte(s)) }

// packet is one captured frame.
type packet struct {
	lt   layers.LinkType
	data []byte
	ts   time.Time
}

// feed decodes frames in order with timestamps one millisecond apart.
func feed(d *decode.Decoder, frames ...packet) {
	for _, f := range frames {
		d.Packet(f.lt, f.data, f.ts.UnixNano(), len(f.data))
	}
}

// pk makes a packet of a link type and frame.
func pk(lt layers.LinkType, data []byte) packet {
	return packet{lt: lt, data: data, ts: time.Unix(1700000000, 0)}
}

// writePcap writes frames of one link type to a new pcap file in dir.
func writePcap(tb testing.TB, path string, nanos bool, lt layers.LinkType, frames []packet) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if nanos {
		w = pcapgo.NewWriterNanos(f)
	}
	if err := w.WriteFileHeader(65535, lt); err != nil {
		tb.Fatal(err)
	}
	for _, p := range frames {
		ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// sendCorpus decodes the corpus messages from src to dst framed by l: one
// UDP datagram each, or, for transport "tcp", one segment each after a SYN.
func sendCorpus(tb testing.TB, d *decode.Decoder, l link, transport string, src, dst netip.AddrPort) {
	tb.Helper()
	if transport == "udp" {
		for _, m := range messages {
			lt, f := l.frame(tb, udpPacket(tb, src, dst, []byte(m.text)))
			d.Packet(lt, f, 0, len(f))
		}
		return
	}
	c := newConn(tb, l, src, dst, 1000)
	lt, f := c.syn()
	d.Packet(lt, f, 0, len(f))
	for _, m := range messages {
		lt, f := c.data(m.text)
		d.Packet(lt, f, 0, len(f))
	}
}
