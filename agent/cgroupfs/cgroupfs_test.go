package cgroupfs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

const (
	// This CI machine: systemd hybrid layout.
	hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	// A current Debian/Ubuntu/Fedora host.
	unifiedMountinfo = `22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
27 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
`
	// A pod with a private cgroup namespace and the host's hierarchy
	// bind-mounted at /host/sys/fs/cgroup.
	containerMountinfo = `1200 1100 0:30 /kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw
1201 1100 0:30 / /host/sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw
`
	// Old distributions: cgroup v1 only, with an empty v2 mount from systemd.
	legacyMountinfo = `25 24 0:22 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
27 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
`
	noV2Mountinfo = `26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`
	escapedMountinfo = `26 24 0:23 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw
`
)

func TestLayoutFrom(t *testing.T) {
	tests := []struct {
		name      string
		mountinfo string
		ctrl      string // cgroup.controllers of the chosen v2 root
		want      Layout
		wantErr   error
	}{
		{name: "hybrid", mountinfo: hybridMountinfo, ctrl: "hugetlb\n",
			want: Layout{Mode: Hybrid, V2: "/sys/fs/cgroup/unified", Memory: "/sys/fs/cgroup/memory", CPU: "/sys/fs/cgroup/cpu"}},
		{name: "unified", mountinfo: unifiedMountinfo, ctrl: "cpuset cpu io memory hugetlb pids rdma misc\n",
			want: Layout{Mode: Unified, V2: "/sys/fs/cgroup", Memory: "/sys/fs/cgroup", CPU: "/sys/fs/cgroup"}},
		{name: "container prefers the full hierarchy", mountinfo: containerMountinfo, ctrl: "cpu memory pids",
			want: Layout{Mode: Unified, V2: "/host/sys/fs/cgroup", Memory: "/host/sys/fs/cgroup", CPU: "/host/sys/fs/cgroup"}},
		{name: "legacy v1 with empty v2", mountinfo: legacyMountinfo, ctrl: "",
			want: Layout{Mode: Hybrid, V2: "/sys/fs/cgroup/unified", Memory: "/sys/fs/cgroup/memory", CPU: "/sys/fs/cgroup/cpu,cpuacct"}},
		{name: "no v2", mountinfo: noV2Mountinfo, wantErr: ErrNoCgroup2},
		{name: "escaped path", mountinfo: escapedMountinfo, ctrl: "memory",
			want: Layout{Mode: Unified, V2: "/mnt/my cgroups", Memory: "/mnt/my cgroups", CPU: "/mnt/my cgroups"}},
		{name: "cpu on v1, memory on v2", mountinfo: legacyMountinfo, ctrl: "memory pids",
			want: Layout{Mode: Unified, V2: "/sys/fs/cgroup/unified", Memory: "/sys/fs/cgroup/unified", CPU: "/sys/fs/cgroup/cpu,cpuacct"}},
		{name: "memory on v1 only, no cpu controller anywhere", mountinfo: noV2Mountinfo + escapedMountinfo, ctrl: "",
			want: Layout{Mode: Hybrid, V2: "/mnt/my cgroups", Memory: "/sys/fs/cgroup/memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mounts, err := ParseMountinfo(strings.NewReader(tt.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			got, err := LayoutFrom(mounts, func(string) (string, error) { return tt.ctrl, nil })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("layout = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMountinfoMalformed(t *testing.T) {
	for _, in := range []string{"garbage\n", "1 2 3 4 5 6\n", "1 2 0:1 / /x rw - cgroup2\n"} {
		if _, err := ParseMountinfo(strings.NewReader(in)); err == nil {
			t.Errorf("ParseMountinfo(%q) succeeded", in)
		}
	}
}

func TestDetectLayoutOnThisHost(t *testing.T) {
	l, err := DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.V2 + "/cgroup.procs"); err != nil {
		t.Fatalf("v2 mount %s has no cgroup.procs: %v", l.V2, err)
	}
	if _, err := os.Stat(l.Memory + "/cgroup.procs"); err != nil {
		t.Fatalf("memory mount %s has no cgroup.procs: %v", l.Memory, err)
	}
	t.Logf("layout: %+v", l)
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestHierarchyResolve(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b/c", "a/d", "system.slice/foo.service", "x y"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "a", "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := NewHierarchy(root + "/")
	if err := h.Refresh(); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ dir, path string }{
		{"", "/"}, {"a", "/a"}, {"a/b/c", "/a/b/c"}, {"a/d", "/a/d"},
		{"system.slice/foo.service", "/system.slice/foo.service"}, {"x y", "/x y"},
	}
	for _, tt := range tests {
		id := inode(t, filepath.Join(root, tt.dir))
		got, ok := h.Path(id)
		if !ok || got != tt.path {
			t.Errorf("Path(%d) = %q, %v; want %q", id, got, ok, tt.path)
		}
		back, err := h.ID(tt.path)
		if err != nil || back != id {
			t.Errorf("ID(%q) = %d, %v; want %d", tt.path, back, err, id)
		}
		if h.Dir(tt.path) != filepath.Join(root, tt.dir) {
			t.Errorf("Dir(%q) = %q", tt.path, h.Dir(tt.path))
		}
	}
	if h.Len() != 8 {
		t.Errorf("Len = %d, want 8 directories", h.Len())
	}
	children := func(p string) []string {
		c := slices.Clone(h.Children(p))
		slices.Sort(c)
		return c
	}
	if got := children("/"); !slices.Equal(got, []string{"/a", "/system.slice", "/x y"}) {
		t.Errorf("Children(/) = %q", got)
	}
	if got := children("/a"); !slices.Equal(got, []string{"/a/b", "/a/d"}) {
		t.Errorf("Children(/a) = %q", got)
	}
	if got := h.Children("/a/b/c"); len(got) != 0 {
		t.Errorf("Children of a leaf = %q", got)
	}
	// A cgroup created since the walk is learnt when its id is asked for.
	held := h.Children("/a")
	if err := os.Mkdir(filepath.Join(root, "a/e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ID("/a/e"); err != nil {
		t.Fatal(err)
	}
	if got := children("/a"); !slices.Equal(got, []string{"/a/b", "/a/d", "/a/e"}) {
		t.Errorf("Children(/a) after a new child = %q", got)
	}
	if len(held) != 2 {
		t.Errorf("a slice Children returned before changed: %q", held)
	}
	if err := os.Remove(filepath.Join(root, "a/e")); err != nil {
		t.Fatal(err)
	}

	// A removed cgroup disappears on the next refresh.
	gone := inode(t, filepath.Join(root, "a/b/c"))
	if err := os.Remove(filepath.Join(root, "a/b/c")); err != nil {
		t.Fatal(err)
	}
	if err := h.Refresh(); err != nil {
		t.Fatal(err)
	}
	if p, ok := h.Path(gone); ok {
		t.Errorf("removed cgroup still resolves to %q", p)
	}
	if _, err := h.ID("/a/b/c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ID of removed cgroup: err = %v, want ErrNotFound", err)
	}
	// Removed still names it, until the refresh after.
	if p, ok := h.Removed(gone); !ok || p != "/a/b/c" {
		t.Errorf("Removed(%d) = %q, %v; want /a/b/c", gone, p, ok)
	}
	if p, ok := h.Removed(inode(t, filepath.Join(root, "a/d"))); ok {
		t.Errorf("Removed of a live cgroup = %q", p)
	}
	if err := h.Refresh(); err != nil {
		t.Fatal(err)
	}
	if p, ok := h.Removed(gone); ok {
		t.Errorf("Removed(%d) = %q two refreshes after", gone, p)
	}
	if got := h.Nearest("/a/b/c/d"); got != "/a/b" {
		t.Errorf("Nearest = %q, want /a/b", got)
	}
	if got := h.Nearest("/nope"); got != "/" {
		t.Errorf("Nearest = %q, want /", got)
	}
}

func TestHierarchyRealRoot(t *testing.T) {
	l, err := DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	h := NewHierarchy(l.V2)
	if err := h.Refresh(); err != nil {
		t.Fatal(err)
	}
	// The root cgroup of a v2 hierarchy always has id 1.
	if p, ok := h.Path(1); !ok || p != "/" {
		t.Fatalf("Path(1) = %q, %v; want /", p, ok)
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProcCgroup(self)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ID(p); err != nil {
		t.Fatalf("own cgroup %q does not resolve: %v", p, err)
	}
}

func TestParseKV(t *testing.T) {
	in := []byte("anon 4096\nfile 8192\nshmem 100\nbogus\nMemTotal:       16384 kB\n")
	kv, err := ParseKV(in, "file", "shmem", "MemTotal", "absent")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"file": 8192, "shmem": 100, "MemTotal": 16384 * 1024}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("%s = %d, want %d", k, kv[k], v)
		}
	}
	if _, ok := kv["absent"]; ok {
		t.Error("absent key present")
	}
	if _, err := ParseKV([]byte("file x\n"), "file"); err == nil {
		t.Error("non-numeric value accepted")
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "0::/system.slice/ssh.service\n", want: "/system.slice/ssh.service"},
		{in: "9:name=systemd:/\n4:memory:/process_api/fa36\n0::/\n", want: "/"},
		{in: "4:memory:/x\n", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		got, err := ParseProcCgroup([]byte(tt.in))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseProcCgroup(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func writeStat(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.stat"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLocalPageCache(t *testing.T) {
	root := t.TempDir()
	// v2: hierarchical values; children are subtracted, shmem excluded.
	writeStat(t, filepath.Join(root, "v2/p"), "anon 1\nfile 10000\nshmem 1000\n")
	writeStat(t, filepath.Join(root, "v2/p/c1"), "file 3000\nshmem 500\n")
	writeStat(t, filepath.Join(root, "v2/p/c2"), "file 2000\nshmem 0\n")
	if err := os.MkdirAll(filepath.Join(root, "v2/p/nomem"), 0o755); err != nil {
		t.Fatal(err)
	}
	// v1: local values.
	writeStat(t, filepath.Join(root, "v1/p"), "cache 7000\nshmem 1000\ntotal_cache 99999\n")

	v2 := NewHierarchy(filepath.Join(root, "v2"))
	got, err := v2.LocalPageCache("/p", true)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(10000 - 1000 - (3000 - 500) - 2000); got != want {
		t.Errorf("v2 local page cache = %d, want %d", got, want)
	}
	v1 := NewHierarchy(filepath.Join(root, "v1"))
	if got, err := v1.LocalPageCache("/p", false); err != nil || got != 6000 {
		t.Errorf("v1 local page cache = %d, %v; want 6000", got, err)
	}
	if _, err := v1.LocalPageCache("/absent", false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent cgroup: err = %v", err)
	}
}
