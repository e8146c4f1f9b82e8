package main

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// callMsg is a scripted message of the call callID.
type callMsg struct {
	callID string
	sipMsg
}

// writeCalls writes msgs, in their order, as UDP datagrams between A
// (192.0.2.1) and B (192.0.2.2) to a pcap file and returns its path.
func writeCalls(t *testing.T, msgs []callMsg) string {
	t.Helper()
	a, b := netip.MustParseAddrPort("192.0.2.1:5060"), netip.MustParseAddrPort("192.0.2.2:5060")
	pkts := make([]dupPacket, len(msgs))
	for i, m := range msgs {
		src, dst := a, b
		if m.fromB {
			src, dst = b, a
		}
		pkts[i] = dupPacket{at: time.Duration(m.ms) * time.Millisecond, src: src, dst: dst, ipID: uint16(i), payload: m.bytes(m.callID)}
	}
	return writeDupCapture(t, t.TempDir(), "calls.pcap", pkts)
}

// TestDialogLongCallOutlivesBound: one call stays up while more short
// calls than --sip.max-transactions are answered and hung up after it,
// through the report pipeline. Few dialogs are ever open at once, so none
// is evicted: the long call ends by its BYE and its duration counts (the
// dialog queue used to evict it once --sip.max-transactions calls had
// been answered after it, ended ones included).
func TestDialogLongCallOutlivesBound(t *testing.T) {
	const (
		maxTx   = 8
		short   = 5 * maxTx // short calls, one every 20 s
		spacing = 20_000    // ms
		longBye = 1_000_000 // ms: the long call's BYE, after every short call
		longDur = longBye - 1000
	)
	// The long call: answered at 1 s (answered()), B hangs up at longBye.
	var msgs []callMsg
	for _, m := range answered() {
		msgs = append(msgs, callMsg{"long@192.0.2.1", m})
	}
	// The short calls: each answered 1 s after its INVITE and hung up 4 s
	// later. An INVITE transaction lasts 10 s, an ACK or a BYE 32 s, so
	// that at most 5 transactions are open at once: none is evicted.
	for i := range short {
		at := spacing * (i + 1)
		id := fmt.Sprintf("short-%d@192.0.2.1", i)
		for _, m := range append(answered(), byeFromB(5000, "")...) {
			m.ms += at
			msgs = append(msgs, callMsg{id, m})
		}
	}
	for _, m := range byeFromB(longBye, "") {
		msgs = append(msgs, callMsg{"long@192.0.2.1", m})
	}
	if msgs[len(msgs)-3].ms >= longBye {
		t.Fatal("the script is out of order")
	}
	cfg := defaultPipelineConfig() // as report runs with --sip.max-transactions=8 --sip.invite-timeout=10s
	cfg.Tx.MaxTransactions, cfg.Tx.InviteTimeout = maxTx, 10*time.Second
	got := txValuesWith(t, cfg, writeCalls(t, msgs))
	calls := float64(short + 1)
	for k, want := range map[string]float64{
		"sip_session_attempts_total":                 calls,
		"sip_session_outcomes_total{code=200}":       calls,
		"sip_sessions_ended_total{reason=bye}":       calls,
		"sip_session_duration_seconds_count":         calls,
		"sip_session_duration_seconds_sum":           float64(longDur)/1000 + short*4,
		"sip_session_disconnect_delay_seconds_count": calls,
		"sip_sessions_ended_total{reason=evicted}":   0,
		"sip_sessions_ended_total{reason=max_age}":   0,
		"sip_sessions_active":                        0,
		"sip_exporter_dialogs_evicted_total":         0,
		"sip_exporter_transactions_evicted_total":    0,
	} {
		if v := got[k]; v < want-1e-6 || v > want+1e-6 {
			t.Errorf("%s = %v, want %v", k, v, want)
		}
	}
}
