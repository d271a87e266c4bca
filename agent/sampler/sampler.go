package sampler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/procfs"
)

// Source is where samples come from: the loaded eBPF programs
// (*probe.Probes) in production.
type Source interface {
	Snapshot() (*probe.Snapshot, error)
	Seed(tgid uint32, cgroupID uint64) error
	ForgetCgroups(ids []uint64) error
	ForgetMemcgs(ids []uint64) error
	ForgetMMs(ids []uint32) error
	ForgetProcs(tgids []uint32) error
}

// Config configures a Sampler.
type Config struct {
	Layout cgroupfs.Layout
	// Proc is the procfs mount, "/proc" by default.
	Proc string
	// ReseedEvery is how often a memory cgroup's page cache is read again
	// from memory.stat; 0 means every minute.
	ReseedEvery time.Duration
	// RefreshEvery is how often the cgroup hierarchies are walked again to
	// find cgroups that were removed; 0 means every 10 seconds. A cgroup id
	// never seen before triggers a walk at once.
	RefreshEvery time.Duration
	// HitRatio is false when the source cannot count page cache accesses.
	HitRatio bool
	// WorkingSetEvery is how often a cgroup's working set is read from its
	// memory files (memory.stat is the costliest file the sampler reads);
	// 0 means every 10 seconds, kubelet's housekeeping interval. CPU time
	// and pressure are read every sample.
	WorkingSetEvery time.Duration
	// MaxOpenFiles bounds the cgroupfs statistics files kept open between
	// samples (reading an open file again costs a quarter of opening it);
	// 0 means cgroupfs.DefaultMaxOpenFiles, a negative value none.
	MaxOpenFiles int
	Logger       *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Proc == "" {
		c.Proc = "/proc"
	}
	if c.ReseedEvery == 0 {
		c.ReseedEvery = time.Minute
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = 10 * time.Second
	}
	if c.WorkingSetEvery == 0 {
		c.WorkingSetEvery = 10 * time.Second
	}
	if c.MaxOpenFiles == 0 {
		c.MaxOpenFiles = cgroupfs.DefaultMaxOpenFiles
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the layout and the intervals.
func (c *Config) Validate() error {
	if c.Layout.V2 == "" || c.Layout.Memory == "" {
		return errors.New("sampler: cgroup layout not set")
	}
	if c.ReseedEvery < 0 || c.RefreshEvery < 0 || c.WorkingSetEvery < 0 {
		return errors.New("sampler: negative interval")
	}
	return nil
}

// Sampler computes Samples from a Source. Sample is not safe for concurrent
// use; Latest is.
type Sampler struct {
	cfg      Config
	src      Source
	log      *slog.Logger
	v2, mem  *cgroupfs.Hierarchy
	pageSize int64

	seeds     map[uint32]procfs.RSS // RSS of processes at start, by tgid
	memcgs    map[uint64]*memcg     // by memory cgroup id
	noMemcg   map[uint64]time.Time  // cgroups without a memory controller, when last checked
	totals    map[uint64]*Totals    // by cgroup v2 id
	unrefMMs  map[uint32]int        // samples an mm has gone unreferenced
	usage     *usage
	exitedIn  map[uint64]struct{} // cgroups a process exited from in the interval
	hadProcs  map[uint64]struct{} // cgroups with processes in the previous sample
	fullRead  map[uint64]struct{} // scratch: the cgroups whose CPU is read
	prev      *probe.Snapshot
	lastCheck time.Time // of process liveness
	memWalked time.Time // last walk of a v1 memory hierarchy
	v2Walked  time.Time // last walk of the v2 hierarchy

	mu     sync.Mutex
	latest *Sample
}

type memcg struct {
	path       string
	seedBytes  int64
	baseAdded  uint64 // page counters when seeded
	baseRemove uint64
	seededAt   time.Time
}

// New returns a sampler; call Start before the first Sample.
func New(cfg Config, src Source) (*Sampler, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sampler{
		cfg: cfg, src: src, log: cfg.Logger,
		v2:       cgroupfs.NewHierarchy(cfg.Layout.V2),
		mem:      cgroupfs.NewHierarchy(cfg.Layout.Memory),
		pageSize: int64(os.Getpagesize()),
		seeds:    map[uint32]procfs.RSS{},
		memcgs:   map[uint64]*memcg{},
		noMemcg:  map[uint64]time.Time{},
		totals:   map[uint64]*Totals{},
		unrefMMs: map[uint32]int{},
		exitedIn: map[uint64]struct{}{},
		hadProcs: map[uint64]struct{}{},
		fullRead: map[uint64]struct{}{},
	}
	if cfg.Layout.MemoryIsV2() {
		s.mem = s.v2
	}
	s.usage = newUsage(cfg.Layout, s.v2, s.mem, cfg.Proc, cfg.MaxOpenFiles, cfg.WorkingSetEvery)
	return s, nil
}

// Start seeds the processes that exist now and takes the baseline that the
// first Sample is measured against. Call it after the programs are attached.
func (s *Sampler) Start(ctx context.Context) error {
	if err := s.v2.Refresh(); err != nil {
		return fmt.Errorf("start sampler: %w", err)
	}
	if s.mem != s.v2 {
		if err := s.mem.Refresh(); err != nil {
			return fmt.Errorf("start sampler: %w", err)
		}
	}
	// In a container with a cgroup namespace of its own, /proc/<pid>/cgroup
	// is relative to the container's cgroup, the mounted hierarchy the
	// host's.
	nsRoot, err := cgroupfs.NamespaceRoot(s.v2, s.cfg.Proc)
	if err != nil {
		return fmt.Errorf("start sampler: %w", err)
	}
	if nsRoot != "/" {
		s.log.Info("in a cgroup namespace of its own: reading process cgroups relative to it", "root", nsRoot)
	}
	procs, err := procfs.Scan(s.cfg.Proc)
	if err != nil {
		return fmt.Errorf("start sampler: %w", err)
	}
	for _, p := range procs {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, err := s.v2.ID(cgroupfs.InHierarchy(nsRoot, p.Cgroup))
		if err != nil {
			s.log.Debug("process in unknown cgroup", "pid", p.PID, "cgroup", p.Cgroup, "err", err)
			continue
		}
		s.seeds[p.PID] = p.RSS
		if err := s.src.Seed(p.PID, id); err != nil {
			return fmt.Errorf("start sampler: %w", err)
		}
	}
	if err := s.usage.baseline(); err != nil {
		return fmt.Errorf("start sampler: %w", err)
	}
	s.prev, err = s.src.Snapshot()
	if err != nil {
		return fmt.Errorf("start sampler: %w", err)
	}
	s.lastCheck = s.prev.Time
	s.memWalked = s.prev.Time
	s.v2Walked = s.prev.Time
	s.log.Debug("sampler started", "processes", len(s.seeds), "cgroups", s.v2.Len(), "layout", s.cfg.Layout.Mode)
	return nil
}

// Close closes the cgroupfs files the sampler keeps open. Call it when
// sampling is over, not concurrently with Sample.
func (s *Sampler) Close() {
	s.usage.close()
}

// Latest returns the most recent sample, or nil before the first.
func (s *Sampler) Latest() *Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
}

// Sample reads the maps and returns what happened since the last sample.
func (s *Sampler) Sample() (*Sample, error) {
	if s.prev == nil {
		return nil, errors.New("sampler: Sample before Start")
	}
	snap, err := s.src.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	rows := map[uint64]*Cgroup{}
	row := func(id uint64) *Cgroup {
		r, ok := rows[id]
		if !ok {
			r = &Cgroup{ID: id, HitRatioKnown: s.cfg.HitRatio}
			rows[id] = r
		}
		return r
	}

	s.memory(snap, row)
	s.counters(snap, row)

	// Resolve every cgroup v2 id; ids still unknown after one walk of the
	// hierarchy belong to cgroups that were removed.
	if s.anyUnknown(s.v2, rows) || snap.Time.Sub(s.v2Walked) >= s.cfg.RefreshEvery {
		if err := s.v2.Refresh(); err != nil {
			return nil, fmt.Errorf("sample: %w", err)
		}
		s.v2Walked = snap.Time
		s.usage.forget()
	}
	var gone []uint64
	for id, r := range rows {
		p, ok := s.v2.Path(id)
		if !ok && r.active() {
			// Removed since the walk before: what it did in the interval
			// (requests answered before its pod was deleted, bytes
			// sent) goes out once under its last path, not dropped.
			p, ok = s.v2.Removed(id)
		}
		if !ok {
			gone = append(gone, id)
			delete(rows, id)
			delete(s.totals, id)
			continue
		}
		r.Path = p
	}
	if len(gone) > 0 {
		if err := s.src.ForgetCgroups(gone); err != nil {
			return nil, fmt.Errorf("sample: %w", err)
		}
		s.log.Debug("forgot removed cgroups", "count", len(gone))
	}
	if err := s.pageCache(snap, rows, row); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	for id := range s.totals {
		if _, ok := rows[id]; !ok && !s.v2.Known(id) {
			delete(s.totals, id)
		}
	}
	if err := s.cgroupfsUsage(snap.Time, rows, row); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}

	listed := make([]*Cgroup, 0, len(rows))
	for id, r := range rows {
		// A cgroup without processes nor activity stays in the sample
		// (marked idle) while its counters have history: what is shipped
		// must not forget and relearn its totals.
		r.Idle = r.Processes == 0 && !r.active()
		if r.Idle && s.totals[id] == nil {
			continue
		}
		t := s.totals[id]
		if t == nil {
			t = &Totals{}
			s.totals[id] = t
		}
		t.add(r)
		r.Totals = *t
		listed = append(listed, r)
	}
	slices.SortFunc(listed, func(a, b *Cgroup) int { return strings.Compare(a.Path, b.Path) })
	out := &Sample{Time: snap.Time, Interval: snap.Time.Sub(s.prev.Time), Drops: snap.Drops, Overflow: snap.Overflow,
		LogFullDrops: snap.LogFullDrops, Cgroups: make([]Cgroup, len(listed))}
	for i, r := range listed {
		out.Cgroups[i] = *r
	}
	s.prev = snap
	s.mu.Lock()
	s.latest = out
	s.mu.Unlock()
	return out, nil
}

// cgroupfsUsage reads CPU, pressure and the working set of the cgroups
// that have processes, activity, a process that exited in the interval or
// had processes in the previous sample, and the working set of the other
// rows.
func (s *Sampler) cgroupfsUsage(now time.Time, rows map[uint64]*Cgroup, row func(uint64) *Cgroup) error {
	full := s.fullRead
	clear(full)
	for id, r := range rows {
		if r.Processes > 0 || r.active() {
			full[id] = struct{}{}
		}
	}
	for _, set := range []map[uint64]struct{}{s.exitedIn, s.hadProcs} {
		for id := range set {
			if _, ok := full[id]; ok {
				continue
			}
			p, ok := s.v2.Path(id)
			if !ok {
				continue // removed
			}
			r := row(id)
			r.Path = p
			full[id] = struct{}{}
		}
	}
	clear(s.exitedIn)
	clear(s.hadProcs)
	for id, r := range rows {
		if r.Processes > 0 {
			s.hadProcs[id] = struct{}{}
		}
	}
	return s.usage.sample(now, rows, full)
}

func (s *Sampler) anyUnknown(h *cgroupfs.Hierarchy, rows map[uint64]*Cgroup) bool {
	for id := range rows {
		if !h.Known(id) {
			return true
		}
	}
	return false
}
