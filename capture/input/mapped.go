package input

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/gopacket/gopacket/layers"

	"github.com/sip-exporter/sip_exporter/capture/decode"
)

// ErrNotMappable is returned by [MapFile] for a capture that several
// workers cannot read in place: not a classic pcap file (pcapng, NetMon,
// gzip-compressed), not a regular file, or one that cannot be mapped.
// Read it with [ReadFile] instead.
var ErrNotMappable = errors.New("not a plain pcap file that can be mapped")

// ErrShrunk is returned, wrapped with the file name, when a mapped file
// was made shorter while it was read: what came before is decoded.
var ErrShrunk = errors.New("capture file made shorter while it was read")

// maxMappedCaptureLength bounds a record's captured length when the file's
// snap length is lower, as pcapgo does (its eager-read limit): larger is
// a corrupt file.
const maxMappedCaptureLength = 256 << 10

// releaseEvery is how far, in bytes, a worker reads before it hands back
// the pages it has passed, so that the mapping does not pile up in the
// process's memory.
const releaseEvery = 8 << 20

// MappedFile is a classic pcap file (microsecond or nanosecond timestamps,
// either byte order) mapped into memory, which several workers decode at
// once: each reads every record header and decodes the packets whose
// [decode.FlowHash] falls to it (packet n to worker FlowHash mod workers),
// numbered by their place in the file ([decode.Decoder.FilePacket]), so
// that the time-ordered merge of their messages keeps the file's order.
// The frames are decoded in place, not copied. Each worker hands the pages
// it has passed back to the kernel as it goes.
type MappedFile struct {
	path     string
	data     []byte
	order    binary.ByteOrder
	nanos    int64 // ns per unit of the timestamp fraction: 1000 or 1
	snaplen  int
	linkType layers.LinkType
	workers  int
}

// MapFile maps the capture file at path for workers workers (1 to 64). It
// returns an error wrapping [ErrNotMappable] when the file is not a plain
// pcap file (see there), or the error of opening it (naming the file).
func MapFile(path string, workers int) (*MappedFile, error) {
	if workers < 1 || workers > 64 {
		return nil, fmt.Errorf("map %q: %d workers: must be 1..64", path, workers)
	}
	data, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	f := &MappedFile{path: path, data: data, workers: workers}
	if err := f.header(); err != nil {
		unmap(data)
		return nil, fmt.Errorf("map %q: %w", path, err)
	}
	return f, nil
}

// header reads the pcap file header (24 bytes).
func (f *MappedFile) header() error {
	if len(f.data) < 24 {
		return ErrNotMappable
	}
	switch binary.LittleEndian.Uint32(f.data) {
	case 0xa1b2c3d4:
		f.order, f.nanos = binary.LittleEndian, 1000
	case 0xa1b23c4d:
		f.order, f.nanos = binary.LittleEndian, 1
	case 0xd4c3b2a1:
		f.order, f.nanos = binary.BigEndian, 1000
	case 0x4d3cb2a1:
		f.order, f.nanos = binary.BigEndian, 1
	default:
		return ErrNotMappable
	}
	if f.order.Uint16(f.data[4:]) != 2 || f.order.Uint16(f.data[6:]) != 4 {
		return ErrNotMappable // pcapgo refuses other versions: let it say so
	}
	f.snaplen = int(f.order.Uint32(f.data[16:]))
	f.linkType = layers.LinkType(f.order.Uint32(f.data[20:]))
	return nil
}

// Read decodes, with d, the packets of the file that fall to worker
// (0 <= worker < the workers of MapFile), in file order, until the file
// ends or ctx is done (nil error). Every worker of the file must run Read
// once, on its own goroutine, with its own decoder. It returns an error
// naming the file when a record is corrupt (captured length above the snap
// length or the original length), or one wrapping [ErrTruncated] when the
// file ends in the middle of a record, or [ErrShrunk] when the file was
// cut shorter while mapped; what came before is decoded.
func (f *MappedFile) Read(ctx context.Context, worker int, d *decode.Decoder) (err error) {
	// A file cut shorter while mapped (rotated in place, truncated by its
	// writer) faults where its pages were: that is an error, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			err = fmt.Errorf("read %q: %w", f.path, ErrShrunk)
		}
	}()
	workers := uint64(f.workers)
	me := uint64(worker)
	released := 0
	limit := max(f.snaplen, maxMappedCaptureLength)
	next := releaseEvery
	off := 24
	for n := uint64(1); ; n++ {
		if off == len(f.data) {
			return nil
		}
		if len(f.data)-off < 16 {
			return fmt.Errorf("read %q: %w", f.path, ErrTruncated)
		}
		h := f.data[off : off+16]
		caplen, wirelen := int(f.order.Uint32(h[8:])), int(f.order.Uint32(h[12:]))
		switch {
		case caplen > limit:
			return fmt.Errorf("read %q: packet %d: captured length %d exceeds the snap length %d", f.path, n, caplen, f.snaplen)
		case caplen > wirelen:
			return fmt.Errorf("read %q: packet %d: captured length %d exceeds the original length %d", f.path, n, caplen, wirelen)
		case len(f.data)-off-16 < caplen:
			return fmt.Errorf("read %q: %w", f.path, ErrTruncated)
		}
		data := f.data[off+16 : off+16+caplen : off+16+caplen]
		off += 16 + caplen
		if workers == 1 || decode.FlowHash(f.linkType, data)%workers == me {
			ts := int64(f.order.Uint32(h[0:]))*1e9 + int64(f.order.Uint32(h[4:]))*f.nanos
			d.FilePacket(n, f.linkType, data, ts, wirelen)
		}
		if off >= next {
			next = off + releaseEvery
			released = f.release(released, off)
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// release hands back to the kernel the whole pages from from up to to,
// which this worker has passed, and returns where it stopped. Another
// worker may still be behind: a page handed back is the file's clean page,
// mapped again from the page cache when touched, so each worker keeps
// resident only what it read since its last release, however far apart
// the workers are (one that finds few packets of its own walks ahead).
// Decoders keep no reference to a frame once it is decoded.
func (f *MappedFile) release(from, to int) int {
	to &^= pageSize - 1
	if to > from {
		dontNeed(f.data[from:to])
		return to
	}
	return from
}

// Close unmaps the file. Call it once every worker's Read has returned
// and no message decoded from it is still in use.
func (f *MappedFile) Close() error {
	if f.data == nil {
		return nil
	}
	err := unmap(f.data)
	f.data = nil
	return err
}
