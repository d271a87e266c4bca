package kvraft_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/kvraft"
)

func writeKeys(t *testing.T, n *kvraft.Node, prefix string, count int) uint64 {
	t.Helper()
	var idx uint64
	for i := 0; i < count; i += 10 {
		var ops []kvraft.Op
		for j := i; j < min(i+10, count); j++ {
			ops = append(ops, kvraft.Op{Type: kvraft.OpPut, Key: fmt.Appendf(nil, "%s/%05d", prefix, j), Value: fmt.Appendf(nil, "v%d", j)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := n.Batch(ctx, ops)
		cancel()
		if err != nil {
			t.Fatalf("batch on %d: %v", n.ID(), err)
		}
		// Single-op proposals too, so the log grows past snapshots.
		idx = put(t, n, prefix+"/last", fmt.Sprint(i))
	}
	return idx
}

func checkKeys(t *testing.T, n *kvraft.Node, prefix string, count int, opts kvraft.ReadOptions) {
	t.Helper()
	r, err := n.Range(context.Background(), kvraft.RangeRequest{Prefix: []byte(prefix + "/0")}, opts)
	if err != nil {
		t.Fatalf("range on %d: %v", n.ID(), err)
	}
	if len(r.Items) != count {
		t.Fatalf("member %d has %d keys under %s, want %d", n.ID(), len(r.Items), prefix, count)
	}
	for i, kv := range r.Items {
		if want := fmt.Sprintf("v%d", i); string(kv.Value) != want {
			t.Fatalf("member %d: %s = %q, want %q", n.ID(), kv.Key, kv.Value, want)
		}
	}
}

// TestGracefulStopTransfersLeadership checks that a stopping leader hands
// over leadership: the others have a new leader well before an election
// timeout (500ms to 1s here) could have elected one.
func TestGracefulStopTransfersLeadership(t *testing.T) {
	c := newCluster(t, 3, func(cfg *kvraft.Config) { cfg.TickInterval = 50 * time.Millisecond })
	lead := c.waitLeader()
	put(t, c.node(lead), "k", "v")
	c.stop(lead)
	deadline := time.Now().Add(250 * time.Millisecond)
	for _, n := range c.running() {
		for l := n.Status().Leader; l == 0 || l == lead; l = n.Status().Leader {
			if time.Now().After(deadline) {
				t.Fatalf("member %d sees leader %d 250ms after the old leader %d stopped", n.ID(), l, lead)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestRestartAllFromDataDirs(t *testing.T) {
	c := newCluster(t, 3, func(cfg *kvraft.Config) { cfg.SnapshotCount = 100; cfg.SnapshotCatchUpEntries = 20 })
	lead := c.waitLeader()
	idx := writeKeys(t, c.node(lead), "a", 500)
	c.waitApplied(idx)
	for _, m := range c.members {
		c.stop(m.ID)
	}
	for _, m := range c.members {
		c.start(m.ID)
	}
	lead = c.waitLeader()
	for _, n := range c.running() {
		checkKeys(t, n, "a", 500, linearizable)
	}
	idx2 := put(t, c.node(lead), "after", "restart")
	if idx2 <= idx {
		t.Fatalf("index after restart %d <= %d", idx2, idx)
	}
}

// TestLaggingFollowerCatchesUpBySnapshot stops a follower, writes far past
// the leader's compacted log, and restarts it: it can only catch up through
// a snapshot transfer.
func TestLaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	regs := map[uint64]*prometheus.Registry{}
	c := newCluster(t, 3, func(cfg *kvraft.Config) {
		cfg.SnapshotCount = 50
		cfg.SnapshotCatchUpEntries = 10
		reg := prometheus.NewRegistry()
		regs[cfg.ID] = reg
		cfg.Registerer = reg
	})
	lead := c.waitLeader()
	var lag uint64 = 1
	if lag == lead {
		lag = 2
	}
	c.crash(lag)
	idx := writeKeys(t, c.node(lead), "b", 1000)
	c.waitApplied(idx)
	for deadline := time.Now().Add(10 * time.Second); c.node(lead).LogFirstIndex() <= 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("leader log not compacted")
		}
	}
	c.start(lag)
	c.waitApplied(idx)
	n := c.node(lag)
	checkKeys(t, n, "b", 1000, kvraft.ReadOptions{Consistency: kvraft.Eventual})
	snaps := testutil.ToFloat64(collectorOf(t, regs[lag], "penny_kvraft_snapshots_total"))
	if snaps < 1 {
		t.Fatalf("restarted member took/installed %v snapshots, want >= 1", snaps)
	}
	// The snapshot's size and the term are exported: at least the 1000
	// keys' bytes, and the leader's term on every member.
	if b := gaugeOf(t, regs[lag], "penny_kvraft_snapshot_bytes"); b < 1000 {
		t.Errorf("penny_kvraft_snapshot_bytes = %v after installing a snapshot of 1000 keys", b)
	}
	if lt, ft := gaugeOf(t, regs[lead], "penny_kvraft_term"), gaugeOf(t, regs[lag], "penny_kvraft_term"); lt < 1 || ft != lt {
		t.Errorf("penny_kvraft_term: leader %v, restarted member %v; want the same, at least 1", lt, ft)
	}
	// And it keeps serving as a full member.
	idx = put(t, n, "via", "lagger")
	c.waitApplied(idx)
}

// gaugeOf returns the value of the one series of a gauge in reg.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func collectorOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "copy"},
				func() float64 { return mf.GetMetric()[0].GetCounter().GetValue() })
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

// TestMemoryBoundedUnderEndlessWrites checks that the in-memory log is
// compacted as writes continue.
func TestMemoryBoundedUnderEndlessWrites(t *testing.T) {
	const snapCount, keep = 50, 10
	c := newCluster(t, 3, func(cfg *kvraft.Config) { cfg.SnapshotCount = snapCount; cfg.SnapshotCatchUpEntries = keep })
	lead := c.node(c.waitLeader())
	var idx uint64
	for i := range 600 {
		idx = put(t, lead, fmt.Sprintf("k%d", i%7), "v")
	}
	c.waitApplied(idx)
	time.Sleep(50 * time.Millisecond) // snapshots are written in the background
	for _, n := range c.running() {
		st := n.Status()
		first := n.LogFirstIndex()
		if held := st.AppliedIndex - first; held > 2*snapCount+keep {
			t.Fatalf("member %d holds %d log entries in memory (first %d, applied %d), want <= %d",
				n.ID(), held, first, st.AppliedIndex, 2*snapCount+keep)
		}
	}
}

func TestMembershipChanges(t *testing.T) {
	c := newCluster(t, 3, func(cfg *kvraft.Config) { cfg.SnapshotCount = 20; cfg.SnapshotCatchUpEntries = 5 })
	lead := c.waitLeader()
	idx := writeKeys(t, c.node(lead), "m", 300)
	c.waitApplied(idx)

	// Add member 4 through a follower and start it with Join.
	var follower uint64 = 1
	if follower == lead {
		follower = 2
	}
	m4 := kvraft.Member{ID: 4, PeerURL: "http://node4:1"}
	if _, err := c.node(follower).AddMember(context.Background(), m4); err != nil {
		t.Fatalf("add member: %v", err)
	}
	c.members = append(c.members, m4)
	cfg := c.config(4)
	cfg.Join = true
	n4 := c.startWith(cfg)
	idx = put(t, c.node(lead), "after", "add")
	c.waitApplied(idx)
	checkKeys(t, n4, "m", 300, linearizable)
	if st := n4.Status(); len(st.Members) != 4 {
		t.Fatalf("new member sees %d members: %+v", len(st.Members), st.Members)
	}
	// Its API URL is published into the membership.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms := c.node(lead).Status().Members
		if len(ms) == 4 && ms[3].APIURL == cfg.APIURL {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("api url of member 4 not published: %+v", ms)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Remove the leader; it steps down and stops with ErrRemoved.
	old := c.node(lead)
	if _, err := c.node(4).RemoveMember(context.Background(), lead); err != nil {
		t.Fatalf("remove member %d: %v", lead, err)
	}
	select {
	case <-old.Done():
		if !errors.Is(old.Err(), kvraft.ErrRemoved) {
			t.Fatalf("removed member stopped with %v, want ErrRemoved", old.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("removed member did not stop")
	}
	c.stop(lead)
	var rest []kvraft.Member
	for _, m := range c.members {
		if m.ID != lead {
			rest = append(rest, m)
		}
	}
	c.members = rest
	newLead := c.waitLeader()
	idx = put(t, c.node(newLead), "after", "remove")
	c.waitApplied(idx)
	for _, n := range c.running() {
		if st := n.Status(); len(st.Members) != 3 {
			t.Fatalf("member %d sees %d members after removal", n.ID(), len(st.Members))
		}
	}
	// A removed ID can never come back.
	if _, err := c.node(newLead).AddMember(context.Background(), kvraft.Member{ID: lead, PeerURL: "http://x:1"}); !errors.Is(err, kvraft.ErrIDRemoved) {
		t.Fatalf("re-adding removed id: %v, want ErrIDRemoved", err)
	}
}

// TestLogBoundedByBytes: with entries far larger than the counts assume,
// values overwritten as the ingest overwrites series, snapshots come by
// bytes and the in-memory log keeps about SnapshotBytes +
// SnapshotCatchUpBytes of them, not SnapshotCount.
func TestLogBoundedByBytes(t *testing.T) {
	const (
		value     = 8 << 10
		snapBytes = 256 << 10
		keepBytes = 64 << 10
	)
	c := newCluster(t, 1, func(cfg *kvraft.Config) {
		cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 1_000_000, 100_000
		cfg.SnapshotBytes, cfg.SnapshotCatchUpBytes = snapBytes, keepBytes
	})
	n := c.node(c.waitLeader())
	v := bytes.Repeat([]byte("x"), value)
	var idx uint64
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := n.Batch(ctx, []kvraft.Op{{Type: kvraft.OpPut, Key: fmt.Appendf(nil, "k%03d", i%10), Value: v}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		idx = res
	}
	c.waitApplied(idx)
	// A snapshot is taken in the background after the applies that make it
	// due; the stagger adds up to 3/8 of SnapshotBytes.
	limit := uint64((snapBytes*11/8+keepBytes)/value + 4)
	deadline := time.Now().Add(10 * time.Second)
	for held := idx - n.LogFirstIndex(); held > limit; held = idx - n.LogFirstIndex() {
		if time.Now().After(deadline) {
			t.Fatalf("%d entries of %d bytes held in memory after %d, want at most %d", held, value, idx, limit)
		}
		put(t, n, "tick", "x") // applies trigger the snapshot check
		time.Sleep(20 * time.Millisecond)
	}
}
