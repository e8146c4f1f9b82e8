package input

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// FileConfig says how a capture file is read.
type FileConfig struct {
	Path     string
	Realtime bool // pace packets by their timestamps instead of reading as fast as possible
	Loop     bool // read the file again from its start after its end, until ctx is done
}

// ErrTruncated is returned, wrapped with the file name, when a capture file
// ends in the middle of a packet record. Everything before the cut has been
// decoded.
var ErrTruncated = errors.New("capture file truncated mid-packet")

// packetReader is what pcapgo's pcap and pcapng readers have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// pcapngMagic is the block type of a pcapng Section Header Block.
const pcapngMagic = 0x0a0d0d0a

// ReadFile feeds every packet of a pcap or pcapng file (either may be
// gzip-compressed; Microsoft Network Monitor 2.x files are also read) to d, in file order. It returns when the file ends (Loop unset),
// when ctx is done (nil error), or on error: the file cannot be opened or is
// not a capture (error names the file), or it ends mid-packet (wraps
// [ErrTruncated]; what came before is counted). Realtime sleeps between
// packets so that they are decoded at the pace they were captured.
//
// Timestamps handed to d move forward only: with Realtime they are mapped
// onto the wall clock (the first packet at the time reading starts), and
// each pass of Loop continues 1 ms after the last packet of the previous
// one, so that a replayed message is a new message, not a duplicate.
func ReadFile(ctx context.Context, cfg FileConfig, d *decode.Decoder) error {
	var last int64 // of the previous pass
	for pass := 0; ; pass++ {
		end, err := readFileOnce(ctx, cfg, d, pass, last)
		if err != nil || !cfg.Loop || ctx.Err() != nil {
			return err
		}
		last = end
		d.Reset()
	}
}

// readFileOnce reads the file once. Its timestamps are shifted to follow
// last (pass > 0) or onto the wall clock (Realtime); it returns the last
// timestamp handed on.
func readFileOnce(ctx context.Context, cfg FileConfig, d *decode.Decoder, pass int, last int64) (int64, error) {
	f, err := os.Open(cfg.Path)
	if err != nil {
		return 0, fmt.Errorf("open capture file: %w", err) // *PathError names the file
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		return 0, fmt.Errorf("read %q: %w", cfg.Path, errNotCapture(err))
	}
	gzipped := magic[0] == 0x1f && magic[1] == 0x8b
	if gzipped {
		// Decompress here rather than leave it to pcapgo, which only
		// knows gzip'd pcap: pcapng is often stored gzip'd too.
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("read %q: gzip: %w", cfg.Path, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<20)
		if magic, err = br.Peek(4); err != nil {
			return 0, fmt.Errorf("read %q: gzip: %w", cfg.Path, errNotCapture(err))
		}
	}
	var r packetReader
	var linkTypes func(ifIndex int) layers.LinkType
	switch {
	case [4]byte(magic) == netmonMagic && !gzipped:
		nm, err := newNetmonReader(f)
		if err != nil {
			return 0, fmt.Errorf("read netmon file %q: %w", cfg.Path, err)
		}
		r = nm
		linkTypes = func(int) layers.LinkType { return nm.linkType }
	case binary.LittleEndian.Uint32(magic) == pcapngMagic:
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return 0, fmt.Errorf("read pcapng file %q: %w", cfg.Path, err)
		}
		r = ng
		var cache []layers.LinkType
		linkTypes = func(ifIndex int) layers.LinkType {
			for ifIndex >= len(cache) {
				intf, err := ng.Interface(len(cache))
				if err != nil {
					return ng.LinkType()
				}
				cache = append(cache, intf.LinkType)
			}
			return cache[ifIndex]
		}
	default:
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("read %q: not a pcap, pcapng or NetMon 2.x capture: %w", cfg.Path, err)
		}
		r = pr
		lt := pr.LinkType()
		linkTypes = func(int) layers.LinkType { return lt }
	}

	var first, shift, ts int64
	start := time.Now()
	var timer *time.Timer
	for n := 0; ; n++ {
		data, ci, err := r.ZeroCopyReadPacketData()
		if err != nil {
			switch {
			case err == io.EOF:
				return ts, nil
			case errors.Is(err, io.ErrUnexpectedEOF):
				return ts, fmt.Errorf("read %q: %w", cfg.Path, ErrTruncated)
			default:
				return ts, fmt.Errorf("read %q: %w", cfg.Path, err)
			}
		}
		ts = ci.Timestamp.UnixNano()
		if n == 0 {
			first = ts
			switch {
			case cfg.Realtime:
				shift = start.UnixNano() - first
			case pass > 0:
				shift = last + int64(time.Millisecond) - first
			}
		}
		orig := ts
		ts += shift
		if cfg.Realtime {
			if wait := time.Duration(orig-first) - time.Since(start); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
					defer timer.Stop()
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return ts, nil
				case <-timer.C:
				}
			}
		} else if n&1023 == 0 && ctx.Err() != nil {
			return ts, nil
		}
		d.Packet(linkTypes(ci.InterfaceIndex), data, ts, ci.Length)
	}
}

func errNotCapture(err error) error {
	if err == io.EOF {
		return errors.New("empty file, not a pcap or pcapng capture")
	}
	return err
}
