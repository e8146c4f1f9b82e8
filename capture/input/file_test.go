package input

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// writeOptions writes a pcap (µs timestamps) of n OPTIONS requests over
// UDP between 40 address pairs, packet k at k ms, with Call-ID "k"; extra
// is appended raw after the last record.
func writeOptions(t *testing.T, n int, extra []byte) string {
	t.Helper()
	return writeOptionsAt(t, n, func(k int) int64 { return int64(k) * 1e6 }, extra)
}

// writeOptionsAt is writeOptions with packet k at at(k) ns after the
// file's epoch.
func writeOptionsAt(t *testing.T, n int, at func(k int) int64, extra []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "options.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= n; k++ {
		eth := &layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: netip.AddrFrom4([4]byte{10, 0, 0, byte(k % 40)}).AsSlice(), DstIP: []byte{10, 0, 1, 1}}
		udp := &layers.UDP{SrcPort: 5060, DstPort: 5060}
		_ = udp.SetNetworkLayerForChecksum(ip)
		msg := fmt.Sprintf("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK%d\r\nCall-ID: %d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", k, k)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(msg)); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1_800_000_000, at(k)), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Write(extra); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readMapped reads path with workers workers and returns, sorted, the
// (Seq, Call-ID) of every message, and each worker's error.
func readMapped(t *testing.T, path string, workers int) ([]string, []error) {
	t.Helper()
	mf, err := OpenFile(FileConfig{Path: path}, workers)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	if !mf.Mapped() || mf.Workers() != workers {
		t.Fatalf("a plain pcap: mapped %v, %d workers; want mapped, %d", mf.Mapped(), mf.Workers(), workers)
	}
	got := make([][]string, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, m *sip.Message) {
			got[w] = append(got[w], fmt.Sprintf("%d %s %d", o.Seq, m.CallID, o.Time))
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[w] = mf.Read(context.Background(), w, d, nil) })
	}
	wg.Wait()
	var all []string
	for w := range workers {
		if workers > 1 && len(got[w]) == 0 {
			t.Errorf("%d workers: worker %d decoded nothing", workers, w)
		}
		all = append(all, got[w]...)
	}
	slices.Sort(all)
	return all, errs
}

// TestMappedFile: the workers of a mapped pcap decode every packet once
// between them, numbered by its place in the file, with its timestamp.
func TestMappedFile(t *testing.T) {
	path := writeOptions(t, 200, nil)
	var want []string
	for k := 1; k <= 200; k++ {
		want = append(want, fmt.Sprintf("%d %d %d", k, k, 1_800_000_000*int64(1e9)+int64(k)*1e6))
	}
	slices.Sort(want)
	for _, workers := range []int{1, 2, 3} {
		got, errs := readMapped(t, path, workers)
		if !slices.Equal(got, want) {
			t.Errorf("%d workers: %d messages, want %d; first %v", workers, len(got), len(want), got[:min(3, len(got))])
		}
		for w, err := range errs {
			if err != nil {
				t.Errorf("%d workers: worker %d: %v", workers, w, err)
			}
		}
	}
}

// TestMappedFileErrors: a file cut inside a record is ErrTruncated for
// every worker, after the packets before the cut; a record longer than
// its original length is an error naming the file; other captures are
// streamed by one worker; what is not a capture fails at OpenFile.
func TestMappedFileErrors(t *testing.T) {
	cut := writeOptions(t, 10, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	got, errs := readMapped(t, cut, 2)
	if len(got) != 10 {
		t.Errorf("truncated: %d messages before the cut, want 10", len(got))
	}
	for w, err := range errs {
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("truncated: worker %d: %v, want ErrTruncated", w, err)
		}
	}
	// A record whose captured length (100) exceeds its original (50).
	bad := writeOptions(t, 3, []byte{0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 50, 0, 0, 0})
	_, errs = readMapped(t, bad, 1)
	if errs[0] == nil || errors.Is(errs[0], ErrTruncated) {
		t.Errorf("corrupt record: %v, want an error that is not ErrTruncated", errs[0])
	}
	ng := filepath.Join(t.TempDir(), "x.pcapng")
	if err := os.WriteFile(ng, []byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := OpenFile(FileConfig{Path: ng}, 2); err != nil || f.Mapped() || f.Workers() != 1 {
		t.Errorf("pcapng: %v, want it streamed by one worker", err)
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	empty := filepath.Join(dir, "empty.pcap")
	if err := os.WriteFile(text, []byte("INVITE sip:a@b SIP/2.0\r\n\r\nnot a capture at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing.pcap"), text, empty, dir} {
		if _, err := OpenFile(FileConfig{Path: p}, 2); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("OpenFile(%q): %v, want an error naming the file", p, err)
		}
	}
}

// TestMappedFileAllocs: once its decoder is warm, reading a mapped file
// allocates nothing (record walk, FlowHash, decode, the handler).
func TestMappedFileAllocs(t *testing.T) {
	path := writeOptions(t, 200, nil)
	mf, err := OpenFile(FileConfig{Path: path}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	var n int
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(*decode.Origin, *sip.Message) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := mf.Read(ctx, 1, d, nil); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() { _ = mf.Read(ctx, 1, d, nil) }); a != 0 {
		t.Errorf("%v allocs per read of the file", a)
	}
	if n == 0 {
		t.Error("worker 1 decoded nothing")
	}
}

// TestMappedFileShrunk: a file cut shorter while mapped (its writer
// truncated it) makes Read return ErrShrunk instead of crashing on the
// fault.
func TestMappedFileShrunk(t *testing.T) {
	path := writeOptions(t, 2000, nil)
	mf, err := OpenFile(FileConfig{Path: path}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	var n int
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(*decode.Origin, *sip.Message) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	if err := mf.Read(context.Background(), 0, d, nil); !errors.Is(err, ErrShrunk) {
		t.Errorf("Read: %v, want ErrShrunk", err)
	}
	if n == 0 || n >= 2000 {
		t.Errorf("%d messages before the cut, want some and not all", n)
	}
}

// TestFileTimesStepBack: in a file whose timestamps go back (two
// interfaces merged with mergecap -a), every packet is stamped with the
// latest time of the packets before it, the same with 1, 2 and 3 workers
// and when the file is streamed (gzip): the order of the messages and
// their times do not depend on how the file is read.
func TestFileTimesStepBack(t *testing.T) {
	const base = 1_800_000_000 * int64(1e9)
	// 100 packets 1 ms apart, then 100 more starting 50 ms back, then 100
	// starting 300 ms back.
	at := func(k int) int64 {
		switch {
		case k <= 100:
			return int64(k) * 1e6
		case k <= 200:
			return int64(k-150) * 1e6
		default:
			return int64(k-500) * 1e6
		}
	}
	path := writeOptionsAt(t, 300, at, nil)
	var want []string
	latest := int64(math.MinInt64)
	for k := 1; k <= 300; k++ {
		latest = max(latest, at(k))
		want = append(want, fmt.Sprintf("%d %d %d", k, k, base+latest))
	}
	slices.Sort(want)
	for _, workers := range []int{1, 2, 3} {
		got, _ := readMapped(t, path, workers)
		if !slices.Equal(got, want) {
			t.Errorf("%d workers: got %v..., want %v...", workers, got[:3], want[:3])
		}
	}
	gz := filepath.Join(t.TempDir(), "options.pcap.gz")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	if err := os.WriteFile(gz, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(FileConfig{Path: gz}, 3)
	if err != nil || f.Mapped() || f.Workers() != 1 {
		t.Fatalf("gzip: %v, mapped %v", err, f.Mapped())
	}
	var got []string
	d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(o *decode.Origin, m *sip.Message) {
		got = append(got, fmt.Sprintf("%d %s %d", o.Seq, m.CallID, o.Time))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Read(context.Background(), 0, d, nil); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("streamed: got %v..., want %v...", got[:3], want[:3])
	}
}

// TestFileProgress: each worker reports progress every 1,024 records and
// at the end, whatever its share of the packets, with times that never go
// back and reach the file's latest time.
func TestFileProgress(t *testing.T) {
	path := writeOptionsAt(t, 5000, func(k int) int64 { return int64(k) * 1e6 }, nil)
	f, err := OpenFile(FileConfig{Path: path}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for w := range 2 {
		var msgs int
		var marks []int64
		d, err := decode.New(decode.DefaultConfig(), new(decode.Stats), func(*decode.Origin, *sip.Message) { msgs++ })
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Read(context.Background(), w, d, func(t int64) { marks = append(marks, t) }); err != nil {
			t.Fatal(err)
		}
		if len(marks) != 5000/progressEvery+1 || !slices.IsSorted(marks) {
			t.Errorf("worker %d (%d messages): progress %v, want %d marks in order", w, msgs, marks, 5000/progressEvery+1)
		}
		if want := 1_800_000_000*int64(1e9) + 5000*1e6; marks[len(marks)-1] != want {
			t.Errorf("worker %d: last progress %d, want %d", w, marks[len(marks)-1], want)
		}
	}
}
