package histogram

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLogLinearBucket(t *testing.T) {
	tests := []struct {
		v    uint64
		want int
	}{
		{0, 0}, {1, 1}, {7, 7}, {8, 8}, {15, 15},
		{16, 16}, {17, 16}, {18, 17}, {31, 23}, {32, 24}, {35, 24}, {36, 25},
		{1000, 63}, {1023, 63}, {1024, 64},
		{20_000, (14-2)<<3 | 1}, // 2^14 + 1*2^11 <= 20000 < 2^14 + 2*2^11
		{1<<32 - 1, LogLinearBuckets - 1}, {1 << 32, LogLinearBuckets - 1}, {math.MaxUint64, LogLinearBuckets - 1},
	}
	for _, tt := range tests {
		got := LogLinearBucket(tt.v)
		if got != tt.want {
			t.Errorf("LogLinearBucket(%d) = %d, want %d", tt.v, got, tt.want)
		}
		if tt.v < 1<<32 && (float64(tt.v) < LogLinearLower(got) || float64(tt.v) >= LogLinearUpper(got)) {
			t.Errorf("%d not in bucket %d: [%v, %v)", tt.v, got, LogLinearLower(got), LogLinearUpper(got))
		}
	}
}

// TestLogLinearBounds checks that the buckets tile [0, 2^32) without gap
// or overlap, each at most 1/SubBuckets of its lower bound wide, and that
// every bound maps to its own bucket.
func TestLogLinearBounds(t *testing.T) {
	next := 0.0
	for i := range LogLinearBuckets {
		lo, hi := LogLinearLower(i), LogLinearUpper(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %v, want %v", i, lo, next)
		}
		if hi <= lo || (lo >= 2*SubBuckets && (hi-lo)/lo > 1.0/SubBuckets) {
			t.Fatalf("bucket %d: [%v, %v) is %.1f%% wide", i, lo, hi, 100*(hi-lo)/lo)
		}
		if b := LogLinearBucket(uint64(lo)); b != i {
			t.Fatalf("LogLinearBucket(%v) = %d, want %d", lo, b, i)
		}
		if b := LogLinearBucket(uint64(hi) - 1); b != i {
			t.Fatalf("LogLinearBucket(%v) = %d, want %d", hi-1, b, i)
		}
		next = hi
	}
	if next != 1<<32 {
		t.Fatalf("the buckets end at %v, want 2^32", next)
	}
}

func logLinear(samples ...uint64) LogLinear {
	var h LogLinear
	for _, s := range samples {
		h.Observe(s)
	}
	return h
}

func TestLogLinearQuantile(t *testing.T) {
	tests := []struct {
		name   string
		h      LogLinear
		q      float64
		lo, hi float64 // the result must lie in [lo, hi]
		ok     bool
	}{
		{name: "empty", q: 0.5},
		{name: "small values are exact", h: logLinear(3, 3, 3), q: 0.5, lo: 3, hi: 4, ok: true},
		{name: "one sample", h: logLinear(20_000), q: 0.5, lo: 18432, hi: 20480, ok: true},
		{name: "p99 of a constant", h: logLinear(repeat(20_100, 1000)...), q: 0.99, lo: 20_100 * 0.9, hi: 20_100 * 1.1, ok: true},
		{name: "p50 of a constant", h: logLinear(repeat(3_100, 1000)...), q: 0.5, lo: 3_100 * 0.9, hi: 3_100 * 1.1, ok: true},
		{name: "p50 below outlier", h: logLinear(append(repeat(1000, 99), 1_000_000)...), q: 0.5, lo: 960, hi: 1024, ok: true},
		{name: "p99 reaches outlier bucket", h: logLinear(append(repeat(10, 98), 1_000_000, 1_000_000)...), q: 0.99, lo: 983040, hi: 1048576, ok: true},
		{name: "p0 is bucket floor", h: logLinear(100, 101, 102), q: 0, lo: 96, hi: 96, ok: true},
		{name: "p100 is bucket top", h: logLinear(100, 101, 102), q: 1, lo: 104, hi: 104, ok: true},
		{name: "q clamped", h: logLinear(5), q: 7, lo: 6, hi: 6, ok: true},
		{name: "interpolates across buckets", h: logLinear(append(repeat(100, 50), repeat(3000, 50)...)...), q: 0.75, lo: 2816, hi: 3072, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.h.Quantile(tt.q)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (got < tt.lo || got > tt.hi) {
				t.Fatalf("Quantile(%v) = %v, want in [%v, %v]", tt.q, got, tt.lo, tt.hi)
			}
		})
	}
}

// TestLogLinearQuantileError draws samples from spreads around many
// centres and checks that the interpolated quantiles are within a
// bucket's width (12.5%) of the exact ones.
func TestLogLinearQuantileError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		centre := math.Exp(r.Float64() * math.Log(5e7)) // 1 µs to 50 s
		spread := 0.02 + 0.3*r.Float64()
		samples := make([]uint64, 500)
		for i := range samples {
			samples[i] = uint64(centre * (1 + spread*r.NormFloat64()/3))
		}
		h := logLinear(samples...)
		for _, q := range []float64{0.5, 0.9, 0.99} {
			got, _ := h.Quantile(q)
			want := exactQuantile(samples, q)
			if math.Abs(got-want) > want/SubBuckets+1 {
				t.Errorf("centre %.0f, spread %.2f: p%v = %.1f, exact %.1f", centre, spread, q*100, got, want)
			}
		}
	}
}

func exactQuantile(samples []uint64, q float64) float64 {
	s := append([]uint64(nil), samples...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return float64(s[max(i, 0)])
}

func TestLogLinearAddDelta(t *testing.T) {
	a := logLinear(5, 100, 100, 20_000)
	b := logLinear(100, 3_000, 1<<40)
	sum := a.Clone()
	sum.Add(&b)
	if want := logLinear(5, 100, 100, 20_000, 100, 3_000, 1<<40); !sum.Equal(&want) || !sum.Valid() {
		t.Fatalf("a+b = %+v, want %+v", sum, want)
	}
	if d := sum.Delta(&a); !d.Equal(&b) {
		t.Fatalf("(a+b)-a = %+v, want %+v", d, b)
	}
	if d := sum.Delta(nil); !d.Equal(&sum) {
		t.Fatalf("delta from nothing = %+v, want %+v", d, sum)
	}
	// Backwards: a bucket went down, or disappeared.
	for _, prev := range []LogLinear{logLinear(5, 5), logLinear(7)} {
		if d := a.Delta(&prev); !d.Equal(&a) {
			t.Fatalf("delta from %+v = %+v, want all of %+v", prev, d, a)
		}
	}
	// Add and Delta never write into their operands' buckets.
	before := a.Clone()
	c := a
	c.Add(&b)
	d := c.Delta(&b)
	d.Observe(5)
	if !a.Equal(&before) {
		t.Fatalf("a changed to %+v", a)
	}
}

func TestLogLinearLog2(t *testing.T) {
	samples := []uint64{0, 1, 2, 3, 7, 8, 15, 16, 1000, 20_000, 20_400, 3_000_000, 1<<32 - 1, 1 << 40}
	h := logLinear(samples...)
	got, want := h.Log2(), hist(samples...)
	if got != want {
		t.Fatalf("Log2() = %+v, want %+v", got, want)
	}
}

func TestLogLinearValid(t *testing.T) {
	tests := []struct {
		b    []SparseBucket
		want bool
	}{
		{nil, true},
		{[]SparseBucket{{1, 1}, {239, 2}}, true},
		{[]SparseBucket{{240, 1}}, false},
		{[]SparseBucket{{3, 0}}, false},
		{[]SparseBucket{{3, 1}, {3, 1}}, false},
		{[]SparseBucket{{4, 1}, {3, 1}}, false},
	}
	for _, tt := range tests {
		h := LogLinear{Buckets: tt.b}
		if got := h.Valid(); got != tt.want {
			t.Errorf("Valid(%v) = %v, want %v", tt.b, got, tt.want)
		}
	}
}

func BenchmarkLogLinearObserve(b *testing.B) {
	var h LogLinear
	v := uint64(20_000)
	for b.Loop() {
		h.Observe(v)
		v = 19_000 + (v*1103515245+12345)%4096
	}
}

func TestLogLinearAbove(t *testing.T) {
	var h LogLinear
	for range 90 {
		h.Observe(20_000) // 20 ms in µs
	}
	for range 10 {
		h.Observe(150_000)
	}
	i := LogLinearBucket(20_000)
	lo, hi := LogLinearLower(i), LogLinearUpper(i)
	tests := []struct {
		name string
		v    float64
		want float64
	}{
		{"below everything", 1, 100},
		{"between the two", 100_000, 10},
		{"above everything", 1e9, 0},
		{"inside a bucket: its share above", lo + (hi-lo)/4, 10 + 90*0.75},
		{"at a bucket's upper bound", hi, 10},
	}
	for _, tt := range tests {
		if got := h.Above(tt.v); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: Above(%v) = %v, want %v", tt.name, tt.v, got, tt.want)
		}
	}
	var empty LogLinear
	if n := empty.Above(0); n != 0 {
		t.Errorf("empty: Above(0) = %v", n)
	}
}
