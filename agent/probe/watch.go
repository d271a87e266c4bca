package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/pennyhq/penny/bpf"
)

// ErrClosed is returned by Snapshot and RSSChange once the probes are
// closed.
var ErrClosed = errors.New("probe: closed")

// The RSS watches (bpf/memory.bpf.c, rss_watches): the kernel adds every
// RSS change a process makes to its own address space to its cgroup's
// watch, and the first change that takes the sum since the watch was armed
// past its limit wakes RSSChange with the cgroup's id, once per arming.

// ArmRSS arms a watch for each cgroup in limits (cgroup v2 id to bytes,
// either way) with a sum of zero, and removes the watches of cgroups not
// in it. Called at every sample, it costs one batch update of the map
// (and one batch delete when cgroups went).
func (p *Probes) ArmRSS(limits map[uint64]int64) error {
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	m := p.mem.RssWatches
	keys := make([]uint64, 0, len(limits))
	for id := range limits {
		keys = append(keys, id)
	}
	slices.Sort(keys)
	if len(keys) > int(m.MaxEntries()) {
		// The map is as large as the cgroups the programs track; past
		// it, the cgroups with the largest ids (the newest) go unwatched.
		keys = keys[:m.MaxEntries()]
	}
	values := make([]bpf.MemoryRssWatch, len(keys))
	for i, id := range keys {
		values[i] = bpf.MemoryRssWatch{Limit: max(limits[id], 1), Armed: 1}
	}
	if len(keys) > 0 {
		if _, err := m.BatchUpdate(keys, values, nil); err != nil {
			return fmt.Errorf("arm rss watches: %w", err)
		}
	}
	var gone []uint64
	for id := range p.watched {
		if _, ok := limits[id]; !ok {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		if _, err := m.BatchDelete(gone, nil); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("remove rss watches: %w", err)
		}
	}
	clear(p.watched)
	for _, id := range keys {
		p.watched[id] = struct{}{}
	}
	return nil
}

// RSSMoved returns how many bytes cgroup id's RSS moved since its watch
// was armed, and false when it has no watch.
func (p *Probes) RSSMoved(id uint64) (int64, bool, error) {
	var w bpf.MemoryRssWatch
	if err := p.mem.RssWatches.Lookup(id, &w); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("read rss watch: %w", err)
	}
	return w.Delta, true, nil
}

// RSSChange blocks until a watched cgroup's RSS moves past its limit and
// returns the cgroup's id; ErrClosed once the probes are closed. One
// goroutine at a time may call it.
func (p *Probes) RSSChange() (uint64, error) {
	for {
		rec, err := p.changes.Read()
		if errors.Is(err, os.ErrClosed) {
			return 0, ErrClosed
		}
		if err != nil {
			return 0, fmt.Errorf("read rss changes: %w", err)
		}
		if len(rec.RawSample) >= 8 {
			return binary.LittleEndian.Uint64(rec.RawSample), nil // bpfel
		}
	}
}
