package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Kamailio side of TestHEPKamailio; see testdata/kamailio/README.md.
const (
	kamailioConfig = "testdata/kamailio/kamailio.cfg"
	kamailioIP     = "127.0.0.61" // Kamailio's SIP address (UDP and TCP, port sippPort)
	// kamailioCaptureID is the HEP capture agent ID Kamailio is started
	// with. Kamailio sends no node name chunk, so the exporter's node label
	// is this ID in decimal.
	kamailioCaptureID = 4711
)

// hepUAC is one SIPp UAC run against Kamailio: a scenario of testdata/sipp,
// the Request-URI user that picks Kamailio's answer, and how many calls.
type hepUAC struct {
	name     string
	scenario string
	service  string // sipp -s: the Request-URI user (the digest user for REGISTER)
	calls    int
}

// hepMix is the traffic of one HEP transport; every UAC runs at once from
// its own address 127.0.0.(62+i). The call counts differ so that a code
// counted under the wrong (code, method) cannot go unnoticed.
var hepMix = []hepUAC{
	{name: "invite-200", scenario: "uac_invite.xml", service: "ok", calls: 6},
	{name: "invite-486", scenario: "uac_invite.xml", service: "busy", calls: 5},
	{name: "invite-404", scenario: "uac_invite.xml", service: "notfound", calls: 4},
	{name: "invite-503", scenario: "uac_invite.xml", service: "unavail", calls: 3},
	{name: "invite-603", scenario: "uac_invite.xml", service: "decline", calls: 2},
	{name: "register", scenario: "uac_register.xml", service: "alice", calls: 4},
	{name: "options", scenario: "uac_options.xml", service: "options", calls: 7},
}

// TestHEPKamailio runs the real binary with only a HEP listener while a
// real Kamailio, answering SIPp's requests statelessly
// (testdata/kamailio/kamailio.cfg), mirrors every SIP message it receives
// or sends to it as HEPv3 with siptrace: once over UDP, then over TCP
// (duplicate_uri with ;transport=tcp). The exporter's sip_responses_total
// per (code, method) and sip_requests_total per method, summed over node,
// must equal what the SIPp UACs sent and received on the wire
// (retransmissions included, from their -trace_msg logs), every series
// that counted something must carry node="4711" (Kamailio's capture ID),
// and the listener must have received one HEP packet per SIP message and
// no undecodable one.
func TestHEPKamailio(t *testing.T) {
	requireLive(t, "kamailio", "sipp", "promtool")
	start := time.Now()
	bin := buildExporter(t)
	cfg, err := filepath.Abs(kamailioConfig)
	if err != nil {
		t.Fatal(err)
	}

	var exposition []byte
	for _, tc := range []struct {
		transport string
		args      []string // exporter flags besides --hep.listen-address
		uriParam  string   // appended to siptrace's duplicate_uri
	}{
		{transport: "udp"},
		{transport: "tcp", args: []string{"--hep.transport=tcp"}, uriParam: ";transport=tcp"},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			subStart := time.Now()
			// The UDP run leaves --hep.transport at its default, both, so
			// its port must be free for UDP and TCP.
			hepAddr := freeLocalAddr(t)
			if tc.transport == "udp" {
				hepAddr = freeLocalUDPAddr(t)
			}
			e := startExporter(t, bin, append([]string{"--hep.listen-address=" + hepAddr}, tc.args...)...)
			// The listener names its sources by transport and address.
			source := tc.transport + "://" + hepAddr
			if err := e.waitSourceUp(source, "hep", 15*time.Second); err != nil {
				t.Fatal(err)
			}
			k := startKamailio(t, "", cfg, kamailioIP, hepDefines("sip:"+hepAddr+tc.uriParam, kamailioCaptureID)...)
			if err := waitListening(k.cmd.Process.Pid, "udp", kamailioIP, sippPort, k.exited, 10*time.Second); err != nil {
				t.Fatalf("kamailio: %v", err)
			}

			want := runHEPMix(t, net.JoinHostPort(kamailioIP, strconv.Itoa(sippPort)))
			raw, got := e.settle(t, 5*time.Second)
			exposition = raw
			table, ok := compareCounts(want, got)
			if !ok {
				t.Errorf("exporter counts over HEP/%s differ from SIPp's (want = UAC requests sent and responses received, got = exporter, summed over node):\n%s", tc.transport, table)
			} else {
				t.Logf("exporter counts over HEP/%s equal SIPp's:\n%s", tc.transport, table)
			}
			checkHEPExposition(t, raw, source, want)
			t.Logf("HEP/%s run took %s", tc.transport, time.Since(subStart).Round(time.Millisecond))
		})
	}
	if exposition == nil {
		t.Fatal("no exposition scraped")
	}
	checkResponseLabels(t, exposition)
	checkPromtool(t, exposition)
	t.Logf("HEP test took %s", time.Since(start).Round(time.Millisecond))
}

// freeLocalUDPAddr returns 127.0.0.1:PORT with a port that was free for
// both UDP and TCP a moment ago.
func freeLocalUDPAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		l, err := net.Listen("tcp", addr)
		c.Close()
		if err != nil {
			continue
		}
		l.Close()
		return addr
	}
	t.Fatal("no port free for both UDP and TCP on 127.0.0.1")
	return ""
}

// checkHEPExposition checks what only the HEP source can show: the node
// label of every SIP series that counted something, one HEP packet per SIP
// message received by source, and no decode error.
func checkHEPExposition(t *testing.T, raw []byte, source string, want sipCounts) {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	node := strconv.Itoa(kamailioCaptureID)
	for _, name := range []string{"sip_responses_total", "sip_requests_total"} {
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("no %s in the exposition", name)
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetCounter().GetValue() == 0 {
				continue // pre-initialised series
			}
			if got := labelValue(m, "node"); got != node {
				t.Errorf("%s%s: node %q, want %q (Kamailio's hep_capture_id: it sends no node name chunk)", name, labelString(m), got, node)
			}
		}
	}

	var messages int64
	for _, v := range want.responses {
		messages += v
	}
	for _, v := range want.requests {
		messages += v
	}
	if got, ok := gaugeValue(mfs, "sip_exporter_hep_packets_received_total", map[string]string{"source": source}); !ok {
		t.Errorf("no sip_exporter_hep_packets_received_total{source=%q}", source)
	} else if int64(got) != messages {
		t.Errorf("sip_exporter_hep_packets_received_total{source=%q} = %v, want %d (one HEP packet per SIP message)", source, got, messages)
	}
	for _, m := range mfs["sip_exporter_hep_decode_errors_total"].GetMetric() {
		if v := m.GetCounter().GetValue(); v != 0 {
			t.Errorf("sip_exporter_hep_decode_errors_total%s = %v, want 0", labelString(m), v)
		}
	}
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, lp := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// kamailioProcess is a running Kamailio.
type kamailioProcess struct {
	cmd    *exec.Cmd
	out    syncBuffer
	exited chan struct{}
	err    error
}

// hepDefines are the -A defines of kamailio.cfg: mirror to hepURI with
// capture agent ID captureID.
func hepDefines(hepURI string, captureID int) []string {
	return []string{fmt.Sprintf("HEP_URI=%q", hepURI), fmt.Sprintf("HEP_CAPTURE_ID=%d", captureID)}
}

// startKamailio starts Kamailio in the foreground (-DD -E) with cfg and
// each of defines (NAME=VALUE) as an -A, listening on ip:sippPort over UDP
// and TCP, with its runtime directory and PID file in a temporary
// directory, in network namespace ns ("" for the test's own). A cleanup
// stops it with SIGTERM (SIGKILL to its process group after 10 s).
func startKamailio(t *testing.T, ns, cfg, ip string, defines ...string) *kamailioProcess {
	t.Helper()
	dir := t.TempDir()
	listen := net.JoinHostPort(ip, strconv.Itoa(sippPort))
	var args []string
	if ns != "" {
		args = []string{"ip", "netns", "exec", ns}
	}
	args = append(args, "kamailio",
		"-f", cfg,
		"-DD", "-E",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir,
		"-l", "udp:"+listen, "-l", "tcp:"+listen)
	for _, d := range defines {
		args = append(args, "-A", d)
	}
	k := &kamailioProcess{exited: make(chan struct{})}
	k.cmd = exec.Command(args[0], args[1:]...)
	k.cmd.Stdout = &k.out
	k.cmd.Stderr = &k.out
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start kamailio: %v", err)
	}
	go func() {
		k.err = k.cmd.Wait()
		close(k.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-k.exited:
			t.Errorf("kamailio exited before the end of the test: %v\n%s", k.err, k.out.String())
			return
		default:
		}
		if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM kamailio: %v", err)
		}
		select {
		case <-k.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-k.exited
			t.Errorf("kamailio still running 10s after SIGTERM, killed")
		}
		if t.Failed() {
			t.Logf("kamailio output:\n%s", k.out.String())
		}
	})
	return k
}

// runHEPMix runs every UAC of hepMix at once against target over UDP,
// waits for all of them to exit 0 and returns every SIP message they sent
// or received, retransmissions included: Kamailio mirrors exactly these.
func runHEPMix(t *testing.T, target string) sipCounts {
	t.Helper()
	dir := t.TempDir()
	counts := make([]sipCounts, len(hepMix))
	runEach(t, len(hepMix), func(i int) error {
		u := hepMix[i]
		c, err := runHEPUAC(filepath.Join(dir, u.name), u, fmt.Sprintf("127.0.0.%d", 62+i), target)
		if err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
		counts[i] = c
		return nil
	})
	total := newSIPCounts()
	total.add(counts...)
	return total
}

// runHEPUAC runs one UAC from ip:sippPort against target and returns every
// SIP message it sent or received.
func runHEPUAC(dir string, u hepUAC, ip, target string) (sipCounts, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := startSIPp(ctx, "", dir, u.scenario, "u1", ip, u.calls,
		"-s", u.service, "-r", strconv.Itoa(sippRate), "-trace_msg", target)
	if err != nil {
		return sipCounts{}, err
	}
	if err := s.wait(); err != nil {
		return sipCounts{}, fmt.Errorf("UAC %s: %w%s", u.scenario, err, s.details())
	}
	return sippWire(dir)
}

// sippTraceSeparator starts every entry of a SIPp -trace_msg log.
const sippTraceSeparator = "-----------------------------------------------"

// sippWire reads the -trace_msg log SIPp left in dir and counts the SIP
// messages it sent and received on the wire: requests by method, responses
// by code and CSeq method, retransmissions included.
//
// The log is the reference rather than -trace_counts because the counts
// leave out what the scenario does not consume: when a UAC retransmits an
// INVITE, Kamailio (stateless) answers each copy with 100 and 180 again, and
// SIPp ignores the late provisional responses ("Ignoring provisional ...
// message for transaction") without counting them, although they were on
// the wire and mirrored. The log has one "message sent" or "message
// received" entry for every datagram.
func sippWire(dir string) (sipCounts, error) {
	file, data, err := sippFile(dir, "_messages.log")
	if err != nil {
		return sipCounts{}, err
	}
	c := newSIPCounts()
	for i, entry := range strings.Split(string(data), sippTraceSeparator) {
		if i == 0 {
			continue // before the first separator
		}
		// " TIMESTAMP\nUDP message sent (N bytes):\n\nMESSAGE" or
		// " TIMESTAMP\nUDP message received [N] bytes :\n\nMESSAGE";
		// other entries (such as "Ignoring provisional ...") repeat a
		// message already logged as received.
		lines := strings.Split(strings.ReplaceAll(entry, "\r", ""), "\n")
		if len(lines) < 4 {
			continue
		}
		what := lines[1]
		if strings.Contains(what, "control") ||
			!(strings.Contains(what, " message sent (") || strings.Contains(what, " message received [")) {
			continue
		}
		var start, method string
		for _, line := range lines[2:] {
			if start == "" {
				start = strings.TrimSpace(line)
				continue
			}
			if line == "" {
				break // end of the header
			}
			if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "CSeq") {
				if f := strings.Fields(value); len(f) == 2 {
					method = f[1]
				}
			}
		}
		f := strings.Fields(start)
		if len(f) < 3 || method == "" {
			return sipCounts{}, fmt.Errorf("%s: entry %d (%s): no start line or no CSeq method", file, i, what)
		}
		if f[0] == "SIP/2.0" {
			c.responses[responseKey{code: f[1], method: method}]++
		} else {
			c.requests[f[0]]++
		}
	}
	return c, nil
}
