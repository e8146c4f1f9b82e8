package collector

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestMergeHistogram: the parts of a series summed at the scrape
// (mergeHistogram) are the histogram of all their observations: the count,
// the classic buckets, and each native bucket, checked against the
// observed values themselves (the bucket of v at schema s is
// ceil(log2(v) * 2^s)), also when one part has halved its resolution past
// the bucket limit and the others have not.
func TestMergeHistogram(t *testing.T) {
	mk := func() prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "h", Help: "h", Buckets: DelayBuckets,
			NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 160,
			NativeHistogramMinResetDuration: time.Hour,
		})
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name  string
		parts int
		wide  bool // part 0 sees values over 60 doublings: past 160 buckets
	}{{"two parts", 2, false}, {"four parts", 4, false}, {"one part coarser", 3, true}} {
		parts := make([]prometheus.Histogram, tc.parts)
		for i := range parts {
			parts[i] = mk()
		}
		var values []float64
		for i := range 5000 {
			v := math.Exp2(rng.Float64()*13 - 10) // 1 ms .. 8 s
			if tc.wide && i%2 == 0 {
				v = math.Exp2(rng.Float64()*60 - 30)
			}
			if i%97 == 0 {
				v = 0 // the zero bucket
			}
			p := rng.IntN(tc.parts)
			if tc.wide && i%2 == 0 {
				p = 0
			}
			parts[p].Observe(v)
			values = append(values, v)
		}
		var out dto.Metric
		if err := parts[0].Write(&out); err != nil {
			t.Fatal(err)
		}
		for _, p := range parts[1:] {
			var d dto.Metric
			if err := p.Write(&d); err != nil {
				t.Fatal(err)
			}
			mergeHistogram(out.Histogram, d.Histogram)
		}
		h := out.Histogram
		if h.GetSampleCount() != uint64(len(values)) {
			t.Errorf("%s: count %d, want %d", tc.name, h.GetSampleCount(), len(values))
		}
		for _, b := range h.Bucket {
			var n uint64
			for _, v := range values {
				if v <= b.GetUpperBound() {
					n++
				}
			}
			if b.GetCumulativeCount() != n {
				t.Errorf("%s: le=%v count %d, want %d", tc.name, b.GetUpperBound(), b.GetCumulativeCount(), n)
			}
		}
		s := h.GetSchema()
		if tc.wide && s >= 3 {
			t.Errorf("%s: schema %d, want a coarser one than 3", tc.name, s)
		}
		want := map[int32]int64{}
		var zero uint64
		for _, v := range values {
			if v <= h.GetZeroThreshold() {
				zero++
				continue
			}
			want[int32(math.Ceil(math.Log2(v)*math.Exp2(float64(s))))]++
		}
		got := nativeBuckets(h.PositiveSpan, h.PositiveDelta, 0)
		if h.GetZeroCount() != zero || len(got) != len(want) {
			t.Errorf("%s: zero %d, %d buckets; want %d, %d", tc.name, h.GetZeroCount(), len(got), zero, len(want))
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: schema %d bucket %d: %d, want %d", tc.name, s, k, got[k], n)
			}
		}
	}
}

// TestMergeHistogramEmpty: parts without observations merge into an empty
// native histogram, which keeps its one empty span.
func TestMergeHistogramEmpty(t *testing.T) {
	mk := func() prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: DelayBuckets, NativeHistogramBucketFactor: 1.1})
	}
	var a, b dto.Metric
	if err := mk().Write(&a); err != nil {
		t.Fatal(err)
	}
	if err := mk().Write(&b); err != nil {
		t.Fatal(err)
	}
	mergeHistogram(a.Histogram, b.Histogram)
	if a.Histogram.GetSampleCount() != 0 || len(a.Histogram.PositiveSpan) != 1 || a.Histogram.PositiveSpan[0].GetLength() != 0 {
		t.Errorf("empty merge: %v", a.Histogram)
	}
}
