package probe

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/pennyhq/penny/agent/procfs"
	"github.com/pennyhq/penny/bpf"
	"github.com/pennyhq/penny/internal/histogram"
)

// Indexes of RSS members, as the kernel numbers them (MM_*PAGES).
const (
	MemberFile  = 0
	MemberAnon  = 1
	MemberSwap  = 2
	MemberShmem = 3
)

// MM is the kernel's latest report of one address space's RSS counters.
type MM struct {
	// TGID is the process that last ran with this mm; 0 when no process
	// has run with it since it was created (a fork child not yet scheduled).
	TGID uint32
	// New means the mm was created after the programs were attached, so
	// every counter started at zero and Size is exact. Otherwise a counter
	// whose bit is clear in Mask was not reported yet.
	New  bool
	Mask uint32
	Size [4]int64 // bytes, by Member*
}

// Proc is a process the programs know about.
type Proc struct {
	CgroupID uint64 // cgroup v2 id
	MMID     uint32 // key into Snapshot.MMs; 0 when not reported yet
	Seeded   bool   // inserted from /proc at start
	Exited   bool   // the process exited; forget it
}

// CacheCounters count page cache pages of one memory cgroup since the
// programs were attached.
type CacheCounters struct {
	Added, Removed uint64
}

// AccessCounters count page cache accesses of one cgroup's tasks.
type AccessCounters struct {
	Accesses, Misses uint64
}

// TCPStats are one cgroup's TCP latency histograms (microseconds) and
// retransmit count.
type TCPStats struct {
	SRTT, Connect histogram.Hist
	Retransmits   uint64
}

// NetCounters count one cgroup's IP traffic.
type NetCounters struct {
	RxBytes, TxBytes, RxPackets, TxPackets uint64
	// TxClassBytes splits TxBytes by the destination's class (TxLoopback,
	// TxCluster, TxInternet), as the egress program classifies it.
	TxClassBytes [TxClasses]uint64
}

// RequestStats are the requests one cgroup's server sockets answered and
// how long each waited for the first byte of its response, in
// microseconds (see docs/requests.md). Latency counts the timed requests
// only: Requests - Latency.Count were counted without a start time.
type RequestStats struct {
	Requests uint64
	Latency  histogram.LogLinear
}

// Destination classes of the bytes sent, indexes of
// NetCounters.TxClassBytes: enum tx_class in bpf/penny.h, minus one.
const (
	// TxLoopback: 127.0.0.0/8 and ::1.
	TxLoopback = iota
	// TxCluster: private and link-local addresses (RFC 1918, 100.64/10,
	// 169.254/16, fc00::/7, fe80::/10), the ones a cluster's pods,
	// services and nodes use.
	TxCluster
	// TxInternet: every other address.
	TxInternet
	// TxClasses is the number of classes.
	TxClasses
)

// Snapshot is everything the maps hold at one moment. Counters are
// cumulative since attach (or since the entry was created).
type Snapshot struct {
	Time   time.Time
	Procs  map[uint32]Proc          // by tgid
	MMs    map[uint32]MM            // by mm id
	Cache  map[uint64]CacheCounters // by memory cgroup id
	Access map[uint64]AccessCounters
	TCP    map[uint64]TCPStats    // by cgroup v2 id
	Net    map[uint64]NetCounters // by cgroup v2 id
	// Requests are by cgroup v2 id.
	Requests map[uint64]RequestStats
	// Drops counts events lost because a map was full, by program group,
	// and event log slots lost ("event_log_lost").
	Drops map[string]uint64
	// Overflow counts events that found the event log full and were counted
	// in the per-cgroup maps instead (nothing lost, but slower).
	Overflow map[string]uint64
	// LogFullDrops counts events lost because the event log was full and
	// they have no slow path (the records connect latency is paired from),
	// by program group.
	LogFullDrops map[string]uint64
}

// Snapshot drains the event log and reads every map.
func (p *Probes) Snapshot() (*Snapshot, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	s := &Snapshot{Time: time.Now()}
	var err error
	// Processes first: the log charges page cache accesses to processes,
	// and they to their cgroups.
	if s.Procs, err = readMap[uint32](p.mem.Procs, func(e bpf.MemoryProcEntry) Proc {
		return Proc{CgroupID: e.Cgid, MMID: e.MmId, Seeded: e.Flags&procSeeded != 0, Exited: e.Flags&procExited != 0}
	}); err != nil {
		return nil, fmt.Errorf("read processes: %w", err)
	}
	exits := p.log.drain(func(tgid uint32) uint64 { return p.cgroupOf(s.Procs, tgid) })
	if s.Cache, err = readMap[uint64](p.pc.CacheByMemcg, func(x bpf.PagecacheCacheCounters) CacheCounters {
		return CacheCounters{Added: x.Added, Removed: x.Removed}
	}); err != nil {
		return nil, fmt.Errorf("read page cache counters: %w", err)
	}
	if s.Access, err = readMap[uint64](p.pc.AccessByCgroup, func(x bpf.PagecacheAccessCounters) AccessCounters {
		return AccessCounters{Accesses: x.Accesses, Misses: x.Misses}
	}); err != nil {
		return nil, fmt.Errorf("read page cache accesses: %w", err)
	}
	if s.TCP, err = readMap[uint64](p.net.TcpByCgroup, func(x bpf.NetTcpStats) TCPStats {
		t := TCPStats{Retransmits: x.Retransmits}
		addHist(&t.SRTT, &x.Srtt)
		addHist(&t.Connect, &x.Connect)
		return t
	}); err != nil {
		return nil, fmt.Errorf("read TCP stats: %w", err)
	}
	if s.Net, err = readMap[uint64](p.net.NetByCgroup, func(x bpf.NetNetCounters) NetCounters {
		n := NetCounters{RxBytes: x.RxBytes, TxBytes: x.TxBytes, RxPackets: x.RxPackets, TxPackets: x.TxPackets}
		copy(n.TxClassBytes[:], x.TxClassBytes[:])
		return n
	}); err != nil {
		return nil, fmt.Errorf("read network counters: %w", err)
	}
	s.Requests = map[uint64]RequestStats{}
	if p.Requests {
		if s.Requests, err = readMap[uint64](p.req.ReqByCgroup, func(v bpf.RequestsReqStats) RequestStats {
			return RequestStats{Requests: v.Requests, Latency: logLinear(&v.Latency.Buckets, v.Latency.Count, v.Latency.Sum)}
		}); err != nil {
			return nil, fmt.Errorf("read request counters: %w", err)
		}
	}
	if s.MMs, err = readMap[uint32](p.mem.RssByMm, func(e bpf.MemoryRssEntry) MM {
		return MM{TGID: e.Tgid, New: e.Flags&1 != 0, Mask: e.Mask, Size: e.Size}
	}); err != nil {
		return nil, fmt.Errorf("read RSS: %w", err)
	}
	for _, tgid := range exits {
		if pr, ok := s.Procs[tgid]; ok {
			pr.Exited = true
			s.Procs[tgid] = pr
		}
	}
	s.Drops, s.Overflow, s.LogFullDrops = map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	drops := map[string]*ebpf.Map{"memory": p.mem.MemoryDrops, "pagecache": p.pc.PagecacheDrops, "net": p.net.NetDrops}
	if p.Requests {
		drops["requests"] = p.req.ReqDrops
	}
	for name, m := range drops {
		for reason, out := range s.dropCounters() {
			var v []uint64
			if err := m.Lookup(reason, &v); err != nil {
				return nil, fmt.Errorf("read drops: %w", err)
			}
			for _, x := range v {
				out[name] += x
			}
		}
	}
	p.log.merge(s)
	return s, nil
}

// cgroupOf returns the cgroup v2 id of a process: from the snapshot, else
// from the map (a process seen for the first time since), else the root.
func (p *Probes) cgroupOf(procs map[uint32]Proc, tgid uint32) uint64 {
	if pr, ok := procs[tgid]; ok {
		return pr.CgroupID
	}
	var e bpf.MemoryProcEntry
	if err := p.mem.Procs.Lookup(tgid, &e); err == nil {
		procs[tgid] = Proc{CgroupID: e.Cgid, MMID: e.MmId, Seeded: e.Flags&procSeeded != 0, Exited: e.Flags&procExited != 0}
		return e.Cgid
	}
	return rootCgroup
}

// rootCgroup is the id of the root of a cgroup v2 hierarchy.
const rootCgroup = 1

// Indexes of the drops arrays, as enum drop_reason in bpf/penny.h.
const (
	dropMapFull     = 0
	dropLogFull     = 1
	dropLogFullLost = 2
)

// dropCounters maps each index of the programs' drops arrays to the
// snapshot's counters for it.
func (s *Snapshot) dropCounters() map[uint32]map[string]uint64 {
	return map[uint32]map[string]uint64{dropMapFull: s.Drops, dropLogFull: s.Overflow, dropLogFullLost: s.LogFullDrops}
}

// logLinear returns the sparse histogram of a kernel's struct loglin_hist.
func logLinear(buckets *[histogram.LogLinearBuckets]uint64, count, sum uint64) histogram.LogLinear {
	h := histogram.LogLinear{Count: count, Sum: sum}
	for i, n := range buckets {
		if n != 0 {
			h.Buckets = append(h.Buckets, histogram.SparseBucket{Index: uint32(i), N: n})
		}
	}
	return h
}

func addHist(dst *histogram.Hist, src *bpf.NetHist) {
	for i := range dst.Buckets {
		dst.Buckets[i] += src.Buckets[i]
	}
	dst.Count += src.Count
	dst.Sum += src.Sum
}

// batchSize is how many entries one BPF_MAP_LOOKUP_BATCH call returns: a
// sample costs a few syscalls per map rather than two per entry.
const batchSize = 256

func readMap[K comparable, V, T any](m *ebpf.Map, conv func(V) T) (map[K]T, error) {
	out := make(map[K]T)
	keys, vals := make([]K, batchSize), make([]V, batchSize)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			out[keys[i]] = conv(vals[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Flags of proc_entry in memory.bpf.c.
const (
	procSeeded = 1
	procExited = 2
)

// Seed tells the programs about a process that existed before they were
// attached. It does nothing when the programs already know the process.
func (p *Probes) Seed(tgid uint32, cgroupID uint64) error {
	err := p.mem.Procs.Update(tgid, bpf.MemoryProcEntry{Cgid: cgroupID, Flags: procSeeded}, ebpf.UpdateNoExist)
	if err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return fmt.Errorf("seed process %d: %w", tgid, err)
	}
	return nil
}

// ForgetCgroups deletes the counters of cgroup v2 ids that no longer exist.
func (p *Probes) ForgetCgroups(ids []uint64) error {
	p.mu.Lock()
	p.log.forgetCgroups(ids)
	p.mu.Unlock()
	maps := []*ebpf.Map{p.pc.AccessByCgroup, p.net.TcpByCgroup, p.net.NetByCgroup}
	if p.Requests {
		maps = append(maps, p.req.ReqByCgroup)
	}
	return deleteKeys(ids, maps...)
}

// ForgetMemcgs deletes the page cache counters of memory cgroups.
func (p *Probes) ForgetMemcgs(ids []uint64) error {
	p.mu.Lock()
	p.log.forgetMemcgs(ids)
	p.mu.Unlock()
	return deleteKeys(ids, p.pc.CacheByMemcg)
}

// ForgetMMs deletes address spaces no process refers to any more.
func (p *Probes) ForgetMMs(ids []uint32) error {
	return deleteKeys(ids, p.mem.RssByMm)
}

// ForgetProcs deletes processes that exited. An entry whose pid was taken
// by a new process since it was read (no longer marked exited, and present
// in /proc) is kept.
func (p *Probes) ForgetProcs(tgids []uint32) error {
	var gone []uint32
	for _, tgid := range tgids {
		var e bpf.MemoryProcEntry
		err := p.mem.Procs.Lookup(tgid, &e)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("look up process %d: %w", tgid, err)
		}
		if e.Flags&procExited != 0 || !procfs.Alive("/proc", tgid) {
			gone = append(gone, tgid)
		}
	}
	return deleteKeys(gone, p.mem.Procs)
}

func deleteKeys[K any](keys []K, maps ...*ebpf.Map) error {
	for _, m := range maps {
		for _, k := range keys {
			if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("delete from %s: %w", m.String(), err)
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	return keys
}
