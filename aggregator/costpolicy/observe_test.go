package costpolicy

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/scaler"
	"github.com/pennyhq/penny/internal/histogram"
)

// podList is a PodReader that answers fixed pods.
type podList []pods.Pod

func (l podList) Pods(context.Context, query.Request) (*query.Pods, error) {
	return &query.Pods{Pods: l}, nil
}

// byWindow is a PodReader that answers the pods of the window asked
// for: the window's, or the last interval's (window 0).
type byWindow struct{ window, last podList }

func (b byWindow) Pods(_ context.Context, r query.Request) (*query.Pods, error) {
	if r.Window == 0 {
		return &query.Pods{Pods: b.last}, nil
	}
	return &query.Pods{Pods: b.window}, nil
}

// latencies is a histogram of n requests of each latency, in
// milliseconds.
func latencies(n int, ms ...uint64) histogram.LogLinear {
	var h histogram.LogLinear
	for _, v := range ms {
		for range n {
			h.Observe(v * 1000)
		}
	}
	return h
}

// TestObserveRate: the request rate is the pods' last interval's, the
// latency their window's, each with the span it covers (the store's
// window is longer than the one asked for: it starts at a checkpoint).
func TestObserveRate(t *testing.T) {
	pod := func(rps, span float64) pods.Pod {
		return pods.Pod{Values: pods.Values{WindowSeconds: span, Metrics: map[string]float64{metricRequestsPerSecond: rps,
			pods.RequestLatencyP99Seconds: 0.02}}, RequestLatency: latencies(100, 20)}
	}
	// Three pods at 10 req/s over the last 24 s, 12 over the last
	// second; a fourth just removed has no last interval.
	r := byWindow{window: podList{pod(10, 24), pod(10, 24), pod(10, 24), pod(5, 24)},
		last: podList{pod(12, 1), pod(12, 1), pod(12, 1)}}
	c := &Controller{cfg: Config{Pods: r, Window: 10 * time.Second, Now: time.Now}}
	o, err := c.observe(context.Background(), "shop", nil, 3, scaler.Objective{Metric: scaler.MetricRequestLatencyP99, Max: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if o.RequestsPerSecond != 36 || o.Pods != 3 || o.RateWindow != time.Second || o.Window != 24*time.Second {
		t.Errorf("rate %v over %d pods and %s, latency over %s; want 36 over 3 and 1s, 24s", o.RequestsPerSecond, o.Pods,
			o.RateWindow, o.Window)
	}
}

// TestObserve: a request latency objective is judged on the workload's
// requests merged over its pods (its p99 and how many were over the
// objective), not on its worst pod's p99; other metrics on the worst pod.
func TestObserve(t *testing.T) {
	pod := func(rps, p99, cost float64, h histogram.LogLinear) pods.Pod {
		return pods.Pod{Values: pods.Values{Metrics: map[string]float64{metricRequestsPerSecond: rps,
			pods.RequestLatencyP99Seconds: p99, metricCostPerHour: cost, "tcp_srtt_p99_seconds": p99 / 10}},
			RequestLatency: h}
	}
	// Ten pods of 300 requests at 20 ms; one of them also had 4 at
	// 300 ms, which makes its own p99 ~300 ms but is 0.13% of the
	// workload's requests.
	var ps podList
	for i := range 10 {
		h := latencies(300, 20)
		p99 := 0.021
		if i == 3 {
			h.Add(ptr(latencies(4, 300)))
			p99 = 0.3
		}
		ps = append(ps, pod(10, p99, 0.02, h))
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c := &Controller{cfg: Config{Pods: ps, Window: 30 * time.Second, Now: func() time.Time { return now }}}
	tests := []struct {
		name     string
		obj      scaler.Objective
		lat      [2]float64 // within
		slow     float64    // NaN: unknown
		replicas int
	}{
		{"request latency: all the requests", scaler.Objective{Metric: scaler.MetricRequestLatencyP99, Max: 0.1},
			[2]float64{0.020, 0.0226}, 4, 10},
		{"srtt: the worst pod", scaler.Objective{Metric: scaler.MetricTCPSRTTP99, Max: 0.01},
			[2]float64{0.03, 0.03}, math.NaN(), 8}, // two pods terminating, still reporting
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := c.observe(context.Background(), "shop", nil, tt.replicas, tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if o.Latency < tt.lat[0] || o.Latency > tt.lat[1] {
				t.Errorf("latency %v, want within %v", o.Latency, tt.lat)
			}
			if math.IsNaN(tt.slow) != math.IsNaN(o.SlowRequests) || !math.IsNaN(tt.slow) && math.Abs(o.SlowRequests-tt.slow) > 1e-9 {
				t.Errorf("slow requests %v, want %v", o.SlowRequests, tt.slow)
			}
			if o.RequestsPerSecond != 100 || o.Pods != 10 || o.Replicas != tt.replicas || math.Abs(o.CostPerPodHour-0.02) > 1e-12 ||
				o.Window != 30*time.Second {
				t.Errorf("observation %+v", o)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
