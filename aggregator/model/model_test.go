package model

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func hist(samples ...uint64) histogram.Hist {
	var h histogram.Hist
	for _, s := range samples {
		h.Observe(s)
	}
	return h
}

func series(path string, rss int64, rx uint64, srtt ...uint64) SeriesState {
	return SeriesState{Path: path, CgroupID: uint64(len(path)), Processes: 1, RSSBytes: rss,
		Total: Counters{RxBytes: rx, RxPackets: rx / 100}, SRTT: hist(srtt...)}
}

// apply plans u on st, checks the plan is well formed, and returns the
// next state and the keys written and deleted.
func apply(t *testing.T, st *NodeState, u *Update, now time.Time) (*NodeState, []string, []string) {
	t.Helper()
	p, err := PlanUpdate(st, u, now)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if string(p.AgentKey) != string(AgentKey(u.Node)) || string(p.Expect) != string(st.AgentValue) {
		t.Fatalf("condition %q == %q", p.AgentKey, p.Expect)
	}
	last := p.Ops[len(p.Ops)-1]
	if string(last.Key) != string(AgentKey(u.Node)) || last.Delete {
		t.Fatalf("the agent record must be written last: %q", last.Key)
	}
	var puts, dels []string
	for _, op := range p.Ops[:len(p.Ops)-1] {
		if _, kind, path, err := ParseKey(op.Key); err == nil && kind == KindMeta {
			continue // TestMetaKeys
		} else if err == nil && kind == KindMarks {
			checkMarksOp(t, p.Next.Series[path], op) // TestMarksKeys
			continue
		}
		if _, _, _, _, err := ParseGoneKey(op.Key); err == nil {
			continue // TestFinalRecords
		}
		_, path, err := ParseSeriesKey(op.Key)
		if err != nil {
			t.Fatal(err)
		}
		if op.Delete {
			dels = append(dels, path)
		} else {
			puts = append(puts, path)
			if _, err := DecodeStored(path, op.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p.Next, puts, dels
}

func TestPlanUpdate(t *testing.T) {
	st := &NodeState{Node: "node-1"}
	// A keyframe creates everything.
	st, puts, _ := apply(t, st, &Update{Node: "node-1", Incarnation: 7, Seq: 1, Time: t0, Interval: time.Second,
		Keyframe: true, Changed: []SeriesState{series("/a", 100, 1000, 40, 40), series("/b", 200, 0)}}, t0)
	if len(puts) != 2 || st.Agent.Seq != 1 || st.Agent.Series != 2 {
		t.Fatalf("keyframe: puts %v, agent %+v", puts, st.Agent)
	}
	if l := st.Series["/a"].Last; l.Counters.RxBytes != 1000 || l.SRTT.Count != 2 {
		t.Errorf("first Last of a new series = %+v", l)
	}

	// A delta: /a changes, /b is gone, /c appears.
	st, puts, dels := apply(t, st, &Update{Node: "node-1", Incarnation: 7, Seq: 2, Time: t0.Add(time.Second),
		Interval: time.Second, Changed: []SeriesState{series("/a", 150, 1500, 40, 40, 3000), series("/c", 1, 1)},
		Removed: []string{"/b"}}, t0)
	if len(puts) != 2 || len(dels) != 1 || dels[0] != "/b" {
		t.Fatalf("delta: puts %v dels %v", puts, dels)
	}
	if l := st.Series["/a"].Last; l.Counters.RxBytes != 500 || l.SRTT.Count != 1 || l.SRTT.Buckets[histogram.Bucket(3000)] != 1 {
		t.Errorf("Last of /a = %+v", l)
	}
	if m := marksOf(t, st.Series["/a"]); len(m) != 1 || m[0].Time != t0.UnixNano() {
		t.Errorf("marks = %+v", st.Series["/a"].Marks)
	}

	// A replayed or old frame is refused.
	for _, seq := range []uint64{1, 2} {
		_, err := PlanUpdate(st, &Update{Node: "node-1", Incarnation: 7, Seq: seq, Time: t0}, t0)
		if !errors.Is(err, ErrStale) {
			t.Errorf("seq %d: err %v, want ErrStale", seq, err)
		}
	}

	// A keyframe restating /a unchanged writes nothing for it and removes
	// what it does not list.
	a := st.Series["/a"]
	same := SeriesState{Path: "/a", CgroupID: a.CgroupID, Processes: a.Processes, RSSBytes: a.RSSBytes,
		Total: a.Total, SRTT: a.SRTT.Hist, Connect: a.Connect.Hist}
	st, puts, dels = apply(t, st, &Update{Node: "node-1", Incarnation: 7, Seq: 3, Time: t0.Add(2 * time.Second),
		Interval: time.Second, Keyframe: true, Changed: []SeriesState{same}}, t0)
	if len(puts) != 0 || len(dels) != 1 || dels[0] != "/c" || len(st.Series) != 1 {
		t.Fatalf("restating keyframe: puts %v dels %v", puts, dels)
	}

	// A new incarnation (the agent restarted) starts counting again.
	st, _, _ = apply(t, st, &Update{Node: "node-1", Incarnation: 8, Seq: 1, Time: t0.Add(3 * time.Second),
		Interval: time.Second, Keyframe: true, Changed: []SeriesState{series("/a", 10, 7)}}, t0)
	if l := st.Series["/a"]; l.Last.Counters.RxBytes != 7 || len(l.Marks) != 0 {
		t.Errorf("after restart: Last %+v, marks %d", l.Last, len(l.Marks))
	}
}

func TestPlanUpdateRefusesBadInput(t *testing.T) {
	st := &NodeState{Node: "n"}
	tests := []struct {
		name string
		u    Update
	}{
		{"bad node", Update{Node: "Bad_Node"}},
		{"relative path", Update{Node: "n", Changed: []SeriesState{{Path: "a"}}}},
		{"path twice", Update{Node: "n", Changed: []SeriesState{{Path: "/a"}, {Path: "/a"}}}},
		{"changed and removed", Update{Node: "n", Changed: []SeriesState{{Path: "/a"}}, Removed: []string{"/a"}}},
		{"other node", Update{Node: "m"}},
	}
	for _, tt := range tests {
		if _, err := PlanUpdate(st, &tt.u, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestMarksCoverTheWindow(t *testing.T) {
	st := &NodeState{Node: "n"}
	var rx uint64
	for i := range 300 { // five minutes of one-second frames
		rx += 100
		st, _, _ = apply(t, st, &Update{Node: "n", Incarnation: 1, Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Second),
			Interval: time.Second, Keyframe: i == 0, Changed: []SeriesState{series("/a", 1, rx)}}, t0)
	}
	s := st.Series["/a"]
	marks := marksOf(t, s)
	if len(marks) < 2 || len(marks) > maxMarks+1 {
		t.Fatalf("%d marks", len(marks))
	}
	if oldest := time.Duration(s.Time - marks[0].Time); oldest < MaxWindow {
		t.Errorf("oldest mark %s old, want at least %s", oldest, MaxWindow)
	}
	for _, w := range []time.Duration{30 * time.Second, time.Minute, MaxWindow} {
		c := View("n", st.Agent, s, w)
		span := time.Duration(c.WindowSeconds * float64(time.Second))
		if span < w || span > w+MarkEvery {
			t.Errorf("window %s covers %s", w, span)
		}
		if want := uint64(span/time.Second) * 100; c.NetRxBytes != want {
			t.Errorf("window %s: rx %d, want %d", w, c.NetRxBytes, want)
		}
	}
}

func TestView(t *testing.T) {
	st := &NodeState{Node: "n"}
	st, _, _ = apply(t, st, &Update{Node: "n", Incarnation: 1, Seq: 1, Time: t0, Interval: time.Second, Keyframe: true,
		Changed: []SeriesState{series("/busy", 5, 100, 40), series("/idle", 6, 0)}}, t0)
	busy := series("/busy", 7, 300, 40, 40, 40)
	busy.Total.PageCacheAccesses, busy.Total.PageCacheMisses = 100, 10
	st, _, _ = apply(t, st, &Update{Node: "n", Incarnation: 1, Seq: 2, Time: t0.Add(time.Second), Interval: time.Second,
		Changed: []SeriesState{busy}}, t0)

	c := View("n", st.Agent, st.Series["/busy"], 0)
	if c.RSSBytes != 7 || c.NetRxBytes != 200 || c.TCPSRTTP50Seconds == nil || *c.PageCacheHitRatio != 0.9 ||
		c.WindowSeconds != 1 || c.Updated != "2026-11-25T12:00:01Z" {
		t.Errorf("busy = %+v", c)
	}
	if p := *c.TCPSRTTP50Seconds; p < 32e-6 || p > 64e-6 {
		t.Errorf("p50 = %v", p)
	}
	// Unchanged in the last frame: current values, nothing in the interval.
	c = View("n", st.Agent, st.Series["/idle"], 0)
	if c.RSSBytes != 6 || c.NetRxBytes != 0 || c.TCPSRTTP50Seconds != nil || c.PageCacheHitRatio != nil ||
		c.Updated != "2026-11-25T12:00:01Z" {
		t.Errorf("idle = %+v", c)
	}
}

func TestKeys(t *testing.T) {
	k := SeriesKey("node-1", "/kubepods/pod1/c 1")
	node, path, err := ParseSeriesKey(k)
	if err != nil || node != "node-1" || path != "/kubepods/pod1/c 1" {
		t.Fatalf("ParseSeriesKey = %q %q %v", node, path, err)
	}
	if n, kind, _, err := ParseKey(AgentKey("node-1")); err != nil || n != "node-1" || kind != KindAgent {
		t.Fatalf("ParseKey(agent) = %q %v %v", n, kind, err)
	}
	for _, bad := range []string{"x", "penny/v1/nodes/", "penny/v1/nodes/n", "penny/v1/nodes/n/other", "penny/v1/nodes//agent"} {
		if _, _, _, err := ParseKey([]byte(bad)); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "UPPER", "-lead", "trail-", "a..b", "under_score", string(make([]byte, 254))} {
		if ValidNode(bad) == nil {
			t.Errorf("ValidNode(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"node-1", "ip-10-0-0-1.eu-west-1.compute.internal", "a"} {
		if err := ValidNode(ok); err != nil {
			t.Errorf("ValidNode(%q) = %v", ok, err)
		}
	}
}

func FuzzDecodeStored(f *testing.F) {
	s := &Stored{Path: "/a", SRTT: Hist{hist(1, 40, 3000)}, Marks: []Mark{{Time: 1}}}
	b, _ := s.Encode()
	f.Add(b)
	a, _ := (&Agent{Incarnation: 1, Seq: 2}).Encode()
	f.Add(a)
	f.Add(EncodeMarks(Marks{{Time: 1, Total: Counters{RxBytes: 7}, SRTT: Hist{hist(1, 40)}}, {Time: 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := DecodeStored("/a", b); err == nil {
			if _, err := s.Encode(); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = DecodeAgent(b)
		if m, err := DecodeMarks(b); err == nil {
			back, err := DecodeMarks(EncodeMarks(m))
			if err != nil || !reflect.DeepEqual(back, m) {
				t.Fatalf("checkpoints %+v encoded and decoded: %+v, %v", m, back, err)
			}
		}
	})
}

// TestMetaKeys: a series' metadata has a key of its own, written when it
// changes and deleted with the series, and never in the series value.
func TestMetaKeys(t *testing.T) {
	pod := map[string]string{"k8s.pod.uid": "u1", "k8s.namespace": "shop", "k8s.pod": "web-1"}
	withMeta := func(s SeriesState, m map[string]string) SeriesState { s.Meta = m; return s }
	metaOps := func(p *Plan) (puts, dels []string) {
		t.Helper()
		for _, op := range p.Ops {
			if _, kind, path, _ := ParseKey(op.Key); kind == KindMeta {
				if op.Delete {
					dels = append(dels, path)
					continue
				}
				m, err := DecodeMeta(op.Value)
				if err != nil {
					t.Fatal(err)
				}
				puts = append(puts, path+"="+m["k8s.pod"])
			} else if kind == KindSeries && !op.Delete {
				if b := string(op.Value); len(b) > 0 && containsAny(b, "web-1", "web-2") {
					t.Errorf("series value of %s carries the metadata", path)
				}
			}
		}
		return puts, dels
	}
	steps := []struct {
		name string
		u    Update
		puts []string
		dels []string
	}{
		{"new series with a pod", Update{Keyframe: true, Changed: []SeriesState{
			withMeta(series("/p/a", 1, 0), pod), series("/system.slice/x", 1, 0)}}, []string{"/p/a=web-1"}, nil},
		{"values change, metadata does not", Update{Changed: []SeriesState{withMeta(series("/p/a", 2, 10), pod)}}, nil, nil},
		{"metadata changes", Update{Changed: []SeriesState{withMeta(series("/p/a", 2, 20),
			map[string]string{"k8s.pod.uid": "u1", "k8s.namespace": "shop", "k8s.pod": "web-2"})}}, []string{"/p/a=web-2"}, nil},
		{"metadata cleared", Update{Changed: []SeriesState{series("/p/a", 2, 30)}}, nil, []string{"/p/a"}},
		{"back, then removed", Update{Changed: []SeriesState{withMeta(series("/p/a", 2, 40), pod)}}, []string{"/p/a=web-1"}, nil},
		{"removed", Update{Removed: []string{"/p/a"}}, nil, []string{"/p/a"}},
	}
	st := &NodeState{Node: "node-1"}
	for i, step := range steps {
		u := step.u
		u.Node, u.Incarnation, u.Seq, u.Time, u.Interval = "node-1", 1, uint64(i+1), t0.Add(time.Duration(i)*time.Second), time.Second
		p, err := PlanUpdate(st, &u, t0)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		puts, dels := metaOps(p)
		if !slices.Equal(puts, step.puts) || !slices.Equal(dels, step.dels) {
			t.Errorf("%s: metadata puts %v deletes %v, want %v and %v", step.name, puts, dels, step.puts, step.dels)
		}
		st = p.Next
	}

	// A node loaded from the store has its series' metadata back.
	v, err := (&Stored{Path: "/p/a", CgroupID: 3}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := EncodeMeta(pod)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := LoadNode("node-1", []kvraft.KV{{Key: SeriesKey("node-1", "/p/a"), Value: v}, {Key: MetaKey("node-1", "/p/a"), Value: m}})
	if err != nil || ns.Series["/p/a"].Meta["k8s.pod"] != "web-1" {
		t.Errorf("loaded: %+v, %v", ns, err)
	}
	if _, err := LoadNode("node-1", []kvraft.KV{{Key: SeriesKey("node-1", "/p/a"), Value: v},
		{Key: MetaKey("node-1", "/p/a"), Value: []byte{0xc1}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("corrupt metadata: %v", err)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func cpuSeries(path string, cpuUsec, periods, throttled uint64, psi bool, ws int64) SeriesState {
	s := series(path, 1, 0)
	s.WorkingSetBytes, s.PressureKnown = ws, psi
	s.Total.CPUUsageUsec, s.Total.CPUPeriods, s.Total.CPUThrottledPeriods = cpuUsec, periods, throttled
	s.Total.CPUThrottledUsec = throttled * 1000
	if psi {
		s.Total.CPUPressureSomeUsec, s.Total.MemoryPressureSomeUsec, s.Total.IOPressureSomeUsec = cpuUsec/10, cpuUsec/100, 7
	}
	s.Total.TxBytes = cpuUsec / 10
	s.Total.TxLoopbackBytes, s.Total.TxClusterBytes, s.Total.TxInternetBytes = cpuUsec/20, cpuUsec/40, cpuUsec/40
	return s
}

func TestViewCPU(t *testing.T) {
	st := &NodeState{Node: "n"}
	st, _, _ = apply(t, st, &Update{Node: "n", Incarnation: 1, Seq: 1, Time: t0, Interval: time.Second, Keyframe: true,
		Changed: []SeriesState{cpuSeries("/limited", 1_000_000, 100, 10, true, 5<<20), cpuSeries("/nopsi", 0, 0, 0, false, 0)}}, t0)
	st, _, _ = apply(t, st, &Update{Node: "n", Incarnation: 1, Seq: 2, Time: t0.Add(2 * time.Second), Interval: 2 * time.Second,
		Changed: []SeriesState{cpuSeries("/limited", 1_600_000, 120, 15, true, 6<<20), cpuSeries("/nopsi", 400_000, 0, 0, false, 1<<20)}}, t0)

	c := View("n", st.Agent, st.Series["/limited"], 0)
	if c.CPUUsageSeconds != 0.6 || c.CPUPeriods != 20 || c.CPUThrottledPeriods != 5 || c.CPUThrottledSeconds != 0.005 ||
		c.MemoryWorkingSetBytes != 6<<20 || c.WindowSeconds != 2 {
		t.Errorf("limited: %+v", c.Cgroup)
	}
	if r, ok := c.CPUThrottledRatio(); !ok || r != 0.25 {
		t.Errorf("throttled ratio %v, %v; want 0.25", r, ok)
	}
	if cores, ok := c.CPUCores(c.WindowSeconds); !ok || cores != 0.3 {
		t.Errorf("cores %v, want 0.3", cores)
	}
	if c.CPUPressureSeconds == nil || *c.CPUPressureSeconds != 0.06 || *c.MemoryPressureSeconds != 0.006 || *c.IOPressureSeconds != 0 {
		t.Errorf("pressure %v %v %v", c.CPUPressureSeconds, c.MemoryPressureSeconds, c.IOPressureSeconds)
	}
	if c.NetTxBytes != 60_000 || c.NetTxLoopbackBytes != 30_000 || c.NetTxClusterBytes != 15_000 || c.NetTxInternetBytes != 15_000 {
		t.Errorf("egress %d: %d %d %d", c.NetTxBytes, c.NetTxLoopbackBytes, c.NetTxClusterBytes, c.NetTxInternetBytes)
	}
	n := View("n", st.Agent, st.Series["/nopsi"], 0)
	if n.CPUPressureSeconds != nil || n.MemoryPressureSeconds != nil || n.IOPressureSeconds != nil {
		t.Errorf("pressure without PSI is not null: %v", n.CPUPressureSeconds)
	}
	if _, ok := n.CPUThrottledRatio(); ok || n.CPUUsageSeconds != 0.4 {
		t.Errorf("no limit: ratio present; CPU %v", n.CPUUsageSeconds)
	}

	// Over a window: the increase since the mark a window old.
	for i := 3; i <= 70; i++ {
		st, _, _ = apply(t, st, &Update{Node: "n", Incarnation: 1, Seq: uint64(i), Time: t0.Add(time.Duration(i) * time.Second),
			Interval: time.Second, Changed: []SeriesState{cpuSeries("/limited", 1_600_000+uint64(i-2)*250_000, 120+uint64(i-2)*10,
				15+uint64(i-2), true, 6<<20)}}, t0)
	}
	w := View("n", st.Agent, st.Series["/limited"], 30*time.Second)
	if cores, _ := w.CPUCores(w.WindowSeconds); math.Abs(cores-0.25) > 1e-9 {
		t.Errorf("cores over %vs: %v, want 0.25", w.WindowSeconds, cores)
	}
	if r, _ := w.CPUThrottledRatio(); math.Abs(r-0.1) > 1e-9 {
		t.Errorf("throttled ratio over the window %v, want 0.1", r)
	}
}

// TestStoredKeepsCPU: the new fields survive the store's encoding and the
// way back to the wire's state.
func TestStoredKeepsCPU(t *testing.T) {
	ss := cpuSeries("/a", 123, 4, 5, true, 77)
	st, _, _ := apply(t, &NodeState{Node: "n"}, &Update{Node: "n", Incarnation: 1, Seq: 1, Time: t0, Interval: time.Second,
		Keyframe: true, Changed: []SeriesState{ss}}, t0)
	b, err := st.Series["/a"].Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeStored("/a", b)
	if err != nil {
		t.Fatal(err)
	}
	w := back.WireState()
	again := FromWire(0, &w)
	if again.Total != ss.Total || again.WorkingSetBytes != 77 || !again.PressureKnown {
		t.Errorf("round trip:\n %+v\nwant\n %+v", again, ss)
	}
}

// TestUnseenFramesAreABaseline: the first frame a store sees of an agent
// that sent frames before (a new aggregator cluster, frames the agent
// dropped) holds the agent's whole life in its counters. They are a
// baseline: no CPU, bytes or cost in that interval. From the agent's
// first frame, or in a known incarnation, a new series' counters are what
// happened since it appeared.
func TestUnseenFramesAreABaseline(t *testing.T) {
	lifelong := func(path string) SeriesState {
		s := series(path, 100, 5<<30, 40, 40, 40)
		s.Total.CPUUsageUsec = uint64(72 * time.Hour / time.Microsecond) // three days of a core
		return s
	}
	tests := []struct {
		name     string
		known    *Update // a frame the store saw before, or nil
		seq      uint64
		baseline bool
	}{
		{"a new cluster meets an agent at its 5000th frame", nil, 5000, true},
		{"the agent's first frame", nil, 1, false},
		{"a restarted agent's first frame", &Update{Incarnation: 1, Seq: 9}, 1, false},
		{"a restarted agent seen from its 7th frame", &Update{Incarnation: 1, Seq: 9}, 7, true},
		{"a new series of a known incarnation", &Update{Incarnation: 2, Seq: 9}, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &NodeState{Node: "node-1"}
			if tt.known != nil {
				k := *tt.known
				k.Node, k.Time, k.Interval, k.Keyframe = "node-1", t0, time.Second, true
				k.Changed = []SeriesState{series("/other", 1, 1)}
				st, _, _ = apply(t, st, &k, t0)
			}
			st, _, _ = apply(t, st, &Update{Node: "node-1", Incarnation: 2, Seq: tt.seq, Time: t0.Add(time.Second),
				Interval: time.Second, Keyframe: true, Changed: []SeriesState{lifelong("/a")}}, t0)
			s := st.Series["/a"]
			last, since := s.Last.Counters.CPUUsageUsec, s.Accrual.Since.CPUUsec
			if tt.baseline {
				if last != 0 || s.Last.Counters.RxBytes != 0 || s.Last.SRTT.Count != 0 || since != 0 {
					t.Fatalf("a baseline: Last %+v, accrued CPU %v: want nothing in this interval", s.Last, since)
				}
			} else if last != s.Total.CPUUsageUsec || since == 0 {
				t.Fatalf("new: Last CPU %d of %d, accrued %v", last, s.Total.CPUUsageUsec, since)
			}
			// The next frame counts from the baseline either way.
			next := lifelong("/a")
			next.Total.CPUUsageUsec += 250_000
			st, _, _ = apply(t, st, &Update{Node: "node-1", Incarnation: 2, Seq: tt.seq + 1, Time: t0.Add(2 * time.Second),
				Interval: time.Second, Changed: []SeriesState{next}}, t0)
			if got := st.Series["/a"].Last.Counters.CPUUsageUsec; got != 250_000 {
				t.Fatalf("the next interval's CPU %d µs, want 250000", got)
			}
		})
	}
}

// TestViewRequests follows a server's requests through the series value:
// the interval's requests and latency quantiles, over the last frame and
// over a window of checkpoints, and none for a series without requests;
// from an agent that sends the log-linear histogram (within 10% of a
// constant 20 ms), and from an older one that sends log2 buckets only
// (within the bucket of 20 ms).
func TestViewRequests(t *testing.T) {
	for _, tt := range []struct {
		name    string
		observe func(s *SeriesState, us uint64)
		lo, hi  float64 // seconds
		key     string  // of the histogram in the stored value
	}{
		{"log-linear", func(s *SeriesState, us uint64) { s.RequestLatencyLogLinear.Observe(us) }, 0.018, 0.022, "ql"},
		{"older agent, log2", func(s *SeriesState, us uint64) { s.RequestLatency.Observe(us) }, 16384e-6, 32768e-6, "q"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			server := func(i int) SeriesState {
				s := series("/web", 5, 100)
				s.Total.Requests = uint64(i) * 50 // 50 requests a second
				for j := range i * 50 {
					tt.observe(&s, 20_000+uint64(j%7)*30) // 20 ms and a little
				}
				return s
			}
			st := &NodeState{Node: "n"}
			for i := range 60 {
				st, _, _ = apply(t, st, &Update{Node: "n", Incarnation: 1, Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * time.Second),
					Interval: time.Second, Keyframe: i == 0, Changed: []SeriesState{server(i), series("/idle", 6, 0)}}, t0)
			}
			for _, w := range []time.Duration{0, 30 * time.Second} {
				c := View("n", st.Agent, st.Series["/web"], w)
				// A window spans from a checkpoint: at least w, 50 requests a second.
				if want := uint64(c.WindowSeconds * 50); c.Requests != want || c.WindowSeconds < w.Seconds() {
					t.Errorf("window %s: %d requests over %gs, want %d", w, c.Requests, c.WindowSeconds, want)
				}
				for _, q := range []*float64{c.RequestLatencyP50Seconds, c.RequestLatencyP99Seconds} {
					if q == nil || *q < tt.lo || *q >= tt.hi {
						t.Errorf("window %s: latency quantile %v, want in [%g, %g)", w, q, tt.lo, tt.hi)
					}
				}
			}
			if c := View("n", st.Agent, st.Series["/idle"], 0); c.Requests != 0 || c.RequestLatencyP99Seconds != nil {
				t.Errorf("idle: %d requests, p99 %v", c.Requests, c.RequestLatencyP99Seconds)
			}
			// A series without requests stores no latency: its value is as
			// before; one with requests stores one histogram.
			if b, _ := st.Series["/idle"].Encode(); bytes.Contains(b, []byte{0xa1, 'q'}) || bytes.Contains(b, []byte{0xa2, 'q', 'l'}) {
				t.Errorf("idle series value holds a request latency: %x", b)
			}
			b, _ := st.Series["/web"].Encode()
			if !bytes.Contains(b, append([]byte{0xa0 | byte(len(tt.key))}, tt.key...)) {
				t.Errorf("web series value holds no %q: %x", tt.key, b)
			}
		})
	}
}

// TestRequestLatencyFromWire: of an agent's two request latency
// histograms (wire keys 34 and 35), the series keeps the log-linear one,
// and restores the log2 one from it for the wire's state; of an older
// agent's, the log2 one.
func TestRequestLatencyFromWire(t *testing.T) {
	var fine histogram.LogLinear
	for _, us := range []uint64{3, 900, 20_000, 20_100, 250_000} {
		fine.Observe(us)
	}
	log2 := fine.Log2()
	for _, tt := range []struct {
		name string
		v    wire.Values
	}{
		{"both", wire.Values{Requests: 5, RequestLatency: wire.Hist(log2), RequestLatencyLogLinear: fine.Wire()}},
		{"older agent", wire.Values{Requests: 5, RequestLatency: wire.Hist(log2)}},
		{"none", wire.Values{Requests: 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ss := FromWire(1, &wire.SeriesState{Path: "/web", ID: 9, Values: tt.v})
			if ll := !tt.v.RequestLatencyLogLinear.IsZero(); ll && (!ss.RequestLatencyLogLinear.Equal(&fine) || ss.RequestLatency != (histogram.Hist{})) ||
				!ll && (!ss.RequestLatencyLogLinear.IsZero() || ss.RequestLatency != histogram.Hist(tt.v.RequestLatency)) {
				t.Fatalf("series keeps %+v and %+v", ss.RequestLatency, ss.RequestLatencyLogLinear)
			}
			st, _, _ := apply(t, &NodeState{Node: "n"}, &Update{Node: "n", Incarnation: 1, Seq: 1, Time: t0, Interval: time.Second,
				Keyframe: true, Changed: []SeriesState{ss}}, t0)
			b, err := st.Series["/web"].Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeStored("/web", b)
			if err != nil {
				t.Fatal(err)
			}
			w := back.WireState()
			if !w.Values.Equal(&tt.v) {
				t.Fatalf("wire state\n %+v\nwant\n %+v", w.Values, tt.v)
			}
		})
	}
}
