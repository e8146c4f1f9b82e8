package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Kamailio load test uses 127.0.18.0/24 only: the exporter's HEP
// listener on .1, Kamailio on .2, SIPp UAC i on .(10+i).
const (
	kamLoadHEPIP      = "127.0.18.1"
	kamLoadKamailioIP = "127.0.18.2"
	kamLoadFirstUAC   = 10
)

// kamLoadMix is the traffic of the Kamailio load test: of every 5 calls
// 2 answered (INVITE, 100, 180, 200, ACK, BYE, 200) and 3 rejected
// (INVITE, 100, 180, 486, ACK), 5.8 messages per call on average.
var kamLoadMix = []struct {
	service string
	share   int // of 5
}{{"ok", 2}, {"busy", 3}}

// TestHEPKamailioLoad is the moderate-rate target of issue 18: the shipped
// binary with its defaults (--hep.transport=udp) receives HEPv3 over UDP
// from a real Kamailio (siptrace, testdata/kamailio/kamailio.cfg) that
// mirrors SIPp calling it at SIP_EXPORTER_HEP_CPS calls per second
// (default 300: about 1,740 messages per second) for
// SIP_EXPORTER_HEP_DURATION (default 2m). It checks that
// sip_requests_total{method="INVITE"} equals the INVITEs SIPp sent
// (retransmissions included: Kamailio mirrors each), that nothing was lost
// (kernel drops, merge drops), and logs the process's CPU (utime+stime of
// /proc/PID/stat from the first call to 1.5 s after the last) as a share of
// a core and per HEP packet received, its context switches (all threads),
// and the datagrams per UDP read.
//
// It runs only with SIP_EXPORTER_HEP_KAMAILIO_LOAD=1, as root (kamailio
// and sipp on PATH). SIP_EXPORTER_BIN runs another binary (the one before
// a change), SIP_EXPORTER_HEP_ARGS adds flags (space separated),
// SIP_EXPORTER_HEP_TRANSPORT=tcp mirrors over TCP instead,
// SIP_EXPORTER_HEP_PERF=FILE records the exporter with perf (as
// TestHEPLoadUDP).
func TestHEPKamailioLoad(t *testing.T) {
	if os.Getenv("SIP_EXPORTER_HEP_KAMAILIO_LOAD") == "" {
		t.Skip("set SIP_EXPORTER_HEP_KAMAILIO_LOAD=1 to run the Kamailio HEP load test (300 calls/s for 2 min)")
	}
	requireLive(t, "kamailio", "sipp")
	cps := envInt(t, "SIP_EXPORTER_HEP_CPS", 300)
	dur, err := time.ParseDuration(envString("SIP_EXPORTER_HEP_DURATION", "2m"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := filepath.Abs(kamailioConfig)
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("SIP_EXPORTER_BIN")
	if bin == "" {
		bin = buildExporter(t)
	}
	transport := envString("SIP_EXPORTER_HEP_TRANSPORT", "udp")
	hepURI, hepAddr := "", freeUDPAddrOn(t, kamLoadHEPIP)
	switch transport {
	case "udp":
		hepURI = "sip:" + hepAddr
	case "tcp":
		hepURI = "sip:" + hepAddr + ";transport=tcp"
	default:
		t.Fatalf("SIP_EXPORTER_HEP_TRANSPORT %q: udp or tcp", transport)
	}
	args := []string{"--hep.listen-address=" + hepAddr, "--hep.transport=" + transport, "--log.level=warn"}
	args = append(args, strings.Fields(os.Getenv("SIP_EXPORTER_HEP_ARGS"))...)
	e := startExporter(t, bin, args...)
	source := transport + "://" + hepAddr
	if err := e.waitSourceUp(source, "hep", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	k := startKamailio(t, "", cfg, kamLoadKamailioIP, hepDefines(hepURI, kamailioCaptureID)...)
	if err := waitListening(k.cmd.Process.Pid, "udp", kamLoadKamailioIP, sippPort, k.exited, 10*time.Second); err != nil {
		t.Fatalf("kamailio: %v", err)
	}
	pid := e.cmd.Process.Pid
	defer startPerf(t, pid)()
	load0, _ := os.ReadFile("/proc/loadavg")
	cpu0, sw0 := procCPUTicks(t, pid), procSwitches(t, pid)
	start := time.Now()
	target := net.JoinHostPort(kamLoadKamailioIP, strconv.Itoa(sippPort))
	dir := t.TempDir()
	sent := make([]sipCounts, len(kamLoadMix))
	runEach(t, len(kamLoadMix), func(i int) error {
		m := kamLoadMix[i]
		rate := cps * m.share / 5
		calls := int(int64(rate) * int64(dur) / int64(time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), dur+time.Minute)
		defer cancel()
		udir := filepath.Join(dir, m.service)
		if err := os.MkdirAll(udir, 0o755); err != nil {
			return err
		}
		scenario, err := filepath.Abs(filepath.Join(sippDir, "uac_invite.xml"))
		if err != nil {
			return err
		}
		ip := "127.0.18." + strconv.Itoa(kamLoadFirstUAC+i)
		cmd := exec.CommandContext(ctx, "sipp", "-sf", scenario, "-t", "u1", "-i", ip, "-p", strconv.Itoa(sippPort),
			"-bind_local", "-ci", ip, "-cp", "8888", "-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate),
			"-l", strconv.Itoa(4*rate), "-s", m.service, "-nostdin", "-trace_counts", "-trace_err", target)
		cmd.Dir = udir
		if out, err := cmd.CombinedOutput(); err != nil {
			return &sippError{err: err, out: string(out)}
		}
		c, err := sippSent(scenario, udir)
		sent[i] = c
		return err
	})
	sendTime := time.Since(start)
	time.Sleep(1500 * time.Millisecond) // --capture.max-lateness and its slack: everything counted
	cpu1, sw1 := procCPUTicks(t, pid), procSwitches(t, pid)
	load1, _ := os.ReadFile("/proc/loadavg")
	wall := time.Since(start)

	_, got := e.settle(t, 10*time.Second)
	_, mfs, err := e.scrape()
	if err != nil {
		t.Fatal(err)
	}
	want := newSIPCounts()
	want.add(sent...)
	kernel, late, dropped, received, reads, hasReads := hepLoadCounters(mfs, source)
	offset, _ := gaugeValue(mfs, "sip_exporter_clock_offset_seconds", map[string]string{"source": source})
	cpu := time.Duration(cpu1-cpu0) * 10 * time.Millisecond // USER_HZ 100 on Linux
	t.Logf("load average before %s, after %s", strings.Join(strings.Fields(string(load0))[:3], " "), strings.Join(strings.Fields(string(load1))[:3], " "))
	t.Logf("%d calls/s for %v (SIPp done after %v): SIPp sent %d INVITEs, counted %d; received %.0f HEP packets (%.0f/s); kernel drops %.0f, merge late %.0f, dropped %.0f",
		cps, dur, sendTime.Round(time.Millisecond), want.requests["INVITE"], got.requests["INVITE"], received, received/wall.Seconds(), kernel, late, dropped)
	t.Logf("clock offset of Kamailio's node %.3f s", offset)
	t.Logf("exporter CPU %v in %v: %.2f %% of a core, %.1f CPU-µs per HEP packet; %d context switches, %.3f per packet",
		cpu, wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), float64(cpu.Microseconds())/received, sw1-sw0, float64(sw1-sw0)/received)
	if hasReads {
		t.Logf("UDP reads %.0f: %.1f datagrams per read", reads, received/reads)
	}
	if got.requests["INVITE"] != want.requests["INVITE"] {
		t.Errorf("INVITEs counted %d, SIPp sent %d", got.requests["INVITE"], want.requests["INVITE"])
	}
	if kernel != 0 || dropped != 0 {
		t.Errorf("lost: %.0f kernel drops, %.0f dropped in the merge", kernel, dropped)
	}
	if late != 0 {
		t.Errorf("%.0f messages late", late)
	}
}

// sippError is a SIPp run that failed, with its output.
type sippError struct {
	err error
	out string
}

func (e *sippError) Error() string {
	out := e.out
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	return "sipp: " + e.err.Error() + "\n" + out
}
