package model

import (
	"encoding/binary"

	"github.com/pennyhq/penny/internal/histogram"
)

// A series value is written at every frame of its agent, with its
// counters twice (Total and Last; its checkpoints have a key of their own,
// MarksKey): through msgpack's reflection, with its omitempty checks field
// by field, encoding was the largest part of a replica's CPU under ingest
// load, and its 9-byte integers made every Raft entry and WAL record
// larger than it needs to be. appendStored writes by hand what msgpack
// writes with compact integers (Encoder.UseCompactInts), Marks and Path
// left out (the key has the path).
// msgpack decodes an integer of any width into any integer field, so
// values written before (9-byte integers, marks included) read the same.
// TestStoredEncodeAsReflection and FuzzStoredEncode check both, to the
// byte; appendMarks writes a MarksKey's value the same way. Decoding is by
// hand too (decode.go): DecodeStored and DecodeMarks read the bytes with a
// cursor, accepting and refusing what mpcheck and msgpack's reflection did,
// 4 to 5 times faster (BenchmarkStoredDecode).
//
// The layout is msgpack's for these types: struct fields as a map keyed
// by tag in field order, omitempty fields left out when zero, Hist,
// Accrual and Int128 by their own encoders.

// storedHint is the capacity a series value starts with: more than one
// takes (about 350 bytes), so that it is allocated once.
const storedHint = 512

func appendStored(b []byte, s *Stored) []byte {
	n := 10 // r i t d u c s n l ac, and the fields set of those below
	for _, set := range []bool{s.Processes != 0, s.RSSBytes != 0, s.PageCache != 0, s.WorkingSet != 0,
		s.PressureKnown, !s.RequestLatency.IsZero(), !s.RequestLatencyLogLinear.IsZero()} {
		if set {
			n++
		}
	}
	b = appendMapLen(b, n)
	b = appendUint(appendStr(b, "r"), s.Ref)
	b = appendUint(appendStr(b, "i"), s.CgroupID)
	b = appendInt(appendStr(b, "t"), s.Time)
	b = appendInt(appendStr(b, "d"), s.Interval)
	b = appendInt(appendStr(b, "u"), s.Updated)
	if s.Processes != 0 {
		b = appendInt(appendStr(b, "np"), s.Processes)
	}
	if s.RSSBytes != 0 {
		b = appendInt(appendStr(b, "rss"), s.RSSBytes)
	}
	if s.PageCache != 0 {
		b = appendInt(appendStr(b, "pc"), s.PageCache)
	}
	if s.WorkingSet != 0 {
		b = appendInt(appendStr(b, "ws"), s.WorkingSet)
	}
	if s.PressureKnown {
		b = append(appendStr(b, "pk"), 0xc3)
	}
	b = appendCounters(appendStr(b, "c"), &s.Total)
	b = appendHist(appendStr(b, "s"), &s.SRTT)
	b = appendHist(appendStr(b, "n"), &s.Connect)
	b = appendOptHist(b, "q", &s.RequestLatency)
	b = appendOptLogHist(b, "ql", &s.RequestLatencyLogLinear)
	b = appendStr(b, "l")
	b = appendMapLen(b, 3+count(!s.Last.RequestLatency.IsZero())+count(!s.Last.RequestLatencyLogLinear.IsZero()))
	b = appendCounters(appendStr(b, "c"), &s.Last.Counters)
	b = appendHist(appendStr(b, "s"), &s.Last.SRTT)
	b = appendHist(appendStr(b, "n"), &s.Last.Connect)
	b = appendOptHist(b, "q", &s.Last.RequestLatency)
	b = appendOptLogHist(b, "ql", &s.Last.RequestLatencyLogLinear)
	return appendAccrual(appendStr(b, "ac"), &s.Accrual)
}

// markHint is about what one checkpoint takes.
const markHint = 128

// appendMarks writes checkpoints as msgpack's reflection writes Marks.
func appendMarks(b []byte, ms Marks) []byte {
	b = appendArrayLen(b, len(ms))
	for i := range ms {
		b = appendMark(b, &ms[i])
	}
	return b
}

// appendMark writes one checkpoint of appendMarks: a map whose first key
// is its time (spliceMarks reads it there).
func appendMark(b []byte, m *Mark) []byte {
	b = appendMapLen(b, 4+count(!m.RequestLatency.IsZero())+count(!m.RequestLatencyLogLinear.IsZero()))
	b = appendInt(appendStr(b, "t"), m.Time)
	b = appendCounters(appendStr(b, "c"), &m.Total)
	b = appendHist(appendStr(b, "s"), &m.SRTT)
	b = appendHist(appendStr(b, "n"), &m.Connect)
	b = appendOptHist(b, "q", &m.RequestLatency)
	return appendOptLogHist(b, "ql", &m.RequestLatencyLogLinear)
}

// counterTags are Counters' msgpack tags, in the order of fields().
var counterTags = [20]string{"pa", "pe", "ca", "cm", "rt", "rb", "tb", "rp", "tp",
	"cu", "cp", "ctp", "ct", "pcs", "pms", "pis", "tl", "tc", "ti", "rq"}

func appendCounters(b []byte, c *Counters) []byte {
	fs := c.fields()
	n := 0
	for _, f := range fs {
		if *f != 0 {
			n++
		}
	}
	b = appendMapLen(b, n)
	for i, f := range fs {
		if *f != 0 {
			b = appendUint(appendStr(b, counterTags[i]), *f)
		}
	}
	return b
}

// appendOptHist writes an omitempty histogram field: key and histogram,
// or nothing when it is empty.
func appendOptHist(b []byte, key string, h *Hist) []byte {
	if h.IsZero() {
		return b
	}
	return appendHist(appendStr(b, key), h)
}

func count(set bool) int {
	if set {
		return 1
	}
	return 0
}

// IsZero reports that h holds nothing; msgpack leaves an omitempty Hist
// field out when it does.
func (h Hist) IsZero() bool { return h.Hist == histogram.Hist{} }

// appendHist writes what Hist.EncodeMsgpack does.
func appendHist(b []byte, h *Hist) []byte {
	n := 2
	for _, v := range h.Buckets {
		if v != 0 {
			n += 2
		}
	}
	b = appendArrayLen(b, n)
	b = appendUint(appendUint(b, h.Count), h.Sum)
	for i, v := range h.Buckets {
		if v != 0 {
			b = appendUint(appendUint(b, uint64(i)), v)
		}
	}
	return b
}

// appendOptLogHist writes an omitempty log-linear histogram field, as
// LogHist.EncodeMsgpack does, or nothing when it is empty.
func appendOptLogHist(b []byte, key string, h *LogHist) []byte {
	if h.IsZero() {
		return b
	}
	b = appendArrayLen(appendStr(b, key), 2+2*len(h.Buckets))
	b = appendUint(appendUint(b, h.Count), h.Sum)
	for _, x := range h.Buckets {
		b = appendUint(appendUint(b, uint64(x.Index)), x.N)
	}
	return b
}

// appendAccrual writes what Accrual.EncodeMsgpack does: born, observed,
// the three integrals, then since and base, trailing zeros left out.
func appendAccrual(b []byte, a *Accrual) []byte {
	wide := [...]Int128{a.RSS, a.PageCache, a.WorkingSet}
	narrow := [...]uint64{a.Since.ObservedMs, a.Since.RSS, a.Since.PageCache, a.Since.WorkingSet, a.Since.CPUUsec,
		a.Since.TxInternet, a.Since.TxCluster, a.BaseCPUUsec, a.BaseTxInternet, a.BaseTxCluster, a.Since.Requests,
		a.BaseRequests}
	zero := func(i int) bool {
		switch {
		case i == 0:
			return a.Born == 0
		case i == 1:
			return a.ObservedMs == 0
		case i < 5:
			return wide[i-2] == Int128{}
		}
		return narrow[i-5] == 0
	}
	n := accrualFields
	for n > 0 && zero(n-1) {
		n--
	}
	b = appendArrayLen(b, n)
	for i := range n {
		switch {
		case i == 0:
			b = appendInt(b, a.Born)
		case i == 1:
			b = appendUint(b, a.ObservedMs)
		case i < 5:
			b = appendInt128(b, wide[i-2])
		default:
			b = appendUint(b, narrow[i-5])
		}
	}
	return b
}

// appendInt128 writes what Int128.EncodeMsgpack does.
func appendInt128(b []byte, a Int128) []byte {
	if a.Hi == 0 {
		return appendUint(b, a.Lo)
	}
	return appendUint(appendUint(appendArrayLen(b, 2), a.Hi), a.Lo)
}

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 256:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// appendUint writes v in as few bytes as msgpack's EncodeUint does.
func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, 0xcc, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

// appendInt writes v as msgpack's EncodeInt does.
func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= -128:
		return append(b, 0xd0, byte(v))
	case v >= -32768:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= -2147483648:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}
