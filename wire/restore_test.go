package wire

import (
	"errors"
	"testing"
	"time"
)

func TestRestoreState(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{AgentID: "node-1", Incarnation: 42})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0).UTC()
	snap := &Snapshot{Time: t0, Interval: time.Second, Meta: map[string]string{"v": "1"}, Series: []SeriesState{
		{Path: "/a", ID: 1, Values: Values{RSSBytes: 10, RxBytes: 5}},
		{Path: "/b", ID: 2, Meta: map[string]string{"pod": "x"}, Values: Values{RSSBytes: 20}},
	}}
	key, err := enc.Encode(snap, true)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := NewState(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(key, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := orig.Apply(f); err != nil {
		t.Fatal(err)
	}

	// What an aggregator would store: the series by ref.
	r := Restore{AgentID: "node-1", Incarnation: 42, Applied: orig.Applied(), Time: t0, Interval: time.Second,
		Meta: orig.Meta(), Series: map[uint64]SeriesState{}}
	for _, p := range []string{"/a", "/b"} {
		ref, ok := orig.Ref(p)
		if !ok {
			t.Fatalf("no ref for %s", p)
		}
		st, _ := orig.Series(ref)
		r.Series[ref] = st
	}
	restored, err := RestoreState(Limits{}, r)
	if err != nil {
		t.Fatal(err)
	}

	// The next delta applies to the restored state as to the original.
	snap.Series[0].RSSBytes, snap.Series[0].RxBytes = 15, 9
	snap.Time = t0.Add(time.Second)
	delta, err := enc.Encode(snap, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*State{orig, restored} {
		f, err := Decode(delta, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(f); err != nil {
			t.Fatalf("apply delta: %v", err)
		}
	}
	a, b := orig.Snapshot(), restored.Snapshot()
	if len(a.Series) != 2 || len(b.Series) != 2 || !a.Series[0].Values.Equal(&b.Series[0].Values) ||
		b.Series[0].RSSBytes != 15 || b.Series[1].Meta["pod"] != "x" {
		t.Fatalf("original %+v\nrestored %+v", a.Series, b.Series)
	}

	bad := r
	bad.Series = map[uint64]SeriesState{1: {Path: "/a", ID: 1}, 2: {Path: "/a", ID: 2}}
	if _, err := RestoreState(Limits{}, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate path: err %v", err)
	}
	bad = r
	bad.Applied = 0
	if _, err := RestoreState(Limits{}, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("no applied seq: err %v", err)
	}
}
