package decode_test

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// counter is a handler that does not allocate.
type counter struct{ requests, responses int }

func (c *counter) handle(_ *decode.Origin, m *sip.Message) {
	if m.Response {
		c.responses++
	} else {
		c.requests++
	}
}

// tcpSeqOffset is where the sequence number sits in an Ethernet/IPv4/TCP
// frame without IP options.
const tcpSeqOffset = 14 + 20 + 4

// warmTCP returns a decoder with an established flow and a frame carrying
// msg whose sequence number the caller advances by len(msg) before each use.
func warmTCP(tb testing.TB, c *counter, msg string) (d *decode.Decoder, frame []byte, seq uint32) {
	tb.Helper()
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), c.handle)
	if err != nil {
		tb.Fatal(err)
	}
	conn := newConn(tb, ethernet, alice4, bob4, 1000)
	lt, f := conn.syn()
	d.Packet(lt, f, 0, len(f))
	for range 4 {
		lt, f = conn.data(msg)
		d.Packet(lt, f, 0, len(f))
	}
	_, frame = conn.at(conn.seq, fACK|fPSH, []byte(msg))
	return d, frame, conn.seq
}

func TestPacketZeroAllocs(t *testing.T) {
	t.Run("udp", func(t *testing.T) {
		c := new(counter)
		d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), c.handle)
		if err != nil {
			t.Fatal(err)
		}
		f := ether(t, udpPacket(t, bob4, alice4, []byte(ok.text)))
		if n := testing.AllocsPerRun(1000, func() { d.Packet(layers.LinkTypeEthernet, f, 1, len(f)) }); n != 0 {
			t.Errorf("allocs per packet = %v, want 0", n)
		}
		if c.responses == 0 {
			t.Error("no response seen")
		}
	})
	t.Run("tcp in order", func(t *testing.T) {
		c := new(counter)
		d, f, seq := warmTCP(t, c, ok.text)
		before := c.responses
		n := testing.AllocsPerRun(1000, func() {
			binary.BigEndian.PutUint32(f[tcpSeqOffset:], seq)
			seq += uint32(len(ok.text))
			d.Packet(layers.LinkTypeEthernet, f, 1, len(f))
		})
		if n != 0 {
			t.Errorf("allocs per segment = %v, want 0", n)
		}
		if c.responses-before != 1001 {
			t.Errorf("responses = %d, want 1001", c.responses-before)
		}
	})
}
