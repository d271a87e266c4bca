package pods_test

import (
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/internal/usage"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func f(v float64) *float64 { return &v }

// ctr is a container of pod ns/name on node, with RSS, rx bytes over the
// window, an srtt p99 and a hit ratio (nil for none).
func ctr(node, ns, pod, name string, rss int64, rx uint64, window float64, p99, hit *float64, age time.Duration) model.Container {
	c := model.Container{Node: node, SampleTime: t0.Add(-age), WindowSeconds: window,
		Cgroup: usage.Cgroup{Path: "/kubepods/" + pod + "/" + name, RSSBytes: rss, PageCacheBytes: rss / 2,
			NetRxBytes: rx, TCPSRTTP99Seconds: p99, PageCacheHitRatio: hit}}
	c.Kubernetes = &model.Kube{
		Pod: podmeta.Pod{UID: ns + "/" + pod, Namespace: ns, Name: pod,
			Labels: map[string]string{"app": pod[:len(pod)-2], "tier": ns}},
		Container: podmeta.Container{Name: name, RequestMemory: 100, LimitMemory: 200},
	}
	return c
}

// serving gives a container requests over its window and their latency
// quantiles.
func serving(c model.Container, requests uint64, p50, p99 float64) model.Container {
	c.Requests, c.RequestLatencyP50Seconds, c.RequestLatencyP99Seconds = requests, &p50, &p99
	return c
}

func fixture() []model.Container {
	return []model.Container{
		serving(ctr("n1", "shop", "web-1", "app", 1000, 3000, 30, f(0.002), f(0.9), 0), 3000, 0.020, 0.040),
		serving(ctr("n1", "shop", "web-1", "sidecar", 200, 600, 30, f(0.010), f(0.5), time.Second), 300, 0.001, 0.090),
		ctr("n1", "shop", "web-1", "", 50, 0, 30, nil, nil, 0), // sandbox
		ctr("n2", "shop", "web-2", "app", 3000, 0, 20, nil, nil, 0),
		ctr("n2", "shop", "db-0", "db", 9000, 900, 30, f(0.001), f(0.99), 2*time.Second),
		ctr("n2", "batch", "job-1", "main", 10, 0, 0, nil, nil, 0),
		{Node: "n1", Cgroup: usage.Cgroup{Path: "/system.slice/sshd.service", RSSBytes: 1 << 30}}, // not a pod
	}
}

func sel(t *testing.T, s string) labels.Selector {
	t.Helper()
	l, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func names(ps []pods.Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

func TestGroup(t *testing.T) {
	tests := []struct {
		name  string
		query func(t *testing.T) pods.Query
		want  []string
	}{
		{"everything", func(*testing.T) pods.Query { return pods.Query{} },
			[]string{"batch/job-1", "shop/db-0", "shop/web-1", "shop/web-2"}},
		{"namespace", func(*testing.T) pods.Query { return pods.Query{Namespace: "shop"} },
			[]string{"shop/db-0", "shop/web-1", "shop/web-2"}},
		{"name", func(*testing.T) pods.Query { return pods.Query{Namespace: "shop", Name: "web-2"} }, []string{"shop/web-2"}},
		{"missing pod", func(*testing.T) pods.Query { return pods.Query{Namespace: "shop", Name: "web-9"} }, nil},
		{"label selector", func(t *testing.T) pods.Query { return pods.Query{Selector: sel(t, "app=web")} },
			[]string{"shop/web-1", "shop/web-2"}},
		{"set selector", func(t *testing.T) pods.Query { return pods.Query{Selector: sel(t, "app in (db,job),tier!=batch")} },
			[]string{"shop/db-0"}},
		{"metric selector on containers", func(t *testing.T) pods.Query { return pods.Query{MetricSelector: sel(t, "container=app")} },
			[]string{"shop/web-1", "shop/web-2"}},
		{"metric selector on node", func(t *testing.T) pods.Query { return pods.Query{MetricSelector: sel(t, "node=n1")} },
			[]string{"shop/web-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(pods.Group(fixture(), tt.query(t))); !slices.Equal(got, tt.want) {
				t.Errorf("pods = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAggregationRules(t *testing.T) {
	ps := pods.Group(fixture(), pods.Query{Namespace: "shop", Name: "web-1"})
	if len(ps) != 1 {
		t.Fatalf("pods: %v", names(ps))
	}
	p := ps[0]
	want := map[string]float64{
		pods.MemoryRSSBytes:           1250,           // summed, sandbox included
		pods.MemoryPageCacheBytes:     500 + 100 + 25, // summed
		pods.NetRxBytesPerSecond:      3600.0 / 30,    // bytes over each window, summed
		pods.NetTxBytesPerSecond:      0,              // no traffic is a real zero
		pods.TCPSRTTP99Seconds:        0.010,          // the worst container
		pods.PageCacheHitRatio:        0.5,            // the worst container
		pods.CPUUsageCores:            0,              // no CPU time is a real zero
		pods.Requests:                 3300,           // summed
		pods.RequestsPerSecond:        3300.0 / 30,    // requests over each window, summed
		pods.RequestLatencyP50Seconds: 0.020,          // the worst container
		pods.RequestLatencyP99Seconds: 0.090,          // the worst container
	}
	if len(p.Metrics) != len(want) {
		t.Errorf("metrics %v, want the keys of %v", p.Metrics, want)
	}
	for k, v := range want {
		if got, ok := p.Metrics[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, absent := range []string{pods.TCPSRTTP50Seconds, pods.TCPConnectP99Seconds} {
		if _, ok := p.Metrics[absent]; ok {
			t.Errorf("%s present without data", absent)
		}
	}
	if !slices.Equal(p.Containers, []string{"", "app", "sidecar"}) || p.RequestMemoryBytes != 300 || p.LimitMemoryBytes != 600 {
		t.Errorf("containers %q requests %d limits %d", p.Containers, p.RequestMemoryBytes, p.LimitMemoryBytes)
	}
	if !p.Time.Equal(t0.Add(-time.Second)) || p.WindowSeconds != 30 || p.Node != "n1" {
		t.Errorf("time %v window %v node %s: want the oldest sample, the longest window", p.Time, p.WindowSeconds, p.Node)
	}

	// Only the matched containers count.
	app := pods.Group(fixture(), pods.Query{Name: "web-1", MetricSelector: sel(t, "container=app")})[0]
	if app.Metrics[pods.MemoryRSSBytes] != 1000 || app.Metrics[pods.TCPSRTTP99Seconds] != 0.002 {
		t.Errorf("container=app: %v", app.Metrics)
	}
	// Without a window there is no rate, rather than a made-up zero.
	job := pods.Group(fixture(), pods.Query{Namespace: "batch"})[0]
	if _, ok := job.Metrics[pods.NetRxBytesPerSecond]; ok {
		t.Errorf("rate without a window: %v", job.Metrics)
	}
}

// TestCPUMetrics: a pod's cores are its containers' CPU time per second of
// their windows, summed; its throttled ratio its worst container's.
func TestCPUMetrics(t *testing.T) {
	withCPU := func(c model.Container, seconds float64, periods, throttled uint64) model.Container {
		c.CPUUsageSeconds, c.CPUPeriods, c.CPUThrottledPeriods = seconds, periods, throttled
		return c
	}
	cs := []model.Container{
		withCPU(ctr("n1", "shop", "web-1", "app", 1, 0, 30, nil, nil, 0), 15, 300, 30),    // 0.5 cores, 10% throttled
		withCPU(ctr("n1", "shop", "web-1", "sidecar", 1, 0, 20, nil, nil, 0), 2, 200, 50), // 0.1 cores, 25%
		withCPU(ctr("n1", "shop", "web-1", "", 1, 0, 30, nil, nil, 0), 0.3, 0, 0),         // no limit: no ratio
		withCPU(ctr("n2", "shop", "db-0", "db", 1, 0, 30, nil, nil, 0), 60, 0, 0),         // 2 cores, no limit
		withCPU(ctr("n2", "batch", "job-1", "main", 1, 0, 0, nil, nil, 0), 1, 10, 1),      // no window
	}
	ps := pods.Group(cs, pods.Query{})
	got := map[string]map[string]float64{}
	for _, p := range ps {
		got[p.Name] = p.Metrics
	}
	for _, tt := range []struct {
		pod, metric string
		want        float64
		present     bool
	}{
		{"web-1", pods.CPUUsageCores, 0.5 + 0.1 + 0.01, true},
		{"web-1", pods.CPUThrottledRatio, 0.25, true},
		{"db-0", pods.CPUUsageCores, 2, true},
		{"db-0", pods.CPUThrottledRatio, 0, false},
		{"job-1", pods.CPUUsageCores, 0, false},
		{"job-1", pods.CPUThrottledRatio, 0.1, true},
	} {
		v, ok := got[tt.pod][tt.metric]
		if ok != tt.present || ok && math.Abs(v-tt.want) > 1e-9 {
			t.Errorf("%s %s = %v (present %v), want %v (present %v)", tt.pod, tt.metric, v, ok, tt.want, tt.present)
		}
	}
	ns := pods.Namespaces(ps)
	if shop := ns[1]; math.Abs(shop.Metrics[pods.CPUUsageCores]-2.61) > 1e-9 || shop.Metrics[pods.CPUThrottledRatio] != 0.25 {
		t.Errorf("shop: %v", shop.Metrics)
	}
}

// TestCostMetric: a pod's cost per hour sums its containers' that have
// one; a pod none of whose containers could be priced has none.
func TestCostMetric(t *testing.T) {
	withCost := func(c model.Container, cost *float64) model.Container {
		c.CostDollarsPerHour = cost
		return c
	}
	cs := []model.Container{
		withCost(ctr("n1", "shop", "web-1", "app", 1, 0, 30, nil, nil, 0), f(0.125)),
		withCost(ctr("n1", "shop", "web-1", "sidecar", 1, 0, 30, nil, nil, 0), f(0.0625)),
		withCost(ctr("n1", "shop", "web-1", "", 1, 0, 30, nil, nil, 0), nil), // not priced: counts nothing
		withCost(ctr("n2", "shop", "db-0", "db", 1, 0, 30, nil, nil, 0), f(0.25)),
		withCost(ctr("n2", "batch", "job-1", "main", 1, 0, 0, nil, nil, 0), nil), // no window, no price
	}
	ps := pods.Group(cs, pods.Query{})
	got := map[string]float64{}
	for _, p := range ps {
		if v, ok := p.Metrics[pods.CostDollarsPerHour]; ok {
			got[p.Name] = v
		}
	}
	if want := map[string]float64{"web-1": 0.1875, "db-0": 0.25}; !maps.Equal(got, want) {
		t.Errorf("pod costs %v, want %v", got, want)
	}
	ns := pods.Namespaces(ps)
	if _, ok := ns[0].Metrics[pods.CostDollarsPerHour]; ok || ns[1].Metrics[pods.CostDollarsPerHour] != 0.4375 {
		t.Errorf("namespace costs: batch %v, shop %v", ns[0].Metrics, ns[1].Metrics)
	}
}

func TestNamespaces(t *testing.T) {
	ns := pods.Namespaces(pods.Group(fixture(), pods.Query{}))
	if len(ns) != 2 || ns[0].Name != "batch" || ns[1].Name != "shop" {
		t.Fatalf("namespaces %+v", ns)
	}
	shop := ns[1]
	if shop.Pods != 3 {
		t.Errorf("shop pods = %d", shop.Pods)
	}
	want := map[string]float64{
		pods.MemoryRSSBytes:      1250 + 3000 + 9000,
		pods.TCPSRTTP99Seconds:   0.010,
		pods.PageCacheHitRatio:   0.5,
		pods.NetRxBytesPerSecond: 3600.0/30 + 0 + 900.0/30,
	}
	for k, v := range want {
		if got := shop.Metrics[k]; got != v {
			t.Errorf("shop %s = %v, want %v", k, got, v)
		}
	}
	if !shop.Time.Equal(t0.Add(-2*time.Second)) || shop.WindowSeconds != 30 {
		t.Errorf("shop time %v window %v", shop.Time, shop.WindowSeconds)
	}
	if got := pods.Namespaces(nil); len(got) != 0 {
		t.Errorf("no pods gave namespaces %+v", got)
	}
}

func TestLookup(t *testing.T) {
	for _, m := range pods.Metrics {
		if got, ok := pods.Lookup(m.Name); !ok || got.Name != m.Name || got.Rule == 0 && m.Name != pods.CostPer1kRequests || got.Help == "" {
			t.Errorf("Lookup(%s) = %+v, %v", m.Name, got, ok)
		}
	}
	if _, ok := pods.Lookup("cpu_seconds"); ok {
		t.Error("unknown metric found")
	}
}

// TestCostPer1kRequests: a pod's cost of 1,000 requests is its whole cost
// per hour (every container, serving or not) over its request rate; a
// namespace's is its pods' total cost over their total rate, not a
// combination of their ratios; no requests, no value.
func TestCostPer1kRequests(t *testing.T) {
	withCost := func(c model.Container, cost float64) model.Container {
		c.CostDollarsPerHour = &cost
		return c
	}
	cs := []model.Container{
		withCost(serving(ctr("n1", "shop", "web-1", "app", 1, 0, 30, nil, nil, 0), 300, 0.01, 0.02), 0.125), // 10 req/s
		withCost(ctr("n1", "shop", "web-1", "sidecar", 1, 0, 30, nil, nil, 0), 0.0625),
		withCost(serving(ctr("n1", "shop", "web-2", "app", 1, 0, 30, nil, nil, 0), 900, 0.01, 0.02), 0.125), // 30 req/s
		withCost(ctr("n2", "shop", "db-0", "db", 1, 0, 30, nil, nil, 0), 0.25),
	}
	ps := pods.Group(cs, pods.Query{})
	want := map[string]float64{"web-1": 0.1875 / (10 * 3.6), "web-2": 0.125 / (30 * 3.6)}
	for _, p := range ps {
		v, ok := p.Metrics[pods.CostPer1kRequests]
		if w, has := want[p.Name]; ok != has || math.Abs(v-w) > 1e-12 {
			t.Errorf("%s: cost per 1k requests %v (%v), want %v (%v)", p.Name, v, ok, w, has)
		}
	}
	ns := pods.Namespaces(ps)
	if got, w := ns[0].Metrics[pods.CostPer1kRequests], (0.1875+0.125+0.25)/(40*3.6); math.Abs(got-w) > 1e-12 {
		t.Errorf("shop: cost per 1k requests %v, want %v", got, w)
	}
}

// TestGroupMergesRequestLatency: a pod's request latency histogram is its
// containers' merged, for readers that judge a workload on all its
// requests.
func TestGroupMergesRequestLatency(t *testing.T) {
	hist := func(n int, us uint64) histogram.LogLinear {
		var h histogram.LogLinear
		for range n {
			h.Observe(us)
		}
		return h
	}
	app := ctr("n1", "shop", "web-1", "app", 1, 0, 30, nil, nil, 0)
	app.RequestLatency = hist(90, 20_000)
	sidecar := ctr("n1", "shop", "web-1", "sidecar", 1, 0, 30, nil, nil, 0)
	sidecar.RequestLatency = hist(10, 200_000)
	other := ctr("n1", "shop", "web-2", "app", 1, 0, 30, nil, nil, 0)
	ps := pods.Group([]model.Container{app, sidecar, other}, pods.Query{Namespace: "shop"})
	if len(ps) != 2 {
		t.Fatalf("%d pods", len(ps))
	}
	if h := ps[0].RequestLatency; h.Count != 100 || h.Above(100_000) != 10 {
		t.Errorf("web-1: %d requests, %v over 100 ms; want 100 and 10", h.Count, h.Above(100_000))
	}
	if h := ps[1].RequestLatency; h.Count != 0 {
		t.Errorf("web-2 served nothing, has %d requests", h.Count)
	}
}
