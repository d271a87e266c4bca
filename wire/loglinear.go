package wire

import (
	"fmt"
	"slices"
)

// LogLinearBuckets is the number of buckets of a LogLinearHist, as in the
// agent's eBPF programs. Changing it is a format change.
const LogLinearBuckets = 240

// LogLinearHist is a log-linear histogram of microseconds, sparse: each
// power of two is split in 8 linear buckets. Bucket i < 16 holds [i, i+1);
// bucket i >= 16, with m = i/8 + 2 and k = i%8, holds
// [(8+k) 2^(m-3), (9+k) 2^(m-3)). Buckets holds the non-empty buckets by
// increasing index; it has the layout of the agent's histogram.LogLinear.
//
// A LogLinearHist passed to an Encoder in a Snapshot is kept, like
// metadata: never modify the Buckets of one passed before.
type LogLinearHist struct {
	Count   uint64
	Sum     uint64
	Buckets []LogLinearBucket
}

// LogLinearBucket is one non-empty bucket of a LogLinearHist.
type LogLinearBucket struct {
	Index uint32
	N     uint64
}

// IsZero reports whether h holds no samples at all.
func (h *LogLinearHist) IsZero() bool { return h.Count == 0 && h.Sum == 0 && len(h.Buckets) == 0 }

// Equal reports whether h and o are the same histogram.
func (h *LogLinearHist) Equal(o *LogLinearHist) bool {
	return h.Count == o.Count && h.Sum == o.Sum && slices.Equal(h.Buckets, o.Buckets)
}

// valid reports whether the buckets are in increasing index order, below
// LogLinearBuckets, and not empty.
func (h *LogLinearHist) valid() bool {
	for i, b := range h.Buckets {
		if b.Index >= LogLinearBuckets || b.N == 0 || i > 0 && b.Index <= h.Buckets[i-1].Index {
			return false
		}
	}
	return true
}

// writeLogLinear writes [count, sum, [index, n, index, n, ...]], as
// writeHist does.
func (w *mpWriter) writeLogLinear(h *LogLinearHist) {
	w.arrayLen(3)
	w.uint(h.Count)
	w.uint(h.Sum)
	w.arrayLen(2 * len(h.Buckets))
	for _, b := range h.Buckets {
		w.uint(uint64(b.Index))
		w.uint(b.N)
	}
}

// readLogLinear reads [count, sum, [index, n, ...], future fields...]:
// indices strictly increasing and below LogLinearBuckets, n not zero. The
// bucket list is checked against LogLinearBuckets and the bytes left
// before anything is allocated.
func (m *mpReader) readLogLinear(h *LogLinearHist) error {
	n, err := m.arrayLen(unbounded, 1)
	if err != nil {
		return err
	}
	if n < 3 {
		return fmt.Errorf("%w: histogram of %d elements, want at least 3", ErrCorrupt, n)
	}
	if h.Count, err = m.uint(); err != nil {
		return err
	}
	if h.Sum, err = m.uint(); err != nil {
		return err
	}
	pairs, err := m.arrayLen(2*LogLinearBuckets, 1)
	if err != nil {
		return fmt.Errorf("histogram buckets: %w", err)
	}
	if pairs%2 != 0 {
		return fmt.Errorf("%w: odd histogram bucket list of %d", ErrCorrupt, pairs)
	}
	h.Buckets = nil
	if pairs > 0 {
		h.Buckets = make([]LogLinearBucket, 0, pairs/2)
	}
	next := uint64(0)
	for range pairs / 2 {
		i, err := m.uint()
		if err != nil {
			return err
		}
		if i < next || i >= LogLinearBuckets {
			return fmt.Errorf("%w: histogram bucket %d out of order or range", ErrCorrupt, i)
		}
		c, err := m.uint()
		if err != nil {
			return err
		}
		if c == 0 {
			return fmt.Errorf("%w: histogram bucket %d of zero", ErrCorrupt, i)
		}
		h.Buckets = append(h.Buckets, LogLinearBucket{Index: uint32(i), N: c})
		next = i + 1
	}
	for range n - 3 {
		if err := m.skip(1); err != nil {
			return fmt.Errorf("histogram: unknown field: %w", err)
		}
	}
	return nil
}

// logLinearDecreased reports whether any field of cur is below prev's,
// a bucket that prev has and cur lacks included.
func logLinearDecreased(prev, cur *LogLinearHist) bool {
	if cur.Count < prev.Count || cur.Sum < prev.Sum {
		return true
	}
	c := cur.Buckets
	for _, p := range prev.Buckets {
		for len(c) > 0 && c[0].Index < p.Index {
			c = c[1:]
		}
		if len(c) == 0 || c[0].Index != p.Index || c[0].N < p.N {
			return true
		}
	}
	return false
}

// logLinearDiff returns cur - prev, which must not have decreased; its
// Buckets are nil when no bucket changed.
func logLinearDiff(prev, cur *LogLinearHist) LogLinearHist {
	d := LogLinearHist{Count: cur.Count - prev.Count, Sum: cur.Sum - prev.Sum}
	p := prev.Buckets
	for _, b := range cur.Buckets {
		n := b.N
		if len(p) > 0 && p[0].Index == b.Index {
			n -= p[0].N
			p = p[1:]
		}
		if n != 0 {
			d.Buckets = append(d.Buckets, LogLinearBucket{Index: b.Index, N: n})
		}
	}
	return d
}

// logLinearAdd returns a + b in new buckets, and false when a field
// overflows.
func logLinearAdd(a, b *LogLinearHist) (LogLinearHist, bool) {
	var out LogLinearHist
	var ok1, ok2 bool
	out.Count, ok1 = addUint(a.Count, b.Count)
	out.Sum, ok2 = addUint(a.Sum, b.Sum)
	if !ok1 || !ok2 {
		return out, false
	}
	if len(a.Buckets)+len(b.Buckets) == 0 {
		return out, true
	}
	out.Buckets = make([]LogLinearBucket, 0, len(a.Buckets)+len(b.Buckets))
	x, y := a.Buckets, b.Buckets
	for len(x) > 0 || len(y) > 0 {
		switch {
		case len(y) == 0 || len(x) > 0 && x[0].Index < y[0].Index:
			out.Buckets, x = append(out.Buckets, x[0]), x[1:]
		case len(x) == 0 || y[0].Index < x[0].Index:
			out.Buckets, y = append(out.Buckets, y[0]), y[1:]
		default:
			n, ok := addUint(x[0].N, y[0].N)
			if !ok {
				return out, false
			}
			out.Buckets = append(out.Buckets, LogLinearBucket{Index: x[0].Index, N: n})
			x, y = x[1:], y[1:]
		}
	}
	return out, true
}
