package sip_test

import (
	"strings"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/sip"
)

func TestFrameLength(t *testing.T) {
	two := ok200 + trying100
	tests := []struct {
		name string
		in   string
		want int
		err  error
	}{
		{"one with body", ok200, len(ok200), nil},
		{"two back to back", two, len(ok200), nil},
		{"second of two", two[len(ok200):], len(trying100), nil},
		{"split body", ok200[:len(ok200)-1], 0, sip.ErrIncomplete},
		{"header only of message with body", ok200[:headerEnd(ok200)], 0, sip.ErrIncomplete},
		{"split header", ok200[:100], 0, sip.ErrIncomplete},
		{"split in empty line", ok200[:headerEnd(ok200)-1], 0, sip.ErrIncomplete},
		{"split in start line", "SIP/2.0 200", 0, sip.ErrIncomplete},
		{"empty", "", 0, sip.ErrIncomplete},
		{"compact l", compact200 + "tail", len(compact200), nil},
		{"no content-length", "BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\nSIP/2.0 200 OK\r\n", len("BYE sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"), nil},
		{"content-length 0", trying100 + "x", len(trying100), nil},
		{"lf only", "SIP/2.0 200 OK\nl: 3\n\nabcd", len("SIP/2.0 200 OK\nl: 3\n\nabc"), nil},
		{"folded content-length", "SIP/2.0 200 OK\r\nContent-Length:\r\n 2\r\n\r\nab", len("SIP/2.0 200 OK\r\nContent-Length:\r\n 2\r\n\r\nab"), nil},
		{"first content-length counts", "SIP/2.0 200 OK\r\nl: 1\r\nl: 5\r\n\r\nab", len("SIP/2.0 200 OK\r\nl: 1\r\nl: 5\r\n\r\na"), nil},
		{"keep-alive crlf", "\r\n\r\nSIP/2.0 200 OK\r\n\r\n", 4, nil},
		{"keep-alive lone cr", "\r", 1, nil},
		{"bad content-length", "SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n", 0, sip.ErrContentLength},
		{"negative content-length", "SIP/2.0 200 OK\r\nl: -5\r\n\r\n", 0, sip.ErrContentLength},
		{"content-length over max", "SIP/2.0 200 OK\r\nl: " + itoa(sip.MaxBodyBytes+1) + "\r\n\r\n", 0, sip.ErrContentLength},
		{"content-length at max incomplete", "SIP/2.0 200 OK\r\nl: " + itoa(sip.MaxBodyBytes) + "\r\n\r\n", 0, sip.ErrIncomplete},
		{"other header errors ignored", "SIP/2.0 200 OK\r\nbad\r\nCSeq: x\r\nl: 1\r\n\r\nab", len("SIP/2.0 200 OK\r\nbad\r\nCSeq: x\r\nl: 1\r\n\r\na"), nil},
		{"header too long", "SIP/2.0 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 70), 0, sip.ErrTooLong},
		{"header exactly max", "SIP/2.0 200 OK\r\nX: " + strings.Repeat("p", sip.MaxHeaderBytes-len("SIP/2.0 200 OK\r\nX: \r\n\r\n")) + "\r\n\r\n", sip.MaxHeaderBytes, nil},
		{"header max plus one", "SIP/2.0 200 OK\r\nX: " + strings.Repeat("p", sip.MaxHeaderBytes-len("SIP/2.0 200 OK\r\nX: \r\n\r\n")+1) + "\r\n\r\n", 0, sip.ErrTooLong},
		{"junk without end", strings.Repeat("\x01", sip.MaxHeaderBytes), 0, sip.ErrTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := sip.FrameLength([]byte(tc.in))
			if n != tc.want || err != tc.err {
				t.Errorf("FrameLength() = %d, %v; want %d, %v", n, err, tc.want, tc.err)
			}
		})
	}
}

// TestFrameLengthStream feeds a stream of messages in every chunking of
// a few sizes and checks that the frames come out whole and in order.
func TestFrameLengthStream(t *testing.T) {
	msgs := []string{ok200, "\r\n\r\n", trying100, compact200, inviteSDP, "\r\n", unauth401}
	stream := strings.Join(msgs, "")
	for _, chunk := range []int{1, 7, 100, 1500, len(stream)} {
		var (
			buf []byte
			got []string
		)
		for off := 0; off < len(stream); off += chunk {
			buf = append(buf, stream[off:min(off+chunk, len(stream))]...)
			for {
				n, err := sip.FrameLength(buf)
				if err == sip.ErrIncomplete {
					break
				}
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				f := string(buf[:n])
				// Keep-alive CRLFs split across reads come out in pieces.
				if k := len(got) - 1; k >= 0 && strings.Trim(f, "\r\n") == "" && strings.Trim(got[k], "\r\n") == "" {
					got[k] += f
				} else {
					got = append(got, f)
				}
				buf = buf[n:]
			}
		}
		if strings.Join(got, "|") != strings.Join(msgs, "|") || len(buf) != 0 {
			t.Errorf("chunk %d: got %d frames %q, rest %q", chunk, len(got), got, buf)
		}
	}
}
