package exporter_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/internal/kvtest"
)

// TestScalingSeries: each cost policy's last decision, as the leader
// wrote it, is a series of the replicas decided, when, why and against
// which objective; a record that does not decode, or whose key is not
// valid UTF-8, is left out, and the scrape goes on.
func TestScalingSeries(t *testing.T) {
	n := kvtest.Start(t)
	ctx := context.Background()
	put := func(ns, name string, v []byte) {
		t.Helper()
		if _, err := n.Put(ctx, costpolicy.DecisionKey(ns, name), v); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(r costpolicy.Record) []byte {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	at := time.Date(2026, 12, 5, 2, 0, 0, 500_000_000, time.UTC)
	put("shop", "web", rec(costpolicy.Record{UID: "u1", Replicas: 4, Reason: "ScaleUpForLoad", Time: at, TargetKind: "Deployment",
		TargetName: "web", ObjectiveMetric: "request_latency_p99_seconds", ObjectiveSeconds: 0.2}))
	put("shop", "api", rec(costpolicy.Record{UID: "u2", Replicas: 2, Reason: "Steady", Time: at, TargetKind: "StatefulSet",
		TargetName: "api"}))
	put("shop", "broken", []byte("{not json"))
	put("shop\xff", "bad-utf8", rec(costpolicy.Record{Replicas: 1, Reason: "Steady", Time: at}))
	c, err := exporter.New(exporter.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP penny_costpolicy_desired_replicas The replicas a CostPolicy's last decision asked its target for (what its HPA reads as penny_desired_replicas).
# TYPE penny_costpolicy_desired_replicas gauge
penny_costpolicy_desired_replicas{costpolicy="api",namespace="shop",target_kind="StatefulSet",target_name="api"} 2
penny_costpolicy_desired_replicas{costpolicy="web",namespace="shop",target_kind="Deployment",target_name="web"} 4
# HELP penny_costpolicy_decision_reason The reason of a CostPolicy's last decision (its Decided condition's), as a label; always 1.
# TYPE penny_costpolicy_decision_reason gauge
penny_costpolicy_decision_reason{costpolicy="api",namespace="shop",reason="Steady"} 1
penny_costpolicy_decision_reason{costpolicy="web",namespace="shop",reason="ScaleUpForLoad"} 1
# HELP penny_costpolicy_decision_timestamp_seconds When a CostPolicy's leader last decided.
# TYPE penny_costpolicy_decision_timestamp_seconds gauge
penny_costpolicy_decision_timestamp_seconds{costpolicy="api",namespace="shop"} 1.7964360005e+09
penny_costpolicy_decision_timestamp_seconds{costpolicy="web",namespace="shop"} 1.7964360005e+09
# HELP penny_costpolicy_objective_seconds A CostPolicy's latency objective: the highest value of its metric that meets it.
# TYPE penny_costpolicy_objective_seconds gauge
penny_costpolicy_objective_seconds{costpolicy="web",metric="request_latency_p99_seconds",namespace="shop"} 0.2
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "penny_costpolicy_desired_replicas",
		"penny_costpolicy_decision_reason", "penny_costpolicy_decision_timestamp_seconds",
		"penny_costpolicy_objective_seconds"); err != nil {
		t.Fatal(err)
	}
}
