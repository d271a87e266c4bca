package model

import (
	"bytes"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/pennyhq/penny/kvraft"
)

// checkMarksOp fails unless a write of a series' checkpoints key leaves
// what the next state holds: s's marks, or none.
func checkMarksOp(t *testing.T, s *Stored, op Op) {
	t.Helper()
	if op.Delete {
		if s != nil && s.hasMarks() {
			t.Fatalf("checkpoints of %s deleted, state has some", s.Path)
		}
		return
	}
	m, err := DecodeMarks(op.Value)
	if err != nil {
		t.Fatal(err)
	}
	if s == nil {
		t.Fatalf("checkpoints written %+v, no state", m)
	}
	held, err := s.unpacked()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, held) {
		t.Fatalf("checkpoints written %+v, state has %+v", m, held)
	}
	if t0, ok := s.newestMark(); !ok || t0 != m[len(m)-1].Time {
		t.Fatalf("state's newest checkpoint at %d (%v), written %d", t0, ok, m[len(m)-1].Time)
	}
}

// marksOf returns a series' checkpoints, which a node state keeps packed.
func marksOf(t *testing.T, s *Stored) Marks {
	t.Helper()
	m, err := s.unpacked()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// store is a node's keys, as the plans leave them.
type store map[string][]byte

func (st store) apply(p *Plan) (writes map[KeyKind]int) {
	writes = map[KeyKind]int{}
	for _, op := range p.Ops {
		if _, kind, _, err := ParseKey(op.Key); err == nil {
			writes[kind]++
		}
		if op.Delete {
			delete(st, string(op.Key))
		} else {
			st[string(op.Key)] = op.Value
		}
	}
	return writes
}

func (st store) items() []kvraft.KV {
	var kvs []kvraft.KV
	for _, k := range slices.Sorted(maps.Keys(st)) {
		kvs = append(kvs, kvraft.KV{Key: []byte(k), Value: st[k]})
	}
	return kvs
}

// checkLoads fails unless the node loaded back from st is want.
func (st store) checkLoads(t *testing.T, want *NodeState) {
	t.Helper()
	got, err := LoadNode(want.Node, st.items())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Series) != len(want.Series) {
		t.Fatalf("loaded %d series, want %d", len(got.Series), len(want.Series))
	}
	for p, w := range want.Series {
		g := got.Series[p]
		if g == nil || !reflect.DeepEqual(marksOf(t, g), marksOf(t, w)) || !maps.Equal(g.Meta, w.Meta) || g.Total != w.Total || g.Time != w.Time {
			t.Fatalf("series %s loaded as %+v, want %+v", p, g, w)
		}
	}
}

// TestMarksKeys: a series' checkpoints live under their own key, written
// when one is added (once every MarkEvery, not with every sample) and
// deleted with the series or when its counters restart; the node loads
// back from its keys as the writer holds it, checkpoints included.
func TestMarksKeys(t *testing.T) {
	st, db := &NodeState{Node: "n"}, store{}
	seq, rx := uint64(0), uint64(0)
	step := func(inc uint64, at time.Duration, keyframe bool, changed []SeriesState, removed ...string) map[KeyKind]int {
		t.Helper()
		seq++
		p, err := PlanUpdate(st, &Update{Node: "n", Incarnation: inc, Seq: seq, Time: t0.Add(at), Interval: time.Second,
			Keyframe: keyframe, Changed: changed, Removed: removed}, t0)
		if err != nil {
			t.Fatal(err)
		}
		w := db.apply(p)
		st = p.Next
		db.checkLoads(t, st)
		return w
	}
	marksWrites := 0
	for i := range 300 { // five minutes of one-second frames of two series
		rx += 100
		w := step(1, time.Duration(i)*time.Second, i == 0, []SeriesState{series("/a", 1, rx), series("/b", 2, rx/2)})
		marksWrites += w[KindMarks]
		if w[KindSeries] != 2 {
			t.Fatalf("frame %d: %d series values written", i, w[KindSeries])
		}
	}
	// One write per series every MarkEvery (15 s) of 300 s, at most.
	if max := 2 * (300/int(MarkEvery/time.Second) + 1); marksWrites == 0 || marksWrites > max {
		t.Errorf("checkpoints written %d times, want 1 to %d", marksWrites, max)
	}
	// The state keeps them encoded, as the store does, loaded back too.
	loaded, err := LoadNode("n", db.items())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []*NodeState{st, loaded} {
		if s := ns.Series["/a"]; s.Marks != nil || len(s.packed) == 0 || !bytes.Equal(s.packed, db[string(MarksKey("n", "/a"))]) {
			t.Fatalf("the state holds %d decoded checkpoints and %d bytes of them, want none and the stored %d",
				len(s.Marks), len(s.packed), len(db[string(MarksKey("n", "/a"))]))
		}
	}
	if n := len(marksOf(t, st.Series["/a"])); n < 2 || n > maxMarks+1 {
		t.Fatalf("%d marks", n)
	}
	if _, ok := db[string(MarksKey("n", "/a"))]; !ok {
		t.Fatal("no checkpoints key")
	}

	// Removed: its value and checkpoints go.
	step(1, 300*time.Second, false, nil, "/b")
	if _, ok := db[string(MarksKey("n", "/b"))]; ok {
		t.Error("the checkpoints of a removed series stay")
	}
	// Restarted counters: its checkpoints go with its lifetime.
	step(1, 301*time.Second, false, []SeriesState{series("/a", 1, 5)})
	if _, ok := db[string(MarksKey("n", "/a"))]; ok || len(marksOf(t, st.Series["/a"])) != 0 {
		t.Error("the checkpoints of a restarted series stay")
	}
	// The agent restarted and the keyframe leaves /a out.
	for i := range 20 {
		rx += 100
		step(1, time.Duration(302+i)*time.Second, false, []SeriesState{series("/a", 1, rx)})
	}
	step(2, 330*time.Second, true, []SeriesState{series("/c", 1, 1)})
	for k := range db {
		if _, kind, _, _ := ParseKey([]byte(k)); kind == KindMarks {
			t.Errorf("%s left after its series", k)
		}
	}
}

// TestMarksInValuesOfBefore: a series value of a version that kept its
// checkpoints in it reads with them, wins over a checkpoints key (the
// value is what was written last), and is moved to its key at its next
// write, even when no checkpoint is added then.
func TestMarksInValuesOfBefore(t *testing.T) {
	old := &Stored{Path: "/a", Time: t0.UnixNano(), Interval: int64(time.Second), Total: Counters{RxBytes: 100},
		Marks: Marks{{Time: t0.Add(-10 * time.Second).UnixNano(), Total: Counters{RxBytes: 10}}}}
	v, err := msgpack.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := (&Agent{Incarnation: 1, Seq: 1, Time: t0.UnixNano(), Interval: int64(time.Second)}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	stale := EncodeMarks(Marks{{Time: 1}})
	db := store{string(AgentKey("n")): agent, string(SeriesKey("n", "/a")): v, string(MarksKey("n", "/a")): stale}
	st, err := LoadNode("n", db.items())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(marksOf(t, st.Series["/a"]), old.Marks) {
		t.Fatalf("marks %+v, want the value's %+v", marksOf(t, st.Series["/a"]), old.Marks)
	}
	c := View("n", st.Agent, st.Series["/a"], 30*time.Second)
	if c.NetRxBytes != 90 || c.WindowSeconds != 10 {
		t.Errorf("window of a value of before: rx %d over %gs, want 90 over 10s", c.NetRxBytes, c.WindowSeconds)
	}
	p, err := PlanUpdate(st, &Update{Node: "n", Incarnation: 1, Seq: 2, Time: t0.Add(time.Second), Interval: time.Second,
		Changed: []SeriesState{series("/a", 1, 150)}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	db.apply(p)
	db.checkLoads(t, p.Next)
	if len(marksOf(t, p.Next.Series["/a"])) != 1 {
		t.Fatalf("marks after the next frame: %+v", marksOf(t, p.Next.Series["/a"]))
	}
	if s, _ := DecodeStored("/a", db[string(SeriesKey("n", "/a"))]); len(s.Marks) != 0 {
		t.Error("the series value still holds marks")
	}
}

func TestDecodeMarksRefusesBadValues(t *testing.T) {
	tooMany := make(Marks, maxMarks+2)
	for _, b := range [][]byte{{0xc1}, {0x92, 0x01}, EncodeMarks(tooMany), make([]byte, MaxValue+1)} {
		if _, err := DecodeMarks(b); err == nil {
			t.Errorf("DecodeMarks(% x...) accepted", b[:min(len(b), 4)])
		}
	}
}
