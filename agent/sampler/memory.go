package sampler

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/procfs"
)

// mmGrace is how many samples an address space may go unclaimed by any
// process (a fork child not yet scheduled) before it is forgotten.
const mmGrace = 3

// memory sums the RSS of processes into their cgroups and forgets
// processes and address spaces that are gone.
func (s *Sampler) memory(snap *probe.Snapshot, row func(uint64) *Cgroup) {
	used := make(map[uint32]bool, len(snap.MMs))
	var exited []uint32
	tgids := make([]uint32, 0, len(snap.Procs))
	for tgid, p := range snap.Procs {
		if p.Exited {
			exited = append(exited, tgid)
			s.exitedIn[p.CgroupID] = struct{}{}
			delete(snap.Procs, tgid)
			continue
		}
		tgids = append(tgids, tgid)
	}
	// An mm shared by two processes (vfork) counts once, for the process
	// with the lower pid (the parent), with the /proc seed of whichever of
	// them existed before the agent.
	slices.Sort(tgids)
	seedOf := make(map[uint32]procfs.RSS)
	for _, tgid := range tgids {
		if id := snap.Procs[tgid].MMID; id != 0 {
			if sd, ok := s.seeds[tgid]; ok {
				if _, have := seedOf[id]; !have {
					seedOf[id] = sd
				}
			}
		}
	}
	for _, tgid := range tgids {
		p := snap.Procs[tgid]
		r := row(p.CgroupID)
		r.Processes++
		seed := s.seeds[tgid]
		if p.MMID != 0 {
			if used[p.MMID] {
				continue
			}
			used[p.MMID] = true
			seed = seedOf[p.MMID]
		}
		r.RSSBytes += procRSS(p, snap.MMs, seed)
	}
	for tgid := range s.seeds {
		if _, ok := snap.Procs[tgid]; !ok {
			delete(s.seeds, tgid)
		}
	}
	if len(exited) > 0 {
		if err := s.src.ForgetProcs(exited); err != nil {
			s.log.Warn("forget exited processes", "err", err)
		}
	}

	var forget []uint32
	for id := range snap.MMs {
		if used[id] {
			delete(s.unrefMMs, id)
			continue
		}
		s.unrefMMs[id]++
		if s.unrefMMs[id] >= mmGrace {
			forget = append(forget, id)
			delete(s.unrefMMs, id)
		}
	}
	for id := range s.unrefMMs {
		if _, ok := snap.MMs[id]; !ok {
			delete(s.unrefMMs, id)
		}
	}
	if len(forget) > 0 {
		if err := s.src.ForgetMMs(forget); err != nil {
			s.log.Warn("forget address spaces", "err", err)
		}
	}

	// The programs delete a process when it exits; as a backstop against a
	// lost event, check once a minute that every process still exists.
	if snap.Time.Sub(s.lastCheck) >= time.Minute {
		s.lastCheck = snap.Time
		var dead []uint32
		for tgid := range snap.Procs {
			if !procfs.Alive(s.cfg.Proc, tgid) {
				dead = append(dead, tgid)
			}
		}
		if len(dead) > 0 {
			s.log.Debug("forgetting processes that exited unseen", "count", len(dead))
			if err := s.src.ForgetProcs(dead); err != nil {
				s.log.Warn("forget processes", "err", err)
			}
		}
	}
}

// procRSS returns a process's resident bytes: what the kernel reported for
// its address space, with counters not reported yet taken from the /proc
// seed (zero for address spaces created after attach, which start empty).
func procRSS(p probe.Proc, mms map[uint32]probe.MM, seed procfs.RSS) int64 {
	mm, ok := mms[p.MMID]
	if p.MMID == 0 || !ok {
		return seed.Resident()
	}
	if mm.New {
		seed = procfs.RSS{}
	}
	pick := func(member int, seeded int64) int64 {
		if mm.Mask&(1<<member) != 0 {
			return mm.Size[member]
		}
		return seeded
	}
	return pick(probe.MemberFile, seed.File) + pick(probe.MemberAnon, seed.Anon) + pick(probe.MemberShmem, seed.Shmem)
}

func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur // the map entry was deleted and created again
	}
	return cur - prev
}

// counters computes the interval's deltas of the per-cgroup counters.
func (s *Sampler) counters(snap *probe.Snapshot, row func(uint64) *Cgroup) {
	for id, a := range snap.Access {
		p := s.prev.Access[id]
		r := row(id)
		r.PageCacheAccesses = delta(a.Accesses, p.Accesses)
		r.PageCacheMisses = delta(a.Misses, p.Misses)
	}
	for id, t := range snap.TCP {
		p, ok := s.prev.TCP[id]
		r := row(id)
		if ok {
			r.SRTT = t.SRTT.Delta(&p.SRTT)
			r.Connect = t.Connect.Delta(&p.Connect)
		} else {
			r.SRTT, r.Connect = t.SRTT, t.Connect
		}
		r.Retransmits = delta(t.Retransmits, p.Retransmits)
	}
	for id, q := range snap.Requests {
		p, ok := s.prev.Requests[id]
		r := row(id)
		r.Requests = delta(q.Requests, p.Requests)
		if ok {
			r.RequestLatency = q.Latency.Delta(&p.Latency)
		} else {
			r.RequestLatency = q.Latency.Clone()
		}
	}
	for id, n := range snap.Net {
		p := s.prev.Net[id]
		r := row(id)
		r.RxBytes = delta(n.RxBytes, p.RxBytes)
		r.TxBytes = delta(n.TxBytes, p.TxBytes)
		r.RxPackets = delta(n.RxPackets, p.RxPackets)
		r.TxPackets = delta(n.TxPackets, p.TxPackets)
		for i := range r.TxClassBytes {
			r.TxClassBytes[i] = delta(n.TxClassBytes[i], p.TxClassBytes[i])
		}
	}
}

// pageCache follows every memory cgroup's page cache and adds it to the
// cgroup v2 it belongs to.
func (s *Sampler) pageCache(snap *probe.Snapshot, rows map[uint64]*Cgroup, row func(uint64) *Cgroup) error {
	ids := make(map[uint64]bool, len(snap.Cache)+len(s.memcgs))
	for id := range snap.Cache {
		ids[id] = true
	}
	for id := range s.memcgs {
		ids[id] = true
	}
	// The memory cgroup of every cgroup with processes, so that its page
	// cache is known before its first event.
	for _, r := range rows {
		if r.Processes == 0 {
			continue
		}
		if id, err := s.mem.ID(r.Path); err == nil {
			ids[id] = true
		}
	}
	if s.mem != s.v2 {
		// Hybrid mode: several v1 memory cgroups may map to one v2 cgroup,
		// so follow all of them. Walk the memory hierarchy when an unknown
		// one shows up, and every RefreshEvery to find new and removed ones.
		unknown := snap.Time.Sub(s.memWalked) >= s.cfg.RefreshEvery
		for id := range ids {
			if !s.mem.Known(id) {
				unknown = true
				break
			}
		}
		if unknown {
			if err := s.mem.Refresh(); err != nil {
				return err
			}
			s.memWalked = snap.Time
		}
		for _, id := range s.mem.IDs() {
			ids[id] = true
		}
	}
	var gone []uint64
	for id := range ids {
		path, ok := s.mem.Path(id)
		if !ok {
			gone = append(gone, id)
			delete(s.memcgs, id)
			delete(s.noMemcg, id)
			continue
		}
		cur := snap.Cache[id]
		st := s.memcgs[id]
		if checked, ok := s.noMemcg[id]; ok && st == nil {
			if snap.Time.Sub(checked) < s.cfg.ReseedEvery {
				continue
			}
			delete(s.noMemcg, id)
		}
		if st == nil || snap.Time.Sub(st.seededAt) >= s.cfg.ReseedEvery {
			b, err := s.mem.LocalPageCache(path, s.cfg.Layout.MemoryIsV2())
			switch {
			case errors.Is(err, fs.ErrNotExist):
				// No memory controller there (cgroup v2 with memory not
				// enabled for it): its pages are charged to an ancestor.
				delete(s.memcgs, id)
				s.noMemcg[id] = snap.Time
				continue
			case err != nil:
				return fmt.Errorf("seed page cache: %w", err)
			}
			st = &memcg{path: path, seedBytes: b, baseAdded: cur.Added, baseRemove: cur.Removed, seededAt: snap.Time}
			s.memcgs[id] = st
		}
		bytes := st.seedBytes + (int64(cur.Added-st.baseAdded)-int64(cur.Removed-st.baseRemove))*s.pageSize
		prev := s.prev.Cache[id]

		target := id
		if s.mem != s.v2 {
			v2id, err := s.v2.ID(s.v2.Nearest(path))
			if err != nil {
				continue
			}
			target = v2id
		}
		r := row(target)
		if r.Path == "" {
			r.Path, _ = s.v2.Path(target)
			if r.Path == "" {
				r.Path = s.v2.Nearest(path)
			}
		}
		r.PageCacheBytes += max(bytes, 0)
		r.PageCacheAddedBytes += int64(delta(cur.Added, prev.Added)) * s.pageSize
		r.PageCacheEvictedBytes += int64(delta(cur.Removed, prev.Removed)) * s.pageSize
	}
	if len(gone) > 0 {
		if err := s.src.ForgetMemcgs(gone); err != nil {
			return err
		}
	}
	return nil
}
