package input

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// netmonMagic opens a Microsoft Network Monitor 2.x capture file.
var netmonMagic = [4]byte{'G', 'M', 'B', 'U'}

// netmonMaxFrame bounds one frame record of a NetMon file.
const netmonMaxFrame = 1 << 20

// netmonReader reads Microsoft Network Monitor 2.x capture files, which
// some public SIP test suites still ship. Layout (little-endian): a header
// with the capture start as a SYSTEMTIME and the offset and length of a
// frame table of uint32 file offsets; each frame record holds a uint64
// microsecond delta from the start, the original and the captured length,
// then the frame.
type netmonReader struct {
	r        io.ReaderAt
	linkType layers.LinkType
	start    time.Time
	table    []uint32
	next     int
	buf      []byte
}

func newNetmonReader(r io.ReaderAt) (*netmonReader, error) {
	var hdr [32]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("netmon header: %w", err)
	}
	if hdr[5] != 2 {
		return nil, fmt.Errorf("netmon version %d.%d: only 2.x is read", hdr[5], hdr[4])
	}
	n := &netmonReader{r: r, linkType: layers.LinkTypeEthernet}
	if media := binary.LittleEndian.Uint16(hdr[6:]); media != 1 {
		n.linkType = layers.LinkType(0xffff) // not decoded: counted as SkipLinkType
	}
	u := func(i int) int { return int(binary.LittleEndian.Uint16(hdr[8+2*i:])) }
	n.start = time.Date(u(0), time.Month(u(1)), u(3), u(4), u(5), u(6), u(7)*int(time.Millisecond), time.UTC)
	off, size := binary.LittleEndian.Uint32(hdr[24:]), binary.LittleEndian.Uint32(hdr[28:])
	if size%4 != 0 || size > 64<<20 {
		return nil, fmt.Errorf("netmon frame table of %d bytes", size)
	}
	table := make([]byte, size)
	if _, err := r.ReadAt(table, int64(off)); err != nil {
		return nil, fmt.Errorf("netmon frame table: %w", err)
	}
	n.table = make([]uint32, size/4)
	for i := range n.table {
		n.table[i] = binary.LittleEndian.Uint32(table[4*i:])
	}
	return n, nil
}

// ZeroCopyReadPacketData returns the next frame; the data is valid until
// the next call. io.EOF after the last frame, io.ErrUnexpectedEOF when a
// frame record is cut short.
func (n *netmonReader) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	if n.next >= len(n.table) {
		return nil, ci, io.EOF
	}
	off := int64(n.table[n.next])
	n.next++
	var rec [16]byte
	if _, err := n.r.ReadAt(rec[:], off); err != nil {
		return nil, ci, io.ErrUnexpectedEOF
	}
	delta := binary.LittleEndian.Uint64(rec[0:])
	ci.Length = int(binary.LittleEndian.Uint32(rec[8:]))
	ci.CaptureLength = int(binary.LittleEndian.Uint32(rec[12:]))
	if ci.CaptureLength > netmonMaxFrame {
		return nil, ci, fmt.Errorf("netmon frame %d: %d bytes", n.next, ci.CaptureLength)
	}
	if cap(n.buf) < ci.CaptureLength {
		n.buf = make([]byte, ci.CaptureLength)
	}
	data := n.buf[:ci.CaptureLength]
	if _, err := n.r.ReadAt(data, off+16); err != nil {
		return nil, ci, io.ErrUnexpectedEOF
	}
	ci.Timestamp = n.start.Add(time.Duration(delta) * time.Microsecond)
	return data, ci, nil
}
