package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// wsCIDR holds the addresses of the WebSocket end-to-end test; the capture
// package's live WebSocket test uses 127.0.1.0/25.
const wsCIDR = "127.0.1.128/25"

// TestLiveCaptureWebSocket runs the real binary capturing on lo while a
// sipgo UAC sends a known mix over SIP over WebSocket (RFC 7118) to a sipgo
// UAS: 10 OPTIONS → 200, 5 INVITE → 486 (ACKed by the transaction layer),
// 3 MESSAGE → 200, 1 REGISTER → 401. It checks that sip_responses_total and
// sip_requests_total grew by exactly what the two agents read from their
// WebSocket connections, that every one came through
// sip_exporter_packets_encapsulated_total{encapsulation="websocket"}, and
// lints the exposition with promtool.
func TestLiveCaptureWebSocket(t *testing.T) {
	requireLive(t, "promtool")
	start := time.Now()
	bin := buildExporter(t)
	_, wsNet, err := net.ParseCIDR(wsCIDR)
	if err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, bin,
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, wsNet))
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	wsMessages := func() float64 {
		_, mfs, err := e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := gaugeValue(mfs, "sip_exporter_packets_encapsulated_total", map[string]string{"source": liveInterface, "encapsulation": "websocket"})
		return v
	}
	_, before := e.settle(t, 5*time.Second)
	wsBefore := wsMessages()

	want := runSipgoWS(t, "127.0.1.130", "127.0.1.131")
	raw, after := e.settle(t, 5*time.Second)
	got := after.sub(before)
	table, ok := compareCounts(want, got)
	if !ok {
		t.Errorf("exporter counts differ from what the sipgo agents read (want = read by UAS and UAC, got = counter delta):\n%s", table)
	} else {
		t.Logf("exporter counts equal what the sipgo agents read:\n%s", table)
	}
	total := int64(0)
	for _, n := range want.responses {
		total += n
	}
	for _, n := range want.requests {
		total += n
	}
	if n := wsMessages() - wsBefore; n != float64(total) {
		t.Errorf("packets_encapsulated_total{encapsulation=\"websocket\"} grew by %v, want %d", n, total)
	}
	if total != 2*(10+5+3+1)+5 {
		t.Errorf("the agents read %d messages, want %d", total, 2*(10+5+3+1)+5)
	}
	checkResponseLabels(t, raw)
	checkPromtool(t, raw)
	t.Logf("websocket live test took %s", time.Since(start).Round(time.Millisecond))
}

// wsOracle counts every SIP message a sipgo user agent reads from its
// WebSocket connections, parsed by sipgo.
type wsOracle struct {
	mu     sync.Mutex
	parser *sip.Parser
	counts sipCounts
	bad    int
}

func newWSOracle() *wsOracle {
	return &wsOracle{parser: sip.NewParser(), counts: newSIPCounts()}
}

func (o *wsOracle) filter(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m, err := o.parser.ParseSIP(data)
	switch m := m.(type) {
	case *sip.Request:
		o.counts.requests[string(m.Method)]++
	case *sip.Response:
		o.counts.responses[responseKey{code: fmt.Sprint(m.StatusCode), method: string(m.CSeq().MethodName)}]++
	default:
		if err != nil && len(strings.Trim(string(data), "\r\n")) > 0 {
			o.bad++
		}
	}
	return data, nil
}

// runSipgoWS runs a sipgo UAS serving SIP over WebSocket on uasIP and a
// sipgo UAC on uacIP sending the mix, and returns what the two read.
func runSipgoWS(t *testing.T, uasIP, uacIP string) sipCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uasOracle, uacOracle := newWSOracle(), newWSOracle()

	uasUA, err := sipgo.NewUA(sipgo.WithUserAgent("uas"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(uasOracle.filter)))
	if err != nil {
		t.Fatal(err)
	}
	defer uasUA.Close()
	srv, err := sipgo.NewServer(uasUA)
	if err != nil {
		t.Fatal(err)
	}
	reply := func(code int, reason string) sipgo.RequestHandler {
		return func(req *sip.Request, tx sip.ServerTransaction) {
			res := sip.NewResponseFromRequest(req, code, reason, nil)
			if code == 401 {
				res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="example.com", nonce="ea9c8e88df84f1ce", algorithm=MD5, qop="auth"`))
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
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
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
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(uacOracle.filter)))
	if err != nil {
		t.Fatal(err)
	}
	defer uacUA.Close()
	client, err := sipgo.NewClient(uacUA, sipgo.WithClientHostname(uacIP), sipgo.WithClientConnectionAddr(uacIP+":0"))
	if err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("sip:uas@%s;transport=ws", l.Addr())
	send := func(method sip.RequestMethod, body []byte, wantCode int) {
		var uri sip.Uri
		if err := sip.ParseUri(target, &uri); err != nil {
			t.Fatal(err)
		}
		req := sip.NewRequest(method, uri)
		req.SetTransport("WS")
		if body != nil {
			req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
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
	for range 10 {
		send(sip.OPTIONS, nil, 200)
	}
	for range 5 {
		send(sip.INVITE, nil, 486)
	}
	for i := range 3 {
		send(sip.MESSAGE, []byte(strings.Repeat(fmt.Sprintf("message %d. ", i), 128)), 200)
	}
	send(sip.REGISTER, nil, 401)
	// The ACKs of the 486s go out from the transaction layer: wait until
	// the UAS has read them all.
	deadline := time.Now().Add(5 * time.Second)
	for {
		uasOracle.mu.Lock()
		acks := uasOracle.counts.requests["ACK"]
		uasOracle.mu.Unlock()
		if acks >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	all := newSIPCounts()
	for _, o := range []*wsOracle{uasOracle, uacOracle} {
		o.mu.Lock()
		all.add(o.counts)
		if o.bad != 0 {
			t.Errorf("%d reads that sipgo could not parse", o.bad)
		}
		o.mu.Unlock()
	}
	return all
}
