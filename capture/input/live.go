package input

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/bpf"
)

// LiveConfig says how a network interface is captured.
type LiveConfig struct {
	Interface string
	// RingBytes is the kernel ring memory (TPACKET_V3) of the interface,
	// shared out between the workers of [Live] in blocks of one size
	// ([ringBlockSize]: 128 KiB to 1 MiB, so that each worker has blocks
	// enough for 2 s of BlockTimeout) and rounded down to whole blocks:
	// each worker's ring gets RingBytes / workers, the remainder's blocks
	// going one each to the first workers, and at least one block, so
	// that with more workers than blocks the interface holds one block
	// per worker. It must be at least one 128 KiB block.
	RingBytes int

	Promiscuous bool                 // put the interface in promiscuous mode (SPAN ports need it)
	Filter      []bpf.RawInstruction // optional classic BPF program run in the kernel, instead of MediaFilter
	// MediaFilter attaches [MediaFilter] for the interface's link type
	// when Filter is nil: UDP that cannot be SIP or HEP (RTP, RTCP, STUN,
	// DTLS) is dropped in the kernel. Without either, every packet is kept.
	MediaFilter bool
	// BlockTimeout is how long the kernel fills a TPACKET_V3 block before
	// handing it over part full (tp_retire_blk_tov, whole ms): the most a
	// packet waits in the ring on a quiet link. 0 means DefaultBlockTimeout.
	BlockTimeout time.Duration
}

// Errors of [Live] that a user can act on, matched with errors.Is.
var (
	// ErrCapturePermission: the process may not open an AF_PACKET socket
	// (EPERM): live capture needs root or the capability CAP_NET_RAW,
	// and nothing more, promiscuous mode included.
	ErrCapturePermission = errors.New("live capture needs root or CAP_NET_RAW")
	// ErrNoInterface: the interface does not exist (in the process's
	// network namespace), or is libpcap's pseudo-interface "any".
	ErrNoInterface = errors.New("no such network interface")
)

// DefaultBlockTimeout is the default of [LiveConfig.BlockTimeout], the
// kernel's and gopacket's: 64 ms.
const DefaultBlockTimeout = 64 * time.Millisecond

// MaxWorkers is the most capture workers [Live] runs on one interface.
const MaxWorkers = 64

// DefaultRingBytes is the default kernel ring size: 64 MiB.
const DefaultRingBytes = 64 << 20

// ringBlockBytes is the largest TPACKET_V3 block size, that of every ring
// whose share per worker holds enough blocks of it ([ringBlockSize]).
const ringBlockBytes = 1 << 20

// minRingBlockBytes is the smallest TPACKET_V3 block size. In TPACKET_V3 a
// packet is written whole into one block (the kernel truncates what does
// not fit: tpacket_rcv clamps it to the block less its 48-byte header),
// so a block must hold the largest frame: 64 KiB on loopback, whose MTU
// is 65,536, and what GRO or GSO make of TCP on other links, 64 KiB
// unless the interface's gro_max_size or gso_max_size was raised (BIG
// TCP), plus 82 bytes of frame header (tpacket3_hdr and sockaddr_ll). The
// kernel also wants a multiple of the page size, and gopacket of the frame
// size (4 KiB): 128 KiB is the smallest power of two that holds 64 KiB
// and a multiple of every page size of Go's Linux ports (4, 16 or 64 KiB).
const minRingBlockBytes = 128 << 10

// ringStall is what each worker's ring should absorb at low byte rates:
// the kernel hands a block over part full once the block timeout expires,
// even while nobody reads, so a stalled worker's ring is full after its
// blocks × the block timeout, however few bytes came.
const ringStall = 2 * time.Second

// ringBlockSize returns the TPACKET_V3 block size of an interface's ring of
// ringBytes shared by n workers, whose blocks are handed over part full
// after blockTimeout: the largest power of two from [minRingBlockBytes] to
// [ringBlockBytes] of which a worker's share, ringBytes / n, holds enough
// blocks to cover [ringStall] in block timeouts (32 at the default 64 ms),
// or minRingBlockBytes when even that is too large. With the default 64 MiB
// and 64 ms: 1 MiB blocks for 1 and 2 workers (64 and 32 blocks each),
// 512 KiB for 3 and 4, 256 KiB for 5 to 8 (32 to 52 blocks each), 128 KiB
// from 9 workers on; past 16 workers the share holds fewer than 32
// blocks of 128 KiB (16 at 32 workers, 8 at 64: 0.5 s).
func ringBlockSize(ringBytes, n int, blockTimeout time.Duration) int {
	bt := max(blockTimeout.Truncate(time.Millisecond), time.Millisecond) // the kernel's tp_retire_blk_tov is whole ms
	want := int((ringStall + bt - 1) / bt)
	b := ringBlockBytes
	for b > minRingBlockBytes && ringBytes/n/b < want {
		b /= 2
	}
	return b
}

// ParseBPF reads a classic BPF program in the text form that `tcpdump -ddd
// EXPRESSION` prints: a first line with the instruction count, then one line
// per instruction with four decimal numbers "code jt jf k". Lines may also
// be separated by commas, as in `iptables -m bpf --bytecode`. It returns an
// error that names the line when the text does not parse or the count does
// not match; a *[BPFFormatError] when the text is a filter expression or
// the output of `tcpdump -d` or `-dd` instead.
func ParseBPF(r io.Reader) ([]bpf.RawInstruction, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		for _, l := range strings.Split(sc.Text(), ",") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("bpf program is empty")
	}
	n, err := strconv.Atoi(lines[0])
	if err != nil {
		if fe := bpfFormat(lines); fe != nil {
			return nil, fe
		}
		return nil, fmt.Errorf("bpf line 1: instruction count %q: %w", lines[0], err)
	}
	if n != len(lines)-1 || n < 1 || n > bpfMaxInstructions-len(skipOutgoing) {
		return nil, fmt.Errorf("bpf program: count says %d instructions, %d given (1..%d allowed)", n, len(lines)-1, bpfMaxInstructions-len(skipOutgoing))
	}
	prog := make([]bpf.RawInstruction, n)
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 4 {
			return nil, fmt.Errorf("bpf line %d: %q: want 4 numbers \"code jt jf k\"", i+2, l)
		}
		var v [4]uint64
		for j, s := range f {
			bits := []int{16, 8, 8, 32}[j]
			if v[j], err = strconv.ParseUint(s, 10, bits); err != nil {
				return nil, fmt.Errorf("bpf line %d: %q: %w", i+2, l, err)
			}
		}
		prog[i] = bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	if _, ok := bpf.Disassemble(prog); !ok {
		return nil, fmt.Errorf("bpf program: not a valid classic BPF program")
	}
	return prog, nil
}

// BPFFormatError is the error of [ParseBPF] for text that is not the
// output of `tcpdump -ddd` but a filter expression (what tcpdump takes as
// its argument) or the output of `tcpdump -d` (assembler) or `tcpdump -dd`
// (a C array).
type BPFFormatError struct {
	// Text is the first line, trimmed (at most 200 bytes).
	Text string
	// Expression is the filter expression, when the text is one: its
	// lines (split at line ends and commas) joined by spaces.
	Expression string
	// Option is the tcpdump option whose output the text is ("-d",
	// "-dd"), or "" for an expression.
	Option string
}

// Error says what the text is and that tcpdump -ddd output is wanted.
func (e *BPFFormatError) Error() string {
	if e.Option != "" {
		return fmt.Sprintf("bpf line 1: %q is the output of tcpdump %s, not of tcpdump -ddd (decimal numbers, the instruction count first)", e.Text, e.Option)
	}
	return fmt.Sprintf("bpf line 1: %q is a filter expression, not its compiled form, the output of tcpdump -ddd (decimal numbers, the instruction count first)", e.Text)
}

// Is makes errors.Is(err, ErrBPFFormat) true for a *BPFFormatError.
func (e *BPFFormatError) Is(target error) bool { return target == ErrBPFFormat }

// ErrBPFFormat matches (errors.Is) every [BPFFormatError].
var ErrBPFFormat = errors.New("bpf text is not tcpdump -ddd output")

// bpfFormat returns the *BPFFormatError of a text (its non-empty lines,
// split at commas) whose first line is not a number, or nil when it does
// not look like tcpdump's other outputs or an expression.
func bpfFormat(lines []string) *BPFFormatError {
	first := lines[0]
	if len(first) > 200 {
		first = first[:200]
	}
	e := &BPFFormatError{Text: first}
	switch {
	case strings.HasPrefix(first, "(000)"): // tcpdump -d: "(000) ldh [12]"
		e.Option = "-d"
	case strings.HasPrefix(first, "{"), strings.HasPrefix(first, "0x"): // tcpdump -dd: "{ 0x28, 0, 0, 0x0000000c },"
		e.Option = "-dd"
	case strings.IndexFunc(first, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0:
		e.Expression = strings.Join(lines, " ")
	default:
		return nil
	}
	return e
}

// bpfMaxInstructions is the kernel's BPF_MAXINSNS.
const bpfMaxInstructions = 4096

// skipOutgoing rejects packets whose skb->pkt_type is PACKET_OUTGOING. On a
// loopback device AF_PACKET hands every packet over twice, once sent and
// once received; keeping only the received copy counts each once.
var skipOutgoing = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 4 /* PACKET_OUTGOING */, SkipTrue: 1},
	bpf.RetConstant{Val: 0},
}

// buildFilter returns the program to attach: the user's filter (the
// media filter or another; nil accepts all) preceded, on loopback devices,
// by [skipOutgoing].
func buildFilter(user []bpf.RawInstruction, loopback bool) ([]bpf.RawInstruction, error) {
	if !loopback {
		return user, nil
	}
	prog, err := bpf.Assemble(skipOutgoing)
	if err != nil {
		return nil, err
	}
	if user == nil {
		accept, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 1 << 18}})
		if err != nil {
			return nil, err
		}
		user = accept
	}
	return append(prog, user...), nil
}

// statsInterval is how often kernel drop counters are read.
const statsInterval = time.Second

// workerBlocks returns the ring blocks of worker i of n when the
// interface's ring has blocks blocks in all: an even share, the remainder
// going one each to the first workers, and at least one block.
func workerBlocks(blocks, n, i int) int {
	b := blocks / n
	if i < blocks%n {
		b++
	}
	return max(b, 1)
}
