package wire

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// HistBuckets is the number of buckets of a Hist, as in the agent's eBPF
// programs. Changing it is a format change.
const HistBuckets = 32

// Hist is a log2 histogram of microseconds: bucket 0 holds [0, 2), bucket i
// (i >= 1) holds [2^i, 2^(i+1)). It has the layout of the agent's
// histogram.Hist, so either converts to the other.
type Hist struct {
	Buckets [HistBuckets]uint64
	Count   uint64
	Sum     uint64
}

// IsZero reports whether h holds no samples at all.
func (h *Hist) IsZero() bool { return *h == Hist{} }

// Values are one series' measurements. In a SeriesState they are absolute:
// gauges as of the sample, counters and histograms cumulative since the
// agent started watching the cgroup. In a SeriesUpdate that is not New they
// are differences: gauges signed, counters and histograms increments.
type Values struct {
	// Gauges, never negative in a SeriesState.
	Processes      int64
	RSSBytes       int64
	PageCacheBytes int64

	// Cumulative counters.
	PageCacheAddedBytes   uint64
	PageCacheEvictedBytes uint64
	PageCacheAccesses     uint64 // pages
	PageCacheMisses       uint64 // pages
	Retransmits           uint64
	RxBytes, TxBytes      uint64
	RxPackets, TxPackets  uint64

	// Cumulative histograms, microseconds.
	SRTT    Hist
	Connect Hist

	// CPU, from cgroupfs: the cgroup's own CPU time and its CPU limit's
	// enforcement periods, throttled periods and time throttled.
	// Cumulative counters, microseconds.
	CPUUsageUsec        uint64
	CPUPeriods          uint64
	CPUThrottledPeriods uint64
	CPUThrottledUsec    uint64
	// PressureKnown is a gauge: 1 when the kernel reports pressure stall
	// information for the cgroup, so that the Pressure counters hold it; 0
	// when it does not, and they mean nothing (unknown, not zero).
	PressureKnown int64
	// Pressure stall time, cumulative counters, microseconds: some and
	// full, for CPU, memory and IO.
	CPUPressureSomeUsec, CPUPressureFullUsec       uint64
	MemoryPressureSomeUsec, MemoryPressureFullUsec uint64
	IOPressureSomeUsec, IOPressureFullUsec         uint64
	// MemoryWorkingSetBytes is a gauge: memory usage minus inactive file
	// pages.
	MemoryWorkingSetBytes int64
	// The bytes of TxBytes by destination: loopback, in-cluster (private
	// and link-local addresses), internet. Cumulative counters.
	TxLoopbackBytes, TxClusterBytes, TxInternetBytes uint64
	// Requests the cgroup's server sockets answered, a cumulative counter,
	// and the latency of the timed ones (first byte in to first byte of
	// the response out), a cumulative histogram of microseconds.
	Requests       uint64
	RequestLatency Hist
	// RequestLatencyLogLinear is the same latency in a log-linear
	// histogram, precise to 12.5%: what a newer agent sends, with
	// RequestLatency (the same samples in log2 buckets) for older
	// receivers (docs/wire.md, Evolution).
	RequestLatencyLogLinear LogLinearHist
}

// SeriesState is the absolute state of one series: one cgroup.
type SeriesState struct {
	Path string // cgroup v2 path, "/" for the root
	ID   uint64 // cgroup v2 id
	// Meta is the series' metadata (pod UID, namespace, name, container
	// id, labels); nil when it has none. An Encoder keeps a reference to
	// it and takes the same map again as unchanged: to change metadata,
	// pass a new map; never modify one passed before.
	Meta map[string]string
	Values
}

// Snapshot is the absolute state of one agent at one sample: what an agent
// hands to an Encoder and what a State returns.
type Snapshot struct {
	Time     time.Time     // when the sample was taken
	Interval time.Duration // sampling interval
	// Meta is the agent's metadata (agent version, kernel, cluster); nil
	// when it has none.
	Meta   map[string]string
	Series []SeriesState
}

// Clone returns a deep copy of s.
func (s *Snapshot) Clone() *Snapshot {
	c := *s
	c.Meta = cloneMeta(s.Meta)
	c.Series = slices.Clone(s.Series)
	for i := range c.Series {
		ss := &c.Series[i]
		ss.Meta = cloneMeta(ss.Meta)
		for _, h := range logLinearFields {
			h.get(&ss.Values).Buckets = slices.Clone(h.get(&ss.Values).Buckets)
		}
	}
	return &c
}

// SortSeries sorts s.Series by path, the order a State returns them in.
func (s *Snapshot) SortSeries() {
	slices.SortFunc(s.Series, func(a, b SeriesState) int { return cmp.Compare(a.Path, b.Path) })
}

// Validate reports whether s can be encoded within lim: its time is
// representable in Unix nanoseconds, its interval not negative, paths are
// non-empty and unique, cgroup ids unique, gauges not negative, and the
// series, strings and metadata within lim.
func (s *Snapshot) Validate(lim Limits) error {
	lim, err := lim.withDefaults()
	if err != nil {
		return err
	}
	return s.validate(&lim, map[uint64]struct{}{}, map[string]struct{}{}, nil)
}

// validate is Validate with the maps it needs to find duplicates passed in,
// empty. known, when set, tells the series whose metadata was checked
// before (the same map, which callers do not modify).
func (s *Snapshot) validate(lim *Limits, ids map[uint64]struct{}, paths map[string]struct{}, known func(*SeriesState) bool) error {
	if err := checkTime(s.Time, ErrInvalid); err != nil {
		return err
	}
	if s.Interval < 0 {
		return fmt.Errorf("%w: negative interval %v", ErrInvalid, s.Interval)
	}
	if err := checkMeta(s.Meta, lim, ErrInvalid); err != nil {
		return fmt.Errorf("frame metadata: %w", err)
	}
	if len(s.Series) > lim.MaxSeries {
		return fmt.Errorf("%w: %d series, limit %d", ErrTooLarge, len(s.Series), lim.MaxSeries)
	}
	for i := range s.Series {
		ss := &s.Series[i]
		if err := checkPath(ss.Path, lim, ErrInvalid); err != nil {
			return err
		}
		if _, ok := paths[ss.Path]; ok {
			return fmt.Errorf("%w: duplicate path %q", ErrInvalid, ss.Path)
		}
		paths[ss.Path] = struct{}{}
		if _, ok := ids[ss.ID]; ok {
			return fmt.Errorf("%w: duplicate cgroup id %d (%s)", ErrInvalid, ss.ID, ss.Path)
		}
		ids[ss.ID] = struct{}{}
		if ss.Values.negativeGauge() {
			return fmt.Errorf("%w: %s: negative gauge", ErrInvalid, ss.Path)
		}
		if ss.Values.invalidLogLinear() {
			return fmt.Errorf("%w: %s: log-linear histogram buckets out of order or range, or empty", ErrInvalid, ss.Path)
		}
		if known != nil && known(ss) {
			continue
		}
		if err := checkMeta(ss.Meta, lim, ErrInvalid); err != nil {
			return fmt.Errorf("%s: metadata: %w", ss.Path, err)
		}
	}
	return nil
}

// checkTime reports whether t survives a round trip through Unix
// nanoseconds (years 1678 to 2262) and is not the zero time.
func checkTime(t time.Time, kind error) error {
	if t.IsZero() || !time.Unix(0, t.UnixNano()).Equal(t) {
		return fmt.Errorf("%w: time %v not representable in Unix nanoseconds", kind, t)
	}
	return nil
}

func checkPath(p string, lim *Limits, kind error) error {
	if p == "" {
		return fmt.Errorf("%w: empty path", kind)
	}
	if len(p) > lim.MaxStringLen {
		return fmt.Errorf("%w: path of %d bytes, limit %d", ErrTooLarge, len(p), lim.MaxStringLen)
	}
	return nil
}

func checkMeta(m map[string]string, lim *Limits, kind error) error {
	if len(m) > lim.MaxMetaEntries {
		return fmt.Errorf("%w: %d metadata entries, limit %d", ErrTooLarge, len(m), lim.MaxMetaEntries)
	}
	for k, v := range m {
		if k == "" {
			return fmt.Errorf("%w: empty metadata key", kind)
		}
		if len(k) > lim.MaxStringLen || len(v) > lim.MaxStringLen {
			return fmt.Errorf("%w: metadata entry %.32q of %d+%d bytes, limit %d each",
				ErrTooLarge, k, len(k), len(v), lim.MaxStringLen)
		}
	}
	return nil
}

// cloneMeta copies m, returning nil for an empty map so that "no metadata"
// has one representation.
func cloneMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
