package allocationtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/kvraft"
)

// Fleet is a history of many nodes written straight in the store's format
// (history.Record and history.Identity), for benchmarks and for comparing
// read paths on much data: what make bench-cost simulates, without the
// ingest.
type Fleet struct {
	// Nodes, each with Containers cgroups: a dozen systemd units, then
	// pods of three containers (pause, app, sidecar) in six namespaces.
	Nodes, Containers int
	// Hours of hour records, ending at End (a whole hour).
	Hours int
	End   time.Time
	// Seed makes the usage; the same seed writes the same history.
	Seed uint64
	// Ragged makes the history uneven: containers that come and go,
	// hours with gaps and several segments, spot nodes whose prices
	// change, and minute records in the last two hours.
	Ragged bool
}

// FleetStore is a store that Write writes to: a kvraft node.
type FleetStore interface {
	Txn(ctx context.Context, t kvraft.Txn) (kvraft.TxnResult, error)
}

// Write writes the fleet's identities and hour (and with Ragged, minute)
// records into store.
func (f Fleet) Write(tb testing.TB, store FleetStore) {
	tb.Helper()
	ctx := context.Background()
	var ops []kvraft.Op
	size := 0
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := store.Txn(ctx, kvraft.Txn{Then: ops}); err != nil {
			tb.Fatal(err)
		}
		ops, size = nil, 0
	}
	put := func(k, v []byte) {
		ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: k, Value: v})
		if size += len(k) + len(v); size > 4<<20 || len(ops) >= kvraft.MaxTxnOps {
			flush()
		}
	}
	end := f.End.Unix()
	first := end - int64(f.Hours)*3600
	for n := range f.Nodes {
		fn := f.node(n)
		for ref := range fn.refs {
			put(history.IdentityKey(fn.name, uint64(ref+1)), fn.ids[ref].Encode())
		}
		for h := first; h < end; h += 3600 {
			put(history.HourKey(h, fn.name), fn.hour(h).Encode())
			if f.Ragged && h >= end-2*3600 && n%3 == 0 {
				for m := h; m < h+3600; m += 600 {
					put(history.MinuteKey(m, fn.name), (&history.Record{Segments: []history.Segment{fn.span(m, m+600, 1)}}).Encode())
				}
			}
		}
	}
	flush()
}

type fleetNode struct {
	f      *Fleet
	name   string
	ids    []history.Identity
	refs   []struct{ cpu, mem, reqCPU, reqMem, inet, cluster uint64 } // per second
	node   history.Node
	rates  cost.Rates
	spot   bool
	seedNo uint64
}

func (f *Fleet) node(n int) *fleetNode {
	r := rand.New(rand.NewPCG(f.Seed, uint64(n)))
	fn := &fleetNode{f: f, name: fmt.Sprintf("node-%03d", n), spot: n%4 == 3, seedNo: uint64(n)}
	fn.node = history.Node{InstanceType: "m5.xlarge", Region: "us-east-1", Zone: "us-east-1a", CapacityType: "on-demand",
		CPUMillis: 3920, MemoryBytes: 15 << 30}
	fn.rates = cost.Rates{Currency: "USD", CPUCoreHour: 0.08, RAMGiBHour: 0.01, EgressInternetGiB: 0.12, EgressClusterGiB: 0.01,
		Source: "node-price"}
	if fn.spot {
		fn.node.CapacityType = "spot"
		fn.rates = cost.Rates{Currency: "USD", CPUCoreHour: 0.01, RAMGiBHour: 0.001, EgressInternetGiB: 0.12, Spot: true, Source: "file"}
	}
	namespaces := []string{"default", "shop", "payments", "search", "monitoring", "kube-system"}
	var pod history.Identity
	for i := range f.Containers {
		var id history.Identity
		if i < 10 {
			path := fmt.Sprintf("/system.slice/unit-%d.service", i)
			id = history.Identity{Path: path, Container: path}
		} else {
			if (i-10)%3 == 0 {
				ns := namespaces[r.IntN(len(namespaces))]
				app := fmt.Sprintf("svc-%d", r.IntN(40))
				hash := fmt.Sprintf("%010x", r.Uint64()&0xffffffffff)
				pod = history.Identity{Namespace: ns, Pod: fmt.Sprintf("%s-%s-%05x", app, hash, r.IntN(1<<20)),
					ControllerKind: "deployment", Controller: app, Labels: map[string]string{"app": app, "app.kubernetes.io/name": app,
						"app.kubernetes.io/part-of": ns, "pod-template-hash": hash, "version": fmt.Sprintf("v1.%d.%d", r.IntN(20), r.IntN(10)),
						"team": ns + "-team"}}
			}
			id = pod
			id.Container = []string{"", "app", "sidecar"}[(i-10)%3]
			id.Path = fmt.Sprintf("/kubepods.slice/kubepods-pod%s.slice/cri-containerd-%016x%016x.scope", id.Pod, r.Uint64(), r.Uint64())
		}
		id.LastSeen = f.End.Unix()
		fn.ids = append(fn.ids, id)
		rt := struct{ cpu, mem, reqCPU, reqMem, inet, cluster uint64 }{cpu: uint64(r.IntN(800_000)), mem: uint64(50+r.IntN(900)) << 10}
		if i >= 10 && (i-10)%3 != 0 {
			rt.reqCPU, rt.reqMem = uint64(100_000*(1+r.IntN(10))), uint64(64+r.IntN(960))<<10
			if r.IntN(2) == 0 {
				rt.inet, rt.cluster = uint64(r.IntN(20_000)), uint64(r.IntN(200_000))
			}
		}
		fn.refs = append(fn.refs, rt)
	}
	return fn
}

// hour is the node's record of the hour at h: one segment of the whole
// hour, or with Ragged, now and then a gap, two segments of different
// prices or containers that are missing.
func (fn *fleetNode) hour(h int64) *history.Record {
	if !fn.f.Ragged {
		return &history.Record{Segments: []history.Segment{fn.span(h, h+3600, 1)}}
	}
	r := rand.New(rand.NewPCG(fn.f.Seed^uint64(h), fn.seedNo))
	switch k := r.IntN(20); {
	case k == 0: // a gap in the middle
		return &history.Record{Segments: []history.Segment{fn.span(h, h+1200, 1), fn.span(h+2400, h+3600, 1)}}
	case k == 1 && fn.spot: // the price changed
		a, b := fn.span(h, h+1800, 1), fn.span(h+1800, h+3600, 1)
		b.Rates.CPUCoreHour *= 2
		return &history.Record{Segments: []history.Segment{a, b}}
	case k == 2: // observed a part only
		return &history.Record{Segments: []history.Segment{fn.span(h+600, h+3600, 0.7)}}
	}
	return &history.Record{Segments: []history.Segment{fn.span(h, h+3600, 1)}}
}

// span is the node's segment [s, e), observed for part of it.
func (fn *fleetNode) span(s, e int64, part float64) history.Segment {
	r := rand.New(rand.NewPCG(fn.f.Seed^uint64(s), fn.seedNo<<1|1))
	obs := uint64(float64(e-s) * 1000 * part)
	seg := history.Segment{Start: s, End: e, ObservedMs: obs, Node: fn.node, Rates: fn.rates}
	for i, rt := range fn.refs {
		if fn.f.Ragged && r.IntN(30) == 0 {
			continue // not running in this span
		}
		o := obs
		if fn.f.Ragged && r.IntN(10) == 0 {
			o = obs * uint64(1+r.IntN(9)) / 10
		}
		f := 0.7 + 0.6*r.Float64()
		secs := float64(o) / 1000
		en := history.Entry{Ref: uint64(i + 1), ObservedMs: o, CPUUsedUs: uint64(float64(rt.cpu) * secs * f),
			CPURequestUs: uint64(float64(rt.reqCPU) * secs), MemUsedKiBs: uint64(float64(rt.mem) * secs * f),
			MemRequestKiBs: uint64(float64(rt.reqMem) * secs), EgressInternetBytes: uint64(float64(rt.inet) * secs * f),
			EgressClusterBytes: uint64(float64(rt.cluster) * secs * f)}
		en.CPUAllocUs, en.MemAllocKiBs = max(en.CPUUsedUs, en.CPURequestUs), max(en.MemUsedKiBs, en.MemRequestKiBs)
		seg.Entries = append(seg.Entries, en)
	}
	return seg
}
