package cgtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/procfs"
	"github.com/pennyhq/penny/internal/testenv"
)

// RequireRoot skips the test unless it runs as root, or fails it when
// PENNY_TEST_NO_SKIP=1 (see testenv.RequireRoot).
func RequireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "it loads eBPF programs and creates cgroups")
}

// Layout returns the host's cgroup layout, skipping the test unless it
// runs as root (see RequireRoot).
func Layout(t testing.TB) cgroupfs.Layout {
	t.Helper()
	RequireRoot(t)
	l, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Group is a cgroup created for a test, in the v2 hierarchy and, in hybrid
// mode, at the same path in the v1 memory and cpu hierarchies.
type Group struct {
	Layout cgroupfs.Layout
	Path   string // relative to the hierarchy roots
	ID     uint64 // cgroup v2 id
	t      testing.TB
}

// NewGroup creates a uniquely named top-level test cgroup. It and
// everything in it are removed when the test ends.
func NewGroup(t testing.TB, layout cgroupfs.Layout) *Group {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	g := &Group{Layout: layout, Path: "/penny-test-" + hex.EncodeToString(b), t: t}
	g.create()
	return g
}

// NewGroupAt creates the cgroup at path (absolute, relative to the
// hierarchy roots) and whichever of its ancestors do not exist yet, as a
// kubelet would create a pod's. What it created is removed when the test
// ends; cgroups that existed are left alone.
func NewGroupAt(t testing.TB, layout cgroupfs.Layout, p string) *Group {
	t.Helper()
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		t.Fatalf("cgroup path %q: want a clean absolute path below the root", p)
	}
	parent := &Group{Layout: layout, Path: "/", t: t}
	var g *Group
	for _, name := range strings.Split(p[1:], "/") {
		next := &Group{Layout: layout, Path: path.Join(parent.Path, name), t: t}
		if _, err := os.Stat(next.dirV2()); err == nil {
			var st syscall.Stat_t
			if err := syscall.Stat(next.dirV2(), &st); err != nil {
				t.Fatal(err)
			}
			next.ID = st.Ino
		} else {
			next = parent.Child(name)
		}
		parent, g = next, next
	}
	return g
}

// Remove kills what runs in the group and removes it now rather than when
// the test ends (removing it again then does nothing).
func (g *Group) Remove() { g.remove() }

// Child creates a child cgroup of g.
func (g *Group) Child(name string) *Group {
	g.t.Helper()
	c := &Group{Layout: g.Layout, Path: path.Join(g.Path, name), t: g.t}
	c.create() // gives children their own memory cgroups and CPU limits
	return c
}

func (g *Group) dirV2() string  { return g.Layout.V2 + g.Path }
func (g *Group) dirMem() string { return g.Layout.Memory + g.Path }
func (g *Group) dirCPU() string { return g.Layout.CPU + g.Path }

// cpuV1 reports whether the cpu controller is on a v1 hierarchy.
func (g *Group) cpuV1() bool { return g.Layout.CPU != "" && !g.Layout.CPUIsV2() }

func (g *Group) create() {
	g.t.Helper()
	parent := path.Dir(g.dirV2())
	// The root's subtree_control usually has memory and cpu already;
	// ours must, for the child to be a memory cgroup and to take a CPU
	// limit.
	for _, c := range []struct {
		name string
		v2   bool
	}{{"memory", g.Layout.MemoryIsV2()}, {"cpu", g.Layout.CPUIsV2()}} {
		if c.v2 && !slices.Contains(strings.Fields(readString(parent+"/cgroup.subtree_control")), c.name) {
			g.write(parent, "cgroup.subtree_control", "+"+c.name)
		}
	}
	for _, d := range g.dirs() {
		if err := os.Mkdir(d, 0o755); err != nil {
			g.t.Fatalf("create cgroup: %v", err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(g.dirV2(), &st); err != nil {
		g.t.Fatal(err)
	}
	g.ID = st.Ino
	g.t.Cleanup(g.remove)
}

func (g *Group) dirs() []string {
	d := []string{g.dirV2()}
	if !g.Layout.MemoryIsV2() {
		d = append(d, g.dirMem())
	}
	if g.cpuV1() {
		d = append(d, g.dirCPU())
	}
	return d
}

// remove kills what runs in the group and removes it (children are removed
// first: their cleanups were registered later).
func (g *Group) remove() {
	for _, d := range g.dirs() {
		for range 50 {
			for _, pid := range readPids(d + "/cgroup.procs") {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (g *Group) write(dir, file, value string) {
	g.t.Helper()
	if err := os.WriteFile(dir+"/"+file, []byte(value), 0o644); err != nil {
		g.t.Fatalf("write %s/%s: %v", dir, file, err)
	}
}

// SetMemoryLimit limits the group's memory (memory.max on v2,
// memory.limit_in_bytes on v1).
func (g *Group) SetMemoryLimit(bytes int64) {
	g.t.Helper()
	if g.Layout.MemoryIsV2() {
		g.write(g.dirV2(), "memory.max", strconv.FormatInt(bytes, 10))
		return
	}
	g.write(g.dirMem(), "memory.limit_in_bytes", strconv.FormatInt(bytes, 10))
}

// SetCPULimit limits the group to quota of CPU time every period (cpu.max
// on v2, cpu.cfs_quota_us and cpu.cfs_period_us on v1).
func (g *Group) SetCPULimit(quota, period time.Duration) {
	g.t.Helper()
	q, p := strconv.FormatInt(quota.Microseconds(), 10), strconv.FormatInt(period.Microseconds(), 10)
	switch {
	case g.Layout.CPUIsV2():
		g.write(g.dirV2(), "cpu.max", q+" "+p)
	case g.cpuV1():
		g.write(g.dirCPU(), "cpu.cfs_period_us", p)
		g.write(g.dirCPU(), "cpu.cfs_quota_us", q)
	default:
		g.t.Fatal("no cpu controller on this host")
	}
}

// CPUStat is what cgroupfs says of a group's CPU time, read for tests.
type CPUStat struct {
	// UsageUsec is the v2 cpu.stat usage_usec: the group's and its
	// descendants' CPU time.
	UsageUsec int64
	// Periods, Throttled and ThrottledUsec are the group's CPU limit's, from
	// cpu.stat on v2 or v1 (throttled_time in ns).
	Periods, Throttled, ThrottledUsec int64
}

// CPU reads the group's cpu.stat files.
func (g *Group) CPU() CPUStat {
	g.t.Helper()
	v2 := g.kv(g.dirV2()+"/cpu.stat", "usage_usec", "nr_periods", "nr_throttled", "throttled_usec")
	st := CPUStat{UsageUsec: v2["usage_usec"], Periods: v2["nr_periods"], Throttled: v2["nr_throttled"],
		ThrottledUsec: v2["throttled_usec"]}
	if g.cpuV1() {
		v1 := g.kv(g.dirCPU()+"/cpu.stat", "nr_periods", "nr_throttled", "throttled_time")
		st.Periods, st.Throttled, st.ThrottledUsec = v1["nr_periods"], v1["nr_throttled"], v1["throttled_time"]/1000
	}
	return st
}

// Pressure returns the total= of the some and full lines of the group's
// RESOURCE.pressure (cpu, memory, io), microseconds, and false when the
// file does not exist.
func (g *Group) Pressure(resource string) (some, full int64, ok bool) {
	g.t.Helper()
	b, err := os.ReadFile(g.dirV2() + "/" + resource + ".pressure")
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, false
	}
	if err != nil {
		g.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					g.t.Fatalf("%s.pressure: %q", resource, line)
				}
				if f[0] == "some" {
					some = n
				} else if f[0] == "full" {
					full = n
				}
			}
		}
	}
	return some, full, true
}

// WorkingSet returns the group's memory usage minus its inactive file
// pages, as kubelet computes it: memory.current and memory.stat
// inactive_file on v2, memory.usage_in_bytes and total_inactive_file on v1.
func (g *Group) WorkingSet() int64 {
	g.t.Helper()
	var usage, inactive int64
	if g.Layout.MemoryIsV2() {
		usage = g.number(g.dirV2() + "/memory.current")
		inactive = g.kv(g.dirV2()+"/memory.stat", "inactive_file")["inactive_file"]
	} else {
		usage = g.number(g.dirMem() + "/memory.usage_in_bytes")
		inactive = g.kv(g.dirMem()+"/memory.stat", "total_inactive_file")["total_inactive_file"]
	}
	return max(usage-inactive, 0)
}

func (g *Group) kv(file string, keys ...string) map[string]int64 {
	g.t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		g.t.Fatal(err)
	}
	kv, err := cgroupfs.ParseKV(b, keys...)
	if err != nil {
		g.t.Fatal(err)
	}
	return kv
}

func (g *Group) number(file string) int64 {
	g.t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(readString(file)), 10, 64)
	if err != nil {
		g.t.Fatalf("%s: %v", file, err)
	}
	return n
}

// Pids lists the processes in the group's v2 cgroup.
func (g *Group) Pids() []int { return readPids(g.dirV2() + "/cgroup.procs") }

// SumVmRSS returns the sum of VmRSS (RssAnon + RssFile + RssShmem) of the
// group's processes, read from /proc.
func (g *Group) SumVmRSS() int64 {
	g.t.Helper()
	var sum int64
	for _, pid := range g.Pids() {
		p, err := procfs.ReadProcess("/proc", uint32(pid))
		if err != nil {
			continue
		}
		sum += p.RSS.Resident()
	}
	return sum
}

// MemoryStat returns a field of the group's memory.stat. On cgroup v1 the
// field names differ: "file" reads "cache".
func (g *Group) MemoryStat(field string) int64 {
	g.t.Helper()
	dir := g.dirV2()
	if !g.Layout.MemoryIsV2() {
		dir = g.dirMem()
		if field == "file" {
			field = "cache"
		}
	}
	b, err := os.ReadFile(dir + "/memory.stat")
	if err != nil {
		g.t.Fatal(err)
	}
	kv, err := cgroupfs.ParseKV(b, field)
	if err != nil {
		g.t.Fatal(err)
	}
	v, ok := kv[field]
	if !ok {
		g.t.Fatalf("no %s in %s/memory.stat", field, dir)
	}
	return v
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func readPids(p string) []int {
	var pids []int
	for _, f := range strings.Fields(readString(p)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}
