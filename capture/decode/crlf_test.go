package decode_test

import (
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// crlfCases are message payloads with CR and LF bytes before (or instead
// of) a start line, as some user agents glue a keep-alive to the next
// message (RFC 3261 §7.5 lets a receiver ignore them), with what they
// count. Before, a message after CRLF was skipped as not SIP (reason
// not_sip).
var crlfCases = []struct {
	name    string
	payload string
	msgs    []got
	counts  map[string]uint64
}{
	{name: "CRLF CRLF before a request", payload: "\r\n\r\n" + invite.text,
		msgs: want(invite), counts: map[string]uint64{"requests": 1}},
	{name: "CRLF before a response", payload: "\r\n" + ok.text,
		msgs: want(ok), counts: map[string]uint64{"responses": 1}},
	{name: "LF before a request", payload: "\n" + ack.text,
		msgs: want(ack), counts: map[string]uint64{"requests": 1}},
	{name: "keep-alive alone", payload: "\r\n\r\n",
		counts: map[string]uint64{"skip/keepalive": 1}},
	{name: "one CRLF alone", payload: "\r\n",
		counts: map[string]uint64{"skip/keepalive": 1}},
	{name: "CRLF before something else", payload: "\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		counts: map[string]uint64{"skip/not_sip": 1}},
	{name: "CRLF before a status code out of range", payload: "\r\nSIP/2.0 999 Odd\r\nCSeq: 1 INVITE\r\n\r\n",
		counts: map[string]uint64{"error/status_code": 1}},
	{name: "a request as it comes", payload: invite.text,
		msgs: want(invite), counts: map[string]uint64{"requests": 1}},
}

// checkCRLF checks what one crlfCases case counted: messages, counters
// (besides those of the transport, dropped from got first), and that the
// payload handed on is the message without what came before it.
func checkCRLF(t *testing.T, payload string, wantMsgs []got, wantCounts, gotCounts map[string]uint64, rec *payloadRecorder) {
	t.Helper()
	if !sameCounts(gotCounts, wantCounts) {
		t.Errorf("counts = %v, want %v", gotCounts, wantCounts)
	}
	if !sameMsgs(rec.msgs, wantMsgs) {
		t.Errorf("messages = %v, want %v", rec.msgs, wantMsgs)
	}
	for _, n := range rec.payloads {
		if w := len(strings.TrimLeft(payload, "\r\n")); n != w {
			t.Errorf("payload handed on = %d bytes, want %d (the message)", n, w)
		}
	}
}

// newPayloadDecoder returns a decoder with the defaults recording into a
// payloadRecorder.
func newPayloadDecoder(t *testing.T) (*decode.Decoder, *decode.Stats, *payloadRecorder) {
	t.Helper()
	st, rec := new(decode.Stats), new(payloadRecorder)
	d, err := decode.New(decode.DefaultConfig(), st, rec.handle)
	if err != nil {
		t.Fatal(err)
	}
	return d, st, rec
}

// TestDatagramCRLF: CR and LF bytes before the start line of a UDP
// datagram, an SCTP user message or a WebSocket message are dropped, as
// on a TCP stream; a payload of nothing else is a keep-alive.
func TestDatagramCRLF(t *testing.T) {
	for _, tc := range crlfCases {
		t.Run("udp/"+tc.name, func(t *testing.T) {
			d, st, rec := newPayloadDecoder(t)
			f := ether(t, udpPacket(t, alice4, bob4, []byte(tc.payload)))
			d.Packet(layers.LinkTypeEthernet, f, 0, len(f))
			checkCRLF(t, tc.payload, tc.msgs, tc.counts, counts(st), rec)
		})
		t.Run("sctp/"+tc.name, func(t *testing.T) {
			d, st, rec := newPayloadDecoder(t)
			f := ether(t, sctpPacket(t, alice4, bob4, whole(tc.payload)))
			d.Packet(layers.LinkTypeEthernet, f, 0, len(f))
			checkCRLF(t, tc.payload, tc.msgs, tc.counts, counts(st), rec)
		})
		for _, mid := range []bool{false, true} {
			name := "websocket/"
			if mid {
				name = "websocket joined mid-connection/"
			}
			t.Run(name+tc.name, func(t *testing.T) {
				if mid && len(tc.msgs) == 0 {
					t.Skip("joined mid-connection, only a frame carrying SIP shows WebSocket")
				}
				d, st, rec := newPayloadDecoder(t)
				c := newConn(t, ethernet, alice4, bob4, 1000)
				if !mid {
					feed(d, pk(c.syn()), pk(c.data(wsUpgrade)))
				}
				feed(d, pk(c.data(cli(tc.payload))))
				g := wsCounts(st)
				if g["encap/websocket"] != 1 {
					t.Errorf("websocket messages = %d, want 1", g["encap/websocket"])
				}
				delete(g, "encap/websocket")
				delete(g, "tcp_flows")
				checkCRLF(t, tc.payload, tc.msgs, tc.counts, g, rec)
			})
		}
	}
}
