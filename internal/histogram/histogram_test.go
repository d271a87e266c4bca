package histogram

import (
	"math"
	"testing"
)

func TestBucket(t *testing.T) {
	tests := []struct {
		v    uint64
		want int
	}{
		{0, 0}, {1, 0}, {2, 1}, {3, 1}, {4, 2}, {7, 2}, {8, 3},
		{1023, 9}, {1024, 10}, {1 << 31, 31}, {1 << 40, 31}, {math.MaxUint64, 31},
	}
	for _, tt := range tests {
		if got := Bucket(tt.v); got != tt.want {
			t.Errorf("Bucket(%d) = %d, want %d", tt.v, got, tt.want)
		}
		if tt.v < 1<<31 && (float64(tt.v) < Lower(tt.want) || float64(tt.v) >= Upper(tt.want)) {
			t.Errorf("%d not in [%v, %v)", tt.v, Lower(tt.want), Upper(tt.want))
		}
	}
}

func hist(samples ...uint64) Hist {
	var h Hist
	for _, s := range samples {
		h.Observe(s)
	}
	return h
}

func repeat(v uint64, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name   string
		h      Hist
		q      float64
		lo, hi float64 // the result must lie in [lo, hi]
		ok     bool
	}{
		{name: "empty", h: Hist{}, q: 0.5, ok: false},
		{name: "one sample", h: hist(100), q: 0.5, lo: 64, hi: 128, ok: true},
		{name: "p99 of a single bucket", h: hist(repeat(40, 1000)...), q: 0.99, lo: 32, hi: 64, ok: true},
		{name: "p50 below outlier", h: hist(append(repeat(10, 99), 100000)...), q: 0.5, lo: 8, hi: 16, ok: true},
		{name: "p99 reaches outlier bucket", h: hist(append(repeat(10, 98), 100000, 100000)...), q: 0.99, lo: 65536, hi: 131072, ok: true},
		{name: "p0 is bucket floor", h: hist(5, 6, 7), q: 0, lo: 4, hi: 4, ok: true},
		{name: "p100 is bucket top", h: hist(5, 6, 7), q: 1, lo: 8, hi: 8, ok: true},
		{name: "zero samples", h: hist(0, 0, 1), q: 0.5, lo: 0, hi: 2, ok: true},
		{name: "q clamped", h: hist(5), q: 7, lo: 8, hi: 8, ok: true},
		{name: "interpolates", h: hist(append(repeat(3, 50), repeat(300, 50)...)...), q: 0.75, lo: 256, hi: 512, ok: true},
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

func TestQuantileMonotonic(t *testing.T) {
	h := hist(1, 3, 9, 27, 81, 243, 729, 2187, 6561, 19683)
	prev := -1.0
	for q := 0.0; q <= 1.0; q += 0.01 {
		v, _ := h.Quantile(q)
		if v < prev {
			t.Fatalf("quantile went down at q=%v: %v < %v", q, v, prev)
		}
		prev = v
	}
}

func TestDelta(t *testing.T) {
	before := hist(10, 20, 30)
	after := before
	after.Observe(1000)
	after.Observe(2)

	tests := []struct {
		name      string
		cur, prev Hist
		want      Hist
	}{
		{name: "growth", cur: after, prev: before, want: hist(1000, 2)},
		{name: "no change", cur: before, prev: before, want: Hist{}},
		{name: "reset counts whole", cur: hist(5), prev: before, want: hist(5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cur.Delta(&tt.prev); got != tt.want {
				t.Fatalf("Delta = %+v, want %+v", got, tt.want)
			}
		})
	}
	if got := after.Delta(nil); got != after {
		t.Fatalf("Delta(nil) = %+v, want %+v", got, after)
	}
}

func TestAddMean(t *testing.T) {
	a, b := hist(2, 4), hist(6)
	a.Add(&b)
	if a != hist(2, 4, 6) {
		t.Fatalf("Add = %+v", a)
	}
	if m, ok := a.Mean(); !ok || m != 4 {
		t.Fatalf("Mean = %v %v", m, ok)
	}
	var e Hist
	if _, ok := e.Mean(); ok {
		t.Fatal("Mean of empty histogram reported ok")
	}
}

func BenchmarkQuantile(b *testing.B) {
	h := hist(1, 3, 9, 27, 81, 243, 729, 2187, 6561, 19683)
	for b.Loop() {
		h.Quantile(0.99)
	}
}
