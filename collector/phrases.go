package collector

import (
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sip-exporter/sip_exporter/collector/sipstatus"
)

// PhrasesConfig configures the counting of reason phrases as sent on the
// wire, in sip_response_phrases_total.
type PhrasesConfig struct {
	// MaxPerCode is how many distinct phrases each status code counts under
	// their own label value, the first ones seen since start; later ones
	// count as phrase="other". 0 turns phrase counting off; at most
	// [MaxPhrasesPerCode].
	MaxPerCode int
}

// MaxPhrasesPerCode bounds [PhrasesConfig.MaxPerCode].
const MaxPhrasesPerCode = 256

// MaxPhraseBytes bounds the length of a phrase label value.
const MaxPhraseBytes = 64

// OtherPhrase is the phrase label value of phrases past the limit of their
// code, and of the phrase "other" itself.
const OtherPhrase = "other"

// phraseSet is the phrases known for one status code, in order of first
// appearance. Replaced, never modified.
type phraseSet struct {
	index map[string]int
	names []string
}

// phraseTable holds the phrases known per status code, shared by every
// node, so that the limit is per code. Lookups of known phrases take no
// lock (copy on write); a new phrase is added under mu.
type phraseTable struct {
	max   int
	mu    sync.Mutex
	codes [numCodes]atomic.Pointer[phraseSet]
}

func newPhraseTable(maxPerCode int) *phraseTable { return &phraseTable{max: maxPerCode} }

// phraseCounts are the phrase counters of one node: per code, one per known
// phrase and one for "other".
type phraseCounts struct {
	t      *phraseTable
	counts []atomic.Uint64 // index (code-MinCode)*(max+1) + phrase index
}

func (t *phraseTable) newCounts() *phraseCounts {
	return &phraseCounts{t: t, counts: make([]atomic.Uint64, numCodes*(t.max+1))}
}

// observe counts one response with code and the phrase as sent.
func (pc *phraseCounts) observe(code int, phrase []byte) {
	if !sipstatus.Valid(code) {
		return
	}
	ci := code - sipstatus.MinCode
	pc.counts[ci*(pc.t.max+1)+pc.t.index(ci, phrase)].Add(1)
}

// index returns the index of the normalised phrase among those of code
// index ci, adding it if there is room, else the index of "other".
func (t *phraseTable) index(ci int, phrase []byte) int {
	var buf [MaxPhraseBytes]byte
	key := buf[:normalisePhrase(&buf, phrase)]
	s := t.codes[ci].Load()
	if s != nil {
		if i, ok := s.index[string(key)]; ok {
			return i
		}
		if len(s.names) >= t.max {
			return t.max
		}
	}
	if string(key) == OtherPhrase {
		return t.max
	}
	return t.add(ci, key)
}

// add is the slow path of index: a phrase not known yet.
func (t *phraseTable) add(ci int, key []byte) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.codes[ci].Load()
	n := &phraseSet{index: map[string]int{}}
	if old != nil {
		if i, ok := old.index[string(key)]; ok {
			return i
		}
		if len(old.names) >= t.max {
			return t.max
		}
		for k, v := range old.index {
			n.index[k] = v
		}
		n.names = append(n.names, old.names...)
	}
	name := string(key)
	n.index[name] = len(n.names)
	n.names = append(n.names, name)
	t.codes[ci].Store(n)
	return n.index[name]
}

// collect sends one sample per (code, phrase) counted for the node.
func (t *phraseTable) collect(ch chan<- prometheus.Metric, desc *prometheus.Desc, node string, pc *phraseCounts) {
	for ci := range t.codes {
		s := t.codes[ci].Load()
		if s == nil {
			continue
		}
		row := pc.counts[ci*(t.max+1) : (ci+1)*(t.max+1)]
		for i := range row {
			v := row[i].Load()
			if v == 0 {
				continue
			}
			name := OtherPhrase
			if i < len(s.names) {
				name = s.names[i]
			}
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), node, codeLabels[ci], name)
		}
	}
}

// normalisePhrase writes the label value of a reason phrase as sent into
// dst and returns its length: horizontal tabs become spaces, other control
// characters (C0, DEL, C1) are dropped, bytes that are not UTF-8 become
// U+FFFD, leading and trailing spaces are trimmed, and the result is cut to
// [MaxPhraseBytes] on a character boundary. It does not allocate.
func normalisePhrase(dst *[MaxPhraseBytes]byte, src []byte) int {
	n := 0
	for i := 0; i < len(src); {
		if c := src[i]; c > ' ' && c < 0x7f { // printable ASCII but space: most phrases
			if n == MaxPhraseBytes {
				break
			}
			dst[n] = c
			n++
			i++
			continue
		}
		r, size := rune(src[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(src[i:])
		}
		i += size
		switch {
		case r == '\t':
			r = ' '
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
			continue
		}
		if r == ' ' && n == 0 {
			continue
		}
		l := utf8.RuneLen(r) // U+FFFD for invalid bytes: 3
		if n+l > MaxPhraseBytes {
			break
		}
		n += utf8.EncodeRune(dst[n:], r)
	}
	for n > 0 && dst[n-1] == ' ' {
		n--
	}
	return n
}
