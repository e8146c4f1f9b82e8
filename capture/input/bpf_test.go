package input

import (
	"strings"
	"testing"

	"golang.org/x/net/bpf"
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
		{name: "bad count", text: "x\n6 0 0 0\n", err: `bpf line 1: instruction count "x"`},
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
