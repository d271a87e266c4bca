package history

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/internal/podmeta"
)

// t0 is 12:00:00, on a minute (and hour) boundary.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	gib = 1 << 30
	// mib is a GiB in KiB: a GiB held for a second is mib KiB-seconds.
	mib = 1 << 20
)

// sim is one node's state as the store holds it, changed by frames as the
// ingest changes it and by rolls as the roller does, without a store.
type sim struct {
	t      *testing.T
	st     *model.NodeState
	gone   map[string]*model.Final // by key
	cursor *Cursor
	inc    uint64
	seq    uint64
	facts  nodemeta.Facts
	// updated is when the last frame was applied (the aggregator's clock)
	updated time.Time
}

func newSim(t *testing.T) *sim {
	return &sim{t: t, st: &model.NodeState{Node: "n"}, gone: map[string]*model.Final{}, inc: 1,
		facts: nodemeta.Facts{AllocatableCPUMillis: 4000, AllocatableMemoryBytes: 16 * gib, CapacityType: nodemeta.OnDemand}}
}

// workload is a series' state as a function of seconds since t0.
type workload struct {
	path     string
	meta     map[string]string
	rss      int64
	cache    int64
	ws       int64
	cpuMilli uint64 // CPU used per second, in millicores
	inetPerS uint64
	reqPerS  uint64 // requests answered per second
	from     int    // seconds: the series exists from..to (to 0: for ever)
	to       int
}

func (w *workload) at(sec, since int) model.SeriesState {
	// counters since the agent's incarnation started (at second since)
	n := uint64(sec - max(since, w.from))
	return model.SeriesState{Path: w.path, Meta: w.meta, RSSBytes: w.rss, PageCacheBytes: w.cache, WorkingSetBytes: w.ws,
		Total: model.Counters{CPUUsageUsec: n * w.cpuMilli * 1000, TxInternetBytes: n * w.inetPerS, Requests: n * w.reqPerS}}
}

// run applies one-second frames from second `from` to `to` inclusive, of
// the workloads alive at each; the incarnation started at since.
func (s *sim) run(from, to, since int, ws ...*workload) {
	s.t.Helper()
	for sec := from; sec <= to; sec++ {
		var changed []model.SeriesState
		var removed []string
		for _, w := range ws {
			switch {
			case sec >= w.from && (w.to == 0 || sec < w.to):
				changed = append(changed, w.at(sec, since))
			case sec == w.to:
				removed = append(removed, w.path)
			}
		}
		s.frame(sec, sec == since, changed, removed...)
	}
}

func (s *sim) frame(sec int, keyframe bool, changed []model.SeriesState, removed ...string) {
	s.t.Helper()
	s.seq++
	at := t0.Add(time.Duration(sec) * time.Second)
	keyframe = keyframe || s.seq == 1
	if keyframe {
		removed = nil
	}
	u := &model.Update{Node: "n", Incarnation: s.inc, Seq: s.seq, Time: at, Interval: time.Second,
		Keyframe: keyframe, Changed: changed, Removed: removed, Meta: nodemeta.Encode(&s.facts)}
	p, err := model.PlanUpdate(s.st, u, at)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, op := range p.Ops {
		if _, _, _, _, err := model.ParseGoneKey(op.Key); err == nil {
			f, err := model.DecodeFinal(op.Value)
			if err != nil {
				s.t.Fatal(err)
			}
			s.gone[string(op.Key)] = f
		}
	}
	s.st = p.Next
	s.updated = at
}

// restart starts a new incarnation of the agent.
func (s *sim) restart() { s.inc++; s.seq = 0 }

// roll rolls the node at now and applies the outcome.
func (s *sim) roll(now time.Time) *rollOutput {
	s.t.Helper()
	in := &rollInput{Node: "n", Agent: s.st.Agent, Cursor: s.cursor, GoneAll: true, Measure: cost.MemoryRSS,
		Rates: func(f pricing.Facts) cost.Rates { return costRates(pricing.Default().Rates(f)) }}
	for _, p := range slices.Sorted(maps.Keys(s.st.Series)) {
		in.Series = append(in.Series, s.st.Series[p])
	}
	for _, k := range slices.Sorted(maps.Keys(s.gone)) {
		in.Gone = append(in.Gone, goneRecord{Key: []byte(k), Final: s.gone[k]})
	}
	if a := in.Agent; a != nil {
		in.Silent = now.Sub(time.Unix(0, a.Updated)) > DefaultSilentAfter
	}
	return s.apply(roll(in))
}

func (s *sim) apply(out *rollOutput) *rollOutput {
	if out == nil {
		return nil
	}
	// The cursor survives its encoding.
	c, err := DecodeCursor(out.Cursor.Encode())
	if err != nil {
		s.t.Fatal(err)
	}
	s.cursor = c
	for _, k := range out.Consumed {
		delete(s.gone, string(k))
	}
	return out
}

// only returns the single span of out and its single entry.
func only(t *testing.T, out *rollOutput) (*Segment, *Entry) {
	t.Helper()
	if out == nil || len(out.Spans) != 1 || len(out.Spans[0].Entries) != 1 {
		t.Fatalf("want one span of one entry, got %+v", out)
	}
	return &out.Spans[0], &out.Spans[0].Entries[0]
}

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func minute(m int) int64 { return t0.Add(time.Duration(m) * time.Minute).Unix() }

func pod(cpuMillis, memBytes int64) map[string]string {
	return podmeta.Encode(&podmeta.Pod{UID: "u1", Namespace: "shop", Name: "api-1", OwnerKind: "ReplicaSet",
		OwnerName: "api-5d9c", Labels: map[string]string{"pod-template-hash": "5d9c", "team": "pay"}},
		&podmeta.Container{Name: "api", RequestCPUMillis: cpuMillis, RequestMemory: memBytes})
}

func TestRollMinute(t *testing.T) {
	tests := []struct {
		name  string
		w     workload
		want  Entry
		alloc [2]uint64 // cpu, memory
	}{
		{"usage above request", workload{path: "/a", meta: pod(250, gib/2), rss: gib, cpuMilli: 500, inetPerS: 1000},
			Entry{ObservedMs: 60_000, CPUUsedUs: 30e6, CPURequestUs: 15e6, MemUsedKiBs: 60 * mib, MemRequestKiBs: 30 * mib,
				EgressInternetBytes: 60_000}, [2]uint64{30e6, 60 * mib}},
		{"request above usage", workload{path: "/a", meta: pod(1000, 2*gib), rss: gib, cpuMilli: 500},
			Entry{ObservedMs: 60_000, CPUUsedUs: 30e6, CPURequestUs: 60e6, MemUsedKiBs: 60 * mib, MemRequestKiBs: 120 * mib},
			[2]uint64{60e6, 120 * mib}},
		{"no request (outside Kubernetes)", workload{path: "/system.slice/x.service", rss: 100 << 20, cpuMilli: 10},
			Entry{ObservedMs: 60_000, CPUUsedUs: 600e3, MemUsedKiBs: 60 * 100 << 10}, [2]uint64{600e3, 60 * 100 << 10}},
		{"appearing mid-minute", workload{path: "/a", rss: gib, cpuMilli: 1000, from: 30},
			Entry{ObservedMs: 30_000, CPUUsedUs: 30e6, MemUsedKiBs: 30 * mib}, [2]uint64{30e6, 30 * mib}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t)
			s.run(0, 65, 0, &tt.w)
			seg, e := only(t, s.roll(at(65)))
			want := tt.want
			want.Ref = 1
			want.CPUAllocUs, want.MemAllocKiBs = tt.alloc[0], tt.alloc[1]
			if seg.Start != minute(0) || seg.End != minute(1) || *e != want {
				t.Errorf("span %d..%d entry\n %+v, want\n %+v", seg.Start, seg.End, *e, want)
			}
			if seg.ObservedMs != 60_000 || seg.Node.CPUMillis != 4000 || seg.Rates.CPUCoreHour != pricing.DefaultCPUCoreHour {
				t.Errorf("node %+v", seg)
			}
			// Nothing more to roll until the next minute is complete.
			if out := s.roll(at(65)); out != nil {
				t.Errorf("rolled twice: %+v", out)
			}
		})
	}
}

// TestRollRequests checks that the requests a container answered reach
// its minutes as CPU time does: exactly per minute, through a series'
// end, and not all at once after an upgrade from cursors without them.
func TestRollRequests(t *testing.T) {
	tests := []struct {
		name   string
		script func(s *sim) []*rollOutput
		want   []uint64 // requests of /a per roll
	}{
		{
			name: "steady",
			script: func(s *sim) []*rollOutput {
				w := &workload{path: "/a", meta: pod(100, gib), rss: gib, cpuMilli: 100, reqPerS: 10}
				s.run(0, 65, 0, w)
				o1 := s.roll(at(65))
				s.run(66, 125, 0, w)
				return []*rollOutput{o1, s.roll(at(125))}
			},
			want: []uint64{600, 600},
		},
		{
			name: "removed mid-minute",
			script: func(s *sim) []*rollOutput {
				w := &workload{path: "/a", rss: gib, reqPerS: 10, to: 90}
				keep := &workload{path: "/b", rss: 1}
				s.run(0, 65, 0, w, keep)
				o1 := s.roll(at(65))
				s.run(66, 125, 0, w, keep)
				return []*rollOutput{o1, s.roll(at(125))}
			},
			want: []uint64{600, 290}, // its last sample, at 12:01:29, counted 890
		},
		{
			name: "a cursor from before requests",
			script: func(s *sim) []*rollOutput {
				w := &workload{path: "/a", rss: gib, reqPerS: 10}
				s.run(0, 65, 0, w)
				o1 := s.roll(at(65))
				// As if the cursor had been written by the code before
				// requests: the lifetime's 600 so far are not counted again.
				for i := range s.cursor.Entries {
					s.cursor.Entries[i].Requests, s.cursor.Entries[i].noRequests = 0, true
				}
				s.run(66, 125, 0, w)
				o2 := s.roll(at(125))
				s.run(126, 185, 0, w)
				return []*rollOutput{o1, o2, s.roll(at(185))}
			},
			want: []uint64{600, 0, 600},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t)
			outs := tt.script(s)
			var got []uint64
			for _, o := range outs {
				var n uint64
				if o != nil {
					for _, sp := range o.Spans {
						for _, e := range sp.Entries {
							if e.Ref == 1 {
								n += e.Requests
							}
						}
					}
				}
				got = append(got, n)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("requests per roll %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRollLifetimes rolls minute after minute through a series' end, an
// agent restart and a counter reset, and checks that the minutes add up to
// what happened, to the unit.
func TestRollLifetimes(t *testing.T) {
	type check struct {
		minute int   // the span [minute, minute+1)
		obs    int64 // ms observed of /a
		cpu    uint64
	}
	tests := []struct {
		name   string
		script func(s *sim) []*rollOutput
		want   []check
	}{
		{
			name: "removed mid-minute, after the roll's boundary",
			script: func(s *sim) []*rollOutput {
				w := &workload{path: "/a", rss: gib, cpuMilli: 1000, to: 62}
				keep := &workload{path: "/b", rss: 1}
				s.run(0, 65, 0, w, keep) // /a gone at 12:01:02, after 12:01:00
				o1 := s.roll(at(65))
				s.run(66, 125, 0, keep)
				return []*rollOutput{o1, s.roll(at(125))}
			},
			want: []check{{0, 60_000, 60e6}, {1, 2_000, 1e6}}, // the last sample (12:01:01) holds to 12:01:02
		},
		{
			name: "agent restarted mid-minute",
			script: func(s *sim) []*rollOutput {
				w := &workload{path: "/a", rss: gib, cpuMilli: 1000}
				s.run(0, 80, 0, w)
				o1 := s.roll(at(65))
				s.restart() // down from 12:01:20 to 12:01:30
				s.run(90, 125, 90, w)
				return []*rollOutput{o1, s.roll(at(125))}
			},
			// 12:01:00 to 12:01:21 (the last sample held a second), then
			// 12:01:30 to 12:02:00; CPU: 20 s, then the first sample of
			// the new incarnation counts nothing, then 30 s.
			want: []check{{0, 60_000, 60e6}, {1, 21_000 + 30_000, 20e6 + 30e6}},
		},
		{
			name: "minutes missed while nobody led",
			script: func(s *sim) []*rollOutput {
				w := &workload{path: "/a", rss: gib, cpuMilli: 1000}
				s.run(0, 65, 0, w)
				o1 := s.roll(at(65))
				s.run(66, 245, 0, w)
				return []*rollOutput{o1, s.roll(at(245))}
			},
			want: []check{{0, 60_000, 60e6}, {1, 180_000, 180e6}},
		},
		{
			name: "agent restarted after a long silence",
			script: func(s *sim) []*rollOutput {
				w := &workload{path: "/a", rss: gib, cpuMilli: 1000}
				s.run(0, 70, 0, w) // stops after 12:01:10
				o1 := s.roll(at(65))
				o2 := s.roll(at(70 + 125))
				s.restart() // back at 12:10:00: nothing was observed in between
				s.run(600, 665, 600, w)
				return []*rollOutput{o1, o2, s.roll(at(665))}
			},
			want: []check{{0, 60_000, 60e6}, {1, 11_000, 10e6}, {10, 60_000, 60e6}},
		},
		{
			name: "agent silent",
			script: func(s *sim) []*rollOutput {
				w := &workload{path: "/a", rss: gib, cpuMilli: 1000}
				s.run(0, 90, 0, w) // the agent stops after 12:01:30
				o1 := s.roll(at(95))
				o2 := s.roll(at(90 + 121)) // silent for more than 2 minutes: everything it sent
				return []*rollOutput{o1, o2, s.roll(at(300))}
			},
			want: []check{{0, 60_000, 60e6}, {1, 31_000, 30e6}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t)
			outs := tt.script(s)
			var got []check
			for _, o := range outs {
				if o == nil {
					continue
				}
				for _, sp := range o.Spans {
					c := check{minute: int((sp.Start - t0.Unix()) / 60)}
					for _, e := range sp.Entries {
						if e.Ref == 1 {
							c.obs, c.cpu = int64(e.ObservedMs), e.CPUUsedUs
						}
					}
					got = append(got, c)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("minutes of /a\n %+v, want\n %+v", got, tt.want)
			}
			if len(s.gone) != 0 {
				t.Errorf("final records left: %d", len(s.gone))
			}
		})
	}
}

func TestRollFoldAcrossHour(t *testing.T) {
	s := newSim(t)
	w := &workload{path: "/a", rss: gib, cpuMilli: 1000, from: -120}
	// 11:58:00 to 12:02:05, rolled at 11:59:05 and then not until 12:02:05.
	s.run(-120, -55, -120, w)
	s.roll(at(-55))
	s.run(-54, 125, -120, w)
	out := s.roll(at(125))
	if out == nil || len(out.Spans) != 2 {
		t.Fatalf("want the span split at 12:00, got %+v", out)
	}
	a, b := out.Spans[0], out.Spans[1]
	if a.Start != minute(-1) || a.End != minute(0) || b.Start != minute(0) || b.End != minute(2) {
		t.Errorf("parts %d..%d, %d..%d", a.Start, a.End, b.Start, b.End)
	}
	// 180 s in all, split 60:120.
	if e := a.Entries[0]; e.ObservedMs != 60_000 || e.CPUUsedUs != 60e6 || e.MemUsedKiBs != 60*mib {
		t.Errorf("first part %+v", e)
	}
	if e := b.Entries[0]; e.ObservedMs != 120_000 || e.CPUUsedUs != 120e6 || e.MemUsedKiBs != 120*mib {
		t.Errorf("second part %+v", e)
	}
}

func TestRollMemoryMeasures(t *testing.T) {
	for _, tt := range []struct {
		m    cost.MemoryMeasure
		want uint64
	}{
		{cost.MemoryRSS, 60 * 100}, {cost.MemoryRSSPageCache, 60 * 150}, {cost.MemoryWorkingSet, 60 * 120},
	} {
		t.Run(string(tt.m), func(t *testing.T) {
			s := newSim(t)
			s.run(0, 65, 0, &workload{path: "/a", rss: 100 << 10, cache: 50 << 10, ws: 120 << 10})
			in := &rollInput{Node: "n", Agent: s.st.Agent, Series: []*model.Stored{s.st.Series["/a"]}, GoneAll: true,
				Measure: tt.m, Rates: func(pricing.Facts) cost.Rates { return cost.DefaultRates }}
			_, e := only(t, roll(in))
			if e.MemUsedKiBs != tt.want {
				t.Errorf("memory %d KiB-s, want %d", e.MemUsedKiBs, tt.want)
			}
		})
	}
}

func TestRollIdentities(t *testing.T) {
	s := newSim(t)
	w := &workload{path: "/a", meta: pod(100, 0), rss: 1}
	s.run(0, 65, 0, w)
	out := s.roll(at(65))
	id := out.Identities[1]
	if id == nil || id.Namespace != "shop" || id.Pod != "api-1" || id.Container != "api" ||
		id.ControllerKind != "deployment" || id.Controller != "api" || id.LastSeen != minute(60) {
		t.Fatalf("identity %+v", id)
	}
	// The same identity is not written again within the hour.
	s.run(66, 125, 0, w)
	if out := s.roll(at(125)); len(out.Identities) != 0 {
		t.Errorf("identity written again: %+v", out.Identities)
	}
	// A relabelled pod is a new identity with a new ref.
	w.meta = podmeta.Encode(&podmeta.Pod{UID: "u1", Namespace: "shop", Name: "api-1", Labels: map[string]string{"team": "new"}},
		&podmeta.Container{Name: "api"})
	s.run(126, 185, 0, w)
	out = s.roll(at(185))
	if id := out.Identities[2]; id == nil || id.Labels["team"] != "new" || out.Spans[0].Entries[0].Ref != 2 {
		t.Errorf("relabelled: %+v, entries %+v", out.Identities, out.Spans[0].Entries)
	}
}

// TestRollDeletedNode: final records of a node whose records are gone are
// rolled, even when its cursor already covers them.
func TestRollDeletedNode(t *testing.T) {
	s := newSim(t)
	w := &workload{path: "/a", rss: gib, cpuMilli: 1000}
	s.run(0, 70, 0, w)
	s.roll(at(65))
	s.roll(at(70 + 125)) // silent: rolled to 12:02:00
	s.restart()
	s.frame(600, true, nil) // the agent is back without /a: its final record
	s.st.Agent = nil        // then the janitor deletes the node
	if len(s.gone) != 1 {
		t.Fatalf("%d final records", len(s.gone))
	}
	out := s.roll(at(700))
	if out == nil || len(s.gone) != 0 {
		t.Fatalf("final records left: %d (%+v)", len(s.gone), out)
	}
	for _, sp := range out.Spans {
		for _, e := range sp.Entries {
			t.Errorf("counted again: %+v", e)
		}
	}
}
