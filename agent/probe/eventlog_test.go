package probe

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/pennyhq/penny/internal/histogram"
)

type hist = histogram.Hist

// fakeLog is an event log in plain memory, written the way the eBPF
// programs write it (bpf/penny.h): reserve, fill, commit the generation.
type fakeLog struct {
	t *testing.T
	l *eventLog
}

func newFakeLog(t *testing.T, ncpu int) *fakeLog {
	l := &eventLog{
		ncpu: ncpu, shift: evSlotsMinShift, pos: make([]uint64, ncpu), stuckAt: make([]uint64, ncpu), stuck: make([]int, ncpu),
		events: make([]byte, ncpu<<evSlotsMinShift*evSize), cursors: make([]byte, ncpu*cursorSize),
		srtt: map[uint64]*hist{}, connect: map[uint64]*hist{},
		retransmits: map[uint64]uint64{}, net: map[uint64]*NetCounters{},
		access: map[uint64]*AccessCounters{}, cache: map[uint64]*CacheCounters{},
		requests: map[uint64]*RequestStats{},
		starts:   map[uint64]connectStamp{}, ends: map[uint64]connectStamp{},
	}
	return &fakeLog{t: t, l: l}
}

func (f *fakeLog) head(cpu int) uint64 {
	return binary.LittleEndian.Uint64(f.l.cursors[cpu*cursorSize:])
}

func (f *fakeLog) tail(cpu int) uint64 {
	return binary.LittleEndian.Uint64(f.l.cursors[cpu*cursorSize+8:])
}

// reserve takes the next slot of cpu and returns its position.
func (f *fakeLog) reserve(cpu int) uint64 {
	n := f.head(cpu)
	if n-f.tail(cpu) >= 1<<f.l.shift-64 {
		f.t.Fatalf("cpu %d: ring full", cpu)
	}
	binary.LittleEndian.PutUint64(f.l.cursors[cpu*cursorSize:], n+1)
	return n
}

func (f *fakeLog) fill(cpu int, pos uint64, kind uint32, id, val, val2 uint64, commit bool) {
	off := (cpu<<f.l.shift | int(pos&(1<<f.l.shift-1))) * evSize
	e := f.l.events[off:]
	binary.LittleEndian.PutUint64(e, id)
	binary.LittleEndian.PutUint64(e[8:], val)
	binary.LittleEndian.PutUint64(e[16:], val2)
	binary.LittleEndian.PutUint32(e[24:], kind)
	if commit {
		binary.LittleEndian.PutUint32(e[28:], uint32(pos>>f.l.shift)+1)
	}
}

func (f *fakeLog) emit(cpu int, kind uint32, id, val, val2 uint64) {
	f.fill(cpu, f.reserve(cpu), kind, id, val, val2, true)
}

func noProcs(uint32) uint64 { return rootCgroup }

func TestEventLogAggregates(t *testing.T) {
	f := newFakeLog(t, 2)
	f.emit(0, evSRTT, 7, 40, 0)
	f.emit(1, evSRTT, 7, 3000, 0)
	f.emit(0, evRx, 7, 1500, 0)
	f.emit(1, evTx, 8, 100, 1+TxCluster)
	f.emit(0, evTx, 8, 40, 1+TxLoopback)
	f.emit(1, evTx, 8, 7, 1+TxInternet)
	f.emit(0, evTx, 8, 3, 0) // no class: counted in the total only
	f.emit(0, evRetransmit, 8, 1, 0)
	f.emit(1, evAccess, 42, 10, 0)    // process 42, in cgroup 9
	f.emit(0, evCacheAdd, 5, 4, 42)   // a miss of process 42
	f.emit(0, evCacheAdd, 5, 2, 0)    // not a read miss
	f.emit(1, evCacheDelete, 5, 3, 0) // eviction
	f.emit(0, evExit, 1234, 0, 0)
	f.emit(0, evRequest, 7, 20_000_000, 1)   // 20 ms, HTTP/1
	f.emit(1, evRequest, 7, 3_000, 2)        // 3 µs, HTTP/2
	f.emit(1, evRequest, 7, 0, 1|reqUntimed) // counted, not timed
	exits := f.l.drain(func(tgid uint32) uint64 {
		if tgid == 42 {
			return 9
		}
		return rootCgroup
	})
	if len(exits) != 1 || exits[0] != 1234 {
		t.Errorf("exits = %v", exits)
	}
	s := &Snapshot{TCP: map[uint64]TCPStats{}, Net: map[uint64]NetCounters{}, Access: map[uint64]AccessCounters{},
		Cache: map[uint64]CacheCounters{7: {Added: 100}}, Drops: map[string]uint64{},
		Requests: map[uint64]RequestStats{7: {Requests: 5}}}
	f.l.merge(s)
	if r := s.Requests[7]; r.Requests != 8 || r.Latency.Count != 2 || r.Latency.Sum != 20_003 ||
		!slices.Equal(r.Latency.Buckets, []histogram.SparseBucket{{Index: 3, N: 1}, {Index: uint32(histogram.LogLinearBucket(20_000)), N: 1}}) {
		t.Errorf("requests of 7 = %+v, want 5 from the overflow map and 3 logged, 2 of them timed", r)
	}
	if tc := s.TCP[7]; tc.SRTT.Count != 2 || tc.SRTT.Sum != 3040 {
		t.Errorf("srtt of 7 = %+v", tc.SRTT)
	}
	if s.TCP[8].Retransmits != 1 || s.Net[7].RxBytes != 1500 || s.Net[7].RxPackets != 1 || s.Net[8].TxBytes != 150 {
		t.Errorf("tcp %+v net %+v", s.TCP, s.Net)
	}
	if got, want := s.Net[8].TxClassBytes, [TxClasses]uint64{TxLoopback: 40, TxCluster: 100, TxInternet: 7}; got != want {
		t.Errorf("tx bytes by class %v, want %v", got, want)
	}
	if a := s.Access[9]; a.Accesses != 10 || a.Misses != 4 {
		t.Errorf("access of cgroup 9 = %+v", a)
	}
	if c := s.Cache[5]; c.Added != 6 || c.Removed != 3 {
		t.Errorf("cache of 5 = %+v", c)
	}
	if c := s.Cache[7]; c.Added != 100 {
		t.Errorf("overflow map counts lost in merge: %+v", c)
	}
	if f.tail(0) != f.head(0) || f.tail(1) != f.head(1) {
		t.Errorf("tails %d %d, heads %d %d", f.tail(0), f.tail(1), f.head(0), f.head(1))
	}
}

func TestEventLogWrapsAround(t *testing.T) {
	f := newFakeLog(t, 1)
	total := uint64(0)
	for round := range 5 { // five times around the ring
		for range 1 << f.l.shift / 2 {
			f.emit(0, evRx, 1, 1, 0)
			total++
		}
		f.l.drain(noProcs)
		if got := f.l.net[1].RxPackets; got != total {
			t.Fatalf("round %d: %d packets, want %d", round, got, total)
		}
	}
}

func TestEventLogWaitsForUncommittedSlots(t *testing.T) {
	f := newFakeLog(t, 1)
	f.emit(0, evRx, 1, 1, 0)
	inflight := f.reserve(0) // a writer interrupted between reserve and commit
	f.emit(0, evRx, 1, 1, 0)

	f.l.drain(noProcs)
	if got := f.l.net[1].RxPackets; got != 1 {
		t.Fatalf("read past an uncommitted slot: %d packets", got)
	}
	if f.tail(0) != inflight {
		t.Fatalf("tail %d, want %d (the uncommitted slot)", f.tail(0), inflight)
	}
	f.fill(0, inflight, evRx, 1, 1, 0, true) // the writer finishes
	f.l.drain(noProcs)
	if got := f.l.net[1].RxPackets; got != 3 || f.l.lost != 0 {
		t.Fatalf("after commit: %d packets, %d lost", got, f.l.lost)
	}

	// A slot never committed is skipped after stuckReads drains.
	f.reserve(0)
	f.emit(0, evRx, 1, 1, 0)
	for range stuckReads {
		f.l.drain(noProcs)
	}
	if got := f.l.net[1].RxPackets; got != 4 || f.l.lost != 1 {
		t.Fatalf("after a hole: %d packets, %d lost; want 4, 1", got, f.l.lost)
	}
}

func TestConnectPairing(t *testing.T) {
	const sk, cg = 0xffff0001, 77
	tests := []struct {
		name   string
		events [][4]uint64 // cpu, kind, ns, value
		want   []uint64    // connect latencies, µs
	}{
		{name: "same cpu", events: [][4]uint64{{0, evConnectStart, 1_000_000, cg}, {0, evConnectEnd, 1_050_000, 1}}, want: []uint64{50}},
		{name: "end logged on another cpu first", events: [][4]uint64{{1, evConnectEnd, 2_000_000, 1}, {0, evConnectStart, 1_000_000, cg}}, want: []uint64{1000}},
		{name: "refused", events: [][4]uint64{{0, evConnectStart, 1_000_000, cg}, {1, evConnectEnd, 1_010_000, 0}}, want: nil},
		{name: "socket reused", events: [][4]uint64{
			{0, evConnectStart, 1_000_000, cg}, {0, evConnectStart, 5_000_000, cg},
			{1, evConnectEnd, 1_020_000, 1}, {1, evConnectEnd, 5_300_000, 1}}, want: []uint64{20, 300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeLog(t, 2)
			for _, e := range tt.events {
				f.emit(int(e[0]), uint32(e[1]), sk, e[2], e[3])
			}
			f.l.drain(noProcs)
			var want hist
			for _, us := range tt.want {
				want.Observe(us)
			}
			got := f.l.connect[cg]
			if got == nil {
				got = &hist{}
			}
			if *got != want {
				t.Fatalf("connect histogram %+v, want %+v", got, want)
			}
			if len(f.l.starts)+len(f.l.ends) != 0 && tt.name != "refused" {
				t.Errorf("unpaired halves left: %v %v", f.l.starts, f.l.ends)
			}
		})
	}
}

func TestConnectHalvesAcrossDrains(t *testing.T) {
	f := newFakeLog(t, 1)
	f.emit(0, evConnectStart, 9, 1_000_000, 5)
	f.l.drain(noProcs)
	f.emit(0, evConnectEnd, 9, 1_400_000, 1)
	f.l.drain(noProcs)
	if h := f.l.connect[5]; h == nil || h.Count != 1 || h.Sum != 400 {
		t.Fatalf("connect = %+v", h)
	}
}
