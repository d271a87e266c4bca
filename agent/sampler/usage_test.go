package sampler

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/cgtest"
)

// fakeFS is a cgroup hierarchy in a temporary directory whose statistics
// files a test writes: cgroupfs as the usage reader sees it.
type fakeFS struct {
	t            *testing.T
	v2, cpu, mem string // roots; cpu and mem may be v2's
	proc         string
	layout       cgroupfs.Layout
	h, memH      *cgroupfs.Hierarchy
	u            *usage
	now          time.Time // of the last sample, a second apart
}

func newFakeFS(t *testing.T, hybrid bool) *fakeFS {
	t.Helper()
	root := t.TempDir()
	f := &fakeFS{t: t, v2: filepath.Join(root, "v2"), proc: filepath.Join(root, "proc")}
	f.cpu, f.mem = f.v2, f.v2
	f.layout = cgroupfs.Layout{Mode: cgroupfs.Unified, V2: f.v2, Memory: f.v2, CPU: f.v2}
	if hybrid {
		f.cpu, f.mem = filepath.Join(root, "cpu"), filepath.Join(root, "memory")
		f.layout = cgroupfs.Layout{Mode: cgroupfs.Hybrid, V2: f.v2, Memory: f.mem, CPU: f.cpu}
	}
	for _, d := range []string{f.v2, f.cpu, f.mem, f.proc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.write(f.proc, "meminfo", "MemTotal: 1000 kB\nMemFree: 200 kB\nInactive(file): 100 kB\n")
	f.cgroup("/", 0)
	return f
}

func (f *fakeFS) write(dir, file, content string) {
	f.t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// cgroup creates (or updates) the cgroup at p with a CPU time in µs.
func (f *fakeFS) cgroup(p string, usageUsec uint64) {
	f.t.Helper()
	f.write(filepath.Join(f.v2, p), "cpu.stat", fmt.Sprintf("usage_usec %d\nuser_usec 0\nsystem_usec 0\n", usageUsec))
}

func (f *fakeFS) throttle(p string, periods, throttled, usec uint64) {
	f.t.Helper()
	if f.layout.CPUIsV2() {
		f.write(filepath.Join(f.v2, p), "cpu.stat", fmt.Sprintf("usage_usec %d\nnr_periods %d\nnr_throttled %d\nthrottled_usec %d\n",
			f.usage(p), periods, throttled, usec))
		return
	}
	f.write(filepath.Join(f.cpu, p), "cpu.stat", fmt.Sprintf("nr_periods %d\nnr_throttled %d\nthrottled_time %d\n", periods, throttled, usec*1000))
}

func (f *fakeFS) usage(p string) uint64 {
	b, err := os.ReadFile(filepath.Join(f.v2, p, "cpu.stat"))
	if err != nil {
		f.t.Fatal(err)
	}
	var u uint64
	fmt.Sscanf(string(b), "usage_usec %d", &u)
	return u
}

func (f *fakeFS) pressure(p string, cpuSome, cpuFull, memSome, ioSome uint64) {
	f.t.Helper()
	line := func(some, full uint64) string {
		return fmt.Sprintf("some avg10=0.00 avg60=0.00 avg300=0.00 total=%d\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=%d\n", some, full)
	}
	dir := filepath.Join(f.v2, p)
	f.write(dir, "cpu.pressure", line(cpuSome, cpuFull))
	f.write(dir, "memory.pressure", line(memSome, 0))
	f.write(dir, "io.pressure", line(ioSome, 0))
}

func (f *fakeFS) memory(p string, usage, inactive uint64) {
	f.t.Helper()
	dir := filepath.Join(f.mem, p)
	if f.layout.MemoryIsV2() {
		f.write(dir, "memory.current", fmt.Sprintln(usage))
		f.write(dir, "memory.stat", fmt.Sprintf("anon 1\ninactive_file %d\n", inactive))
		return
	}
	f.write(dir, "memory.usage_in_bytes", fmt.Sprintln(usage))
	f.write(dir, "memory.stat", fmt.Sprintf("inactive_file 1\ntotal_inactive_file %d\n", inactive))
}

// start walks the hierarchy and takes the baseline, as Sampler.Start does.
func (f *fakeFS) start() {
	f.t.Helper()
	f.h = cgroupfs.NewHierarchy(f.v2)
	f.memH = f.h
	if f.mem != f.v2 {
		f.memH = cgroupfs.NewHierarchy(f.mem)
	}
	if err := f.h.Refresh(); err != nil {
		f.t.Fatal(err)
	}
	f.u = newUsage(f.layout, f.h, f.memH, f.proc, 0, 10*time.Second)
	if err := f.u.baseline(); err != nil {
		f.t.Fatal(err)
	}
}

// sample reads the cgroups at full (CPU and all) and at memOnly (working
// set only), and returns their rows by path.
func (f *fakeFS) sample(full []string, memOnly ...string) map[string]*Cgroup {
	f.t.Helper()
	rows := map[uint64]*Cgroup{}
	set := map[uint64]struct{}{}
	out := map[string]*Cgroup{}
	for i, p := range append(append([]string{}, full...), memOnly...) {
		id, err := f.h.ID(p)
		if err != nil {
			f.t.Fatal(err)
		}
		rows[id] = &Cgroup{ID: id, Path: p}
		out[p] = rows[id]
		if i < len(full) {
			set[id] = struct{}{}
		}
	}
	f.now = f.now.Add(time.Second)
	if err := f.u.sample(f.now, rows, set); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func TestOwnCPUTime(t *testing.T) {
	f := newFakeFS(t, false)
	f.cgroup("/pod", 1000)
	f.cgroup("/pod/a", 300)
	f.cgroup("/pod/b", 100)
	f.start()

	type want map[string]uint64
	check := func(step string, rows map[string]*Cgroup, w want) {
		t.Helper()
		for p, v := range w {
			if got := rows[p].CPUUsageUsec; got != v {
				t.Errorf("%s: %s used %dµs of its own, want %d", step, p, got, v)
			}
		}
	}
	// The parent counts its children's time: its own is the rest.
	f.cgroup("/pod", 1600)
	f.cgroup("/pod/a", 700)
	f.cgroup("/pod/b", 150)
	check("children", f.sample([]string{"/pod", "/pod/a"}), want{"/pod": 150, "/pod/a": 400})

	// A child created since counts from zero.
	f.cgroup("/pod/new", 0)
	f.cgroup("/pod/new", 250)
	f.cgroup("/pod", 2000)
	check("new child", f.sample([]string{"/pod", "/pod/new"}), want{"/pod": 150, "/pod/new": 250})

	// A child that goes away leaves its last increase with the parent.
	if err := os.RemoveAll(filepath.Join(f.v2, "pod/new")); err != nil {
		t.Fatal(err)
	}
	f.cgroup("/pod", 2100)
	check("removed child", f.sample([]string{"/pod"}), want{"/pod": 100})

	// The parent is not sampled while a child is: when it is again, the
	// spans differ and its own time is unknown for that sample only.
	f.cgroup("/pod/a", 800)
	f.cgroup("/pod", 2200)
	check("child alone", f.sample([]string{"/pod/a"}), want{"/pod/a": 100})
	f.cgroup("/pod/a", 900)
	f.cgroup("/pod", 2400)
	check("spans differ", f.sample([]string{"/pod", "/pod/a"}), want{"/pod": 0, "/pod/a": 100})
	f.cgroup("/pod/a", 1000)
	f.cgroup("/pod", 2600)
	check("aligned again", f.sample([]string{"/pod", "/pod/a"}), want{"/pod": 100, "/pod/a": 100})

	// A cgroup not sampled for a while gets all it used since, at once.
	f.cgroup("/pod/b", 400)
	f.cgroup("/pod", 2850)
	check("gap", f.sample([]string{"/pod/b"}), want{"/pod/b": 250})
}

func TestThrottlingAndPressure(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		t.Run(map[bool]string{false: "unified", true: "hybrid"}[hybrid], func(t *testing.T) {
			f := newFakeFS(t, hybrid)
			f.cgroup("/limited", 10)
			f.throttle("/limited", 100, 10, 5000)
			f.pressure("/limited", 1000, 500, 7, 3)
			f.cgroup("/nopsi", 10)
			f.start()

			f.throttle("/limited", 150, 30, 9000)
			f.pressure("/limited", 1600, 700, 9, 3)
			rows := f.sample([]string{"/limited", "/nopsi"})
			c := rows["/limited"]
			if c.CPUPeriods != 50 || c.CPUThrottledPeriods != 20 || c.CPUThrottledUsec != 4000 {
				t.Errorf("throttling: %d periods, %d throttled, %dµs", c.CPUPeriods, c.CPUThrottledPeriods, c.CPUThrottledUsec)
			}
			want := [cgroupfs.PressureResources]cgroupfs.Pressure{{Some: 600, Full: 200}, {Some: 2}, {}}
			if !c.PressureKnown || c.Pressure != want {
				t.Errorf("pressure %v %+v, want %+v", c.PressureKnown, c.Pressure, want)
			}
			if n := rows["/nopsi"]; n.PressureKnown || n.CPUPeriods != 0 {
				t.Errorf("no PSI, no limit: pressure known %v, periods %d", n.PressureKnown, n.CPUPeriods)
			}

			// A cgroup created after the start counts from zero.
			f.cgroup("/late", 5)
			f.throttle("/late", 4, 1, 100)
			f.pressure("/late", 30, 0, 0, 0)
			late := f.sample([]string{"/late"})["/late"]
			if late.CPUUsageUsec != 5 || late.CPUPeriods != 4 || late.CPUThrottledUsec != 100 || late.Pressure[0].Some != 30 {
				t.Errorf("new cgroup: %+v", late)
			}
		})
	}
}

func TestOwnWorkingSet(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		t.Run(map[bool]string{false: "unified", true: "hybrid"}[hybrid], func(t *testing.T) {
			f := newFakeFS(t, hybrid)
			f.cgroup("/pod", 0)
			f.cgroup("/pod/a", 0)
			f.cgroup("/pod/nomem", 0) // no memory cgroup: charged to /pod
			f.memory("/pod", 10000, 1000)
			f.memory("/pod/a", 4000, 500)
			f.start()
			rows := f.sample([]string{"/pod/a"}, "/pod", "/pod/nomem", "/")
			for p, want := range map[string]int64{
				"/pod/a":     3500,
				"/pod":       9000 - 3500,
				"/pod/nomem": 0,
				// The host from /proc/meminfo (1000 kB - 200 kB free - 100
				// kB inactive), less the top-level memory cgroup.
				"/": 700*1024 - 9000,
			} {
				if got := rows[p].MemoryWorkingSetBytes; got != want {
					t.Errorf("%s: working set %d, want %d", p, got, want)
				}
			}

			// The working set is read again once it is 10s old.
			f.memory("/pod/a", 5000, 500)
			for i := 1; i <= 10; i++ {
				got := f.sample([]string{"/pod/a"})["/pod/a"].MemoryWorkingSetBytes
				if want := map[bool]int64{false: 3500, true: 4500}[i == 10]; got != want {
					t.Fatalf("%ds after the read: working set %d, want %d", i, got, want)
				}
			}
		})
	}
}

// BenchmarkCgroupfsUsage measures one sample's reading of cgroupfs for
// 200 real cgroups, every one with processes or activity: cpu.stat (and
// the v1 cpu cgroup's on a hybrid host), the three *.pressure files and
// the memory files of each, as Sample reads them.
func BenchmarkCgroupfsUsage(b *testing.B) {
	cgtest.RequireRoot(b)
	l, err := cgroupfs.DetectLayout()
	if err != nil {
		b.Fatal(err)
	}
	const n = 200
	g := cgtest.NewGroup(b, l)
	paths := make([]string, n)
	for i := range paths {
		paths[i] = g.Child(fmt.Sprintf("c%d", i)).Path
	}
	h := cgroupfs.NewHierarchy(l.V2)
	if err := h.Refresh(); err != nil {
		b.Fatal(err)
	}
	mem := h
	if !l.MemoryIsV2() {
		mem = cgroupfs.NewHierarchy(l.Memory)
	}
	u := newUsage(l, h, mem, "/proc", 0, 10*time.Second)
	defer u.close()
	if err := u.baseline(); err != nil {
		b.Fatal(err)
	}
	rows, full := map[uint64]*Cgroup{}, map[uint64]struct{}{}
	for _, p := range paths {
		id, err := h.ID(p)
		if err != nil {
			b.Fatal(err)
		}
		rows[id], full[id] = &Cgroup{ID: id, Path: p}, struct{}{}
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	now := time.Now()
	for b.Loop() {
		now = now.Add(time.Second) // one sample a second: the working set every 10th
		if err := u.sample(now, rows, full); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time (user and system) rather than wall time: on a busy machine
	// the wall time counts the waits for a CPU too.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(b.N)/n, "cpu-ns/cgroup")
	b.ReportMetric(float64(u.r.OpenFiles())/n, "files-open/cgroup")
}

func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
