package sampler_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/probetest"
)

func TestMain(m *testing.M) {
	cgtest.MaybeHelper()
	os.Exit(m.Run())
}

const mib = 1 << 20

// rig is the agent's real pipeline: programs loaded and attached, and a
// sampler reading them.
type rig struct {
	t      *testing.T
	layout cgroupfs.Layout
	smp    *sampler.Sampler
}

func newRig(t *testing.T, l cgroupfs.Layout) *rig {
	t.Helper()
	return newRigWith(t, l, sampler.Config{})
}

// newRigWith is newRig with a sampler configuration (its Layout and
// HitRatio set here).
func newRigWith(t *testing.T, l cgroupfs.Layout, cfg sampler.Config) *rig {
	t.Helper()
	p := probetest.Load(t, l, probe.Config{})
	cfg.Layout, cfg.HitRatio = l, p.HitRatio
	smp, err := sampler.New(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(smp.Close)
	if err := smp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, layout: l, smp: smp}
}

func (r *rig) sample() *sampler.Sample {
	r.t.Helper()
	s, err := r.smp.Sample()
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// cgroup returns the sample's row for path, failing the test when absent.
func (r *rig) cgroup(s *sampler.Sample, path string) *sampler.Cgroup {
	r.t.Helper()
	if c := find(s, path); c != nil {
		return c
	}
	r.t.Fatalf("cgroup %s missing from the sample (%d cgroups)", path, len(s.Cgroups))
	return nil
}

// find returns the sample's row for path, nil when it is absent or idle
// (listed only for its history).
func find(s *sampler.Sample, path string) *sampler.Cgroup {
	for i := range s.Cgroups {
		if s.Cgroups[i].Path == path && !s.Cgroups[i].Idle {
			return &s.Cgroups[i]
		}
	}
	return nil
}

func within(got, want int64, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

func TestRSSMatchesProc(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	g := cgtest.NewGroup(t, r.layout)
	p := g.Start()
	p.Do("touch %d", 256*mib)

	c := r.cgroup(r.sample(), g.Path)
	truth := g.SumVmRSS()
	t.Logf("cgroup %s: agent %d bytes, sum of VmRSS %d bytes, %d processes", g.Path, c.RSSBytes, truth, c.Processes)
	if c.ID != g.ID {
		t.Errorf("id = %d, want %d", c.ID, g.ID)
	}
	if c.Processes != 1 {
		t.Errorf("processes = %d, want 1", c.Processes)
	}
	if c.RSSBytes < 256*mib || !within(c.RSSBytes, truth, 0.05) {
		t.Fatalf("RSS %d not within 5%% of VmRSS sum %d (and at least 256 MiB)", c.RSSBytes, truth)
	}

	// Freeing the memory shows in the next sample.
	p.Do("free")
	c = r.cgroup(r.sample(), g.Path)
	truth = g.SumVmRSS()
	if c.RSSBytes > 64*mib || !within(c.RSSBytes, truth, 0.25) {
		t.Fatalf("after free: RSS %d, VmRSS sum %d", c.RSSBytes, truth)
	}
}

func TestRSSOfProcessesStartedBeforeAgent(t *testing.T) {
	l := cgtest.Layout(t)
	g := cgtest.NewGroup(t, l)
	procs := []*cgtest.Proc{g.Start(), g.Start()}
	for _, p := range procs {
		p.Do("touch %d", 64*mib)
	}
	r := newRig(t, l) // seeds both from /proc

	c := r.cgroup(r.sample(), g.Path)
	truth := g.SumVmRSS()
	t.Logf("seeded: agent %d, VmRSS sum %d", c.RSSBytes, truth)
	if c.Processes != 2 || !within(c.RSSBytes, truth, 0.05) {
		t.Fatalf("seeded RSS %d of %d processes, want within 5%% of %d from 2", c.RSSBytes, c.Processes, truth)
	}
	// Events add to the seed.
	procs[0].Do("touch %d", 128*mib)
	c = r.cgroup(r.sample(), g.Path)
	truth = g.SumVmRSS()
	t.Logf("seeded plus events: agent %d, VmRSS sum %d", c.RSSBytes, truth)
	if c.RSSBytes < 256*mib || !within(c.RSSBytes, truth, 0.05) {
		t.Fatalf("RSS %d, want within 5%% of %d", c.RSSBytes, truth)
	}
}

func TestRSSFollowsMovesAndExits(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	g := cgtest.NewGroup(t, r.layout)
	a, b := g.Child("a"), g.Child("b")
	p := a.Start()
	p.Do("touch %d", 128*mib)
	if c := r.cgroup(r.sample(), a.Path); c.RSSBytes < 128*mib {
		t.Fatalf("a: RSS %d", c.RSSBytes)
	}

	// Move the process to b; its memory goes with it.
	if err := os.WriteFile(r.layout.V2+b.Path+"/cgroup.procs", fmt.Appendf(nil, "%d", p.Pid), 0o644); err != nil {
		t.Fatal(err)
	}
	s := r.sample()
	// a is listed once more only for the CPU time its process used there
	// before the move.
	if c := find(s, a.Path); c != nil && (c.Processes != 0 || c.RSSBytes != 0 || c.CPUUsageUsec == 0) {
		t.Errorf("a after its only process moved: %d processes, RSS %d, CPU %dµs", c.Processes, c.RSSBytes, c.CPUUsageUsec)
	}
	if c := r.cgroup(s, b.Path); c.RSSBytes < 128*mib || c.Processes != 1 {
		t.Fatalf("b after move: RSS %d, %d processes", c.RSSBytes, c.Processes)
	}
	if c := find(r.sample(), a.Path); c != nil {
		t.Errorf("a still listed a sample after its only process moved: %+v", c)
	}

	// When the process exits, b has nothing left (but the CPU time of its
	// last moments, in the sample where it exits).
	p.Stop()
	if c := find(r.sample(), b.Path); c != nil && (c.Processes != 0 || c.RSSBytes != 0) {
		t.Fatalf("b after its process exited: %d processes, RSS %d", c.Processes, c.RSSBytes)
	}
	if c := find(r.sample(), b.Path); c != nil {
		t.Fatalf("b still listed a sample after its process exited: %+v", c)
	}
}

func TestPageCacheOfAnUncachedRead(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	file := cgtest.UncachedFile(t, cgtest.DataDir(t), 128*mib)
	g := cgtest.NewGroup(t, r.layout)
	p := g.Start()

	before := r.cgroup(r.sample(), g.Path)
	statBefore := g.MemoryStat("file")
	p.Do("read %s", file)
	after := r.cgroup(r.sample(), g.Path)
	statAfter := g.MemoryStat("file")

	grew := after.PageCacheBytes - before.PageCacheBytes
	t.Logf("page cache: agent %d -> %d (+%d), memory.stat file %d -> %d, added %d, hit ratio %v/%v",
		before.PageCacheBytes, after.PageCacheBytes, grew, statBefore, statAfter, after.PageCacheAddedBytes,
		after.PageCacheAccesses, after.PageCacheMisses)
	if grew < 128*mib*9/10 {
		t.Errorf("agent's page cache grew by %d, want at least 90%% of %d", grew, 128*mib)
	}
	if d := statAfter - statBefore; d < 128*mib*9/10 {
		t.Errorf("memory.stat file grew by %d, want at least 90%% of %d", d, 128*mib)
	}
	if !within(after.PageCacheBytes, statAfter, 0.05) {
		t.Errorf("agent's page cache %d not within 5%% of memory.stat's %d", after.PageCacheBytes, statAfter)
	}
	if after.HitRatioKnown {
		if hr, ok := after.HitRatio(); !ok || hr > 0.5 {
			t.Errorf("hit ratio of an uncached read = %v (%v), want at most 0.5", hr, ok)
		}
		// Reading it again hits the cache.
		p.Do("read %s", file)
		again := r.cgroup(r.sample(), g.Path)
		if hr, ok := again.HitRatio(); !ok || hr < 0.9 {
			t.Errorf("hit ratio of a cached read = %v (%v), want at least 0.9", hr, ok)
		}
		if again.PageCacheAddedBytes > 4*mib {
			t.Errorf("a cached read added %d bytes", again.PageCacheAddedBytes)
		}
	}
}
