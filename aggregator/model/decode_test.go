package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/mpcheck"
)

// storedReflect is a Stored as msgpack's reflection decodes it (its own
// type, so that a decoder method Stored may get is not used): with
// mpcheck.Check before it, what DecodeStored did before decode.go, and
// what decode.go is held to.
type storedReflect Stored

// decodeStoredReflect is DecodeStored through mpcheck and reflection.
func decodeStoredReflect(path string, b []byte) (*Stored, error) {
	if len(b) > MaxValue {
		return nil, fmt.Errorf("%w: series value of %d bytes", ErrInvalid, len(b))
	}
	if err := mpcheck.Check(b); err != nil {
		return nil, fmt.Errorf("%w: series value: %w", ErrInvalid, err)
	}
	var r storedReflect
	if err := msgpack.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: decode series: %w", ErrInvalid, err)
	}
	s := Stored(r)
	s.marksInValue = len(s.Marks) > 0
	s.Path = path
	return &s, nil
}

// decodeMarksReflect is DecodeMarks through mpcheck and reflection
// (Marks.DecodeMsgpack, which decodes each Mark by reflection).
func decodeMarksReflect(b []byte) (Marks, error) {
	if len(b) > MaxValue {
		return nil, fmt.Errorf("%w: checkpoints value of %d bytes", ErrInvalid, len(b))
	}
	if err := mpcheck.Check(b); err != nil {
		return nil, fmt.Errorf("%w: checkpoints value: %w", ErrInvalid, err)
	}
	var m Marks
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: decode checkpoints: %w", ErrInvalid, err)
	}
	return m, nil
}

// checkDecodeAsReflection fails unless DecodeStored and DecodeMarks answer
// as reflection does for b: both refuse it (with ErrInvalid), or both
// decode it to the same. It returns whether the series value decoded.
func checkDecodeAsReflection(t testing.TB, b []byte) bool {
	t.Helper()
	want, werr := decodeStoredReflect("/p", b)
	got, err := DecodeStored("/p", b)
	switch {
	case err != nil && !errors.Is(err, ErrInvalid):
		t.Fatalf("DecodeStored(%x): %v, not ErrInvalid", b, err)
	case (err == nil) != (werr == nil):
		t.Fatalf("DecodeStored(%x): %v; reflection: %v", b, err, werr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("DecodeStored(%x)\n %+v\nreflection\n %+v", b, got, want)
	}
	wantM, werrM := decodeMarksReflect(b)
	gotM, errM := DecodeMarks(b)
	switch {
	case errM != nil && !errors.Is(errM, ErrInvalid):
		t.Fatalf("DecodeMarks(%x): %v, not ErrInvalid", b, errM)
	case (errM == nil) != (werrM == nil):
		t.Fatalf("DecodeMarks(%x): %v; reflection: %v", b, errM, werrM)
	case errM == nil && !reflect.DeepEqual(gotM, wantM):
		t.Fatalf("DecodeMarks(%x)\n %+v\nreflection\n %+v", b, gotM, wantM)
	}
	return err == nil
}

// busyStored is a busy container's value: every counter, latency
// histograms, accruals, and a full window of checkpoints.
func busyStored() *Stored {
	s := &Stored{Ref: 4711, Path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-abcdef.scope",
		CgroupID: 1 << 20, Time: 1_790_000_000_123_456_789, Interval: 1e9, Updated: 1_790_000_000_200_000_000,
		Processes: 12, RSSBytes: 3 << 29, PageCache: 5 << 27, WorkingSet: 7 << 28, PressureKnown: true}
	for i, p := range s.Total.fields() {
		*p = uint64(i+1)*1_234_567_891 + uint64(i)<<33
	}
	for i, p := range s.Last.Counters.fields() {
		*p = uint64(i+1) * 98_765
	}
	hist := func(scale uint64) Hist {
		var h Hist
		for i := 3; i < 12; i++ {
			h.Buckets[i] = scale * uint64(i*i)
			h.Count += h.Buckets[i]
			h.Sum += h.Buckets[i] << i
		}
		return h
	}
	logHist := func(scale uint64) LogHist {
		var h LogHist
		for i := 40; i < 120; i += 3 {
			n := scale * uint64(i%17+1)
			h.Buckets = append(h.Buckets, histogram.SparseBucket{Index: uint32(i), N: n})
			h.Count += n
			h.Sum += n * uint64(histogram.LogLinearLower(i))
		}
		return h
	}
	s.SRTT, s.Connect, s.RequestLatencyLogLinear = hist(1000), hist(300), logHist(5000)
	s.Last.SRTT, s.Last.Connect, s.Last.RequestLatencyLogLinear = hist(3), hist(1), logHist(20)
	for i := range maxMarks + 1 {
		m := Mark{Time: s.Time - int64(maxMarks-i)*int64(MarkEvery), Total: s.Total, SRTT: hist(uint64(900 + i)),
			Connect: hist(uint64(250 + i)), RequestLatencyLogLinear: logHist(uint64(4000 + i))}
		m.Total.RxBytes -= uint64(maxMarks-i) * 1e6
		s.Marks = append(s.Marks, m)
	}
	s.Accrual = Accrual{Born: s.Time - 86_400e9, ObservedMs: 86_400_000, RSS: Mul128(3<<29, 86_400_000),
		PageCache: Mul128(5<<27, 86_400_000), WorkingSet: Int128{Hi: 1, Lo: 12345},
		Since: Since{ObservedMs: 20_000, RSS: 3 << 29 * 20_000, PageCache: 5 << 27 * 20_000, WorkingSet: 7 << 28 * 20_000,
			CPUUsec: 1_000_000, TxInternet: 1 << 20, TxCluster: 1 << 22, Requests: 9000},
		BaseCPUUsec: 77, BaseTxInternet: 88, BaseTxCluster: 99, BaseRequests: 11}
	return s
}

// Seeds for the decoding fuzzer: the bytes of filler values.
var fillerSeeds = [][]byte{
	{},
	{2, 1, 3, 200, 5, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1},
	bytes.Repeat([]byte{5, 0xff, 1, 2, 3, 4, 5, 6, 7, 3}, 60),
	bytes.Repeat([]byte{4, 0x80, 0, 0, 1, 3, 0xfe, 0xff}, 90),
}

// storedEncodings are the encodings of s the decoders meet: the value as
// Encode writes it, as reflection wrote it before (9-byte integers, marks
// in the value), and its marks as EncodeMarks and reflection write them.
func storedEncodings(t testing.TB, s *Stored) [][]byte {
	t.Helper()
	v, _ := s.Encode()
	wide, err := msgpack.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	wideMarks, err := msgpack.Marshal(s.Marks)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{v, wide, EncodeMarks(s.Marks), wideMarks}
}

// TestStoredDecodeAsReflection: the encodings of values the decoders meet,
// values of before included, decode as reflection decodes them.
func TestStoredDecodeAsReflection(t *testing.T) {
	for i, seed := range append(fillerSeeds, bytes.Repeat([]byte{0x21, 0x93, 0x07}, 2000)) {
		for j, b := range storedEncodings(t, (&filler{seed}).stored()) {
			t.Run(fmt.Sprintf("filler %d encoding %d", i, j), func(t *testing.T) { checkDecodeAsReflection(t, b) })
		}
	}
	for j, b := range storedEncodings(t, busyStored()) {
		t.Run(fmt.Sprintf("busy encoding %d", j), func(t *testing.T) {
			if !checkDecodeAsReflection(t, b) && j < 2 {
				t.Fatal("refused")
			}
		})
	}
}

// Builders of msgpack by hand, for the values no encoder writes.
func mp(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b = appendStr(b, p)
		case int:
			b = appendInt(b, int64(p))
		case []byte:
			b = append(b, p...)
		case byte:
			b = append(b, p)
		case float64:
			b = binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(p))
		default:
			panic(fmt.Sprintf("mp: %T", p))
		}
	}
	return b
}

func dict(n int) []byte { return appendMapLen(nil, n) }
func arr(n int) []byte  { return appendArrayLen(nil, n) }

// nested is depth arrays, each holding the next, the last empty.
func nested(depth int) []byte {
	return append(bytes.Repeat(arr(1), depth-1), arr(0)...)
}

// TestStoredDecodeOddButValid: what reflection accepts that no encoder
// writes is accepted too, and decodes to the same.
func TestStoredDecodeOddButValid(t *testing.T) {
	wide := func(code byte, v uint64) []byte {
		return append([]byte{code}, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16),
			byte(v>>8), byte(v))
	}
	storedArray := []any{arr(storedFields), 1, "path", 2, 3, 4, 5, 6, 7, 8, 9, byte(0xc3),
		mp(dict(1), "rb", 5), mp(arr(4), 1, 2, 3, 4), byte(0xc0), byte(0x90), mp(arr(4), 1, 1, 7, 1),
		mp(arr(5), mp(arr(0)), byte(0xc0), byte(0xc0), byte(0xc0), byte(0xc0)),
		mp(arr(1), arr(6), -9, byte(0xc0), byte(0xc0), byte(0xc0), byte(0xc0), byte(0xc0)),
		mp(arr(2), 1, 2)}
	for _, tc := range []struct {
		name string
		b    []byte
		want func(s *Stored) // nil: the decoders agree, whatever it is
	}{
		{"nil", []byte{0xc0}, func(s *Stored) {}},
		{"empty map", []byte{0x80}, func(s *Stored) {}},
		{"empty array", []byte{0x90}, func(s *Stored) {}},
		{"a struct as an array of its fields", mp(storedArray...), func(s *Stored) {
			s.Ref, s.CgroupID, s.Time, s.Interval, s.Updated, s.Processes, s.RSSBytes = 1, 2, 3, 4, 5, 6, 7
			s.PageCache, s.WorkingSet, s.PressureKnown, s.Total.RxBytes = 8, 9, true, 5
			s.SRTT.Count, s.SRTT.Sum, s.SRTT.Buckets[3] = 1, 2, 4
			s.RequestLatencyLogLinear.LogLinear = histogram.LogLinear{Count: 1, Sum: 1,
				Buckets: []histogram.SparseBucket{{Index: 7, N: 1}}}
			s.Marks, s.marksInValue = Marks{{Time: -9}}, true
			s.Accrual.Born, s.Accrual.ObservedMs = 1, 2
		}},
		{"keys as binary and nil", mp(dict(3), []byte{0xc4, 1, 'r'}, 5, byte(0xc0), 7, []byte{0xc5, 0, 2, 'n', 'p'}, 3),
			func(s *Stored) { s.Ref, s.Processes = 5, 3 }},
		{"wide and negative integers", mp(dict(4), "r", wide(0xd3, 1<<63), "i", -1, "t", []byte{0xd0, 0x80},
			"c", mp(dict(1), "tb", []byte{0xd2, 0xff, 0xff, 0xff, 0xfe})), func(s *Stored) {
			s.Ref, s.CgroupID, s.Time, s.Total.TxBytes = 1<<63, math.MaxUint64, -128, math.MaxUint64-1
		}},
		{"nil integers, bool, string, histograms, checkpoints, accruals", mp(dict(8), "r", byte(0xc0), "pk", byte(0xc0),
			"p", byte(0xc0), "s", byte(0xc0), "ql", byte(0xc0), "m", byte(0xc0), "ac", byte(0xc0), "c", byte(0xc0)), nil},
		{"a struct key twice merges", mp(dict(3), "c", mp(dict(1), "pa", 1), "c", mp(dict(1), "pe", 2),
			"l", mp(dict(1), "c", mp(dict(1), "rq", 3))), func(s *Stored) {
			s.Total.PageCacheAddedBytes, s.Total.PageCacheEvictedBytes, s.Last.Counters.Requests = 1, 2, 3
		}},
		{"a histogram key twice replaces", mp(dict(2), "s", mp(arr(4), 1, 2, 3, 4), "s", mp(arr(2), 5, 6)),
			func(s *Stored) { s.SRTT.Count, s.SRTT.Sum = 5, 6 }},
		{"histogram of nils, bucket twice", mp(dict(1), "n", mp(arr(6), byte(0xc0), byte(0xc0), 1, 1, 1, 2)),
			func(s *Stored) { s.Connect.Buckets[1] = 2 }},
		{"unknown keys of every kind", mp(dict(9), "zz", wide(0xcb, 0), "y", []byte{0xca, 0, 0, 0, 0},
			"x", []byte{0xd4, 1, 2}, "w", []byte{0xc7, 2, 5, 1, 2}, "v", mp(dict(1), 1, mp(arr(1), "s")),
			"u", 3, "kube", []byte{0xc4, 0}, "-", 1, "l", mp(dict(1), "zz", nested(30))), func(s *Stored) { s.Updated = 3 }},
		{"unknown key 31 deep", mp(dict(1), "z", nested(31)), func(s *Stored) {}},
		{"128-bit integers, accruals appended", mp(dict(1), "ac", mp(arr(20), -5, 6, mp(arr(2), 1, 2),
			byte(0xc0), 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, mp(dict(1), "x", 1), "new", 1.5e3)), nil},
		{"checkpoints as arrays and nil", mp(dict(1), "m", mp(arr(3), byte(0xc0), byte(0x90),
			mp(arr(6), 1, mp(arr(20), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20),
				byte(0xc0), byte(0xc0), byte(0xc0), byte(0xc0)))), nil},
		{"empty checkpoints", mp(dict(1), "m", arr(0)), func(s *Stored) {}},
		{"16-bit map and array lengths", mp([]byte{0xde, 0, 2}, "r", 1, "zz", []byte{0xdc, 0, 0}), func(s *Stored) { s.Ref = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !checkDecodeAsReflection(t, tc.b) {
				t.Fatal("refused")
			}
			if tc.want == nil {
				return
			}
			got, _ := DecodeStored("/p", tc.b)
			want := &Stored{Path: "/p"}
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded to\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}

// TestStoredDecodeRefuses: what reflection (or mpcheck before it) refuses
// is refused, with ErrInvalid, without allocating for lengths the input
// cannot hold.
func TestStoredDecodeRefuses(t *testing.T) {
	huge := func(code byte) []byte { return []byte{code, 0x80, 0, 0, 0} } // 2^31
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"too large", append(mp(dict(1), "p", []byte{0xc6, 0, 1, 0, 0}), make([]byte, MaxValue)...)},
		{"trailing byte", []byte{0x80, 0x00}},
		{"unknown code", []byte{0xc1}},
		{"unknown code skipped", mp(dict(1), "z", byte(0xc1))},
		{"unknown key 32 deep", mp(dict(1), "z", nested(32))},
		{"unknown key 32 deep in a checkpoint", mp(dict(1), "m", mp(arr(1), dict(1), "z", nested(30)))},
		{"map of 2^31", huge(0xdf)},
		{"array of 2^31", huge(0xdd)},
		{"key of 2^31", mp(dict(1), huge(0xdb))},
		{"path of 2^31", mp(dict(1), "p", huge(0xdb))},
		{"2^31 checkpoints", mp(dict(1), "m", huge(0xdd))},
		{"histogram of 2^31", mp(dict(1), "s", huge(0xdd))},
		{"log-linear histogram of 2^31", mp(dict(1), "ql", huge(0xdd))},
		{"accruals of 2^31", mp(dict(1), "ac", huge(0xdd))},
		{"counters of 2^31", mp(dict(1), "c", huge(0xdf))},
		{"unknown array of 2^31", mp(dict(1), "z", huge(0xdd))},
		{"unknown map of 2^31", mp(dict(1), "z", huge(0xdf))},
		{"unknown binary of 2^31", mp(dict(1), "z", huge(0xc6))},
		{"unknown ext of 2^31", mp(dict(1), "z", huge(0xc9), byte(1))},
		{"float for an integer", mp(dict(1), "r", []byte{0xca, 0x3f, 0x80, 0, 0})},
		{"string for an integer", mp(dict(1), "t", "1")},
		{"bool for an integer", mp(dict(1), "c", mp(dict(1), "pa", byte(0xc3)))},
		{"integer for a bool", mp(dict(1), "pk", 1)},
		{"integer for a string", mp(dict(1), "p", 1)},
		{"integer key", mp(dict(1), 1, 1)},
		{"ext for a struct", mp(dict(1), "l", []byte{0xd4, 1, 1})},
		{"struct as an array of too few", mp(dict(1), "c", mp(arr(1), 1))},
		{"map for a histogram", mp(dict(1), "s", dict(0))},
		{"histogram of 1", mp(dict(1), "s", mp(arr(1), 1))},
		{"histogram of 3", mp(dict(1), "n", mp(arr(3), 1, 1, 1))},
		{"histogram bucket 32", mp(dict(1), "q", mp(arr(4), 1, 1, 32, 1))},
		{"histogram of 68", mp(dict(1), "s", []byte{0xdc, 0, 68}, bytes.Repeat([]byte{0}, 68))},
		{"log-linear buckets out of order", mp(dict(1), "ql", mp(arr(6), 2, 2, 9, 1, 8, 1))},
		{"empty log-linear bucket", mp(dict(1), "ql", mp(arr(4), 2, 2, 9, 0))},
		{"log-linear bucket 240", mp(dict(1), "ql", mp(arr(4), 2, 2, 240, 1))},
		{"10 checkpoints", mp(dict(1), "m", arr(10), bytes.Repeat([]byte{0xc0}, 10))},
		{"accruals of 65", mp(dict(1), "ac", []byte{0xdc, 0, 65}, bytes.Repeat([]byte{0}, 65))},
		{"128-bit integer of 3", mp(dict(1), "ac", mp(arr(3), 1, 1, mp(arr(3), 1, 2, 3)))},
		{"128-bit integer of 0", mp(dict(1), "ac", mp(arr(3), 1, 1, arr(0)))},
		{"128-bit integer as a map", mp(dict(1), "ac", mp(arr(3), 1, 1, dict(0)))},
		{"array for an accrual integer", mp(dict(1), "ac", mp(arr(2), arr(0), 1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if checkDecodeAsReflection(t, tc.b) {
				t.Fatal("accepted")
			}
			if _, err := decodeStoredReflect("/p", tc.b); err == nil {
				t.Fatal("reflection accepted")
			}
			if n := allocated(func() { DecodeStored("/p", tc.b) }); n > 16<<10 {
				t.Fatalf("refusing allocated %d bytes", n)
			}
		})
	}
	// The same of checkpoints on their own.
	for _, b := range [][]byte{huge(0xdd), mp(arr(1), huge(0xdf)), mp(arr(1), dict(1), "s", huge(0xdd))} {
		if _, err := DecodeMarks(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeMarks(%x): %v", b, err)
		}
		if n := allocated(func() { DecodeMarks(b) }); n > 16<<10 {
			t.Errorf("DecodeMarks(%x) allocated %d bytes", b, n)
		}
	}
}

// allocated is the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestStoredDecodeTruncated: every proper prefix of a value, of before or
// now, and of checkpoints is refused.
func TestStoredDecodeTruncated(t *testing.T) {
	for i, b := range storedEncodings(t, busyStored()) {
		for n := range len(b) {
			if _, err := DecodeStored("/p", b[:n]); !errors.Is(err, ErrInvalid) {
				t.Fatalf("encoding %d cut to %d of %d bytes: %v", i, n, len(b), err)
			}
			if _, err := DecodeMarks(b[:n]); !errors.Is(err, ErrInvalid) {
				t.Fatalf("encoding %d cut to %d of %d bytes decoded as checkpoints: %v", i, n, len(b), err)
			}
		}
	}
}

func FuzzStoredDecode(f *testing.F) {
	for _, seed := range fillerSeeds {
		for _, b := range storedEncodings(f, (&filler{seed}).stored()) {
			f.Add(b)
		}
	}
	for _, b := range storedEncodings(f, busyStored()) {
		f.Add(b)
	}
	f.Add(mp(dict(2), "m", mp(arr(1), arr(6), 1, byte(0xc0), byte(0xc0), byte(0xc0), byte(0xc0), byte(0xc0)),
		"ac", mp(arr(3), 1, 2, mp(arr(2), 1, 2))))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeAsReflection(t, b)
	})
}

// BenchmarkStoredDecode decodes a busy container's value, and its
// checkpoints, through reflection (what DecodeStored and DecodeMarks did
// before decode.go, mpcheck.Check included) and from the bytes.
func BenchmarkStoredDecode(b *testing.B) {
	s := busyStored()
	value, _ := s.Encode()
	marks := EncodeMarks(s.Marks)
	for _, bc := range []struct {
		name string
		b    []byte
		dec  func([]byte) error
	}{
		{"reflection", value, func(b []byte) error { _, err := decodeStoredReflect("/p", b); return err }},
		{"bytes", value, func(b []byte) error { _, err := DecodeStored("/p", b); return err }},
		{"marks/reflection", marks, func(b []byte) error { _, err := decodeMarksReflect(b); return err }},
		{"marks/bytes", marks, func(b []byte) error { _, err := DecodeMarks(b); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.b)))
			for b.Loop() {
				if err := bc.dec(bc.b); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
