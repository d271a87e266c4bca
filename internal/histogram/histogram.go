package histogram

import "math"

// Buckets is the number of buckets, as in bpf/penny.h.
const Buckets = 32

// Hist is a log2 histogram of non-negative integer samples.
type Hist struct {
	Buckets [Buckets]uint64
	Count   uint64
	Sum     uint64
}

// Lower returns the smallest value bucket i holds.
func Lower(i int) float64 {
	if i <= 0 {
		return 0
	}
	return math.Ldexp(1, i)
}

// Upper returns the bound above bucket i (exclusive).
func Upper(i int) float64 { return math.Ldexp(1, i+1) }

// Bucket returns the index of the bucket v falls in.
func Bucket(v uint64) int {
	b := 0
	for v > 1 && b < Buckets-1 {
		v >>= 1
		b++
	}
	return b
}

// Observe adds one sample.
func (h *Hist) Observe(v uint64) {
	h.Buckets[Bucket(v)]++
	h.Count++
	h.Sum += v
}

// Add adds o to h bucket by bucket.
func (h *Hist) Add(o *Hist) {
	for i := range h.Buckets {
		h.Buckets[i] += o.Buckets[i]
	}
	h.Count += o.Count
	h.Sum += o.Sum
}

// Delta returns h - prev, the samples observed since prev was taken from the
// same cumulative histogram. When h went backwards in any field (the kernel
// map entry was deleted and created again) the whole of h is the delta.
func (h *Hist) Delta(prev *Hist) Hist {
	if prev == nil || h.Count < prev.Count || h.Sum < prev.Sum {
		return *h
	}
	var d Hist
	for i := range h.Buckets {
		if h.Buckets[i] < prev.Buckets[i] {
			return *h
		}
		d.Buckets[i] = h.Buckets[i] - prev.Buckets[i]
	}
	d.Count = h.Count - prev.Count
	d.Sum = h.Sum - prev.Sum
	return d
}

// Quantile returns the q-quantile (0 <= q <= 1) of the samples, assuming
// samples are spread uniformly inside their bucket, and false when the
// histogram is empty. The result lies inside the bucket that holds the
// quantile, so its error is at most the width of that bucket.
func (h *Hist) Quantile(q float64) (float64, bool) {
	total := uint64(0)
	for _, c := range h.Buckets {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	seen := 0.0
	for i, c := range h.Buckets {
		if c == 0 {
			continue
		}
		next := seen + float64(c)
		if rank <= next {
			frac := (rank - seen) / float64(c)
			lo, hi := Lower(i), Upper(i)
			return lo + frac*(hi-lo), true
		}
		seen = next
	}
	last := Buckets - 1
	for last > 0 && h.Buckets[last] == 0 {
		last--
	}
	return Upper(last), true
}

// Quantiler is a histogram that estimates quantiles: a Hist or a
// LogLinear.
type Quantiler interface {
	// Quantile returns the q-quantile (0 <= q <= 1) of the samples, and
	// false when there are none.
	Quantile(q float64) (float64, bool)
}

// Mean returns Sum/Count, and false when the histogram is empty.
func (h *Hist) Mean() (float64, bool) {
	if h.Count == 0 {
		return 0, false
	}
	return float64(h.Sum) / float64(h.Count), true
}
