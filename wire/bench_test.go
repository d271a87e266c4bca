package wire

import (
	"strconv"
	"testing"
	"time"
)

// benchNode returns a 100-series snapshot like a busy node's: a handful of
// system services and pods, every one with some history.
func benchNode() *Snapshot {
	s := &Snapshot{Time: t0, Interval: time.Second, Meta: map[string]string{"agent_version": "0.3.0"}}
	for i := range 100 {
		ss := SeriesState{Path: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
			strconv.Itoa(1000+i) + ".slice/cri-containerd-" + strconv.Itoa(0xabcdef+i) + ".scope", ID: uint64(4000 + i),
			Meta: map[string]string{"namespace": "default", "pod": "app-" + strconv.Itoa(i)}}
		ss.Processes = 3
		ss.RSSBytes = int64(100+i) << 20
		ss.PageCacheBytes = int64(20+i) << 20
		ss.PageCacheAddedBytes, ss.PageCacheAccesses = 1<<30, 1<<20
		ss.RxBytes, ss.TxBytes, ss.RxPackets, ss.TxPackets = 1<<32, 1<<31, 1<<22, 1<<21
		for b := 6; b < 14; b++ {
			ss.SRTT.Buckets[b] = uint64(1000 * b)
		}
		ss.SRTT.Count, ss.SRTT.Sum = 80000, 80000*300
		s.Series = append(s.Series, ss)
	}
	return s
}

// advance moves s one interval on: a fifth of the series are active.
func advance(s *Snapshot, i int) {
	s.Time = s.Time.Add(time.Second)
	for j := range s.Series {
		if (j+i)%5 != 0 {
			continue
		}
		v := &s.Series[j].Values
		v.RSSBytes += 4096
		v.RxBytes += 15000
		v.TxBytes += 9000
		v.RxPackets += 12
		v.TxPackets += 10
		v.SRTT.Buckets[8] += 3
		v.SRTT.Count += 3
		v.SRTT.Sum += 900
	}
}

func BenchmarkEncodeKeyframe(b *testing.B) {
	s := benchNode()
	enc := newTestEncoder(b, 1, Limits{})
	for b.Loop() {
		if _, err := enc.Encode(s, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDelta(b *testing.B) {
	s := benchNode()
	enc := newTestEncoder(b, 1, Limits{})
	mustEncode(b, enc, s, true)
	i := 0
	for b.Loop() {
		advance(s, i)
		i++
		if _, err := enc.Encode(s, false); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFrames(b *testing.B) (key, delta []byte) {
	s := benchNode()
	enc := newTestEncoder(b, 1, Limits{})
	key = mustEncode(b, enc, s, true)
	advance(s, 0)
	return key, mustEncode(b, enc, s, false)
}

func BenchmarkDecodeKeyframe(b *testing.B) {
	key, _ := benchFrames(b)
	b.SetBytes(int64(len(key)))
	for b.Loop() {
		if _, err := Decode(key, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDelta(b *testing.B) {
	_, delta := benchFrames(b)
	b.SetBytes(int64(len(delta)))
	for b.Loop() {
		if _, err := Decode(delta, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyKeyframe(b *testing.B) {
	key, _ := benchFrames(b)
	f := mustDecode(b, key)
	st := newTestState(b, Limits{})
	for b.Loop() {
		f.Incarnation++ // each keyframe replaces the previous incarnation's state
		if err := st.Apply(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyDelta applies a cycle of 64 deltas, then the cycle's
// keyframe again under a new incarnation (outside the timer).
func BenchmarkApplyDelta(b *testing.B) {
	s := benchNode()
	enc := newTestEncoder(b, 1, Limits{})
	frames := []*Frame{mustDecode(b, mustEncode(b, enc, s, true))}
	for i := range 64 {
		advance(s, i)
		frames = append(frames, mustDecode(b, mustEncode(b, enc, s, false)))
	}
	st := newTestState(b, Limits{})
	i := len(frames)
	for b.Loop() {
		if i == len(frames) {
			b.StopTimer()
			for _, f := range frames {
				f.Incarnation++
			}
			if err := st.Apply(frames[0]); err != nil {
				b.Fatal(err)
			}
			i = 1
			b.StartTimer()
		}
		if err := st.Apply(frames[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
