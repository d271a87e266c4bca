package wire

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Frame is one decoded frame: its header and its body.
type Frame struct {
	Header
	Time     time.Time     // when the sample was taken
	Interval time.Duration // sampling interval
	// MetaSet reports that Meta replaces the agent's metadata. It is always
	// set in a keyframe; in a delta it is set only when the metadata
	// changed, and a nil Meta then clears it.
	MetaSet bool
	Meta    map[string]string
	// Series are the series that appeared or changed. In a keyframe every
	// live series is there, each New.
	Series []SeriesUpdate
	// Removed are the refs of series that disappeared; applied before
	// Series. Always empty in a keyframe.
	Removed []uint64
}

// SeriesUpdate is one series in a frame.
type SeriesUpdate struct {
	// Ref identifies the series within its incarnation until it is removed
	// or the next keyframe, which may number the series afresh.
	Ref uint64
	// New is set when the series appears (and for every series of a
	// keyframe): Path and ID are set, Values are absolute. Otherwise Path
	// and ID are empty and Values are differences from the base frame.
	New  bool
	Path string
	ID   uint64
	// MetaSet reports that Meta replaces the series' metadata: always for
	// a New series, otherwise only when the metadata changed (a nil Meta
	// then clears it).
	MetaSet bool
	Meta    map[string]string
	Values
}

// Body keys of a series. Unknown keys are skipped by decoders; a new field
// takes the next free key. See docs/wire.md.
const (
	keyRef = iota
	keyPath
	keyID
	keySeriesMeta
	keyProcesses
	keyRSS
	keyPageCache
	keyPCAdded
	keyPCEvicted
	keyPCAccesses
	keyPCMisses
	keyRetransmits
	keyRxBytes
	keyTxBytes
	keyRxPackets
	keyTxPackets
	keySRTT
	keyConnect
	// Added in version 1 without a version change (docs/wire.md,
	// Evolution): decoders that know only the keys above skip these.
	keyCPUUsage
	keyCPUPeriods
	keyCPUThrottledPeriods
	keyCPUThrottled
	keyPressureKnown
	keyCPUPressureSome
	keyCPUPressureFull
	keyMemoryPressureSome
	keyMemoryPressureFull
	keyIOPressureSome
	keyIOPressureFull
	keyWorkingSet
	keyTxLoopback
	keyTxCluster
	keyTxInternet
	keyRequests
	keyRequestLatency
	keyRequestLatencyLogLinear
	numSeriesKeys
)

// Body keys of a frame.
const (
	keyTime = iota + 1
	keyInterval
	keyFrameMeta
	keySeries
	keyRemoved
	numFrameKeys
)

// The Values fields and their keys, in key order. Encoding, decoding,
// diffing and applying all iterate these tables.
var (
	gaugeFields = [...]struct {
		key uint64
		get func(*Values) *int64
	}{
		{keyProcesses, func(v *Values) *int64 { return &v.Processes }},
		{keyRSS, func(v *Values) *int64 { return &v.RSSBytes }},
		{keyPageCache, func(v *Values) *int64 { return &v.PageCacheBytes }},
		{keyPressureKnown, func(v *Values) *int64 { return &v.PressureKnown }},
		{keyWorkingSet, func(v *Values) *int64 { return &v.MemoryWorkingSetBytes }},
	}
	counterFields = [...]struct {
		key uint64
		get func(*Values) *uint64
	}{
		{keyPCAdded, func(v *Values) *uint64 { return &v.PageCacheAddedBytes }},
		{keyPCEvicted, func(v *Values) *uint64 { return &v.PageCacheEvictedBytes }},
		{keyPCAccesses, func(v *Values) *uint64 { return &v.PageCacheAccesses }},
		{keyPCMisses, func(v *Values) *uint64 { return &v.PageCacheMisses }},
		{keyRetransmits, func(v *Values) *uint64 { return &v.Retransmits }},
		{keyRxBytes, func(v *Values) *uint64 { return &v.RxBytes }},
		{keyTxBytes, func(v *Values) *uint64 { return &v.TxBytes }},
		{keyRxPackets, func(v *Values) *uint64 { return &v.RxPackets }},
		{keyTxPackets, func(v *Values) *uint64 { return &v.TxPackets }},
		{keyCPUUsage, func(v *Values) *uint64 { return &v.CPUUsageUsec }},
		{keyCPUPeriods, func(v *Values) *uint64 { return &v.CPUPeriods }},
		{keyCPUThrottledPeriods, func(v *Values) *uint64 { return &v.CPUThrottledPeriods }},
		{keyCPUThrottled, func(v *Values) *uint64 { return &v.CPUThrottledUsec }},
		{keyCPUPressureSome, func(v *Values) *uint64 { return &v.CPUPressureSomeUsec }},
		{keyCPUPressureFull, func(v *Values) *uint64 { return &v.CPUPressureFullUsec }},
		{keyMemoryPressureSome, func(v *Values) *uint64 { return &v.MemoryPressureSomeUsec }},
		{keyMemoryPressureFull, func(v *Values) *uint64 { return &v.MemoryPressureFullUsec }},
		{keyIOPressureSome, func(v *Values) *uint64 { return &v.IOPressureSomeUsec }},
		{keyIOPressureFull, func(v *Values) *uint64 { return &v.IOPressureFullUsec }},
		{keyTxLoopback, func(v *Values) *uint64 { return &v.TxLoopbackBytes }},
		{keyTxCluster, func(v *Values) *uint64 { return &v.TxClusterBytes }},
		{keyTxInternet, func(v *Values) *uint64 { return &v.TxInternetBytes }},
		{keyRequests, func(v *Values) *uint64 { return &v.Requests }},
	}
	histFields = [...]struct {
		key uint64
		get func(*Values) *Hist
	}{
		{keySRTT, func(v *Values) *Hist { return &v.SRTT }},
		{keyConnect, func(v *Values) *Hist { return &v.Connect }},
		{keyRequestLatency, func(v *Values) *Hist { return &v.RequestLatency }},
	}
	logLinearFields = [...]struct {
		key uint64
		get func(*Values) *LogLinearHist
	}{
		{keyRequestLatencyLogLinear, func(v *Values) *LogLinearHist { return &v.RequestLatencyLogLinear }},
	}
)

// seriesField is one Values field in the order a series map is written:
// by key.
type seriesField struct {
	key  uint64
	kind uint8 // fieldGauge, fieldCounter, fieldHist, fieldLogLinear
	i    int   // index in its table
}

const (
	fieldGauge = iota
	fieldCounter
	fieldHist
	fieldLogLinear
)

// seriesFields lists every Values field by key, for the encoder, which
// writes a series' fields in key order.
var seriesFields = func() []seriesField {
	var fs []seriesField
	for i, g := range gaugeFields {
		fs = append(fs, seriesField{g.key, fieldGauge, i})
	}
	for i, c := range counterFields {
		fs = append(fs, seriesField{c.key, fieldCounter, i})
	}
	for i, h := range histFields {
		fs = append(fs, seriesField{h.key, fieldHist, i})
	}
	for i, h := range logLinearFields {
		fs = append(fs, seriesField{h.key, fieldLogLinear, i})
	}
	slices.SortFunc(fs, func(a, b seriesField) int { return cmp.Compare(a.key, b.key) })
	return fs
}()

// invalidLogLinear reports whether a log-linear histogram's buckets are
// out of order or range, or empty, which no frame can carry.
func (v *Values) invalidLogLinear() bool {
	for _, h := range logLinearFields {
		if !h.get(v).valid() {
			return true
		}
	}
	return false
}

// Equal reports whether v and o hold the same values.
func (v *Values) Equal(o *Values) bool {
	for _, g := range gaugeFields {
		if *g.get(v) != *g.get(o) {
			return false
		}
	}
	for _, c := range counterFields {
		if *c.get(v) != *c.get(o) {
			return false
		}
	}
	for _, h := range histFields {
		if *h.get(v) != *h.get(o) {
			return false
		}
	}
	for _, h := range logLinearFields {
		if !h.get(v).Equal(h.get(o)) {
			return false
		}
	}
	return true
}

// isZero reports whether every value is zero.
func (v *Values) isZero() bool {
	var zero Values
	return v.Equal(&zero)
}

// negativeGauge reports whether any gauge is negative, which an absolute
// state must not be.
func (v *Values) negativeGauge() bool {
	for _, g := range gaugeFields {
		if *g.get(v) < 0 {
			return true
		}
	}
	return false
}

// validate checks what a frame's body must satisfy on its own, whatever
// the state it applies to, reporting a violation as kind (or ErrTooLarge).
// refs is an empty map to find duplicate refs with, or nil.
func (f *Frame) validate(lim *Limits, kind error, refs map[uint64]struct{}) error {
	if err := f.checkSeq(kind); err != nil {
		return err
	}
	if err := checkTime(f.Time, kind); err != nil {
		return err
	}
	if f.Interval < 0 {
		return fmt.Errorf("%w: negative interval", kind)
	}
	if f.Keyframe && !f.MetaSet {
		return fmt.Errorf("%w: keyframe without metadata set", kind)
	}
	if err := checkMeta(f.Meta, lim, kind); err != nil {
		return fmt.Errorf("frame metadata: %w", err)
	}
	if len(f.Series) > lim.MaxSeries || len(f.Removed) > lim.MaxSeries {
		return fmt.Errorf("%w: %d series and %d removals, limit %d each",
			ErrTooLarge, len(f.Series), len(f.Removed), lim.MaxSeries)
	}
	if f.Keyframe && len(f.Removed) > 0 {
		return fmt.Errorf("%w: keyframe with %d removals", kind, len(f.Removed))
	}
	if refs == nil {
		refs = make(map[uint64]struct{}, len(f.Series)+len(f.Removed))
	}
	for _, r := range f.Removed {
		if _, ok := refs[r]; ok {
			return fmt.Errorf("%w: ref %d removed twice", kind, r)
		}
		refs[r] = struct{}{}
	}
	for i := range f.Series {
		u := &f.Series[i]
		if _, ok := refs[u.Ref]; ok {
			return fmt.Errorf("%w: ref %d twice in one frame", kind, u.Ref)
		}
		refs[u.Ref] = struct{}{}
		if err := u.validate(f.Keyframe, lim, kind); err != nil {
			return fmt.Errorf("ref %d: %w", u.Ref, err)
		}
	}
	return nil
}

func (u *SeriesUpdate) validate(keyframe bool, lim *Limits, kind error) error {
	if keyframe && !u.New {
		return fmt.Errorf("%w: keyframe series without path", kind)
	}
	if !u.New {
		if u.Path != "" || u.ID != 0 {
			return fmt.Errorf("%w: path or id on a series that is not new", kind)
		}
	} else {
		if err := checkPath(u.Path, lim, kind); err != nil {
			return err
		}
		if !u.MetaSet {
			return fmt.Errorf("%w: new series without metadata set", kind)
		}
		if u.Values.negativeGauge() {
			return fmt.Errorf("%w: negative gauge", kind)
		}
	}
	if u.Values.invalidLogLinear() {
		return fmt.Errorf("%w: log-linear histogram buckets out of order or range, or empty", kind)
	}
	if err := checkMeta(u.Meta, lim, kind); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return nil
}
