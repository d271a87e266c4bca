package probe

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/internal/histogram"
)

// The event log's geometry and record kinds, as in bpf/penny.h.
const (
	// evSlotsMaxShift and evSlotsMinShift bound log2 of a CPU's ring
	// slots; evLogBudget is the bytes of the whole log, shared by the CPUs
	// (ringShift).
	evSlotsMaxShift = 14
	evSlotsMinShift = 10
	evLogBudget     = 16 << 20
	evSize          = 32 // struct event
	cursorSize      = 64 // struct event_cursor: head, then tail

	evSRTT         = 1
	evRx           = 2
	evTx           = 3
	evRetransmit   = 4
	evConnectStart = 5
	evConnectEnd   = 6
	evAccess       = 7
	evCacheAdd     = 8
	evCacheDelete  = 9
	evExit         = 10
	evRequest      = 11

	// reqUntimed flags an evRequest record counted without a start time,
	// and its bits from reqCountShift up say how many requests it stands
	// for, 0 meaning one (REQ_UNTIMED, REQ_COUNT_SHIFT in
	// bpf/requests.bpf.c).
	reqUntimed    = 0x100
	reqCountShift = 16
)

// stuckReads is how many reads a slot may stay uncommitted below the head
// before it is skipped as lost. Writers are eBPF programs that commit within
// microseconds, so a slot still empty a few intervals later never will be.
const stuckReads = 3

// connectExpiry bounds how long a connect's first half waits for its
// other half: connects that time out end with a state change too.
const connectExpiry = 10 * 60 * 1e9 // ns

// eventLog reads the per-CPU rings of the event log (bpf/penny.h) from
// memory mapped into the agent, and keeps the cumulative totals of what it
// read, keyed like the overflow maps so the two can be added.
type eventLog struct {
	ncpu            int
	shift           int // log2 of each CPU's slots (ringShift)
	events, cursors []byte

	pos     []uint64 // per CPU: next position to read
	stuckAt []uint64
	stuck   []int
	lost    uint64

	srtt, connect map[uint64]*histogram.Hist
	retransmits   map[uint64]uint64
	net           map[uint64]*NetCounters
	access        map[uint64]*AccessCounters
	cache         map[uint64]*CacheCounters
	requests      map[uint64]*RequestStats
	exits         []uint32

	starts, ends map[uint64]connectStamp // unpaired connect halves, by socket
	newest       uint64

	cgroupOf func(tgid uint32) uint64
}

type connectStamp struct {
	ns, aux uint64
}

// ringShift is log2 of the slots of each CPU's ring for ncpu CPUs: 16,384
// slots (512 KiB) while the log fits evLogBudget (16 MiB, up to 32 CPUs),
// fewer past that, and at least 1,024 (32 KiB) a CPU. A ring that fills
// sends its events to the slow path, which loses none.
func ringShift(ncpu int) int {
	shift := evSlotsMaxShift
	for shift > evSlotsMinShift && ncpu<<shift*evSize > evLogBudget {
		shift--
	}
	return shift
}

func newEventLog(ncpu, shift int, events, cursors *ebpf.Map) (*eventLog, error) {
	l := &eventLog{
		ncpu: ncpu, shift: shift, pos: make([]uint64, ncpu), stuckAt: make([]uint64, ncpu), stuck: make([]int, ncpu),
		srtt: map[uint64]*histogram.Hist{}, connect: map[uint64]*histogram.Hist{},
		retransmits: map[uint64]uint64{}, net: map[uint64]*NetCounters{},
		access: map[uint64]*AccessCounters{}, cache: map[uint64]*CacheCounters{}, requests: map[uint64]*RequestStats{},
		starts: map[uint64]connectStamp{}, ends: map[uint64]connectStamp{},
	}
	var err error
	if l.events, err = mmapMap(events, ncpu<<shift*evSize); err != nil {
		return nil, err
	}
	if l.cursors, err = mmapMap(cursors, ncpu*cursorSize); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func mmapMap(m *ebpf.Map, size int) ([]byte, error) {
	page := unix.Getpagesize()
	size = (size + page - 1) / page * page
	b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map event log %s into memory: %w", m.String(), err)
	}
	return b, nil
}

func (l *eventLog) close() error {
	var errs []error
	for _, b := range [][]byte{l.events, l.cursors} {
		if b != nil {
			errs = append(errs, unix.Munmap(b))
		}
	}
	l.events, l.cursors = nil, nil
	return errors.Join(errs...)
}

func u64At(b []byte, off int) *uint64 { return (*uint64)(unsafe.Pointer(&b[off])) }
func u32At(b []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

type connectEvent struct {
	kind          uint32
	sk, ns, value uint64
}

// drain reads every committed record and adds it to the totals, charging
// records logged by process to cgroupOf(tgid). It returns the pids of
// processes that exited since the last drain.
func (l *eventLog) drain(cgroupOf func(tgid uint32) uint64) []uint32 {
	l.cgroupOf = cgroupOf
	var conns []connectEvent
	for cpu := range l.ncpu {
		head := atomic.LoadUint64(u64At(l.cursors, cpu*cursorSize))
		pos := l.pos[cpu]
		for pos < head {
			off := (cpu<<l.shift | int(pos&(1<<l.shift-1))) * evSize
			if atomic.LoadUint32(u32At(l.events, off+28)) != uint32(pos>>l.shift)+1 {
				// Not committed yet: a writer is in flight, or it
				// never will be.
				if l.stuckAt[cpu] != pos {
					l.stuckAt[cpu], l.stuck[cpu] = pos, 0
				}
				if l.stuck[cpu]++; l.stuck[cpu] < stuckReads {
					break
				}
				l.lost++
				pos++
				continue
			}
			id := *u64At(l.events, off)
			val := *u64At(l.events, off+8)
			val2 := *u64At(l.events, off+16)
			kind := *u32At(l.events, off+24)
			if kind == evConnectStart || kind == evConnectEnd {
				conns = append(conns, connectEvent{kind: kind, sk: id, ns: val, value: val2})
			} else {
				l.apply(kind, id, val, val2)
			}
			pos++
		}
		l.pos[cpu] = pos
		atomic.StoreUint64(u64At(l.cursors, cpu*cursorSize+8), pos)
	}
	l.pairConnects(conns)
	exits := l.exits
	l.exits = nil
	return exits
}

func (l *eventLog) apply(kind uint32, id, val, val2 uint64) {
	switch kind {
	case evSRTT:
		h := l.srtt[id]
		if h == nil {
			h = &histogram.Hist{}
			l.srtt[id] = h
		}
		h.Observe(val)
	case evRx, evTx:
		n := l.net[id]
		if n == nil {
			n = &NetCounters{}
			l.net[id] = n
		}
		if kind == evRx {
			n.RxBytes += val
			n.RxPackets++
		} else {
			n.TxBytes += val
			n.TxPackets++
			// val2 is the destination's class (enum tx_class), from 1.
			if val2 >= 1 && val2 <= TxClasses {
				n.TxClassBytes[val2-1] += val
			}
		}
	case evRetransmit:
		l.retransmits[id] += val
	case evAccess:
		l.accessOf(l.cgroupOf(uint32(id))).Accesses += val
	case evCacheAdd:
		l.cacheOf(id).Added += val
		if val2 != 0 {
			l.accessOf(l.cgroupOf(uint32(val2))).Misses += val
		}
	case evCacheDelete:
		l.cacheOf(id).Removed += val
	case evExit:
		l.exits = append(l.exits, uint32(id))
	case evRequest:
		r := l.requests[id]
		if r == nil {
			r = &RequestStats{}
			l.requests[id] = r
		}
		r.Requests += max(val2>>reqCountShift, 1)
		if val2&reqUntimed == 0 {
			r.Latency.Observe(val / 1000) // ns to µs
		}
	}
}

func (l *eventLog) accessOf(id uint64) *AccessCounters {
	a := l.access[id]
	if a == nil {
		a = &AccessCounters{}
		l.access[id] = a
	}
	return a
}

func (l *eventLog) cacheOf(id uint64) *CacheCounters {
	c := l.cache[id]
	if c == nil {
		c = &CacheCounters{}
		l.cache[id] = c
	}
	return c
}

// pairConnects matches each socket's SYN_SENT record with the record of its
// next state, in time order, whichever CPU logged them and in whichever
// drain they arrived.
func (l *eventLog) pairConnects(evs []connectEvent) {
	slices.SortFunc(evs, func(a, b connectEvent) int {
		switch {
		case a.ns < b.ns:
			return -1
		case a.ns > b.ns:
			return 1
		}
		return int(a.kind) - int(b.kind) // start before end
	})
	for _, e := range evs {
		l.newest = max(l.newest, e.ns)
		if e.kind == evConnectStart {
			if end, ok := l.ends[e.sk]; ok && end.ns >= e.ns {
				delete(l.ends, e.sk)
				l.finishConnect(e.value, e.ns, end)
				continue
			}
			l.starts[e.sk] = connectStamp{ns: e.ns, aux: e.value}
			continue
		}
		start, ok := l.starts[e.sk]
		if !ok || start.ns > e.ns {
			l.ends[e.sk] = connectStamp{ns: e.ns, aux: e.value}
			continue
		}
		delete(l.starts, e.sk)
		l.finishConnect(start.aux, start.ns, connectStamp{ns: e.ns, aux: e.value})
	}
	for sk, s := range l.starts {
		if l.newest-s.ns > connectExpiry {
			delete(l.starts, sk)
		}
	}
	for sk, s := range l.ends {
		if l.newest-s.ns > connectExpiry {
			delete(l.ends, sk)
		}
	}
}

func (l *eventLog) finishConnect(cgid, startNs uint64, end connectStamp) {
	if end.aux != 1 || end.ns < startNs {
		return // failed or refused
	}
	h := l.connect[cgid]
	if h == nil {
		h = &histogram.Hist{}
		l.connect[cgid] = h
	}
	h.Observe((end.ns - startNs) / 1000)
}

// merge adds the log's totals to a snapshot read from the overflow maps.
func (l *eventLog) merge(s *Snapshot) {
	for id, h := range l.srtt {
		t := s.TCP[id]
		t.SRTT.Add(h)
		s.TCP[id] = t
	}
	for id, h := range l.connect {
		t := s.TCP[id]
		t.Connect.Add(h)
		s.TCP[id] = t
	}
	for id, n := range l.retransmits {
		t := s.TCP[id]
		t.Retransmits += n
		s.TCP[id] = t
	}
	for id, n := range l.net {
		c := s.Net[id]
		c.RxBytes += n.RxBytes
		c.TxBytes += n.TxBytes
		c.RxPackets += n.RxPackets
		c.TxPackets += n.TxPackets
		for i := range c.TxClassBytes {
			c.TxClassBytes[i] += n.TxClassBytes[i]
		}
		s.Net[id] = c
	}
	for id, a := range l.access {
		c := s.Access[id]
		c.Accesses += a.Accesses
		c.Misses += a.Misses
		s.Access[id] = c
	}
	for id, c := range l.cache {
		x := s.Cache[id]
		x.Added += c.Added
		x.Removed += c.Removed
		s.Cache[id] = x
	}
	for id, r := range l.requests {
		x := s.Requests[id]
		x.Requests += r.Requests
		x.Latency.Add(&r.Latency)
		s.Requests[id] = x
	}
	s.Drops["event_log_lost"] = l.lost
}

func (l *eventLog) forgetCgroups(ids []uint64) {
	for _, id := range ids {
		delete(l.srtt, id)
		delete(l.connect, id)
		delete(l.retransmits, id)
		delete(l.net, id)
		delete(l.access, id)
		delete(l.requests, id)
	}
}

func (l *eventLog) forgetMemcgs(ids []uint64) {
	for _, id := range ids {
		delete(l.cache, id)
	}
}
