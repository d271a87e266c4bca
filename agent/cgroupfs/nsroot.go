package cgroupfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// NamespaceRoot returns the path, in the cgroup v2 hierarchy h, of the root
// of this process's cgroup namespace: "/" in the host's namespace, or the
// cgroup the namespace was created at (a container's, where the runtime
// gave it a private cgroup namespace while h is a mount of the host's
// hierarchy).
//
// The paths in /proc/<pid>/cgroup are relative to that root, "/../../x"
// for a cgroup outside it, while h walks host paths: InHierarchy joins the
// two. It finds the root from where this process is: its path as
// /proc/self/cgroup says, and the cgroup of h whose cgroup.procs lists it
// (which needs no privilege, unlike reading another process's namespace).
// h must have been refreshed.
func NamespaceRoot(h *Hierarchy, proc string) (string, error) {
	b, err := os.ReadFile(proc + "/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		// A proc tree without this process (not the running kernel's):
		// nothing tells of a namespace, take its paths as the hierarchy's.
		return "/", nil
	}
	if err != nil {
		return "", fmt.Errorf("cgroup namespace root: %w", err)
	}
	rel, err := ParseProcCgroup(b)
	if err != nil {
		return "", fmt.Errorf("cgroup namespace root: %w", err)
	}
	rel = path.Clean("/" + rel)
	pid := os.Getpid()
	if lists(h.Dir(rel), pid) {
		return "/", nil // the usual case: the host's namespace
	}
	own, err := h.cgroupOf(pid)
	if err != nil {
		return "", fmt.Errorf("cgroup namespace root: %w", err)
	}
	if rel == "/" {
		return own, nil
	}
	root, ok := strings.CutSuffix(own, rel)
	if !ok {
		return "", fmt.Errorf("cgroup namespace root: this process is in %s, which does not end in %s, its path in its namespace", own, rel)
	}
	if root == "" {
		root = "/"
	}
	return root, nil
}

// InHierarchy returns the hierarchy path of p, a path of /proc/<pid>/cgroup
// read in a cgroup namespace rooted at root.
func InHierarchy(root, p string) string {
	return path.Join("/", root, p)
}

// cgroupOf finds the cgroup whose cgroup.procs lists pid.
func (h *Hierarchy) cgroupOf(pid int) (string, error) {
	h.mu.Lock()
	paths := make([]string, 0, len(h.byPath))
	for p := range h.byPath {
		paths = append(paths, p)
	}
	h.mu.Unlock()
	for _, p := range paths {
		if lists(h.Dir(p), pid) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no cgroup of %s lists pid %d", ErrNotFound, h.mount, pid)
}

// lists reports whether the cgroup in dir lists pid among its processes.
func lists(dir string, pid int) bool {
	b, err := os.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		return false // removed since, or not readable
	}
	want := strconv.Itoa(pid)
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == want {
			return true
		}
	}
	return false
}
