package querytest

import (
	"context"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
)

// Txner applies a transaction: a *kvraft.Node, or the *kvhttp.Client of a
// running replica.
type Txner interface {
	Txn(ctx context.Context, txn kvraft.Txn) (kvraft.TxnResult, error)
}

// Series is one cgroup of the fixture.
type Series struct {
	Path string
	// Pod is nil for a cgroup outside Kubernetes.
	Pod       *podmeta.Pod
	Container string
	RSS       int64
	PageCache int64
	// What happened between a node's two samples: bytes, page cache
	// accesses and misses (pages), and round-trip and connect times
	// (microseconds).
	Rx, Tx, Accesses, Misses uint64
	SRTT, Connect            []uint64
	// Requests are the latencies (microseconds) of the requests the
	// cgroup answered, one each.
	Requests []uint64
}

// Node is one node's cgroups, sampled twice, at First and Last after the
// base time Write is given.
type Node struct {
	Name        string
	First, Last time.Duration
	// Facts are what the node's agent says of it (nil: nothing).
	Facts  *nodemeta.Facts
	Series []Series
}

// Sizes the fixture uses.
const (
	MiB = 1 << 20
	GiB = 1 << 30
)

var (
	web1 = &podmeta.Pod{UID: "uid-web-1", Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web", "tier": "front"}}
	db0  = &podmeta.Pod{UID: "uid-db-0", Namespace: "shop", Name: "db-0", Labels: map[string]string{"app": "db"}}
	web2 = &podmeta.Pod{UID: "uid-web-2", Namespace: "shop", Name: "web-2", Labels: map[string]string{"app": "web"}}
	job1 = &podmeta.Pod{UID: "uid-job-1", Namespace: "batch", Name: "job-1", Labels: map[string]string{"app": "job"}}
)

// Nodes is the fixture: two nodes, four pods in two namespaces and a
// cgroup outside Kubernetes. Over the window, with base the time Write
// was given:
//
//	node-a, sampled at base and base+20s: an m5.xlarge spot node in
//	us-east-1a, 3920m and 15Gi allocatable (NodeAFacts)
//	  shop/web-1 (app=web, tier=front)
//	    app      RSS 100Mi, cache 50Mi, rx 1000 B/s, tx 2000 B/s, hit ratio 0.9, srtt 150µs, connect 400µs,
//	             20 requests/s of 20ms
//	    sidecar  RSS 10Mi, hit ratio 0.5, no TCP
//	  shop/db-0 (app=db)
//	    db       RSS 1Gi, cache 512Mi, rx 5000 B/s, tx 500 B/s, hit ratio 0.99, srtt 2ms, connect 3ms
//	  /system.slice/sshd.service outside Kubernetes, RSS 5Mi
//	node-b, sampled at base+500ms and base+19s (a window of 18.5s), its
//	facts unknown (an agent that sends none):
//	  shop/web-2 (app=web)
//	    app      RSS 200Mi, rx 2000 B/s, tx 1000 B/s, hit ratio 0.9, srtt 300µs, connect 700µs,
//	             10 requests/s of 100ms
//	  batch/job-1 (app=job)
//	    main     RSS 1Mi, cache 4Mi, no TCP, no page cache access
var Nodes = []Node{
	{Name: "node-a", First: 0, Last: 20 * time.Second, Facts: &NodeAFacts, Series: []Series{
		{Path: "/kubepods/web-1/app", Pod: web1, Container: "app", RSS: 100 * MiB, PageCache: 50 * MiB,
			Rx: 20000, Tx: 40000, Accesses: 1000, Misses: 100, SRTT: repeat(150, 10), Connect: repeat(400, 5),
			Requests: repeat(20_000, 400)},
		{Path: "/kubepods/web-1/sidecar", Pod: web1, Container: "sidecar", RSS: 10 * MiB, Accesses: 100, Misses: 50},
		{Path: "/kubepods/db-0/db", Pod: db0, Container: "db", RSS: GiB, PageCache: 512 * MiB,
			Rx: 100000, Tx: 10000, Accesses: 1000, Misses: 10, SRTT: repeat(2000, 10), Connect: repeat(3000, 2)},
		{Path: "/system.slice/sshd.service", RSS: 5 * MiB, Rx: 1000, SRTT: repeat(50, 3)},
	}},
	{Name: "node-b", First: 500 * time.Millisecond, Last: 19 * time.Second, Series: []Series{
		{Path: "/kubepods/web-2/app", Pod: web2, Container: "app", RSS: 200 * MiB,
			Rx: 37000, Tx: 18500, Accesses: 200, Misses: 20, SRTT: repeat(300, 10), Connect: repeat(700, 2),
			Requests: repeat(100_000, 185)},
		{Path: "/kubepods/job-1/main", Pod: job1, Container: "main", RSS: MiB, PageCache: 4 * MiB},
	}},
}

// NodeAFacts are node-a's facts, as its agent reports them.
var NodeAFacts = nodemeta.Facts{Name: "node-a", InstanceType: "m5.xlarge", Region: "us-east-1", Zone: "us-east-1a",
	CapacityType: nodemeta.Spot, AllocatableCPUMillis: 3920, AllocatableMemoryBytes: 15 * GiB,
	CapacityCPUMillis: 4000, CapacityMemoryBytes: 16 * GiB, Source: nodemeta.SourceKubernetes}

func repeat(v uint64, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// Write stores Nodes through w as the ingest would have from the agents'
// two samples, base being when the first was taken. Take base from the
// clock: a replica's janitor deletes nodes silent for too long.
func Write(t testing.TB, w Txner, base time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, n := range Nodes {
		st := &model.NodeState{Node: n.Name}
		for i, at := range []time.Duration{n.First, n.Last} {
			u := &model.Update{Node: n.Name, Incarnation: 1, Seq: uint64(i + 1), Time: base.Add(at),
				Interval: n.Last - n.First, Keyframe: i == 0}
			if n.Facts != nil {
				u.Meta = nodemeta.Encode(n.Facts)
			}
			for j, s := range n.Series {
				ss := model.SeriesState{Ref: uint64(j + 1), Path: s.Path, CgroupID: uint64(100 + j),
					Processes: 1, RSSBytes: s.RSS, PageCacheBytes: s.PageCache,
					// Cumulative counters that started before the window.
					Total: model.Counters{RxBytes: 1 << 20, TxBytes: 1 << 20, PageCacheAccesses: 1 << 10, PageCacheMisses: 1 << 5}}
				if s.Pod != nil {
					ss.Meta = podmeta.Encode(s.Pod, &podmeta.Container{Name: s.Container, ID: "cri-" + s.Path})
				}
				if i == 1 {
					ss.Total.RxBytes += s.Rx
					ss.Total.TxBytes += s.Tx
					ss.Total.PageCacheAccesses += s.Accesses
					ss.Total.PageCacheMisses += s.Misses
					ss.SRTT, ss.Connect = hist(s.SRTT), hist(s.Connect)
					ss.Total.Requests = uint64(len(s.Requests))
					for _, us := range s.Requests {
						ss.RequestLatencyLogLinear.Observe(us)
					}
				}
				u.Changed = append(u.Changed, ss)
			}
			p, err := model.PlanUpdate(st, u, u.Time)
			if err != nil {
				t.Fatalf("plan update of %s: %v", n.Name, err)
			}
			res, err := w.Txn(ctx, model.Txn(u.Node, p.Expect, p.Ops))
			if err != nil || !res.Succeeded {
				t.Fatalf("write update of %s: %+v %v", n.Name, res, err)
			}
			st = p.Next
		}
	}
}

func hist(samples []uint64) histogram.Hist {
	var h histogram.Hist
	for _, s := range samples {
		h.Observe(s)
	}
	return h
}
