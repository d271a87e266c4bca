package model

import (
	"fmt"
	"maps"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/mpcheck"
	"github.com/pennyhq/penny/wire"
)

// Counters are a series' cumulative counters (since its agent started).
type Counters struct {
	PageCacheAddedBytes   uint64 `msgpack:"pa,omitempty"`
	PageCacheEvictedBytes uint64 `msgpack:"pe,omitempty"`
	PageCacheAccesses     uint64 `msgpack:"ca,omitempty"` // pages
	PageCacheMisses       uint64 `msgpack:"cm,omitempty"` // pages
	Retransmits           uint64 `msgpack:"rt,omitempty"`
	RxBytes               uint64 `msgpack:"rb,omitempty"`
	TxBytes               uint64 `msgpack:"tb,omitempty"`
	RxPackets             uint64 `msgpack:"rp,omitempty"`
	TxPackets             uint64 `msgpack:"tp,omitempty"`

	// CPU from cgroupfs, microseconds: the cgroup's own CPU time, and its
	// CPU limit's enforcement periods, throttled periods and time
	// throttled.
	CPUUsageUsec        uint64 `msgpack:"cu,omitempty"`
	CPUPeriods          uint64 `msgpack:"cp,omitempty"`
	CPUThrottledPeriods uint64 `msgpack:"ctp,omitempty"`
	CPUThrottledUsec    uint64 `msgpack:"ct,omitempty"`
	// Pressure stall "some" time, microseconds, meaningful while the
	// series' PressureKnown is set. The "full" times the agents send are
	// not kept: no reader needs them, and every counter weighs on each
	// series value eleven times (Total, Last and the marks).
	CPUPressureSomeUsec    uint64 `msgpack:"pcs,omitempty"`
	MemoryPressureSomeUsec uint64 `msgpack:"pms,omitempty"`
	IOPressureSomeUsec     uint64 `msgpack:"pis,omitempty"`
	// TxBytes by destination.
	TxLoopbackBytes uint64 `msgpack:"tl,omitempty"`
	TxClusterBytes  uint64 `msgpack:"tc,omitempty"`
	TxInternetBytes uint64 `msgpack:"ti,omitempty"`
	// Requests the series' server sockets answered.
	Requests uint64 `msgpack:"rq,omitempty"`
}

// fields lists the counters for arithmetic over all of them.
func (c *Counters) fields() [20]*uint64 {
	return [20]*uint64{&c.PageCacheAddedBytes, &c.PageCacheEvictedBytes, &c.PageCacheAccesses,
		&c.PageCacheMisses, &c.Retransmits, &c.RxBytes, &c.TxBytes, &c.RxPackets, &c.TxPackets,
		&c.CPUUsageUsec, &c.CPUPeriods, &c.CPUThrottledPeriods, &c.CPUThrottledUsec,
		&c.CPUPressureSomeUsec, &c.MemoryPressureSomeUsec, &c.IOPressureSomeUsec,
		&c.TxLoopbackBytes, &c.TxClusterBytes, &c.TxInternetBytes, &c.Requests}
}

// Sub returns c - o field by field; ok is false when any field went
// backwards (the agent restarted).
func (c Counters) Sub(o Counters) (d Counters, ok bool) {
	cf, of, df := c.fields(), o.fields(), d.fields()
	for i := range cf {
		if *cf[i] < *of[i] {
			return Counters{}, false
		}
		*df[i] = *cf[i] - *of[i]
	}
	return d, true
}

// Hist is a cumulative log2 histogram in microseconds, stored sparse.
type Hist struct {
	histogram.Hist
}

// EncodeMsgpack writes count, sum and the non-zero buckets as
// [count, sum, index, n, index, n, ...].
func (h Hist) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 2
	for _, b := range h.Buckets {
		if b != 0 {
			n += 2
		}
	}
	if err := enc.EncodeArrayLen(n); err != nil {
		return err
	}
	if err := enc.EncodeUint(h.Count); err != nil {
		return err
	}
	if err := enc.EncodeUint(h.Sum); err != nil {
		return err
	}
	for i, b := range h.Buckets {
		if b == 0 {
			continue
		}
		if err := enc.EncodeUint(uint64(i)); err != nil {
			return err
		}
		if err := enc.EncodeUint(b); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack reads what EncodeMsgpack wrote, refusing bucket indexes out
// of range before it allocates anything.
func (h *Hist) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	*h = Hist{}
	if n <= 0 {
		return nil
	}
	if n < 2 || n%2 != 0 || n > 2+2*histogram.Buckets {
		return fmt.Errorf("%w: histogram of %d elements", ErrInvalid, n)
	}
	if h.Count, err = dec.DecodeUint64(); err != nil {
		return err
	}
	if h.Sum, err = dec.DecodeUint64(); err != nil {
		return err
	}
	for i := 2; i < n; i += 2 {
		idx, err := dec.DecodeUint64()
		if err != nil {
			return err
		}
		v, err := dec.DecodeUint64()
		if err != nil {
			return err
		}
		if idx >= histogram.Buckets {
			return fmt.Errorf("%w: histogram bucket %d", ErrInvalid, idx)
		}
		h.Buckets[idx] = v
	}
	return nil
}

// LogHist is a cumulative log-linear histogram in microseconds
// (histogram.LogLinear), stored sparse like Hist: its non-empty buckets
// only.
type LogHist struct {
	histogram.LogLinear
}

// IsZero reports that h holds nothing; msgpack leaves an omitempty LogHist
// field out when it does.
func (h LogHist) IsZero() bool { return h.LogLinear.IsZero() }

// EncodeMsgpack writes count, sum and the non-empty buckets as
// [count, sum, index, n, index, n, ...], as Hist does.
func (h LogHist) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeArrayLen(2 + 2*len(h.Buckets)); err != nil {
		return err
	}
	if err := enc.EncodeUint(h.Count); err != nil {
		return err
	}
	if err := enc.EncodeUint(h.Sum); err != nil {
		return err
	}
	for _, b := range h.Buckets {
		if err := enc.EncodeUint(uint64(b.Index)); err != nil {
			return err
		}
		if err := enc.EncodeUint(b.N); err != nil {
			return err
		}
	}
	return nil
}

// DecodeMsgpack reads what EncodeMsgpack wrote, refusing more buckets than
// there are before it allocates anything, and buckets out of order or
// range, or empty.
func (h *LogHist) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	*h = LogHist{}
	if n <= 0 {
		return nil
	}
	if n < 2 || n%2 != 0 || n > 2+2*histogram.LogLinearBuckets {
		return fmt.Errorf("%w: histogram of %d elements", ErrInvalid, n)
	}
	if h.Count, err = dec.DecodeUint64(); err != nil {
		return err
	}
	if h.Sum, err = dec.DecodeUint64(); err != nil {
		return err
	}
	if n > 2 {
		h.Buckets = make([]histogram.SparseBucket, 0, (n-2)/2)
	}
	for i := 2; i < n; i += 2 {
		idx, err := dec.DecodeUint64()
		if err != nil {
			return err
		}
		v, err := dec.DecodeUint64()
		if err != nil {
			return err
		}
		if idx >= histogram.LogLinearBuckets {
			return fmt.Errorf("%w: histogram bucket %d", ErrInvalid, idx)
		}
		h.Buckets = append(h.Buckets, histogram.SparseBucket{Index: uint32(idx), N: v})
	}
	if !h.Valid() {
		return fmt.Errorf("%w: histogram buckets out of order or empty", ErrInvalid)
	}
	return nil
}

// SeriesState is one cgroup's absolute state at one sample, as an agent
// reports it.
type SeriesState struct {
	// Ref is the series' number on the agent's stream (package wire).
	Ref       uint64
	Path      string
	CgroupID  uint64
	Meta      map[string]string
	Processes int64
	RSSBytes  int64
	// PageCacheBytes is file page cache charged to the cgroup.
	PageCacheBytes int64
	// WorkingSetBytes is memory usage minus inactive file pages.
	WorkingSetBytes int64
	// PressureKnown: the kernel reports pressure stall information for the
	// cgroup, and Total's pressure counters hold it.
	PressureKnown bool
	Total         Counters
	SRTT, Connect histogram.Hist // cumulative, microseconds
	// RequestLatencyLogLinear is the latency of the timed requests,
	// cumulative, microseconds, from an agent that sends it (wire key
	// 35); RequestLatency is the same from an older agent, in log2
	// buckets, and empty when RequestLatencyLogLinear is not.
	RequestLatency          histogram.Hist
	RequestLatencyLogLinear histogram.LogLinear
}

// Delta is what happened to a series between two samples.
type Delta struct {
	Counters Counters `msgpack:"c"`
	SRTT     Hist     `msgpack:"s"`
	Connect  Hist     `msgpack:"n"`
	// RequestLatency (an older agent's, log2) and RequestLatencyLogLinear
	// are left out while empty: most series serve no requests, and a
	// series has one or the other (SeriesState).
	RequestLatency          Hist    `msgpack:"q,omitempty"`
	RequestLatencyLogLinear LogHist `msgpack:"ql,omitempty"`
}

// Mark is a checkpoint of a series' cumulative values, for windows.
type Mark struct {
	Time           int64    `msgpack:"t"` // sample time, unix ns
	Total          Counters `msgpack:"c"`
	SRTT           Hist     `msgpack:"s"`
	Connect        Hist     `msgpack:"n"`
	RequestLatency Hist     `msgpack:"q,omitempty"`
	// RequestLatencyLogLinear is left out while empty.
	RequestLatencyLogLinear LogHist `msgpack:"ql,omitempty"`
}

// Stored is the value of a series key.
type Stored struct {
	Ref uint64 `msgpack:"r"`
	// Path is the series' key's (SeriesKey), not written in its value:
	// values written before held it too ("p").
	Path     string `msgpack:"p,omitempty"`
	CgroupID uint64 `msgpack:"i"`
	// Meta is kept under MetaKey, not in the series value: it changes
	// rarely and would weigh on every write of the values.
	Meta map[string]string `msgpack:"-"`
	// kube is Meta decoded by the reader (SetKube), nil: View decodes
	// Meta.
	kube      *Kube
	Time      int64 `msgpack:"t"` // sample time of the values, unix ns
	Interval  int64 `msgpack:"d"` // the agent's sampling interval, ns
	Updated   int64 `msgpack:"u"` // when the aggregator wrote them, unix ns
	Processes int64 `msgpack:"np,omitempty"`
	RSSBytes  int64 `msgpack:"rss,omitempty"`
	PageCache int64 `msgpack:"pc,omitempty"`
	// WorkingSet is memory usage minus inactive file pages.
	WorkingSet int64 `msgpack:"ws,omitempty"`
	// PressureKnown: Total's pressure counters hold the kernel's pressure
	// stall information; unknown (null) otherwise.
	PressureKnown bool `msgpack:"pk,omitempty"`

	Total   Counters `msgpack:"c"`
	SRTT    Hist     `msgpack:"s"`
	Connect Hist     `msgpack:"n"`
	// RequestLatency (an older agent's, log2) and RequestLatencyLogLinear
	// are left out while empty; values written before key 35 hold only
	// the first.
	RequestLatency          Hist    `msgpack:"q,omitempty"`
	RequestLatencyLogLinear LogHist `msgpack:"ql,omitempty"`
	// Last is the increase since the series was last written, which covers
	// the interval that ended at Time.
	Last Delta `msgpack:"l"`
	// Marks are checkpoints of the cumulative values, oldest first, at
	// least MarkEvery apart. They are kept under MarksKey, written when
	// one is added, not in the series value; values written before held
	// them ("m"), and such a value's marks are the series' own
	// (marksInValue) until it is written again.
	Marks        Marks `msgpack:"m,omitempty"`
	marksInValue bool
	// packed holds the checkpoints encoded (their MarksKey value) in place
	// of Marks, and newest the newest one's time: how the ingest's node
	// states keep them (NodeState), at about a ninth of their decoded
	// size (a Mark is 1 KB decoded, 9 of them about 1.1 KB encoded).
	packed []byte
	newest int64
	// canon: packed is as appendMarks writes it (spliceMarks), not as
	// loaded from the store.
	canon bool
	// gen is the generation of the node state whose plan wrote the
	// value in this process (NodeState), 0 when decoded.
	gen uint64
	// Accrual is what the series accrued over its lifetime for the
	// history of costs: observed time and integrals of its gauges, as of
	// Time (see accrual.go).
	Accrual Accrual `msgpack:"ac"`
}

// Marks is a series' checkpoints; decoding refuses more than a series can
// have before allocating.
type Marks []Mark

// DecodeMsgpack implements msgpack.CustomDecoder, for msgpack's
// reflection; DecodeStored and DecodeMarks read marks as it does
// (decode.go), and so Hist's, LogHist's, Accrual's and Int128's.
func (m *Marks) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n > maxMarks+1 {
		return fmt.Errorf("%w: %d marks", ErrInvalid, n)
	}
	*m = nil
	if n <= 0 {
		return nil
	}
	*m = make(Marks, n)
	for i := range *m {
		if err := dec.Decode(&(*m)[i]); err != nil {
			return err
		}
	}
	return nil
}

// MaxValue bounds a stored value read back from the store.
const MaxValue = 64 << 10

// DecodeStored decodes the value of the series at path (decode.go).
func DecodeStored(path string, b []byte) (*Stored, error) {
	s := new(Stored)
	if err := DecodeStoredInto(s, path, b); err != nil {
		return nil, err
	}
	return s, nil
}

// DecodeStoredInto is DecodeStored into s, which it clears first: a reader
// that turns many series into containers one after the other decodes them
// all into one Stored (a series is about 3 KB decoded, most of what a read
// would otherwise leave to the collector). What View makes of s shares
// nothing with it but its histograms' buckets, which each decoding
// allocates afresh.
func DecodeStoredInto(s *Stored, path string, b []byte) error {
	*s = Stored{}
	if len(b) > MaxValue {
		return fmt.Errorf("%w: series value of %d bytes", ErrInvalid, len(b))
	}
	if err := decodeStored(b, s); err != nil {
		return fmt.Errorf("%w: decode series: %w", ErrInvalid, err)
	}
	s.marksInValue = len(s.Marks) > 0
	s.Path = path
	return nil
}

// pack keeps s's checkpoints encoded: enc, their encoding when known
// (nil: encoded here, and so canon).
func (s *Stored) pack(enc []byte) {
	if len(s.Marks) == 0 {
		return
	}
	canon := enc == nil
	if canon {
		enc = EncodeMarks(s.Marks)
	}
	s.packed, s.newest, s.Marks, s.canon = enc, s.Marks[len(s.Marks)-1].Time, nil, canon
}

// hasMarks tells whether s has checkpoints, packed or not.
func (s *Stored) hasMarks() bool { return len(s.Marks) > 0 || len(s.packed) > 0 }

// newestMark returns the time of s's newest checkpoint, if any.
func (s *Stored) newestMark() (int64, bool) {
	switch {
	case len(s.Marks) > 0:
		return s.Marks[len(s.Marks)-1].Time, true
	case len(s.packed) > 0:
		return s.newest, true
	}
	return 0, false
}

// unpacked returns s's checkpoints, decoded when packed: a new slice then,
// s's own otherwise.
func (s *Stored) unpacked() (Marks, error) {
	if len(s.packed) == 0 {
		return s.Marks, nil
	}
	return DecodeMarks(s.packed)
}

// SetMarks gives a decoded series the checkpoints stored under its
// MarksKey, unless its value holds its own (written by a version that kept
// them there, which wrote that value last).
func (s *Stored) SetMarks(b []byte) error {
	if s.marksInValue {
		return nil
	}
	m, err := DecodeMarks(b)
	if err != nil {
		return err
	}
	s.Marks = m
	return nil
}

// EncodeMarks encodes a series' checkpoints, the value of its MarksKey.
func EncodeMarks(m Marks) []byte {
	return appendMarks(make([]byte, 0, len(m)*markHint), m)
}

// DecodeMarks decodes the value of a MarksKey (decode.go).
func DecodeMarks(b []byte) (Marks, error) {
	if len(b) > MaxValue {
		return nil, fmt.Errorf("%w: checkpoints value of %d bytes", ErrInvalid, len(b))
	}
	m, err := decodeMarks(b)
	if err != nil {
		return nil, fmt.Errorf("%w: decode checkpoints: %w", ErrInvalid, err)
	}
	return m, nil
}

// Encode encodes a series value (see appendStored). It does not fail; the
// error is kept for the encoders that can.
func (s *Stored) Encode() ([]byte, error) {
	return appendStored(make([]byte, 0, storedHint), s), nil
}

// Agent is the value of an agent record.
type Agent struct {
	Incarnation uint64 `msgpack:"inc"`
	Seq         uint64 `msgpack:"seq"`
	Time        int64  `msgpack:"t"` // sample time of the last applied frame, unix ns
	Interval    int64  `msgpack:"d"`
	Updated     int64  `msgpack:"u"` // when the aggregator applied it, unix ns
	Series      int    `msgpack:"n"` // live series
	// Meta is the agent's metadata (version, kernel, …).
	Meta map[string]string `msgpack:"md,omitempty"`
	// Accrual is how long the node has been observed, for the history of
	// costs.
	Accrual NodeAccrual `msgpack:"ac"`
}

// EncodeMeta encodes a series' metadata, the value of its MetaKey.
func EncodeMeta(m map[string]string) ([]byte, error) {
	b, err := msgpack.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return b, nil
}

// DecodeMeta decodes the value of a MetaKey.
func DecodeMeta(b []byte) (map[string]string, error) {
	if len(b) > MaxValue {
		return nil, fmt.Errorf("%w: metadata value of %d bytes", ErrInvalid, len(b))
	}
	if err := mpcheck.Check(b); err != nil {
		return nil, fmt.Errorf("%w: metadata value: %v", ErrInvalid, err)
	}
	var m map[string]string
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: decode metadata: %v", ErrInvalid, err)
	}
	return m, nil
}

// DecodeAgent decodes an agent record.
func DecodeAgent(b []byte) (*Agent, error) {
	if len(b) > MaxValue {
		return nil, fmt.Errorf("%w: agent value of %d bytes", ErrInvalid, len(b))
	}
	if err := mpcheck.Check(b); err != nil {
		return nil, fmt.Errorf("%w: agent value: %v", ErrInvalid, err)
	}
	var a Agent
	if err := msgpack.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%w: decode agent: %v", ErrInvalid, err)
	}
	return &a, nil
}

// Encode encodes an agent record.
func (a *Agent) Encode() ([]byte, error) {
	b, err := msgpack.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode agent record: %w", err)
	}
	return b, nil
}

// SampleTime returns the agent record's sample time.
func (a *Agent) SampleTime() time.Time { return time.Unix(0, a.Time) }

// FromWire converts the state a wire.State holds for the series ref.
func FromWire(ref uint64, w *wire.SeriesState) SeriesState {
	v := &w.Values
	s := SeriesState{
		Ref: ref, Path: w.Path, CgroupID: w.ID, Meta: w.Meta, // shared: metadata maps are replaced, never changed
		Processes: v.Processes, RSSBytes: v.RSSBytes, PageCacheBytes: v.PageCacheBytes,
		WorkingSetBytes: v.MemoryWorkingSetBytes, PressureKnown: v.PressureKnown != 0,
		Total: Counters{
			PageCacheAddedBytes: v.PageCacheAddedBytes, PageCacheEvictedBytes: v.PageCacheEvictedBytes,
			PageCacheAccesses: v.PageCacheAccesses, PageCacheMisses: v.PageCacheMisses,
			Retransmits: v.Retransmits, RxBytes: v.RxBytes, TxBytes: v.TxBytes,
			RxPackets: v.RxPackets, TxPackets: v.TxPackets,
			CPUUsageUsec: v.CPUUsageUsec, CPUPeriods: v.CPUPeriods, CPUThrottledPeriods: v.CPUThrottledPeriods,
			CPUThrottledUsec: v.CPUThrottledUsec, CPUPressureSomeUsec: v.CPUPressureSomeUsec,
			MemoryPressureSomeUsec: v.MemoryPressureSomeUsec, IOPressureSomeUsec: v.IOPressureSomeUsec,
			TxLoopbackBytes: v.TxLoopbackBytes, TxClusterBytes: v.TxClusterBytes, TxInternetBytes: v.TxInternetBytes,
			Requests: v.Requests,
		},
		SRTT: histogram.Hist(v.SRTT), Connect: histogram.Hist(v.Connect),
	}
	// An agent that sends key 35 sends key 34 as its log2 buckets, for
	// older aggregators: only the first is kept (WireState restores the
	// second). An older agent sends key 34 only.
	if v.RequestLatencyLogLinear.IsZero() {
		s.RequestLatency = histogram.Hist(v.RequestLatency)
	} else {
		s.RequestLatencyLogLinear = histogram.LogLinearFromWire(&v.RequestLatencyLogLinear)
	}
	return s
}

// WireState converts a stored series back to the wire's absolute state,
// to rebuild an agent's stream state.
func (s *Stored) WireState() wire.SeriesState {
	t := &s.Total
	w := wire.SeriesState{
		Path: s.Path, ID: s.CgroupID, Meta: maps.Clone(s.Meta),
		Values: wire.Values{
			Processes: s.Processes, RSSBytes: s.RSSBytes, PageCacheBytes: s.PageCache,
			PageCacheAddedBytes: t.PageCacheAddedBytes, PageCacheEvictedBytes: t.PageCacheEvictedBytes,
			PageCacheAccesses: t.PageCacheAccesses, PageCacheMisses: t.PageCacheMisses,
			Retransmits: t.Retransmits, RxBytes: t.RxBytes, TxBytes: t.TxBytes,
			RxPackets: t.RxPackets, TxPackets: t.TxPackets,
			SRTT: wire.Hist(s.SRTT.Hist), Connect: wire.Hist(s.Connect.Hist),
			CPUUsageUsec: t.CPUUsageUsec, CPUPeriods: t.CPUPeriods, CPUThrottledPeriods: t.CPUThrottledPeriods,
			CPUThrottledUsec: t.CPUThrottledUsec, PressureKnown: flag(s.PressureKnown),
			CPUPressureSomeUsec: t.CPUPressureSomeUsec, MemoryPressureSomeUsec: t.MemoryPressureSomeUsec,
			IOPressureSomeUsec:    t.IOPressureSomeUsec,
			MemoryWorkingSetBytes: s.WorkingSet, TxLoopbackBytes: t.TxLoopbackBytes,
			TxClusterBytes: t.TxClusterBytes, TxInternetBytes: t.TxInternetBytes,
			Requests: t.Requests, RequestLatency: wire.Hist(s.RequestLatency.Hist),
		},
	}
	if !s.RequestLatencyLogLinear.IsZero() {
		w.RequestLatency = wire.Hist(s.RequestLatencyLogLinear.Log2())
		w.RequestLatencyLogLinear = s.RequestLatencyLogLinear.Wire()
	}
	return w
}

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
