package sampler

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
)

// usage reads what cgroupfs counts per cgroup and eBPF does not: CPU time
// and throttling, pressure stall information, and the memory working set.
//
// cgroupfs counts CPU time and memory hierarchically (a cgroup's values
// include its descendants'), the sampler's other numbers are the cgroup's
// own, and a pod's value is the sum of its cgroups', the pod-level one
// included. So a cgroup's CPU time is its own: its increase minus its
// children's over the same span, and its working set its own minus its
// children's memory cgroups'. Throttling is the cgroup's own limit's, and
// pressure, which the kernel tracks per cgroup over its subtree and which
// does not add up, is the cgroup's as the kernel reports it.
//
// It reads, once per sample, the cgroups that have processes, activity, a
// process that exited in the interval or had processes in the previous
// sample (cpu.stat and *.pressure) and their children (cpu.stat). The
// memory files, which cost half of all that (memory.stat is long), it
// reads at most once every wsEvery per cgroup (10s, as kubelet's cAdvisor
// does), for those and for the other cgroups the sample lists.
type usage struct {
	layout       cgroupfs.Layout
	v2, mem, cpu *cgroupfs.Hierarchy // cpu is nil without a cpu controller
	meminfo      string              // /proc/meminfo
	r            *cgroupfs.StatReader
	wsEvery      time.Duration
	now          time.Time // of the sample being taken

	seq   uint64                 // samples taken; 0 is Start's baseline
	stats map[uint64]*usageStats // by cgroup v2 id
	// open lists the entries with files kept open; their files are closed
	// when a sample does not read them.
	open []*usageStats
	// scratch, reused from sample to sample
	pending []*usageStats
}

// usageStats is what was read of one cgroup v2's files.
type usageStats struct {
	path                  string
	v2Dir, cpuDir, memDir string
	files                 cgroupfs.Files
	// cpuAt is the sample CPU time was last committed at; its children's
	// increases are subtracted from its own only over the same span.
	cpuAt, psiAt uint64
	cpu          cgroupfs.CPUStat
	psi          [cgroupfs.PressureResources]cgroupfs.Pressure
	psiOK        bool

	// This sample's reads, committed once every row is computed.
	readAt, psiReadAt, memReadAt uint64
	pendingAt                    uint64    // sample it was queued for commit in
	memAt                        time.Time // when ws was read
	curCPU                       cgroupfs.CPUStat
	cpuOK                        bool
	curPSI                       [cgroupfs.PressureResources]cgroupfs.Pressure
	curPSIOK                     bool
	ws                           uint64
	memOK                        bool
}

// newUsage returns a reader that keeps at most maxOpen files open (0: the
// default of cgroupfs, negative: none) and reads a cgroup's working set at
// most every wsEvery.
func newUsage(l cgroupfs.Layout, v2, mem *cgroupfs.Hierarchy, proc string, maxOpen int, wsEvery time.Duration) *usage {
	u := &usage{layout: l, v2: v2, mem: mem, meminfo: path.Join(proc, "meminfo"), r: cgroupfs.NewStatReader(maxOpen),
		stats: map[uint64]*usageStats{}, wsEvery: wsEvery}
	switch {
	case l.CPU == l.V2:
		u.cpu = v2
	case l.CPU != "":
		u.cpu = cgroupfs.NewHierarchy(l.CPU)
	}
	return u
}

// baseline reads the CPU time, throttling and pressure of every cgroup the
// v2 hierarchy holds: what the first sample's increases are measured from.
// A cgroup created later starts from zero, as the kernel's counters do.
// It keeps no file open.
func (u *usage) baseline() error {
	for _, id := range u.v2.IDs() {
		p, ok := u.v2.Path(id)
		if !ok {
			continue
		}
		st := u.entry(id, p)
		if err := u.readCPU(st); err != nil {
			return err
		}
		if err := u.readPSI(st); err != nil {
			return err
		}
	}
	u.commit()
	for _, st := range u.stats {
		st.files.Close()
	}
	u.open = u.open[:0]
	return nil
}

func (u *usage) entry(id uint64, p string) *usageStats {
	st := u.stats[id]
	if st == nil {
		st = &usageStats{cpuAt: noSample, psiAt: noSample}
		u.stats[id] = st
	}
	if st.path != p {
		st.path, st.v2Dir, st.memDir = p, u.v2.Dir(p), u.mem.Dir(p)
		if u.cpu != nil {
			st.cpuDir = u.cpu.Dir(p)
		}
	}
	return st
}

// noSample marks a cgroup never read: its counters count from zero.
const noSample = ^uint64(0)

// sample fills every row's CPU, pressure and working set for a sample
// taken at now. full lists the cgroups whose CPU and pressure are read
// (all of them have rows); the other rows get their working set only.
func (u *usage) sample(now time.Time, rows map[uint64]*Cgroup, full map[uint64]struct{}) error {
	u.seq++
	u.now = now
	for id := range full {
		r := rows[id]
		st := u.entry(id, r.Path)
		if err := u.readCPU(st); err != nil {
			return err
		}
		if err := u.readPSI(st); err != nil {
			return err
		}
		if err := u.readMem(st); err != nil {
			return err
		}
		own, err := u.ownCPU(st)
		if err != nil {
			return err
		}
		r.CPUUsageUsec = own
		u.throttling(r, st)
		u.pressure(r, st)
		ws, err := u.ownWorkingSet(st)
		if err != nil {
			return err
		}
		r.MemoryWorkingSetBytes = ws
	}
	for id, r := range rows {
		if _, ok := full[id]; ok {
			continue
		}
		st := u.entry(id, r.Path)
		if err := u.readMem(st); err != nil {
			return err
		}
		ws, err := u.ownWorkingSet(st)
		if err != nil {
			return err
		}
		r.MemoryWorkingSetBytes = ws
		r.PressureKnown = st.psiOK // as of its last read
	}
	u.commit()
	return nil
}

// ownCPU is the increase of st's CPU time since its last read minus its
// children's over the same span. A child never read before was created
// since (cgroups that existed at the start have a baseline) and counts
// from zero. When a child was last read at another time than st (it had
// processes while st had none), the spans differ and st's own time is
// unknown: zero, and every baseline starts afresh from this read.
func (u *usage) ownCPU(st *usageStats) (uint64, error) {
	if !st.cpuOK {
		return 0, nil
	}
	own := st.curCPU.UsageUsec
	if st.cpuAt != noSample {
		own = delta(st.curCPU.UsageUsec, st.cpu.UsageUsec)
	}
	var children uint64
	aligned := true
	for _, cp := range u.v2.Children(st.path) {
		id, err := u.v2.ID(cp)
		if err != nil {
			continue // removed: its last increase stays with st
		}
		c := u.entry(id, cp)
		if err := u.readCPU(c); err != nil {
			return 0, err
		}
		switch {
		case !c.cpuOK:
		case c.cpuAt == noSample:
			children += c.curCPU.UsageUsec
		case c.cpuAt == st.cpuAt:
			children += delta(c.curCPU.UsageUsec, c.cpu.UsageUsec)
		default:
			aligned = false
		}
	}
	if !aligned || children >= own {
		return 0, nil
	}
	return own - children, nil
}

func (u *usage) throttling(r *Cgroup, st *usageStats) {
	cur, prev := st.curCPU, st.cpu
	if st.cpuAt == noSample {
		prev = cgroupfs.CPUStat{}
	}
	r.CPUPeriods = delta(cur.Periods, prev.Periods)
	r.CPUThrottledPeriods = delta(cur.ThrottledPeriods, prev.ThrottledPeriods)
	r.CPUThrottledUsec = delta(cur.ThrottledUsec, prev.ThrottledUsec)
}

func (u *usage) pressure(r *Cgroup, st *usageStats) {
	r.PressureKnown = st.curPSIOK
	if !st.curPSIOK || st.psiAt != noSample && !st.psiOK {
		return // unknown, or known from now on: this read is the baseline
	}
	for i := range r.Pressure {
		var prev cgroupfs.Pressure
		if st.psiAt != noSample {
			prev = st.psi[i]
		}
		r.Pressure[i].Some = delta(st.curPSI[i].Some, prev.Some)
		r.Pressure[i].Full = delta(st.curPSI[i].Full, prev.Full)
	}
}

// ownWorkingSet is st's memory cgroup's working set minus those of its
// children's memory cgroups.
func (u *usage) ownWorkingSet(st *usageStats) (int64, error) {
	if !st.memOK {
		return 0, nil
	}
	ws := st.ws
	for _, cp := range u.v2.Children(st.path) {
		id, err := u.v2.ID(cp)
		if err != nil {
			continue
		}
		c := u.entry(id, cp)
		if err := u.readMem(c); err != nil {
			return 0, err
		}
		if c.memOK {
			ws -= min(ws, c.ws)
		}
	}
	return int64(min(ws, 1<<63-1)), nil
}

// readCPU reads st's cpu.stat once per sample.
func (u *usage) readCPU(st *usageStats) error {
	if st.readAt == u.seq+1 {
		return nil
	}
	st.readAt = u.seq + 1
	u.queue(st)
	var err error
	st.curCPU, err = u.r.CPU(&st.files, st.v2Dir, st.cpuDir, u.layout.CPUIsV2())
	st.cpuOK = err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read CPU of %s: %w", st.path, err)
	}
	return nil
}

// readPSI reads st's *.pressure once per sample.
func (u *usage) readPSI(st *usageStats) error {
	if st.psiReadAt == u.seq+1 {
		return nil
	}
	st.psiReadAt = u.seq + 1
	var err error
	st.curPSIOK, err = u.r.Pressure(&st.files, st.v2Dir, &st.curPSI)
	if err != nil {
		return fmt.Errorf("read pressure of %s: %w", st.path, err)
	}
	return nil
}

// queue marks st for commit, once per sample.
func (u *usage) queue(st *usageStats) {
	if st.pendingAt != u.seq+1 {
		st.pendingAt = u.seq + 1
		u.pending = append(u.pending, st)
	}
}

// readMem reads the working set of st's memory cgroup, at most once every
// wsEvery: the memory cgroup at the same path (the v1 memory hierarchy on
// a hybrid host), the host's memory for the root. Between reads st keeps
// the last one.
func (u *usage) readMem(st *usageStats) error {
	if st.memReadAt == u.seq+1 || !st.memAt.IsZero() && u.now.Sub(st.memAt) < u.wsEvery {
		return nil
	}
	st.memReadAt, st.memAt = u.seq+1, u.now
	u.queue(st) // for commit, to keep its files open
	var (
		m   cgroupfs.Memory
		err error
	)
	if st.path == "/" {
		var b []byte
		if b, err = u.r.ReadFile(u.meminfo); err == nil {
			m, err = cgroupfs.HostMemory(b)
		}
	} else {
		m, err = u.r.Memory(&st.files, st.memDir, u.layout.MemoryIsV2())
	}
	st.memOK = err == nil
	st.ws = m.WorkingSet()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read memory of %s: %w", st.path, err)
	}
	return nil
}

// commit makes this sample's reads the baselines of the next, and closes
// the files of the cgroups it did not read.
func (u *usage) commit() {
	at := u.seq
	for _, st := range u.open {
		if st.readAt != at+1 && st.memReadAt != at+1 {
			st.files.Close()
		}
	}
	u.open = u.open[:0]
	for _, st := range u.pending {
		if st.readAt == at+1 && st.cpuOK {
			st.cpu, st.cpuAt = st.curCPU, at
		}
		if st.psiReadAt == at+1 {
			st.psi, st.psiOK, st.psiAt = st.curPSI, st.curPSIOK, at
		}
		if st.files.Open() {
			u.open = append(u.open, st)
		}
	}
	clear(u.pending)
	u.pending = u.pending[:0]
}

// forget drops what is known of cgroups the v2 hierarchy no longer has.
func (u *usage) forget() {
	for id, st := range u.stats {
		if !u.v2.Known(id) {
			st.files.Close()
			delete(u.stats, id)
		}
	}
	u.open = slices.DeleteFunc(u.open, func(st *usageStats) bool { return !st.files.Open() })
}

// close closes every file kept open.
func (u *usage) close() {
	for _, st := range u.stats {
		st.files.Close()
	}
	u.open = u.open[:0]
}
