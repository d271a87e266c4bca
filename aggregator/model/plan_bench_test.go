package model

import (
	"fmt"
	"testing"
	"time"

	"github.com/pennyhq/penny/internal/histogram"
)

// podNode simulates the frames of a node of containers with pod metadata
// that all change at every frame, one frame a second: the ingest's load
// at 100 containers a node (issue 13), a checkpoint every 15 frames.
type podNode struct {
	u Update
	// lat holds each serving series' latency buckets, one slice per
	// frame in a ring of three: a frame's are new, the state still holds
	// the previous frame's.
	lat [][3][]histogram.SparseBucket
}

func newPodNode(node string, n int) *podNode {
	p := &podNode{u: Update{Node: node, Incarnation: 1, Interval: time.Second, Keyframe: true,
		Meta: map[string]string{"agent_version": "bench"}}, lat: make([][3][]histogram.SparseBucket, n)}
	for i := range n {
		uid := fmt.Sprintf("%08x-1b2c-4d5e-8f90-%012x", i/3, i/3)
		path := fmt.Sprintf("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%064x.scope",
			uid, i)
		meta := map[string]string{"k8s.pod.uid": uid, "k8s.namespace": "shop", "k8s.pod": fmt.Sprintf("web-7d9f8c6b5-%05d", i/3),
			"k8s.container": [...]string{"pause", "app", "sidecar"}[i%3], "k8s.container.id": fmt.Sprintf("containerd://%064x", i)}
		p.u.Changed = append(p.u.Changed, SeriesState{Ref: uint64(i + 1), Path: path, CgroupID: uint64(1000 + i), Meta: meta,
			Processes: int64(1 + i%4), RSSBytes: int64(64+i) << 20, PageCacheBytes: int64(16+i) << 20,
			WorkingSetBytes: int64(48+i) << 20, PressureKnown: true,
			Total: Counters{CPUUsageUsec: uint64(i) << 30, RxBytes: uint64(i) << 32, TxBytes: uint64(i) << 31}})
		for j := range p.lat[i] {
			p.lat[i][j] = make([]histogram.SparseBucket, 0, 16)
		}
	}
	return p
}

// next returns the node's next frame: every series' counters, gauges and
// histograms moved on. The update is p's own, changed by the next call.
func (p *podNode) next() *Update {
	u := &p.u
	u.Seq++
	u.Time = t0.Add(time.Duration(u.Seq) * time.Second)
	u.Keyframe = u.Seq == 1
	for i := range u.Changed {
		c := &u.Changed[i]
		k := u.Seq*uint64(i+1) + 7
		t := &c.Total
		t.CPUUsageUsec += 20_000 + k%50_000
		t.CPUPeriods += 10
		t.CPUThrottledPeriods += k % 2
		t.CPUThrottledUsec += k % 2 * 3_000
		t.CPUPressureSomeUsec += k % 700
		t.MemoryPressureSomeUsec += k % 50
		t.IOPressureSomeUsec += k % 90
		t.PageCacheAddedBytes += k % 8 * 4096
		t.PageCacheAccesses += k % 300
		t.PageCacheMisses += k % 7
		t.RxBytes += 50_000 + k%10_000
		t.TxBytes += 40_000 + k%9_000
		t.RxPackets += 40 + k%10
		t.TxPackets += 35 + k%10
		t.TxClusterBytes += 30_000 + k%9_000
		t.TxInternetBytes += k % 1_000
		t.TxLoopbackBytes += k % 500
		c.RSSBytes += int64(k%3) - 1
		c.WorkingSetBytes += int64(k%5) - 2
		c.SRTT.Observe(200 + k%3_000)
		c.SRTT.Observe(800 + k%900)
		if k%4 == 0 {
			c.Connect.Observe(500 + k%2_000)
		}
		if i%3 == 1 { // the app container answers requests
			t.Requests += 20 + k%5
			h := c.RequestLatencyLogLinear
			h.Buckets = append(p.lat[i][u.Seq%3][:0], h.Buckets...)
			for j := range uint64(20) {
				h.Observe(1_000 + (k*31+j*977)%40_000)
			}
			p.lat[i][u.Seq%3] = h.Buckets
			c.RequestLatencyLogLinear = h
		}
	}
	return u
}

func BenchmarkPlanUpdate(b *testing.B) {
	// 30 of a node's 100 series change at every frame, without metadata.
	b.Run("some", func(b *testing.B) {
		st := &NodeState{Node: "n"}
		changed := make([]SeriesState, 100)
		for i := range changed {
			changed[i] = series("/kubepods/pod"+string(rune('a'+i%26))+"/c"+string(rune('0'+i/26)), int64(i), uint64(i), 40, 80)
		}
		p, err := PlanUpdate(st, &Update{Node: "n", Incarnation: 1, Seq: 1, Time: t0, Keyframe: true, Changed: changed}, t0)
		if err != nil {
			b.Fatal(err)
		}
		st = p.Next
		seq := uint64(1)
		b.ReportAllocs()
		for b.Loop() {
			seq++
			for i := range changed[:30] {
				changed[i].Total.RxBytes += 100
			}
			p, err := PlanUpdate(st, &Update{Node: "n", Incarnation: 1, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second),
				Changed: changed[:30]}, t0)
			if err != nil {
				b.Fatal(err)
			}
			st = p.Next
		}
	})
	// The leader's case: 100 containers with pod metadata, all changing
	// at every frame; planned as the ingest does (in place), and as
	// PlanUpdate does.
	for _, bc := range []struct {
		name string
		plan func(*NodeState, *Update, time.Time) (*Plan, error)
	}{{"pods", PlanUpdate}, {"pods-inplace", PlanUpdateInPlace}} {
		b.Run(bc.name, func(b *testing.B) {
			sim := newPodNode("node-1", 100)
			u := sim.next() // the keyframe
			p, err := bc.plan(&NodeState{Node: "node-1"}, u, u.Time)
			if err != nil {
				b.Fatal(err)
			}
			st, ops := p.Next, 0
			b.ReportAllocs()
			for b.Loop() {
				u := sim.next()
				p, err := bc.plan(st, u, u.Time.Add(50*time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				ops += len(p.Ops)
				st = p.Next
			}
			b.ReportMetric(float64(ops)/float64(b.N), "ops/op")
		})
	}
}
