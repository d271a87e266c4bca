package kvraft_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/kvraft"
)

func putOp(key, value string) kvraft.Op {
	return kvraft.Op{Type: kvraft.OpPut, Key: []byte(key), Value: []byte(value)}
}

func delOp(key string) kvraft.Op { return kvraft.Op{Type: kvraft.OpDelete, Key: []byte(key)} }

// state returns every pair on n as "key=value@mod", read with opts.
func state(t *testing.T, n *kvraft.Node, opts kvraft.ReadOptions) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := n.Range(ctx, kvraft.RangeRequest{}, opts)
	if err != nil {
		t.Fatalf("range on %d: %v", n.ID(), err)
	}
	out := make([]string, len(r.Items))
	for i, kv := range r.Items {
		out[i] = fmt.Sprintf("%s=%s@%d", kv.Key, kv.Value, kv.ModIndex)
	}
	return out
}

// checkSameState waits until every running member has applied idx and
// checks that they all hold the same pairs with the same mod indexes.
func checkSameState(t *testing.T, c *testCluster, idx uint64) []string {
	t.Helper()
	c.waitApplied(idx)
	var want []string
	var from uint64
	for i, n := range c.running() {
		got := state(t, n, kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: idx})
		if i == 0 {
			want, from = got, n.ID()
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("member %d holds\n%v\nmember %d holds\n%v", n.ID(), got, from, want)
		}
	}
	return want
}

// TestConcurrentCASIncrements has many clients increment one counter on
// random members of a 3-member cluster with read, then compare-and-set on
// the mod index read, retrying on conflict. The counter must end exactly at
// the number of txns that reported success, and ordered by commit index
// those txns must have written 1, 2, 3, ...
func TestConcurrentCASIncrements(t *testing.T) {
	c := newCluster(t, 3, func(cfg *kvraft.Config) { cfg.SnapshotCount = 100; cfg.SnapshotCatchUpEntries = 20 })
	c.waitLeader()
	c.net.SetDelay(0, 2*time.Millisecond)
	const clients, perClient = 8, 15
	key := []byte("counter")
	type success struct {
		index uint64
		value int
	}
	var (
		mu        sync.Mutex
		successes []success
		conflicts int
		wg        sync.WaitGroup
	)
	for cl := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), uint64(time.Now().UnixNano())))
			for done := 0; done < perClient; {
				nodes := c.running()
				n := nodes[rng.IntN(len(nodes))]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				// Eventual reads may be stale: the txn then fails and retries.
				opts := linearizable
				if rng.IntN(2) == 0 {
					opts = kvraft.ReadOptions{Consistency: kvraft.Eventual}
				}
				r, err := n.Get(ctx, key, opts)
				if err != nil {
					cancel()
					t.Errorf("client %d: get: %v", cl, err)
					return
				}
				cur := 0
				if r.Found {
					if cur, err = strconv.Atoi(string(r.Value)); err != nil {
						cancel()
						t.Errorf("client %d: counter %q: %v", cl, r.Value, err)
						return
					}
				}
				res, err := n.Txn(ctx, kvraft.Txn{
					If:   []kvraft.Compare{kvraft.CompareModIndex(key, kvraft.CmpEqual, r.ModIndex)},
					Then: []kvraft.Op{putOp(string(key), strconv.Itoa(cur+1))},
				})
				cancel()
				if err != nil {
					// No faults are injected: a txn must not time out, or
					// its outcome would be unknown.
					t.Errorf("client %d: txn: %v", cl, err)
					return
				}
				mu.Lock()
				if res.Succeeded {
					successes = append(successes, success{res.Index, cur + 1})
					done++
				} else {
					conflicts++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d increments, %d conflicts retried", len(successes), conflicts)
	if conflicts == 0 {
		t.Fatal("no conflicting increments: the test did not exercise compare-and-set")
	}
	slices.SortFunc(successes, func(a, b success) int { return cmp.Compare(a.index, b.index) })
	for i, s := range successes {
		if s.value != i+1 {
			t.Fatalf("txn %d (index %d) wrote %d, want %d: an update was lost or duplicated", i, s.index, s.value, i+1)
		}
	}
	last := successes[len(successes)-1]
	want := []string{fmt.Sprintf("counter=%d@%d", clients*perClient, last.index)}
	if got := checkSameState(t, c, last.index); !reflect.DeepEqual(got, want) {
		t.Fatalf("state = %v, want %v", got, want)
	}
}

// TestTxnsMixedOutcomes proposes independent txns in one entry through a
// follower: each is evaluated in order against the writes of the ones
// before it, its outcome reported, and only its own branch applied.
func TestTxnsMixedOutcomes(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.waitLeader()
	var follower *kvraft.Node
	for _, n := range c.running() {
		if n.ID() != lead {
			follower = n
			break
		}
	}
	cIdx := put(t, follower, "c", "old")
	txns := []kvraft.Txn{
		// 0: a is absent: create it.
		{If: []kvraft.Compare{kvraft.CompareMissing([]byte("a"))}, Then: []kvraft.Op{putOp("a", "first")}},
		// 1: sees txn 0's write: a exists now, so else.
		{If: []kvraft.Compare{kvraft.CompareMissing([]byte("a"))}, Then: []kvraft.Op{putOp("a", "second")},
			Else: []kvraft.Op{putOp("a-dup", "1")}},
		// 2: a value compare on an absent key fails; no else.
		{If: []kvraft.Compare{kvraft.CompareValue([]byte("b"), kvraft.CmpNotEqual, []byte("x"))}, Then: []kvraft.Op{putOp("b", "y")}},
		// 3: c is unchanged since cIdx: delete it.
		{If: []kvraft.Compare{kvraft.CompareModIndex([]byte("c"), kvraft.CmpEqual, cIdx), kvraft.CompareValue([]byte("c"), kvraft.CmpEqual, []byte("old"))},
			Then: []kvraft.Op{delOp("c")}},
		// 4: c was deleted by txn 3 (mod index 0): else recreates it.
		{If: []kvraft.Compare{kvraft.CompareModIndex([]byte("c"), kvraft.CmpGreater, 0)}, Then: []kvraft.Op{delOp("a")},
			Else: []kvraft.Op{putOp("c", "again")}},
		// 5: all compares must hold; the second does not.
		{If: []kvraft.Compare{kvraft.CompareExists([]byte("a")), kvraft.CompareModIndex([]byte("a"), kvraft.CmpLess, cIdx)},
			Then: []kvraft.Op{delOp("a")}, Else: []kvraft.Op{putOp("d", "x"), putOp("d", "y")}},
		// 6: compares only.
		{If: []kvraft.Compare{kvraft.CompareValue([]byte("d"), kvraft.CmpGreater, []byte("x"))}},
	}
	idx, succeeded, err := follower.Txns(context.Background(), txns)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, false, true, false, false, true}; !reflect.DeepEqual(succeeded, want) {
		t.Fatalf("succeeded = %v, want %v", succeeded, want)
	}
	if idx <= cIdx {
		t.Fatalf("txns committed at %d, before the put at %d", idx, cIdx)
	}
	want := []string{
		fmt.Sprintf("a=first@%d", idx), fmt.Sprintf("a-dup=1@%d", idx),
		fmt.Sprintf("c=again@%d", idx), fmt.Sprintf("d=y@%d", idx),
	}
	if got := checkSameState(t, c, idx); !reflect.DeepEqual(got, want) {
		t.Fatalf("state = %v, want %v", got, want)
	}
	// Txn reports the same way; the follower reads its own write.
	res, err := follower.Txn(context.Background(), kvraft.Txn{
		If:   []kvraft.Compare{kvraft.CompareModIndex([]byte("d"), kvraft.CmpEqual, idx)},
		Then: []kvraft.Op{delOp("d")}, Else: []kvraft.Op{putOp("e", "1")},
	})
	if err != nil || !res.Succeeded || res.Index <= idx {
		t.Fatalf("txn = %+v, %v; want then after %d", res, err, idx)
	}
	if r := get(t, follower, "d", kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: res.Index}); r.Found || r.ModIndex != 0 {
		t.Fatalf("d after delete = %+v", r)
	}
}

// TestTxnStateSurvivesRestartAndSnapshot writes with txns while a follower
// is down, past the leader's compacted log; the follower must catch up
// through a snapshot, and another member restarted from its data dir
// (snapshot plus WAL replay) must agree on every value and mod index.
func TestTxnStateSurvivesRestartAndSnapshot(t *testing.T) {
	regs := map[uint64]*prometheus.Registry{}
	c := newCluster(t, 3, func(cfg *kvraft.Config) {
		cfg.SnapshotCount = 40
		cfg.SnapshotCatchUpEntries = 10
		reg := prometheus.NewRegistry()
		regs[cfg.ID] = reg
		cfg.Registerer = reg
	})
	lead := c.waitLeader()
	var followers []uint64
	for _, m := range c.members {
		if m.ID != lead {
			followers = append(followers, m.ID)
		}
	}
	lag, other := followers[0], followers[1]
	lagApplied := c.node(lag).Status().AppliedIndex
	c.crash(lag)
	leader := c.node(lead)

	// Txns over a few keys, with both outcomes, deletes and several txns
	// per entry, so mod indexes vary by key.
	rng := rand.New(rand.NewPCG(1, 2))
	var idx uint64
	var outcomes [2]int
	for i := range 300 {
		var txns []kvraft.Txn
		for range 1 + rng.IntN(3) {
			k := fmt.Sprintf("k%02d", rng.IntN(12))
			r := get(t, leader, k, kvraft.ReadOptions{Consistency: kvraft.Eventual})
			mod := r.ModIndex
			if rng.IntN(4) == 0 {
				mod++ // a stale or wrong expectation: else runs
			}
			then := []kvraft.Op{putOp(k, fmt.Sprint(i))}
			if rng.IntN(5) == 0 {
				then = []kvraft.Op{delOp(k)}
			}
			txns = append(txns, kvraft.Txn{
				If:   []kvraft.Compare{kvraft.CompareModIndex([]byte(k), kvraft.CmpEqual, mod)},
				Then: then,
				Else: []kvraft.Op{putOp("misses/"+k, fmt.Sprint(i))},
			})
		}
		var ok []bool
		var err error
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		idx, ok, err = leader.Txns(ctx, txns)
		cancel()
		if err != nil {
			t.Fatalf("txns %d: %v", i, err)
		}
		for _, s := range ok {
			if s {
				outcomes[1]++
			} else {
				outcomes[0]++
			}
		}
	}
	t.Logf("%d txns took then, %d else", outcomes[1], outcomes[0])
	if outcomes[0] == 0 || outcomes[1] == 0 {
		t.Fatalf("outcomes %v: both branches must be exercised", outcomes)
	}
	want := checkSameState(t, c, idx)
	for branch, count := range map[string]int{"then": outcomes[1], "else": outcomes[0]} {
		if got := labeledCounter(t, regs[lead], "penny_kvraft_txns_total", "branch", branch); got != float64(count) {
			t.Fatalf("leader counted %v txns taking %s, want %d", got, branch, count)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); leader.LogFirstIndex() <= lagApplied+1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("leader log not compacted")
		}
	}

	// Restart the other follower from its own data dir, and the lagging
	// one, which can only catch up by installing the leader's snapshot.
	c.crash(other)
	c.start(other)
	c.start(lag)
	if got := checkSameState(t, c, idx); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restarts the members hold\n%v\nbefore they held\n%v", got, want)
	}
	if snaps := testutil.ToFloat64(collectorOf(t, regs[lag], "penny_kvraft_snapshots_total")); snaps < 1 {
		t.Fatalf("lagging member installed %v snapshots, want >= 1", snaps)
	}

	// The restarted members' mod indexes are good for compare-and-set.
	for _, id := range []uint64{lag, other} {
		n := c.node(id)
		r := get(t, n, "k00", kvraft.ReadOptions{Consistency: kvraft.Session, MinIndex: idx})
		res, err := n.Txn(context.Background(), kvraft.Txn{
			If:   []kvraft.Compare{kvraft.CompareModIndex([]byte("k00"), kvraft.CmpEqual, r.ModIndex)},
			Then: []kvraft.Op{putOp("k00", fmt.Sprintf("via %d", id))},
		})
		if err != nil || !res.Succeeded {
			t.Fatalf("cas on member %d with mod index %d: %+v, %v", id, r.ModIndex, res, err)
		}
		idx = res.Index
	}
	checkSameState(t, c, idx)
}

// labeledCounter returns the value of the counter name{label=value}.
func labeledCounter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s=%q} not found", name, label, value)
	return 0
}

func TestTxnRejectsBadRequests(t *testing.T) {
	c := newCluster(t, 1, nil)
	n := c.node(c.waitLeader())
	ctx := context.Background()
	key := []byte("k")
	many := func(count int, txn kvraft.Txn) []kvraft.Txn {
		out := make([]kvraft.Txn, count)
		for i := range out {
			out[i] = txn
		}
		return out
	}
	bigOps := make([]kvraft.Op, kvraft.MaxTxnOps)
	for i := range bigOps {
		bigOps[i] = putOp("k", "v")
	}
	big := putOp("k", string(make([]byte, 1<<20)))
	tests := []struct {
		name string
		txns []kvraft.Txn
		want error
	}{
		{"no txns", nil, kvraft.ErrInvalid},
		{"empty txn", []kvraft.Txn{{}}, kvraft.ErrInvalid},
		{"empty key in then", []kvraft.Txn{{Then: []kvraft.Op{putOp("", "v")}}}, kvraft.ErrInvalid},
		{"empty compare key", []kvraft.Txn{{If: []kvraft.Compare{kvraft.CompareExists(nil)}}}, kvraft.ErrInvalid},
		{"exists with <", []kvraft.Txn{{If: []kvraft.Compare{{Key: key, Target: kvraft.TargetExists, Op: kvraft.CmpLess}}}}, kvraft.ErrInvalid},
		{"unknown compare op", []kvraft.Txn{{If: []kvraft.Compare{kvraft.CompareValue(key, 0, nil)}}}, kvraft.ErrInvalid},
		{"compare key too large", []kvraft.Txn{{If: []kvraft.Compare{kvraft.CompareExists(make([]byte, 5000))}}}, kvraft.ErrTooLarge},
		{"compare value too large", []kvraft.Txn{{If: []kvraft.Compare{kvraft.CompareValue(key, kvraft.CmpEqual, make([]byte, 2<<20))}}}, kvraft.ErrTooLarge},
		{"value too large", []kvraft.Txn{{Else: []kvraft.Op{putOp("k", string(make([]byte, 2<<20)))}}}, kvraft.ErrTooLarge},
		{"too many ops in a txn", []kvraft.Txn{{If: []kvraft.Compare{kvraft.CompareExists(key)}, Then: bigOps}}, kvraft.ErrTooLarge},
		{"too many txns", many(kvraft.MaxTxns+1, kvraft.Txn{Then: []kvraft.Op{delOp("k")}}), kvraft.ErrTooLarge},
		{"too many ops in all", many(kvraft.MaxTxnsOps/kvraft.MaxTxnOps+1, kvraft.Txn{Then: bigOps}), kvraft.ErrTooLarge},
		{"too many bytes", many(17, kvraft.Txn{Then: []kvraft.Op{big}}), kvraft.ErrTooLarge},
	}
	before := n.Status().AppliedIndex
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := n.Txns(ctx, tt.txns)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Txns() error = %v, want %v", err, tt.want)
			}
			if len(tt.txns) == 1 {
				if _, err := n.Txn(ctx, tt.txns[0]); !errors.Is(err, tt.want) {
					t.Fatalf("Txn() error = %v, want %v", err, tt.want)
				}
			}
		})
	}
	// Nothing was proposed: a write now commits right after what was
	// applied before (the API URL publication may sit in between).
	idx := put(t, n, "after", "v")
	if idx > before+2 {
		t.Fatalf("put after rejected txns committed at %d, applied index was %d before them", idx, before)
	}
}
