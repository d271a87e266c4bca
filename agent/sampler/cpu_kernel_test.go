package sampler_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/cgtest"
)

func withinU(got uint64, want int64, frac float64) bool {
	return math.Abs(float64(got)-float64(want)) <= frac*float64(want)
}

// TestCPUMatchesCgroupfs burns half a core in a child cgroup for two
// seconds and compares the sampled CPU time with cpu.stat over the same
// interval: the child's own, and only its own for the parent, whose
// cpu.stat counts the child's time too.
func TestCPUMatchesCgroupfs(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	g := cgtest.NewGroup(t, r.layout)
	child := g.Child("work")
	p := child.Start()
	// Where a cgroup with children may hold processes (no controller on
	// cgroup v2: the hybrid layout), give the parent an idle one, so that
	// it is sampled and its own time is the difference.
	parentRuns := !r.layout.MemoryIsV2() && !r.layout.CPUIsV2()
	if parentRuns {
		g.Start()
	}
	r.sample()

	before, parentBefore := child.CPU(), g.CPU()
	start := time.Now()
	p.Do("burn 50")
	time.Sleep(2 * time.Second)
	used, err := strconv.ParseInt(p.Do("burnstop"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	after, parentAfter := child.CPU(), g.CPU()
	s := r.sample()

	c := r.cgroup(s, child.Path)
	truth := after.UsageUsec - before.UsageUsec
	t.Logf("child: agent %dµs, cpu.stat %dµs (parent's cpu.stat %dµs), getrusage %dµs in total, %.0f%% of a core over %v",
		c.CPUUsageUsec, truth, parentAfter.UsageUsec-parentBefore.UsageUsec, used, 100*float64(truth)/float64(wall.Microseconds()), wall)
	if !withinU(c.CPUUsageUsec, truth, 0.05) {
		t.Errorf("agent's CPU time %dµs not within 5%% of cpu.stat's %dµs", c.CPUUsageUsec, truth)
	}
	// Half a core at most, and enough that the comparison means
	// something: a 2-core machine running the other packages' tests at
	// once can leave the burn well under half.
	if share := float64(truth) / float64(wall.Microseconds()); share < 0.1 || share > 0.6 {
		t.Errorf("a 50%% burn used %.0f%% of a core", share*100)
	}
	parent := find(s, g.Path)
	if parentRuns && parent == nil {
		t.Fatalf("the parent, which has a process, is not in the sample")
	}
	if parent != nil {
		own := (parentAfter.UsageUsec - parentBefore.UsageUsec) - truth
		t.Logf("parent: agent %dµs of its own, cpu.stat %dµs", parent.CPUUsageUsec, own)
		if parent.CPUUsageUsec > uint64(truth)/20 || float64(parent.CPUUsageUsec) > float64(own)*1.05+2000 {
			t.Errorf("the parent, which burns nothing, used %dµs of its own (cpu.stat: %dµs): its child's time counted twice",
				parent.CPUUsageUsec, own)
		}
	}
	if c.MemoryWorkingSetBytes <= 0 {
		t.Errorf("working set of a running process: %d", c.MemoryWorkingSetBytes)
	}
}

// TestCPUThrottling limits a cgroup to 20% of a core and runs a process
// that wants a whole one: the sample shows the limit's periods, the
// throttled ones and the time throttled, as cpu.stat counts them.
func TestCPUThrottling(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	if r.layout.CPU == "" {
		t.Fatal("no cpu controller on this host: cannot limit CPU")
	}
	g := cgtest.NewGroup(t, r.layout)
	g.SetCPULimit(20*time.Millisecond, 100*time.Millisecond)
	p := g.Start()
	r.sample()

	before := g.CPU()
	cpuSome, cpuFull, psi := g.Pressure("cpu")
	start := time.Now()
	p.Do("burn 100")
	time.Sleep(1500 * time.Millisecond)
	p.Do("burnstop")
	wall := time.Since(start)
	after := g.CPU()
	cpuSome2, cpuFull2, _ := g.Pressure("cpu")
	c := r.cgroup(r.sample(), g.Path)

	periods, throttled := after.Periods-before.Periods, after.Throttled-before.Throttled
	t.Logf("agent: %dµs used, %d periods, %d throttled, %dµs throttled, pressure %v %+v; cpu.stat: %dµs, %d, %d, %dµs; cpu.pressure some +%dµs full +%dµs over %v",
		c.CPUUsageUsec, c.CPUPeriods, c.CPUThrottledPeriods, c.CPUThrottledUsec, c.PressureKnown, c.Pressure[cgroupfs.PressureCPU],
		after.UsageUsec-before.UsageUsec, periods, throttled, after.ThrottledUsec-before.ThrottledUsec,
		cpuSome2-cpuSome, cpuFull2-cpuFull, wall)
	if periods < 10 || throttled < 5 {
		t.Fatalf("cpu.stat: %d periods, %d throttled: the limit did not bite", periods, throttled)
	}
	if d := int64(c.CPUPeriods) - periods; d < -1 || d > 1 {
		t.Errorf("periods: agent %d, cpu.stat %d", c.CPUPeriods, periods)
	}
	if d := int64(c.CPUThrottledPeriods) - throttled; d < -1 || d > 1 {
		t.Errorf("throttled periods: agent %d, cpu.stat %d", c.CPUThrottledPeriods, throttled)
	}
	if !withinU(c.CPUThrottledUsec, after.ThrottledUsec-before.ThrottledUsec, 0.05) {
		t.Errorf("throttled time: agent %dµs, cpu.stat %dµs", c.CPUThrottledUsec, after.ThrottledUsec-before.ThrottledUsec)
	}
	if !withinU(c.CPUUsageUsec, after.UsageUsec-before.UsageUsec, 0.05) {
		t.Errorf("CPU time: agent %dµs, cpu.stat %dµs", c.CPUUsageUsec, after.UsageUsec-before.UsageUsec)
	}
	if share := float64(c.CPUUsageUsec) / float64(wall.Microseconds()); share > 0.25 {
		t.Errorf("a cgroup limited to 20%% of a core used %.0f%%", share*100)
	}

	// Pressure stall information is there exactly when the kernel has it.
	if c.PressureKnown != psi {
		t.Fatalf("pressure known %v, cpu.pressure exists %v", c.PressureKnown, psi)
	}
	if psi {
		got, want := c.Pressure[cgroupfs.PressureCPU], cgroupfs.Pressure{Some: uint64(cpuSome2 - cpuSome), Full: uint64(cpuFull2 - cpuFull)}
		// The kernel's counters run until the sample reads them, a few
		// hundred microseconds after the test's second read.
		if got.Some < want.Some || got.Some > want.Some+want.Some/20+2000 || got.Full < want.Full || got.Full > want.Full+want.Full/20+2000 {
			t.Errorf("cpu pressure %+v, cpu.pressure says %+v", got, want)
		}
	}
}

// TestWorkingSetMatchesCgroupfs compares a cgroup's working set with the
// kernel's memory files after it touches 64 MiB and reads a file.
func TestWorkingSetMatchesCgroupfs(t *testing.T) {
	r := newRig(t, cgtest.Layout(t))
	file := cgtest.UncachedFile(t, cgtest.DataDir(t), 32*mib)
	g := cgtest.NewGroup(t, r.layout)
	p := g.Start()
	p.Do("touch %d", 64*mib)
	p.Do("read %s", file)
	c := r.cgroup(r.sample(), g.Path)
	truth := g.WorkingSet()
	t.Logf("working set: agent %d, kernel %d; RSS %d, page cache %d", c.MemoryWorkingSetBytes, truth, c.RSSBytes, c.PageCacheBytes)
	if c.MemoryWorkingSetBytes < 64*mib || !within(c.MemoryWorkingSetBytes, truth, 0.05) {
		t.Fatalf("working set %d not within 5%% of the kernel's %d (and at least 64 MiB)", c.MemoryWorkingSetBytes, truth)
	}
}
