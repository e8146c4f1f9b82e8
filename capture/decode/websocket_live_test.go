//go:build linux

package decode_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgosip "github.com/emiago/sipgo/sip"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

var updateWS = flag.Bool("update-ws", false, "capture a new testdata/sip-websocket.pcap from sipgo over WebSocket (needs root)")

// wsLiveNet holds the addresses of the live WebSocket test: the UAS on .10,
// the UAC on .11. The end-to-end test of the binary uses the other half of
// 127.0.1.0/24.
var wsLiveNet = netip.MustParsePrefix("127.0.1.0/25")

// wsOracle counts every SIP message a sipgo user agent reads from its
// WebSocket connections, parsed by sipgo: with both agents' oracles it is
// everything on the wire.
type wsOracle struct {
	mu     sync.Mutex
	parser *sipgosip.Parser
	msgs   map[got]int
	bad    int
}

func newWSOracle() *wsOracle {
	return &wsOracle{parser: sipgosip.NewParser(), msgs: map[got]int{}}
}

func (o *wsOracle) filter(_ sipgosip.TransportReadProps, data []byte) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m, err := o.parser.ParseSIP(data)
	switch m := m.(type) {
	case *sipgosip.Request:
		o.msgs[got{0, string(m.Method)}]++
	case *sipgosip.Response:
		o.msgs[got{m.StatusCode, string(m.CSeq().MethodName)}]++
	default:
		if err != nil && len(strings.Trim(string(data), "\r\n")) > 0 {
			o.bad++
		}
	}
	return data, nil
}

// runSipgoWS runs a sipgo UAS serving SIP over WebSocket on uasIP and a
// sipgo UAC on uacIP sending the mix of wsExchangeWant, and returns what
// the two read (their oracles merged).
func runSipgoWS(t *testing.T, uasIP, uacIP string) map[got]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uasOracle, uacOracle := newWSOracle(), newWSOracle()

	uasUA, err := sipgo.NewUA(sipgo.WithUserAgent("uas"),
		sipgo.WithUserAgentTransportLayerOptions(sipgosip.WithTransportLayerReadFilter(uasOracle.filter)))
	if err != nil {
		t.Fatal(err)
	}
	defer uasUA.Close()
	srv, err := sipgo.NewServer(uasUA)
	if err != nil {
		t.Fatal(err)
	}
	reply := func(code int, reason string) sipgo.RequestHandler {
		return func(req *sipgosip.Request, tx sipgosip.ServerTransaction) {
			res := sipgosip.NewResponseFromRequest(req, code, reason, nil)
			if code == 401 {
				res.AppendHeader(sipgosip.NewHeader("WWW-Authenticate", `Digest realm="example.com", nonce="ea9c8e88df84f1ce", algorithm=MD5, qop="auth"`))
			}
			if err := tx.Respond(res); err != nil {
				t.Errorf("respond %d to %s: %v", code, req.Method, err)
			}
		}
	}
	srv.OnOptions(reply(200, "OK"))
	srv.OnInvite(reply(486, "Busy Here"))
	srv.OnMessage(reply(200, "OK"))
	srv.OnRegister(reply(401, "Unauthorized"))
	srv.OnAck(func(*sipgosip.Request, sipgosip.ServerTransaction) {})
	l, err := net.Listen("tcp", net.JoinHostPort(uasIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeWS(l) }()
	defer func() {
		l.Close()
		if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve ws: %v", err)
		}
	}()

	uacUA, err := sipgo.NewUA(sipgo.WithUserAgent("uac"),
		sipgo.WithUserAgentTransportLayerOptions(sipgosip.WithTransportLayerReadFilter(uacOracle.filter)))
	if err != nil {
		t.Fatal(err)
	}
	defer uacUA.Close()
	client, err := sipgo.NewClient(uacUA, sipgo.WithClientHostname(uacIP), sipgo.WithClientConnectionAddr(uacIP+":0"))
	if err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("sip:uas@%s;transport=ws", l.Addr())
	send := func(method sipgosip.RequestMethod, body []byte, wantCode int) {
		var uri sipgosip.Uri
		if err := sipgosip.ParseUri(target, &uri); err != nil {
			t.Fatal(err)
		}
		req := sipgosip.NewRequest(method, uri)
		req.SetTransport("WS")
		if body != nil {
			req.AppendHeader(sipgosip.NewHeader("Content-Type", "text/plain"))
			req.SetBody(body)
		}
		res, err := client.Do(ctx, req)
		if err != nil {
			t.Fatalf("%s over ws: %v", method, err)
		}
		if res.StatusCode != wantCode {
			t.Fatalf("%s: response %d, want %d", method, res.StatusCode, wantCode)
		}
	}
	for range wsOptions {
		send(sipgosip.OPTIONS, nil, 200)
	}
	for range wsInvites {
		send(sipgosip.INVITE, nil, 486)
	}
	for i := range wsMessages {
		send(sipgosip.MESSAGE, []byte(strings.Repeat(fmt.Sprintf("message %d. ", i), 128)), 200)
	}
	for range wsRegister {
		send(sipgosip.REGISTER, nil, 401)
	}
	// The ACKs of the 486s go out from the transaction layer: wait until
	// the UAS has read them all.
	deadline := time.Now().Add(5 * time.Second)
	for {
		uasOracle.mu.Lock()
		acks := uasOracle.msgs[got{0, "ACK"}]
		uasOracle.mu.Unlock()
		if acks >= wsInvites || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	all := map[got]int{}
	for _, o := range []*wsOracle{uasOracle, uacOracle} {
		o.mu.Lock()
		for k, v := range o.msgs {
			all[k] += v
		}
		if o.bad != 0 {
			t.Errorf("%d reads that sipgo could not parse", o.bad)
		}
		o.mu.Unlock()
	}
	return all
}

// netFilter returns a classic BPF program keeping the Ethernet/IPv4 frames
// whose source and destination are both in p.
func netFilter(t *testing.T, p netip.Prefix) []bpf.Instruction {
	t.Helper()
	ip := p.Masked().Addr().As4()
	mask := uint32(0xffffffff) << (32 - p.Bits())
	val := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800, SkipTrue: 7},
		bpf.LoadAbsolute{Off: 14 + 12, Size: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: val, SkipTrue: 4},
		bpf.LoadAbsolute{Off: 14 + 16, Size: 4},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: val, SkipTrue: 1},
		bpf.RetConstant{Val: 1 << 18},
		bpf.RetConstant{Val: 0},
	}
}

// inNet reports whether an Ethernet/IPv4 frame has both addresses in p:
// the socket may see other traffic before its filter is attached.
func inNet(frame []byte, p netip.Prefix) bool {
	if len(frame) < 34 || frame[12] != 0x08 || frame[13] != 0x00 {
		return false
	}
	return p.Contains(netip.AddrFrom4([4]byte(frame[26:30]))) && p.Contains(netip.AddrFrom4([4]byte(frame[30:34])))
}

// record captures the frames on lo within p (each once: the copies lo
// hands over as sent are dropped) until ctx is done.
func record(t *testing.T, ctx context.Context, p netip.Prefix, ready chan<- struct{}) ([]packet, error) {
	tp, err := afpacket.NewTPacket(afpacket.OptInterface("lo"), afpacket.OptPollTimeout(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer tp.Close()
	prog, err := bpf.Assemble(append([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 4 /* PACKET_OUTGOING */, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
	}, netFilter(t, p)...))
	if err != nil {
		return nil, err
	}
	if err := tp.SetBPF(prog); err != nil {
		return nil, err
	}
	close(ready)
	var frames []packet
	for ctx.Err() == nil {
		data, ci, err := tp.ReadPacketData()
		switch {
		case errors.Is(err, afpacket.ErrTimeout):
			continue
		case err != nil:
			return frames, err
		}
		if inNet(data, p) {
			frames = append(frames, packet{lt: layers.LinkTypeEthernet, data: data, ts: ci.Timestamp})
		}
	}
	return frames, nil
}

// requireRoot skips the test unless it runs as root, and fails it then
// under CI=true.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("live capture test needs root (AF_PACKET capture) (CI=true: never skipped)")
	}
	t.Skip("live capture test needs root (AF_PACKET capture)")
}

// TestWebSocketSipgoLive runs a real SIP-over-WebSocket exchange between
// sipgo user agents on lo, captures it with input.Live and checks that
// the decoder finds exactly what the two agents read. The same frames,
// recorded through a second socket, are replayed through a new decoder;
// with -update-ws they become testdata/sip-websocket.pcap.
func TestWebSocketSipgoLive(t *testing.T) {
	requireRoot(t)
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("live capture test skipped in -short mode")
	}
	uasIP, uacIP := "127.0.1.10", "127.0.1.11"

	filter, err := bpf.Assemble(netFilter(t, wsLiveNet))
	if err != nil {
		t.Fatal(err)
	}
	var liveMu sync.Mutex
	live := map[got]int{}
	st := new(decode.Stats)
	d, err := decode.New(decode.DefaultConfig(), st, func(o *decode.Origin, m *sip.Message) {
		if !wsLiveNet.Contains(o.Src.Addr()) || !wsLiveNet.Contains(o.Dst.Addr()) {
			return // before the filter was attached
		}
		liveMu.Lock()
		defer liveMu.Unlock()
		if m.Response {
			live[got{m.StatusCode, string(m.CSeqMethod)}]++
		} else {
			live[got{0, string(m.Method)}]++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	started := make(chan struct{})
	liveDone := make(chan error, 1)
	go func() {
		liveDone <- input.Live(ctx, input.LiveConfig{Interface: "lo", RingBytes: 8 << 20, Filter: filter}, []*decode.Decoder{d}, new(input.Stats), func() { close(started) })
	}()
	ready := make(chan struct{})
	var frames []packet
	recDone := make(chan error, 1)
	go func() {
		var err error
		frames, err = record(t, ctx, wsLiveNet, ready)
		recDone <- err
	}()
	for _, c := range []chan struct{}{started, ready} {
		select {
		case <-c:
		case err := <-liveDone:
			t.Fatalf("live capture: %v", err)
		case err := <-recDone:
			t.Fatalf("recorder: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("capture did not start in 10 s")
		}
	}

	oracle := runSipgoWS(t, uasIP, uacIP)
	if w := wsExchangeWant(); !sameGotCounts(oracle, w) {
		t.Errorf("sipgo read %v, want %v", oracle, w)
	}
	// Let the last frames through the ring (it hands blocks over at its
	// poll timeout), then stop both sockets.
	time.Sleep(700 * time.Millisecond)
	stop()
	if err := <-liveDone; err != nil {
		t.Fatalf("live capture: %v", err)
	}
	if err := <-recDone; err != nil {
		t.Fatalf("recorder: %v", err)
	}
	if !sameGotCounts(live, oracle) {
		t.Errorf("live decoder found %v, sipgo read %v", live, oracle)
	}
	checkWSStats(t, "live", st, oracle)

	// The recorded frames through a fresh decoder.
	rst, rec := decodeFrames(t, frames)
	if g := countGot(rec.msgs); !sameGotCounts(g, oracle) {
		t.Errorf("recorded frames: decoder found %v, sipgo read %v", g, oracle)
	}
	checkWSStats(t, "recorded", rst, oracle)
	t.Logf("%d frames recorded; sipgo read %v", len(frames), oracle)
	if *updateWS {
		if err := os.MkdirAll(filepath.Dir(wsPcap), 0o755); err != nil {
			t.Fatal(err)
		}
		writePcap(t, wsPcap, false, layers.LinkTypeEthernet, frames)
		t.Logf("wrote %s", wsPcap)
	}
}

// decodeFrames decodes frames with a new default decoder.
func decodeFrames(t *testing.T, frames []packet) (*decode.Stats, *recorder) {
	t.Helper()
	d, st, rec := newDecoder(t, nil)
	feed(d, frames...)
	return st, rec
}
