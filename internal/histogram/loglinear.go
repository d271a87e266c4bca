package histogram

import (
	"math"
	"math/bits"
	"slices"
)

// Log-linear histograms: each power of two is split in SubBuckets linear
// buckets, so that a bucket is at most 1/SubBuckets (12.5%) of its lower
// bound wide, and a quantile interpolated inside its bucket is within that
// of the true value. Values below 2*SubBuckets have a bucket of their own.
// The index of v (bpf/penny.h, loglin_bucket) is v itself below
// SubBuckets, otherwise, with m the index of v's highest set bit,
//
//	(m - SubBucketBits + 1) << SubBucketBits | (v >> (m - SubBucketBits)) & (SubBuckets - 1)
//
// the top SubBucketBits bits of v's mantissa below that bit. The buckets
// cover every value below 2^32, the whole range of the kernel's 32-bit
// microsecond latencies; larger values go to the last bucket.
const (
	SubBucketBits = 3
	SubBuckets    = 1 << SubBucketBits
	// LogLinearBuckets is the number of buckets: 240.
	LogLinearBuckets = (32 - SubBucketBits + 1) << SubBucketBits
)

// LogLinearBucket returns the index of the log-linear bucket v falls in.
func LogLinearBucket(v uint64) int {
	if v < SubBuckets {
		return int(v)
	}
	if v >= 1<<32 {
		return LogLinearBuckets - 1
	}
	m := bits.Len64(v) - 1
	return (m-SubBucketBits+1)<<SubBucketBits | int(v>>(m-SubBucketBits))&(SubBuckets-1)
}

// LogLinearLower returns the smallest value bucket i holds.
func LogLinearLower(i int) float64 {
	if i < 2*SubBuckets {
		return float64(max(i, 0))
	}
	m := i>>SubBucketBits + SubBucketBits - 1
	return math.Ldexp(float64(SubBuckets+i&(SubBuckets-1)), m-SubBucketBits)
}

// LogLinearUpper returns the bound above bucket i (exclusive).
func LogLinearUpper(i int) float64 {
	if i < 2*SubBuckets {
		return float64(max(i, 0) + 1)
	}
	m := i>>SubBucketBits + SubBucketBits - 1
	return LogLinearLower(i) + math.Ldexp(1, m-SubBucketBits)
}

// SparseBucket is one non-empty bucket of a LogLinear histogram.
type SparseBucket struct {
	Index uint32
	N     uint64
}

// LogLinear is a log-linear histogram of non-negative integer samples,
// stored sparse: Buckets holds the non-empty buckets by increasing index,
// so that a histogram costs its few occupied buckets, not
// LogLinearBuckets counters.
//
// Observe changes Buckets in place; every other method that changes a
// histogram gives it a new slice. A copy of a LogLinear shares its
// buckets: Clone one before observing into a copy.
type LogLinear struct {
	Count   uint64
	Sum     uint64
	Buckets []SparseBucket
}

// IsZero reports whether h holds no samples at all.
func (h *LogLinear) IsZero() bool { return h.Count == 0 && h.Sum == 0 && len(h.Buckets) == 0 }

// Equal reports whether h and o hold the same samples.
func (h *LogLinear) Equal(o *LogLinear) bool {
	return h.Count == o.Count && h.Sum == o.Sum && slices.Equal(h.Buckets, o.Buckets)
}

// Clone returns a copy of h that shares nothing with it.
func (h *LogLinear) Clone() LogLinear {
	c := *h
	c.Buckets = slices.Clone(h.Buckets)
	return c
}

// Observe adds one sample.
func (h *LogLinear) Observe(v uint64) {
	h.Count++
	h.Sum += v
	i := uint32(LogLinearBucket(v))
	// Most samples of a series fall in the few buckets it already has.
	j, found := slices.BinarySearchFunc(h.Buckets, i, func(b SparseBucket, i uint32) int { return int(b.Index) - int(i) })
	if found {
		h.Buckets[j].N++
		return
	}
	h.Buckets = slices.Insert(h.Buckets, j, SparseBucket{Index: i, N: 1})
}

// Add adds o to h bucket by bucket.
func (h *LogLinear) Add(o *LogLinear) {
	h.Count += o.Count
	h.Sum += o.Sum
	out := make([]SparseBucket, 0, max(len(h.Buckets), len(o.Buckets)))
	a, b := h.Buckets, o.Buckets
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && a[0].Index < b[0].Index:
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0].Index < a[0].Index:
			out, b = append(out, b[0]), b[1:]
		default:
			out = append(out, SparseBucket{Index: a[0].Index, N: a[0].N + b[0].N})
			a, b = a[1:], b[1:]
		}
	}
	h.Buckets = out
	if len(out) == 0 {
		h.Buckets = nil
	}
}

// Delta returns h - prev, the samples observed since prev was taken from
// the same cumulative histogram. When h went backwards in any field (its
// counting started again) the whole of h is the delta.
func (h *LogLinear) Delta(prev *LogLinear) LogLinear {
	if prev == nil || h.Count < prev.Count || h.Sum < prev.Sum {
		return h.Clone()
	}
	var out []SparseBucket
	p := prev.Buckets
	for _, b := range h.Buckets {
		if len(p) > 0 && p[0].Index < b.Index {
			return h.Clone() // a bucket of prev that h lacks: went backwards
		}
		n := b.N
		if len(p) > 0 && p[0].Index == b.Index {
			if n < p[0].N {
				return h.Clone()
			}
			n -= p[0].N
			p = p[1:]
		}
		if n != 0 {
			out = append(out, SparseBucket{Index: b.Index, N: n})
		}
	}
	if len(p) > 0 {
		return h.Clone()
	}
	return LogLinear{Count: h.Count - prev.Count, Sum: h.Sum - prev.Sum, Buckets: out}
}

// Quantile returns the q-quantile (0 <= q <= 1) of the samples, assuming
// samples are spread uniformly inside their bucket, and false when the
// histogram is empty. The result lies inside the bucket that holds the
// quantile, so it is within a bucket's width, 12.5% of the value, of the
// true quantile.
func (h *LogLinear) Quantile(q float64) (float64, bool) {
	total := uint64(0)
	for _, b := range h.Buckets {
		total += b.N
	}
	if total == 0 {
		return 0, false
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	seen := 0.0
	for _, b := range h.Buckets {
		next := seen + float64(b.N)
		if rank <= next {
			frac := (rank - seen) / float64(b.N)
			lo, hi := LogLinearLower(int(b.Index)), LogLinearUpper(int(b.Index))
			return lo + frac*(hi-lo), true
		}
		seen = next
	}
	return LogLinearUpper(int(h.Buckets[len(h.Buckets)-1].Index)), true
}

// Above returns how many samples exceed v, assuming samples are spread
// uniformly inside their bucket (as Quantile does).
func (h *LogLinear) Above(v float64) float64 {
	n := 0.0
	for i := len(h.Buckets) - 1; i >= 0; i-- {
		b := h.Buckets[i]
		lo, hi := LogLinearLower(int(b.Index)), LogLinearUpper(int(b.Index))
		switch {
		case lo >= v:
			n += float64(b.N)
		case hi > v:
			return n + float64(b.N)*(hi-v)/(hi-lo)
		default:
			return n
		}
	}
	return n
}

// Mean returns Sum/Count, and false when the histogram is empty.
func (h *LogLinear) Mean() (float64, bool) {
	if h.Count == 0 {
		return 0, false
	}
	return float64(h.Sum) / float64(h.Count), true
}

// Log2 returns the log2 histogram of the same samples. Every log-linear
// bucket lies inside one log2 bucket, so the result is exact: it is the
// histogram the samples would have filled.
func (h *LogLinear) Log2() Hist {
	out := Hist{Count: h.Count, Sum: h.Sum}
	for _, b := range h.Buckets {
		out.Buckets[Bucket(uint64(LogLinearLower(int(b.Index))))] += b.N
	}
	return out
}

// Valid reports whether h's buckets are in increasing index order, below
// LogLinearBuckets and not empty, as decoders require.
func (h *LogLinear) Valid() bool {
	for i, b := range h.Buckets {
		if b.Index >= LogLinearBuckets || b.N == 0 || i > 0 && b.Index <= h.Buckets[i-1].Index {
			return false
		}
	}
	return true
}
