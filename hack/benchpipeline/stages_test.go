package main

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func TestQuantile(t *testing.T) {
	hist := func(bounds []float64, cum []uint64) *dto.MetricFamily {
		t.Helper()
		h := &dto.Histogram{SampleCount: proto.Uint64(cum[len(cum)-1])}
		for i, b := range bounds {
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(b), CumulativeCount: proto.Uint64(cum[i])})
		}
		return &dto.MetricFamily{Metric: []*dto.Metric{{Histogram: h}}}
	}
	tests := []struct {
		name string
		f    *dto.MetricFamily
		q    float64
		want time.Duration
	}{
		{"none", nil, 0.99, 0},
		{"empty", hist([]float64{0.1}, []uint64{0}), 0.99, 0},
		// 100 samples: 50 under 10 ms, 50 between 10 and 20 ms; the 99th
		// is 49/50 of the way through the second bucket.
		{"interpolated", hist([]float64{0.01, 0.02}, []uint64{50, 100}), 0.99, 19800 * time.Microsecond},
		{"median at a bound", hist([]float64{0.01, 0.02}, []uint64{50, 100}), 0.5, 10 * time.Millisecond},
		// Past every finite bound (the +Inf bucket is implied by the
		// count): the largest finite bound.
		{"beyond the last bound", func() *dto.MetricFamily {
			f := hist([]float64{0.01, 0.02}, []uint64{10, 20})
			f.Metric[0].Histogram.SampleCount = proto.Uint64(100)
			return f
		}(), 0.99, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quantile(tt.f, tt.q); got != tt.want {
				t.Fatalf("quantile %v = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}
