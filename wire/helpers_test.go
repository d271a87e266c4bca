package wire

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
)

const testAgent = "node-a.example"

func newTestEncoder(t testing.TB, inc uint64, lim Limits) *Encoder {
	t.Helper()
	e, err := NewEncoder(EncoderConfig{AgentID: testAgent, Incarnation: inc, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newTestState(t testing.TB, lim Limits) *State {
	t.Helper()
	s, err := NewState(lim)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustEncode(t testing.TB, e *Encoder, s *Snapshot, keyframe bool) []byte {
	t.Helper()
	b, err := e.Encode(s, keyframe)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

func mustDecode(t testing.TB, b []byte) *Frame {
	t.Helper()
	f, err := Decode(b, Limits{})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return f
}

// requireSnapshot fails unless got equals want once want is sorted by path.
func requireSnapshot(t testing.TB, got, want *Snapshot) {
	t.Helper()
	w := want.Clone()
	w.SortSeries()
	if len(w.Series) == 0 {
		w.Series = nil
	}
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("state differs from the encoder's snapshot:\n%s", snapDiff(got, w))
	}
}

func snapDiff(got, want *Snapshot) string {
	if got == nil || want == nil {
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	if !got.Time.Equal(want.Time) || got.Interval != want.Interval || !reflect.DeepEqual(got.Meta, want.Meta) {
		return fmt.Sprintf("frame: got %v %v %v, want %v %v %v", got.Time, got.Interval, got.Meta,
			want.Time, want.Interval, want.Meta)
	}
	if len(got.Series) != len(want.Series) {
		return fmt.Sprintf("got %d series, want %d", len(got.Series), len(want.Series))
	}
	for i := range got.Series {
		if !reflect.DeepEqual(got.Series[i], want.Series[i]) {
			return fmt.Sprintf("series %d:\n got  %+v\n want %+v", i, got.Series[i], want.Series[i])
		}
	}
	return "equal"
}

// rawFrame builds a frame around a msgpack body given as is, with a valid
// checksum: for bodies an Encoder would never write.
func rawFrame(h Header, body []byte) []byte {
	c := snappy.Encode(nil, body)
	h.BodyLen = len(c)
	b := appendHeader(nil, &h)
	b = append(b, c...)
	return resign(b)
}

// resign recomputes the checksum of a frame that a test altered.
func resign(b []byte) []byte {
	if len(b) >= HeaderSize {
		binary.BigEndian.PutUint32(b[offCRC:], frameChecksum(b))
	}
	return b
}

// allocated returns how many bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// sim evolves a node's snapshot at random: series appear, change, restart
// their counters, get renamed and disappear. It covers the corners the
// encoder has to get right rather than modelling a real node (see
// hack/benchwire for that).
type sim struct {
	rng    *rand.Rand
	snap   Snapshot
	nextID uint64
}

func newSim(seed uint64, n int) *sim {
	s := &sim{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), nextID: 100}
	s.snap = Snapshot{Time: time.Unix(1_700_000_000, 0).UTC(), Interval: time.Second}
	for range n {
		s.add()
	}
	return s
}

func (s *sim) add() {
	id := s.nextID
	s.nextID += 1 + uint64(s.rng.IntN(3))
	ss := SeriesState{Path: "/kubepods.slice/pod" + strconv.FormatUint(id, 10) + ".slice", ID: id}
	if s.rng.IntN(3) == 0 {
		ss.Meta = map[string]string{"pod": "p" + strconv.FormatUint(id, 10), "namespace": "default"}
	}
	s.grow(&ss.Values, true)
	s.snap.Series = append(s.snap.Series, ss)
}

// grow changes v as an interval would.
func (s *sim) grow(v *Values, always bool) {
	r := s.rng
	if always || r.IntN(3) == 0 {
		v.RSSBytes = max(0, v.RSSBytes+int64(r.IntN(1<<20))-1<<19)
		v.Processes = max(0, v.Processes+int64(r.IntN(3))-1)
		v.PageCacheBytes = r.Int64N(1 << 40)
	}
	if always || r.IntN(2) == 0 {
		for _, c := range counterFields {
			if r.IntN(2) == 0 {
				*c.get(v) += uint64(r.Int64N(1 << uint(r.IntN(40))))
			}
		}
		for _, hf := range histFields {
			h := hf.get(v)
			for range r.IntN(5) {
				x := uint64(r.Int64N(1 << uint(r.IntN(34))))
				b := 0
				for y := x; y > 1 && b < HistBuckets-1; y >>= 1 {
					b++
				}
				h.Buckets[b]++
				h.Count++
				h.Sum += x
			}
		}
		for _, hf := range logLinearFields {
			xs := make([]uint64, r.IntN(5))
			for i := range xs {
				xs[i] = uint64(r.Int64N(1 << uint(r.IntN(34))))
			}
			// A new histogram, never the one an Encoder was given.
			*hf.get(v) = logLinearOf(*hf.get(v), xs...)
		}
	}
	if always || r.IntN(4) == 0 { // the gauges added at keys 18 to 32
		v.MemoryWorkingSetBytes = r.Int64N(1 << 36)
		v.PressureKnown = int64(r.IntN(2))
	}
	if r.IntN(50) == 0 { // extremes of the gauges
		v.RSSBytes = []int64{0, 1<<63 - 1}[r.IntN(2)]
	}
}

// logLinearBucket is the log-linear bucket of v (internal/histogram's
// LogLinearBucket, which the wire package does not import).
func logLinearBucket(v uint64) uint32 {
	if v < 8 {
		return uint32(v)
	}
	if v >= 1<<32 {
		return LogLinearBuckets - 1
	}
	m := 63 - bits.LeadingZeros64(v)
	return uint32(m-2)<<3 | uint32(v>>(m-3))&7
}

// logLinearOf returns h with the samples xs added, in new buckets.
func logLinearOf(h LogLinearHist, xs ...uint64) LogLinearHist {
	out := LogLinearHist{Count: h.Count, Sum: h.Sum, Buckets: slices.Clone(h.Buckets)}
	for _, x := range xs {
		out.Count++
		out.Sum += x
		i := logLinearBucket(x)
		j, found := slices.BinarySearchFunc(out.Buckets, i, func(b LogLinearBucket, i uint32) int { return cmp.Compare(b.Index, i) })
		if found {
			out.Buckets[j].N++
		} else {
			out.Buckets = slices.Insert(out.Buckets, j, LogLinearBucket{Index: i, N: 1})
		}
	}
	return out
}

// step advances one interval.
func (s *sim) step() {
	r := s.rng
	s.snap.Time = s.snap.Time.Add(s.snap.Interval)
	for i := range s.snap.Series {
		ss := &s.snap.Series[i]
		s.grow(&ss.Values, false)
		switch r.IntN(60) {
		case 0: // counting restarts
			ss.Values = Values{RSSBytes: ss.RSSBytes}
		case 1:
			ss.Meta = map[string]string{"pod": "q" + strconv.Itoa(r.IntN(100))}
		case 2:
			ss.Meta = nil
		case 3: // renamed
			ss.Path += "-renamed"
		}
	}
	if r.IntN(4) == 0 && len(s.snap.Series) > 0 {
		i := r.IntN(len(s.snap.Series))
		gone := s.snap.Series[i]
		s.snap.Series = append(s.snap.Series[:i], s.snap.Series[i+1:]...)
		if r.IntN(2) == 0 { // recreated: same path, new cgroup id
			gone.ID = s.nextID
			s.nextID++
			gone.Values = Values{}
			s.snap.Series = append(s.snap.Series, gone)
		}
	}
	if r.IntN(4) == 0 {
		s.add()
	}
	if r.IntN(20) == 0 {
		s.snap.Meta = map[string]string{"agent": "v" + strconv.Itoa(r.IntN(5))}
	}
	// Keep the snapshot in an arbitrary order: the encoder must not care.
	r.Shuffle(len(s.snap.Series), func(i, j int) {
		s.snap.Series[i], s.snap.Series[j] = s.snap.Series[j], s.snap.Series[i]
	})
}
