package sip_test

import (
	"bytes"
	"testing"

	"github.com/sip-exporter/sip_exporter/capture/sip"
)

func addSeeds(f *testing.F) {
	for _, s := range corpus {
		f.Add([]byte(s))
		f.Add([]byte(s[:len(s)/2]))
		f.Add(bytes.ReplaceAll([]byte(s), []byte("\r\n"), []byte("\n")))
	}
	for _, tc := range parseCases {
		if len(tc.in) < 4096 {
			f.Add([]byte(tc.in))
		}
	}
	for _, s := range differentialInputs {
		f.Add([]byte(s))
	}
	f.Add([]byte(ok200 + "\r\n\r\n" + compact200))
}

// within reports whether s is nil or a sub-slice of b.
func within(b, s []byte) bool {
	if s == nil {
		return true
	}
	off := cap(b) - cap(s)
	if off < 0 || off > len(b) || off+len(s) > len(b) {
		return false
	}
	return cap(s) == 0 || &s[:1][0] == &b[:cap(b)][off]
}

// FuzzParse checks that Parse, IsStart and FrameLength never panic, stay
// within their input and bounds, agree with each other, and agree with
// sipgo wherever sipgo accepts the input (see diffSipgo).
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m sip.Message
		err := sip.Parse(b, &m)
		startErr := false
		switch err {
		case nil, sip.ErrHeader, sip.ErrCSeq, sip.ErrContentLength:
		case sip.ErrNotSIP, sip.ErrStatusLine, sip.ErrStatusCode, sip.ErrRequestLine:
			startErr = true
		case sip.ErrTooLong:
			startErr = !m.Response && m.Method == nil
		default:
			t.Fatalf("Parse returned unexpected error %v", err)
		}
		for _, s := range [][]byte{m.Reason, m.Method, m.CSeqMethod, m.CallID, m.ViaBranch, m.ToTag, m.FromTag, m.Q850Cause, m.SIPCause, m.ToURI, m.Expires, m.ContactExpires, m.Identity, m.PAssertedIdentity, m.From} {
			if !within(b, s) {
				t.Fatalf("slice %q does not alias the input", s)
			}
		}
		isStart := sip.IsStart(b)
		if !startErr {
			if m.HeaderLength <= 0 || m.HeaderLength > len(b) || m.HeaderLength > sip.MaxHeaderBytes {
				t.Fatalf("HeaderLength %d, len %d", m.HeaderLength, len(b))
			}
			if m.Response == (m.Method != nil) || (m.Response && (m.StatusCode < 100 || m.StatusCode > 699)) {
				t.Fatalf("inconsistent start line: %s", render(&m))
			}
			if m.ContentLength < -1 || m.ContentLength > sip.MaxBodyBytes || (m.CSeqMethod == nil && m.CSeq != 0) {
				t.Fatalf("bad fields: %s", render(&m))
			}
			if !isStart {
				t.Fatalf("Parse accepts the start line, IsStart does not")
			}
			for _, c := range m.ContactExpires {
				if c < '0' || c > '9' {
					t.Fatalf("ContactExpires %q is not 1*DIGIT", m.ContactExpires)
				}
			}
			if (m.ContactExpires != nil && len(m.ContactExpires) == 0) || (m.Expires != nil && len(m.Expires) == 0) || (m.ToURI != nil && len(m.ToURI) == 0) ||
				(m.Identity != nil && len(m.Identity) == 0) || (m.PAssertedIdentity != nil && len(m.PAssertedIdentity) == 0) || (m.From != nil && len(m.From) == 0) {
				t.Fatalf("empty field that is not nil: %s", render(&m))
			}
		}
		if isStart && err == sip.ErrNotSIP {
			t.Fatalf("IsStart true, Parse ErrNotSIP")
		}
		if started := sip.Started(b, &m); started != isStart {
			t.Fatalf("Started %v, IsStart %v", started, isStart)
		}

		n, ferr := sip.FrameLength(b)
		switch ferr {
		case nil:
			if n <= 0 || n > len(b) || n > sip.MaxHeaderBytes+sip.MaxBodyBytes {
				t.Fatalf("FrameLength = %d, len %d", n, len(b))
			}
			if n2, err2 := sip.FrameLength(b[:n]); n2 != n || err2 != nil {
				t.Fatalf("FrameLength of the frame = %d, %v; want %d", n2, err2, n)
			}
			if b[0] != '\r' && b[0] != '\n' {
				if _, err2 := sip.FrameLength(b[:n-1]); err2 != sip.ErrIncomplete {
					t.Fatalf("FrameLength of the frame less one byte: %v", err2)
				}
				var fm sip.Message
				if e := sip.Parse(b[:n], &fm); e != sip.ErrNotSIP && e != sip.ErrTooLong && fm.HeaderLength > n {
					t.Fatalf("Parse HeaderLength %d beyond the frame %d", fm.HeaderLength, n)
				}
			}
		case sip.ErrIncomplete, sip.ErrTooLong, sip.ErrContentLength:
		default:
			t.Fatalf("FrameLength returned unexpected error %v", ferr)
		}

		if _, mismatch := diffSipgo(b); mismatch != "" {
			t.Fatalf("differs from sipgo: %s", mismatch)
		}
	})
}
