package decode_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// shardCollector exports the Stats of one decoder, or of several as the
// shards of one source.
type shardCollector struct{ shards []*decode.Stats }

func (c shardCollector) Describe(ch chan<- *prometheus.Desc) { decode.Describe(ch) }
func (c shardCollector) Collect(ch chan<- prometheus.Metric) {
	sum := new(decode.Stats)
	for _, s := range c.shards {
		s.AddTo(sum)
	}
	sum.Collect(ch, "eth0")
}

// TestCollectShards decodes the same units (a UDP message, a fragmented
// datagram, a TCP flow with a message split over two segments, a datagram
// left incomplete) once through one decoder and once spread over three
// decoders, each with its own Stats, as the capture workers of one
// interface decode, and checks that the shards added up (Stats.AddTo, as
// a scrape of the interface does) give exactly the single decoder's
// exposition: counters and gauges (TCP flows, datagrams being
// reassembled) are sums.
func TestCollectShards(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var units [][]packet
	for _, f := range corpusFrames(t) {
		units = append(units, []packet{f})
	}
	for i := range 5 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}), 5060)
		units = append(units, ethAt(t, t0, fragments(t, udpPacket(t, src, bob4, []byte(inviteText)), 512, uint32(i))...))
		msg := []byte(inviteText)
		half := len(msg) / 2
		units = append(units, ethAt(t, t0,
			tcpPacket(t, src, bob4, 1000, fSYN, nil),
			tcpPacket(t, src, bob4, 1001, fACK|fPSH, msg[:half]),
			tcpPacket(t, src, bob4, 1001+uint32(half), fACK|fPSH, msg[half:])))
	}
	incomplete := fragments(t, udpPacket(t, alice4, bob4, []byte(inviteText)), 512, 99)
	units = append(units, ethAt(t, t0, incomplete[0]), []packet{pk(layers.LinkType(250), []byte{1, 2, 3})})

	one := new(decode.Stats)
	shards := []*decode.Stats{new(decode.Stats), new(decode.Stats), new(decode.Stats)}
	d := newStatsDecoder(t, one)
	ds := make([]*decode.Decoder, len(shards))
	for i, s := range shards {
		ds[i] = newStatsDecoder(t, s)
	}
	for i, u := range units {
		feed(d, u...)
		feed(ds[i%len(ds)], u...)
	}
	want, got := exposition(t, shardCollector{[]*decode.Stats{one}}), exposition(t, shardCollector{shards})
	if !bytes.Equal(got, want) {
		t.Errorf("three shards collected together differ from one decoder:\n got:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range []string{
		`sip_exporter_packets_received_total{source="eth0"} `,
		`sip_exporter_ip_reassembly_datagrams{source="eth0"} 1`,
		`sip_exporter_tcp_flows{source="eth0"} 5`,
		`sip_exporter_ip_datagrams_reassembled_total{family="ipv4",source="eth0"} 5`,
	} {
		if !strings.Contains(string(want), line) {
			t.Errorf("exposition has no %q: the test decodes too little", line)
		}
	}
	for i, s := range shards {
		if s.Packets.Load() == 0 {
			t.Errorf("shard %d decoded no packet", i)
		}
	}
}

// exposition gathers c through a pedantic registry, in the text format.
func exposition(tb testing.TB, c prometheus.Collector) []byte {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			tb.Fatal(err)
		}
	}
	return b.Bytes()
}

func newStatsDecoder(tb testing.TB, st *decode.Stats) *decode.Decoder {
	tb.Helper()
	d, err := decode.New(decode.DefaultConfig(), st, func(*decode.Origin, *sip.Message) {})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// TestConfigSplit checks the shares of the limits that decoders splitting
// one source's configuration get, and that each share is a valid
// configuration.
func TestConfigSplit(t *testing.T) {
	def := decode.DefaultConfig()
	small := def
	small.TCP.MaxFlows, small.TCP.MaxMemoryBytes, small.Fragments.MaxDatagrams = 3, 4*int64(def.TCP.MaxBufferBytes), 2
	off := def
	off.Fragments.MaxDatagrams = 0
	for _, tc := range []struct {
		name             string
		cfg              decode.Config
		n                int
		flows, datagrams int
		memory           int64
	}{
		{"one", def, 1, def.TCP.MaxFlows, def.Fragments.MaxDatagrams, def.TCP.MaxMemoryBytes},
		{"defaults by 8", def, 8, def.TCP.MaxFlows / 8, def.Fragments.MaxDatagrams / 8, def.TCP.MaxMemoryBytes / 8},
		{"defaults by 3, rounded down", def, 3, 21845, 1365, 22369621},
		{"least values kept", small, 8, 1, 1, 4 * int64(def.TCP.MaxBufferBytes)},
		{"reassembly off stays off", off, 4, def.TCP.MaxFlows / 4, 0, def.TCP.MaxMemoryBytes / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg.Split(tc.n)
			if c.TCP.MaxFlows != tc.flows || c.Fragments.MaxDatagrams != tc.datagrams || c.TCP.MaxMemoryBytes != tc.memory {
				t.Errorf("Split(%d): %d flows, %d datagrams, %d bytes; want %d, %d, %d", tc.n,
					c.TCP.MaxFlows, c.Fragments.MaxDatagrams, c.TCP.MaxMemoryBytes, tc.flows, tc.datagrams, tc.memory)
			}
			if c.TCP.MaxBufferBytes != tc.cfg.TCP.MaxBufferBytes || c.TCP.FlowTimeout != tc.cfg.TCP.FlowTimeout ||
				c.Fragments.Timeout != tc.cfg.Fragments.Timeout || c.Fragments.MaxBytes != tc.cfg.Fragments.MaxBytes {
				t.Errorf("Split(%d) changed a per-flow or per-datagram bound or a timeout", tc.n)
			}
			if _, err := decode.New(c, new(decode.Stats), func(*decode.Origin, *sip.Message) {}); err != nil {
				t.Errorf("Split(%d) is not a valid configuration: %v", tc.n, err)
			}
		})
	}
}
