package sampler

import (
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/internal/histogram"
)

// Sample is what every cgroup did in one interval.
type Sample struct {
	Time     time.Time
	Interval time.Duration
	// Cgroups lists every cgroup v2 that has processes, every other one
	// with activity in the interval, and, marked Idle, the ones with
	// neither that had activity before, sorted by path.
	Cgroups []Cgroup
	// Drops counts kernel events lost since start, by program group.
	Drops map[string]uint64
	// Overflow counts kernel events that found the event log full and were
	// counted the slower way, by program group.
	Overflow map[string]uint64
	// LogFullDrops counts kernel events lost since start because the event
	// log was full and they have no slower way, by program group.
	LogFullDrops map[string]uint64
}

// Cgroup is one cgroup v2's values. Gauges are as of Sample.Time; counters
// and histograms cover the interval; Totals cover the agent's lifetime.
type Cgroup struct {
	Path      string // relative to the cgroup v2 mount, "/" for the root
	ID        uint64 // cgroup v2 id (inode number of its directory)
	Processes int
	// Idle: no processes and nothing happened in the interval.
	Idle bool

	RSSBytes       int64 // resident anonymous, file and shmem pages of its processes
	PageCacheBytes int64 // file page cache charged to its memory cgroup(s)

	PageCacheAddedBytes   int64
	PageCacheEvictedBytes int64
	// PageCacheAccesses and PageCacheMisses are pages its tasks accessed
	// through read(2) and faults, and how many of them had to be read in.
	PageCacheAccesses, PageCacheMisses uint64
	// HitRatioKnown is false when the kernel cannot count accesses.
	HitRatioKnown bool

	SRTT    histogram.Hist // smoothed RTT samples, microseconds
	Connect histogram.Hist // connect latency, microseconds

	// Requests are the requests its server sockets answered (the first
	// byte of the response went out) in the interval, and RequestLatency
	// the time from each one's first byte in to that first byte out,
	// microseconds, for those that were timed (see docs/requests.md).
	Requests       uint64
	RequestLatency histogram.LogLinear

	Retransmits          uint64
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
	// TxClassBytes splits TxBytes by the destination's class
	// (probe.TxLoopback, TxCluster, TxInternet).
	TxClassBytes [probe.TxClasses]uint64

	// CPUUsageUsec is the CPU time of the cgroup's own tasks (not its
	// descendants'), microseconds, from cgroupfs (cpu.stat).
	CPUUsageUsec uint64
	// CPUPeriods, CPUThrottledPeriods and CPUThrottledUsec count the
	// cgroup's own CPU limit: enforcement periods with runnable tasks,
	// those that ended throttled, and the time throttled (microseconds).
	CPUPeriods, CPUThrottledPeriods, CPUThrottledUsec uint64
	// PressureKnown is true when the kernel reports pressure stall
	// information for the cgroup; Pressure is then the time, microseconds,
	// some and all of its tasks (descendants' included) were stalled on
	// CPU, memory and IO (cgroupfs.PressureCPU, ...).
	PressureKnown bool
	Pressure      [cgroupfs.PressureResources]cgroupfs.Pressure
	// MemoryWorkingSetBytes is the working set (memory usage minus inactive
	// file pages, as kubelet computes it) of the cgroup's memory cgroup,
	// its children's own memory cgroups excluded.
	MemoryWorkingSetBytes int64

	Totals Totals
}

// HitRatio returns 1 - misses/accesses, clamped to [0, 1], and false when
// nothing was accessed in the interval or the kernel cannot tell.
func (c *Cgroup) HitRatio() (float64, bool) {
	if !c.HitRatioKnown || c.PageCacheAccesses == 0 {
		return 0, false
	}
	r := 1 - float64(c.PageCacheMisses)/float64(c.PageCacheAccesses)
	return min(max(r, 0), 1), true
}

// Totals are a cgroup's counters since the agent started watching it.
type Totals struct {
	PageCacheAddedBytes, PageCacheEvictedBytes uint64
	PageCacheAccesses, PageCacheMisses         uint64
	SRTT, Connect                              histogram.Hist
	Retransmits                                uint64
	Requests                                   uint64
	RequestLatency                             histogram.LogLinear
	RxBytes, TxBytes                           uint64
	RxPackets, TxPackets                       uint64
	TxClassBytes                               [probe.TxClasses]uint64
	CPUUsageUsec                               uint64
	CPUPeriods, CPUThrottledPeriods            uint64
	CPUThrottledUsec                           uint64
	Pressure                                   [cgroupfs.PressureResources]cgroupfs.Pressure
}

func (t *Totals) add(c *Cgroup) {
	t.PageCacheAddedBytes += uint64(c.PageCacheAddedBytes)
	t.PageCacheEvictedBytes += uint64(c.PageCacheEvictedBytes)
	t.PageCacheAccesses += c.PageCacheAccesses
	t.PageCacheMisses += c.PageCacheMisses
	t.SRTT.Add(&c.SRTT)
	t.Connect.Add(&c.Connect)
	t.Retransmits += c.Retransmits
	t.Requests += c.Requests
	t.RequestLatency.Add(&c.RequestLatency)
	t.RxBytes += c.RxBytes
	t.TxBytes += c.TxBytes
	t.RxPackets += c.RxPackets
	t.TxPackets += c.TxPackets
	for i := range t.TxClassBytes {
		t.TxClassBytes[i] += c.TxClassBytes[i]
	}
	t.CPUUsageUsec += c.CPUUsageUsec
	t.CPUPeriods += c.CPUPeriods
	t.CPUThrottledPeriods += c.CPUThrottledPeriods
	t.CPUThrottledUsec += c.CPUThrottledUsec
	for i := range t.Pressure {
		t.Pressure[i].Some += c.Pressure[i].Some
		t.Pressure[i].Full += c.Pressure[i].Full
	}
}

// active reports whether the cgroup did anything in the interval.
func (c *Cgroup) active() bool {
	return c.PageCacheAddedBytes != 0 || c.PageCacheEvictedBytes != 0 || c.PageCacheAccesses != 0 ||
		c.SRTT.Count != 0 || c.Connect.Count != 0 || c.Retransmits != 0 || c.Requests != 0 || c.RxBytes != 0 || c.TxBytes != 0 ||
		c.CPUUsageUsec != 0
}
