package query_test

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
)

const gib = 1 << 30

// costPricing: on-demand 0.04/core-h and 0.005/GiB-h, spot 0.01 and
// 0.001, egress 0.12/GiB to the internet and 0.01 in-cluster, and an
// on-demand m5.xlarge in us-east-1 at 0.48/h, which splits over 4 cores
// and 16 GiB (ratio 8, weight 48) into 0.08/core-h and 0.01/GiB-h.
const costPricing = `apiVersion: penny.dev/v1
kind: Pricing
defaults: {cpuCoreHour: 0.04, ramGiBHour: 0.005, spotCPUCoreHour: 0.01, spotRAMGiBHour: 0.001,
  egressInternetGiB: 0.12, egressClusterGiB: 0.01}
nodes:
  - {instanceType: m5.xlarge, region: us-east-1, hourlyPrice: 0.48}
`

// costCgroup is one cgroup of the cost fixture; usage over its node's 20 s.
type costCgroup struct {
	path                         string
	pod                          *podmeta.Pod
	container                    string
	reqCPUMillis, reqMemory      int64
	cpuSeconds                   float64
	rss, pageCache, workingSet   int64
	egressInternet, egressClustr uint64 // bytes over the 20 s
}

type costNode struct {
	name    string
	facts   *nodemeta.Facts
	cgroups []costCgroup
}

func pod(ns, name string) *podmeta.Pod {
	return &podmeta.Pod{UID: "uid-" + name, Namespace: ns, Name: name}
}

// costNodes, sampled twice 20 s apart. The expected costs per hour:
//
//	od (on-demand m5.xlarge, node price): 0.08/core-h, 0.01/GiB-h; offers 4 cores, 16 GiB = 0.48
//	  shop/api-1  0.5 of 1 core, 1 of 2 GiB          charged 1, 2     0.08 + 0.02 = 0.10
//	  shop/web-1  1.5 of 0.5 core, 3 of 1 GiB,       charged 1.5, 3   0.12 + 0.03 = 0.15
//	              20 MiB to the internet, 10 MiB in-cluster (3600 and 1800 MiB/h): + 0.421875 + 0.017578125
//	  kubelet     0.1 core, 512 MiB, no pod: priced (0.008 + 0.005), not allocated from the node
//	  idle: CPU 0.32 - 0.20 = 0.12, memory 0.16 - 0.05 = 0.11: 0.23
//	spot (spot, no node price): 0.01, 0.001; offers 2 cores, 8 GiB = 0.028
//	  batch/job-1    2 cores, 4 GiB, no request    0.02 + 0.004 = 0.024
//	  batch/sleep-1  nothing used, requests 1 core and 1 GiB   0.01 + 0.001 = 0.011
//	  idle: CPU 0.02 - 0.03 < 0: 0; memory 0.008 - 0.005 = 0.003
//	host (no Kubernetes, capacity 2 cores and 4 GiB): 0.04, 0.005; offers 0.10
//	  /a.service  0.5 core, 1 GiB                 0.02 + 0.005 = 0.025, allocated
//	  idle: 0.06 + 0.015 = 0.075
//	bare (no facts): the default on-demand prices, no node cost
//	  /x.service  0.25 core, 256 MiB              0.01 + 0.00125 = 0.01125
var costNodes = []costNode{
	{"od", &nodemeta.Facts{Name: "od", InstanceType: "m5.xlarge", Region: "us-east-1", CapacityType: nodemeta.OnDemand,
		AllocatableCPUMillis: 4000, AllocatableMemoryBytes: 16 * gib, CapacityCPUMillis: 4000, CapacityMemoryBytes: 16 * gib,
		Source: nodemeta.SourceKubernetes}, []costCgroup{
		{path: "/kubepods/api-1/app", pod: pod("shop", "api-1"), container: "app", reqCPUMillis: 1000, reqMemory: 2 * gib,
			cpuSeconds: 10, rss: 1 * gib, pageCache: 1 * gib, workingSet: 3 * gib},
		{path: "/kubepods/web-1/app", pod: pod("shop", "web-1"), container: "app", reqCPUMillis: 500, reqMemory: 1 * gib,
			cpuSeconds: 30, rss: 3 * gib, pageCache: 1 * gib, workingSet: 2 * gib, egressInternet: 20 << 20, egressClustr: 10 << 20},
		{path: "/system.slice/kubelet.service", cpuSeconds: 2, rss: 512 << 20},
	}},
	{"spot", &nodemeta.Facts{Name: "spot", InstanceType: "c5.large", CapacityType: nodemeta.Spot,
		AllocatableCPUMillis: 2000, AllocatableMemoryBytes: 8 * gib, Source: nodemeta.SourceKubernetes}, []costCgroup{
		{path: "/kubepods/job-1/main", pod: pod("batch", "job-1"), container: "main", cpuSeconds: 40, rss: 4 * gib},
		{path: "/kubepods/sleep-1/main", pod: pod("batch", "sleep-1"), container: "main", reqCPUMillis: 1000, reqMemory: 1 * gib},
	}},
	{"host", &nodemeta.Facts{Name: "host", CapacityCPUMillis: 2000, CapacityMemoryBytes: 4 * gib, Source: nodemeta.SourceHost},
		[]costCgroup{{path: "/system.slice/a.service", cpuSeconds: 10, rss: 1 * gib}}},
	{"bare", nil, []costCgroup{{path: "/system.slice/x.service", cpuSeconds: 5, rss: 256 << 20}}},
}

// writeCostNodes stores costNodes as the ingest would from two samples
// 20 s apart, the second a minute ago.
func writeCostNodes(t *testing.T, n *kvraft.Node) {
	t.Helper()
	base := time.Now().Truncate(time.Second).Add(-80 * time.Second)
	for _, cn := range costNodes {
		st := &model.NodeState{Node: cn.name}
		for i, at := range []time.Duration{0, 20 * time.Second} {
			u := &model.Update{Node: cn.name, Incarnation: 1, Seq: uint64(i + 1), Time: base.Add(at), Interval: 20 * time.Second,
				Keyframe: i == 0}
			if cn.facts != nil {
				u.Meta = nodemeta.Encode(cn.facts)
			}
			for j, c := range cn.cgroups {
				ss := model.SeriesState{Ref: uint64(j + 1), Path: c.path, CgroupID: uint64(10 + j), Processes: 1,
					RSSBytes: c.rss, PageCacheBytes: c.pageCache, WorkingSetBytes: c.workingSet,
					Total: model.Counters{CPUUsageUsec: 1e9, TxBytes: 1 << 20, TxInternetBytes: 1 << 20}}
				if c.pod != nil {
					ss.Meta = podmeta.Encode(c.pod, &podmeta.Container{Name: c.container, RequestCPUMillis: c.reqCPUMillis,
						RequestMemory: c.reqMemory})
				}
				if i == 1 {
					ss.Total.CPUUsageUsec += uint64(c.cpuSeconds * 1e6)
					ss.Total.TxInternetBytes += c.egressInternet
					ss.Total.TxClusterBytes += c.egressClustr
					ss.Total.TxBytes += c.egressInternet + c.egressClustr
				}
				u.Changed = append(u.Changed, ss)
			}
			p, err := model.PlanUpdate(st, u, u.Time)
			if err != nil {
				t.Fatal(err)
			}
			if res, err := n.Txn(context.Background(), model.Txn(u.Node, p.Expect, p.Ops)); err != nil || !res.Succeeded {
				t.Fatalf("write %s: %+v %v", cn.name, res, err)
			}
			st = p.Next
		}
	}
}

func costReader(t *testing.T, n *kvraft.Node, m cost.MemoryMeasure) *query.Reader {
	t.Helper()
	prices, err := pricing.Parse([]byte(costPricing), pricing.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := query.New(query.Config{Store: n, Prices: prices, MemoryMeasure: m})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// within compares costs to the micro-dollar.
func within(got, want float64) bool { return math.Abs(got-want) <= 5e-7 }

func TestContainerCost(t *testing.T) {
	n := kvtest.Start(t)
	writeCostNodes(t, n)
	// cost per hour and its CPU, memory and network parts
	type want struct{ total, cpu, ram, net float64 }
	web := want{0.589453125, 0.12, 0.03, 0.439453125}
	for _, tc := range []struct {
		name    string
		measure cost.MemoryMeasure
		window  time.Duration
		want    map[string]want // by node and path
	}{
		{"rss", cost.MemoryRSS, 30 * time.Second, map[string]want{
			"od/kubepods/api-1/app":           {0.10, 0.08, 0.02, 0}, // request above usage
			"od/kubepods/web-1/app":           web,                   // usage above request
			"od/system.slice/kubelet.service": {0.013, 0.008, 0.005, 0},
			"spot/kubepods/job-1/main":        {0.024, 0.02, 0.004, 0}, // no request
			"spot/kubepods/sleep-1/main":      {0.011, 0.01, 0.001, 0}, // nothing used
			"host/system.slice/a.service":     {0.025, 0.02, 0.005, 0},
			"bare/system.slice/x.service":     {0.01125, 0.01, 0.00125, 0}, // default prices
		}},
		// The node's last interval is the same 20 s here.
		{"last interval", cost.MemoryRSS, 0, map[string]want{"od/kubepods/api-1/app": {0.10, 0.08, 0.02, 0},
			"od/kubepods/web-1/app": web}},
		// RSS + page cache: api-1's 2 GiB is its request anyway; web-1 is
		// charged 4 GiB.
		{"rss+cache", cost.MemoryRSSPageCache, 30 * time.Second, map[string]want{"od/kubepods/api-1/app": {0.10, 0.08, 0.02, 0},
			"od/kubepods/web-1/app": {0.599453125, 0.12, 0.04, 0.439453125}}},
		// Working set: api-1's 3 GiB is above its request; web-1's 2 GiB too.
		{"working set", cost.MemoryWorkingSet, 30 * time.Second, map[string]want{"od/kubepods/api-1/app": {0.11, 0.08, 0.03, 0},
			"od/kubepods/web-1/app": {0.579453125, 0.12, 0.02, 0.439453125}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := costReader(t, n, tc.measure)
			res, err := r.Containers(context.Background(), query.Request{Window: tc.window, Read: linearizable})
			if err != nil {
				t.Fatal(err)
			}
			if res.Currency != "USD" {
				t.Errorf("currency %q", res.Currency)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "node bare has no facts") {
				t.Errorf("warnings %q, want one for bare", res.Warnings)
			}
			seen := 0
			for _, c := range res.Containers {
				w, ok := tc.want[c.Node+c.Path]
				if !ok {
					continue
				}
				seen++
				if c.CostDollarsPerHour == nil {
					t.Errorf("%s%s: no cost", c.Node, c.Path)
					continue
				}
				if !within(*c.CostDollarsPerHour, w.total) || !within(*c.CPUCostDollarsPerHour, w.cpu) ||
					!within(*c.MemoryCostDollarsPerHour, w.ram) || !within(*c.NetworkCostDollarsPerHour, w.net) {
					t.Errorf("%s%s: cost %.9f (CPU %.9f, memory %.9f, network %.9f), want %+v", c.Node, c.Path,
						*c.CostDollarsPerHour, *c.CPUCostDollarsPerHour, *c.MemoryCostDollarsPerHour, *c.NetworkCostDollarsPerHour, w)
				}
			}
			if seen != len(tc.want) {
				t.Errorf("%d of %d containers found", seen, len(tc.want))
			}
		})
	}
}

func TestNodeCost(t *testing.T) {
	n := kvtest.Start(t)
	writeCostNodes(t, n)
	r := costReader(t, n, "")
	res, err := r.Nodes(context.Background(), query.Request{Window: 30 * time.Second, Read: linearizable})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		cost, allocated, idle *float64
		source                string
		spot                  bool
		warning               string
	}
	f := func(v float64) *float64 { return &v }
	wants := map[string]want{
		"od":   {f(0.48), f(0.25), f(0.23), "node-price", false, ""},
		"spot": {f(0.028), f(0.035), f(0.003), "file", true, ""}, // charged above the CPU offered: no CPU idle
		"host": {f(0.10), f(0.025), f(0.075), "file", false, ""},
		"bare": {nil, f(0.01125), nil, "file", false, "no facts"},
	}
	if len(res.Nodes) != len(wants) || res.Currency != "USD" {
		t.Fatalf("nodes %+v in %q", res.Nodes, res.Currency)
	}
	for _, nd := range res.Nodes {
		w := wants[nd.Node]
		for _, c := range []struct {
			what      string
			got, want *float64
		}{{"cost", nd.CostDollarsPerHour, w.cost}, {"allocated", &nd.AllocatedCostDollarsPerHour, w.allocated},
			{"idle", nd.IdleCostDollarsPerHour, w.idle}} {
			if (c.got == nil) != (c.want == nil) || c.got != nil && !within(*c.got, *c.want) {
				t.Errorf("%s: %s %v, want %v", nd.Node, c.what, deref(c.got), deref(c.want))
			}
		}
		if nd.Rates.Source != w.source || nd.Rates.Spot != w.spot || !strings.Contains(nd.Warning, w.warning) ||
			(w.warning == "") != (nd.Warning == "") {
			t.Errorf("%s: rates %+v, warning %q; want source %s, spot %t, warning %q", nd.Node, nd.Rates, nd.Warning,
				w.source, w.spot, w.warning)
		}
	}
	// One node's read prices it the same.
	one, err := r.Nodes(context.Background(), query.Request{Node: "od", Window: 30 * time.Second, Read: linearizable})
	if err != nil || len(one.Nodes) != 1 || !within(*one.Nodes[0].IdleCostDollarsPerHour, 0.23) {
		t.Errorf("od alone: %+v, %v", one, err)
	}
}

func TestPodAndNamespaceCost(t *testing.T) {
	n := kvtest.Start(t)
	writeCostNodes(t, n)
	r := costReader(t, n, "")
	req := query.Request{Window: 30 * time.Second, Read: linearizable}
	ps, err := r.Pods(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"shop/api-1": 0.10, "shop/web-1": 0.589453125, "batch/job-1": 0.024, "batch/sleep-1": 0.011}
	for _, p := range ps.Pods {
		if got, ok := p.Metrics[pods.CostDollarsPerHour]; !ok || !within(got, want[p.Namespace+"/"+p.Name]) {
			t.Errorf("%s/%s: cost %v, want %v", p.Namespace, p.Name, got, want[p.Namespace+"/"+p.Name])
		}
	}
	if len(ps.Pods) != len(want) || ps.Currency != "USD" {
		t.Errorf("pods %+v", ps)
	}
	ns, err := r.Namespaces(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantNS := map[string]float64{"shop": 0.689453125, "batch": 0.035}
	for _, x := range ns.Namespaces {
		if got := x.Metrics[pods.CostDollarsPerHour]; !within(got, wantNS[x.Name]) {
			t.Errorf("%s: cost %v, want %v", x.Name, got, wantNS[x.Name])
		}
	}
	if len(ns.Namespaces) != len(wantNS) {
		t.Errorf("namespaces %+v", ns.Namespaces)
	}
}

// TestPricesFollowTheWatcher: a reader given the pricing watcher prices
// with what is in force when it reads.
func TestPricesFollowTheWatcher(t *testing.T) {
	n := kvtest.Start(t)
	writeCostNodes(t, n)
	dir := t.TempDir()
	path := dir + "/pricing.yaml"
	write := func(cpu string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("apiVersion: penny.dev/v1\nkind: Pricing\ndefaults: {cpuCoreHour: "+cpu+", ramGiBHour: 0}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("0.04")
	w, err := pricing.NewWatcher(pricing.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	r, err := query.New(query.Config{Store: n, Prices: w})
	if err != nil {
		t.Fatal(err)
	}
	costNow := func() float64 {
		t.Helper()
		res, err := r.Containers(context.Background(), query.Request{Node: "host", Window: 30 * time.Second, Read: linearizable})
		if err != nil || len(res.Containers) != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
		return *res.Containers[0].CostDollarsPerHour
	}
	if got := costNow(); !within(got, 0.02) { // 0.5 core
		t.Errorf("cost %v, want 0.02", got)
	}
	write("0.1")
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := costNow(); !within(got, 0.05) {
		t.Errorf("after the reload: cost %v, want 0.05", got)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// BenchmarkPrice is what pricing adds to each container of a read.
func BenchmarkPrice(b *testing.B) {
	c := model.Container{Kubernetes: &model.Kube{Container: podmeta.Container{RequestCPUMillis: 250, RequestMemory: 256 << 20}}}
	c.CPUUsageSeconds, c.RSSBytes, c.NetTxInternetBytes = 0.3, 300<<20, 4096
	r := query.CostRates(pricing.Default().Rates(pricing.Facts{}))
	b.ReportAllocs()
	for b.Loop() {
		query.Price(&c.Cgroup, 1, c.Kubernetes, cost.MemoryRSS, r)
	}
}
