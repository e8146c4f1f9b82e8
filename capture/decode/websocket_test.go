package decode_test

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

// wsKey is the masking key of the client's frames (RFC 6455 §5.7).
var wsKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// wsFrame returns one WebSocket frame (RFC 6455 §5.2) with first byte b0
// (FIN, RSV and opcode), masked with wsKey when mask, its payload length
// coded in lenBits bits (7, 16 or 64; 0: the shortest).
func wsFrame(b0 byte, mask bool, lenBits int, payload string) string {
	n := len(payload)
	if lenBits == 0 {
		lenBits = 7
		switch {
		case n > 65535:
			lenBits = 64
		case n > 125:
			lenBits = 16
		}
	}
	h := []byte{b0, 0}
	if mask {
		h[1] = 0x80
	}
	switch lenBits {
	case 7:
		h[1] |= byte(n)
	case 16:
		h[1] |= 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	case 64:
		h[1] |= 127
		h = binary.BigEndian.AppendUint64(h, uint64(n))
	}
	p := []byte(payload)
	if mask {
		h = append(h, wsKey[:]...)
		for i := range p {
			p[i] ^= wsKey[i%4]
		}
	}
	return string(h) + string(p)
}

// WebSocket first bytes: FIN and an opcode.
const (
	wsText   = 0x81
	wsBinary = 0x82
	wsCont   = 0x80
	wsClose  = 0x88
	wsPing   = 0x89
	wsPong   = 0x8a
	wsNoFIN  = 0x7f // AND mask that clears FIN
	wsRSV1   = 0x40
)

// cli and srv frame one text message as the client (masked) and the server
// (unmasked) send it.
func cli(s string) string { return wsFrame(wsText, true, 0, s) }
func srv(s string) string { return wsFrame(wsText, false, 0, s) }

// The opening handshake as a SIP-over-WebSocket client (JsSIP, sipgo) and
// server send it (RFC 6455 §1.3, RFC 7118 §4).
const (
	wsUpgrade = "GET / HTTP/1.1\r\nHost: 192.0.2.20:5060\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://192.0.2.10\r\n" +
		"Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n"
	wsSwitch = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
)

// Short messages whose frames have 7-bit lengths.
var (
	tinyReq  = sipMessage{"OPTIONS", "OPTIONS sip:b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 0, "OPTIONS"}
	tinyResp = sipMessage{"200 OPTIONS", "SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 200, "OPTIONS"}
	// bigMsg needs a 64-bit frame length.
	bigMsg = sipMessage{"MESSAGE", "MESSAGE sip:b SIP/2.0\r\nCSeq: 2 MESSAGE\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("x", 70000), 0, "MESSAGE"}
)

// handshake returns the steps of both halves of the opening handshake.
func handshake() []step { return append(in(0, wsUpgrade), in(1, wsSwitch)...) }

// steps concatenates step lists.
func steps(ss ...[]step) []step {
	var out []step
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

// wsCounts is counts plus the WebSocket messages ("encap/websocket").
func wsCounts(st *decode.Stats) map[string]uint64 {
	c := counts(st)
	st.Encapsulations(func(k string, n uint64) {
		if n != 0 {
			c["encap/"+k] = n
		}
	})
	return c
}

// wsCase is one table test: steps played after SYNs (unless noSYN).
type wsCase struct {
	name   string
	cfg    *stream.Config
	noSYN  bool
	steps  []step
	msgs   []got
	counts map[string]uint64 // tcp_flows 2 is implied when the SYNs are sent
}

func wsCases() []wsCase {
	inv, okt := invite.text, ok.text
	small := stream.DefaultConfig()
	small.MaxBufferBytes = 1024
	gappy := small
	gappy.MaxOutOfOrder = 3
	// big is a 3.7 kB INVITE, over small's buffer.
	big := strings.Replace(inv, "User-Agent:", "X-Filler: "+strings.Repeat("x", 3000)+"\r\nUser-Agent:", 1)
	invFrame := cli(inv)
	frag := wsFrame(wsText&wsNoFIN, true, 0, inv[:100]) + wsFrame(wsPing, true, 0, "ping") +
		wsFrame(wsCont&wsNoFIN, true, 0, inv[100:600]) + wsFrame(wsPong, true, 0, "") + wsFrame(wsCont, true, 0, inv[600:])
	three := cli(ack.text) + cli(bye.text) + cli(tinyReq.text)
	c := func(kv ...any) map[string]uint64 {
		m := map[string]uint64{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = uint64(kv[i+1].(int))
		}
		return m
	}
	return []wsCase{
		{name: "both directions after the handshake", steps: steps(handshake(), in(0, invFrame), in(1, srv(ringing.text), srv(okt)), in(0, cli(ack.text))),
			msgs: want(invite, ringing, ok, ack), counts: c("requests", 2, "responses", 2, "encap/websocket", 4)},
		{name: "7-bit lengths", steps: steps(handshake(), in(0, cli(tinyReq.text)), in(1, srv(tinyResp.text))),
			msgs: want(tinyReq, tinyResp), counts: c("requests", 1, "responses", 1, "encap/websocket", 2)},
		{name: "16-bit lengths", steps: steps(handshake(), in(0, wsFrame(wsText, true, 16, tinyReq.text)), in(1, wsFrame(wsText, false, 16, okt))),
			msgs: want(tinyReq, ok), counts: c("requests", 1, "responses", 1, "encap/websocket", 2)},
		{name: "64-bit lengths", steps: steps(handshake(), in(0, wsFrame(wsText, true, 64, inv)), in(1, wsFrame(wsText, false, 64, tinyResp.text))),
			msgs: want(invite, tinyResp), counts: c("requests", 1, "responses", 1, "encap/websocket", 2)},
		{name: "64-bit length of a 70 kB message", steps: steps(handshake(), in(0, split(cli(bigMsg.text), 30000, 60000)...), in(1, split(srv(bigMsg.text), 50000)...)),
			msgs: want(bigMsg, bigMsg), counts: c("requests", 2, "encap/websocket", 2)},
		{name: "binary messages", steps: steps(handshake(), in(0, wsFrame(wsBinary, true, 0, inv)), in(1, wsFrame(wsBinary, false, 0, okt))),
			msgs: want(invite, ok), counts: c("requests", 1, "responses", 1, "encap/websocket", 2)},
		{name: "fragmented with control frames between", steps: steps(handshake(), in(0, frag, cli(ack.text))),
			msgs: want(invite, ack), counts: c("requests", 2, "encap/websocket", 2)},
		{name: "fragments in separate segments", steps: steps(handshake(), in(0, split(frag, 104, 110, 300, 617, 630)...), in(0, cli(ack.text))),
			msgs: want(invite, ack), counts: c("requests", 2, "encap/websocket", 2)},
		{name: "unmasked fragments", steps: steps(handshake(), in(1, wsFrame(wsText&wsNoFIN, false, 0, okt[:10])+wsFrame(wsCont, false, 0, okt[10:]))),
			msgs: want(ok), counts: c("responses", 1, "encap/websocket", 1)},
		{name: "several frames in one segment", steps: steps(handshake(), in(0, three), in(1, srv(okBye.text)+srv(tinyResp.text))),
			msgs: want(ack, bye, tinyReq, okBye, tinyResp), counts: c("requests", 3, "responses", 2, "encap/websocket", 5)},
		{name: "frame split over three segments", steps: steps(handshake(), in(0, split(invFrame, 3, 300)...), in(1, split(srv(okt), 1, 2)...)),
			msgs: want(invite, ok), counts: c("requests", 1, "responses", 1, "encap/websocket", 2)},
		{name: "split inside the mask key", steps: steps(handshake(), in(0, split(invFrame, 5, 6, 7)...)),
			msgs: want(invite), counts: c("requests", 1, "encap/websocket", 1)},
		{name: "split into single bytes", steps: steps(handshake(), in(0, split(cli(tinyReq.text), seqTo(len(cli(tinyReq.text)))...)...)),
			msgs: want(tinyReq), counts: c("requests", 1, "encap/websocket", 1)},
		{name: "end of one frame and start of the next", steps: steps(handshake(), in(0, split(three, len(cli(ack.text))-5, len(cli(ack.text))+1)...)),
			msgs: want(ack, bye, tinyReq), counts: c("requests", 3, "encap/websocket", 3)},
		{name: "out of order", steps: steps(handshake(), []step{
			at(0, len(wsUpgrade)+200, invFrame[200:]), at(0, len(wsUpgrade)+100, invFrame[100:200]), at(0, len(wsUpgrade), invFrame[:100]),
		}), msgs: want(invite), counts: c("requests", 1, "encap/websocket", 1, "tcp_out_of_order", 2)},
		{name: "retransmitted frame", steps: steps(handshake(), []step{
			at(0, len(wsUpgrade), invFrame), at(0, len(wsUpgrade), invFrame), at(0, len(wsUpgrade)+len(invFrame), cli(ack.text)),
		}), msgs: want(invite, ack), counts: c("requests", 2, "encap/websocket", 2, "tcp_retrans", 1)},
		{name: "close frames", steps: steps(handshake(), in(0, cli(tinyReq.text), wsFrame(wsClose, true, 0, "\x03\xe8bye")), in(1, wsFrame(wsClose, false, 0, "\x03\xe8"))),
			msgs: want(tinyReq), counts: c("requests", 1, "encap/websocket", 1)},
		{name: "compressed message", steps: steps(handshake(), in(0, wsFrame(wsText|wsRSV1, true, 0, "\xf2\x0c\x0a\x08\xf1\x0c\x0d\x50"), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "skip/websocket_compressed", 1)},
		{name: "compressed fragmented message", steps: steps(handshake(), in(0, wsFrame((wsText|wsRSV1)&wsNoFIN, true, 0, "abc")+wsFrame(wsCont, true, 0, "def")+cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "skip/websocket_compressed", 1)},
		{name: "reserved opcode", steps: steps(handshake(), in(0, wsFrame(0x83, true, 0, "x")+cli(bye.text), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/websocket_frame", 1)},
		{name: "reserved control opcode", steps: steps(handshake(), in(1, wsFrame(0x8b, false, 0, ""), srv(okt))),
			msgs: want(ok), counts: c("responses", 1, "encap/websocket", 1, "error/websocket_frame", 1)},
		{name: "RSV2 set", steps: steps(handshake(), in(0, wsFrame(wsText|0x20, true, 0, bye.text), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/websocket_frame", 1)},
		{name: "control frame over 125 bytes", steps: steps(handshake(), in(0, wsFrame(wsPing, true, 0, strings.Repeat("p", 126)), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/websocket_frame", 1)},
		{name: "fragmented control frame", steps: steps(handshake(), in(0, wsFrame(wsPing&wsNoFIN, true, 0, "p"), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/websocket_frame", 1)},
		{name: "continuation without a message", steps: steps(handshake(), in(0, wsFrame(wsCont, true, 0, "x"), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/websocket_frame", 1)},
		{name: "length with the top bit set", steps: steps(handshake(), in(0, "\x81\xff\x80\x00\x00\x00\x00\x00\x00\x01"+string(wsKey[:])+"x", cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/websocket_frame", 1)},
		{name: "new message before the last fragment", steps: steps(handshake(), in(0, wsFrame(wsText&wsNoFIN, true, 0, bye.text[:20])+cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/websocket_frame", 1)},
		{name: "frame over the buffer bound", cfg: &small, steps: steps(handshake(), in(0, split(cli(big), 500, 2000)...), in(0, cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/too_long", 1)},
		{name: "fragments over the buffer bound", cfg: &small, steps: steps(handshake(),
			in(0, wsFrame(wsText&wsNoFIN, true, 0, big[:600]), wsFrame(wsCont&wsNoFIN, true, 0, big[600:1200]), wsFrame(wsCont, true, 0, big[1200:]), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "error/too_long", 1)},
		{name: "keep-alive and empty messages", steps: steps(handshake(), in(0, cli("\r\n\r\n"), cli(""), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 3, "skip/keepalive", 2)},
		{name: "a message that is not SIP", steps: steps(handshake(), in(0, cli(`{"jsonrpc":"2.0"}`), cli(ack.text))),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 2, "skip/not_sip", 1)},
		{name: "handshake split across segments", steps: steps(in(0, split(wsUpgrade, 2, 60)...), in(1, split(wsSwitch, 5, 10)...), in(0, invFrame), in(1, srv(okt))),
			msgs: want(invite, ok), counts: c("requests", 1, "responses", 1, "encap/websocket", 2)},
		{name: "frames in the handshake's segment", steps: steps(in(0, wsUpgrade+invFrame), in(1, wsSwitch+srv(ringing.text)+srv(okt)[:50], srv(okt)[50:])),
			msgs: want(invite, ringing, ok), counts: c("requests", 1, "responses", 2, "encap/websocket", 3)},
		{name: "frames in the handshake's last segment", steps: steps(in(0, wsUpgrade[:40], wsUpgrade[40:]+invFrame[:30], invFrame[30:])),
			msgs: want(invite), counts: c("requests", 1, "encap/websocket", 1)},
		{name: "handshake in other case with LF only", steps: steps(
			in(0, "get /ws HTTP/1.1\nHost: b\nUPGRADE: WebSocket\nconnection: upgrade\n\n"), in(1, "http/1.1 101 OK\nupgrade:websocket\n\n"),
			in(0, cli(ack.text)), in(1, srv(okt))),
			msgs: want(ack, ok), counts: c("requests", 1, "responses", 1, "encap/websocket", 2)},
		{name: "plain HTTP is not WebSocket", steps: steps(in(0, string(http)), in(1, string(httpR)), in(0, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")),
			msgs: nil, counts: c("skip/not_sip", 3)},
		{name: "upgrade to another protocol", steps: steps(in(0, strings.Replace(wsUpgrade, "websocket", "h2c", 1), "\x00\x00\x12\x04\x00")),
			msgs: nil, counts: c("skip/not_sip", 2)},
		{name: "frames after plain HTTP", steps: steps(in(0, string(http)), in(1, string(httpR)), in(0, cli(ack.text))),
			msgs: want(ack), counts: c("skip/not_sip", 2, "requests", 1, "encap/websocket", 1)},
		{name: "joined mid-connection", noSYN: true, steps: steps(in(0, invFrame), in(1, srv(okt)), in(0, cli(ack.text))),
			msgs: want(invite, ok, ack), counts: c("requests", 2, "responses", 1, "encap/websocket", 3, "tcp_flows", 2)},
		{name: "joined inside a frame", noSYN: true, steps: steps(in(0, invFrame[300:], cli(ack.text)), in(1, srv(okt)[10:], srv(tinyResp.text))),
			msgs: want(ack, tinyResp), counts: c("requests", 1, "responses", 1, "encap/websocket", 2, "tcp_flows", 2, "skip/not_sip", 2)},
		{name: "joined at a fragmented message", noSYN: true, steps: in(0, frag, cli(ack.text)),
			msgs: want(invite, ack), counts: c("requests", 2, "encap/websocket", 2, "tcp_flows", 1)},
		{name: "joined at a continuation", noSYN: true, steps: in(0, wsFrame(wsCont, true, 0, inv), cli(ack.text)),
			msgs: want(ack), counts: c("requests", 1, "encap/websocket", 1, "tcp_flows", 1, "skip/not_sip", 1)},
		{name: "gap inside a frame", cfg: &gappy, steps: steps(handshake(), []step{
			at(0, len(wsUpgrade), invFrame[:100]), at(0, len(wsUpgrade)+200, invFrame[200:]),
			at(0, len(wsUpgrade)+len(invFrame), cli(ack.text)), at(0, len(wsUpgrade)+len(invFrame)+len(cli(ack.text)), cli(bye.text)),
			at(0, len(wsUpgrade)+len(invFrame)+len(cli(ack.text))+len(cli(bye.text)), cli(ack.text)),
		}), msgs: want(ack, bye, ack), counts: c("requests", 3, "encap/websocket", 3, "tcp_out_of_order", 4, "tcp_gaps", 1, "skip/not_sip", 1)},
		{name: "plain SIP on the same port stays SIP", steps: in(0, inv, ack.text),
			msgs: want(invite, ack), counts: c("requests", 2)},
	}
}

func TestWebSocket(t *testing.T) {
	for _, tc := range wsCases() {
		t.Run(tc.name, func(t *testing.T) {
			d, st, rec := newDecoder(t, tc.cfg)
			run(t, d, 1000, tc.noSYN, tc.steps)
			wc := tc.counts
			if !tc.noSYN {
				wc["tcp_flows"] = 2
			}
			if g := wsCounts(st); !sameCounts(g, wc) {
				t.Errorf("counts = %v, want %v", g, wc)
			}
			if !sameMsgs(rec.msgs, tc.msgs) {
				t.Errorf("messages:\n got %v\nwant %v", rec.msgs, tc.msgs)
			}
		})
	}
}

// TestWebSocketOrigin checks that Origin.Payload is the unmasked message
// and the addresses are the flow's.
func TestWebSocketOrigin(t *testing.T) {
	var payloads, srcs []string
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, _ *sip.Message) {
		payloads = append(payloads, string(o.Payload))
		srcs = append(srcs, o.Src.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	frag := wsFrame(wsText&wsNoFIN, true, 0, invite.text[:77]) + wsFrame(wsCont, true, 0, invite.text[77:])
	run(t, d, 5, false, steps(handshake(), in(0, frag, cli(ack.text)), in(1, srv(ok.text))))
	want := []string{invite.text, ack.text, ok.text}
	wantSrc := []string{alice4.String(), alice4.String(), bob4.String()}
	if len(payloads) != len(want) {
		t.Fatalf("%d messages, want %d", len(payloads), len(want))
	}
	for i := range want {
		if payloads[i] != want[i] {
			t.Errorf("payload %d:\n got %q\nwant %q", i, payloads[i], want[i])
		}
		if srcs[i] != wantSrc[i] {
			t.Errorf("source %d = %s, want %s", i, srcs[i], wantSrc[i])
		}
	}
}

// warmWS returns a decoder with a WebSocket flow past its handshake in the
// direction from src, and a frame carrying msg (masked when mask) whose
// sequence number the caller advances by len(frame payload) before each use.
func warmWS(tb testing.TB, c *counter, mask bool, msg string) (d *decode.Decoder, frame []byte, seq uint32, n int) {
	tb.Helper()
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), c.handle)
	if err != nil {
		tb.Fatal(err)
	}
	src, dst, hs := alice4, bob4, wsUpgrade
	if !mask {
		src, dst, hs = bob4, alice4, wsSwitch
	}
	conn := newConn(tb, ethernet, src, dst, 1000)
	lt, f := conn.syn()
	d.Packet(lt, f, 0, len(f))
	lt, f = conn.data(hs)
	d.Packet(lt, f, 0, len(f))
	payload := wsFrame(wsText, mask, 0, msg)
	for range 4 {
		lt, f = conn.data(payload)
		d.Packet(lt, f, 0, len(f))
	}
	_, frame = conn.at(conn.seq, fACK|fPSH, []byte(payload))
	return d, frame, conn.seq, len(payload)
}

func TestWebSocketZeroAllocs(t *testing.T) {
	for _, mask := range []bool{true, false} {
		name := map[bool]string{true: "masked client frames", false: "unmasked server frames"}[mask]
		t.Run(name, func(t *testing.T) {
			c := new(counter)
			d, f, seq, n := warmWS(t, c, mask, ok.text)
			before := c.responses
			allocs := testing.AllocsPerRun(1000, func() {
				binary.BigEndian.PutUint32(f[tcpSeqOffset:], seq)
				seq += uint32(n)
				d.Packet(layers.LinkTypeEthernet, f, 1, len(f))
			})
			if allocs != 0 {
				t.Errorf("allocs per segment = %v, want 0", allocs)
			}
			if c.responses-before != 1001 {
				t.Errorf("responses = %d, want 1001", c.responses-before)
			}
		})
	}
}

// BenchmarkDecoderWebSocket decodes one in-order Ethernet/IPv4/TCP segment
// carrying one WebSocket frame with a whole 200 OK, masked as a client
// sends it (copied and unmasked) or unmasked as a server sends it (handed
// on in place).
func BenchmarkDecoderWebSocket(b *testing.B) {
	for _, mask := range []bool{true, false} {
		b.Run(map[bool]string{true: "masked", false: "unmasked"}[mask], func(b *testing.B) {
			c := new(counter)
			d, f, seq, n := warmWS(b, c, mask, ok.text)
			b.SetBytes(int64(len(f)))
			b.ReportAllocs()
			for b.Loop() {
				binary.BigEndian.PutUint32(f[tcpSeqOffset:], seq)
				seq += uint32(n)
				d.Packet(layers.LinkTypeEthernet, f, 1, len(f))
			}
			if c.responses == 0 {
				b.Fatal("no response")
			}
		})
	}
}

// wsFuzzRun decodes a handshake in both directions and then stream as the
// client's frames, cut into segments of size bytes, and returns the stats
// and messages.
func wsFuzzRun(stream []byte, size int, mid bool) (*decode.Stats, []got) {
	st, rec := new(decode.Stats), new(recorder)
	cfg := decode.DefaultConfig()
	cfg.TCP.MaxBufferBytes = 1024
	d, err := decode.New(cfg, st, rec.handle)
	if err != nil {
		panic(err)
	}
	ts := int64(1e18)
	seq := [2]uint32{0xffffff00, 0x10}
	send := func(dir int, flags uint8, p []byte) {
		d.Packet(layers.LinkTypeRaw, rawTCP(dir == 1, seq[dir], flags, p), ts, 40+len(p))
		seq[dir] += uint32(len(p))
		if flags&fzSYN != 0 {
			seq[dir]++
		}
	}
	if !mid {
		send(0, fzSYN, nil)
		send(1, fzSYN, nil)
		send(0, 0, []byte(wsUpgrade))
		send(1, 0, []byte(wsSwitch))
	}
	for len(stream) > 0 {
		n := min(size, len(stream))
		send(0, 0, stream[:n])
		stream = stream[n:]
	}
	return st, rec.msgs
}

// wsFuzzMax bounds the stream of FuzzWebSocket, which fits one segment.
const wsFuzzMax = 16 << 10

// FuzzWebSocket feeds a client's WebSocket stream after the handshake,
// whole and cut into segments. Beyond not crashing and counting every
// message handed on, the cut must not matter while the framing holds: with
// no websocket_frame error both runs find the same messages and counts.
func FuzzWebSocket(f *testing.F) {
	for _, tc := range wsCases() {
		var s []byte
		for _, st := range tc.steps {
			if st.dir == 0 && st.data != wsUpgrade {
				s = append(s, st.data...)
			}
		}
		if len(s) > wsFuzzMax {
			continue // the 70 kB message: the fuzzer mutates big inputs slowly
		}
		f.Add(uint8(7), false, s)
		f.Add(uint8(0), true, s)
	}
	f.Fuzz(func(t *testing.T, size uint8, mid bool, stream []byte) {
		if len(stream) > wsFuzzMax {
			return
		}
		whole, wholeMsgs := wsFuzzRun(stream, wsFuzzMax, mid)
		cut, cutMsgs := wsFuzzRun(stream, int(size)+1, mid)
		for _, st := range []*decode.Stats{whole, cut} {
			if n := st.Requests.Load() + st.Responses.Load(); n > uint64(len(stream)) {
				t.Fatalf("%d messages from %d bytes", n, len(stream))
			}
		}
		if got := whole.Requests.Load() + whole.Responses.Load(); got != uint64(len(wholeMsgs)) {
			t.Fatalf("requests+responses = %d, handler called %d times", got, len(wholeMsgs))
		}
		if mid || whole.ParseError(decode.ErrWebSocketFrame) != 0 || cut.ParseError(decode.ErrWebSocketFrame) != 0 {
			return
		}
		if !sameMsgs(wholeMsgs, cutMsgs) {
			t.Fatalf("messages differ with %d-byte segments:\nwhole %v\n  cut %v", int(size)+1, wholeMsgs, cutMsgs)
		}
		if w, c := wsCounts(whole), wsCounts(cut); !sameCounts(w, c) {
			t.Fatalf("counts differ with %d-byte segments:\nwhole %v\n  cut %v", int(size)+1, w, c)
		}
	})
}

// wsPcap is a real SIP-over-WebSocket exchange between sipgo user agents,
// captured on lo by TestWebSocketSipgoLive -update-ws.
const wsPcap = "testdata/sip-websocket.pcap"

// The mix the sipgo UAC sends, and what the UAS answers.
const (
	wsOptions  = 10 // OPTIONS → 200
	wsInvites  = 5  // INVITE → 100 Trying? (sipgo's choice), 486, ACK by the transaction layer
	wsMessages = 3  // MESSAGE with a 1.5 kB body → 200 (16-bit frame lengths)
	wsRegister = 1  // REGISTER → 401
)

// wsExchangeWant is what a capture of the exchange holds: requests by
// method, responses by code and CSeq method.
func wsExchangeWant() map[got]int {
	return map[got]int{
		{0, "OPTIONS"}: wsOptions, {200, "OPTIONS"}: wsOptions,
		{0, "INVITE"}: wsInvites, {486, "INVITE"}: wsInvites, {0, "ACK"}: wsInvites,
		{0, "MESSAGE"}: wsMessages, {200, "MESSAGE"}: wsMessages,
		{0, "REGISTER"}: wsRegister, {401, "REGISTER"}: wsRegister,
	}
}

// countGot counts messages by kind.
func countGot(ms []got) map[got]int {
	c := map[got]int{}
	for _, m := range ms {
		c[m]++
	}
	return c
}

func sameGotCounts(a, b map[got]int) bool {
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

// checkWSStats checks that a decoder that saw the exchange msgs counted
// one WebSocket message per SIP message and nothing malformed or skipped
// as not SIP.
func checkWSStats(t *testing.T, what string, st *decode.Stats, msgs map[got]int) {
	t.Helper()
	total := 0
	for _, n := range msgs {
		total += n
	}
	c := wsCounts(st)
	if n := c["encap/websocket"]; n != uint64(total) {
		t.Errorf("%s: %d WebSocket messages, want %d", what, n, total)
	}
	for k, n := range c {
		if strings.HasPrefix(k, "error/") || k == "skip/not_sip" || k == "skip/websocket_compressed" {
			t.Errorf("%s: %s = %d, want 0", what, k, n)
		}
	}
}

// TestWebSocketCapturedExchange replays the real SIP-over-WebSocket
// exchange between sipgo user agents in testdata/sip-websocket.pcap
// (recorded by TestWebSocketSipgoLive -update-ws) through ReadFile and a
// decoder, and checks the exact counts.
func TestWebSocketCapturedExchange(t *testing.T) {
	st, rec, err := readFile(t, context.Background(), input.FileConfig{Path: wsPcap}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := wsExchangeWant()
	if g := countGot(rec.msgs); !sameGotCounts(g, w) {
		t.Errorf("decoder found %v, want %v", g, w)
	}
	checkWSStats(t, wsPcap, st, w)
}
