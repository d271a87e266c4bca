package exporter_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/podmeta"
)

// TestPodSeries checks penny_container_info, the requests and the cost of
// each tenant: shop/web-1 carries the tenant label (team=acme) and its
// app container requests 0.5 core and 256 MiB, its sidecar nothing;
// batch/job-1 has no tenant label (its tenant is its namespace), and the
// sshd unit belongs to no pod. Memory costs 0.004 per GiB-hour.
func TestPodSeries(t *testing.T) {
	n := kvtest.Start(t)
	web1 := &podmeta.Pod{UID: "uid-web-1", Namespace: "shop", Name: "web-1", OwnerKind: "ReplicaSet", OwnerName: "web-5d8",
		Labels: map[string]string{"team": "acme"}}
	job1 := &podmeta.Pod{UID: "uid-job-1", Namespace: "batch", Name: "job-1", OwnerKind: "Job", OwnerName: "job"}
	base := time.Now().Truncate(time.Second).Add(-time.Minute)
	u := &model.Update{Node: "node-t", Incarnation: 1, Seq: 1, Time: base, Interval: time.Second, Keyframe: true,
		Changed: []model.SeriesState{
			{Ref: 1, Path: "/kubepods/web-1/app", RSSBytes: 1 << 30,
				Meta: podmeta.Encode(web1, &podmeta.Container{Name: "app", RequestCPUMillis: 500, RequestMemory: 256 << 20})},
			{Ref: 2, Path: "/kubepods/web-1/sidecar", RSSBytes: 512 << 20, Meta: podmeta.Encode(web1, &podmeta.Container{Name: "sidecar"})},
			{Ref: 3, Path: "/kubepods/job-1/main", RSSBytes: 256 << 20, Meta: podmeta.Encode(job1, &podmeta.Container{Name: "main"})},
			{Ref: 4, Path: "/system.slice/sshd.service", RSSBytes: 5 << 20},
		}}
	p, err := model.PlanUpdate(&model.NodeState{Node: "node-t"}, u, u.Time)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.Txn(context.Background(), model.Txn(u.Node, p.Expect, p.Ops)); err != nil || !res.Succeeded {
		t.Fatal(res, err)
	}
	prices, err := pricing.Parse([]byte("apiVersion: penny.dev/v1\nkind: Pricing\ndefaults: {cpuCoreHour: 0.05, ramGiBHour: 0.004}\n"),
		pricing.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := exporter.New(exporter.Config{Store: n, Prices: prices, TenantLabel: "team"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[series(mf.GetName(), m)] = m.GetGauge().GetValue()
		}
	}
	// web-1: the CPU request of 0.5 core, max(request 256 MiB, 1 GiB) +
	// 512 MiB = 1.5 GiB; job-1: 0.25 GiB.
	tests := []struct {
		series string
		want   float64 // NaN: absent
	}{
		{`penny_container_info{cgroup="/kubepods/web-1/app",container="app",namespace="shop",node="node-t",owner_kind="ReplicaSet",owner_name="web-5d8",pod="web-1",tenant="acme"}`, 1},
		{`penny_container_info{cgroup="/kubepods/web-1/sidecar",container="sidecar",namespace="shop",node="node-t",owner_kind="ReplicaSet",owner_name="web-5d8",pod="web-1",tenant="acme"}`, 1},
		{`penny_container_info{cgroup="/kubepods/job-1/main",container="main",namespace="batch",node="node-t",owner_kind="Job",owner_name="job",pod="job-1",tenant="batch"}`, 1},
		{`penny_container_cpu_request_cores{cgroup="/kubepods/web-1/app",node="node-t"}`, 0.5},
		{`penny_container_memory_request_bytes{cgroup="/kubepods/web-1/app",node="node-t"}`, 256 << 20},
		{`penny_container_cpu_request_cores{cgroup="/kubepods/web-1/sidecar",node="node-t"}`, math.NaN()},
		{`penny_container_memory_request_bytes{cgroup="/kubepods/job-1/main",node="node-t"}`, math.NaN()},
		{`penny_tenant_cost_dollars_per_hour{tenant="acme"}`, 0.5*0.05 + 1.5*0.004},
		{`penny_tenant_cost_dollars_per_hour{tenant="batch"}`, 0.25 * 0.004},
		{`penny_tenant_cost_dollars_per_hour{tenant="shop"}`, math.NaN()},
	}
	for _, tt := range tests {
		g, ok := got[tt.series]
		switch {
		case math.IsNaN(tt.want) && ok:
			t.Errorf("%s = %v, want none", tt.series, g)
		case !math.IsNaN(tt.want) && (!ok || math.Abs(g-tt.want) > 1e-12):
			t.Errorf("%s = %v (present %t), want %v", tt.series, g, ok, tt.want)
		}
	}
	infos := 0
	for k := range got {
		if strings.HasPrefix(k, "penny_container_info{") {
			infos++
		}
	}
	if infos != 3 {
		t.Errorf("%d penny_container_info series, want 3 (none for sshd)", infos)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
