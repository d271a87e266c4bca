package history

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/kvraft"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// agent writes one node's frames to a store as the ingest does.
type agent struct {
	t     testing.TB
	store *kvraft.Node
	node  string
	st    *model.NodeState
	inc   uint64
	seq   uint64
	facts nodemeta.Facts
	ws    []*workload
}

func newAgent(t testing.TB, store *kvraft.Node, node string, ws ...*workload) *agent {
	return &agent{t: t, store: store, node: node, st: &model.NodeState{Node: node}, inc: 1, ws: ws,
		facts: nodemeta.Facts{AllocatableCPUMillis: 4000, AllocatableMemoryBytes: 16 * gib, CapacityType: nodemeta.OnDemand}}
}

// run sends one frame a second from second from to to (since t0).
func (a *agent) run(from, to int) { a.runEvery(from, to, 1) }

// runEvery sends one frame every step seconds from second from to to.
func (a *agent) runEvery(from, to, step int) {
	a.t.Helper()
	for sec := from; sec <= to; sec += step {
		var changed []model.SeriesState
		var removed []string
		for _, w := range a.ws {
			switch {
			case sec >= w.from && (w.to == 0 || sec < w.to):
				changed = append(changed, w.at(sec, 0))
			case sec >= w.to && sec < w.to+step:
				removed = append(removed, w.path)
			}
		}
		a.seq++
		at := at(sec)
		u := &model.Update{Node: a.node, Incarnation: a.inc, Seq: a.seq, Time: at, Interval: time.Duration(step) * time.Second,
			Keyframe: a.seq == 1, Changed: changed, Meta: nodemeta.Encode(&a.facts)}
		if !u.Keyframe {
			u.Removed = removed
		}
		p, err := model.PlanUpdate(a.st, u, at)
		if err != nil {
			a.t.Fatal(err)
		}
		res, err := a.store.Txn(context.Background(), model.Txn(a.node, p.Expect, p.Ops))
		if err != nil || !res.Succeeded {
			a.t.Fatalf("frame %d: %+v %v", sec, res, err)
		}
		a.st = p.Next
	}
}

func newRoller(t testing.TB, store Store, c *clock, mod ...func(*Config)) *Roller {
	t.Helper()
	cfg := Config{Store: store, Now: c.Now}
	for _, m := range mod {
		m(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func read(t testing.TB, store *kvraft.Node, prefix string) []kvraft.KV {
	t.Helper()
	res, err := store.Range(context.Background(), kvraft.RangeRequest{Prefix: []byte(prefix)},
		kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err != nil {
		t.Fatal(err)
	}
	return res.Items
}

// totals sums every entry of the records under prefix, by node and ref.
func totals(t testing.TB, store *kvraft.Node, prefix string) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	for _, kv := range read(t, store, prefix) {
		rec, err := DecodeRecord(kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		_, node, _ := parseTimeKey(prefix, kv.Key)
		for _, s := range rec.Segments {
			for _, e := range s.Entries {
				k := fmt.Sprintf("%s/%d", node, e.Ref)
				sum := out[k]
				sum.Ref = e.Ref
				sum.Add(&e)
				out[k] = sum
			}
		}
	}
	return out
}

func TestRollerOnStore(t *testing.T) {
	store := kvtest.Start(t)
	ctx := context.Background()
	c := &clock{}
	r := newRoller(t, store, c)
	api := &workload{path: "/kubepods/api", meta: pod(500, gib), rss: gib, cpuMilli: 250, inetPerS: 100}
	batch := &workload{path: "/kubepods/job", rss: 2 * gib, cpuMilli: 1000, from: 30, to: 95}
	svc := &workload{path: "/system.slice/sshd.service", rss: 5 << 20, cpuMilli: 1}
	a := newAgent(t, store, "node-a", api, batch, svc)
	b := newAgent(t, store, "node-b", svc)

	sec := 0
	for m := 1; m <= 3; m++ {
		a.run(sec, m*60+1) // up to the first sample past the boundary
		b.run(sec, m*60+1)
		sec = m*60 + 2
		c.set(at(m*60 + 5))
		if n, err := r.RollAll(ctx); err != nil || n != 2 {
			t.Fatalf("minute %d: rolled %d nodes, %v", m, n, err)
		}
	}
	if n, err := r.RollAll(ctx); err != nil || n != 0 {
		t.Errorf("rolled again: %d %v", n, err)
	}

	// Each minute once, per node.
	mins := read(t, store, minutePrefix)
	if len(mins) != 6 {
		t.Fatalf("%d minute records, want 6", len(mins))
	}
	got := totals(t, store, minutePrefix)
	// api: 3 minutes at 250m, 1 GiB, request 500m, 1 GiB
	if e := got["node-a/"+refOf(t, store, "node-a", api.path)]; e.ObservedMs != 180_000 || e.CPUUsedUs != 45e6 ||
		e.CPURequestUs != 90e6 || e.CPUAllocUs != 90e6 || e.MemUsedKiBs != 180*mib || e.EgressInternetBytes != 18_000 {
		t.Errorf("api over 3 minutes: %+v", e)
	}
	// job: from 12:00:30 to 12:01:35 (its last sample 12:01:34 held a second)
	if e := got["node-a/"+refOf(t, store, "node-a", batch.path)]; e.ObservedMs != 65_000 || e.CPUUsedUs != 64e6 || e.MemUsedKiBs != 130*mib {
		t.Errorf("job: %+v", e)
	}
	// Hour records hold the same sums.
	if h := totals(t, store, hourPrefix); fmt.Sprint(h) != fmt.Sprint(got) {
		t.Errorf("hour records\n %v, minutes\n %v", h, got)
	}
	if g := read(t, store, string(model.AllGonePrefix())); len(g) != 0 {
		t.Errorf("%d final records left", len(g))
	}

	// The reader gives the cost model what it needs.
	rd, err := NewReader(ReaderConfig{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	series, nodes, err := rd.Spans(ctx, at(0), at(180), kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 4 || len(nodes) != 6 {
		t.Fatalf("%d series, %d node spans", len(series), len(nodes))
	}
	m, err := cost.New(cost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := cost.ParseQuery(map[string][]string{"window": {fmt.Sprintf("%d,%d", at(0).Unix(), at(180).Unix())},
		"aggregate": {"namespace"}}, at(200))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Compute(&q, series, nodes)
	if err != nil {
		t.Fatal(err)
	}
	shop := res.Sets[0].Allocations["shop"]
	// 3 minutes of 0.5 core (the request) and 1 GiB at the default prices.
	wantCPU := 0.5 * 3.0 / 60 * 0.031611
	wantRAM := 1.0 * 3.0 / 60 * 0.004237
	if shop == nil || math.Abs(shop.CPUCost-wantCPU) > 1e-9 || math.Abs(shop.RAMCost-wantRAM) > 1e-9 {
		t.Errorf("shop: %+v, want cpu %v ram %v", shop, wantCPU, wantRAM)
	}
}

// refOf finds the ref of a path's identity.
func refOf(t testing.TB, store *kvraft.Node, node, path string) string {
	t.Helper()
	for _, kv := range read(t, store, string(identityPrefix(node))) {
		id, err := DecodeIdentity(kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		if id.Path == path {
			_, ref, _ := parseIdentityKey(kv.Key)
			return fmt.Sprint(ref)
		}
	}
	t.Fatalf("no identity of %s on %s", path, node)
	return ""
}

// TestRollersRace: a deposed roller's roll of a minute that the new
// leader rolled fails, and so does a roll a frame overtook; rollers racing
// minute after minute write each minute once.
func TestRollersRace(t *testing.T) {
	store := kvtest.Start(t)
	ctx := context.Background()
	c := &clock{}
	old, leader := newRoller(t, store, c), newRoller(t, store, c)
	w := &workload{path: "/a", rss: gib, cpuMilli: 1000}
	a := newAgent(t, store, "node-a", w)
	a.run(0, 61)
	c.set(at(65))
	opts, err := old.readOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commit := func(r *Roller, p *plan) (lost []string, n int) {
		t.Helper()
		b := batch{r: r}
		b.add(p)
		lost, n, err := b.commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return lost, n
	}
	p1, err := old.planNode(ctx, "node-a", opts)
	if err != nil || p1 == nil {
		t.Fatal(p1, err)
	}
	p2, err := leader.planNode(ctx, "node-a", opts)
	if err != nil || p2 == nil {
		t.Fatal(p2, err)
	}
	if _, n := commit(leader, p2); n != 1 {
		t.Fatal("the leader's roll failed")
	}
	if lost, n := commit(old, p1); n != 0 || len(lost) != 1 {
		t.Fatalf("the deposed roller's roll: rolled %d, lost %v", n, lost)
	}
	// A frame between the reads and the write.
	a.run(62, 121)
	c.set(at(125))
	opts, _ = leader.readOpts(ctx)
	p, err := leader.planNode(ctx, "node-a", opts)
	if err != nil || p == nil {
		t.Fatal(p, err)
	}
	a.run(122, 122)
	if lost, n := commit(leader, p); n != 0 || len(lost) != 1 {
		t.Fatalf("a roll a frame overtook: rolled %d, lost %v", n, lost)
	}
	if n, err := leader.RollAll(ctx); n != 1 || err != nil {
		t.Fatalf("roll again: %d %v", n, err)
	}
	// Deposed once the cursor exists.
	a.run(123, 181)
	c.set(at(185))
	opts, _ = leader.readOpts(ctx)
	if p1, err = old.planNode(ctx, "node-a", opts); err != nil || p1 == nil {
		t.Fatal(p1, err)
	}
	if p2, err = leader.planNode(ctx, "node-a", opts); err != nil || p2 == nil {
		t.Fatal(p2, err)
	}
	if _, n := commit(leader, p2); n != 1 {
		t.Fatal("the leader's roll failed")
	}
	if lost, n := commit(old, p1); n != 0 || len(lost) != 1 {
		t.Fatalf("the deposed roller's roll: rolled %d, lost %v", n, lost)
	}

	// Both roll every minute, at once.
	sec := 182
	for m := 4; m <= 12; m++ {
		a.run(sec, m*60+1)
		sec = m*60 + 2
		c.set(at(m*60 + 5))
		var wg sync.WaitGroup
		for _, r := range []*Roller{old, leader} {
			wg.Go(func() {
				if _, err := r.RollAll(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if n := len(read(t, store, minutePrefix)); n != 12 {
		t.Errorf("%d minute records, want 12", n)
	}
	e := totals(t, store, minutePrefix)["node-a/1"]
	if e.ObservedMs != 12*60_000 || e.CPUUsedUs != 12*60e6 || e.MemUsedKiBs != 12*60*mib {
		t.Errorf("12 minutes: %+v", e)
	}
}

func TestCompactionAndRetention(t *testing.T) {
	store := kvtest.Start(t)
	ctx := context.Background()
	c := &clock{}
	r := newRoller(t, store, c, func(cfg *Config) { cfg.MinuteRetention, cfg.HourRetention = 2*time.Hour, 4*time.Hour })
	long := &workload{path: "/long", rss: gib, cpuMilli: 300, inetPerS: 7}
	short := &workload{path: "/short", rss: 3 << 20, cpuMilli: 50, to: 1800} // gone after 12:30
	a := newAgent(t, store, "node-a", long, short)
	const step = 10
	sec := 0
	for m := 1; m <= 180; m++ { // three hours, rolled every minute
		a.runEvery(sec, m*60+step, step) // to the first sample past the boundary
		sec = m*60 + 2*step
		c.set(at(m*60 + step + 5))
		if _, err := r.RollAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Every hour record is the sum of its minutes, to the unit.
	for h := 0; h < 3; h++ {
		var sum Record
		hour := minute(60 * h)
		for _, kv := range read(t, store, minutePrefix) {
			if s, _, _ := parseTimeKey(minutePrefix, kv.Key); s >= hour && s < hour+3600 {
				rec, err := DecodeRecord(kv.Value)
				if err != nil {
					t.Fatal(err)
				}
				for i := range rec.Segments {
					sum.add(&rec.Segments[i])
				}
			}
		}
		g, err := store.Get(ctx, HourKey(hour, "node-a"), kvraft.ReadOptions{})
		if err != nil || !g.Found {
			t.Fatalf("hour %d: %v %v", h, g.Found, err)
		}
		if got := string(g.Value); got != string(sum.Encode()) {
			t.Errorf("hour %d record is not the sum of its minutes", h)
		}
	}
	before := totals(t, store, minutePrefix)

	// At 16:05, with two hours of minutes, hours 12 and 13 are compacted.
	// An hour record that went missing is written from its minutes.
	if _, err := store.Txn(ctx, kvraft.Txn{Then: []kvraft.Op{{Type: kvraft.OpDelete, Key: HourKey(minute(60), "node-a")}}}); err != nil {
		t.Fatal(err)
	}
	c.set(at(4*3600 + 300))
	if err := r.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for _, kv := range read(t, store, minutePrefix) {
		if s, _, _ := parseTimeKey(minutePrefix, kv.Key); s < minute(120) {
			t.Fatalf("minute record %s left after compaction", kv.Key)
		}
	}
	if n := len(read(t, store, minutePrefix)); n != 60 {
		t.Errorf("%d minute records left, want the last hour's 60", n)
	}
	if h := totals(t, store, hourPrefix); fmt.Sprint(h) != fmt.Sprint(before) {
		t.Errorf("hours after compaction\n %v, minutes before\n %v", h, before)
	}
	if v := testutil.ToFloat64(r.m.compacted); v != 2 {
		t.Errorf("compacted hours %v, want 2", v)
	}

	// 6 hours after 12:00 with 4 hours of retention: hour 12 and 13 go, and
	// so does /short's identity (last seen in hour 12).
	c.set(at(6 * 3600))
	if err := r.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(read(t, store, hourPrefix)); n != 1 {
		t.Errorf("%d hour records left, want 1", n)
	}
	ids := read(t, store, identityPart)
	if len(ids) != 1 {
		t.Fatalf("%d identities left, want /long's", len(ids))
	}
	if id, _ := DecodeIdentity(ids[0].Value); id.Path != "/long" {
		t.Errorf("identity left: %+v", id)
	}
	if v := testutil.ToFloat64(r.m.bytes.WithLabelValues(KindHour)); v <= 0 {
		t.Errorf("hour bytes %v", v)
	}
}

func TestReaderEdges(t *testing.T) {
	store := kvtest.Start(t)
	ctx := context.Background()
	c := &clock{}
	r := newRoller(t, store, c)
	a := newAgent(t, store, "node-a", &workload{path: "/a", rss: gib, cpuMilli: 1000})
	sec := 0
	for m := 1; m <= 150; m++ { // 12:00 to 14:30
		a.runEvery(sec, m*60+10, 10)
		sec = m*60 + 20
		c.set(at(m*60 + 15))
		if _, err := r.RollAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := NewReader(ReaderConfig{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	spans := func(from, to int) []cost.Usage {
		t.Helper()
		series, _, err := rd.Spans(ctx, at(from), at(to), kvraft.ReadOptions{Consistency: kvraft.Linearizable})
		if err != nil || len(series) != 1 {
			t.Fatalf("%d series, %v", len(series), err)
		}
		return series[0].Usage
	}
	tests := []struct {
		name     string
		from, to int
		want     int // spans: minutes at the edges, hours within
	}{
		{"whole hours", 0, 7200, 2},
		{"from the half hour", 1800, 7200, 30 + 1},
		{"to the half hour", 0, 9000, 2 + 30},
		{"inside one hour", 600, 1200, 10},
		{"both edges", 1800, 9000, 30 + 1 + 30},
	}
	for _, tt := range tests {
		u := spans(tt.from, tt.to)
		if len(u) != tt.want {
			t.Errorf("%s: %d spans, want %d", tt.name, len(u), tt.want)
		}
		var secs float64
		for _, s := range u {
			secs += s.Seconds
		}
		if want := float64(tt.to - tt.from); secs != want && tt.want != 2 {
			t.Errorf("%s: %v seconds observed, want %v", tt.name, secs, want)
		}
	}
	// In steps: the same quantities in fewer spans.
	sum := func(u []cost.Usage) [4]float64 {
		var q [4]float64
		for _, s := range u {
			q[0] += s.Seconds
			q[1] += s.UsageCoreSeconds
			q[2] += s.AllocByteSeconds
			q[3] += s.RequestCoreSeconds
		}
		return q
	}
	for _, tt := range []struct {
		name     string
		from, to int
		step     time.Duration
		want     int
	}{
		{"one step", 0, 9000, 9000 * time.Second, 1},
		{"hours across steps' edges", 1800, 9000, time.Hour, 3}, // 12:30-13:00, the 13:00 hour, 14:00-14:30
		{"steps of hours", 0, 7200, time.Hour, 2},
	} {
		series, nodes, err := rd.SpansByStep(ctx, at(tt.from), at(tt.to), tt.step, kvraft.ReadOptions{})
		if err != nil || len(series) != 1 {
			t.Fatalf("%s: %d series, %v", tt.name, len(series), err)
		}
		if u := series[0].Usage; len(u) != tt.want || len(nodes) != tt.want || sum(u) != sum(spans(tt.from, tt.to)) {
			t.Errorf("%s: %d spans (%d node spans) adding up to %v, want %d adding up to %v", tt.name, len(u), len(nodes),
				sum(u), tt.want, sum(spans(tt.from, tt.to)))
		}
	}

	// Limits.
	small, _ := NewReader(ReaderConfig{Store: store, MaxRecords: 5})
	if _, _, err := small.Spans(ctx, at(0), at(7200), kvraft.ReadOptions{}); err != nil {
		t.Errorf("two hour records within a limit of 5: %v", err)
	}
	if _, _, err := small.Spans(ctx, at(1800), at(7200), kvraft.ReadOptions{}); !errors.Is(err, kvraft.ErrTooLarge) {
		t.Errorf("31 records with a limit of 5: %v", err)
	}
}
