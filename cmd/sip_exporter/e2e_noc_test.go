package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

const (
	nocCIDR  = "127.0.12.0/24" // the addresses of TestLiveNoc's SIPp pairs
	nocUsers = 20              // users registered
	nocCalls = 10              // calls held at once
	nocHold  = 6 * time.Second // how long each call is held, ACK to BYE
)

// TestLiveNoc runs SIPp on loopback addresses of nocCIDR (captured
// through a BPF filter for that block, since other tests use lo at the
// same time): one pair registers nocUsers users (one address of record
// each, granted an hour), another sets up nocCalls calls at once over TCP
// and holds them for nocHold before the UAC ends each with a BYE.
// While the calls are held, sip_sessions_active must reach the number
// of calls, and sip_registrations_active the number of users; after the
// BYEs, sip_sessions_active is 0 and sip_sessions_ended_total{reason="bye"}
// counts them. Every expected value is taken from SIPp's own counts (the
// 200 OKs its UAS sent to INVITE and REGISTER, the BYEs its UAC sent),
// which must also be what it was asked to do. TCP, so that SIPp
// retransmits nothing.
func TestLiveNoc(t *testing.T) {
	requireLive(t, "sipp")
	start := time.Now()
	bin := buildExporter(t)
	_, nocNet, err := net.ParseCIDR(nocCIDR)
	if err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, bin,
		"--capture.interface="+liveInterface,
		"--capture.bpf-file="+writeNetFilter(t, nocNet))
	if err := e.waitSourceUp(liveInterface, "interface", 15*time.Second); err != nil {
		t.Fatal(err)
	}

	pairs := []struct {
		pair     sippPair
		calls    int
		uas, uac string
	}{
		{sippPair{name: "register", uas: "noc_uas_register.xml", uac: "noc_uac_register.xml"}, nocUsers, "127.0.12.1", "127.0.12.2"},
		{sippPair{name: "calls", uas: "noc_uas_call.xml", uac: "noc_uac_call.xml",
			// All calls up within half a second, each held nocHold.
			uacArgs: []string{"-d", strconv.Itoa(int(nocHold.Milliseconds())), "-l", strconv.Itoa(nocCalls)}}, nocCalls, "127.0.12.3", "127.0.12.4"},
	}
	dir := t.TempDir()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sent := newSIPCounts()
	sippStart := time.Now()
	for _, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := runSIPpPair(filepath.Join(dir, p.pair.name), p.pair, "t1", p.uas, p.uac, p.calls)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.pair.name, err))
				return
			}
			sent.add(c)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// While the calls are held: poll until both gauges stop changing at
	// their highest, and keep the highest seen.
	var heldSessions, heldRegs, maxSessions float64
	deadline := sippStart.Add(nocHold - 500*time.Millisecond)
	for time.Now().Before(deadline) {
		_, mfs, err := e.scrape()
		if err != nil {
			t.Fatal(err)
		}
		s, r := familySum(mfs, "sip_sessions_active"), familySum(mfs, "sip_registrations_active")
		maxSessions = max(maxSessions, s)
		if s == nocCalls && r == nocUsers {
			heldSessions, heldRegs = s, r
			break
		}
		heldSessions, heldRegs = s, r
		time.Sleep(100 * time.Millisecond)
	}
	heldAt := time.Since(sippStart)
	<-done
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}

	// SIPp's counts, and that they are what it was asked to do.
	answered := sent.responses[responseKey{code: "200", method: "INVITE"}]
	registered := sent.responses[responseKey{code: "200", method: "REGISTER"}]
	byes := sent.requests["BYE"]
	if answered != nocCalls || registered != nocUsers || byes != nocCalls {
		t.Fatalf("SIPp sent %d 200 to INVITE, %d 200 to REGISTER, %d BYE; asked for %d calls and %d users", answered, registered, byes, nocCalls, nocUsers)
	}
	if heldSessions != float64(answered) || heldRegs != float64(registered) {
		t.Errorf("while the calls were held (%s after SIPp started): sip_sessions_active %v, sip_registrations_active %v; SIPp answered %d calls and registered %d users",
			heldAt.Round(time.Millisecond), heldSessions, heldRegs, answered, registered)
	}

	// After the BYEs: no session active, each ended by its BYE; the
	// registrations (an hour) stay.
	type after struct{ active, ended, regs float64 }
	_, got := settleBy(t, e, 10*time.Second, func(mfs map[string]*dto.MetricFamily) after {
		return after{familySum(mfs, "sip_sessions_active"), labelSum(mfs, "sip_sessions_ended_total", "reason", "bye"), familySum(mfs, "sip_registrations_active")}
	}, func(a, b after) bool { return a == b })
	if got != (after{0, float64(byes), float64(registered)}) || maxSessions > float64(answered) {
		t.Errorf("after the BYEs: sessions active %v, ended by BYE %v, registrations %v, most sessions seen %v; want 0, %d, %d, at most %d",
			got.active, got.ended, got.regs, maxSessions, byes, registered, answered)
	}
	t.Logf("sessions %v and registrations %v %s after SIPp started; after the BYEs: %+v; test took %s",
		heldSessions, heldRegs, heldAt.Round(time.Millisecond), got, time.Since(start).Round(time.Millisecond))
}

// familySum returns the sum of the values of a gauge or counter family.
func familySum(mfs map[string]*dto.MetricFamily, name string) float64 {
	return labelSum(mfs, name, "", "")
}

// labelSum returns the sum of the series of a gauge or counter family
// whose label name has value (every series when name is "").
func labelSum(mfs map[string]*dto.MetricFamily, family, name, value string) float64 {
	var sum float64
	for _, m := range mfs[family].GetMetric() {
		if name != "" && labelValue(m, name) != value {
			continue
		}
		sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return sum
}
