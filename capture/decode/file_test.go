package decode_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sip-exporter/sip_exporter/capture/decode"
	"github.com/sip-exporter/sip_exporter/capture/input"
	"github.com/sip-exporter/sip_exporter/capture/sip"
	"github.com/sip-exporter/sip_exporter/capture/stream"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// corpusFrames returns the corpus as Ethernet/IPv4/UDP frames one
// millisecond apart.
func corpusFrames(tb testing.TB) []packet {
	var ps []packet
	for i, m := range messages {
		ps = append(ps, packet{layers.LinkTypeEthernet, ether(tb, udpPacket(tb, alice4, bob4, []byte(m.text))), t0.Add(time.Duration(i) * time.Millisecond)})
	}
	return ps
}

// readFile reads path with a new decoder.
func readFile(t *testing.T, ctx context.Context, cfg input.FileConfig, tcp *stream.Config) (*decode.Stats, *recorder, error) {
	t.Helper()
	d, st, rec := newDecoder(t, tcp)
	return st, rec, input.ReadFile(ctx, cfg, d)
}

func TestReadFilePcap(t *testing.T) {
	for _, nanos := range []bool{false, true} {
		name := map[bool]string{false: "micro", true: "nano"}[nanos]
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sip.pcap")
			frames := corpusFrames(t)
			// Two TCP flows eleven minutes apart: the first one times
			// out, which shows that timestamps are read.
			a := newConn(t, ethernet, alice4, bob4, 1)
			b := newConn(t, ethernet, alice6, bob6, 1)
			late := t0.Add(11 * time.Minute)
			frames = append(frames,
				packet{layers.LinkTypeEthernet, func() []byte { _, f := a.syn(); return f }(), t0},
				packet{layers.LinkTypeEthernet, func() []byte { _, f := b.syn(); return f }(), late},
				packet{layers.LinkTypeEthernet, func() []byte { _, f := b.data(ack.text); return f }(), late},
			)
			writePcap(t, path, nanos, layers.LinkTypeEthernet, frames)
			st, rec, err := readFile(t, context.Background(), input.FileConfig{Path: path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if w := append(want(messages...), got{0, "ACK"}); !sameMsgs(rec.msgs, w) {
				t.Errorf("messages = %v, want %v", rec.msgs, w)
			}
			if n := st.Packets.Load(); n != uint64(len(frames)) {
				t.Errorf("packets = %d, want %d", n, len(frames))
			}
			if n := st.Stream.Evicted(stream.EvictTimeout); n != 1 {
				t.Errorf("evicted(timeout) = %d, want 1", n)
			}
		})
	}
}

// TestReadFilePcapng reads a pcapng file with two interfaces, every other
// packet on the second.
func TestReadFilePcapng(t *testing.T) {
	for _, tc := range []struct {
		name string
		lt   layers.LinkType
		wrap func(ip []byte) []byte
	}{
		{"same link type", layers.LinkTypeEthernet, func(ip []byte) []byte { return ether(t, ip) }},
		{"different link types", layers.LinkTypeLinuxSLL, sll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sip.pcapng")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535}, pcapgo.NgWriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			id, err := w.AddInterface(pcapgo.NgInterface{Name: "any", LinkType: tc.lt, SnapLength: 65535})
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range messages {
				ip := udpPacket(t, alice4, bob4, []byte(m.text))
				data, intf := ether(t, ip), 0
				if i%2 == 1 {
					data, intf = tc.wrap(ip), id
				}
				ci := gopacket.CaptureInfo{Timestamp: t0, CaptureLength: len(data), Length: len(data), InterfaceIndex: intf}
				if err := w.WritePacket(ci, data); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			st, rec, err := readFile(t, context.Background(), input.FileConfig{Path: path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// With link types that differ, pcapgo's NgReader drops the
			// packets of the second interface silently unless
			// NgReaderOptions.WantMixedLinkType is set.
			if n := st.Packets.Load(); n != uint64(len(messages)) {
				t.Errorf("packets = %d, want %d", n, len(messages))
			}
			if w := want(messages...); !sameMsgs(rec.msgs, w) {
				t.Errorf("messages = %v, want %v", rec.msgs, w)
			}
			if c, w := counts(st), msgCounts(messages); !sameCounts(c, w) {
				t.Errorf("counts = %v, want %v", c, w)
			}
		})
	}
}

func TestReadFileGzip(t *testing.T) {
	dir := t.TempDir()
	frames := corpusFrames(t)
	pcap := filepath.Join(dir, "sip.pcap")
	writePcap(t, pcap, false, layers.LinkTypeEthernet, frames)
	pcapng := filepath.Join(dir, "sip.pcapng")
	f, err := os.Create(pcapng)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range frames {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: len(p.data)}, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, plain := range []string{pcap, pcapng} {
		t.Run(filepath.Ext(plain), func(t *testing.T) {
			b, err := os.ReadFile(plain)
			if err != nil {
				t.Fatal(err)
			}
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(b)
			zw.Close()
			path := plain + ".gz"
			if err := os.WriteFile(path, z.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			_, rec, err := readFile(t, context.Background(), input.FileConfig{Path: path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if w := want(messages...); !sameMsgs(rec.msgs, w) {
				t.Errorf("messages = %v, want %v", rec.msgs, w)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full.pcap")
	frames := corpusFrames(t)
	writePcap(t, full, false, layers.LinkTypeEthernet, frames)
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	// Offsets of the third record: 24-byte file header, 16-byte record
	// headers.
	third := 24 + 16 + len(frames[0].data) + 16 + len(frames[1].data)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name      string
		path      string
		truncated bool
		msgs      int // messages decoded before the error
	}{
		{"cut mid-packet", write("cut-data.pcap", b[:third+16+100]), true, 2},
		{"cut mid-record-header", write("cut-header.pcap", b[:third+7]), true, 2},
		{"cut mid-file-header", write("cut-file-header.pcap", b[:12]), false, 0},
		{"empty", write("empty.pcap", nil), false, 0},
		{"not a capture", write("notes.txt", []byte("these are not the packets you are looking for\n")), false, 0},
		{"missing", filepath.Join(dir, "missing.pcap"), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, rec, err := readFile(t, context.Background(), input.FileConfig{Path: tc.path}, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name %s", err, tc.path)
			}
			if got := errors.Is(err, input.ErrTruncated); got != tc.truncated {
				t.Errorf("errors.Is(%v, ErrTruncated) = %v, want %v", err, got, tc.truncated)
			}
			if len(rec.msgs) != tc.msgs || st.Packets.Load() != uint64(tc.msgs) {
				t.Errorf("decoded %d messages of %d packets before the error, want %d", len(rec.msgs), st.Packets.Load(), tc.msgs)
			}
		})
	}
}

func TestReadFileLoop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sip.pcap")
	writePcap(t, path, false, layers.LinkTypeEthernet, corpusFrames(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := new(decode.Stats)
	n := 0
	d, err := decode.New(decode.DefaultConfig(), st, func(*decode.Origin, *sip.Message) {
		if n++; n == 3*len(messages)+1 {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := input.ReadFile(ctx, input.FileConfig{Path: path, Loop: true}, d); err != nil {
		t.Fatal(err)
	}
	if n <= 3*len(messages) || n > 4*len(messages) {
		t.Errorf("messages = %d, want the file read 4 times (%d)", n, 4*len(messages))
	}
}

func TestReadFileRealtime(t *testing.T) {
	t.Run("cancel while waiting", func(t *testing.T) {
		frames := corpusFrames(t)
		frames[1].ts = frames[0].ts.Add(time.Hour) // would wait an hour
		path := filepath.Join(t.TempDir(), "sip.pcap")
		writePcap(t, path, true, layers.LinkTypeEthernet, frames)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st := new(decode.Stats)
		d, err := decode.New(decode.DefaultConfig(), st, func(*decode.Origin, *sip.Message) { cancel() })
		if err != nil {
			t.Fatal(err)
		}
		if err := input.ReadFile(ctx, input.FileConfig{Path: path, Realtime: true, Loop: true}, d); err != nil {
			t.Fatal(err)
		}
		if n := st.Packets.Load(); n != 1 {
			t.Errorf("packets = %d, want 1", n)
		}
	})
	t.Run("paced", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sip.pcap")
		writePcap(t, path, false, layers.LinkTypeEthernet, corpusFrames(t)) // 1 ms apart
		st, rec, err := readFile(t, context.Background(), input.FileConfig{Path: path, Realtime: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.msgs) != len(messages) || st.Packets.Load() != uint64(len(messages)) {
			t.Errorf("messages %d packets %d, want %d", len(rec.msgs), st.Packets.Load(), len(messages))
		}
	})
}
