package model

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/vmihailenco/msgpack/v5"
)

// Accruals: what the history of costs (package aggregator/history) needs of
// a series, kept in the series value and advanced by every write of it.
//
// Gauges (RSS, page cache, working set) are integrated exactly, sample and
// hold: a value sampled at t holds until the series' next sample, so a
// series unchanged in a frame (and so not written) keeps accruing at its
// stored values, and a reader extends the integrals to any later time of
// the node with Stored.CumulativeAt. Times are whole milliseconds of the
// agents' sample times (unix ms, rounded down), integrals byte-milliseconds
// in 128 bits: a TiB held for 90 days is 8.6e21 byte-ms, past 64 bits.
//
// Minute boundaries are what the history rolls up to, so each value also
// keeps what accrued since the last boundary before its sample time
// (Boundary): the roller gets the cumulative values at a boundary exactly
// even when the series was written after it.

// MinuteMs is a minute in milliseconds.
const MinuteMs = 60_000

// Ms is a time in unix nanoseconds as whole milliseconds, rounded down.
func Ms(ns int64) int64 {
	if ns < 0 {
		return -((-ns + 999_999) / 1_000_000)
	}
	return ns / 1_000_000
}

// Boundary is the last minute boundary strictly before tms (unix ms): a
// sample taken exactly on a boundary belongs to the minute that ends there.
func Boundary(tms int64) int64 {
	q := (tms - 1) / MinuteMs
	if (tms-1)%MinuteMs < 0 {
		q--
	}
	return q * MinuteMs
}

// Int128 is an unsigned 128-bit integer. It encodes as a msgpack uint
// while it fits in 64 bits, else as [hi, lo].
type Int128 struct{ Hi, Lo uint64 }

// Add returns a + b, saturating at the maximum.
func (a Int128) Add(b Int128) Int128 {
	lo, c := bits.Add64(a.Lo, b.Lo, 0)
	hi, c := bits.Add64(a.Hi, b.Hi, c)
	if c != 0 {
		return Int128{math.MaxUint64, math.MaxUint64}
	}
	return Int128{hi, lo}
}

// Add64 returns a + b, saturating.
func (a Int128) Add64(b uint64) Int128 { return a.Add(Int128{Lo: b}) }

// Sub returns a - b; ok is false (and the result zero) when b > a.
func (a Int128) Sub(b Int128) (Int128, bool) {
	lo, c := bits.Sub64(a.Lo, b.Lo, 0)
	hi, c := bits.Sub64(a.Hi, b.Hi, c)
	if c != 0 {
		return Int128{}, false
	}
	return Int128{hi, lo}, true
}

// Less reports a < b.
func (a Int128) Less(b Int128) bool { return a.Hi < b.Hi || a.Hi == b.Hi && a.Lo < b.Lo }

// Div returns a / d rounded down, saturating at the largest uint64; d must
// not be zero (0 is returned for it).
func (a Int128) Div(d uint64) uint64 {
	if d == 0 {
		return 0
	}
	if a.Hi >= d {
		return math.MaxUint64
	}
	q, _ := bits.Div64(a.Hi, a.Lo, d)
	return q
}

// Mul128 returns a × b as an Int128.
func Mul128(a, b uint64) Int128 {
	hi, lo := bits.Mul64(a, b)
	return Int128{hi, lo}
}

// MulSat returns a × b, saturating at the largest uint64.
func MulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (a Int128) EncodeMsgpack(enc *msgpack.Encoder) error {
	if a.Hi == 0 {
		return enc.EncodeUint(a.Lo)
	}
	if err := enc.EncodeArrayLen(2); err != nil {
		return err
	}
	if err := enc.EncodeUint(a.Hi); err != nil {
		return err
	}
	return enc.EncodeUint(a.Lo)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (a *Int128) DecodeMsgpack(dec *msgpack.Decoder) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if !isArrayCode(c) {
		a.Hi = 0
		a.Lo, err = dec.DecodeUint64()
		return err
	}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 2 {
		return fmt.Errorf("%w: 128-bit integer of %d elements", ErrInvalid, n)
	}
	if a.Hi, err = dec.DecodeUint64(); err != nil {
		return err
	}
	a.Lo, err = dec.DecodeUint64()
	return err
}

func isArrayCode(c byte) bool { return c >= 0x90 && c <= 0x9f || c == 0xdc || c == 0xdd }

// Cumulative is what a series accrued over its lifetime, up to some time:
// the observed time, the integrals of its gauges and the counters that
// cost depends on.
type Cumulative struct {
	// ObservedMs is how long the series was present, ms.
	ObservedMs uint64
	// RSS, PageCache and WorkingSet are byte-milliseconds.
	RSS, PageCache, WorkingSet Int128
	// CPUUsec is CPU time, microseconds; TxInternet and TxCluster are
	// bytes sent by destination class; Requests the requests answered.
	CPUUsec, TxInternet, TxCluster uint64
	Requests                       uint64
}

// Since is what accrued since a boundary: the same quantities as
// Cumulative, each within 64 bits (a minute of a TiB is 6.6e16 byte-ms).
type Since struct {
	ObservedMs                 uint64
	RSS, PageCache, WorkingSet uint64
	CPUUsec, TxInternet        uint64
	TxCluster, Requests        uint64
}

// Accrual is a series' lifetime accruals, as stored.
type Accrual struct {
	// Born is the sample time (unix ns) the series' lifetime started
	// with: its first sample, or the first after its counters restarted.
	// 0 in values written before accruals existed.
	Born int64
	// ObservedMs and the integrals are as of the series' sample time.
	ObservedMs                 uint64
	RSS, PageCache, WorkingSet Int128
	// Since is what accrued since Boundary of the sample time, counters
	// included.
	Since Since
	// Base is what the counters held when the lifetime started and does
	// not belong to it: 0, but for a series whose value predates accruals.
	BaseCPUUsec, BaseTxInternet, BaseTxCluster uint64
	BaseRequests                               uint64
}

// life is what counters c counted in a's lifetime.
func (a *Accrual) life(c counters) counters {
	return counters{subFloor(c.cpu, a.BaseCPUUsec), subFloor(c.txInternet, a.BaseTxInternet),
		subFloor(c.txCluster, a.BaseTxCluster), subFloor(c.requests, a.BaseRequests)}
}

// gauges are the values a series holds between samples, for integrals.
type gauges struct{ rss, pageCache, workingSet uint64 }

func gaugesOf(s *Stored) gauges {
	return gauges{nonNeg(s.RSSBytes), nonNeg(s.PageCache), nonNeg(s.WorkingSet)}
}

func nonNeg(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// counters are the counters history needs, for their increase since a
// boundary.
type counters struct{ cpu, txInternet, txCluster, requests uint64 }

func countersOf(c *Counters) counters {
	return counters{c.CPUUsageUsec, c.TxInternetBytes, c.TxClusterBytes, c.Requests}
}

// NoCap is an unbounded hold.
const NoCap = int64(math.MaxInt64)

// held is how much of [from, to] a value sampled at from holds for, at
// most holdCap ms: 0 when to is before from.
func held(from, to, holdCap int64) uint64 {
	if to <= from {
		return 0
	}
	d := to - from
	if d < 0 { // overflow
		d = math.MaxInt64
	}
	return uint64(min(d, holdCap))
}

// advance returns a accrued from fromMs (the sample time of a, whose gauges
// were g) to toMs, holding g for at most holdCap ms, with the counters
// having increased by dc meanwhile (reported at toMs).
func (a Accrual) advance(g gauges, fromMs, toMs, holdCap int64, dc counters) Accrual {
	dt := held(fromMs, toMs, holdCap)
	out := a
	out.ObservedMs = a.ObservedMs + dt
	out.RSS = a.RSS.Add(Mul128(g.rss, dt))
	out.PageCache = a.PageCache.Add(Mul128(g.pageCache, dt))
	out.WorkingSet = a.WorkingSet.Add(Mul128(g.workingSet, dt))
	b := Boundary(toMs)
	var s Since
	after := dt // the part of dt after the boundary b
	if Boundary(fromMs) == b {
		s = a.Since
	} else {
		after = dt - held(fromMs, b, holdCap)
	}
	s.ObservedMs += after
	s.RSS = addSat(s.RSS, MulSat(g.rss, after))
	s.PageCache = addSat(s.PageCache, MulSat(g.pageCache, after))
	s.WorkingSet = addSat(s.WorkingSet, MulSat(g.workingSet, after))
	s.CPUUsec = addSat(s.CPUUsec, dc.cpu)
	s.TxInternet = addSat(s.TxInternet, dc.txInternet)
	s.TxCluster = addSat(s.TxCluster, dc.txCluster)
	s.Requests = addSat(s.Requests, dc.requests)
	out.Since = s
	return out
}

func addSat(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

func subFloor(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// born starts a lifetime at a series' sample at ns (unix ns) whose counters
// are total: nothing accrued, and what the counters hold beyond base
// happened since.
func born(ns int64, total *Counters, base counters) Accrual {
	a := Accrual{Born: ns, BaseCPUUsec: base.cpu, BaseTxInternet: base.txInternet, BaseTxCluster: base.txCluster,
		BaseRequests: base.requests}
	c := a.life(countersOf(total))
	a.Since = Since{CPUUsec: c.cpu, TxInternet: c.txInternet, TxCluster: c.txCluster, Requests: c.requests}
	return a
}

// cumulative is a's values with the counters c.
func (a *Accrual) cumulative(c counters) Cumulative {
	c = a.life(c)
	return Cumulative{ObservedMs: a.ObservedMs, RSS: a.RSS, PageCache: a.PageCache, WorkingSet: a.WorkingSet,
		CPUUsec: c.cpu, TxInternet: c.txInternet, TxCluster: c.txCluster, Requests: c.requests}
}

// atBoundary is the cumulative values at the boundary before the sample
// time, given the values at it.
func (a *Accrual) atBoundary(c counters) Cumulative {
	c = a.life(c)
	s := &a.Since
	sub := func(v Int128, d uint64) Int128 {
		r, ok := v.Sub(Int128{Lo: d})
		if !ok {
			return Int128{}
		}
		return r
	}
	return Cumulative{ObservedMs: subFloor(a.ObservedMs, s.ObservedMs), RSS: sub(a.RSS, s.RSS),
		PageCache: sub(a.PageCache, s.PageCache), WorkingSet: sub(a.WorkingSet, s.WorkingSet),
		CPUUsec: subFloor(c.cpu, s.CPUUsec), TxInternet: subFloor(c.txInternet, s.TxInternet),
		TxCluster: subFloor(c.txCluster, s.TxCluster), Requests: subFloor(c.requests, s.Requests)}
}

// CumulativeAt returns the series' lifetime values at tms (unix ms): its
// values held from its sample time on when tms is not earlier, or its
// values at the boundary before its sample time when tms is that boundary.
// ok is false for any other earlier time.
func (s *Stored) CumulativeAt(tms int64) (Cumulative, bool) {
	at := Ms(s.Time)
	c := countersOf(&s.Total)
	switch {
	case tms >= at:
		a := s.Accrual.advance(gaugesOf(s), at, tms, NoCap, counters{})
		return a.cumulative(c), true
	case tms == Boundary(at):
		return s.Accrual.atBoundary(c), true
	}
	return s.Accrual.cumulative(c), false
}

// EncodeMsgpack writes an Accrual as one array, trailing zeros left out:
// [born, observed, rss, page cache, working set, since observed, since
// rss, since page cache, since working set, since cpu, since tx internet,
// since tx cluster, base cpu, base tx internet, base tx cluster, since
// requests, base requests]. Values written before requests accrued have
// 15 elements at most, and decode with none.
func (a Accrual) EncodeMsgpack(enc *msgpack.Encoder) error {
	vals := [...]any{a.Born, a.ObservedMs, a.RSS, a.PageCache, a.WorkingSet, a.Since.ObservedMs, a.Since.RSS,
		a.Since.PageCache, a.Since.WorkingSet, a.Since.CPUUsec, a.Since.TxInternet, a.Since.TxCluster,
		a.BaseCPUUsec, a.BaseTxInternet, a.BaseTxCluster, a.Since.Requests, a.BaseRequests}
	n := len(vals)
	for n > 0 && isZero(vals[n-1]) {
		n--
	}
	if err := enc.EncodeArrayLen(n); err != nil {
		return err
	}
	for _, v := range vals[:n] {
		var err error
		switch v := v.(type) {
		case int64:
			err = enc.EncodeInt(v)
		case uint64:
			err = enc.EncodeUint(v)
		case Int128:
			err = v.EncodeMsgpack(enc)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func isZero(v any) bool {
	switch v := v.(type) {
	case int64:
		return v == 0
	case uint64:
		return v == 0
	case Int128:
		return v == Int128{}
	}
	return false
}

// accrualFields is the most elements an encoded Accrual has;
// maxAccrualFields the most a decoder accepts.
const (
	accrualFields    = 17
	maxAccrualFields = 64
)

// DecodeMsgpack reads what EncodeMsgpack wrote; missing trailing elements
// are zero. Elements past the ones it knows (appended by a newer replica,
// during a rolling upgrade) are skipped, up to maxAccrualFields: fields
// are only ever appended, so an older replica reads the ones it knows.
func (a *Accrual) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	*a = Accrual{}
	if n <= 0 {
		return nil
	}
	if n > maxAccrualFields {
		return fmt.Errorf("%w: accruals of %d elements", ErrInvalid, n)
	}
	dst := [...]any{&a.Born, &a.ObservedMs, &a.RSS, &a.PageCache, &a.WorkingSet, &a.Since.ObservedMs, &a.Since.RSS,
		&a.Since.PageCache, &a.Since.WorkingSet, &a.Since.CPUUsec, &a.Since.TxInternet, &a.Since.TxCluster,
		&a.BaseCPUUsec, &a.BaseTxInternet, &a.BaseTxCluster, &a.Since.Requests, &a.BaseRequests}
	for _, d := range dst[:min(n, len(dst))] {
		switch d := d.(type) {
		case *int64:
			*d, err = dec.DecodeInt64()
		case *uint64:
			*d, err = dec.DecodeUint64()
		case *Int128:
			err = d.DecodeMsgpack(dec)
		}
		if err != nil {
			return err
		}
	}
	for range n - min(n, len(dst)) {
		if err := dec.Skip(); err != nil {
			return err
		}
	}
	return nil
}

// NodeAccrual is a node's accruals, kept in its agent record: how long its
// agent has been reporting, across its restarts.
type NodeAccrual struct {
	// Born is the sample time (unix ns) of the record's first frame; the
	// record and its accruals last across the agent's incarnations.
	Born int64
	// IncarnationStart is the sample time of the current incarnation's
	// first frame.
	IncarnationStart int64
	// ObservedMs is the time the node was observed, as of the record's
	// sample time, and SinceMs the part of it since Boundary of that time.
	ObservedMs, SinceMs uint64
}

// EncodeMsgpack writes [born, incarnation start, observed, since].
func (a NodeAccrual) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeArrayLen(4); err != nil {
		return err
	}
	if err := enc.EncodeInt(a.Born); err != nil {
		return err
	}
	if err := enc.EncodeInt(a.IncarnationStart); err != nil {
		return err
	}
	if err := enc.EncodeUint(a.ObservedMs); err != nil {
		return err
	}
	return enc.EncodeUint(a.SinceMs)
}

// DecodeMsgpack reads what EncodeMsgpack wrote.
func (a *NodeAccrual) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	*a = NodeAccrual{}
	if n <= 0 {
		return nil
	}
	if n != 4 {
		return fmt.Errorf("%w: node accruals of %d elements", ErrInvalid, n)
	}
	if a.Born, err = dec.DecodeInt64(); err != nil {
		return err
	}
	if a.IncarnationStart, err = dec.DecodeInt64(); err != nil {
		return err
	}
	if a.ObservedMs, err = dec.DecodeUint64(); err != nil {
		return err
	}
	a.SinceMs, err = dec.DecodeUint64()
	return err
}

// advanceNode returns the node's accruals after a frame at u (unix ns) on
// top of the record prev (nil: none). A frame of a new incarnation adds at
// most the previous incarnation's interval: its last sample held that long.
func advanceNode(prev *Agent, u int64, sameInc bool) NodeAccrual {
	if prev == nil || prev.Accrual.Born == 0 {
		return NodeAccrual{Born: u, IncarnationStart: u}
	}
	a := prev.Accrual
	from, to, holdCap := Ms(prev.Time), Ms(u), NoCap
	if !sameInc {
		holdCap = Ms(prev.Interval)
		a.IncarnationStart = u
	}
	dt := held(from, to, holdCap)
	after := dt
	if Boundary(from) != Boundary(to) {
		a.SinceMs = 0
		after = dt - held(from, Boundary(to), holdCap)
	}
	a.ObservedMs += dt
	a.SinceMs += after
	return a
}

// ObservedAt returns how long the node was observed up to tms: held from
// its sample time on when tms is not earlier (for at most holdCap ms), or
// as of the boundary before its sample time when tms is that boundary; ok
// is false for any other earlier time.
func (a *Agent) ObservedAt(tms, holdCap int64) (uint64, bool) {
	at := Ms(a.Time)
	switch {
	case tms >= at:
		return a.Accrual.ObservedMs + held(at, tms, holdCap), true
	case tms == Boundary(at):
		return subFloor(a.Accrual.ObservedMs, a.Accrual.SinceMs), true
	}
	return a.Accrual.ObservedMs, false
}
