package wire

import (
	"fmt"
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
	}
	histFields = [...]struct {
		key uint64
		get func(*Values) *Hist
	}{
		{keySRTT, func(v *Values) *Hist { return &v.SRTT }},
		{keyConnect, func(v *Values) *Hist { return &v.Connect }},
	}
)

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
		if u.Processes < 0 || u.RSSBytes < 0 || u.PageCacheBytes < 0 {
			return fmt.Errorf("%w: negative gauge", kind)
		}
	}
	if err := checkMeta(u.Meta, lim, kind); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return nil
}
