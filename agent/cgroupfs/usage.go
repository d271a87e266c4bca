package cgroupfs

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CPUStat is a cgroup's CPU accounting, from cpu.stat.
type CPUStat struct {
	// UsageUsec is the CPU time used by the cgroup's tasks and its
	// descendants', microseconds (cgroup v2 usage_usec).
	UsageUsec uint64
	// Periods, ThrottledPeriods and ThrottledUsec count the cgroup's own
	// CPU limit (cpu.max, cpu.cfs_quota_us): its enforcement periods in
	// which it had runnable tasks, those at whose end it was throttled, and
	// the time its tasks were throttled, microseconds. Zero without a
	// limit.
	Periods, ThrottledPeriods, ThrottledUsec uint64
}

// Pressure is one resource's pressure stall information: the total time,
// microseconds, during which some (at least one) and all of the cgroup's
// non-idle tasks were stalled on it.
type Pressure struct {
	Some, Full uint64
}

// Resources of pressure stall information, indexes of the array
// StatReader.Pressure fills.
const (
	PressureCPU = iota
	PressureMemory
	PressureIO
	PressureResources
)

// Memory is a memory cgroup's charged memory and the part of it that is
// inactive file pages, both including its descendants'.
type Memory struct {
	Usage, InactiveFile uint64
}

// WorkingSet is what kubelet and cAdvisor call the working set: usage
// minus inactive file pages (which the kernel reclaims first), zero when
// inactive file pages exceed usage.
func (m Memory) WorkingSet() uint64 {
	if m.InactiveFile >= m.Usage {
		return 0
	}
	return m.Usage - m.InactiveFile
}

// StatReader reads the per-interval statistics of cgroups: CPU time and
// throttling, pressure stall information and memory usage. It reuses its
// buffers, so a read allocates nothing, and it is not safe for concurrent
// use.
//
// Given a *Files, it keeps the files it opens for a cgroup open, at most
// maxOpen of them in all, and reads them again in place (pread at offset
// 0 makes cgroupfs generate a file afresh): that saves the path lookup of
// an open, most of the cost of reading a small file. Without (nil) it
// opens and closes each file.
//
// A missing file is reported as an error that matches fs.ErrNotExist (a
// cgroup without that controller, a kernel without PSI, a cgroup removed
// meanwhile).
type StatReader struct {
	buf     []byte
	path    []byte
	open    int // files kept open
	maxOpen int
}

// DefaultMaxOpenFiles bounds the statistics files a StatReader keeps open.
const DefaultMaxOpenFiles = 4096

// NewStatReader returns a reader that keeps at most maxOpen files open (0:
// DefaultMaxOpenFiles, negative: none).
func NewStatReader(maxOpen int) *StatReader {
	if maxOpen == 0 {
		maxOpen = DefaultMaxOpenFiles
	}
	return &StatReader{buf: make([]byte, 8<<10), path: make([]byte, 0, 512), maxOpen: max(maxOpen, 0)}
}

// The statistics files of a cgroup, indexes of Files.
const (
	fileCPUStat = iota
	fileCPUStatV1
	fileCPUPressure
	fileMemoryPressure
	fileIOPressure
	fileMemoryUsage
	fileMemoryStat
	numFiles
)

// Files are the statistics files of one cgroup that a StatReader keeps
// open. The zero value has none open; Close closes them.
type Files struct {
	fd   [numFiles]int32 // fd + 1: 0 is closed
	from *StatReader
}

// Open reports whether any file is open.
func (f *Files) Open() bool { return f.from != nil }

// Close closes the open files.
func (f *Files) Close() {
	if f == nil || f.from == nil {
		return
	}
	for i, fd := range f.fd {
		if fd != 0 {
			_ = unix.Close(int(fd - 1))
			f.fd[i] = 0
			f.from.open--
		}
	}
	f.from = nil
}

// OpenFiles returns how many files are kept open.
func (r *StatReader) OpenFiles() int { return r.open }

// CPU reads the cgroup v2 cpu.stat in v2dir (usage, and throttling when
// cpuV2), and, when cpuDir is set and the cpu controller is on cgroup v1,
// the throttling in cpuDir's cpu.stat (nr_periods, nr_throttled,
// throttled_time in nanoseconds). A v1 cgroup that does not exist means no
// limit: zero throttling.
func (r *StatReader) CPU(f *Files, v2dir, cpuDir string, cpuV2 bool) (CPUStat, error) {
	var st CPUStat
	b, err := r.readFile(f, fileCPUStat, v2dir, "cpu.stat")
	if err != nil {
		return st, err
	}
	var ok bool
	if st.UsageUsec, ok = lineValue(b, "usage_usec"); !ok {
		return st, fmt.Errorf("%s/cpu.stat: no usage_usec", v2dir)
	}
	if cpuV2 {
		st.Periods, _ = lineValue(b, "nr_periods")
		st.ThrottledPeriods, _ = lineValue(b, "nr_throttled")
		st.ThrottledUsec, _ = lineValue(b, "throttled_usec")
		return st, nil
	}
	if cpuDir == "" {
		return st, nil
	}
	b, err = r.readFile(f, fileCPUStatV1, cpuDir, "cpu.stat")
	if isNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.Periods, _ = lineValue(b, "nr_periods")
	st.ThrottledPeriods, _ = lineValue(b, "nr_throttled")
	ns, _ := lineValue(b, "throttled_time")
	st.ThrottledUsec = ns / 1000
	return st, nil
}

var pressureFiles = [PressureResources]string{"cpu.pressure", "memory.pressure", "io.pressure"}

// Pressure reads the cgroup v2 cpu.pressure, memory.pressure and
// io.pressure in v2dir into p. It returns false, and no error, when the
// kernel reports no pressure stall information for the cgroup (built
// without PSI, booted with psi=0, or cgroup.pressure turned off).
func (r *StatReader) Pressure(f *Files, v2dir string, p *[PressureResources]Pressure) (bool, error) {
	for i, name := range pressureFiles {
		b, err := r.readFile(f, fileCPUPressure+i, v2dir, name)
		if isNotExist(err) || errors.Is(err, unix.EOPNOTSUPP) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		p[i] = parsePressure(b)
	}
	return true, nil
}

// Memory reads a memory cgroup's usage and inactive file pages: on cgroup
// v2 memory.current and memory.stat's inactive_file, on v1
// memory.usage_in_bytes and memory.stat's total_inactive_file (both
// hierarchical, like v2's).
func (r *StatReader) Memory(f *Files, memDir string, v2 bool) (Memory, error) {
	var m Memory
	usage, stat, inactive := "memory.current", "memory.stat", "inactive_file"
	if !v2 {
		usage, inactive = "memory.usage_in_bytes", "total_inactive_file"
	}
	b, err := r.readFile(f, fileMemoryUsage, memDir, usage)
	if err != nil {
		return m, err
	}
	var ok bool
	if m.Usage, ok = parseUint(bytes.TrimSpace(b)); !ok {
		return m, fmt.Errorf("%s/%s: not a number", memDir, usage)
	}
	if b, err = r.readFile(f, fileMemoryStat, memDir, stat); err != nil {
		return m, err
	}
	m.InactiveFile, _ = lineValue(b, inactive)
	return m, nil
}

// HostMemory returns the memory of the whole host from meminfo (the
// content of /proc/meminfo) as a root memory cgroup would count it, which
// cgroup v2 has no files for: MemTotal - MemFree used, Inactive(file)
// inactive.
func HostMemory(meminfo []byte) (Memory, error) {
	total, ok1 := lineValue(meminfo, "MemTotal:")
	free, ok2 := lineValue(meminfo, "MemFree:")
	inactive, ok3 := lineValue(meminfo, "Inactive(file):")
	if !ok1 || !ok2 || !ok3 {
		return Memory{}, errors.New("meminfo: no MemTotal, MemFree or Inactive(file)")
	}
	return Memory{Usage: (total - min(free, total)) * 1024, InactiveFile: inactive * 1024}, nil
}

// ReadFile reads a whole file into the reader's buffer, valid until the
// next read.
func (r *StatReader) ReadFile(path string) ([]byte, error) {
	return r.readFile(nil, 0, path, "")
}

// readFile reads dir/file (or dir alone when file is empty) into r.buf:
// from f's open file which when there is one, else opening it, with raw
// system calls on a NUL-terminated path kept in r.path (no allocation),
// and keeping it open in f when f is given and the limit allows.
func (r *StatReader) readFile(f *Files, which int, dir, file string) ([]byte, error) {
	if f != nil && f.fd[which] != 0 {
		b, err := r.read(int(f.fd[which]-1), dir, file)
		if err == nil {
			return b, nil
		}
		// Removed, or replaced by another cgroup at the same path: open
		// the path again.
		_ = unix.Close(int(f.fd[which] - 1))
		f.fd[which] = 0
		r.open--
	}
	r.path = append(r.path[:0], dir...)
	if file != "" {
		r.path = append(append(r.path, '/'), file...)
	}
	r.path = append(r.path, 0)
	fd, err := openat(r.path)
	if err != nil {
		return nil, err
	}
	b, err := r.read(fd, dir, file)
	if err != nil || f == nil || r.open >= r.maxOpen {
		_ = unix.Close(fd)
		return b, err
	}
	f.fd[which] = int32(fd + 1)
	f.from = r
	r.open++
	return b, nil
}

// read reads a whole file from offset 0 into r.buf. cgroupfs generates a
// statistics file whole on its first read, so a read that returns less
// than asked is the end of the file.
func (r *StatReader) read(fd int, dir, file string) ([]byte, error) {
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Pread(fd, r.buf[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENODEV {
			return nil, unix.ENOENT // the cgroup was removed since the open
		}
		if err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", dir, file, err)
		}
		n += m
		if m == 0 || n < len(r.buf) {
			return r.buf[:n], nil
		}
	}
}

// atFDCWD is AT_FDCWD as a variable: a negative constant does not convert
// to uintptr.
var atFDCWD = unix.AT_FDCWD

func openat(path []byte) (int, error) {
	for {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(&path[0])),
			uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
		switch e {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		}
		if e == unix.ENODEV {
			e = unix.ENOENT
		}
		return -1, e // matches fs.ErrNotExist for ENOENT
	}
}

func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV)
}

// lineValue returns the unsigned number after key and a space at the start
// of a line of b ("usage_usec 123", "MemTotal:  123 kB").
func lineValue(b []byte, key string) (uint64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > len(key) && string(line[:len(key)]) == key && (line[len(key)] == ' ' || line[len(key)] == '\t') {
			return parseUint(bytes.TrimLeft(line[len(key):], " \t"))
		}
	}
	return 0, false
}

// parsePressure reads the total= of the some and full lines of a
// *.pressure file; a missing line (full of an old kernel's cpu.pressure)
// is zero.
func parsePressure(b []byte) Pressure {
	var p Pressure
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		var dst *uint64
		switch {
		case bytes.HasPrefix(line, []byte("some ")):
			dst = &p.Some
		case bytes.HasPrefix(line, []byte("full ")):
			dst = &p.Full
		default:
			continue
		}
		if i := bytes.Index(line, []byte("total=")); i >= 0 {
			*dst, _ = parseUint(line[i+len("total="):])
		}
	}
	return p
}

// parseUint parses the decimal digits at the start of b, which must have
// at least one; it saturates rather than overflow.
func parseUint(b []byte) (uint64, bool) {
	var v uint64
	n := 0
	for ; n < len(b) && b[n] >= '0' && b[n] <= '9'; n++ {
		d := uint64(b[n] - '0')
		if v > (1<<64-1-d)/10 {
			v = 1<<64 - 1
			continue
		}
		v = v*10 + d
	}
	return v, n > 0
}
