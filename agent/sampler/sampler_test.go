package sampler

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/procfs"
	"github.com/pennyhq/penny/internal/histogram"
)

// fakeSource replays scripted snapshots and records what the sampler asks
// it to forget. The kernel side is tested for real in kernel_test.go.
type fakeSource struct {
	snaps          []*probe.Snapshot
	forgotCgroups  []uint64
	forgotMemcgs   []uint64
	forgotMMs      []uint32
	seeded         map[uint32]uint64
	forgottenProcs []uint32
}

func (f *fakeSource) Snapshot() (*probe.Snapshot, error) {
	s := f.snaps[0]
	if len(f.snaps) > 1 {
		f.snaps = f.snaps[1:]
	}
	return s, nil
}
func (f *fakeSource) Seed(tgid uint32, id uint64) error { f.seeded[tgid] = id; return nil }
func (f *fakeSource) ForgetCgroups(ids []uint64) error {
	f.forgotCgroups = append(f.forgotCgroups, ids...)
	return nil
}
func (f *fakeSource) ForgetMemcgs(ids []uint64) error {
	f.forgotMemcgs = append(f.forgotMemcgs, ids...)
	return nil
}
func (f *fakeSource) ForgetMMs(ids []uint32) error {
	f.forgotMMs = append(f.forgotMMs, ids...)
	return nil
}
func (f *fakeSource) ForgetProcs(t []uint32) error {
	f.forgottenProcs = append(f.forgottenProcs, t...)
	return nil
}

// tree is a fake cgroup v2 hierarchy in a temp dir: ids are real inodes.
type tree struct {
	t    *testing.T
	root string
}

func newTree(t *testing.T, paths ...string) *tree {
	tr := &tree{t: t, root: t.TempDir()}
	for _, p := range paths {
		tr.mkdir(p)
	}
	return tr
}

func (tr *tree) mkdir(p string) {
	if err := os.MkdirAll(filepath.Join(tr.root, p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) id(p string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(tr.root, p), &st); err != nil {
		tr.t.Fatal(err)
	}
	return st.Ino
}

func (tr *tree) memoryStat(p string, file int64) {
	if err := os.WriteFile(filepath.Join(tr.root, p, "memory.stat"),
		[]byte("file "+strconv.FormatInt(file, 10)+"\nshmem 0\n"), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func snap(sec int, mod func(*probe.Snapshot)) *probe.Snapshot {
	s := &probe.Snapshot{
		Time:   time.Unix(1_700_000_000+int64(sec), 0),
		Procs:  map[uint32]probe.Proc{},
		MMs:    map[uint32]probe.MM{},
		Cache:  map[uint64]probe.CacheCounters{},
		Access: map[uint64]probe.AccessCounters{},
		TCP:    map[uint64]probe.TCPStats{},
		Net:    map[uint64]probe.NetCounters{},
		Drops:  map[string]uint64{},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func newSampler(t *testing.T, tr *tree, snaps ...*probe.Snapshot) (*Sampler, *fakeSource) {
	t.Helper()
	src := &fakeSource{snaps: snaps, seeded: map[uint32]uint64{}}
	s, err := New(Config{
		Layout:       cgroupfs.Layout{Mode: cgroupfs.Unified, V2: tr.root, Memory: tr.root},
		Proc:         t.TempDir(), // no processes to seed
		HitRatio:     true,
		RefreshEvery: time.Second,
	}, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, src
}

func row(t *testing.T, s *Sample, path string) *Cgroup {
	t.Helper()
	for i := range s.Cgroups {
		if s.Cgroups[i].Path == path {
			return &s.Cgroups[i]
		}
	}
	t.Fatalf("no row for %s in %+v", path, s.Cgroups)
	return nil
}

func TestCounterDeltas(t *testing.T) {
	tr := newTree(t, "a")
	a := tr.id("a")
	var h1, h2 histogram.Hist
	h1.Observe(10)
	h2 = h1
	h2.Observe(1000)
	h2.Observe(1000)
	s, src := newSampler(t, tr,
		snap(0, func(s *probe.Snapshot) {
			s.Net[a] = probe.NetCounters{RxBytes: 100, TxBytes: 10}
			s.TCP[a] = probe.TCPStats{SRTT: h1, Retransmits: 1}
			s.Access[a] = probe.AccessCounters{Accesses: 10, Misses: 10}
		}),
		snap(2, func(s *probe.Snapshot) {
			s.Net[a] = probe.NetCounters{RxBytes: 350, TxBytes: 10}
			s.TCP[a] = probe.TCPStats{SRTT: h2, Retransmits: 4}
			s.Access[a] = probe.AccessCounters{Accesses: 110, Misses: 20}
		}),
		// The kernel entry was deleted and created again: counts restart.
		snap(3, func(s *probe.Snapshot) {
			s.Net[a] = probe.NetCounters{RxBytes: 7}
		}),
	)
	got, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if got.Interval != 2*time.Second {
		t.Errorf("interval = %v", got.Interval)
	}
	c := row(t, got, "/a")
	if c.RxBytes != 250 || c.TxBytes != 0 || c.Retransmits != 3 {
		t.Errorf("deltas rx %d tx %d retx %d; want 250 0 3", c.RxBytes, c.TxBytes, c.Retransmits)
	}
	if c.SRTT.Count != 2 || c.SRTT.Buckets[histogram.Bucket(1000)] != 2 {
		t.Errorf("srtt delta = %+v", c.SRTT)
	}
	if r, ok := c.HitRatio(); !ok || r != 0.9 {
		t.Errorf("hit ratio = %v %v, want 0.9", r, ok)
	}
	if c.Totals.RxBytes != 250 || c.Totals.SRTT.Count != 2 {
		t.Errorf("totals = %+v", c.Totals)
	}

	got, _ = s.Sample()
	c = row(t, got, "/a")
	if c.RxBytes != 7 || c.Totals.RxBytes != 257 {
		t.Errorf("after reset: rx %d total %d; want 7 257", c.RxBytes, c.Totals.RxBytes)
	}
	if c.SRTT.Count != 0 {
		t.Errorf("srtt without new samples: %+v", c.SRTT)
	}
	if len(src.forgotCgroups) != 0 {
		t.Errorf("forgot %v", src.forgotCgroups)
	}

	// Nothing more happens: the cgroup stays, idle, with its totals.
	got, _ = s.Sample()
	c = row(t, got, "/a")
	if !c.Idle || c.RxBytes != 0 || c.Totals.RxBytes != 257 {
		t.Errorf("idle row = idle %v rx %d total %d", c.Idle, c.RxBytes, c.Totals.RxBytes)
	}
}

func TestRSSFromEventsAndSeeds(t *testing.T) {
	tr := newTree(t, "a", "b")
	a, b := tr.id("a"), tr.id("b")
	s, _ := newSampler(t, tr, snap(0, nil), snap(1, func(s *probe.Snapshot) {
		// A process created after attach: exact sizes, unreported = 0.
		s.Procs[10] = probe.Proc{CgroupID: a, MMID: 1}
		s.MMs[1] = probe.MM{TGID: 10, New: true, Mask: 1 << probe.MemberAnon, Size: [4]int64{0, 4096, 0, 0}}
		// A seeded process: file and shmem from /proc, anon from events.
		s.Procs[20] = probe.Proc{CgroupID: b, MMID: 2, Seeded: true}
		s.MMs[2] = probe.MM{TGID: 20, Mask: 1 << probe.MemberAnon, Size: [4]int64{999, 8192, 0, 999}}
		// A vfork child sharing 20's mm is counted once.
		s.Procs[21] = probe.Proc{CgroupID: b, MMID: 2}
		// A seeded process without events yet.
		s.Procs[30] = probe.Proc{CgroupID: b, Seeded: true}
		// An mm nobody claims.
		s.MMs[3] = probe.MM{New: true, Size: [4]int64{0, 1 << 20, 0, 0}}
	}))
	s.seeds[20] = procfs.RSS{File: 100, Anon: 1, Shmem: 10}
	s.seeds[30] = procfs.RSS{File: 1000, Anon: 2000, Shmem: 3000, Swap: 5}
	got, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if c := row(t, got, "/a"); c.RSSBytes != 4096 || c.Processes != 1 {
		t.Errorf("a: RSS %d, %d processes; want 4096, 1", c.RSSBytes, c.Processes)
	}
	if c := row(t, got, "/b"); c.RSSBytes != (100+8192+10)+6000 || c.Processes != 3 {
		t.Errorf("b: RSS %d, %d processes; want %d, 3", c.RSSBytes, c.Processes, 100+8192+10+6000)
	}
}

func TestForgetsWhatIsGone(t *testing.T) {
	tr := newTree(t, "a", "b")
	a, b := tr.id("a"), tr.id("b")
	base := func(s *probe.Snapshot) {
		s.Net[a] = probe.NetCounters{RxBytes: 1}
		s.Net[b] = probe.NetCounters{RxBytes: 1}
		s.MMs[7] = probe.MM{New: true}
	}
	s, src := newSampler(t, tr, snap(0, base), snap(1, base), snap(2, base), snap(3, base), snap(4, base))
	if err := os.Remove(filepath.Join(tr.root, "b")); err != nil {
		t.Fatal(err)
	}
	for i := range mmGrace {
		got, err := s.Sample()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got.Cgroups {
			if c.Path == "/b" {
				t.Errorf("removed cgroup listed: %+v", c)
			}
		}
		if i < mmGrace-1 && len(src.forgotMMs) != 0 {
			t.Errorf("mm forgotten after %d samples", i+1)
		}
	}
	if !slices.Contains(src.forgotCgroups, b) || slices.Contains(src.forgotCgroups, a) {
		t.Errorf("forgot cgroups %v; want %d only", src.forgotCgroups, b)
	}
	if !slices.Equal(src.forgotMMs, []uint32{7}) {
		t.Errorf("forgot mms %v; want [7] after %d samples", src.forgotMMs, mmGrace)
	}
}

func TestPageCacheSeedAndDeltas(t *testing.T) {
	tr := newTree(t, "a")
	a := tr.id("a")
	tr.memoryStat("a", 1<<20)
	page := int64(os.Getpagesize())
	s, _ := newSampler(t, tr,
		snap(0, func(s *probe.Snapshot) { s.Cache[a] = probe.CacheCounters{Added: 5, Removed: 1} }),
		snap(1, func(s *probe.Snapshot) {
			s.Cache[a] = probe.CacheCounters{Added: 15, Removed: 3}
			s.Procs[1] = probe.Proc{CgroupID: a}
		}),
		snap(2, func(s *probe.Snapshot) {
			s.Cache[a] = probe.CacheCounters{Added: 25, Removed: 3}
			s.Procs[1] = probe.Proc{CgroupID: a}
		}),
	)
	got, _ := s.Sample() // seeds at 1 MiB, as of counters (15, 3)
	c := row(t, got, "/a")
	if c.PageCacheBytes != 1<<20 || c.PageCacheAddedBytes != 10*page || c.PageCacheEvictedBytes != 2*page {
		t.Errorf("first: %d bytes, +%d -%d", c.PageCacheBytes, c.PageCacheAddedBytes, c.PageCacheEvictedBytes)
	}
	got, _ = s.Sample()
	if c := row(t, got, "/a"); c.PageCacheBytes != 1<<20+10*page || c.PageCacheAddedBytes != 10*page {
		t.Errorf("second: %d bytes, +%d; want %d, +%d", c.PageCacheBytes, c.PageCacheAddedBytes, 1<<20+10*page, 10*page)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{Layout: cgroupfs.Layout{V2: "/x", Memory: "/x"}}, true},
		{"no layout", Config{}, false},
		{"negative reseed", Config{Layout: cgroupfs.Layout{V2: "/x", Memory: "/x"}, ReseedEvery: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
}
