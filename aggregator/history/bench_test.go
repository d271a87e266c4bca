package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft"
)

// fleetNode is a node of realistic containers for measuring sizes: two
// thirds pods with requests and labels, a third systemd units; CPU, memory
// and egress that move every sample.
type fleetNode struct {
	name    string
	st      *model.NodeState
	seq     uint64
	rng     *rand.Rand
	series  []model.SeriesState
	cpuRate []uint64 // µs per second
	inet    []uint64 // bytes per second
}

func newFleetNode(name string, containers int, seed uint64) *fleetNode {
	n := &fleetNode{name: name, st: &model.NodeState{Node: name}, rng: rand.New(rand.NewPCG(seed, 1))}
	for i := range containers {
		s := model.SeriesState{Path: fmt.Sprintf("/system.slice/unit-%d.service", i), RSSBytes: int64(50+n.rng.IntN(200)) << 20}
		if i%3 != 0 {
			uid := fmt.Sprintf("%08x-1b2c-4d5e-8f90-%012x", seed, i)
			s.Path = fmt.Sprintf("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%064x.scope", uid, i)
			s.Meta = podmeta.Encode(&podmeta.Pod{UID: uid, Namespace: fmt.Sprintf("team-%d", i%7), Name: fmt.Sprintf("api-%d-7d9f8c6b5-x2x4z", i),
				OwnerKind: "ReplicaSet", OwnerName: fmt.Sprintf("api-%d-7d9f8c6b5", i),
				Labels: map[string]string{"app": fmt.Sprintf("api-%d", i), "pod-template-hash": "7d9f8c6b5", "cost.tenant-id": "acme",
					"app.kubernetes.io/part-of": "shop"}},
				&podmeta.Container{Name: "app", ID: fmt.Sprintf("containerd://%064x", i), RequestCPUMillis: int64(100 + 50*n.rng.IntN(10)),
					RequestMemory: int64(128+n.rng.IntN(1024)) << 20})
			s.RSSBytes = int64(100+n.rng.IntN(900)) << 20
		}
		n.series = append(n.series, s)
		n.cpuRate = append(n.cpuRate, uint64(n.rng.IntN(500_000)))
		n.inet = append(n.inet, uint64(n.rng.IntN(20_000))*uint64(i%2))
	}
	return n
}

// frame sends the node's sample at t, interval d after the previous one.
func (n *fleetNode) frame(tb testing.TB, store *kvraft.Node, t time.Time, d time.Duration) {
	n.seq++
	for i := range n.series {
		s := &n.series[i]
		secs := uint64(d / time.Second)
		s.Total.CPUUsageUsec += n.cpuRate[i] * secs * uint64(80+n.rng.IntN(40)) / 100
		s.Total.TxInternetBytes += n.inet[i] * secs
		s.Total.TxClusterBytes += n.inet[i] * secs * 3
		s.RSSBytes += int64(n.rng.IntN(1<<20)) - 1<<19
		s.PageCacheBytes = s.RSSBytes / 4
		s.WorkingSetBytes = s.RSSBytes + s.PageCacheBytes/2
	}
	u := &model.Update{Node: n.name, Incarnation: 1, Seq: n.seq, Time: t, Interval: d, Keyframe: n.seq == 1,
		Changed: n.series, Meta: nodemeta.Encode(&nodemeta.Facts{InstanceType: "m5.xlarge", Region: "us-east-1",
			Zone: "us-east-1a", CapacityType: nodemeta.OnDemand, AllocatableCPUMillis: 3920, AllocatableMemoryBytes: 15 << 30})}
	p, err := model.PlanUpdate(n.st, u, t)
	if err != nil {
		tb.Fatal(err)
	}
	if r, err := store.Txn(context.Background(), model.Txn(n.name, p.Expect, p.Ops)); err != nil || !r.Succeeded {
		tb.Fatal(r, err)
	}
	n.st = p.Next
}

// storeBytes sums the keys and values under prefix.
func storeBytes(tb testing.TB, store *kvraft.Node, prefix string) int {
	total := 0
	for _, kv := range read(tb, store, prefix) {
		total += len(kv.Key) + len(kv.Value)
	}
	return total
}

// BenchmarkStoreBytes measures what a day of history costs the store per
// container: a node of 100 realistic containers sampled every 10 s for a
// day, rolled every minute, then compacted. It reports the minute records'
// bytes (kept 48 hours), the hour records' (kept 90 days), the
// identities', each per container and day, and the time of one node's
// roll of one minute.
func BenchmarkStoreBytes(b *testing.B) {
	const containers, step = 100, 10 * time.Second
	for b.Loop() {
		store := kvtest.Start(b)
		c := &clock{}
		r := newRoller(b, store, c)
		n := newFleetNode("node-a", containers, 1)
		t := t0
		var rolling time.Duration
		for m := 1; m <= 24*60; m++ {
			for ; t.Before(t0.Add(time.Duration(m)*time.Minute + step)); t = t.Add(step) {
				n.frame(b, store, t, step)
			}
			c.set(t)
			begin := time.Now()
			if k, err := r.RollAll(context.Background()); err != nil || k != 1 {
				b.Fatal(k, err)
			}
			rolling += time.Since(begin)
		}
		minutes := storeBytes(b, store, minutePrefix)
		c.set(t0.Add(24*time.Hour + DefaultMinuteRetention + time.Hour))
		if err := r.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
		if left := storeBytes(b, store, minutePrefix); left != 0 {
			b.Fatalf("%d bytes of minutes left after compaction", left)
		}
		hours := storeBytes(b, store, hourPrefix)
		ids := storeBytes(b, store, identityPart)
		cursor := storeBytes(b, store, cursorPrefix)
		b.ReportMetric(float64(minutes)/containers, "minute-B/container/day")
		b.ReportMetric(float64(hours)/containers, "hour-B/container/day")
		b.ReportMetric(float64(ids)/containers, "identity-B/container")
		b.ReportMetric(float64(cursor)/containers, "cursor-B/container")
		b.ReportMetric(float64(rolling.Microseconds())/(24*60), "µs/node-minute-roll")
	}
}

// BenchmarkSpans reads a week of hours of 1,000 containers on 10 nodes:
// every span, merged in one step, and merged in one step with the
// reader's cache of days.
func BenchmarkSpans(b *testing.B) {
	store := kvtest.Start(b)
	ctx := context.Background()
	const nodes, containers = 10, 100
	var ops []kvraft.Op
	flush := func() {
		if _, err := store.Txn(ctx, kvraft.Txn{Then: ops}); err != nil {
			b.Fatal(err)
		}
		ops = nil
	}
	for k := range nodes {
		node := fmt.Sprintf("node-%d", k)
		for ref := uint64(1); ref <= containers; ref++ {
			id := Identity{Path: fmt.Sprintf("/kubepods/pod%d", ref), Namespace: fmt.Sprintf("ns-%d", ref%10), Pod: fmt.Sprintf("pod-%d", ref),
				Container: "app", Labels: map[string]string{"app": "x"}, LastSeen: t0.Add(8 * 24 * time.Hour).Unix()}
			ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: IdentityKey(node, ref), Value: id.Encode()})
		}
		for h := range 7 * 24 {
			seg := Segment{Start: t0.Unix() + int64(h)*3600, End: t0.Unix() + int64(h+1)*3600, ObservedMs: 3_600_000,
				Node: Node{CPUMillis: 4000, MemoryBytes: 16 << 30}, Rates: cost.DefaultRates}
			for ref := uint64(1); ref <= containers; ref++ {
				seg.Entries = append(seg.Entries, Entry{Ref: ref, ObservedMs: 3_600_000, CPUUsedUs: 1_234_567_890, CPURequestUs: 900_000_000,
					CPUAllocUs: 1_300_000_000, MemUsedKiBs: 3_774_873_600, MemRequestKiBs: 1_887_436_800, MemAllocKiBs: 3_774_873_600,
					EgressInternetBytes: 12_345_678})
			}
			ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: HourKey(seg.Start, node), Value: (&Record{Segments: []Segment{seg}}).Encode()})
			if len(ops) > 500 {
				flush()
			}
		}
	}
	flush()
	rd, err := NewReader(ReaderConfig{Store: store, CacheBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	cached, err := NewReader(ReaderConfig{Store: store})
	if err != nil {
		b.Fatal(err)
	}
	week := 7 * 24 * time.Hour
	b.Run("hours", func(b *testing.B) {
		for b.Loop() {
			series, _, err := rd.Spans(ctx, t0, t0.Add(week), kvraft.ReadOptions{Consistency: kvraft.Eventual})
			if err != nil || len(series) != nodes*containers {
				b.Fatal(len(series), err)
			}
		}
		b.ReportMetric(float64(nodes*containers*7*24), "records-entries/op")
	})
	for _, c := range []struct {
		name string
		rd   *Reader
	}{{"one step", rd}, {"one step cached", cached}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				series, _, err := c.rd.SpansByStep(ctx, t0, t0.Add(week), week, kvraft.ReadOptions{Consistency: kvraft.Eventual})
				if err != nil || len(series) != nodes*containers || len(series[0].Usage) != 1 {
					b.Fatal(len(series), err)
				}
			}
			b.ReportMetric(float64(nodes*containers*7*24), "records-entries/op")
		})
	}
}
