package sip_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/sip"
)

// corpusDir holds public captures with real SIP traffic. They are read at
// test time only; the tests skip when the directory is missing (outside
// CI: under CI=true shared/ is always there).
const corpusDir = "../../../shared/corpus" // shared/ beside the repository

// corpusMessages returns the SIP messages found in the UDP and TCP payloads
// of the captures in corpusDir, keyed by file. It is a minimal reader for
// pcap and pcapng (Ethernet, BSD loopback, raw IP, Linux cooked) without TCP
// reassembly: a TCP segment is split with FrameLength and a trailing partial
// message is kept as is.
func corpusMessages(t testing.TB) map[string][][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.*cap*"))
	out := map[string][][]byte{}
	for _, f := range files {
		if filepath.Ext(f) == ".tsv" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		var msgs [][]byte
		forEachPacket(data, func(link uint32, pkt []byte) {
			proto, payload := transport(link, pkt)
			for len(payload) > 0 && sip.IsStart(payload) {
				n, err := sip.FrameLength(payload)
				if err != nil || proto == 17 {
					n = len(payload) // UDP: one datagram is one message
				}
				msgs = append(msgs, payload[:n])
				payload = payload[n:]
			}
		})
		out[filepath.Base(f)] = msgs
	}
	return out
}

// forEachPacket calls fn with the link type and bytes of every packet.
func forEachPacket(d []byte, fn func(link uint32, pkt []byte)) {
	if len(d) < 24 {
		return
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch binary.LittleEndian.Uint32(d) {
	case 0xa1b2c3d4, 0xa1b23c4d:
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	case 0x0a0d0d0a:
		forEachPcapng(d, fn)
		return
	default:
		return
	}
	link := bo.Uint32(d[20:]) & 0xffff
	for p := 24; p+16 <= len(d); {
		n := int(bo.Uint32(d[p+8:]))
		if p+16+n > len(d) {
			return
		}
		fn(link, d[p+16:p+16+n])
		p += 16 + n
	}
}

func forEachPcapng(d []byte, fn func(link uint32, pkt []byte)) {
	var (
		bo    binary.ByteOrder = binary.LittleEndian
		links []uint32
	)
	for p := 0; p+12 <= len(d); {
		typ := binary.LittleEndian.Uint32(d[p:])
		if typ == 0x0a0d0d0a {
			if binary.LittleEndian.Uint32(d[p+8:]) == 0x1a2b3c4d {
				bo = binary.LittleEndian
			} else {
				bo = binary.BigEndian
			}
			links = links[:0]
		} else {
			typ = bo.Uint32(d[p:])
		}
		n := int(bo.Uint32(d[p+4:]))
		if n < 12 || p+n > len(d) {
			return
		}
		b := d[p : p+n]
		switch typ {
		case 1: // interface description
			links = append(links, uint32(bo.Uint16(b[8:])))
		case 6: // enhanced packet
			iface, capLen := bo.Uint32(b[8:]), int(bo.Uint32(b[20:]))
			if int(iface) < len(links) && 28+capLen <= len(b) {
				fn(links[iface], b[28:28+capLen])
			}
		case 3: // simple packet
			if len(links) > 0 {
				fn(links[0], b[12:len(b)-4])
			}
		}
		p += n
	}
}

// transport returns the IP protocol number (6 TCP, 17 UDP) and payload of a
// packet, or 0 and nil.
func transport(link uint32, p []byte) (int, []byte) {
	var ethType uint16
	switch link {
	case 1: // Ethernet
		if len(p) < 14 {
			return 0, nil
		}
		ethType, p = binary.BigEndian.Uint16(p[12:]), p[14:]
		for (ethType == 0x8100 || ethType == 0x88a8) && len(p) >= 4 {
			ethType, p = binary.BigEndian.Uint16(p[2:]), p[4:]
		}
	case 0, 108: // BSD loopback, OpenBSD loopback
		if len(p) < 4 {
			return 0, nil
		}
		p = p[4:]
	case 101, 12, 14, 228, 229: // raw IP
	case 113: // Linux cooked
		if len(p) < 16 {
			return 0, nil
		}
		ethType, p = binary.BigEndian.Uint16(p[14:]), p[16:]
	case 276: // Linux cooked v2
		if len(p) < 20 {
			return 0, nil
		}
		ethType, p = binary.BigEndian.Uint16(p[0:]), p[20:]
	default:
		return 0, nil
	}
	_ = ethType // the IP version nibble decides
	if len(p) < 1 {
		return 0, nil
	}
	var proto int
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return 0, nil
		}
		ihl, total := int(p[0]&0xf)*4, int(binary.BigEndian.Uint16(p[2:]))
		if binary.BigEndian.Uint16(p[6:])&0x1fff != 0 || ihl < 20 || total < ihl || total > len(p) {
			return 0, nil // later fragment or bad header
		}
		proto, p = int(p[9]), p[ihl:total]
	case 6:
		if len(p) < 40 {
			return 0, nil
		}
		proto, p = int(p[6]), p[40:]
		for (proto == 0 || proto == 43 || proto == 60 || proto == 44) && len(p) >= 8 {
			n := int(p[1])*8 + 8
			if proto == 44 {
				n = 8
			}
			if n > len(p) {
				return 0, nil
			}
			proto, p = int(p[0]), p[n:]
		}
	default:
		return 0, nil
	}
	switch proto {
	case 17:
		if len(p) < 8 {
			return 0, nil
		}
		return 17, p[8:]
	case 6:
		if len(p) < 20 || int(p[12]>>4)*4 > len(p) {
			return 0, nil
		}
		return 6, p[int(p[12]>>4)*4:]
	}
	return 0, nil
}

// TestCorpus parses every SIP message of the public captures and logs what
// was found; Parse must not fail on a start line there except on the PROTOS
// test suite, which is malformed on purpose.
func TestCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no corpus:", err)
		}
		t.Skip("no corpus:", err)
	}
	total := 0
	for file, msgs := range corpusMessages(t) {
		resps, errs, counts := 0, map[string]int{}, map[string]int{}
		for _, b := range msgs {
			var m sip.Message
			err := sip.Parse(b, &m)
			if err != nil {
				errs[err.(*sip.Error).Reason]++
			}
			if m.Response && m.StatusCode != 0 {
				resps++
				counts[fmt.Sprintf("%d\t%s\t%s", m.StatusCode, m.CSeqMethod, escape(m.Reason))]++
			}
		}
		total += len(msgs)
		t.Logf("%s: %d messages, %d responses, errors %v", file, len(msgs), resps, errs)
		want, err := os.ReadFile(filepath.Join(corpusDir, file+".expected.tsv"))
		if err != nil {
			t.Fatal(err)
		}
		wantCounts := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n")[1:] {
			i := strings.LastIndexByte(line, '\t')
			n, _ := strconv.Atoi(line[i+1:])
			wantCounts[line[:i]] = n
		}
		if !reflect.DeepEqual(counts, wantCounts) {
			t.Errorf("%s: response counts\n got %v\nwant %v", file, counts, wantCounts)
		}
	}
	if total < 1000 {
		t.Errorf("found only %d SIP messages in %s", total, corpusDir)
	}
}

// escape writes bytes outside printable ASCII as \xNN, like the expected files.
func escape(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			fmt.Fprintf(&sb, "\\x%02x", c)
		} else {
			sb.WriteByte(c)
		}
	}
	return sb.String()
}
