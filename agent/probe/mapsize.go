package probe

import (
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/pennyhq/penny/bpf"
)

// sizeEventLog sizes a collection's event log for ncpu CPUs: the rings'
// array, their cursors, and the programs' ring size (ev_slots_shift).
func sizeEventLog(s *ebpf.CollectionSpec, ncpu int) error {
	shift := ringShift(ncpu)
	s.Maps["events"].MaxEntries = uint32(ncpu << shift)
	s.Maps["event_cursors"].MaxEntries = uint32(ncpu)
	v, ok := s.Variables["ev_slots_shift"]
	if !ok {
		return fmt.Errorf("probe: no ev_slots_shift in the programs")
	}
	return v.Set(uint32(shift))
}

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
