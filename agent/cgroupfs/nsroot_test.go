package cgroupfs_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/testenv"
)

const nsRootHelper = "PENNY_NSROOT_HELPER"

// TestMain turns the test binary into the helper of TestNamespaceRoot
// when that one starts it.
func TestMain(m *testing.M) {
	if os.Getenv(nsRootHelper) == "1" {
		os.Exit(nsRootMain())
	}
	os.Exit(m.Run())
}

// nsRootMain prints what NamespaceRoot finds, and the hierarchy path of
// pid 1's cgroup as this process reads it.
func nsRootMain() int {
	l, err := cgroupfs.DetectLayout()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	h := cgroupfs.NewHierarchy(l.V2)
	if err := h.Refresh(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	root, err := cgroupfs.NamespaceRoot(h, "/proc")
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	b, err := os.ReadFile("/proc/1/cgroup")
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	init, err := cgroupfs.ParseProcCgroup(b)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println(root, init, cgroupfs.InHierarchy(root, init))
	return 0
}

// TestNamespaceRoot runs a process in a cgroup of its own, in a cgroup
// namespace rooted there (unshare --cgroup, as a container runtime makes
// one), and checks that it finds its namespace's root in the host's
// hierarchy and so the host path of a cgroup outside its namespace.
func TestNamespaceRoot(t *testing.T) {
	cgtest.RequireRoot(t)
	unshare := testenv.RequireTool(t, "unshare", "apt-get install util-linux")
	l, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	g := cgtest.NewGroup(t, l).Child("container")
	b, err := os.ReadFile("/proc/1/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	initPath, err := cgroupfs.ParseProcCgroup(b)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(l.V2 + g.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cmd := exec.Command(unshare, "--cgroup", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nsRootHelper+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		t.Fatalf("helper printed %q", out)
	}
	if f[0] != g.Path {
		t.Errorf("namespace root = %s, want %s", f[0], g.Path)
	}
	if !strings.HasPrefix(f[1], "/..") {
		t.Errorf("pid 1's cgroup read in the namespace is %s, want a path above its root", f[1])
	}
	if f[2] != initPath {
		t.Errorf("pid 1's cgroup mapped to %s, want %s", f[2], initPath)
	}

	// Outside a cgroup namespace of its own, the root is the hierarchy's.
	h := cgroupfs.NewHierarchy(l.V2)
	if err := h.Refresh(); err != nil {
		t.Fatal(err)
	}
	if root, err := cgroupfs.NamespaceRoot(h, "/proc"); err != nil || root != "/" {
		t.Errorf("NamespaceRoot here = %q, %v; want /", root, err)
	}
}

func TestInHierarchy(t *testing.T) {
	tests := []struct{ root, p, want string }{
		{"/", "/system.slice/x.service", "/system.slice/x.service"},
		{"/kubepods.slice/a.slice/cri-containerd-1.scope", "/", "/kubepods.slice/a.slice/cri-containerd-1.scope"},
		{"/kubepods.slice/a.slice/cri-containerd-1.scope", "/../../b.slice/cri-containerd-2.scope", "/kubepods.slice/b.slice/cri-containerd-2.scope"},
		{"/k/c", "/../../../..", "/"},
	}
	for _, tt := range tests {
		if got := cgroupfs.InHierarchy(tt.root, tt.p); got != tt.want {
			t.Errorf("InHierarchy(%q, %q) = %q, want %q", tt.root, tt.p, got, tt.want)
		}
	}
}
