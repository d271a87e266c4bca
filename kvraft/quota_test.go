package kvraft_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/kvraft"
)

// waitStatus waits until cond holds for every running member.
func (c *testCluster) waitStatus(what string, cond func(kvraft.Status) bool) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, n := range c.running() {
			ok = ok && cond(n.Status())
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range c.running() {
				c.t.Logf("member %d: %+v", n.ID(), n.Status())
			}
			c.t.Fatalf("not every member reached: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestQuotaRefusesWritesNotDeletes fills a 3-member cluster to its quota:
// writes that grow the store fail with ErrNoSpace on every member, whether
// refused before proposing or when applied, and change nothing; reads and
// deletes work; every member's store stays within the quota; deleting
// clears the alarm and writes work again.
func TestQuotaRefusesWritesNotDeletes(t *testing.T) {
	const quota = 64 << 10
	regs := map[uint64]*prometheus.Registry{}
	c := newCluster(t, 3, func(cfg *kvraft.Config) {
		cfg.QuotaBytes = quota
		regs[cfg.ID] = prometheus.NewRegistry()
		cfg.Registerer = regs[cfg.ID]
	})
	lead := c.waitLeader()
	c.waitStatus("quota replicated", func(st kvraft.Status) bool { return st.QuotaBytes == quota })
	follower := c.node(lead%3 + 1)

	value := strings.Repeat("v", 1000)
	ctx := context.Background()
	stored := 0
	var err error
	for i := 0; i < 200; i++ {
		if _, err = follower.Put(ctx, fmt.Appendf(nil, "k%03d", i), []byte(value)); err != nil {
			break
		}
		stored++
	}
	if !errors.Is(err, kvraft.ErrNoSpace) || !strings.Contains(err.Error(), "store quota of 65536 bytes reached: delete keys or raise --quota-bytes") {
		t.Fatalf("put past the quota: %v, want ErrNoSpace with its hint", err)
	}
	if stored < 50 || stored > 66 {
		t.Fatalf("%d puts of 1 KiB fit in a 64 KiB quota", stored)
	}
	// The check every member makes when it applies the entry refuses it
	// too, and the whole entry: not even its small put is applied.
	ops := []kvraft.Op{{Type: kvraft.OpPut, Key: []byte("small"), Value: []byte("x")},
		{Type: kvraft.OpPut, Key: []byte("big"), Value: []byte(value)}}
	if _, err := c.node(lead).BatchUnchecked(ctx, ops); !errors.Is(err, kvraft.ErrNoSpace) {
		t.Fatalf("batch past the quota, applied: %v, want ErrNoSpace", err)
	}
	if _, _, err := c.node(lead).Txns(ctx, []kvraft.Txn{{Then: ops}}); !errors.Is(err, kvraft.ErrNoSpace) {
		t.Fatalf("txn past the quota: %v, want ErrNoSpace", err)
	}
	idx := put(t, c.node(lead), "k000", "short") // shrinks: allowed
	c.waitApplied(idx)
	var bytes int64 = -1
	for _, n := range c.running() {
		st := n.Status()
		if st.StoreBytes > quota {
			t.Fatalf("member %d holds %d bytes, over the quota %d", n.ID(), st.StoreBytes, quota)
		}
		if bytes >= 0 && st.StoreBytes != bytes {
			t.Fatalf("members disagree on the store's bytes: %d and %d", bytes, st.StoreBytes)
		}
		bytes = st.StoreBytes
		if !st.NoSpaceAlarm {
			t.Fatalf("member %d: no alarm after refusing an entry", n.ID())
		}
		if r := get(t, n, "small", linearizable); r.Found {
			t.Fatalf("member %d applied part of a refused entry", n.ID())
		}
		if r := get(t, n, "k001", linearizable); string(r.Value) != value {
			t.Fatalf("member %d: read k001 = %d bytes", n.ID(), len(r.Value))
		}
		if v := testutil.ToFloat64(gauge(t, regs[n.ID()], "penny_store_nospace_alarm")); v != 1 {
			t.Fatalf("member %d: penny_store_nospace_alarm = %v", n.ID(), v)
		}
	}

	// Deleting makes room and clears the alarm everywhere.
	for i := 0; i < stored/2; i++ {
		if idx, err = follower.Delete(ctx, fmt.Appendf(nil, "k%03d", i)); err != nil {
			t.Fatalf("delete at the quota: %v", err)
		}
	}
	c.waitApplied(idx)
	c.waitStatus("alarm cleared", func(st kvraft.Status) bool { return !st.NoSpaceAlarm })
	idx = put(t, follower, "after", value)
	c.waitApplied(idx)
	for _, n := range c.running() {
		if v := testutil.ToFloat64(gauge(t, regs[n.ID()], "penny_store_quota_bytes")); v != quota {
			t.Fatalf("member %d: penny_store_quota_bytes = %v", n.ID(), v)
		}
		if v := testutil.ToFloat64(gauge(t, regs[n.ID()], "penny_store_bytes")); v != float64(n.Status().StoreBytes) {
			t.Fatalf("member %d: penny_store_bytes = %v, status says %d", n.ID(), v, n.Status().StoreBytes)
		}
	}
}

// gauge returns a copy of the single-series metric name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "copy"}, func() float64 { return v })
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

// TestEntryBound checks that no proposal is larger than the entry bound,
// however it is built: a batch or txns of 5 MiB fail with ErrTooLarge
// before anything is proposed.
func TestEntryBound(t *testing.T) {
	c := newCluster(t, 1, func(cfg *kvraft.Config) { cfg.QuotaBytes = -1 })
	n := c.node(c.waitLeader())
	big := make([]byte, 1<<20)
	var ops []kvraft.Op
	for i := range 5 {
		ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: fmt.Appendf(nil, "big%d", i), Value: big})
	}
	ctx := context.Background()
	if _, err := n.Batch(ctx, ops); !errors.Is(err, kvraft.ErrTooLarge) {
		t.Fatalf("5 MiB batch: %v, want ErrTooLarge", err)
	}
	txns := []kvraft.Txn{{Then: ops[:2]}, {Then: ops[2:4]}, {Then: ops[4:]}}
	if _, _, err := n.Txns(ctx, txns); !errors.Is(err, kvraft.ErrTooLarge) {
		t.Fatalf("5 MiB of txns: %v, want ErrTooLarge", err)
	}
	if r := get(t, n, "big0", linearizable); r.Found {
		t.Fatal("a refused batch was applied")
	}
	if _, err := n.Batch(ctx, ops[:3]); err != nil {
		t.Fatalf("3 MiB batch: %v", err)
	}
}
