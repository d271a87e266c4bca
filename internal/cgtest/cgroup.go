package cgtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path"
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

// Group is a cgroup created for a test, in the v2 hierarchy and, in hybrid
// mode, at the same path in the v1 memory hierarchy.
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
	if g.Layout.MemoryIsV2() {
		// Give children their own memory cgroups.
		g.write(g.dirV2(), "cgroup.subtree_control", "+memory")
	}
	c.create()
	return c
}

func (g *Group) dirV2() string  { return g.Layout.V2 + g.Path }
func (g *Group) dirMem() string { return g.Layout.Memory + g.Path }

func (g *Group) create() {
	g.t.Helper()
	if g.Layout.MemoryIsV2() {
		parent := path.Dir(g.dirV2())
		// The root's subtree_control usually has memory already; ours
		// must, for the child to be a memory cgroup.
		if !strings.Contains(readString(parent+"/cgroup.subtree_control"), "memory") {
			g.write(parent, "cgroup.subtree_control", "+memory")
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
	if g.Layout.MemoryIsV2() {
		return []string{g.dirV2()}
	}
	return []string{g.dirV2(), g.dirMem()}
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
