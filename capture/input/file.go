package input

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
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
	// Passes, with Loop, stops after this many passes; 0 reads until ctx
	// is done.
	Passes int
}

// ErrTruncated is returned, wrapped with the file name, when a capture file
// ends in the middle of a packet record. Everything before the cut has been
// decoded.
var ErrTruncated = errors.New("capture file truncated mid-packet")

// ErrShrunk is returned, wrapped with the file name, when a mapped file
// was made shorter while it was read: what came before is decoded.
var ErrShrunk = errors.New("capture file made shorter while it was read")

// errNotMappable is returned by mapFile for a file that cannot be read in
// place: not a regular file, too short, or one that cannot be mapped.
var errNotMappable = errors.New("not a file that can be mapped")

// packetReader is what pcapgo's pcap and pcapng readers have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// pcapngMagic is the block type of a pcapng Section Header Block.
const pcapngMagic = 0x0a0d0d0a

// progressEvery is how many records a reader passes between two calls of
// its progress function (and of its checks of ctx).
const progressEvery = 1024

// File is a capture file opened for reading by one or more workers, the
// one reader of capture files: pcap (microsecond or nanosecond
// timestamps, either byte order), pcapng (any link type per interface),
// either gzip-compressed, and Microsoft Network Monitor 2.x.
//
// A plain pcap file is mapped into memory and read in place by
// [File.Workers] workers at once: each reads every record header and
// decodes the packets that fall to it ([decode.WorkerHash]): the segments
// of a TCP stream, the fragments of a datagram and the contents of a
// tunnel by their address pair, so that they meet in one decoder; whole
// UDP datagrams by turns, so that one busy address pair (an SBC and its
// proxy) keeps every worker busy. Each hands back to the kernel the pages
// it has passed. Any other
// capture is streamed by one worker.
//
// Every worker numbers the records from 1 by their place in the file
// ([decode.Decoder.FilePacket]) and stamps each with its capture time
// clamped to the latest time of the records before it: times handed on
// never go back, and two records of equal time keep their file order by
// their numbers. The rule needs only the record headers, which every
// worker reads, so the messages handed on, their times and their order
// are the same whatever the number of workers (a file merged with
// `mergecap -a` from two interfaces steps back in time; its records are
// then counted at the time of the latest record before them).
type File struct {
	cfg     FileConfig
	workers int

	// A mapped plain pcap file; data is nil for a streamed file.
	data     []byte
	order    binary.ByteOrder
	nanos    int64 // ns per unit of the timestamp fraction: 1000 or 1
	snaplen  int
	linkType layers.LinkType
}

// OpenFile opens the capture file of cfg for up to workers workers (1 to
// [MaxWorkers]): a plain pcap file is mapped for all of them, any other
// capture gets one ([File.Workers]). It fails, naming the file, when the
// file cannot be opened or read, or is not a capture (empty, a directory,
// text): its format is checked here, not when it is read.
func OpenFile(cfg FileConfig, workers int) (*File, error) {
	if workers < 1 || workers > MaxWorkers {
		return nil, fmt.Errorf("open %q: %d workers: must be 1 to %d", cfg.Path, workers, MaxWorkers)
	}
	f := &File{cfg: cfg, workers: workers}
	data, err := mapFile(cfg.Path)
	switch {
	case err == nil:
		f.data = data
		if f.header() {
			return f, nil
		}
		unmap(data)
		f.data = nil
	case !errors.Is(err, errNotMappable):
		return nil, err
	}
	f.workers = 1
	s, err := openStream(cfg.Path)
	if err != nil {
		return nil, err
	}
	s.close()
	return f, nil
}

// ReadFile reads the capture file of cfg with the one decoder d: it is
// [OpenFile] with one worker, [File.Read] and [File.Close].
func ReadFile(ctx context.Context, cfg FileConfig, d *decode.Decoder) error {
	f, err := OpenFile(cfg, 1)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Read(ctx, 0, d, nil)
}

// Workers returns how many workers read the file: the workers of
// [OpenFile] for a mapped pcap file, else 1.
func (f *File) Workers() int { return f.workers }

// Mapped reports whether the file is mapped (a plain pcap file).
func (f *File) Mapped() bool { return f.data != nil }

// header reads the pcap file header (24 bytes) of the mapped data and
// reports whether it is a plain pcap file that can be read in place.
func (f *File) header() bool {
	if len(f.data) < 24 {
		return false
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
		return false
	}
	if f.order.Uint16(f.data[4:]) != 2 || f.order.Uint16(f.data[6:]) != 4 {
		return false // pcapgo refuses other versions: let it say so
	}
	f.snaplen = int(f.order.Uint32(f.data[16:]))
	f.linkType = layers.LinkType(f.order.Uint32(f.data[20:]))
	return true
}

// Read decodes, with d, the packets of the file that fall to worker
// (0 <= worker < [File.Workers]), in file order, until the file ends
// (Loop unset, or a file without packets) or ctx is done (nil error). Every worker must run Read once,
// on its own goroutine, with its own decoder. Realtime sleeps before each
// packet so that packets are decoded at the pace they were captured, their
// times mapped onto the wall clock (the first packet at the time the pass
// starts); each pass of Loop continues 1 ms after the latest time of the
// pass before, and its messages carry the pass's number
// ([decode.Origin.Pass]), so that a replayed message is new traffic, not
// a copy nor a retransmission of the message of the pass before.
//
// progress, when not nil, is called on the worker's goroutine every 1,024
// records and at the end of each pass with a time (ns since the Unix epoch) that no later
// packet handed to d will be stamped before, also when none of them was
// this worker's or held SIP: a time-ordered merge waiting for this worker
// moves on.
//
// Errors name the file: a record that is corrupt (captured length above
// the snap length or the original length), one wrapping [ErrTruncated]
// when the file ends in the middle of a record, or [ErrShrunk] when a
// mapped file was cut shorter while it was read; what came before is
// decoded.
func (f *File) Read(ctx context.Context, worker int, d *decode.Decoder, progress func(t int64)) error {
	if worker < 0 || worker >= f.workers {
		return fmt.Errorf("read %q: worker %d of %d", f.cfg.Path, worker, f.workers)
	}
	r := recordWalk{cfg: &f.cfg, d: d, progress: progress, worker: uint64(worker), workers: uint64(f.workers), latest: math.MinInt64}
	defer r.stopTimer()
	for pass := 0; f.cfg.Passes == 0 || pass < f.cfg.Passes; pass++ {
		r.startPass(pass)
		d.SetPass(uint32(pass))
		var err error
		if f.data != nil {
			err = f.readMapped(ctx, &r)
		} else {
			err = f.readStream(ctx, &r)
		}
		if err == nil && r.progress != nil && r.n > 0 {
			r.progress(r.latest)
		}
		// A file without packets has nothing to replay.
		if err != nil || !f.cfg.Loop || ctx.Err() != nil || r.n == 0 {
			return err
		}
		d.Reset()
	}
	return nil
}

// Close unmaps a mapped file. Call it once every worker's Read has
// returned and no message decoded from it is still in use.
func (f *File) Close() error {
	if f.data == nil {
		return nil
	}
	err := unmap(f.data)
	f.data = nil
	return err
}

// recordWalk is one worker's walk over the records of a file: the
// numbering, clamping, pacing and progress that every format shares.
type recordWalk struct {
	cfg      *FileConfig
	d        *decode.Decoder
	progress func(int64)
	worker   uint64
	workers  uint64

	pass   int
	n      uint64    // records of this pass so far
	first  int64     // raw time of the pass's first record
	shift  int64     // added to the raw times of this pass
	start  time.Time // when the pass started (Realtime)
	latest int64     // latest time handed on: times are clamped to it
	prev   int64     // latest of the pass before
	timer  *time.Timer
}

func (r *recordWalk) startPass(pass int) {
	r.pass, r.n, r.prev, r.start = pass, 0, r.latest, time.Now()
}

// record handles the next record of the file: raw capture time ts (ns),
// link type lt, frame data and length on the wire. It reports false when
// ctx is done.
func (r *recordWalk) record(ctx context.Context, lt layers.LinkType, data []byte, ts int64, wireLen int) bool {
	r.n++
	if r.n == 1 {
		r.first = ts
		switch {
		case r.cfg.Realtime:
			r.shift = r.start.UnixNano() - ts
		case r.pass > 0:
			r.shift = r.prev + int64(time.Millisecond) - ts
		}
	}
	raw := ts
	ts += r.shift
	if ts < r.latest {
		ts = r.latest
	}
	r.latest = ts
	mine := r.workers == 1
	if !mine {
		h, anyWorker := decode.WorkerHash(lt, data)
		if anyWorker {
			h = r.n // a datagram by itself: the workers take turns
		}
		mine = h%r.workers == r.worker
	}
	if mine {
		if r.cfg.Realtime {
			if !r.pace(ctx, raw) {
				return false
			}
			// pace hands the record on when the wall clock has come to
			// its time ts: that is its time of receipt, and the merge
			// reads no clock for it.
			r.d.SetReceived(ts)
		}
		r.d.FilePacket(r.n, lt, data, ts, wireLen)
	}
	if r.n%progressEvery == 0 {
		if r.progress != nil {
			r.progress(r.latest)
		}
		if ctx.Err() != nil {
			return false
		}
	}
	return true
}

// pace sleeps until the record of raw time raw is due (Realtime); it
// reports false when ctx is done first.
func (r *recordWalk) pace(ctx context.Context, raw int64) bool {
	wait := time.Duration(raw-r.first) - time.Since(r.start)
	if wait <= 0 {
		return true
	}
	if r.timer == nil {
		r.timer = time.NewTimer(wait)
	} else {
		r.timer.Reset(wait)
	}
	select {
	case <-ctx.Done():
		return false
	case <-r.timer.C:
		return true
	}
}

func (r *recordWalk) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// maxMappedCaptureLength bounds a record's captured length when the file's
// snap length is lower, as pcapgo does (its eager-read limit): larger is
// a corrupt file.
const maxMappedCaptureLength = 256 << 10

// releaseEvery is how far, in bytes, a worker reads before it hands back
// the pages it has passed, so that the mapping does not pile up in the
// process's memory.
const releaseEvery = 8 << 20

// readMapped makes one pass over the records of a mapped file.
func (f *File) readMapped(ctx context.Context, r *recordWalk) (err error) {
	// A file cut shorter while mapped (rotated in place, truncated by its
	// writer) faults where its pages were: that is an error, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if _, fault := p.(interface{ Addr() uintptr }); !fault {
				panic(p)
			}
			err = fmt.Errorf("read %q: %w", f.cfg.Path, ErrShrunk)
		}
	}()
	released := 0
	limit := max(f.snaplen, maxMappedCaptureLength)
	next := releaseEvery
	off := 24
	for {
		if off == len(f.data) {
			return nil
		}
		if len(f.data)-off < 16 {
			return fmt.Errorf("read %q: %w", f.cfg.Path, ErrTruncated)
		}
		h := f.data[off : off+16]
		caplen, wirelen := int(f.order.Uint32(h[8:])), int(f.order.Uint32(h[12:]))
		switch {
		case caplen > limit:
			return fmt.Errorf("read %q: packet %d: captured length %d exceeds the snap length %d", f.cfg.Path, r.n+1, caplen, f.snaplen)
		case caplen > wirelen:
			return fmt.Errorf("read %q: packet %d: captured length %d exceeds the original length %d", f.cfg.Path, r.n+1, caplen, wirelen)
		case len(f.data)-off-16 < caplen:
			return fmt.Errorf("read %q: %w", f.cfg.Path, ErrTruncated)
		}
		data := f.data[off+16 : off+16+caplen : off+16+caplen]
		off += 16 + caplen
		ts := int64(f.order.Uint32(h[0:]))*1e9 + int64(f.order.Uint32(h[4:]))*f.nanos
		if !r.record(ctx, f.linkType, data, ts, wirelen) {
			return nil
		}
		if off >= next {
			next = off + releaseEvery
			released = f.release(released, off)
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
func (f *File) release(from, to int) int {
	to &^= pageSize - 1
	if to > from {
		dontNeed(f.data[from:to])
		return to
	}
	return from
}

// stream is an open capture file read record by record.
type stream struct {
	r         packetReader
	linkTypes func(ifIndex int) layers.LinkType
	closers   []io.Closer
}

func (s *stream) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i].Close()
	}
}

// openStream opens the capture file at path for reading record by record,
// or fails naming the file when it is not a capture.
func openStream(path string) (*stream, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	s := &stream{closers: []io.Closer{f}}
	fail := func(err error) (*stream, error) {
		s.close()
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		return fail(fmt.Errorf("read %q: %w", path, errNotCapture(err)))
	}
	gzipped := magic[0] == 0x1f && magic[1] == 0x8b
	if gzipped {
		// Decompress here rather than leave it to pcapgo, which only
		// knows gzip'd pcap: pcapng is often stored gzip'd too.
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fail(fmt.Errorf("read %q: gzip: %w", path, err))
		}
		s.closers = append(s.closers, zr)
		br = bufio.NewReaderSize(zr, 1<<20)
		if magic, err = br.Peek(4); err != nil {
			return fail(fmt.Errorf("read %q: gzip: %w", path, errNotCapture(err)))
		}
	}
	switch {
	case [4]byte(magic) == netmonMagic && !gzipped:
		nm, err := newNetmonReader(f)
		if err != nil {
			return fail(fmt.Errorf("read netmon file %q: %w", path, err))
		}
		s.r = nm
		s.linkTypes = func(int) layers.LinkType { return nm.linkType }
	case binary.LittleEndian.Uint32(magic) == pcapngMagic:
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return fail(fmt.Errorf("read pcapng file %q: %w", path, err))
		}
		s.r = ng
		var cache []layers.LinkType
		s.linkTypes = func(ifIndex int) layers.LinkType {
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
			return fail(fmt.Errorf("read %q: not a pcap, pcapng or NetMon 2.x capture: %w", path, err))
		}
		s.r = pr
		lt := pr.LinkType()
		s.linkTypes = func(int) layers.LinkType { return lt }
	}
	return s, nil
}

// readStream makes one pass over the records of a streamed file.
func (f *File) readStream(ctx context.Context, r *recordWalk) error {
	s, err := openStream(f.cfg.Path)
	if err != nil {
		return err
	}
	defer s.close()
	for {
		data, ci, err := s.r.ZeroCopyReadPacketData()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("read %q: %w", f.cfg.Path, ErrTruncated)
		case err != nil:
			return fmt.Errorf("read %q: %w", f.cfg.Path, err)
		}
		if !r.record(ctx, s.linkTypes(ci.InterfaceIndex), data, ci.Timestamp.UnixNano(), ci.Length) {
			return nil
		}
	}
}

func errNotCapture(err error) error {
	if err == io.EOF {
		return errors.New("empty file, not a pcap or pcapng capture")
	}
	return err
}
