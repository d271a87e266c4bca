package procfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/pennyhq/penny/agent/cgroupfs"
)

// RSS is a process's resident memory in bytes, by kind.
type RSS struct {
	File  int64 // RssFile: file-backed pages mapped
	Anon  int64 // RssAnon: anonymous pages
	Swap  int64 // VmSwap: swapped out anonymous pages (not resident)
	Shmem int64 // RssShmem: shared memory and tmpfs pages mapped
}

// Resident returns File + Anon + Shmem, what the kernel reports as VmRSS.
func (r RSS) Resident() int64 { return r.File + r.Anon + r.Shmem }

// Process is one user-space process (thread group).
type Process struct {
	PID    uint32
	Cgroup string // cgroup v2 path, as in /proc/<pid>/cgroup
	RSS    RSS
}

// ParseStatus reads the memory fields of /proc/<pid>/status. Kernel threads
// have none and return ok == false.
func ParseStatus(b []byte) (rss RSS, ok bool, err error) {
	kv, err := cgroupfs.ParseKV(b, "VmRSS", "RssAnon", "RssFile", "RssShmem", "VmSwap")
	if err != nil {
		return RSS{}, false, fmt.Errorf("parse status: %w", err)
	}
	if _, ok := kv["VmRSS"]; !ok {
		return RSS{}, false, nil
	}
	return RSS{File: kv["RssFile"], Anon: kv["RssAnon"], Swap: kv["VmSwap"], Shmem: kv["RssShmem"]}, true, nil
}

// ReadProcess reads one process. It returns fs.ErrNotExist when the process
// is gone or is a kernel thread.
func ReadProcess(proc string, pid uint32) (Process, error) {
	dir := proc + "/" + strconv.FormatUint(uint64(pid), 10)
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		return Process{}, err
	}
	rss, ok, err := ParseStatus(b)
	if err != nil {
		return Process{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	if !ok {
		return Process{}, fs.ErrNotExist
	}
	cg, err := os.ReadFile(dir + "/cgroup")
	if err != nil {
		return Process{}, err
	}
	path, err := cgroupfs.ParseProcCgroup(cg)
	if err != nil {
		return Process{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return Process{PID: pid, Cgroup: path, RSS: rss}, nil
}

// Scan reads every user-space process under proc (normally "/proc").
// Processes that exit during the scan are skipped.
func Scan(proc string) ([]Process, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	out := make([]Process, 0, len(entries))
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || !e.IsDir() {
			continue
		}
		p, err := ReadProcess(proc, uint32(pid))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, cgroupfs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("scan processes: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Alive reports whether a process with that pid exists.
func Alive(proc string, pid uint32) bool {
	_, err := os.Stat(proc + "/" + strconv.FormatUint(uint64(pid), 10))
	return err == nil
}
