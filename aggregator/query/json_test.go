package query_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
)

// TestPodsAppendJSON holds Pods.AppendJSON to what a json.Encoder writes.
func TestPodsAppendJSON(t *testing.T) {
	p := pods.Pod{Namespace: "shop", Name: "web-1", UID: "u1", Node: "n1", Labels: map[string]string{"app": "web"},
		Containers: []string{"", "app"}, RequestCPUMillis: 250,
		Values: pods.Values{Time: time.Date(2026, 12, 6, 10, 0, 0, 5, time.UTC), WindowSeconds: 1.5,
			Metrics: map[string]float64{pods.MemoryRSSBytes: 1 << 30, pods.CPUUsageCores: 0.25}}}
	tests := []struct {
		name string
		in   query.Pods
	}{
		{"empty", query.Pods{Index: 7, Currency: "USD", Pods: []pods.Pod{}}},
		{"nil pods", query.Pods{Index: 7}},
		{"pods and warnings", query.Pods{Index: 1 << 40, Currency: "EUR", Pods: []pods.Pod{p, p},
			Warnings: []string{"node n2 has no facts: <default> prices"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(&tt.in); err != nil {
				t.Fatal(err)
			}
			got, err := tt.in.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want.String() {
				t.Errorf("AppendJSON:\n%s\njson.Encoder:\n%s", got, want.String())
			}
		})
	}
}
