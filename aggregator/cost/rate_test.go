package cost

import (
	"math"
	"testing"
)

// microDollar is the precision the rate tests hold to.
const microDollar = 1e-6

func TestHourlyRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		now   Now
		rates Rates
		// want: charged cores and GiB, then CPU, RAM, network and total
		// cost per hour, computed by hand.
		cores, gib              float64
		cpu, ram, network, cost float64
	}{
		{"request above usage: charged the request", Now{CPUUsageCores: 0.5, CPURequestCores: 1,
			RAMUsageBytes: 1 * GiB, RAMRequestBytes: 2 * GiB}, onDemand,
			1, 2, 0.04, 0.01, 0, 0.05},
		{"usage above request: charged the usage", Now{CPUUsageCores: 1.5, CPURequestCores: 0.5,
			RAMUsageBytes: 3 * GiB, RAMRequestBytes: 1 * GiB}, onDemand,
			1.5, 3, 0.06, 0.015, 0, 0.075},
		{"no request: usage alone, egress by class", Now{CPUUsageCores: 2, RAMUsageBytes: 4 * GiB,
			// 2 GiB and 1 GiB in an hour.
			EgressInternetBytesPerSecond: 2 * GiB / 3600.0, EgressClusterBytesPerSecond: 1 * GiB / 3600.0}, spotRate,
			2, 4, 0.02, 0.004, 0.25, 0.274},
		{"idle with a request", Now{CPURequestCores: 1, RAMRequestBytes: 1 * GiB}, spotRate,
			1, 1, 0.01, 0.001, 0, 0.011},
		{"the same usage on-demand and spot", Now{CPUUsageCores: 0.25, RAMUsageBytes: 512 << 20}, onDemand,
			0.25, 0.5, 0.01, 0.0025, 0, 0.0125},
		{"... spot", Now{CPUUsageCores: 0.25, RAMUsageBytes: 512 << 20}, spotRate,
			0.25, 0.5, 0.0025, 0.0005, 0, 0.003},
		{"OpenCost's defaults: a quarter core and 300 MiB", Now{CPUUsageCores: 0.25, RAMUsageBytes: 300 << 20}, DefaultRates,
			// 0.25 × 0.031611 = 0.00790275; 300/1024 × 0.004237 = 0.00124131
			0.25, 300.0 / 1024, 0.00790275, 0.00124131, 0, 0.00914406},
		{"nothing used or requested", Now{}, onDemand, 0, 0, 0, 0, 0, 0},
		{"negative and non-finite quantities count as zero", Now{CPUUsageCores: -1, CPURequestCores: math.NaN(),
			RAMUsageBytes: math.Inf(1), EgressInternetBytesPerSecond: math.Inf(-1)}, onDemand, 0, 0, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := HourlyRate(tc.now, tc.rates)
			for _, c := range []struct {
				what      string
				got, want float64
			}{
				{"cores", h.CPUCores, tc.cores}, {"GiB", h.RAMBytes / GiB, tc.gib},
				{"CPU cost", h.CPUCost, tc.cpu}, {"RAM cost", h.RAMCost, tc.ram},
				{"network cost", h.NetworkCost, tc.network}, {"total cost", h.TotalCost(), tc.cost},
			} {
				if math.Abs(c.got-c.want) > microDollar/2 {
					t.Errorf("%s = %.9f, want %.9f", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestNodeRateAndIdle(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cores, gib     float64
		rates          Rates
		charged        []Now
		cost           float64 // the node's per hour
		idleCPU        float64
		idleRAM        float64
		idleCores, gIB float64
	}{
		// docs/cost.md's example: od holds api-1 and web-1.
		{"od", 4, 16, onDemand, []Now{
			{CPUUsageCores: 0.5, CPURequestCores: 1, RAMUsageBytes: 1 * GiB, RAMRequestBytes: 2 * GiB},
			{CPUUsageCores: 1.5, CPURequestCores: 0.5, RAMUsageBytes: 3 * GiB, RAMRequestBytes: 1 * GiB}},
			0.24, 0.06, 0.055, 1.5, 11},
		// spot holds job-1 (whose egress is no part of idle) and sleep-1.
		{"spot", 8, 32, spotRate, []Now{
			{CPUUsageCores: 2, RAMUsageBytes: 4 * GiB, EgressInternetBytesPerSecond: 1e6},
			{CPURequestCores: 1, RAMRequestBytes: 1 * GiB}},
			0.112, 0.05, 0.027, 5, 27},
		{"empty node: all idle", 2, 8, onDemand, nil, 0.12, 0.08, 0.04, 2, 8},
		// CPU over-committed: no CPU idle, and memory's idle stays whole.
		{"more CPU charged than offered", 1, 4, onDemand, []Now{{CPUUsageCores: 3, RAMUsageBytes: 1 * GiB}},
			0.06, 0, 0.015, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := NodeRate(tc.cores, tc.gib*GiB, tc.rates)
			var charged Hourly
			for _, n := range tc.charged {
				charged = charged.Add(HourlyRate(n, tc.rates))
			}
			idle := node.Idle(charged)
			for _, c := range []struct {
				what      string
				got, want float64
			}{
				{"node cost", node.TotalCost(), tc.cost}, {"idle CPU cost", idle.CPUCost, tc.idleCPU},
				{"idle RAM cost", idle.RAMCost, tc.idleRAM}, {"idle cost", idle.TotalCost(), tc.idleCPU + tc.idleRAM},
				{"idle cores", idle.CPUCores, tc.idleCores}, {"idle GiB", idle.RAMBytes / GiB, tc.gIB},
				{"idle network", idle.NetworkCost, 0},
			} {
				if math.Abs(c.got-c.want) > microDollar/2 {
					t.Errorf("%s = %.9f, want %.9f", c.what, c.got, c.want)
				}
			}
		})
	}
}

// TestHourlyRateAgreesWithTheModel: an hour of minutes that each look like
// a container's Now costs, in the allocation model, what HourlyRate says,
// and a node's idle over the hour is Idle's: the rate now and the history
// agree by construction.
func TestHourlyRateAgreesWithTheModel(t *testing.T) {
	series, nodes := fixture()
	now := map[string]Now{
		"cluster-one/od/shop/api-1/api": {CPUUsageCores: 0.5, CPURequestCores: 1, RAMUsageBytes: 1 * GiB, RAMRequestBytes: 2 * GiB},
		"cluster-one/od/shop/web-1/web": {CPUUsageCores: 1.5, CPURequestCores: 0.5, RAMUsageBytes: 3 * GiB, RAMRequestBytes: 1 * GiB},
		"cluster-one/spot/batch/job-1/main": {CPUUsageCores: 2, RAMUsageBytes: 4 * GiB,
			EgressInternetBytesPerSecond: 2 * GiB / 3600.0, EgressClusterBytesPerSecond: 1 * GiB / 3600.0},
		"cluster-one/spot/batch/sleep-1/sleep": {CPURequestCores: 1, RAMRequestBytes: 1 * GiB},
	}
	node := map[string]string{
		"cluster-one/od/shop/api-1/api": "od", "cluster-one/od/shop/web-1/web": "od",
		"cluster-one/spot/batch/job-1/main": "spot", "cluster-one/spot/batch/sleep-1/sleep": "spot",
	}
	rates := map[string]Rates{"od": onDemand, "spot": spotRate}
	res := compute(t, "splitIdle=true&window="+hourWindow, series, nodes)
	charged := map[string]Hourly{}
	for key, n := range now {
		a := res.Sets[0].Allocations[key]
		if a == nil {
			t.Fatalf("no allocation %s", key)
		}
		h := HourlyRate(n, rates[node[key]])
		charged[node[key]] = charged[node[key]].Add(h)
		for _, c := range []struct {
			what          string
			rate, history float64
		}{
			{"CPU cost", h.CPUCost, a.CPUCost}, {"RAM cost", h.RAMCost, a.RAMCost},
			{"network cost", h.NetworkCost, a.NetworkCost}, {"total cost", h.TotalCost(), a.TotalCost()},
			{"cores", h.CPUCores, a.CPUCoreHours}, {"bytes", h.RAMBytes, a.RAMByteHours},
		} {
			if !near(c.rate, c.history) {
				t.Errorf("%s: %s per hour %.9f, over an hour of the same %.9f", key, c.what, c.rate, c.history)
			}
		}
	}
	for _, n := range nodes {
		idle := NodeRate(n.CPUCores, n.RAMBytes, n.Rates).Idle(charged[n.Node])
		a := res.Sets[0].Allocations["cluster-one/"+n.Node+"/__idle__"]
		if a == nil {
			t.Fatalf("no idle of %s among %d allocations", n.Node, len(res.Sets[0].Allocations))
		}
		if !near(idle.TotalCost(), a.TotalCost()) || !near(idle.CPUCores, a.CPUCoreHours) || !near(idle.RAMBytes, a.RAMByteHours) {
			t.Errorf("%s: idle per hour %+v, over an hour %v (%v core-h, %v byte-h)", n.Node, idle, a.TotalCost(),
				a.CPUCoreHours, a.RAMByteHours)
		}
	}
}

func BenchmarkHourlyRate(b *testing.B) {
	n := Now{CPUUsageCores: 0.3, CPURequestCores: 0.5, RAMUsageBytes: 300 << 20, RAMRequestBytes: 256 << 20,
		EgressInternetBytesPerSecond: 1000, EgressClusterBytesPerSecond: 5000}
	var sum float64
	for b.Loop() {
		sum += HourlyRate(n, onDemand).TotalCost()
	}
	if sum < 0 {
		b.Fatal(sum)
	}
}
