package wire

import (
	"fmt"
	"time"
)

// writeBody writes f's body: a map of the frame's fields, keys ascending,
// zero values and empty sections left out.
func (w *mpWriter) writeBody(f *Frame) {
	metaSet := f.MetaSet && (!f.Keyframe || len(f.Meta) > 0)
	n := 2 + count(metaSet) + count(len(f.Series) > 0) + count(len(f.Removed) > 0)
	w.mapLen(n)
	w.uint(keyTime)
	w.int(f.Time.UnixNano())
	w.uint(keyInterval)
	w.uint(uint64(f.Interval))
	if metaSet {
		w.uint(keyFrameMeta)
		w.meta(f.Meta)
	}
	if len(f.Series) > 0 {
		w.uint(keySeries)
		w.arrayLen(len(f.Series))
		for i := range f.Series {
			w.writeSeries(&f.Series[i])
		}
	}
	if len(f.Removed) > 0 {
		w.uint(keyRemoved)
		w.arrayLen(len(f.Removed))
		for _, r := range f.Removed {
			w.uint(r)
		}
	}
}

func (w *mpWriter) writeSeries(u *SeriesUpdate) {
	v := &u.Values
	metaSet := u.MetaSet && (!u.New || len(u.Meta) > 0)
	n := 1 + 2*count(u.New) + count(metaSet)
	for _, g := range gaugeFields {
		n += count(*g.get(v) != 0)
	}
	for _, c := range counterFields {
		n += count(*c.get(v) != 0)
	}
	for _, h := range histFields {
		n += count(!h.get(v).IsZero())
	}
	for _, h := range logLinearFields {
		n += count(!h.get(v).IsZero())
	}
	w.mapLen(n)
	w.uint(keyRef)
	w.uint(u.Ref)
	if u.New {
		w.uint(keyPath)
		w.string(u.Path)
		w.uint(keyID)
		w.uint(u.ID)
	}
	if metaSet {
		w.uint(keySeriesMeta)
		w.meta(u.Meta)
	}
	for _, f := range seriesFields {
		switch f.kind {
		case fieldGauge:
			if x := *gaugeFields[f.i].get(v); x != 0 {
				w.uint(f.key)
				w.int(x)
			}
		case fieldCounter:
			if x := *counterFields[f.i].get(v); x != 0 {
				w.uint(f.key)
				w.uint(x)
			}
		case fieldHist:
			if h := histFields[f.i].get(v); !h.IsZero() {
				w.uint(f.key)
				w.writeHist(h)
			}
		default:
			if h := logLinearFields[f.i].get(v); !h.IsZero() {
				w.uint(f.key)
				w.writeLogLinear(h)
			}
		}
	}
}

// writeHist writes [count, sum, [index, n, index, n, ...]] with the
// non-zero buckets in index order.
func (w *mpWriter) writeHist(h *Hist) {
	nonZero := 0
	for _, b := range h.Buckets {
		nonZero += count(b != 0)
	}
	w.arrayLen(3)
	w.uint(h.Count)
	w.uint(h.Sum)
	w.arrayLen(2 * nonZero)
	for i, b := range h.Buckets {
		if b != 0 {
			w.uint(uint64(i))
			w.uint(b)
		}
	}
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

// seenKeys tracks which known keys of a map were read, to reject
// duplicates.
type seenKeys uint64

func (s *seenKeys) add(key uint64) error {
	if *s&(1<<key) != 0 {
		return fmt.Errorf("%w: key %d twice", ErrCorrupt, key)
	}
	*s |= 1 << key
	return nil
}

func (s seenKeys) has(key uint64) bool { return s&(1<<key) != 0 }

// readBody reads a body into f, whose header is already set. The caller
// validates the result.
func (m *mpReader) readBody(f *Frame) error {
	n, err := m.mapLen(unbounded, 2)
	if err != nil {
		return err
	}
	var seen seenKeys
	for range n {
		key, err := m.uint()
		if err != nil {
			return err
		}
		if key >= numFrameKeys || key == 0 {
			if err := m.skip(0); err != nil {
				return fmt.Errorf("unknown field %d: %w", key, err)
			}
			continue
		}
		if err := seen.add(key); err != nil {
			return err
		}
		switch key {
		case keyTime:
			ns, err := m.int()
			if err != nil {
				return fmt.Errorf("time: %w", err)
			}
			f.Time = time.Unix(0, ns).UTC()
		case keyInterval:
			ns, err := m.uint()
			if err != nil {
				return fmt.Errorf("interval: %w", err)
			}
			if ns > 1<<63-1 {
				return fmt.Errorf("%w: interval %d overflows", ErrCorrupt, ns)
			}
			f.Interval = time.Duration(ns)
		case keyFrameMeta:
			if f.Meta, err = m.meta(); err != nil {
				return fmt.Errorf("frame metadata: %w", err)
			}
			f.MetaSet = true
		case keySeries:
			if err := m.readSeriesList(f); err != nil {
				return err
			}
		case keyRemoved:
			if err := m.readRemoved(f); err != nil {
				return err
			}
		}
	}
	if !seen.has(keyTime) || !seen.has(keyInterval) {
		return fmt.Errorf("%w: body without time or interval", ErrCorrupt)
	}
	if f.Keyframe {
		f.MetaSet = true
	}
	if m.left() != 0 {
		return fmt.Errorf("%w: %d bytes after the body", ErrCorrupt, m.left())
	}
	return nil
}

// minSeriesSize is the smallest encoded series: a one-entry map holding a
// ref.
const minSeriesSize = 3

func (m *mpReader) readSeriesList(f *Frame) error {
	n, err := m.arrayLen(m.lim.MaxSeries, minSeriesSize)
	if err != nil {
		return fmt.Errorf("series: %w", err)
	}
	// Grow as series are read rather than trusting n: each series costs
	// far more memory decoded than encoded.
	f.Series = make([]SeriesUpdate, 0, min(n, 64))
	for i := range n {
		f.Series = append(f.Series, SeriesUpdate{})
		if err := m.readSeries(&f.Series[len(f.Series)-1]); err != nil {
			return fmt.Errorf("series %d: %w", i, err)
		}
	}
	return nil
}

func (m *mpReader) readRemoved(f *Frame) error {
	n, err := m.arrayLen(m.lim.MaxSeries, 1)
	if err != nil {
		return fmt.Errorf("removed: %w", err)
	}
	f.Removed = make([]uint64, n)
	for i := range f.Removed {
		if f.Removed[i], err = m.uint(); err != nil {
			return fmt.Errorf("removed %d: %w", i, err)
		}
	}
	return nil
}

func (m *mpReader) readSeries(u *SeriesUpdate) error {
	n, err := m.mapLen(unbounded, 2)
	if err != nil {
		return err
	}
	var seen seenKeys
	for range n {
		key, err := m.uint()
		if err != nil {
			return err
		}
		if key >= m.seriesKeys {
			if err := m.skip(0); err != nil {
				return fmt.Errorf("unknown field %d: %w", key, err)
			}
			continue
		}
		if err := seen.add(key); err != nil {
			return err
		}
		if err := m.readSeriesField(u, key); err != nil {
			return fmt.Errorf("field %d: %w", key, err)
		}
	}
	if !seen.has(keyRef) {
		return fmt.Errorf("%w: series without ref", ErrCorrupt)
	}
	if seen.has(keyPath) != seen.has(keyID) {
		return fmt.Errorf("%w: series with only one of path and id", ErrCorrupt)
	}
	u.New = seen.has(keyPath)
	if u.New {
		u.MetaSet = true
	}
	return nil
}

func (m *mpReader) readSeriesField(u *SeriesUpdate, key uint64) error {
	var err error
	switch key {
	case keyRef:
		u.Ref, err = m.uint()
		return err
	case keyPath:
		u.Path, err = m.string()
		return err
	case keyID:
		u.ID, err = m.uint()
		return err
	case keySeriesMeta:
		u.Meta, err = m.meta()
		u.MetaSet = true
		return err
	}
	v := &u.Values
	for _, g := range gaugeFields {
		if g.key == key {
			*g.get(v), err = m.int()
			return err
		}
	}
	for _, c := range counterFields {
		if c.key == key {
			*c.get(v), err = m.uint()
			return err
		}
	}
	for _, h := range histFields {
		if h.key == key {
			return m.readHist(h.get(v))
		}
	}
	for _, h := range logLinearFields {
		if h.key == key {
			return m.readLogLinear(h.get(v))
		}
	}
	return fmt.Errorf("%w: no decoder for key %d", ErrCorrupt, key)
}

// readHist reads [count, sum, [index, n, ...], future fields...]: indices
// strictly increasing and below HistBuckets, n not zero.
func (m *mpReader) readHist(h *Hist) error {
	n, err := m.arrayLen(unbounded, 1)
	if err != nil {
		return err
	}
	if n < 3 {
		return fmt.Errorf("%w: histogram of %d elements, want at least 3", ErrCorrupt, n)
	}
	if h.Count, err = m.uint(); err != nil {
		return err
	}
	if h.Sum, err = m.uint(); err != nil {
		return err
	}
	pairs, err := m.arrayLen(2*HistBuckets, 1)
	if err != nil {
		return fmt.Errorf("histogram buckets: %w", err)
	}
	if pairs%2 != 0 {
		return fmt.Errorf("%w: odd histogram bucket list of %d", ErrCorrupt, pairs)
	}
	next := uint64(0)
	for range pairs / 2 {
		i, err := m.uint()
		if err != nil {
			return err
		}
		if i < next || i >= HistBuckets {
			return fmt.Errorf("%w: histogram bucket %d out of order or range", ErrCorrupt, i)
		}
		if h.Buckets[i], err = m.uint(); err != nil {
			return err
		}
		if h.Buckets[i] == 0 {
			return fmt.Errorf("%w: histogram bucket %d of zero", ErrCorrupt, i)
		}
		next = i + 1
	}
	for range n - 3 {
		if err := m.skip(1); err != nil {
			return fmt.Errorf("histogram: unknown field: %w", err)
		}
	}
	return nil
}
