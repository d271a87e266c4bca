package cost

import (
	"testing"
	"time"
)

// reservedFixture is one hour on two nodes:
//
//	node od   on-demand, runs pods: 4 cores, 16 GiB at $0.04/core-h, $0.005/GiB-h = $0.24/h
//	node host outside Kubernetes:   2 cores,  4 GiB at the same prices         = $0.10/h
//
//	container                      node  cpu use/req  ram use/req GiB  cost
//	shop/api-1                     od    0.5 / 1      1 / 2            0.04 + 0.01  = 0.05
//	/system.slice/kubelet.service  od    1   / -      4 / -            0.04 + 0.02  = 0.06 (reserved)
//	/system.slice/db.service       host  1   / -      1 / -            0.04 + 0.005 = 0.045
//
// od's idle leaves the kubelet out: CPU 0.16 - 0.04 = 0.12, RAM 0.08 -
// 0.01 = 0.07, 0.19 in all. host runs no pods, so its cgroups are allocated
// from it: CPU 0.08 - 0.04 = 0.04, RAM 0.02 - 0.005 = 0.015, 0.055.
func reservedFixture() ([]Series, []NodeUsage) {
	series := []Series{
		{Container: Container{Node: "od", Namespace: "shop", Pod: "api-1", Container: "api"},
			Usage: []Usage{hourOf(t0, 0.5, 1, 1, 2, 0, 0)}},
		{Container: Container{Node: "od", Container: "/system.slice/kubelet.service"},
			Usage: []Usage{hourOf(t0, 1, 0, 4, 0, 0, 0)}},
		{Container: Container{Node: "host", Container: "/system.slice/db.service"},
			Usage: []Usage{hourOf(t0, 1, 0, 1, 0, 0, 0)}},
	}
	nodes := []NodeUsage{
		nodeSpan("od", t0, time.Hour, 4, 16, onDemand),
		nodeSpan("host", t0, time.Hour, 2, 4, onDemand),
	}
	return series, nodes
}

// TestReservedCgroups: cgroups outside pods on a node that runs pods are
// priced but not allocated from the node (they run in the capacity the
// kubelet reserves), as the cost rate treats them; on a node without pods
// every cgroup is allocated from it.
func TestReservedCgroups(t *testing.T) {
	series, nodes := reservedFixture()
	for _, tc := range []struct {
		name, params string
		want         map[string]float64
	}{
		{"namespace", "aggregate=namespace", map[string]float64{
			"shop": 0.05, UnallocatedSuffix: 0.06 + 0.045, IdleSuffix: 0.19 + 0.055}},
		{"node", "aggregate=node", map[string]float64{
			"od": 0.05 + 0.06, "host": 0.045, IdleSuffix: 0.19 + 0.055}},
		{"split idle per node", "aggregate=node&splitIdle=true", map[string]float64{
			"od": 0.11, "host": 0.045, "cluster-one/od/" + IdleSuffix: 0.19, "cluster-one/host/" + IdleSuffix: 0.055}},
		// od's idle all goes to its one pod: shop pays od's price; host's
		// to db.service, which pays host's.
		{"idle shared per node", "aggregate=namespace&shareIdle=true", map[string]float64{
			"shop": 0.24, UnallocatedSuffix: 0.06 + 0.10}},
		{"pod", "aggregate=pod&idle=false", map[string]float64{"api-1": 0.05, UnallocatedSuffix: 0.105}},
		{"tenant", "aggregate=tenant&idle=false", map[string]float64{"shop": 0.05, UnallocatedSuffix: 0.105}},
		// A filter on the kubelet keeps no idle of od: its share of od's
		// allocated cost is nothing.
		{"filter a reserved cgroup", `aggregate=container&filter=container:"/system.slice/kubelet.service"`, map[string]float64{
			"/system.slice/kubelet.service": 0.06}},
		{"filter the node", `aggregate=pod&filter=node:"od"`, map[string]float64{
			"api-1": 0.05, UnallocatedSuffix: 0.06, IdleSuffix: 0.19}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := compute(t, tc.params+"&window="+hourWindow, series, nodes)
			checkTotals(t, res.Sets[0], tc.want)
		})
	}

	// Without its pod, od is a node outside Kubernetes: the kubelet's
	// cgroup is allocated from it like any other.
	res := compute(t, "aggregate=node&splitIdle=true&window="+hourWindow, series[1:], nodes)
	checkTotals(t, res.Sets[0], map[string]float64{"od": 0.06, "host": 0.045,
		"cluster-one/od/" + IdleSuffix: 0.24 - 0.06, "cluster-one/host/" + IdleSuffix: 0.055})
}
