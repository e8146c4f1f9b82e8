package input

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// udpOnly is `tcpdump -ddd -y EN10MB 'ip and udp'`.
const udpOnly = `6
40 0 0 12
21 0 3 2048
48 0 0 23
21 0 1 17
6 0 0 262144
6 0 0 0
`

func TestParseBPF(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		n          int
		err        string
	}{
		{name: "tcpdump -ddd", text: udpOnly, n: 6},
		{name: "commas", text: "2,40 0 0 12,6 0 0 262144", n: 2},
		{name: "empty", text: "\n", err: "bpf program is empty"},
		{name: "bad count", text: "1.5\n6 0 0 0\n", err: `bpf line 1: instruction count "1.5"`},
		{name: "expression", text: "udp port 5060\n", err: `bpf line 1: "udp port 5060" is a filter expression, not its compiled form, the output of tcpdump -ddd`},
		{name: "tcpdump -d", text: "(000) ldh      [12]\n(001) jeq      #0x800           jt 2\tjf 5\n", err: `bpf line 1: "(000) ldh      [12]" is the output of tcpdump -d, not of tcpdump -ddd`},
		{name: "tcpdump -dd", text: "{ 0x28, 0, 0, 0x0000000c },\n{ 0x6, 0, 0, 0x00040000 },\n", err: `bpf line 1: "{ 0x28" is the output of tcpdump -dd, not of tcpdump -ddd`},
		{name: "count mismatch", text: "3\n6 0 0 0\n", err: "count says 3 instructions, 1 given"},
		{name: "three numbers", text: "1\n6 0 0\n", err: `bpf line 2: "6 0 0": want 4 numbers`},
		{name: "jump too far", text: "1\n6 300 0 0\n", err: "bpf line 2"},
		{name: "not a number", text: "1\n6 0 0 k\n", err: "bpf line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := ParseBPF(strings.NewReader(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(prog) != tc.n {
				t.Errorf("%d instructions, want %d", len(prog), tc.n)
			}
		})
	}
}

// TestBuildFilterSkipsOutgoing runs the loopback filter in x/net/bpf's
// virtual machine: it has no skb, so only the structure is checked here;
// the live test on lo checks the kernel behaviour.
func TestBuildFilterSkipsOutgoing(t *testing.T) {
	user, err := ParseBPF(strings.NewReader(udpOnly))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := buildFilter(user, false); len(got) != len(user) {
		t.Errorf("non-loopback filter has %d instructions, want the user's %d", len(got), len(user))
	}
	got, err := buildFilter(user, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(skipOutgoing)+len(user) {
		t.Fatalf("loopback filter has %d instructions, want %d", len(got), len(skipOutgoing)+len(user))
	}
	insns, ok := bpf.Disassemble(got)
	if !ok {
		t.Fatalf("filter does not disassemble: %v", insns)
	}
	if insns[0] != (bpf.LoadExtension{Num: bpf.ExtType}) {
		t.Errorf("first instruction %v, want a load of the packet type", insns[0])
	}
	all, err := buildFilter(nil, true)
	if err != nil || len(all) != len(skipOutgoing)+1 {
		t.Errorf("loopback filter without user filter: %d instructions, err %v", len(all), err)
	}
}

// TestMediaFilterLoopback: on loopback the media filter follows the
// PACKET_OUTGOING check, and its jumps still land inside the program.
func TestMediaFilterLoopback(t *testing.T) {
	media, err := MediaFilter(layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	got, err := buildFilter(media, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(skipOutgoing)+len(media) {
		t.Fatalf("%d instructions, want %d", len(got), len(skipOutgoing)+len(media))
	}
	if _, ok := bpf.Disassemble(got); !ok {
		t.Fatal("loopback media filter does not disassemble")
	}
	if _, err := MediaFilter(layers.LinkTypeLinuxSLL); err == nil {
		t.Error("media filter for SLL: no error")
	}
}

// TestMediaFilterNetMon runs the media filter over the one NetMon capture
// of the shared corpus (PROTOS malformed INVITEs), which the decoder
// package's corpus test cannot read: every frame the decoder finds SIP in
// passes. The other captures are checked in package decode.
func TestMediaFilterNetMon(t *testing.T) {
	f, err := os.Open("../../../shared/corpus/sipnab__c07-sip-r2.cap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer f.Close()
	nm, err := newNetmonReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := MediaFilter(nm.linkType)
	if err != nil {
		t.Fatal(err)
	}
	ins, _ := bpf.Disassemble(raw)
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	var passed, dropped, withSIP int
	for {
		data, _, err := nm.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var msgs int
		d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(*decode.Origin, *sip.Message) { msgs++ })
		if err != nil {
			t.Fatal(err)
		}
		d.Packet(nm.linkType, data, 0, len(data))
		n, err := vm.Run(data)
		if err != nil {
			t.Fatal(err)
		}
		if msgs > 0 {
			withSIP++
		}
		if n > 0 {
			passed++
			continue
		}
		dropped++
		if msgs > 0 {
			t.Errorf("frame %x... holds SIP and is dropped", data[:min(len(data), 64)])
		}
	}
	if withSIP == 0 {
		t.Fatal("no SIP found")
	}
	t.Logf("%d frames passed (%d with SIP), %d dropped", passed, withSIP, dropped)
}

// TestParseBPFFormatError: a filter expression, or tcpdump's -d or -dd
// output, is a *BPFFormatError naming what it is, and matches ErrBPFFormat.
func TestParseBPFFormatError(t *testing.T) {
	for _, tc := range []struct{ text, expr, option string }{
		{text: "udp port 5060\n", expr: "udp port 5060"},
		{text: "udp\nand port 5060\n", expr: "udp and port 5060"},
		{text: "(000) ldh      [12]\n", option: "-d"},
		{text: "{ 0x28, 0, 0, 0x0000000c },\n", option: "-dd"},
	} {
		_, err := ParseBPF(strings.NewReader(tc.text))
		var fe *BPFFormatError
		if !errors.As(err, &fe) || !errors.Is(err, ErrBPFFormat) {
			t.Errorf("%q: error %v, want a *BPFFormatError", tc.text, err)
			continue
		}
		if fe.Expression != tc.expr || fe.Option != tc.option {
			t.Errorf("%q: expression %q option %q, want %q %q", tc.text, fe.Expression, fe.Option, tc.expr, tc.option)
		}
	}
}
