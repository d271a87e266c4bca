package scale_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/recommend"
	"github.com/pennyhq/penny/cmd/penny/scale"
)

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)

// answer is what an aggregator answers for namespace shop.
var answer = recommend.Response{
	Window: cost.Window{Start: t0, End: t0.Add(7 * 24 * time.Hour)}, Currency: "USD", PodDisruptionBudgets: recommend.PDBsKnown,
	Workloads: []recommend.Workload{
		{Namespace: "shop", Kind: "deployment", Name: "api", Replicas: 1, RecommendedReplicas: 1,
			ObjectiveMetric: "request_latency_p99_seconds", CostPer1kRequests: ptr(0.004), OnDemand: recommend.Share{CostPer1kRequests: ptr(0.004)},
			InterruptionTolerant: ptr(false), PodDisruptionBudget: ptr(false), SpotSavingMonthly: ptr(13.87), SpotSavingBasis: recommend.BasisPrices,
			Advice: []string{"not for spot: no PodDisruptionBudget selects its pods", "no CostPolicy: replicas as they are"}},
		{Namespace: "shop", Kind: "deployment", Name: "web", Replicas: 3, RecommendedReplicas: 2, Policy: "web",
			ObjectiveMetric: "request_latency_p99_seconds", ObjectiveSeconds: ptr(0.2), LatencySeconds: ptr(0.0315),
			CostPer1kRequests: ptr(0.0008611), OnDemand: recommend.Share{CostPer1kRequests: ptr(0.001389)},
			Spot: recommend.Share{CostPer1kRequests: ptr(0.0003333)}, InterruptionTolerant: ptr(true), PodDisruptionBudget: ptr(true),
			SpotSavingMonthly: ptr(27.74), SpotSavingBasis: recommend.BasisMeasured, ReplicaSavingMonthly: ptr(15.09),
			Advice: []string{"move to spot", "scale to the policy's decision"}},
	},
	Warnings: []string{"3 usage spans on nodes without node data (n9) were priced at the default rates"},
}

func TestTable(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.Path + "?" + r.URL.RawQuery
		json.NewEncoder(w).Encode(&answer)
	}))
	defer srv.Close()
	a, err := scale.Fetch(context.Background(), &scale.Config{URL: srv.URL, Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if asked != recommend.Path+"?namespace=shop&window=7d" {
		t.Errorf("asked %s", asked)
	}
	var out bytes.Buffer
	if err := scale.Table(&out, a); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Workloads from 2026-03-11T00:00:00Z to 2026-03-18T00:00:00Z, costs in USD, savings per month (730 h); PodDisruptionBudgets known",
		"WORKLOAD REPLICAS RECOMMENDED PER 1K REQ ON-DEMAND SPOT P99 OBJECTIVE SPOT SAVING REPLICA SAVING ADVICE",
		// Not tolerant: the saving it would make, in brackets.
		"shop/deployment:api 1 1 0.004 0.004 - - - (13.87) - not for spot: no PodDisruptionBudget selects its pods; no CostPolicy: replicas as they are",
		"shop/deployment:web 3 2 0.0008611 0.001389 0.0003333 31.5ms 200ms 27.74 15.09 move to spot; scale to the policy's decision",
		"warning: 3 usage spans on nodes without node data (n9) were priced at the default rates",
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if got := strings.Join(strings.Fields(lines[i]), " "); got != w {
			t.Errorf("line %d:\n got %q\nwant %q", i, got, w)
		}
	}
	// The columns line up: a row's cells start where the header's do.
	if h, r := lines[1], lines[3]; strings.Index(h, "P99") != strings.Index(r, "31.5ms") {
		t.Errorf("columns do not line up:\n%s\n%s", h, r)
	}
}

func TestFetchErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error":"forbidden: may not list penny.dev/allocations in namespace batch"}` + "\n"))
	}))
	defer srv.Close()
	tests := []struct {
		cfg  scale.Config
		want string
		agg  bool
	}{
		{scale.Config{URL: srv.URL, Namespace: "batch"}, "403 Forbidden: forbidden: may not list penny.dev/allocations in namespace batch", true},
		{scale.Config{URL: "localhost:7379"}, "want http://", false},
		{scale.Config{URL: "http://127.0.0.1:1"}, "is an aggregator serving http://127.0.0.1:1?", false},
	}
	for _, tt := range tests {
		_, err := scale.Fetch(context.Background(), &tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, scale.ErrAggregator) != tt.agg {
			t.Errorf("%+v: %v, want %q (aggregator error %v)", tt.cfg, err, tt.want, tt.agg)
		}
	}
}
