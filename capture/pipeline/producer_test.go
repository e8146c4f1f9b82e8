package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/hep"
	"github.com/sip-exporter/sip_exporter/capture/merge"
)

// TestProducerHEPAllocs: the path of a HEP listener's datagram into the
// shards, decode, classify and push into a live input with the batch's
// time of receipt, allocates nothing once the node and its clock have been
// seen, with one shard and with four.
func TestProducerHEPAllocs(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprint(shards), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Shards = shards
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			dc := cfg.DecoderConfig()
			dc.HEP.Decapsulate = true
			pr := p.NewProducer(context.Background(), p.Source("udp://:9060"), merge.Live, 1<<12, dc, new(decode.Stats), p.SourceNode(""))
			pkts := make([][]byte, 8)
			for i := range pkts {
				msg := fmt.Sprintf("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK%d\r\nFrom: <sip:a@example.com>;tag=f%d\r\nTo: <sip:b@example.com>\r\nCall-ID: c%d@example.com\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", i, i, i)
				pkts[i], err = hep.AppendV3(nil, &hep.Packet{IPFamily: hep.FamilyIPv4, IPProtocol: 17,
					SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2}, SrcPort: 5060, DstPort: 5060,
					TimestampSeconds: uint32(time.Now().Unix()), ProtocolType: hep.ProtocolSIP, CaptureAgentID: 7,
					NodeName: []byte("sbc"), Payload: []byte(msg)})
				if err != nil {
					t.Fatal(err)
				}
			}
			d := pr.Decoder()
			n := 0
			batch := func() {
				d.SetReceived(time.Now().UnixNano())
				for _, b := range pkts {
					d.HEP(b)
					n++
				}
			}
			batch()
			if a := testing.AllocsPerRun(100, batch); a != 0 {
				t.Errorf("%v allocations per batch of %d datagrams, want 0", a, len(pkts))
			}
			if dropped := p.Source("udp://:9060").Dropped(); dropped != 0 {
				t.Errorf("%d of %d messages dropped", dropped, n)
			}
		})
	}
}
