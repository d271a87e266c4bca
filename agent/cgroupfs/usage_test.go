package cgroupfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cgroupDir writes files into a temporary directory standing for a
// cgroup's.
func cgroupDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	v2CPUStat = `usage_usec 5524528590
user_usec 4294543989
system_usec 1229984600
nice_usec 0
core_sched.force_idle_usec 0
nr_periods 1200
nr_throttled 300
throttled_usec 45000123
nr_bursts 0
burst_usec 0
`
	v2CPUStatNoController = "usage_usec 77\nuser_usec 70\nsystem_usec 7\n"
	v1CPUStat             = "nr_periods 50\nnr_throttled 10\nthrottled_time 2500000999\nnr_bursts 0\nburst_time 0\n"
	pressureFile          = "some avg10=28.44 avg60=20.11 avg300=29.34 total=1902451264\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=15672\n"
	v2MemoryStat          = "anon 1000\nfile 9000\nkernel 10\nactive_anon 900\ninactive_anon 100\nactive_file 5000\ninactive_file 4000\n"
	v1MemoryStat          = "cache 9000\nrss 1000\ninactive_file 10\ntotal_cache 9000\ntotal_rss 1000\ntotal_inactive_file 4000\n"
)

func TestStatReaderCPU(t *testing.T) {
	v2 := cgroupDir(t, map[string]string{"cpu.stat": v2CPUStat})
	bare := cgroupDir(t, map[string]string{"cpu.stat": v2CPUStatNoController})
	v1 := cgroupDir(t, map[string]string{"cpu.stat": v1CPUStat})
	tests := []struct {
		name          string
		v2dir, cpuDir string
		cpuV2         bool
		want          CPUStat
	}{
		{"unified", v2, v2, true, CPUStat{UsageUsec: 5524528590, Periods: 1200, ThrottledPeriods: 300, ThrottledUsec: 45000123}},
		{"unified without the cpu controller", bare, bare, true, CPUStat{UsageUsec: 77}},
		{"hybrid: throttling from v1 in ns", bare, v1, false, CPUStat{UsageUsec: 77, Periods: 50, ThrottledPeriods: 10, ThrottledUsec: 2500000}},
		{"hybrid without a v1 cgroup at the path", bare, filepath.Join(v1, "nope"), false, CPUStat{UsageUsec: 77}},
		{"no cpu controller anywhere", bare, "", false, CPUStat{UsageUsec: 77}},
	}
	r := NewStatReader(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.CPU(nil, tt.v2dir, tt.cpuDir, tt.cpuV2)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("CPU = %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := r.CPU(nil, filepath.Join(v2, "gone"), "", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing cgroup: err = %v, want one matching fs.ErrNotExist", err)
	}
	if _, err := r.CPU(nil, cgroupDir(t, map[string]string{"cpu.stat": "user_usec 1\n"}), "", true); err == nil {
		t.Error("cpu.stat without usage_usec accepted")
	}
}

func TestStatReaderPressure(t *testing.T) {
	r := NewStatReader(0)
	dir := cgroupDir(t, map[string]string{"cpu.pressure": pressureFile,
		"memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=33521\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=12\n",
		// An old kernel: no full line for cpu; io without a trailing newline.
		"io.pressure": "some avg10=3.44 avg60=2.01 avg300=1.62 total=56484572"})
	var p [PressureResources]Pressure
	ok, err := r.Pressure(nil, dir, &p)
	if err != nil || !ok {
		t.Fatalf("Pressure = %v, %v", ok, err)
	}
	want := [PressureResources]Pressure{{1902451264, 15672}, {33521, 12}, {56484572, 0}}
	if p != want {
		t.Fatalf("pressure %+v, want %+v", p, want)
	}
	// No PSI: not an error, and not zero either.
	ok, err = r.Pressure(nil, cgroupDir(t, map[string]string{"cpu.stat": v2CPUStat}), &p)
	if ok || err != nil {
		t.Fatalf("without pressure files: %v, %v; want false, nil", ok, err)
	}
}

func TestStatReaderMemory(t *testing.T) {
	r := NewStatReader(0)
	v2 := cgroupDir(t, map[string]string{"memory.current": "10000\n", "memory.stat": v2MemoryStat})
	v1 := cgroupDir(t, map[string]string{"memory.usage_in_bytes": "10000\n", "memory.stat": v1MemoryStat})
	for _, tt := range []struct {
		name string
		dir  string
		v2   bool
	}{{"v2", v2, true}, {"v1 reads the hierarchical total_inactive_file", v1, false}} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := r.Memory(nil, tt.dir, tt.v2)
			if err != nil {
				t.Fatal(err)
			}
			if m != (Memory{Usage: 10000, InactiveFile: 4000}) || m.WorkingSet() != 6000 {
				t.Fatalf("memory %+v, working set %d", m, m.WorkingSet())
			}
		})
	}
	if _, err := r.Memory(nil, cgroupDir(t, nil), true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no memory controller: err = %v, want fs.ErrNotExist", err)
	}
	if ws := (Memory{Usage: 10, InactiveFile: 20}).WorkingSet(); ws != 0 {
		t.Errorf("working set below zero = %d, want 0", ws)
	}
}

func TestHostMemory(t *testing.T) {
	m, err := HostMemory([]byte("MemTotal:       16000 kB\nMemFree:         1000 kB\nMemAvailable:    9000 kB\nInactive(file):   3000 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Usage != 15000*1024 || m.InactiveFile != 3000*1024 {
		t.Fatalf("host memory %+v", m)
	}
	if _, err := HostMemory([]byte("MemTotal: 1 kB\n")); err == nil {
		t.Error("meminfo without MemFree accepted")
	}
}

// TestStatReaderOnThisHost reads the real files of the cgroup v2 root,
// opened anew and kept open, and checks that reading allocates nothing.
func TestStatReaderOnThisHost(t *testing.T) {
	l, err := DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	r := NewStatReader(0)
	var files Files
	defer files.Close()
	for _, f := range []*Files{nil, &files} {
		st, err := r.CPU(f, l.V2, "", true)
		if err != nil {
			t.Fatalf("read %s/cpu.stat: %v", l.V2, err)
		}
		if st.UsageUsec == 0 {
			t.Errorf("the root's CPU usage is zero")
		}
		var p [PressureResources]Pressure
		ok, err := r.Pressure(f, l.V2, &p)
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat("/proc/pressure/cpu")
		if ok != (statErr == nil) {
			t.Errorf("pressure known %v, but /proc/pressure/cpu: %v", ok, statErr)
		}
		if allocs := testing.AllocsPerRun(50, func() {
			_, _ = r.CPU(f, l.V2, "", true)
			_, _ = r.Pressure(f, l.V2, &p)
		}); allocs != 0 {
			t.Errorf("%v allocations per read, want 0", allocs)
		}
	}
	if !files.Open() || r.OpenFiles() != 1+PressureResources {
		t.Fatalf("%d files kept open, want %d", r.OpenFiles(), 1+PressureResources)
	}
	// A file kept open reads the current values: cgroupfs generates it
	// again at each read from offset 0.
	before, _ := r.CPU(&files, l.V2, "", true)
	for t0 := time.Now(); time.Since(t0) < 20*time.Millisecond; {
	}
	after, err := r.CPU(&files, l.V2, "", true)
	if err != nil || after.UsageUsec < before.UsageUsec+10000 {
		t.Fatalf("CPU time read again from an open file: %d, then %d (%v) after 20ms of work", before.UsageUsec, after.UsageUsec, err)
	}
	files.Close()
	if r.OpenFiles() != 0 || files.Open() {
		t.Fatalf("%d files open after Close", r.OpenFiles())
	}
}

func TestStatReaderKeepsFilesOpenWithinItsLimit(t *testing.T) {
	dir := cgroupDir(t, map[string]string{"cpu.stat": v2CPUStatNoController, "cpu.pressure": pressureFile,
		"memory.pressure": pressureFile, "io.pressure": pressureFile})
	r := NewStatReader(2)
	var a, b Files
	defer a.Close()
	defer b.Close()
	var p [PressureResources]Pressure
	if _, err := r.Pressure(&a, dir, &p); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CPU(&b, dir, "", true); err != nil {
		t.Fatal(err)
	}
	if r.OpenFiles() != 2 || b.Open() {
		t.Fatalf("%d files open (b: %v), want the limit of 2, all a's", r.OpenFiles(), b.Open())
	}
	// A file kept open reads what it holds now.
	if err := os.WriteFile(filepath.Join(dir, "cpu.pressure"), []byte("some total=5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Pressure(&a, dir, &p); err != nil || p[PressureCPU].Some != 5 {
		t.Fatalf("after a rewrite: %+v, %v", p, err)
	}
	if r.OpenFiles() != 2 {
		t.Fatalf("%d files open", r.OpenFiles())
	}
	if none := NewStatReader(-1); none.maxOpen != 0 {
		t.Fatalf("a negative limit keeps %d open", none.maxOpen)
	}
}

func TestReadGrowsItsBuffer(t *testing.T) {
	r := NewStatReader(0)
	big := strings.Repeat("x", 3*len(r.buf)+5)
	dir := cgroupDir(t, map[string]string{"big": big})
	b, err := r.ReadFile(filepath.Join(dir, "big"))
	if err != nil || string(b) != big {
		t.Fatalf("read %d bytes, %v; want %d", len(b), err, len(big))
	}
	if _, err := r.ReadFile(filepath.Join(dir, "none")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLineValue(t *testing.T) {
	tests := []struct {
		in, key string
		want    uint64
		ok      bool
	}{
		{"a 1\nb 2\n", "b", 2, true},
		{"ab 1\nb 2", "b", 2, true},
		{"b\n", "b", 0, false},
		{"b x\n", "b", 0, false},
		{"MemTotal:   12 kB\n", "MemTotal:", 12, true},
		{"b 99999999999999999999999\n", "b", 1<<64 - 1, true},
		{"", "b", 0, false},
	}
	for _, tt := range tests {
		got, ok := lineValue([]byte(tt.in), tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("lineValue(%q, %q) = %d, %v; want %d, %v", tt.in, tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParse feeds arbitrary file contents to the parsers of cgroupfs
// statistics: they must not panic, and a value they find must be in the
// input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{v2CPUStat, v1CPUStat, pressureFile, v2MemoryStat, "some total=\nfull total=1", "usage_usec "} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parsePressure(b)
		if p.Some != 0 && !strings.Contains(string(b), "some ") {
			t.Fatalf("some %d without a some line", p.Some)
		}
		if v, ok := lineValue(b, "usage_usec"); ok && !strings.Contains(string(b), "usage_usec") {
			t.Fatalf("usage_usec %d from nowhere", v)
		}
		_, _ = HostMemory(b)
	})
}
