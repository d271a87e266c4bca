package server_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/allocation"
	"github.com/pennyhq/penny/aggregator/allocation/allocationtest"
	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/nodemeta"
)

// TestAllocationWired: a replica serves GET /v1/allocation with its
// cluster name and tenant label, counts its requests on /metrics, and
// every reader charges memory in the history's measure (rss+cache here):
// an hour of a container holding 1 GiB of RSS and 1 GiB of page cache
// costs, in the history and in the rate, 2 GiB-hours at OpenCost's price.
func TestAllocationWired(t *testing.T) {
	cfg := config(t.TempDir(), "127.0.0.1:0")
	cfg.History = history.Config{Memory: cost.MemoryRSSPageCache}
	cfg.Allocation = allocation.Config{Cluster: "prod", TenantLabel: "team"}
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	nodes := []allocationtest.Node{{Name: "n1", Facts: &nodemeta.Facts{Name: "n1", CapacityCPUMillis: 4000,
		CapacityMemoryBytes: 16 << 30, Source: nodemeta.SourceHost}, Cgroups: []allocationtest.Cgroup{{Path: "/kubepods/a/app",
		Pod: allocationtest.Pod("shop", "api-1", map[string]string{"team": "payments"}), Container: "app",
		RSS: 1 << 30, PageCache: 1 << 30}}}}
	allocationtest.NewWriter(t, s.Node, pricing.Default(), nodes, func(c *history.Config) { c.Memory = cost.MemoryRSSPageCache }).
		Run(t0.Add(-time.Minute), t0.Add(61*time.Minute), 10*time.Second)
	const ram = 2 * pricing.DefaultRAMGiBHour

	base := "http://" + s.Addr.String()
	window := "window=" + url.QueryEscape(t0.Format(time.RFC3339)+","+t0.Add(time.Hour).Format(time.RFC3339))
	for _, q := range []struct{ params, key string }{{"idle=false", "prod/n1/shop/api-1/app"}, {"aggregate=tenant&idle=false", "payments"}} {
		resp, err := h2c().Get(base + allocation.Path + "?consistency=linearizable&" + q.params + "&" + window)
		if err != nil {
			t.Fatal(err)
		}
		var r cost.Response
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || len(r.Data) != 1 || len(r.Data[0]) != 1 || r.Data[0][q.key] == nil {
			t.Fatalf("%s: %+v %v", q.params, r, err)
		}
		if a := r.Data[0][q.key]; math.Abs(a.RAMCost-ram) > 1e-6 || a.CPUCost != 0 {
			t.Errorf("%s: %s costs RAM %v, CPU %v; want %v, 0", q.params, q.key, a.RAMCost, a.CPUCost, ram)
		}
	}
	c := containers(t, base, "consistency=linearizable")
	if len(c.Containers) != 1 || c.Containers[0].MemoryCostDollarsPerHour == nil ||
		math.Abs(*c.Containers[0].MemoryCostDollarsPerHour-ram) > 1e-9 {
		t.Errorf("/v1/containers: %+v", c.Containers)
	}
	resp, err := h2c().Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`penny_allocation_requests_total{code="200"} 2`, "penny_allocation_request_duration_seconds_count 2",
		`penny_container_cost_dollars_per_hour{cgroup="/kubepods/a/app",node="n1"} 0.008474`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	bad := config(t.TempDir(), "127.0.0.1:0")
	bad.Allocation = allocation.Config{Cluster: "a/b"}
	if _, err := server.Start(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "cluster") {
		t.Errorf("a cluster name with a /: %v", err)
	}
}
