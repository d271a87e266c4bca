package custommetrics_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
)

// cpuWorld stores one node sampled twice, 20s apart, with pods in the
// namespace cpu:
//
//	api-0  app     2.0 cores, 10 of 100 periods throttled
//	       proxy   0.5 cores, 30 of 60 periods throttled
//	       ""      (sandbox) 0.01 cores, no limit
//	worker-0 main  1.25 cores, no limit
func cpuWorld(t *testing.T) *world {
	t.Helper()
	n := kvtest.Start(t)
	base := time.Now().Truncate(time.Second).Add(-time.Minute)
	api := &podmeta.Pod{UID: "uid-api-0", Namespace: "cpu", Name: "api-0", Labels: map[string]string{"app": "api"}}
	worker := &podmeta.Pod{UID: "uid-worker-0", Namespace: "cpu", Name: "worker-0", Labels: map[string]string{"app": "worker"}}
	type ctr struct {
		pod                  *podmeta.Pod
		name                 string
		cpuUsec              uint64 // over the 20s
		periods, throttled   uint64
		pressure, workingSet uint64
	}
	ctrs := []ctr{
		{api, "app", 40_000_000, 100, 10, 500_000, 300 << 20},
		{api, "proxy", 10_000_000, 60, 30, 0, 20 << 20},
		{api, "", 200_000, 0, 0, 0, 1 << 20},
		{worker, "main", 25_000_000, 0, 0, 0, 50 << 20},
	}
	st := &model.NodeState{Node: "node-c"}
	for i, at := range []time.Duration{0, 20 * time.Second} {
		u := &model.Update{Node: "node-c", Incarnation: 1, Seq: uint64(i + 1), Time: base.Add(at), Interval: 20 * time.Second,
			Keyframe: i == 0}
		for j, c := range ctrs {
			ss := model.SeriesState{Ref: uint64(j + 1), Path: "/kubepods/" + c.pod.Name + "/" + c.name, CgroupID: uint64(10 + j),
				Processes: 1, RSSBytes: MiB, WorkingSetBytes: int64(c.workingSet), PressureKnown: true,
				Meta:  podmeta.Encode(c.pod, &podmeta.Container{Name: c.name, ID: "cri-" + c.name}),
				Total: model.Counters{CPUUsageUsec: 1e9, CPUPeriods: 1000, CPUThrottledPeriods: 500}}
			if i == 1 {
				ss.Total.CPUUsageUsec += c.cpuUsec
				ss.Total.CPUPeriods += c.periods
				ss.Total.CPUThrottledPeriods += c.throttled
				ss.Total.CPUPressureSomeUsec += c.pressure
			}
			u.Changed = append(u.Changed, ss)
		}
		p, err := model.PlanUpdate(st, u, u.Time)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := n.Txn(context.Background(), model.Txn(u.Node, p.Expect, p.Ops)); err != nil || !res.Succeeded {
			t.Fatalf("write: %+v %v", res, err)
		}
		st = p.Next
	}
	r, err := query.New(query.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Containers(context.Background(), query.Request{Window: 30 * time.Second,
		Read: kvraft.ReadOptions{Consistency: kvraft.Linearizable}})
	if err != nil {
		t.Fatal(err)
	}
	return &world{store: n, base: base, cs: res.Containers}
}

func TestCPUMetrics(t *testing.T) {
	w := cpuWorld(t)
	p := newProvider(t, w, nil)
	const at = 20 * time.Second
	for _, tt := range []struct {
		name   string
		metric string
		obj    types.NamespacedName
		sel    string
		want   served
	}{
		{"pod cores sum its containers", pods.CPUUsageCores, types.NamespacedName{Namespace: "cpu", Name: "api-0"}, "",
			served{"Pod", "cpu", "api-0", 2.51, at, 20}},
		{"one container's cores", pods.CPUUsageCores, types.NamespacedName{Namespace: "cpu", Name: "api-0"}, "container=proxy",
			served{"Pod", "cpu", "api-0", 0.5, at, 20}},
		{"throttled ratio of the worst container", pods.CPUThrottledRatio, types.NamespacedName{Namespace: "cpu", Name: "api-0"}, "",
			served{"Pod", "cpu", "api-0", 0.5, at, 20}},
		{"namespace cores", pods.CPUUsageCores, types.NamespacedName{Name: "cpu"}, "",
			served{"Namespace", "", "cpu", 3.76, at, 20}},
		{"namespace throttled ratio", pods.CPUThrottledRatio, types.NamespacedName{Name: "cpu"}, "container!=proxy",
			served{"Namespace", "", "cpu", 0.1, at, 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := podInfo(tt.metric)
			if tt.want.kind == "Namespace" {
				info = namespaceInfo(tt.metric)
			}
			sel := labels.Everything()
			if tt.sel != "" {
				sel = selector(t, tt.sel)
			}
			got, err := p.GetMetricByName(context.Background(), tt.obj, info, sel)
			if err != nil {
				t.Fatal(err)
			}
			check(t, w, got, tt.metric, tt.sel, tt.want)
			if tt.metric == pods.CPUUsageCores && got.Value.String() != map[float64]string{2.51: "2510m", 0.5: "500m", 3.76: "3760m"}[tt.want.value] {
				t.Errorf("cores served as %s, want millicores", got.Value.String())
			}
		})
	}
	// A pod without a CPU limit has no throttled ratio.
	if _, err := p.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "cpu", Name: "worker-0"},
		podInfo(pods.CPUThrottledRatio), labels.Everything()); err == nil {
		t.Error("throttled ratio served for a pod without a CPU limit")
	}
	// The containers the store holds carry the contract's fields.
	for _, c := range w.cs {
		if c.Path == "/kubepods/api-0/app" && (c.CPUUsageSeconds != 40 || c.CPUPressureSeconds == nil ||
			*c.CPUPressureSeconds != 0.5 || c.MemoryWorkingSetBytes != 300<<20) {
			t.Errorf("api-0/app: %+v", c.Cgroup)
		}
	}
}
