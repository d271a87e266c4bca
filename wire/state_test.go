package wire

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0).UTC()

func hdr(agent string, inc, seq, base uint64) Header {
	return Header{Keyframe: base == 0, AgentID: agent, Incarnation: inc, Seq: seq, Base: base}
}

func key(inc, seq uint64, series ...SeriesUpdate) *Frame {
	return &Frame{Header: hdr(testAgent, inc, seq, 0), Time: t0.Add(time.Duration(seq) * time.Second),
		Interval: time.Second, MetaSet: true, Series: series}
}

func delta(inc, seq uint64, removed []uint64, series ...SeriesUpdate) *Frame {
	return &Frame{Header: hdr(testAgent, inc, seq, seq-1), Time: t0.Add(time.Duration(seq) * time.Second),
		Interval: time.Second, Removed: removed, Series: series}
}

func added(ref uint64, path string, id uint64, v Values) SeriesUpdate {
	return SeriesUpdate{Ref: ref, New: true, Path: path, ID: id, MetaSet: true, Values: v}
}

func changed(ref uint64, v Values) SeriesUpdate { return SeriesUpdate{Ref: ref, Values: v} }

func bucket(i int, n uint64) Hist {
	var h Hist
	h.Buckets[i], h.Count, h.Sum = n, n, n<<i
	return h
}

// TestStateApply applies frame sequences; a frame refused must leave the
// state exactly as it was.
func TestStateApply(t *testing.T) {
	base := []*Frame{key(1, 1, added(0, "/a", 10, Values{RSSBytes: 100, RxBytes: 5}), added(1, "/b", 11, Values{}))}
	type step struct {
		f    *Frame
		want error
	}
	tests := []struct {
		name  string
		lim   Limits
		steps []step
	}{
		{name: "in order", steps: []step{
			{delta(1, 2, nil, changed(0, Values{RSSBytes: -100, RxBytes: 1})), nil},
			{delta(1, 3, []uint64{1}, added(2, "/c", 12, Values{})), nil},
		}},
		{name: "duplicate delta", steps: []step{
			{delta(1, 2, nil, changed(0, Values{RxBytes: 1})), nil},
			{delta(1, 2, nil, changed(0, Values{RxBytes: 1})), ErrDuplicate},
		}},
		{name: "replayed keyframe", steps: []step{
			{delta(1, 2, nil), nil},
			{base[0], ErrDuplicate},
		}},
		{name: "gap then in order", steps: []step{
			{delta(1, 3, nil, changed(0, Values{RxBytes: 1})), ErrGap},
			{delta(1, 2, nil, changed(0, Values{RxBytes: 1})), nil},
			{delta(1, 3, nil, changed(0, Values{RxBytes: 1})), nil},
		}},
		{name: "later keyframe recovers", steps: []step{
			{delta(1, 5, nil), ErrGap},
			{key(1, 5, added(0, "/z", 99, Values{})), nil},
			{delta(1, 6, nil, changed(0, Values{TxBytes: 1})), nil},
		}},
		{name: "delta of another incarnation", steps: []step{
			{delta(2, 2, nil), ErrNeedKeyframe},
		}},
		{name: "new incarnation", steps: []step{
			{key(2, 1, added(5, "/a", 10, Values{})), nil},
			{delta(1, 2, nil), ErrNeedKeyframe},
			{delta(2, 2, nil, changed(5, Values{RxBytes: 1})), nil},
		}},
		{name: "other agent", steps: []step{
			{&Frame{Header: hdr("node-b", 1, 9, 0), Time: t0, MetaSet: true}, ErrAgentMismatch},
		}},
		{name: "change of unknown ref", steps: []step{
			{delta(1, 2, nil, changed(7, Values{RxBytes: 1})), ErrInconsistent},
		}},
		{name: "removal of unknown ref", steps: []step{
			{delta(1, 2, []uint64{7}), ErrInconsistent},
		}},
		{name: "removal then change", steps: []step{
			{delta(1, 2, []uint64{1}), nil},
			{delta(1, 3, nil, changed(1, Values{RxBytes: 1})), ErrInconsistent},
		}},
		{name: "new series on a live ref", steps: []step{
			{delta(1, 2, nil, added(1, "/c", 12, Values{})), ErrInconsistent},
		}},
		{name: "new series on a live path", steps: []step{
			{delta(1, 2, nil, added(2, "/a", 12, Values{})), ErrInconsistent},
		}},
		{name: "new series on a live cgroup id", steps: []step{
			{delta(1, 2, nil, added(2, "/c", 10, Values{})), ErrInconsistent},
		}},
		{name: "path freed in the same frame", steps: []step{
			{delta(1, 2, []uint64{0}, added(2, "/a", 10, Values{RxBytes: 1})), nil},
		}},
		{name: "two new series on one path", steps: []step{
			{delta(1, 2, nil, added(2, "/c", 12, Values{}), added(3, "/c", 13, Values{})), ErrInconsistent},
		}},
		{name: "keyframe with a duplicate id", steps: []step{
			{key(1, 2, added(0, "/a", 1, Values{}), added(1, "/b", 1, Values{})), ErrInconsistent},
		}},
		{name: "gauge turns negative", steps: []step{
			{delta(1, 2, nil, changed(0, Values{RSSBytes: -101})), ErrInconsistent},
		}},
		{name: "gauge overflows", steps: []step{
			{delta(1, 2, nil, changed(0, Values{RSSBytes: math.MaxInt64})), ErrInconsistent},
		}},
		{name: "counter overflows", steps: []step{
			{delta(1, 2, nil, changed(0, Values{RxBytes: math.MaxUint64 - 4})), ErrInconsistent},
		}},
		{name: "histogram bucket overflows", steps: []step{
			{delta(1, 2, nil, changed(0, Values{SRTT: bucket(3, 1)})), nil},
			{delta(1, 3, nil, changed(0, Values{SRTT: Hist{Buckets: [HistBuckets]uint64{3: math.MaxUint64}}})), ErrInconsistent},
		}},
		{name: "too many live series", lim: Limits{MaxSeries: 3}, steps: []step{
			{delta(1, 2, nil, added(2, "/c", 12, Values{})), nil},
			{delta(1, 3, nil, added(3, "/d", 13, Values{})), ErrInconsistent},
		}},
		{name: "keyframe with a removal", steps: []step{
			{&Frame{Header: hdr(testAgent, 1, 2, 0), Time: t0, MetaSet: true, Removed: []uint64{0}}, ErrCorrupt},
		}},
		{name: "keyframe series not new", steps: []step{
			{key(1, 2, changed(0, Values{})), ErrCorrupt},
		}},
		{name: "ref twice", steps: []step{
			{delta(1, 2, []uint64{0}, changed(0, Values{RxBytes: 1})), ErrCorrupt},
		}},
		{name: "negative absolute gauge", steps: []step{
			{delta(1, 2, nil, added(2, "/c", 12, Values{Processes: -1})), ErrCorrupt},
		}},
		{name: "too many series in a frame", lim: Limits{MaxSeries: 2}, steps: []step{
			{delta(1, 2, []uint64{0, 1}, added(2, "/c", 12, Values{}), added(3, "/d", 13, Values{}),
				added(4, "/e", 14, Values{})), ErrTooLarge},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newTestState(t, tt.lim)
			if err := st.Apply(base[0]); err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				before, applied, inc := st.Snapshot(), st.Applied(), st.Incarnation()
				err := st.Apply(s.f)
				if !errors.Is(err, s.want) || (err == nil) != (s.want == nil) {
					t.Fatalf("step %d: %v, want %v", i, err, s.want)
				}
				if err != nil {
					if !reflect.DeepEqual(before, st.Snapshot()) || applied != st.Applied() || inc != st.Incarnation() {
						t.Fatalf("step %d: refused frame changed the state", i)
					}
					continue
				}
				if st.Applied() != s.f.Seq || st.Incarnation() != s.f.Incarnation {
					t.Fatalf("step %d: applied %d of %#x", i, st.Applied(), st.Incarnation())
				}
				if err := st.Snapshot().Validate(tt.lim); err != nil {
					t.Fatalf("step %d: state invalid: %v", i, err)
				}
			}
		})
	}
}

// TestStateValues checks the arithmetic of deltas on a known sequence.
func TestStateValues(t *testing.T) {
	st := newTestState(t, Limits{})
	v := Values{Processes: 2, RSSBytes: 1 << 30, PageCacheBytes: 7, RxBytes: 100, SRTT: bucket(5, 2)}
	frames := []*Frame{
		key(1, 1, added(3, "/a", 10, v)),
		delta(1, 2, nil, SeriesUpdate{Ref: 3, MetaSet: true, Meta: map[string]string{"pod": "x"},
			Values: Values{Processes: -2, RSSBytes: -(1 << 29), RxBytes: 1, SRTT: bucket(5, 1), Connect: bucket(0, 4)}}),
	}
	frames[1].MetaSet, frames[1].Meta = true, map[string]string{"agent": "v1"}
	for _, f := range frames {
		if err := st.Apply(f); err != nil {
			t.Fatal(err)
		}
	}
	want := &Snapshot{Time: frames[1].Time, Interval: time.Second, Meta: map[string]string{"agent": "v1"},
		Series: []SeriesState{{Path: "/a", ID: 10, Meta: map[string]string{"pod": "x"}, Values: Values{
			Processes: 0, RSSBytes: 1 << 29, PageCacheBytes: 7, RxBytes: 101, SRTT: bucket(5, 3), Connect: bucket(0, 4)}}}}
	requireSnapshot(t, st.Snapshot(), want)
	// Clearing the metadata.
	f := delta(1, 3, nil, SeriesUpdate{Ref: 3, MetaSet: true})
	f.MetaSet = true
	if err := st.Apply(f); err != nil {
		t.Fatal(err)
	}
	want.Time, want.Meta, want.Series[0].Meta = f.Time, nil, nil
	requireSnapshot(t, st.Snapshot(), want)
	if st.Len() != 1 || st.AgentID() != testAgent {
		t.Fatalf("Len %d, AgentID %q", st.Len(), st.AgentID())
	}
}

func TestStateSnapshotIsACopy(t *testing.T) {
	st := newTestState(t, Limits{})
	if st.Snapshot() != nil {
		t.Fatal("snapshot before the first frame")
	}
	u := added(0, "/a", 1, Values{})
	u.Meta = map[string]string{"k": "v"}
	f := key(1, 1, u)
	if err := st.Apply(f); err != nil {
		t.Fatal(err)
	}
	f.Series[0].Meta["k"] = "changed by the caller"
	s := st.Snapshot()
	s.Series[0].Meta["k"] = "changed by the reader"
	if got := st.Snapshot().Series[0].Meta["k"]; got != "v" {
		t.Fatalf("state's metadata changed to %q", got)
	}
}

func TestNewStateLimits(t *testing.T) {
	if _, err := NewState(Limits{MaxSeries: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NewState with a negative limit: %v", err)
	}
}
