package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/nodemeta"
)

// NodeFacts combines what the agent knows of its node into the facts it
// ships as agent metadata: each fact from the command line (flags) if it
// gives it, else from the Node object (kube, nil when unknown), else from
// the host (capacity only). The name is always node.
func NodeFacts(node string, flags nodemeta.Facts, kube *nodemeta.Facts, host nodemeta.Facts) nodemeta.Facts {
	flags.Source, host.Source = nodemeta.SourceFlags, nodemeta.SourceHost
	var k nodemeta.Facts
	if kube != nil {
		k = *kube
		k.Source = nodemeta.SourceKubernetes
	}
	f := nodemeta.Combine(flags, k, host)
	f.Name = node
	return f
}

// HostFacts reads the host's capacity: its online CPUs (sys is the sysfs
// mount, /sys) and its memory (proc is the procfs mount, /proc). They are
// the host's even in a container: neither file is namespaced.
func HostFacts(proc, sys string) (nodemeta.Facts, error) {
	b, err := os.ReadFile(filepath.Join(sys, "devices/system/cpu/online"))
	if err != nil {
		return nodemeta.Facts{}, fmt.Errorf("online cpus: %w", err)
	}
	cpus, err := parseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return nodemeta.Facts{}, fmt.Errorf("online cpus: %w", err)
	}
	b, err = os.ReadFile(filepath.Join(proc, "meminfo"))
	if err != nil {
		return nodemeta.Facts{}, fmt.Errorf("memory: %w", err)
	}
	kv, err := cgroupfs.ParseKV(b, "MemTotal")
	if err != nil || kv["MemTotal"] <= 0 {
		return nodemeta.Facts{}, fmt.Errorf("memory: no MemTotal in %s/meminfo (%v)", proc, err)
	}
	return nodemeta.Facts{CapacityCPUMillis: int64(cpus) * 1000, CapacityMemoryBytes: kv["MemTotal"],
		Source: nodemeta.SourceHost}, nil
}

// maxCPUs bounds a CPU list (the kernel's NR_CPUS is at most 8192).
const maxCPUs = 1 << 16

// parseCPUList counts the CPUs of a kernel CPU list, such as "0-3,8,10-11".
func parseCPUList(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty cpu list")
	}
	n := 0
	for r := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("cpu list %q: bad cpu %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("cpu list %q: bad range %q", s, r)
			}
		}
		if b >= maxCPUs {
			return 0, fmt.Errorf("cpu list %q: cpu %d beyond %d", s, b, maxCPUs)
		}
		n += b - a + 1
	}
	return n, nil
}
