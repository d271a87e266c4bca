package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/pennyhq/penny/internal/histogram"
)

// filler hands out the bytes of a fuzz input as values, zeros once spent.
type filler struct{ b []byte }

func (f *filler) u64() uint64 {
	if len(f.b) == 0 {
		return 0
	}
	// The first byte picks a size, so that small values, zeros and
	// extremes are all common.
	k := f.b[0] % 6
	f.b = f.b[1:]
	switch k {
	case 0:
		return 0
	case 1:
		return math.MaxUint64
	}
	var v [8]byte
	n := copy(v[:], f.b[:min(len(f.b), []int{0, 0, 1, 2, 4, 8}[k])])
	f.b = f.b[n:]
	return binary.LittleEndian.Uint64(v[:])
}

func (f *filler) i64() int64 { return int64(f.u64()) }

func (f *filler) counters() Counters {
	var c Counters
	for _, p := range c.fields() {
		*p = f.u64()
	}
	return c
}

func (f *filler) hist() Hist {
	var h Hist
	h.Count, h.Sum = f.u64(), f.u64()
	for i := range int(f.u64() % 6) {
		h.Buckets[(uint64(i)*7+f.u64())%uint64(len(h.Buckets))] = f.u64()
	}
	return h
}

// optHist is a histogram half of the time and empty (left out of the
// encoding: omitempty) the other half.
func (f *filler) optHist() Hist {
	if f.u64()%2 == 0 {
		return Hist{}
	}
	return f.hist()
}

// optLogHist is a valid log-linear histogram half of the time, and empty
// the other half.
func (f *filler) optLogHist() LogHist {
	if f.u64()%2 == 0 {
		return LogHist{}
	}
	var h LogHist
	h.Count, h.Sum = f.u64(), f.u64()
	i := f.u64() % histogram.LogLinearBuckets
	for range int(f.u64() % 6) {
		if i >= histogram.LogLinearBuckets {
			break
		}
		h.Buckets = append(h.Buckets, histogram.SparseBucket{Index: uint32(i), N: max(f.u64(), 1)})
		i += 1 + f.u64()%40
	}
	return h
}

func (f *filler) stored() *Stored {
	s := &Stored{Ref: f.u64(), Path: strings.Repeat("x", int(f.u64()%300)), CgroupID: f.u64(), Time: f.i64(),
		Interval: f.i64(), Updated: f.i64(), Processes: f.i64(), RSSBytes: f.i64(), PageCache: f.i64(),
		WorkingSet: f.i64(), PressureKnown: f.u64()%2 == 1, Total: f.counters(), SRTT: f.hist(), Connect: f.hist(),
		RequestLatency: f.optHist(), RequestLatencyLogLinear: f.optLogHist(),
		Last: Delta{Counters: f.counters(), SRTT: f.hist(), Connect: f.hist(), RequestLatency: f.optHist(),
			RequestLatencyLogLinear: f.optLogHist()}}
	for range int(f.u64() % 10) {
		s.Marks = append(s.Marks, Mark{Time: f.i64(), Total: f.counters(), SRTT: f.hist(), Connect: f.hist(),
			RequestLatency: f.optHist(), RequestLatencyLogLinear: f.optLogHist()})
	}
	a := &s.Accrual
	a.Born, a.ObservedMs = f.i64(), f.u64()
	a.RSS, a.PageCache, a.WorkingSet = Int128{f.u64(), f.u64()}, Int128{f.u64(), f.u64()}, Int128{f.u64(), f.u64()}
	for _, p := range []*uint64{&a.Since.ObservedMs, &a.Since.RSS, &a.Since.PageCache, &a.Since.WorkingSet,
		&a.Since.CPUUsec, &a.Since.TxInternet, &a.Since.TxCluster, &a.BaseCPUUsec, &a.BaseTxInternet, &a.BaseTxCluster} {
		*p = f.u64()
	}
	return s
}

// compactMarshal is msgpack's reflection with compact integers: what
// Encode writes by hand (Stored has no encoder of its own).
func compactMarshal(s *Stored) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	err := enc.Encode(s)
	return buf.Bytes(), err
}

// checkAsReflection fails unless s encodes to compactMarshal's bytes
// without its marks and path (the key's) and decodes back to the same
// with the path of its key, and its marks to what
// compactMarshal writes of them; and unless its encoding of before, with
// 9-byte integers and its marks in the value, decodes to the same too.
// Every encoding decodes as reflection decodes it
// (checkDecodeAsReflection).
func checkAsReflection(t *testing.T, s *Stored) {
	t.Helper()
	unmarked := *s
	unmarked.Marks, unmarked.Path = nil, ""
	want, err := compactMarshal(&unmarked)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Marks) > 0 {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		if err := enc.Encode(s.Marks); err != nil {
			t.Fatal(err)
		}
		got := EncodeMarks(s.Marks)
		if !bytes.Equal(got, buf.Bytes()) {
			t.Fatalf("marks encoded\n %x\nreflection\n %x", got, buf.Bytes())
		}
		checkDecodeAsReflection(t, got)
		if len(got) <= MaxValue {
			back, err := DecodeMarks(got)
			if err != nil || !reflect.DeepEqual(back, s.Marks) {
				t.Fatalf("marks decoded to %+v, %v", back, err)
			}
		}
	}
	got, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded\n %x\nreflection\n %x", got, want)
	}
	checkDecodeAsReflection(t, got)
	if len(got) > MaxValue {
		return
	}
	back, err := DecodeStored(s.Path, got)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if back.Path != s.Path {
		t.Fatalf("decoded with path %q, want the key's %q", back.Path, s.Path)
	}
	again, _ := back.Encode()
	if !bytes.Equal(again, got) {
		t.Fatalf("decoded and encoded again\n %x\nfirst\n %x", again, got)
	}
	wide, err := msgpack.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	checkDecodeAsReflection(t, wide)
	if len(wide) > MaxValue {
		return
	}
	old, err := DecodeStored(s.Path, wide)
	if err != nil {
		t.Fatalf("decode a value of before: %v", err)
	}
	if !reflect.DeepEqual(old.Marks, s.Marks) || old.marksInValue != (len(s.Marks) > 0) {
		t.Fatalf("a value of before has marks %+v (in value: %v), want %+v", old.Marks, old.marksInValue, s.Marks)
	}
	if fromOld, _ := old.Encode(); !bytes.Equal(fromOld, got) {
		t.Fatalf("a value of before decodes to\n %x\nnot\n %x", fromOld, got)
	}
}

func TestStoredEncodeAsReflection(t *testing.T) {
	full := make([]byte, 4096)
	for i := range full {
		full[i] = byte(i*7 + 3)
	}
	for _, tc := range []struct {
		name string
		s    *Stored
	}{
		{"zero", &Stored{}},
		{"negative times and gauges", &Stored{Time: -1, Interval: -40, Updated: math.MinInt64, RSSBytes: -5,
			Accrual: Accrual{Born: -33}}},
		{"accrual with trailing zeros", &Stored{Accrual: Accrual{ObservedMs: 5, RSS: Int128{Lo: 9}}}},
		{"wide integral", &Stored{Accrual: Accrual{PageCache: Int128{Hi: 1, Lo: 2}, BaseTxCluster: 7}}},
		{"path of 31, 32, 255 and 256 bytes", &Stored{Path: strings.Repeat("p", 31)}},
		{"path of 32", &Stored{Path: strings.Repeat("p", 32)}},
		{"path of 255", &Stored{Path: strings.Repeat("p", 255)}},
		{"path of 256", &Stored{Path: strings.Repeat("p", 256)}},
		{"path of 70000", &Stored{Path: strings.Repeat("p", 70000)}},
		{"every counter", func() *Stored {
			s := &Stored{PressureKnown: true}
			for i, p := range s.Total.fields() {
				*p = uint64(i+1) << (3 * i)
			}
			s.Last.Counters = s.Total
			s.Marks = Marks{{Time: 1, Total: s.Total}, {Time: 2}}
			return s
		}()},
		{"every histogram bucket", func() *Stored {
			s := &Stored{}
			for i := range s.SRTT.Buckets {
				s.SRTT.Buckets[i] = uint64(1) << i
			}
			s.SRTT.Count, s.SRTT.Sum = 1<<40, 1<<63
			return s
		}()},
		{"every log-linear bucket", func() *Stored {
			s := &Stored{}
			h := &s.Last.RequestLatencyLogLinear
			for i := range histogram.LogLinearBuckets {
				h.Buckets = append(h.Buckets, histogram.SparseBucket{Index: uint32(i), N: uint64(1) << (i % 64)})
			}
			h.Count, h.Sum = 1<<40, 1<<63
			s.Marks = Marks{{Time: 1, RequestLatencyLogLinear: *h}}
			return s
		}()},
		{"filled", (&filler{full}).stored()},
	} {
		t.Run(tc.name, func(t *testing.T) { checkAsReflection(t, tc.s) })
	}
}

// TestLogHistDecodeRefuses: a stored log-linear histogram whose buckets
// could not have been written is refused, before a large one allocates.
func TestLogHistDecodeRefuses(t *testing.T) {
	arr := func(vs ...uint64) []byte {
		b := appendArrayLen(nil, len(vs))
		for _, v := range vs {
			b = appendUint(b, v)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"buckets", arr(3, 60_300, 97, 2, 98, 1), true},
		{"no bucket", arr(0, 5), true},
		{"empty", arr(), true},
		{"last bucket", arr(1, 1, histogram.LogLinearBuckets-1, 1), true},
		{"bucket out of range", arr(1, 1, histogram.LogLinearBuckets, 1), false},
		{"out of order", arr(2, 2, 98, 1, 97, 1), false},
		{"twice", arr(2, 2, 97, 1, 97, 1), false},
		{"zero count", arr(0, 0, 97, 0), false},
		{"odd", arr(1, 1, 97), false},
		{"one element", arr(1), false},
		{"more than 240 buckets", appendArrayLen(nil, 2+2*histogram.LogLinearBuckets+2), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h LogHist
			err := msgpack.Unmarshal(tc.b, &h)
			if tc.ok && err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("decoded to %+v, %v; want ErrInvalid", h, err)
			}
		})
	}
}

func FuzzStoredEncode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 1, 3, 200, 5, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1})
	f.Add(bytes.Repeat([]byte{5, 0xff, 1, 2, 3, 4, 5, 6, 7, 3}, 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAsReflection(t, (&filler{data}).stored())
	})
}

// BenchmarkStoredEncode encodes a series value by hand, and its nine marks
// (written every MarkEvery, not with every value), and for reference the
// value with its marks through msgpack's reflection with 9-byte integers
// (what Encode did before the encoder by hand), and reports the sizes.
func BenchmarkStoredEncode(b *testing.B) {
	s := &Stored{Ref: 7, Path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-abcdef.scope",
		CgroupID: 4242, Time: 1e18, Interval: 1e9, Updated: 1e18, Processes: 3, RSSBytes: 1 << 28, PageCache: 1 << 26,
		WorkingSet: 1 << 27, PressureKnown: true, Accrual: Accrual{Born: 1e18, ObservedMs: 1e6, RSS: Int128{Lo: 1 << 50}}}
	c := Counters{PageCacheAddedBytes: 1 << 30, RxBytes: 1 << 33, TxBytes: 1 << 32, RxPackets: 1 << 20, TxPackets: 1 << 20,
		CPUUsageUsec: 1 << 36, CPUPeriods: 1 << 12, CPUPressureSomeUsec: 1 << 20, MemoryPressureSomeUsec: 1 << 10,
		TxClusterBytes: 1 << 31, TxInternetBytes: 1 << 25}
	s.Total, s.Last.Counters = c, c
	s.SRTT.Count, s.SRTT.Sum, s.SRTT.Buckets[10], s.SRTT.Buckets[11] = 9, 9000, 4, 5
	for i := range 9 {
		s.Marks = append(s.Marks, Mark{Time: int64(i), Total: c, SRTT: s.SRTT})
	}
	b.Run("appender", func(b *testing.B) {
		b.ReportAllocs()
		var v []byte
		for b.Loop() {
			v, _ = s.Encode()
		}
		b.ReportMetric(float64(len(v)), "value-bytes")
	})
	b.Run("marks", func(b *testing.B) {
		b.ReportAllocs()
		var v []byte
		for b.Loop() {
			v = EncodeMarks(s.Marks)
		}
		b.ReportMetric(float64(len(v)), "value-bytes")
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		var v []byte
		for b.Loop() {
			v, _ = msgpack.Marshal(s)
		}
		b.ReportMetric(float64(len(v)), "value-bytes")
	})
}
