package query_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/podindex"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/simstore"
	"github.com/pennyhq/penny/kvraft"
)

// simulated is a replica holding nodes simulated nodes of 100 cgroups with
// pod metadata (make bench-read's: three samples 20 s apart, the last one
// now), its pod index, and one namespace of their pods.
func simulated(b *testing.B, nodes int) (podindex.Store, string) {
	b.Helper()
	idx := podindex.New()
	n := kvtest.Start(b, func(c *kvraft.Config) { c.Watcher = idx })
	ctx := context.Background()
	err := simstore.Fill(nodes, 100, time.Now(), func(node string, p *model.Plan) error {
		res, err := n.Txn(ctx, model.Txn(node, p.Expect, p.Ops))
		if err != nil || !res.Succeeded {
			return fmt.Errorf("%v (applied: %v)", err, res.Succeeded)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	s := podindex.Store{Node: n, Index: idx}
	r, err := query.New(query.Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	all, err := r.Pods(ctx, query.Request{Read: linearizable})
	if err != nil || len(all.Pods) == 0 {
		b.Fatalf("pods: %v, %d", err, len(all.Pods))
	}
	return s, all.Pods[0].Namespace
}

// BenchmarkNamespaceRead is a namespace's pods read through the pod index
// (make bench-read's "query: a namespace's pods"), with and without a
// window, at 5,000 containers (about 660 in the namespace).
func BenchmarkNamespaceRead(b *testing.B) {
	s, ns := simulated(b, 50)
	r, err := query.New(query.Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	for _, window := range []time.Duration{0, time.Minute} {
		b.Run(fmt.Sprintf("window=%s", window), func(b *testing.B) {
			req := query.Request{Window: window, Read: linearizable, Pods: pods.Query{Namespace: ns}}
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				if _, err := r.Pods(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			// The process' CPU time, collector included: decoding in parts
			// must not trade it for the time a read takes.
			b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
