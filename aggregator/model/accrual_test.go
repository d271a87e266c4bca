package model

import (
	"math"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/pennyhq/penny/kvraft"
)

// t0 is on a minute boundary; ms is a time after it.
func ms(d time.Duration) int64 { return Ms(t0.Add(d).UnixNano()) }

func TestBoundary(t *testing.T) {
	b := Ms(t0.UnixNano())
	tests := []struct {
		tms, want int64
	}{
		{b, b - MinuteMs}, // a sample on the boundary belongs to the minute that ends there
		{b + 1, b},
		{b + MinuteMs - 1, b},
		{b + MinuteMs, b},
		{b + MinuteMs + 1, b + MinuteMs},
		{0, -MinuteMs},
		{1, 0},
		{-1, -MinuteMs},
		{-MinuteMs, -2 * MinuteMs},
	}
	for _, tt := range tests {
		if got := Boundary(tt.tms); got != tt.want {
			t.Errorf("Boundary(%d) = %d, want %d", tt.tms, got, tt.want)
		}
	}
}

// frame applies one frame of the series in changed at t0+at.
func frame(t *testing.T, st *NodeState, inc, seq uint64, at time.Duration, keyframe bool, changed []SeriesState, removed ...string) (*NodeState, *Plan) {
	t.Helper()
	u := &Update{Node: "n", Incarnation: inc, Seq: seq, Time: t0.Add(at), Interval: time.Second, Keyframe: keyframe,
		Changed: changed, Removed: removed}
	p, err := PlanUpdate(st, u, t0)
	if err != nil {
		t.Fatal(err)
	}
	return p.Next, p
}

func gauge(path string, rss, cache, ws int64, cpu, inet, cluster uint64) SeriesState {
	return SeriesState{Path: path, RSSBytes: rss, PageCacheBytes: cache, WorkingSetBytes: ws,
		Total: Counters{CPUUsageUsec: cpu, TxInternetBytes: inet, TxClusterBytes: cluster}}
}

func finals(t *testing.T, p *Plan) map[string]*Final {
	t.Helper()
	out := map[string]*Final{}
	for _, op := range p.Ops {
		if _, _, _, path, err := ParseGoneKey(op.Key); err == nil {
			f, err := DecodeFinal(op.Value)
			if err != nil {
				t.Fatal(err)
			}
			if f.Path != path {
				t.Errorf("final record of %s under the key of %s", f.Path, path)
			}
			out[path] = f
		}
	}
	return out
}

func TestAccrualsIntegrateSampleAndHold(t *testing.T) {
	st := &NodeState{Node: "n"}
	// 12:00:50 the series appears with RSS 100, cache 10; 12:00:55 RSS
	// 300; 12:01:05 (across the boundary) RSS 50, cpu +2000µs; then it is
	// left out of frames (unchanged) until 12:01:30.
	st, _ = frame(t, st, 1, 1, 50*time.Second, true, []SeriesState{gauge("/a", 100, 10, 70, 1000, 5, 1)})
	st, _ = frame(t, st, 1, 2, 55*time.Second, false, []SeriesState{gauge("/a", 300, 10, 70, 1000, 5, 1)})
	st, _ = frame(t, st, 1, 3, 65*time.Second, false, []SeriesState{gauge("/a", 50, 10, 70, 3000, 7, 1)})
	st, _ = frame(t, st, 1, 4, 90*time.Second, false, nil)
	s := st.Series["/a"]
	if s.Accrual.Born != t0.Add(50*time.Second).UnixNano() {
		t.Errorf("born %d", s.Accrual.Born)
	}
	b1 := ms(time.Minute)
	// At the boundary 12:01:00: 100 for 5s, 300 for 5s.
	at, ok := s.CumulativeAt(b1)
	want := Cumulative{ObservedMs: 10_000, RSS: Int128{Lo: 100*5000 + 300*5000}, PageCache: Int128{Lo: 10 * 10_000},
		WorkingSet: Int128{Lo: 70 * 10_000}, CPUUsec: 1000, TxInternet: 5, TxCluster: 1}
	if !ok || at != want {
		t.Errorf("at 12:01:00: %+v %v, want %+v", at, ok, want)
	}
	// At 12:01:30, held: 300 until 12:01:05, then 50.
	at, ok = s.CumulativeAt(ms(90 * time.Second))
	want = Cumulative{ObservedMs: 40_000, RSS: Int128{Lo: 100*5000 + 300*10_000 + 50*25_000},
		PageCache: Int128{Lo: 10 * 40_000}, WorkingSet: Int128{Lo: 70 * 40_000}, CPUUsec: 3000, TxInternet: 7, TxCluster: 1}
	if !ok || at != want {
		t.Errorf("at 12:01:30: %+v %v, want %+v", at, ok, want)
	}
	// Any other earlier time is unknown.
	if _, ok := s.CumulativeAt(ms(62 * time.Second)); ok {
		t.Error("12:01:02 answered")
	}
	// The node was observed from its first frame.
	if o, ok := st.Agent.ObservedAt(b1, NoCap); !ok || o != 10_000 {
		t.Errorf("node observed at the boundary %d %v", o, ok)
	}
	if o, ok := st.Agent.ObservedAt(ms(95*time.Second), NoCap); !ok || o != 45_000 {
		t.Errorf("node observed at 12:01:35 %d %v", o, ok)
	}
}

func TestFinalRecords(t *testing.T) {
	keep := gauge("/keep", 1, 0, 0, 0, 0, 0)
	tests := []struct {
		name string
		// second is applied at 12:00:20 (incarnation 1 unless inc says)
		inc      uint64
		keyframe bool
		changed  []SeriesState
		removed  []string
		// want is the final record of /a, nil for none
		wantEnd time.Duration
		wantCPU uint64
		none    bool
	}{
		{name: "removed", changed: []SeriesState{keep}, removed: []string{"/a"}, wantEnd: 20 * time.Second, wantCPU: 500},
		{name: "left out of a keyframe", keyframe: true, changed: []SeriesState{keep}, wantEnd: 20 * time.Second, wantCPU: 500},
		{name: "agent restarted", inc: 2, keyframe: true, changed: []SeriesState{keep, gauge("/a", 7, 0, 0, 10, 0, 0)},
			wantEnd: 11 * time.Second, wantCPU: 500}, // last sample 12:00:10 held one interval
		{name: "counters went back", changed: []SeriesState{keep, gauge("/a", 7, 0, 0, 10, 0, 0)},
			wantEnd: 20 * time.Second, wantCPU: 500},
		{name: "changed", changed: []SeriesState{keep, gauge("/a", 7, 0, 0, 900, 0, 0)}, none: true},
		{name: "unchanged", changed: []SeriesState{keep}, none: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &NodeState{Node: "n"}
			st, _ = frame(t, st, 1, 1, 0, true, []SeriesState{keep, gauge("/a", 100, 0, 0, 200, 0, 0)})
			st, _ = frame(t, st, 1, 2, 10*time.Second, false, []SeriesState{gauge("/a", 100, 0, 0, 500, 0, 0)})
			inc := max(tt.inc, 1)
			_, p := frame(t, st, inc, 3, 20*time.Second, tt.keyframe, tt.changed, tt.removed...)
			f := finals(t, p)
			if tt.none {
				if len(f) != 0 {
					t.Fatalf("final records %v", f)
				}
				return
			}
			a := f["/a"]
			if wantN := 1 + int(inc-1); a == nil || len(f) != wantN { // a restart ends /keep too
				t.Fatalf("final records %v, want /a's and %d in all", f, wantN)
			}
			end := tt.wantEnd
			c, ok := a.CumulativeAt(ms(end))
			want := Cumulative{ObservedMs: uint64(end / time.Millisecond), RSS: Int128{Lo: 100 * uint64(end/time.Millisecond)},
				CPUUsec: tt.wantCPU}
			if a.EndMs != ms(end) || !ok || c != want {
				t.Errorf("final: end %d, values %+v %v; want end %d, %+v", a.EndMs, c, ok, ms(end), want)
			}
			if a.Accrual.Born != t0.UnixNano() {
				t.Errorf("born %d", a.Accrual.Born)
			}
		})
	}
}

// TestFinalRecordsNewLifetime checks that a series that restarts starts
// again from zero.
func TestFinalRecordsNewLifetime(t *testing.T) {
	st := &NodeState{Node: "n"}
	st, _ = frame(t, st, 1, 1, 0, true, []SeriesState{gauge("/a", 100, 0, 0, 200, 0, 0)})
	st, _ = frame(t, st, 2, 1, 30*time.Second, true, []SeriesState{gauge("/a", 5, 0, 0, 10, 0, 0)})
	s := st.Series["/a"]
	c, ok := s.CumulativeAt(ms(40 * time.Second))
	if want := (Cumulative{ObservedMs: 10_000, RSS: Int128{Lo: 5 * 10_000}, CPUUsec: 10}); !ok || c != want {
		t.Errorf("new lifetime at 12:00:40: %+v, want %+v", c, want)
	}
	// The node was observed 1s of the 30s gap: its last sample held one
	// interval.
	if o, _ := st.Agent.ObservedAt(ms(30*time.Second), NoCap); o != 1000 {
		t.Errorf("node observed %d ms, want 1000", o)
	}
	if st.Agent.Accrual.Born != t0.UnixNano() || st.Agent.Accrual.IncarnationStart != t0.Add(30*time.Second).UnixNano() {
		t.Errorf("node accrual %+v", st.Agent.Accrual)
	}
}

// TestAccrualsOfOlderValues: a series written before accruals starts a
// lifetime at its next sample, without what its counters held before.
func TestAccrualsOfOlderValues(t *testing.T) {
	old := &Stored{Path: "/a", Time: t0.UnixNano(), RSSBytes: 10, Total: Counters{CPUUsageUsec: 1e9, TxInternetBytes: 1e6}}
	v, err := msgpack.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	st, err := LoadNode("n", []kvraft.KV{{Key: SeriesKey("n", "/a"), Value: v}})
	if err != nil {
		t.Fatal(err)
	}
	st.Agent = &Agent{Incarnation: 1, Seq: 1, Time: t0.UnixNano(), Interval: int64(time.Second)}
	st, _ = frame(t, st, 1, 2, time.Second, false, []SeriesState{gauge("/a", 10, 0, 0, 1e9+300, 1e6+7, 0)})
	c, _ := st.Series["/a"].CumulativeAt(ms(2 * time.Second))
	if want := (Cumulative{ObservedMs: 1000, RSS: Int128{Lo: 10 * 1000}, CPUUsec: 300, TxInternet: 7}); c != want {
		t.Errorf("%+v, want %+v", c, want)
	}
}

// TestRequestsAccrue checks that the requests counter accrues as CPU time
// does: what a lifetime answered, exact at a minute boundary, after a
// baseline and in a final record.
func TestRequestsAccrue(t *testing.T) {
	req := func(cpu, n uint64) SeriesState {
		s := gauge("/a", 10, 0, 0, cpu, 0, 0)
		s.Total.Requests = n
		return s
	}
	tests := []struct {
		name string
		// frames at 50 s and 70 s (the boundary at 60 s between them),
		// the first one of an incarnation whose earlier frames the store
		// never saw when unseen.
		unseen     bool
		n50, n70   uint64
		atBoundary uint64 // requests of the lifetime at 60 s
		at70       uint64
	}{
		{name: "new series", n50: 100, n70: 160, atBoundary: 100, at70: 160},
		{name: "baseline", unseen: true, n50: 5000, n70: 5040, atBoundary: 0, at70: 40},
		{name: "no requests", n50: 0, n70: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &NodeState{Node: "n"}
			seq := uint64(1)
			if tt.unseen {
				seq = 9
			}
			st, _ = frame(t, st, 1, seq, 50*time.Second, true, []SeriesState{req(1, tt.n50)})
			st, _ = frame(t, st, 1, seq+1, 70*time.Second, false, []SeriesState{req(2, tt.n70)})
			s := st.Series["/a"]
			if c, ok := s.CumulativeAt(ms(60 * time.Second)); !ok || c.Requests != tt.atBoundary {
				t.Errorf("at the boundary: %d requests (%v), want %d", c.Requests, ok, tt.atBoundary)
			}
			if c, _ := s.CumulativeAt(ms(70 * time.Second)); c.Requests != tt.at70 {
				t.Errorf("at 70 s: %d requests, want %d", c.Requests, tt.at70)
			}
			// The series goes: its final record keeps the requests.
			_, p := frame(t, st, 1, seq+2, 80*time.Second, true, nil)
			f := finals(t, p)["/a"]
			if f == nil {
				t.Fatal("no final record")
			}
			if c, _ := f.CumulativeAt(f.EndMs); c.Requests != tt.at70 {
				t.Errorf("final record: %d requests, want %d", c.Requests, tt.at70)
			}
		})
	}
}

func TestInt128(t *testing.T) {
	// A TiB held for 90 days, in byte-milliseconds, overflows 64 bits.
	tib := uint64(1) << 40
	days90 := uint64(90 * 24 * time.Hour / time.Millisecond)
	v := Mul128(tib, days90)
	if v.Hi == 0 {
		t.Fatal("expected more than 64 bits")
	}
	if got, want := v.Div(1000*3600), tib*(days90/3600/1000); got != want {
		t.Errorf("TiB-hours×2^40: %d, want %d", got, want)
	}
	for _, x := range []Int128{{}, {Lo: 1}, {Lo: math.MaxUint64}, v, {Hi: math.MaxUint64, Lo: math.MaxUint64}} {
		b, err := msgpack.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		var y Int128
		if err := msgpack.Unmarshal(b, &y); err != nil || y != x {
			t.Errorf("%+v: round trip %+v %v", x, y, err)
		}
	}
	if s := (Int128{Hi: math.MaxUint64, Lo: math.MaxUint64}).Add64(1); s != (Int128{math.MaxUint64, math.MaxUint64}) {
		t.Errorf("saturation: %+v", s)
	}
	if _, ok := (Int128{Lo: 1}).Sub(Int128{Lo: 2}); ok {
		t.Error("1-2 ok")
	}
	if d := (Int128{Hi: 5}).Div(5); d != math.MaxUint64 {
		t.Errorf("overflowing division = %d", d)
	}
}

func TestAccrualRoundTrip(t *testing.T) {
	a := Accrual{Born: 7, ObservedMs: 1, RSS: Int128{Hi: 3, Lo: 4}, WorkingSet: Int128{Lo: 9},
		Since: Since{ObservedMs: 2, CPUUsec: 5, Requests: 13}, BaseTxCluster: 11, BaseRequests: 17}
	s := &Stored{Path: "/a", Accrual: a}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeStored("/a", b)
	if err != nil || got.Accrual != a {
		t.Errorf("round trip %+v %v, want %+v", got.Accrual, err, a)
	}
	// Elements a newer replica appended are skipped: the known ones
	// read the same.
	var known []any
	if err := msgpack.Unmarshal(mustMarshal(t, a), &known); err != nil || len(known) != accrualFields {
		t.Fatalf("accrual as an array: %v %v", known, err)
	}
	newer := append(known, uint64(99), "a field of the future")
	b, _ = msgpack.Marshal(map[string]any{"ac": newer, "t": 5})
	if got, err := DecodeStored("/a", b); err != nil || got.Accrual != a || got.Time != 5 {
		t.Errorf("accrual with %d elements: %+v %v, want %+v", len(newer), got, err, a)
	}
	// Past maxAccrualFields, refused.
	long := make([]uint64, maxAccrualFields+1)
	b, _ = msgpack.Marshal(map[string]any{"ac": long})
	if _, err := DecodeStored("/a", b); err == nil {
		t.Errorf("accruals of %d elements accepted", maxAccrualFields+1)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoneKeys(t *testing.T) {
	k := GoneKey("node-1", 7, 42, "/kubepods/a b")
	node, inc, seq, path, err := ParseGoneKey(k)
	if err != nil || node != "node-1" || inc != 7 || seq != 42 || path != "/kubepods/a b" {
		t.Fatalf("ParseGoneKey = %q %d %d %q %v", node, inc, seq, path, err)
	}
	for _, bad := range []string{"x", "penny/v1/gone/", "penny/v1/gone/n/", "penny/v1/gone/n/0000000000000007000000000000002a",
		"penny/v1/gone/n/000000000000000z000000000000002a/a"} {
		if _, _, _, _, err := ParseGoneKey([]byte(bad)); err == nil {
			t.Errorf("ParseGoneKey(%q) accepted", bad)
		}
	}
}

func FuzzDecodeFinal(f *testing.F) {
	v, _ := final(&Stored{Path: "/a", Time: t0.UnixNano(), RSSBytes: 5, Meta: map[string]string{"k": "v"},
		Accrual: Accrual{Born: 1, ObservedMs: 3}}, ms(time.Second), NoCap).Encode()
	f.Add(v)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		fin, err := DecodeFinal(b)
		if err != nil {
			return
		}
		if _, err := fin.Encode(); err != nil {
			t.Fatal(err)
		}
	})
}
