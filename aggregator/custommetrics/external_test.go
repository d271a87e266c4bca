package custommetrics_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/custommetrics"
	"github.com/pennyhq/penny/internal/kvtest"
)

// TestExternalDesiredReplicas: the decisions the leader wrote to the store
// are served per namespace, one value per policy labelled with its name,
// filtered by the selector; other metrics are not found.
func TestExternalDesiredReplicas(t *testing.T) {
	n := kvtest.Start(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, d := range []struct {
		ns, name string
		replicas int
	}{{"shop", "web", 5}, {"shop", "api", 2}, {"ledger", "web", 9}} {
		b, err := json.Marshal(costpolicy.Record{UID: "u", Replicas: d.replicas, Reason: "Steady", Time: at})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.Put(ctx, costpolicy.DecisionKey(d.ns, d.name), b); err != nil {
			t.Fatal(err)
		}
	}
	p, err := custommetrics.NewProvider(custommetrics.Config{Store: n, ExternalMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.ListAllExternalMetrics(); len(got) != 1 || got[0].Metric != custommetrics.ExternalDesiredReplicas {
		t.Fatalf("ListAllExternalMetrics = %v", got)
	}
	info := provider.ExternalMetricInfo{Metric: custommetrics.ExternalDesiredReplicas}
	tests := []struct {
		ns, selector string
		want         map[string]int64
	}{
		{"shop", "", map[string]int64{"web": 5, "api": 2}},
		{"shop", "costpolicy=web", map[string]int64{"web": 5}},
		{"ledger", "costpolicy=web", map[string]int64{"web": 9}},
		{"shop", "costpolicy=nope", map[string]int64{}},
		{"empty", "", map[string]int64{}},
	}
	for _, tt := range tests {
		sel, err := labels.Parse(tt.selector)
		if err != nil {
			t.Fatal(err)
		}
		list, err := p.GetExternalMetric(ctx, tt.ns, sel, info)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, v := range list.Items {
			got[v.MetricLabels[custommetrics.LabelCostPolicy]] = v.Value.Value()
			if v.MetricName != custommetrics.ExternalDesiredReplicas || !v.Timestamp.Time.Equal(at) {
				t.Errorf("%s %s: item %+v", tt.ns, tt.selector, v)
			}
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s %q: %v, want %v", tt.ns, tt.selector, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s %q: %v, want %v", tt.ns, tt.selector, got, tt.want)
			}
		}
	}
	_, err = p.GetExternalMetric(ctx, "shop", labels.Everything(), provider.ExternalMetricInfo{Metric: "queue_depth"})
	if !apierrors.IsNotFound(err) {
		t.Errorf("an unknown external metric: %v, want not found", err)
	}
}
