package cost

import (
	"errors"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// The fixture, one hour from t0, every number chosen so the expected
// values below can be recomputed by hand (docs/cost.md walks through
// them):
//
//	node od   on-demand: 4 cores, 16 GiB at $0.04/core-h, $0.005/GiB-h = $0.24/h
//	node spot spot:      8 cores, 32 GiB at $0.01/core-h, $0.001/GiB-h = $0.112/h
//
//	container      node  cpu use/req  ram use/req GiB  alloc core-h, GiB-h   cost
//	shop/api-1     od    0.5 / 1      1 / 2            1,   2                0.04 + 0.01   = 0.05
//	shop/web-1     od    1.5 / 0.5    3 / 1            1.5, 3                0.06 + 0.015  = 0.075
//	batch/job-1    spot  2   / -      4 / -            2,   4                0.02 + 0.004  = 0.024 (+ egress 0.25)
//	batch/sleep-1  spot  0   / 1      0 / 1            1,   1                0.01 + 0.001  = 0.011
//
// job-1 sends 2 GiB to the internet ($0.12/GiB) and 1 GiB in-cluster
// ($0.01/GiB): $0.25. Idle: od CPU 0.16-0.10 = 0.06, RAM 0.08-0.025 =
// 0.055; spot CPU 0.08-0.03 = 0.05, RAM 0.032-0.005 = 0.027; 0.192 in all.
var (
	t0       = time.Date(2026, 3, 18, 10, 0, 0, 0, time.UTC) // a Wednesday
	onDemand = Rates{Currency: "USD", CPUCoreHour: 0.04, RAMGiBHour: 0.005, EgressInternetGiB: 0.12, EgressClusterGiB: 0.01, Source: "test"}
	spotRate = Rates{Currency: "USD", CPUCoreHour: 0.01, RAMGiBHour: 0.001, EgressInternetGiB: 0.12, EgressClusterGiB: 0.01, Spot: true, Source: "test"}
)

// hourOf is an hour of constant usage from start, built from 60 minutes
// with Minute and compacted with Add, as the store does.
func hourOf(start time.Time, cpuUse, cpuReq, ramUseGiB, ramReqGiB, inetGiB, clusterGiB float64) Usage {
	var h Usage
	for m := range 60 {
		h.Add(Minute(start.Add(time.Duration(m)*time.Minute), 60, cpuUse*60, cpuReq, ramUseGiB*GiB, ramReqGiB*GiB, inetGiB*GiB/60, clusterGiB*GiB/60))
	}
	return h
}

func nodeSpan(name string, start time.Time, d time.Duration, cores, ramGiB float64, r Rates) NodeUsage {
	return NodeUsage{Node: name, Start: start, End: start.Add(d), Hours: d.Hours(), CPUCores: cores, RAMBytes: ramGiB * GiB, Rates: r}
}

func fixture() ([]Series, []NodeUsage) {
	series := []Series{
		{Container: Container{Node: "od", Namespace: "shop", Pod: "api-1", Container: "api", ControllerKind: "deployment", Controller: "api",
			Labels: map[string]string{"team": "payments", "cost.tenant-id": "acme", "app.kubernetes.io/name": "api"}},
			Usage: []Usage{hourOf(t0, 0.5, 1, 1, 2, 0, 0)}},
		{Container: Container{Node: "od", Namespace: "shop", Pod: "web-1", Container: "web", ControllerKind: "deployment", Controller: "web",
			Labels: map[string]string{"team": "payments"}},
			Usage: []Usage{hourOf(t0, 1.5, 0.5, 3, 1, 0, 0)}},
		{Container: Container{Node: "spot", Namespace: "batch", Pod: "job-1", Container: "main", ControllerKind: "job", Controller: "job",
			Labels: map[string]string{"cost.tenant-id": "acme"}},
			Usage: []Usage{hourOf(t0, 2, 0, 4, 0, 2, 1)}},
		{Container: Container{Node: "spot", Namespace: "batch", Pod: "sleep-1", Container: "sleep",
			Labels: map[string]string{"team": "data"}},
			Usage: []Usage{hourOf(t0, 0, 1, 0, 1, 0, 0)}},
	}
	nodes := []NodeUsage{
		nodeSpan("od", t0, time.Hour, 4, 16, onDemand),
		nodeSpan("spot", t0, time.Hour, 8, 32, spotRate),
	}
	return series, nodes
}

const hourWindow = "2026-03-18T10:00:00Z,2026-03-18T11:00:00Z"

func compute(t *testing.T, params string, series []Series, nodes []NodeUsage) *Result {
	t.Helper()
	v, err := url.ParseQuery(params)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuery(v, t0.Add(48*time.Hour))
	if err != nil {
		t.Fatalf("ParseQuery(%s): %v", params, err)
	}
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Compute(&q, series, nodes)
	if err != nil {
		t.Fatalf("Compute(%s): %v", params, err)
	}
	return res
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

// checkTotals checks the keys of a set and each one's total cost.
func checkTotals(t *testing.T, set Set, want map[string]float64) {
	t.Helper()
	if got, w := slices.Sorted(maps.Keys(set.Allocations)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
		t.Fatalf("keys %q, want %q", got, w)
	}
	for k, w := range want {
		if got := set.Allocations[k].TotalCost(); !near(got, w) {
			t.Errorf("%s: total cost %.9f, want %.9f", k, got, w)
		}
	}
}

func TestModelHandComputed(t *testing.T) {
	series, nodes := fixture()
	for _, tc := range []struct {
		name, params string
		want         map[string]float64
	}{
		{"per container", "window=" + hourWindow, map[string]float64{
			"cluster-one/od/shop/api-1/api":        0.05,
			"cluster-one/od/shop/web-1/web":        0.075,
			"cluster-one/spot/batch/job-1/main":    0.274,
			"cluster-one/spot/batch/sleep-1/sleep": 0.011,
			IdleSuffix:                             0.192,
		}},
		{"namespace", "aggregate=namespace&window=" + hourWindow, map[string]float64{
			"shop": 0.125, "batch": 0.285, IdleSuffix: 0.192,
		}},
		{"namespace without idle", "aggregate=namespace&idle=false&window=" + hourWindow, map[string]float64{
			"shop": 0.125, "batch": 0.285,
		}},
		{"namespace, idle shared per node", "aggregate=namespace&shareIdle=true&window=" + hourWindow, map[string]float64{
			// od's 0.24 all to shop; spot's 0.112 and the egress to batch.
			"shop": 0.24, "batch": 0.362,
		}},
		{"pod, idle shared per node", "aggregate=pod&shareIdle=true&window=" + hourWindow, map[string]float64{
			// api: 0.05 + 0.06*0.04/0.10 + 0.055*0.01/0.025 = 0.05 + 0.024 + 0.022
			"api-1": 0.096,
			// web: 0.075 + 0.036 + 0.033
			"web-1": 0.144,
			// job: 0.274 + 0.05*0.02/0.03 + 0.027*0.004/0.005
			"job-1": 0.274 + 0.05*2/3 + 0.0216,
			// sleep: 0.011 + 0.05/3 + 0.027*0.2
			"sleep-1": 0.011 + 0.05/3 + 0.0054,
		}},
		{"namespace, idle shared per cluster", "aggregate=namespace&shareIdle=true&idleByNode=false&window=" + hourWindow, map[string]float64{
			// CPU idle 0.11 over CPU costs 0.10 (shop) and 0.03 (batch);
			// RAM idle 0.082 over 0.025 and 0.005.
			"shop":  0.125 + 0.11*0.10/0.13 + 0.082*0.025/0.03,
			"batch": 0.285 + 0.11*0.03/0.13 + 0.082*0.005/0.03,
		}},
		{"node, split idle", "aggregate=node&splitIdle=true&window=" + hourWindow, map[string]float64{
			"od": 0.125, "spot": 0.285,
			"cluster-one/od/__idle__": 0.115, "cluster-one/spot/__idle__": 0.077,
		}},
		{"cluster", "aggregate=cluster&window=" + hourWindow, map[string]float64{
			"cluster-one": 0.41, IdleSuffix: 0.192,
		}},
		{"all", "aggregate=all&idle=false&window=" + hourWindow, map[string]float64{"": 0.41}},
		{"tenant", "aggregate=tenant&idle=false&window=" + hourWindow, map[string]float64{
			"acme": 0.05 + 0.274, "shop": 0.075, "batch": 0.011,
		}},
		{"label", "aggregate=label:team&idle=false&window=" + hourWindow, map[string]float64{
			"payments": 0.125, "data": 0.011, UnallocatedSuffix: 0.274,
		}},
		{"label by its Prometheus name", "aggregate=label:app_kubernetes_io_name&idle=false&window=" + hourWindow, map[string]float64{
			"api": 0.05, UnallocatedSuffix: 0.075 + 0.274 + 0.011,
		}},
		{"namespace and label", "aggregate=namespace,label:team&idle=false&window=" + hourWindow, map[string]float64{
			"shop/payments": 0.125, "batch/" + UnallocatedSuffix: 0.274, "batch/data": 0.011,
		}},
		{"controller", "aggregate=controller&idle=false&window=" + hourWindow, map[string]float64{
			"deployment:api": 0.05, "deployment:web": 0.075, "job:job": 0.274, UnallocatedSuffix: 0.011,
		}},
		{"controllerKind", "aggregate=controllerKind&idle=false&window=" + hourWindow, map[string]float64{
			"deployment": 0.125, "job": 0.274, UnallocatedSuffix: 0.011,
		}},
		{"deployment", "aggregate=deployment&idle=false&window=" + hourWindow, map[string]float64{
			"api": 0.05, "web": 0.075, UnallocatedSuffix: 0.285,
		}},
		{"container", "aggregate=container&idle=false&window=" + hourWindow, map[string]float64{
			"api": 0.05, "web": 0.075, "main": 0.274, "sleep": 0.011,
		}},
		{"filter keeps idle that sharing would give", `aggregate=namespace&filter=namespace:"shop"&window=` + hourWindow, map[string]float64{
			// All of od's allocated cost is shop's, none of spot's.
			"shop": 0.125, IdleSuffix: 0.115,
		}},
		{"filter and shared idle", `aggregate=namespace&shareIdle=true&filter=namespace:"batch"&window=` + hourWindow, map[string]float64{
			"batch": 0.362,
		}},
		{"filter by node keeps that node's idle", `aggregate=node&filter=node:"spot"&window=` + hourWindow, map[string]float64{
			"spot": 0.285, IdleSuffix: 0.077,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := compute(t, tc.params, series, nodes)
			if len(res.Sets) != 1 {
				t.Fatalf("%d sets, want 1", len(res.Sets))
			}
			checkTotals(t, res.Sets[0], tc.want)
			if res.Currency != "USD" || len(res.Warnings) != 0 {
				t.Errorf("currency %q, warnings %q", res.Currency, res.Warnings)
			}
		})
	}
}

// TestModelFields checks every field of a few allocations against the
// fixture's hand computation.
func TestModelFields(t *testing.T) {
	series, nodes := fixture()
	res := compute(t, "aggregate=pod&window="+hourWindow, series, nodes)
	all := res.Sets[0].Allocations
	for _, tc := range []struct {
		key  string
		want Allocation
		eff  [3]float64 // cpu, ram, total
	}{
		{"api-1", Allocation{CPUCoreHours: 1, CPUCoreRequestAverage: 1, CPUCoreUsageAverage: 0.5, CPUCost: 0.04,
			RAMByteHours: 2 * GiB, RAMBytesRequestAverage: 2 * GiB, RAMBytesUsageAverage: 1 * GiB, RAMCost: 0.01}, [3]float64{0.5, 0.5, 0.5}},
		// Usage above request: charged for usage, efficiency above 1.
		{"web-1", Allocation{CPUCoreHours: 1.5, CPUCoreRequestAverage: 0.5, CPUCoreUsageAverage: 1.5, CPUCost: 0.06,
			RAMByteHours: 3 * GiB, RAMBytesRequestAverage: 1 * GiB, RAMBytesUsageAverage: 3 * GiB, RAMCost: 0.015}, [3]float64{3, 3, 3}},
		// No request: charged for usage, efficiency 1.
		{"job-1", Allocation{CPUCoreHours: 2, CPUCoreUsageAverage: 2, CPUCost: 0.02, RAMByteHours: 4 * GiB, RAMBytesUsageAverage: 4 * GiB,
			RAMCost: 0.004, NetworkTransferBytes: 3 * GiB, NetworkCost: 0.25, NetworkInternetCost: 0.24}, [3]float64{1, 1, 1}},
		// No usage: charged for the request, efficiency 0.
		{"sleep-1", Allocation{CPUCoreHours: 1, CPUCoreRequestAverage: 1, CPUCost: 0.01, RAMByteHours: 1 * GiB,
			RAMBytesRequestAverage: 1 * GiB, RAMCost: 0.001}, [3]float64{0, 0, 0}},
		// Idle: what the nodes offered and no container was charged for.
		{IdleSuffix, Allocation{CPUCoreHours: 1.5 + 5, CPUCost: 0.06 + 0.05, RAMByteHours: (11 + 27) * GiB, RAMCost: 0.055 + 0.027},
			[3]float64{0, 0, 0}},
	} {
		a := all[tc.key]
		if a == nil {
			t.Fatalf("no %s in %v", tc.key, slices.Collect(maps.Keys(all)))
		}
		got := []float64{a.CPUCoreHours, a.CPUCoreRequestAverage, a.CPUCoreUsageAverage, a.CPUCost, a.RAMByteHours,
			a.RAMBytesRequestAverage, a.RAMBytesUsageAverage, a.RAMCost, a.NetworkTransferBytes, a.NetworkCost, a.NetworkInternetCost,
			a.CPUEfficiency(), a.RAMEfficiency(), a.TotalEfficiency(), a.Minutes()}
		w := tc.want
		want := []float64{w.CPUCoreHours, w.CPUCoreRequestAverage, w.CPUCoreUsageAverage, w.CPUCost, w.RAMByteHours,
			w.RAMBytesRequestAverage, w.RAMBytesUsageAverage, w.RAMCost, w.NetworkTransferBytes, w.NetworkCost, w.NetworkInternetCost,
			tc.eff[0], tc.eff[1], tc.eff[2], 60}
		names := []string{"cpuCoreHours", "cpuCoreRequestAverage", "cpuCoreUsageAverage", "cpuCost", "ramByteHours",
			"ramByteRequestAverage", "ramByteUsageAverage", "ramCost", "networkTransferBytes", "networkCost", "networkInternetCost",
			"cpuEfficiency", "ramEfficiency", "totalEfficiency", "minutes"}
		for i := range got {
			if !near(got[i], want[i]) {
				t.Errorf("%s %s = %v, want %v", tc.key, names[i], got[i], want[i])
			}
		}
	}
	if p := all["api-1"].Properties; p.Namespace != "shop" || p.Node != "od" || p.Controller != "api" || p.Labels["team"] != "payments" || p.Cluster != "cluster-one" {
		t.Errorf("api-1 properties %+v: a single member keeps all of them", p)
	}
	if p := all[IdleSuffix].Properties; p.Cluster != "cluster-one" || p.Node != "" {
		t.Errorf("idle properties %+v: merged idle of two nodes keeps the cluster only", p)
	}
}

func TestModelAggregateProperties(t *testing.T) {
	series, nodes := fixture()
	res := compute(t, "aggregate=namespace&idle=false&window="+hourWindow, series, nodes)
	shop := res.Sets[0].Allocations["shop"].Properties
	want := Properties{Cluster: "cluster-one", Node: "od", ControllerKind: "deployment", Namespace: "shop"}
	if shop.Cluster != want.Cluster || shop.Node != want.Node || shop.ControllerKind != want.ControllerKind ||
		shop.Namespace != want.Namespace || shop.Pod != "" || shop.Controller != "" || shop.Labels != nil {
		t.Errorf("shop properties %+v, want %+v (what both pods share, no labels)", shop, want)
	}
	res = compute(t, "aggregate=namespace&idle=false&includeAggregatedMetadata=true&window="+hourWindow, series, nodes)
	if l := res.Sets[0].Allocations["shop"].Properties.Labels; !maps.Equal(l, map[string]string{"team": "payments"}) {
		t.Errorf("shop labels %v with includeAggregatedMetadata, want the shared team=payments", l)
	}
}

// TestModelWholeNodePrice prices a node from a whole-node price split into
// rates (as package pricing does): with idle shared, the node's containers
// pay exactly the node's price.
func TestModelWholeNodePrice(t *testing.T) {
	// $0.192/h for 4 cores and 16 GiB, split $0.036/core-h and $0.003/GiB-h.
	rates := Rates{Currency: "USD", CPUCoreHour: 0.036, RAMGiBHour: 0.003, Source: "node-price"}
	series := []Series{
		{Container: Container{Node: "n", Namespace: "a", Pod: "p", Container: "c"}, Usage: []Usage{hourOf(t0, 1, 1, 4, 4, 0, 0)}},
		{Container: Container{Node: "n", Namespace: "b", Pod: "q", Container: "c"}, Usage: []Usage{hourOf(t0, 0.5, 1, 2, 4, 0, 0)}},
	}
	nodes := []NodeUsage{nodeSpan("n", t0, time.Hour, 4, 16, rates)}
	res := compute(t, "aggregate=namespace&window="+hourWindow, series, nodes)
	// a: 1 core-h + 4 GiB-h = 0.036 + 0.012; b the same; idle 0.192 - 0.096.
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.048, "b": 0.048, IdleSuffix: 0.096})
	res = compute(t, "aggregate=namespace&shareIdle=true&window="+hourWindow, series, nodes)
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.096, "b": 0.096})
}

// TestModelOverallocated: containers charged for more than the node
// offers leave no idle and are not scaled down.
func TestModelOverallocated(t *testing.T) {
	series := []Series{{Container: Container{Node: "n", Namespace: "a", Pod: "p", Container: "c"},
		Usage: []Usage{hourOf(t0, 3, 2, 1, 1, 0, 0)}}}
	nodes := []NodeUsage{nodeSpan("n", t0, time.Hour, 2, 8, onDemand)}
	res := compute(t, "aggregate=namespace&window="+hourWindow, series, nodes)
	// CPU: 3 core-h = 0.12 (the node's 2 cores cost 0.08): no CPU idle.
	// RAM: 1 GiB-h = 0.005 of 0.04: 0.035 idle, 7 GiB-h.
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.125, IdleSuffix: 0.035})
	idle := res.Sets[0].Allocations[IdleSuffix]
	if idle.CPUCost != 0 || idle.CPUCoreHours != 0 || !near(idle.RAMByteHours, 7*GiB) {
		t.Errorf("idle %+v: want no CPU idle and 7 GiB-h", idle)
	}
}

// TestModelBurstPerMinute: alloc is max(request, usage) per minute, so a
// burst above the request is charged even when the hour's average is below
// it.
func TestModelBurstPerMinute(t *testing.T) {
	var h Usage
	for m := range 60 {
		use := 0.0
		if m < 30 {
			use = 2 // 2 cores for 30 minutes, then idle: an average of 1
		}
		h.Add(Minute(t0.Add(time.Duration(m)*time.Minute), 60, use*60, 1, 0, 0, 0, 0))
	}
	series := []Series{{Container: Container{Node: "n", Namespace: "a", Pod: "p", Container: "c"}, Usage: []Usage{h}}}
	res := compute(t, "aggregate=namespace&idle=false&window="+hourWindow, series, []NodeUsage{nodeSpan("n", t0, time.Hour, 4, 16, onDemand)})
	a := res.Sets[0].Allocations["a"]
	// 30 min at 2 cores + 30 min at the 1-core request = 1.5 core-h.
	if !near(a.CPUCoreHours, 1.5) || !near(a.CPUCost, 0.06) || !near(a.CPUEfficiency(), 1) {
		t.Errorf("core-h %v cost %v efficiency %v, want 1.5, 0.06, 1", a.CPUCoreHours, a.CPUCost, a.CPUEfficiency())
	}
}

// TestModelSteps: a two-hour window in 1h steps gives one set per hour;
// accumulate sums them.
func TestModelSteps(t *testing.T) {
	t1 := t0.Add(time.Hour)
	series := []Series{
		{Container: Container{Node: "od", Namespace: "a", Pod: "p", Container: "c"},
			Usage: []Usage{hourOf(t1, 1, 1, 1, 1, 0, 0), hourOf(t0, 1, 2, 1, 1, 0, 0)}}, // out of order on purpose
		{Container: Container{Node: "od", Namespace: "b", Pod: "q", Container: "c"},
			Usage: []Usage{hourOf(t0, 0, 1, 0, 2, 0, 0)}}, // gone after the first hour
	}
	nodes := []NodeUsage{nodeSpan("od", t0, time.Hour, 4, 16, onDemand), nodeSpan("od", t1, time.Hour, 4, 16, onDemand)}
	w := "2026-03-18T10:00:00Z,2026-03-18T12:00:00Z"
	res := compute(t, "aggregate=namespace&step=1h&window="+w, series, nodes)
	if len(res.Sets) != 2 {
		t.Fatalf("%d sets, want 2", len(res.Sets))
	}
	// Hour 1: a 2 core-h + 1 GiB-h = 0.085, b 1 core-h + 2 GiB-h = 0.05,
	// idle 0.24 - 0.135. Hour 2: a 0.045, idle 0.195.
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.085, "b": 0.05, IdleSuffix: 0.105})
	checkTotals(t, res.Sets[1], map[string]float64{"a": 0.045, IdleSuffix: 0.195})
	if s := res.Sets[1]; !s.Window.Start.Equal(t1) || !s.Window.End.Equal(t1.Add(time.Hour)) || !s.Allocations["a"].Window.Start.Equal(t1) {
		t.Errorf("second set window %v", s.Window)
	}
	res = compute(t, "aggregate=namespace&step=1h&accumulate=true&window="+w, series, nodes)
	if len(res.Sets) != 1 {
		t.Fatalf("%d sets with accumulate, want 1", len(res.Sets))
	}
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.13, "b": 0.05, IdleSuffix: 0.3})
	a := res.Sets[0].Allocations["a"]
	// Request averages over the two hours: (2 + 1) / 2 cores.
	if !near(a.Minutes(), 120) || !near(a.CPUCoreRequestAverage, 1.5) || !a.Window.End.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("accumulated a: minutes %v request %v window %v", a.Minutes(), a.CPUCoreRequestAverage, a.Window)
	}
	if b := res.Sets[0].Allocations["b"]; !near(b.Minutes(), 60) || !near(b.CPUCoreRequestAverage, 1) {
		t.Errorf("b ran one hour: minutes %v, request average %v", b.Minutes(), b.CPUCoreRequestAverage)
	}
	// A step that does not divide the window: the last set is cut at its end.
	res = compute(t, "aggregate=namespace&step=90m&window="+w, series, nodes)
	if len(res.Sets) != 2 || res.Sets[1].Window.Duration() != 30*time.Minute {
		t.Fatalf("sets %v, want 90m and 30m", res.Sets)
	}
	// a: 1.5 h of hour 1 and hour 2's half = 0.085 + 0.0225, then 0.0225.
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.1075, "b": 0.05, IdleSuffix: 0.36 - 0.1575})
	checkTotals(t, res.Sets[1], map[string]float64{"a": 0.0225, IdleSuffix: 0.12 - 0.0225})
}

// TestModelRollupBoundary: a window that starts mid-hour over hour
// rollups and ends over minute rollups. An hour span is prorated by the
// part of it inside the window (its usage taken as even over the hour);
// minute spans inside count whole.
func TestModelRollupBoundary(t *testing.T) {
	t1 := t0.Add(time.Hour)
	rows := []Usage{hourOf(t0, 1, 1, 1, 1, 0, 0)} // compacted: 10:00-11:00
	nodeRows := []NodeUsage{nodeSpan("od", t0, time.Hour, 4, 16, onDemand)}
	for m := range 60 { // still minutes: 11:00-12:00, 2 cores and 2 GiB requested
		start := t1.Add(time.Duration(m) * time.Minute)
		rows = append(rows, Minute(start, 60, 60, 2, GiB, 2*GiB, 0, 0))
		nodeRows = append(nodeRows, nodeSpan("od", start, time.Minute, 4, 16, onDemand))
	}
	series := []Series{{Container: Container{Node: "od", Namespace: "a", Pod: "p", Container: "c"}, Usage: rows}}
	res := compute(t, "aggregate=namespace&window=2026-03-18T10:30:00Z,2026-03-18T11:15:00Z", series, nodeRows)
	// 10:30-11:00: half the hour: 0.5 core-h + 0.5 GiB-h = 0.0225.
	// 11:00-11:15: 15 minutes of 2 cores, 2 GiB: 0.5 core-h + 0.5 GiB-h = 0.0225.
	// The node: 45 minutes of $0.24/h = 0.18.
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.045, IdleSuffix: 0.135})
	a := res.Sets[0].Allocations["a"]
	if !a.Start.Equal(t0.Add(30*time.Minute)) || !a.End.Equal(t1.Add(15*time.Minute)) || !near(a.CPUCoreRequestAverage, 4.0/3) {
		t.Errorf("a: %v..%v request %v, want 10:30..11:15 and 1.333 cores", a.Start, a.End, a.CPUCoreRequestAverage)
	}
	// Steps that split an hour span add up to the whole: no double count.
	res = compute(t, "aggregate=namespace&step=20m&accumulate=true&window=2026-03-18T10:00:00Z,2026-03-18T11:00:00Z", series, nodeRows)
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.045, IdleSuffix: 0.195})
}

// TestModelPartialObservation: a container observed for part of its first
// or last span starts late or stops early in it.
func TestModelPartialObservation(t *testing.T) {
	first := hourOf(t0, 1, 1, 1, 1, 0, 0)
	first.Seconds = 1800 // started at 10:30
	series := []Series{{Container: Container{Node: "od", Namespace: "a", Pod: "p", Container: "c"}, Usage: []Usage{first}}}
	res := compute(t, "aggregate=pod&idle=false&window="+hourWindow, series, []NodeUsage{nodeSpan("od", t0, time.Hour, 4, 16, onDemand)})
	a := res.Sets[0].Allocations["p"]
	if !a.Start.Equal(t0.Add(30*time.Minute)) || !near(a.Minutes(), 30) || !near(a.CPUCoreRequestAverage, 2) {
		t.Errorf("start %v minutes %v request average %v: want 10:30, 30, 2 (1 core-h of request over half an hour)",
			a.Start, a.Minutes(), a.CPUCoreRequestAverage)
	}
}

func TestModelMissingNode(t *testing.T) {
	series := []Series{{Container: Container{Node: "ghost", Namespace: "a", Pod: "p", Container: "c"}, Usage: []Usage{hourOf(t0, 1, 1, 1, 1, 0, 0)}}}
	res := compute(t, "aggregate=namespace&window="+hourWindow, series, nil)
	// Default rates: 0.031611 + 0.004237; no node data, so no idle.
	checkTotals(t, res.Sets[0], map[string]float64{"a": 0.031611 + 0.004237})
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "ghost") {
		t.Errorf("warnings %q, want one naming ghost", res.Warnings)
	}
}

func TestModelEmptyStep(t *testing.T) {
	res := compute(t, "aggregate=namespace&step=1h&window=2026-03-18T10:00:00Z,2026-03-18T12:00:00Z", nil, nil)
	if len(res.Sets) != 2 || res.Sets[0].Allocations == nil || len(res.Sets[1].Allocations) != 0 {
		t.Errorf("sets %+v, want two empty (non-nil) maps", res.Sets)
	}
}

func TestModelBadInput(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuery(url.Values{"window": {hourWindow}}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	good := []Usage{hourOf(t0, 1, 1, 1, 1, 0, 0)}
	bad := hourOf(t0, 1, 1, 1, 1, 0, 0)
	bad.UsageCoreSeconds = math.NaN()
	euro := onDemand
	euro.Currency = "EUR"
	for _, tc := range []struct {
		name   string
		series []Series
		nodes  []NodeUsage
	}{
		{"empty span", []Series{{Usage: []Usage{{Start: t0, End: t0}}}}, nil},
		{"NaN", []Series{{Usage: []Usage{bad}}}, nil},
		{"negative node", nil, []NodeUsage{{Node: "n", Start: t0, End: t0.Add(time.Hour), CPUCores: -1}}},
		{"two currencies", []Series{{Container: Container{Node: "a"}, Usage: good}},
			[]NodeUsage{nodeSpan("a", t0, time.Hour, 1, 1, onDemand), nodeSpan("b", t0, time.Hour, 1, 1, euro)}},
	} {
		if _, err := m.Compute(&q, tc.series, tc.nodes); !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: %v, want ErrBadInput", tc.name, err)
		}
	}
}

func TestModelTooLarge(t *testing.T) {
	m, err := New(Config{MaxAllocations: 3})
	if err != nil {
		t.Fatal(err)
	}
	series, nodes := fixture()
	q, err := ParseQuery(url.Values{"window": {hourWindow}, "aggregate": {"pod"}}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Compute(&q, series, nodes); !errors.Is(err, ErrTooLarge) {
		t.Errorf("%v, want ErrTooLarge", err)
	}
	// A Query built by hand is checked too, before any step is built.
	w := Window{t0, t0.Add(90 * 24 * time.Hour)}
	if _, err := m.Compute(&Query{Window: w, Step: time.Minute}, nil, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("129,600 steps: %v, want ErrTooLarge", err)
	}
	if _, err := m.Compute(&Query{Window: w, Step: time.Nanosecond}, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a 1ns step: %v, want ErrInvalid", err)
	}
	if _, err := m.Compute(&Query{}, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("an empty window: %v, want ErrInvalid", err)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []Config{{Cluster: "a/b"}, {MaxAllocations: -1}, {DefaultRates: &Rates{CPUCoreHour: -1}}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	var c Config
	c.Complete()
	if c.Cluster != DefaultCluster || c.TenantLabel != DefaultTenantLabel || *c.DefaultRates != DefaultRates || c.MaxAllocations != DefaultMaxAllocations {
		t.Errorf("Complete: %+v", c)
	}
}

func TestEfficiency(t *testing.T) {
	for _, tc := range []struct {
		name           string
		use, req, cost float64
		want           float64
	}{
		{"usage below request", 0.5, 1, 1, 0.5},
		{"usage above request", 3, 1, 1, 3},
		{"no request, usage", 2, 0, 1, 1},
		{"no request, no usage", 0, 0, 1, 0},
		{"request, no usage", 0, 1, 1, 0},
		{"usage, no cost", 1, 0, 0, 0},
	} {
		if got := efficiency(tc.use, tc.req, tc.cost); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	a := Allocation{CPUCoreRequestAverage: 1, CPUCoreUsageAverage: 0.5, CPUCost: 3, RAMBytesUsageAverage: 1, RAMCost: 1}
	// (0.5*3 + 1*1) / 4: CPU weighs three times as much.
	if got := a.TotalEfficiency(); !near(got, 0.625) {
		t.Errorf("total efficiency %v, want 0.625", got)
	}
	if got := (&Allocation{}).TotalEfficiency(); got != 0 {
		t.Errorf("total efficiency without cost %v", got)
	}
}

func TestController(t *testing.T) {
	for _, tc := range []struct {
		kind, name string
		labels     map[string]string
		wantKind   string
		wantName   string
	}{
		{"ReplicaSet", "web-5d8f9c7b6", map[string]string{"pod-template-hash": "5d8f9c7b6"}, "deployment", "web"},
		{"ReplicaSet", "bare-rs", nil, "replicaset", "bare-rs"},
		{"StatefulSet", "db", nil, "statefulset", "db"},
		{"Job", "backup-28000", nil, "job", "backup-28000"},
		{"", "", nil, "", ""},
	} {
		if k, n := Controller(tc.kind, tc.name, tc.labels); k != tc.wantKind || n != tc.wantName {
			t.Errorf("Controller(%s, %s) = %s, %s; want %s, %s", tc.kind, tc.name, k, n, tc.wantKind, tc.wantName)
		}
	}
}

// TestModelUnsorted: spans out of order, even one past a span beyond the
// window, are all counted.
func TestModelUnsorted(t *testing.T) {
	t1 := t0.Add(time.Hour)
	nodes := []NodeUsage{nodeSpan("od", t0, time.Hour, 4, 16, onDemand), nodeSpan("od", t1, time.Hour, 4, 16, onDemand)}
	mk := func(rows ...Usage) []Series {
		return []Series{{Container: Container{Node: "od", Namespace: "a", Pod: "p", Container: "c"}, Usage: rows}}
	}
	later, first := hourOf(t1, 1, 1, 1, 1, 0, 0), hourOf(t0, 1, 2, 1, 1, 0, 0)
	for _, params := range []string{"window=" + hourWindow, "step=30m&window=2026-03-18T10:00:00Z,2026-03-18T12:00:00Z"} {
		sorted := compute(t, "aggregate=namespace&accumulate=true&"+params, mk(first, later), nodes)
		in := mk(later, first)
		unsorted := compute(t, "aggregate=namespace&accumulate=true&"+params, in, nodes)
		if got, want := unsorted.Sets[0].Allocations["a"].TotalCost(), sorted.Sets[0].Allocations["a"].TotalCost(); !near(got, want) || got == 0 {
			t.Errorf("%s: unsorted %v, sorted %v", params, got, want)
		}
		if !in[0].Usage[0].Start.Equal(t1) {
			t.Error("Compute sorted its input in place")
		}
	}
}

// TestModelConcurrent: one Model serves concurrent Computes over shared
// inputs, which it only reads (run with -race).
func TestModelConcurrent(t *testing.T) {
	series, nodes := fixture()
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuery(url.Values{"window": {hourWindow}, "aggregate": {"namespace"}, "shareIdle": {"true"}}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			res, err := m.Compute(&q, series, nodes)
			if err == nil && !near(res.Sets[0].Allocations["shop"].TotalCost(), 0.24) {
				err = errors.New("wrong total")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
