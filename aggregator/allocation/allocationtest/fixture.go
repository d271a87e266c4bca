// Package allocationtest writes a known history of costs into a replica
// through the real path, for the tests of GET /v1/allocation and of
// penny cost: the frames agents would send, written as the ingest writes
// them, and the minutes the history's roller makes of them, rolled one
// after another as the leader rolls them.
package allocationtest

import (
	"context"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
)

// GiB is 2^30 bytes.
const GiB = 1 << 30

// Pricing is the fixture's pricing file: on-demand 0.04/core-h and
// 0.005/GiB-h, spot 0.01 and 0.001, egress 0.12/GiB to the internet and
// 0.01 in-cluster, and an on-demand m5.xlarge in us-east-1 at 0.48/h, which
// splits over its capacity of 4 cores and 16 GiB (ratio 8, weight 48) into
// 0.08/core-h and 0.01/GiB-h.
const Pricing = `apiVersion: penny.dev/v1
kind: Pricing
defaults: {cpuCoreHour: 0.04, ramGiBHour: 0.005, spotCPUCoreHour: 0.01, spotRAMGiBHour: 0.001,
  egressInternetGiB: 0.12, egressClusterGiB: 0.01}
nodes:
  - {instanceType: m5.xlarge, region: us-east-1, hourlyPrice: 0.48}
`

// Prices parses Pricing.
func Prices(t testing.TB) *pricing.Pricing {
	t.Helper()
	p, err := pricing.Parse([]byte(Pricing), pricing.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Cgroup is one cgroup of a node, using the same all along.
type Cgroup struct {
	Path string
	// Pod is nil for a cgroup outside Kubernetes.
	Pod          *podmeta.Pod
	Container    string
	ReqCPUMillis int64
	ReqMemory    int64
	// CPUCores is the CPU time used per second; RSS the memory held, and
	// PageCache the page cache charged to it.
	CPUCores  float64
	RSS       int64
	PageCache int64
	// Egress bytes per second to the internet and in-cluster.
	EgressInternet, EgressCluster uint64
	// Requests answered per second.
	Requests uint64
}

// Node is a node and its cgroups.
type Node struct {
	Name string
	// Facts are what its agent reports of it; nil: none.
	Facts   *nodemeta.Facts
	Cgroups []Cgroup
}

// Pod is a pod of the fixture.
func Pod(ns, name string, labels map[string]string) *podmeta.Pod {
	return &podmeta.Pod{UID: "uid-" + ns + "-" + name, Namespace: ns, Name: name, Labels: labels,
		OwnerKind: "ReplicaSet", OwnerName: name + "-5d8f6b", QOSClass: "Burstable"}
}

// Nodes is the fixture: every number is round, so that costs can be
// computed by hand (with Pricing):
//
//	od    on-demand m5.xlarge (node price: 0.08/core-h, 0.01/GiB-h), from its Node object:
//	      allocatable 3.5 cores, 14 GiB of 4 and 16: costs 0.28 + 0.14 = 0.42 an hour
//	  shop/api-1   request 1 core, 2 GiB; uses 0.5, 1           charged 1, 2:      0.08 + 0.02 = 0.10
//	               answers 25 requests a second: 90,000 an hour, 0.10 / 90 = 0.001111 per 1,000
//	  shop/web-1   request 0.5, 1; uses 1.5, 3; 1 MiB/s to the internet
//	                                                     charged 1.5, 3:    0.12 + 0.03 (+ egress 0.421875)
//	               answers 125 requests a second: 450,000 an hour, 0.571875 / 450 = 0.001271 per 1,000
//	  batch/job-1  no request; uses 0.75, 2                    charged 0.75, 2:   0.06 + 0.02 = 0.08
//	  kubelet      0.25 core, 512 MiB: priced (0.02 + 0.005), not allocated from the node
//	  idle: CPU 0.28 - 0.26 = 0.02, memory 0.14 - 0.07 = 0.07: 0.09
//	spot  spot, facts from flags (capacity 2 cores, 8 GiB; no allocatable): 0.01, 0.001; 0.028 an hour
//	  batch/sleep-1  request 0.5 core, 1 GiB; uses nothing     charged 0.5, 1:    0.005 + 0.001 = 0.006
//	  containerd     0.2 core, 256 MiB: priced, not allocated (the node runs pods)
//	  idle: 0.015 + 0.007 = 0.022
//	host  outside Kubernetes, capacity 2 cores, 4 GiB: 0.04, 0.005; 0.10 an hour
//	  db.service     0.5 core, 1 GiB, allocated                           0.02 + 0.005 = 0.025
//	  idle: 0.06 + 0.015 = 0.075
func Nodes() []Node {
	return []Node{
		{Name: "od", Facts: &nodemeta.Facts{Name: "od", InstanceType: "m5.xlarge", Region: "us-east-1", Zone: "us-east-1a",
			CapacityType: nodemeta.OnDemand, AllocatableCPUMillis: 3500, AllocatableMemoryBytes: 14 * GiB,
			CapacityCPUMillis: 4000, CapacityMemoryBytes: 16 * GiB, Source: nodemeta.SourceKubernetes},
			Cgroups: []Cgroup{
				{Path: "/kubepods/api-1/app", Pod: Pod("shop", "api-1", map[string]string{"app": "api", "cost.tenant-id": "acme"}),
					Container: "app", ReqCPUMillis: 1000, ReqMemory: 2 * GiB, CPUCores: 0.5, RSS: 1 * GiB, Requests: 25},
				{Path: "/kubepods/web-1/app", Pod: Pod("shop", "web-1", map[string]string{"app": "web"}), Container: "app",
					ReqCPUMillis: 500, ReqMemory: 1 * GiB, CPUCores: 1.5, RSS: 3 * GiB, EgressInternet: 1 << 20, Requests: 125},
				{Path: "/kubepods/job-1/main", Pod: Pod("batch", "job-1", map[string]string{"app": "job"}), Container: "main",
					CPUCores: 0.75, RSS: 2 * GiB},
				{Path: "/system.slice/kubelet.service", CPUCores: 0.25, RSS: 512 << 20},
			}},
		{Name: "spot", Facts: &nodemeta.Facts{Name: "spot", CapacityType: nodemeta.Spot, CapacityCPUMillis: 2000,
			CapacityMemoryBytes: 8 * GiB, Source: nodemeta.SourceFlags},
			Cgroups: []Cgroup{
				{Path: "/kubepods/sleep-1/main", Pod: Pod("batch", "sleep-1", map[string]string{"app": "sleep"}), Container: "main",
					ReqCPUMillis: 500, ReqMemory: 1 * GiB},
				{Path: "/system.slice/containerd.service", CPUCores: 0.2, RSS: 256 << 20},
			}},
		{Name: "host", Facts: &nodemeta.Facts{Name: "host", CapacityCPUMillis: 2000, CapacityMemoryBytes: 4 * GiB,
			Source: nodemeta.SourceHost},
			Cgroups: []Cgroup{{Path: "/system.slice/db.service", CPUCores: 0.5, RSS: 1 * GiB}}},
	}
}

// Clock is the roller's clock: the sample time of the last frame written.
type Clock struct{ now time.Time }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.now }

// Writer writes nodes' frames into a store as the ingest does, and rolls
// them up as the leader's roller does.
type Writer struct {
	t      testing.TB
	store  *kvraft.Node
	nodes  []Node
	states []*model.NodeState
	seq    uint64
	clock  Clock
	roller *history.Roller
}

// NewWriter returns a writer of nodes into store; the roller prices them
// with prices, and mod changes its other settings (the memory measure).
func NewWriter(t testing.TB, store *kvraft.Node, prices history.Pricer, nodes []Node, mod ...func(*history.Config)) *Writer {
	t.Helper()
	w := &Writer{t: t, store: store, nodes: nodes}
	for _, n := range nodes {
		w.states = append(w.states, &model.NodeState{Node: n.Name})
	}
	cfg := history.Config{Store: store, Pricing: prices, Now: w.clock.Now}
	for _, m := range mod {
		m(&cfg)
	}
	r, err := history.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.roller = r
	return w
}

// Run sends every node's frame each step from start (included) to end
// (excluded), and rolls up every minute boundary it passes, as the leader
// does shortly after each. Usage accrues from the first frame on.
func (w *Writer) Run(start, end time.Time, step time.Duration) {
	w.t.Helper()
	for at := start; at.Before(end); at = at.Add(step) {
		w.frame(at, step, at.Sub(start))
		w.clock.now = at
		if next := at.Add(step); next.Truncate(time.Minute) != at.Truncate(time.Minute) || !next.Before(end) {
			if _, err := w.roller.RollAll(context.Background()); err != nil {
				w.t.Fatal(err)
			}
		}
	}
}

// frame writes every node's sample at `at`, elapsed after the first.
func (w *Writer) frame(at time.Time, step, elapsed time.Duration) {
	w.t.Helper()
	w.seq++
	secs := elapsed.Seconds()
	for i, n := range w.nodes {
		u := &model.Update{Node: n.Name, Incarnation: 1, Seq: w.seq, Time: at, Interval: step, Keyframe: w.seq == 1}
		if n.Facts != nil {
			u.Meta = nodemeta.Encode(n.Facts)
		}
		for j, c := range n.Cgroups {
			s := model.SeriesState{Ref: uint64(j + 1), Path: c.Path, CgroupID: uint64(100 + j), Processes: 1, RSSBytes: c.RSS,
				PageCacheBytes: c.PageCache, WorkingSetBytes: c.RSS, Total: model.Counters{CPUUsageUsec: uint64(c.CPUCores * secs * 1e6),
					TxInternetBytes: uint64(float64(c.EgressInternet) * secs), TxClusterBytes: uint64(float64(c.EgressCluster) * secs),
					Requests: uint64(float64(c.Requests) * secs)}}
			s.Total.TxBytes = s.Total.TxInternetBytes + s.Total.TxClusterBytes
			if c.Pod != nil {
				s.Meta = podmeta.Encode(c.Pod, &podmeta.Container{Name: c.Container, RequestCPUMillis: c.ReqCPUMillis,
					RequestMemory: c.ReqMemory})
			}
			u.Changed = append(u.Changed, s)
		}
		p, err := model.PlanUpdate(w.states[i], u, at)
		if err != nil {
			w.t.Fatal(err)
		}
		if res, err := w.store.Txn(context.Background(), model.Txn(n.Name, p.Expect, p.Ops)); err != nil || !res.Succeeded {
			w.t.Fatalf("frame of %s at %s: %+v %v", n.Name, at, res, err)
		}
		w.states[i] = p.Next
	}
}
