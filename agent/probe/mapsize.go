package probe

import (
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/bpf"
)

// sizeEventLog sizes a collection's event log for ncpu CPUs: the rings'
// array, their cursors, and the programs' ring size (ev_slots_shift); and
// tells the programs how to commit a record (ev_ordered_stores).
func sizeEventLog(s *ebpf.CollectionSpec, ncpu int) error {
	shift := ringShift(ncpu)
	s.Maps["events"].MaxEntries = uint32(ncpu << shift)
	s.Maps["event_cursors"].MaxEntries = uint32(ncpu)
	for name, v := range map[string]uint32{"ev_slots_shift": uint32(shift), "ev_ordered_stores": orderedStores} {
		sv, ok := s.Variables[name]
		if !ok {
			return fmt.Errorf("probe: no %s in the programs", name)
		}
		if err := sv.Set(v); err != nil {
			return fmt.Errorf("probe: set %s: %w", name, err)
		}
	}
	return nil
}

// orderedStores is 1 where the CPU makes one CPU's stores visible to the
// others in the order it made them (x86-64's total store order), as the
// eBPF JIT emits a program's stores in its order: the programs then commit
// a record with a plain store rather than an atomic exchange (bpf/penny.h).
// The agent runs on the kernel's architecture.
var orderedStores = func() uint32 {
	if runtime.GOARCH == "amd64" {
		return 1
	}
	return 0
}()

// hashElemOverhead is what the kernel adds to each hash map element: struct
// htab_elem's list node and hash (48 bytes on 64-bit), rounded up.
const hashElemOverhead = 64

// MapMemory is what one map takes: at most (every entry filled), and at
// load (preallocated; a map allocated on use starts empty).
type MapMemory struct {
	Max, AtLoad uint64
}

// MapBytes is the memory the programs' maps take on a machine with ncpu
// possible CPUs, by map (across the collections), computed from the specs
// as the agent sizes them: each hash element with the kernel's overhead,
// per-CPU values once per CPU. Socket storage (one request state per
// server socket, freed with the socket) is not counted: it is charged to
// the sockets.
func MapBytes(ncpu int) (map[string]MapMemory, error) {
	out := map[string]MapMemory{}
	for _, load := range []func() (*ebpf.CollectionSpec, error){bpf.LoadMemory, bpf.LoadPagecache, bpf.LoadNet, bpf.LoadRequests} {
		s, err := load()
		if err != nil {
			return nil, err
		}
		if err := sizeEventLog(s, ncpu); err != nil {
			return nil, err
		}
		for name, m := range s.Maps {
			if _, seen := out[name]; seen && (name == "events" || name == "event_cursors") {
				continue // one log, shared by the collections
			}
			mm := MapMemory{Max: specBytes(m, ncpu)}
			if m.Flags&unix.BPF_F_NO_PREALLOC == 0 {
				mm.AtLoad = mm.Max
			}
			out[name] = mm
		}
	}
	return out, nil
}

func specBytes(m *ebpf.MapSpec, ncpu int) uint64 {
	value := uint64(m.ValueSize+7) &^ 7
	entries := uint64(m.MaxEntries)
	switch m.Type {
	case ebpf.Hash, ebpf.LRUHash:
		return entries * (uint64(m.KeySize+7)&^7 + value + hashElemOverhead)
	case ebpf.PerCPUHash, ebpf.LRUCPUHash:
		return entries * (uint64(m.KeySize+7)&^7 + hashElemOverhead + value*uint64(ncpu))
	case ebpf.PerCPUArray:
		return entries * value * uint64(ncpu)
	case ebpf.Array:
		return entries * value
	case ebpf.RingBuf:
		return entries // max_entries is its size in bytes
	case ebpf.SkStorage:
		return 0 // per socket, see MapBytes
	default:
		return entries * (uint64(m.KeySize) + value)
	}
}
