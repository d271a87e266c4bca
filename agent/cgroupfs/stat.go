package cgroupfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// ParseKV parses the "key value" lines of memory.stat, cpu.stat and
// /proc/meminfo style files (a trailing "kB" unit is multiplied out) and
// returns the values of the keys asked for.
func ParseKV(b []byte, keys ...string) (map[string]int64, error) {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	out := make(map[string]int64, len(keys))
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 {
			continue
		}
		k := strings.TrimSuffix(f[0], ":")
		if !want[k] {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", k, err)
		}
		if len(f) > 2 && f[2] == "kB" {
			v *= 1024
		}
		out[k] = v
	}
	return out, s.Err()
}

// LocalPageCache returns the bytes of file page cache (shmem and tmpfs
// excluded) charged to the memory cgroup at path itself, not to its
// descendants.
//
// cgroup v1 reports local values (cache, shmem). cgroup v2 reports
// hierarchical ones (file, shmem), so the children's are subtracted; the v2
// root, which may have no memory.stat, falls back to /proc/meminfo.
func (h *Hierarchy) LocalPageCache(p string, v2 bool) (int64, error) {
	if !v2 {
		b, err := os.ReadFile(h.Dir(p) + "/memory.stat")
		if err != nil {
			return 0, fmt.Errorf("read memory.stat of %s: %w", p, err)
		}
		kv, err := ParseKV(b, "cache", "shmem")
		if err != nil {
			return 0, fmt.Errorf("memory.stat of %s: %w", p, err)
		}
		return max(kv["cache"]-kv["shmem"], 0), nil
	}
	own, err := h.v2FileCache(p)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(h.Dir(p))
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", p, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := h.v2FileCache(strings.TrimSuffix(p, "/") + "/" + e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // no memory controller there, or removed
		}
		if err != nil {
			return 0, err
		}
		own -= c
	}
	return max(own, 0), nil
}

func (h *Hierarchy) v2FileCache(p string) (int64, error) {
	b, err := os.ReadFile(h.Dir(p) + "/memory.stat")
	if errors.Is(err, fs.ErrNotExist) && (p == "/" || p == "") {
		b, err = os.ReadFile("/proc/meminfo")
		if err != nil {
			return 0, fmt.Errorf("read meminfo: %w", err)
		}
		kv, err := ParseKV(b, "Cached", "Shmem")
		if err != nil {
			return 0, fmt.Errorf("meminfo: %w", err)
		}
		return kv["Cached"] - kv["Shmem"], nil
	}
	if err != nil {
		return 0, fmt.Errorf("read memory.stat of %s: %w", p, err)
	}
	kv, err := ParseKV(b, "file", "shmem")
	if err != nil {
		return 0, fmt.Errorf("memory.stat of %s: %w", p, err)
	}
	return kv["file"] - kv["shmem"], nil
}

// ParseProcCgroup returns the cgroup v2 path in the content of
// /proc/<pid>/cgroup (the "0::" line).
func ParseProcCgroup(b []byte) (string, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest, nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 entry: %w", ErrNotFound)
}
