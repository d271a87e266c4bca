package cgtest

import (
	"io"
	"net/http"
	"testing"
	"time"
)

func TestRateDelay(t *testing.T) {
	base := 20 * time.Millisecond
	tests := []struct {
		rate, c float64
		want    time.Duration
	}{
		{0, 25, base},
		{25, 25, base},
		{50, 25, 16 * base},
		{37.5, 25, time.Duration(float64(base) * 5.0625)},
		{1000, 25, 5 * time.Second},
		{10, 0, base},
	}
	for _, tt := range tests {
		if got := RateDelay(tt.rate, tt.c, base); got != tt.want {
			t.Errorf("RateDelay(%v, %v, %v) = %v, want %v", tt.rate, tt.c, base, got, tt.want)
		}
	}
}

// TestRateServe: the server answers within its base time under its
// throughput and slows down past it; drain closes it.
func TestRateServe(t *testing.T) {
	h := &helper{}
	if _, err := h.rateServe([]string{"5", "bad", "0"}); err == nil {
		t.Fatal("rateserve took a malformed argument")
	}
	addr, err := h.rateServe([]string{"5", "10", "200"})
	if err != nil {
		t.Fatal(err)
	}
	get := func() (time.Duration, error) {
		start := time.Now()
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), nil
	}
	if d, err := get(); err != nil || d < 10*time.Millisecond {
		t.Errorf("a lone request answered in %v (%v), want at least the base 10ms", d, err)
	}
	// 20 requests at once: 4 times the throughput, 256 times the base
	// time for the last of them.
	type answer struct {
		d   time.Duration
		err error
	}
	slow := make(chan answer, 20)
	for range 20 {
		go func() {
			d, err := get()
			slow <- answer{d, err}
		}()
	}
	var most time.Duration
	for range 20 {
		a := <-slow
		if a.err != nil {
			t.Fatal(a.err)
		}
		most = max(most, a.d)
	}
	if most < 500*time.Millisecond {
		t.Errorf("past its throughput the slowest request took %v, want the overload's delay", most)
	}
	if _, err := h.rateDrain(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Error("a drained server still answers")
	}
}
