package model

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pennyhq/penny/internal/histogram"
)

// diffAgent makes a random agent's updates: series that appear, change,
// restart their counters, go, come back; keyframes; metadata that comes,
// changes and goes; agent restarts; frames the store missed; gaps of time
// that add and drop checkpoints; and now and then an update the model
// refuses.
type diffAgent struct {
	rng   *rand.Rand
	inc   uint64
	seq   uint64
	at    time.Duration
	live  map[string]*SeriesState // what the agent last sent of each series
	paths []string
	metas []map[string]string
}

func newDiffAgent(seed uint64) *diffAgent {
	a := &diffAgent{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), inc: 1, live: map[string]*SeriesState{}}
	for i := range 14 {
		a.paths = append(a.paths, fmt.Sprintf("/kubepods/pod%d/c%d", i/3, i))
	}
	a.metas = []map[string]string{nil, {"k8s.pod": "web-1", "k8s.namespace": "shop"},
		{"k8s.pod": "web-2", "k8s.namespace": "shop"}, {"k8s.pod": "db-0", "k8s.namespace": "data", "k8s.container": "pg"}}
	return a
}

func (a *diffAgent) chance(p float64) bool { return a.rng.Float64() < p }

// move changes a series as a sample would: counters and histograms grow,
// or (rarely) start over; gauges move.
func (a *diffAgent) move(s *SeriesState) {
	r := a.rng
	t := &s.Total
	if a.chance(0.04) {
		*t = Counters{} // the cgroup was recreated under the same path
		s.SRTT, s.Connect = histogram.Hist{}, histogram.Hist{}
	}
	for _, f := range t.fields() {
		if a.chance(0.7) {
			*f += r.Uint64N(1 << uint(r.IntN(40)))
		}
	}
	s.RSSBytes = r.Int64N(1<<34) - 1<<20
	s.PageCacheBytes, s.WorkingSetBytes, s.Processes = r.Int64N(1<<30), r.Int64N(1<<31), r.Int64N(9)
	s.PressureKnown = a.chance(0.8)
	for range r.IntN(4) {
		s.SRTT.Observe(r.Uint64N(1 << 20))
	}
	if a.chance(0.3) {
		s.Connect.Observe(r.Uint64N(1 << 16))
	}
	switch {
	case a.chance(0.03):
		s.SRTT = histogram.Hist{} // a histogram that went back alone
	case s.Ref%3 == 0:
		h := s.RequestLatencyLogLinear.Clone() // the state holds the old buckets
		for range r.IntN(6) {
			h.Observe(r.Uint64N(1 << 22))
		}
		s.RequestLatencyLogLinear = h
	case s.Ref%3 == 1 && a.chance(0.5):
		s.RequestLatency.Observe(r.Uint64N(1 << 18))
	}
	if a.chance(0.1) {
		s.Meta = a.metas[r.IntN(len(a.metas))]
	} else if a.chance(0.05) && s.Meta != nil {
		s.Meta = maps.Clone(s.Meta) // equal, not the same map
	}
	if a.chance(0.02) {
		s.CgroupID++
	}
}

// next returns the agent's next update; bad says it is one the model
// refuses.
func (a *diffAgent) next() (u *Update, bad bool) {
	r := a.rng
	a.seq++
	switch {
	case a.chance(0.03): // the agent restarts
		a.inc++
		a.seq = 1
		clear(a.live)
	case a.chance(0.02): // a restart whose first frames the store missed
		a.inc++
		a.seq = 2 + r.Uint64N(5)
		clear(a.live)
	case a.chance(0.02):
		a.seq += 1 + r.Uint64N(3) // frames lost in between
	}
	steps := []time.Duration{time.Second, time.Second, time.Second, 500 * time.Millisecond, 7 * time.Second, 16 * time.Second,
		45 * time.Second, 3 * time.Minute}
	a.at += steps[r.IntN(len(steps))]
	u = &Update{Node: "node-1", Incarnation: a.inc, Seq: a.seq, Time: t0.Add(a.at), Interval: time.Second,
		Keyframe: len(a.live) == 0 || a.chance(0.08), Meta: map[string]string{"agent_version": "diff"}}
	for _, p := range a.paths {
		s, ok := a.live[p]
		switch {
		case !ok && a.chance(0.15):
			s = &SeriesState{Ref: uint64(len(p)*7 + int(p[len(p)-1])), Path: p, CgroupID: uint64(r.IntN(1000)),
				Meta: a.metas[r.IntN(len(a.metas))]}
			a.move(s)
			a.live[p] = s
			u.Changed = append(u.Changed, *s)
		case !ok:
		case a.chance(0.06) && !u.Keyframe:
			delete(a.live, p)
			u.Removed = append(u.Removed, p)
		case a.chance(0.05) && u.Keyframe:
			delete(a.live, p) // left out of a keyframe: gone
		case a.chance(0.7):
			a.move(s)
			u.Changed = append(u.Changed, *s)
		case u.Keyframe:
			u.Changed = append(u.Changed, *s) // restated as it is
		}
	}
	r.Shuffle(len(u.Changed), func(i, j int) { u.Changed[i], u.Changed[j] = u.Changed[j], u.Changed[i] })
	switch {
	case a.chance(0.01) && len(u.Changed) > 0:
		u.Changed = append(u.Changed, u.Changed[0])
		return u, true
	case a.chance(0.01) && len(u.Changed) > 0:
		u.Removed = append(u.Removed, u.Changed[0].Path)
		return u, true
	case a.chance(0.01) && a.seq > 1:
		u.Seq = 1 + r.Uint64N(a.seq-1) // stale, unless the store has another incarnation
	case a.chance(0.005):
		u.Changed = append(u.Changed, SeriesState{Path: "no-slash"})
		return u, true
	}
	return u, false
}

// fingerprint is what a state holds, encoded: to tell whether a plan
// changed it, and whether two states are the same.
func fingerprint(t *testing.T, st *NodeState) string {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %x\n", st.Node, st.AgentValue)
	for _, p := range slices.Sorted(maps.Keys(st.Series)) {
		s := st.Series[p]
		v, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.unpacked()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %x %x %v %v\n", p, s.Path, v, EncodeMarks(m), s.marksInValue, s.Meta)
	}
	return b.String()
}

// TestPlanUpdateAsReference runs long random sequences of updates through
// PlanUpdate, PlanUpdateInPlace and the plain implementation they replaced
// (refPlanUpdate), each on its own states, and wants the same plans op
// for op and byte for byte, the same errors, and the same next states;
// PlanUpdate must leave its state as it was. After a refused update, and
// now and then, all three start over from their stores (LoadNode).
func TestPlanUpdateAsReference(t *testing.T) {
	for _, tc := range []struct {
		seed  uint64
		steps int
	}{{1, 1500}, {2, 1500}, {3, 1000}, {4, 1000}} {
		t.Run(fmt.Sprint(tc.seed), func(t *testing.T) {
			checkAsReference(t, newDiffAgent(tc.seed), tc.steps)
		})
	}
}

func checkAsReference(t *testing.T, a *diffAgent, steps int) {
	t.Helper()
	type impl struct {
		name string
		plan func(*NodeState, *Update, time.Time) (*Plan, error)
		st   *NodeState
		db   store
	}
	impls := []*impl{{name: "reference", plan: refPlanUpdate}, {name: "PlanUpdate", plan: PlanUpdate},
		{name: "PlanUpdateInPlace", plan: PlanUpdateInPlace}}
	for _, im := range impls {
		im.st, im.db = &NodeState{Node: "node-1"}, store{}
	}
	reload := func() {
		t.Helper()
		legacy := map[string]bool{} // series rewritten as an earlier version wrote them
		for _, k := range slices.Sorted(maps.Keys(impls[0].db)) {
			if _, kind, p, err := ParseKey([]byte(k)); err == nil && kind == KindSeries && a.chance(0.3) {
				legacy[p] = true
			}
		}
		noAccrual := a.chance(0.5)
		for _, im := range impls {
			toLegacy(t, im.db, legacy, noAccrual)
			st, err := LoadNode("node-1", im.db.items())
			if err != nil {
				t.Fatalf("%s: load: %v", im.name, err)
			}
			im.st = st
		}
	}
	refused := 0
	for i := range steps {
		u, bad := a.next()
		now := u.Time.Add(time.Duration(a.rng.IntN(100)) * time.Millisecond)
		var want *Plan
		var wantErr error
		for j, im := range impls {
			before := ""
			if im.name == "PlanUpdate" && i%4 == 0 {
				before = fingerprint(t, im.st)
			}
			p, err := im.plan(im.st, u, now)
			if before != "" && fingerprint(t, im.st) != before {
				t.Fatalf("step %d: PlanUpdate changed the state it planned from", i)
			}
			if j == 0 {
				want, wantErr = p, err
				if bad != (err != nil) && !errors.Is(err, ErrStale) {
					t.Fatalf("step %d: refused %v, want %v: %v", i, err != nil, bad, err)
				}
			} else {
				checkSamePlan(t, fmt.Sprintf("step %d: %s", i, im.name), p, err, want, wantErr)
			}
			if err == nil {
				im.db.apply(p)
				im.st = p.Next
			}
		}
		if wantErr != nil {
			refused++
			reload() // PlanUpdateInPlace's state is spent
			continue
		}
		if want := fingerprint(t, impls[0].st); fingerprint(t, impls[1].st) != want || fingerprint(t, impls[2].st) != want {
			t.Fatalf("step %d: next states differ", i)
		}
		if a.chance(0.02) {
			reload()
		}
	}
	if refused == 0 {
		t.Error("no update refused")
	}
}

func checkSamePlan(t *testing.T, what string, p *Plan, err error, want *Plan, wantErr error) {
	t.Helper()
	switch {
	case (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error():
		t.Fatalf("%s: error %v, want %v", what, err, wantErr)
	case err != nil:
		return
	case !bytes.Equal(p.AgentKey, want.AgentKey) || !bytes.Equal(p.Expect, want.Expect) || (p.Expect == nil) != (want.Expect == nil):
		t.Fatalf("%s: condition %q = %x, want %q = %x", what, p.AgentKey, p.Expect, want.AgentKey, want.Expect)
	case len(p.Ops) != len(want.Ops):
		t.Fatalf("%s: %d ops, want %d", what, len(p.Ops), len(want.Ops))
	}
	// One write per key: the ingest takes a single frame's plan as its
	// transaction as it is (kvraft refuses a key written twice).
	keys := make(map[string]bool, len(p.Ops))
	for _, op := range p.Ops {
		if keys[string(op.Key)] {
			t.Fatalf("%s: key %q written twice", what, op.Key)
		}
		keys[string(op.Key)] = true
	}
	for k, op := range p.Ops {
		w := want.Ops[k]
		if !bytes.Equal(op.Key, w.Key) || op.Delete != w.Delete || (op.Value == nil) != (w.Value == nil) ||
			!bytes.Equal(op.Value, w.Value) && !sameMaps(t, op.Key, op.Value, w.Value) {
			t.Fatalf("%s: op %d: %q delete %v = %x, want %q delete %v = %x", what, k, op.Key, op.Delete, op.Value, w.Key, w.Delete, w.Value)
		}
	}
}

// sameMaps reports whether a and b, the values of key, are a series'
// metadata or final record that differ only in the order of a map's keys:
// msgpack writes a map in Go's order of iteration, and so these values
// are not the same bytes from one encoding to the next.
func sameMaps(t *testing.T, key, a, b []byte) bool {
	t.Helper()
	if _, kind, _, err := ParseKey(key); err == nil && kind == KindMeta {
		ma, errA := DecodeMeta(a)
		mb, errB := DecodeMeta(b)
		return errA == nil && errB == nil && maps.Equal(ma, mb)
	}
	if _, _, _, _, err := ParseGoneKey(key); err == nil {
		fa, errA := DecodeFinal(a)
		fb, errB := DecodeFinal(b)
		return errA == nil && errB == nil && reflect.DeepEqual(fa, fb)
	}
	return false
}

// toLegacy rewrites the values of the series of db that legacy lists as
// versions before this one wrote them: checkpoints in the value, not
// under their own key, and, when noAccrual, without accruals.
func toLegacy(t *testing.T, db store, legacy map[string]bool, noAccrual bool) {
	t.Helper()
	for p := range legacy {
		k, mk := string(SeriesKey("node-1", p)), string(MarksKey("node-1", p))
		s, err := DecodeStored(p, db[k])
		if err != nil {
			t.Fatal(err)
		}
		if mv, ok := db[mk]; ok {
			if s.Marks, err = DecodeMarks(mv); err != nil {
				t.Fatal(err)
			}
		}
		if noAccrual {
			s.Accrual = Accrual{}
		}
		if db[k], err = compactMarshal(s); err != nil {
			t.Fatal(err)
		}
		delete(db, mk)
	}
}
