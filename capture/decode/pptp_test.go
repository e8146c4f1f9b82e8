package decode_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/sip-exporter/sip_exporter/capture/input"
)

// TestDecodePPTPEdges: the enhanced GRE header and the PPP frame of PPTP
// (RFC 2637 §4.1, RFC 1661), each malformed or unusual case counted under
// its reason, and a payload length field that runs past the capture keeps
// what was captured.
func TestDecodePPTPEdges(t *testing.T) {
	ip := udpPacket(t, alice4, bob4, []byte(messages[1].text))
	hdr := func(flags, proto, plen uint16, rest ...byte) []byte {
		h := binary.BigEndian.AppendUint16(nil, flags)
		h = binary.BigEndian.AppendUint16(h, proto)
		h = binary.BigEndian.AppendUint16(h, plen)
		h = binary.BigEndian.AppendUint16(h, 0x4711)
		return append(h, rest...)
	}
	full := pptp(ip, false, false, false)
	for _, tc := range []struct {
		name string
		gre  []byte
		msgs int
		want string // counter key of counts(), besides messages
	}{
		{"whole", full, 1, "ppp"},
		{"ack only", hdr(0x2081, 0x880b, 0, 0, 0, 0, 1), 0, "skip/not_ip"},
		{"lcp", hdr(0x2001, 0x880b, 6, 0xff, 0x03, 0xc0, 0x21, 1, 2), 0, "skip/not_ip"},
		{"compressed data (ccp)", hdr(0x2001, 0x880b, 3, 0x00, 0xfd, 0x42), 0, "skip/not_ip"},
		{"no key", append([]byte{0x00, 0x01, 0x88, 0x0b}, full[4:]...), 0, "error/tunnel_header"},
		{"checksum flag", append([]byte{0xa0, 0x01}, full[2:]...), 0, "error/tunnel_header"},
		{"other protocol", append([]byte{0x20, 0x01, 0x08, 0x00}, full[4:]...), 0, "skip/ip_protocol"},
		{"header cut", hdr(0x3081, 0x880b, 100, 0, 0), 0, "error/tunnel_header"}, // needs 16 bytes
		{"ppp cut to the address byte", hdr(0x2001, 0x880b, 1, 0xff), 0, "skip/not_ip"},
		{"ppp protocol cut", hdr(0x2001, 0x880b, 3, 0xff, 0x03, 0x00), 0, "error/tunnel_header"},
		{"payload length 0 with a payload", hdr(0x2001, 0x880b, 0, full[8:]...), 0, "skip/not_ip"},
		{"payload length past the capture", hdr(0x2001, 0x880b, 0xffff, full[8:]...), 1, "ppp"},
		{"payload length cuts the ip packet", hdr(0x2001, 0x880b, 30, full[8:]...), 0, "error/udp_header"}, // as a snap length would
		{"version 2", append([]byte{0x20, 0x02}, full[2:]...), 0, "skip/ip_protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, st, rec := newDecoder(t, nil)
			f := outerIP(t, layers.IPProtocolGRE, tc.gre)
			d.Packet(layers.LinkTypeEthernet, f, 0, len(f))
			c := counts(st)
			enc := map[string]uint64{}
			st.Encapsulations(func(k string, n uint64) { enc[k] = n })
			c["ppp"] = enc["ppp"]
			if len(rec.msgs) != tc.msgs || c[tc.want] != 1 || enc["gre"] != 1 {
				t.Errorf("messages %v, counts %v, gre %d; want %d messages, %s 1, gre 1", rec.msgs, c, enc["gre"], tc.msgs, tc.want)
			}
		})
	}
}

// TestDecodePPTPCorpus rewrites every Ethernet capture of the shared
// corpus (real SIP over UDP and TCP, IPv4 and IPv6) as if it had been
// captured inside a PPTP tunnel: each IP packet inside PPP inside enhanced
// GRE inside an outer IPv4 packet, the PPP framing varied packet by packet
// (with and without address/control bytes, protocol field of one or two
// bytes, with and without sequence and acknowledgment numbers). The
// tunnelled capture, written with the pcapgo writer, must count exactly
// what the original counts.
func TestDecodePPTPCorpus(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/corpus/*.expected.tsv")
	if len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no corpus at ../../../shared/corpus")
		}
		t.Skip("no corpus at ../../../shared/corpus (shared/ is not beside the repository)")
	}
	var tunnelled int
	for _, exp := range files {
		path := strings.TrimSuffix(exp, ".expected.tsv")
		frames, lt := readFrames(t, path)
		if lt != layers.LinkTypeEthernet {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			var wrapped []packet
			var n int
			for i, p := range frames {
				if len(p.data) < 15 || (binary.BigEndian.Uint16(p.data[12:]) != 0x0800 && binary.BigEndian.Uint16(p.data[12:]) != 0x86dd) {
					wrapped = append(wrapped, p)
					continue
				}
				ip := p.data[14:]
				g := pptp(ip, i%2 == 0, i%3 == 0, i%4 == 1)
				wrapped = append(wrapped, packet{layers.LinkTypeEthernet, outerIP(t, layers.IPProtocolGRE, g), p.ts})
				n++
			}
			out := filepath.Join(t.TempDir(), "pptp.pcap")
			writePcap(t, out, true, layers.LinkTypeEthernet, wrapped)
			plainSt, plainRec, err := readFile(t, context.Background(), input.FileConfig{Path: path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			st, rec, err := readFile(t, context.Background(), input.FileConfig{Path: out}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !sameMsgs(rec.msgs, plainRec.msgs) || st.Responses.Load() != plainSt.Responses.Load() || st.Requests.Load() != plainSt.Requests.Load() {
				t.Errorf("tunnelled: %d requests, %d responses %v\nplain: %d requests, %d responses %v",
					st.Requests.Load(), st.Responses.Load(), rec.msgs, plainSt.Requests.Load(), plainSt.Responses.Load(), plainRec.msgs)
			}
			var ppp uint64
			st.Encapsulations(func(k string, v uint64) {
				if k == "ppp" {
					ppp = v
				}
			})
			if ppp != uint64(n) {
				t.Errorf("ppp counted %d, want %d packets tunnelled", ppp, n)
			}
			tunnelled += int(st.Responses.Load())
		})
	}
	t.Logf("%d SIP responses counted through PPTP, as without", tunnelled)
}

// readFrames reads every frame of a pcap or pcapng file and its link
// type; none and link type 0 for another format.
func readFrames(t *testing.T, path string) ([]packet, layers.LinkType) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		read func() ([]byte, gopacket.CaptureInfo, error)
		lt   layers.LinkType
	)
	if r, err := pcapgo.NewReader(f); err == nil {
		read, lt = r.ReadPacketData, r.LinkType()
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, 0 // NetMon: input reads it, pcapgo does not
		}
		read, lt = r.ReadPacketData, r.LinkType()
	}
	var out []packet
	for {
		data, ci, err := read()
		if errors.Is(err, io.EOF) {
			return out, lt
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, packet{lt, data, ci.Timestamp})
	}
}

// TestDecodeGRELengths: the fields that set the length of a GRE header
// (RFC 2784, RFC 2890, RFC 1701's routing) and of what it carries never
// make the decoder read past the packet or take header bytes for payload.
func TestDecodeGRELengths(t *testing.T) {
	ip := udpPacket(t, alice4, bob4, []byte(messages[1].text))
	for _, tc := range []struct {
		name string
		gre  []byte
		msgs int
		want string
	}{
		{"plain", cat(gre(0, 0x0800), ip), 1, "responses"},
		{"checksum, key, sequence", cat(gre(0xb000, 0x0800), ip), 1, "responses"},
		{"routing (RFC 1701): offset and source route entries not decoded", cat([]byte{0x40, 0, 0x08, 0, 0, 0, 0, 0, 0, 0x01, 0, 0}, ip), 0, "error/tunnel_header"},
		{"checksum flag, field cut", []byte{0x80, 0, 0x08, 0, 0, 0}, 0, "error/tunnel_header"},
		{"key and sequence flags, fields cut", []byte{0x30, 0, 0x08, 0, 0, 0, 0, 7}, 0, "error/tunnel_header"},
		{"erspan II header cut", cat(gre(0x1000, 0x88be), []byte{0x10, 0x64, 0, 1}), 0, "error/tunnel_header"},
		{"erspan III optional subheader cut", cat(gre(0x1000, 0x22eb), []byte{0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0}), 0, "error/tunnel_header"},
		{"header only", gre(0, 0x0800), 0, "error/ip_header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, st, rec := newDecoder(t, nil)
			f := outerIP(t, layers.IPProtocolGRE, tc.gre)
			d.Packet(layers.LinkTypeEthernet, f, 0, len(f))
			c := counts(st)
			if len(rec.msgs) != tc.msgs || c[tc.want] == 0 {
				t.Errorf("messages %v, counts %v; want %d messages and %s", rec.msgs, c, tc.msgs, tc.want)
			}
		})
	}
}
