package cgroupfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNoCgroup2 means the host has no cgroup v2 hierarchy mounted.
var ErrNoCgroup2 = errors.New("cgroupfs: no cgroup v2 hierarchy mounted")

// Mode names the host's cgroup layout.
type Mode string

const (
	// Unified: cgroup v2 only, the memory controller on v2.
	Unified Mode = "unified"
	// Hybrid: cgroup v2 for process placement, the memory controller on v1.
	Hybrid Mode = "hybrid"
)

// Layout is where the host's cgroup hierarchies are mounted.
type Layout struct {
	Mode Mode
	// V2 is the mount point of the cgroup v2 hierarchy.
	V2 string
	// Memory is the mount point of the hierarchy that holds the memory
	// controller: V2 in unified mode, the v1 memory hierarchy in hybrid mode.
	Memory string
	// CPU is the mount point of the hierarchy that holds the cpu
	// controller (CPU limits and their throttling): V2 when cgroup v2 has
	// it, else the v1 cpu hierarchy, else "" (no throttling to read). CPU
	// time and pressure stall information are read from V2 in every
	// layout: every cgroup v2 has cpu.stat and, where the kernel has PSI,
	// *.pressure, with or without controllers.
	CPU string
}

// CPUIsV2 reports whether the cpu controller (throttling) is on cgroup v2.
func (l Layout) CPUIsV2() bool { return l.CPU != "" && l.CPU == l.V2 }

// MemoryIsV2 reports whether memory cgroups are v2 cgroups.
func (l Layout) MemoryIsV2() bool { return l.Mode == Unified }

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Root       string // root of the mount within its filesystem
	MountPoint string
	FSType     string
	Options    []string // super block options (for cgroup v1: the controllers)
}

// ParseMountinfo parses the format of /proc/<pid>/mountinfo.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var mounts []Mount
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+3 {
			return nil, fmt.Errorf("malformed mountinfo line %q", s.Text())
		}
		mounts = append(mounts, Mount{
			Root:       unescape(fields[3]),
			MountPoint: unescape(fields[4]),
			FSType:     fields[sep+1],
			Options:    strings.Split(fields[sep+3], ","),
		})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// unescape decodes the octal escapes (\040 for space) of mountinfo paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// DetectLayout reads /proc/self/mountinfo and the v2 root's controllers.
func DetectLayout() (Layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Layout{}, fmt.Errorf("detect cgroup layout: %w", err)
	}
	defer f.Close()
	mounts, err := ParseMountinfo(f)
	if err != nil {
		return Layout{}, fmt.Errorf("detect cgroup layout: %w", err)
	}
	return LayoutFrom(mounts, func(v2 string) (string, error) {
		b, err := os.ReadFile(v2 + "/cgroup.controllers")
		return string(b), err
	})
}

// LayoutFrom picks the hierarchies from a mount table. controllers returns
// the content of cgroup.controllers at the root of a cgroup v2 mount.
//
// The v2 mount preferred is the one whose root is the hierarchy's root (a
// cgroup namespace or bind mount may show a subtree), and among those
// /sys/fs/cgroup, then /sys/fs/cgroup/unified, then any other.
func LayoutFrom(mounts []Mount, controllers func(v2 string) (string, error)) (Layout, error) {
	var v2, memv1, cpuv1 string
	rank := func(m Mount) int {
		r := 0
		if m.Root == "/" {
			r += 10
		}
		switch m.MountPoint {
		case "/sys/fs/cgroup":
			r += 2
		case "/sys/fs/cgroup/unified":
			r++
		}
		return r
	}
	best := -1
	for _, m := range mounts {
		switch m.FSType {
		case "cgroup2":
			if r := rank(m); r > best {
				best, v2 = r, m.MountPoint
			}
		case "cgroup":
			for _, o := range m.Options {
				if o == "memory" && (memv1 == "" || m.Root == "/") {
					memv1 = m.MountPoint
				}
				if o == "cpu" && (cpuv1 == "" || m.Root == "/") {
					cpuv1 = m.MountPoint
				}
			}
		}
	}
	if v2 == "" {
		return Layout{}, ErrNoCgroup2
	}
	ctrl, err := controllers(v2)
	if err != nil {
		return Layout{}, fmt.Errorf("read controllers of %s: %w", v2, err)
	}
	l := Layout{Mode: Hybrid, V2: v2, Memory: memv1, CPU: cpuv1}
	if hasWord(ctrl, "memory") || memv1 == "" {
		l.Mode, l.Memory = Unified, v2
	}
	if hasWord(ctrl, "cpu") || cpuv1 == "" && l.Mode == Unified {
		l.CPU = v2
	}
	return l, nil
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
