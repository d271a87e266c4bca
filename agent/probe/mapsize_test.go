package probe

import (
	"cmp"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/pennyhq/penny/bpf"
)

// The documented bounds of the programs' map memory (docs/agent.md, "Map
// memory"), up to 512 CPUs: what the maps take at load, and at most with
// every map full. The chart's agent memory limit is derived from them.
const (
	maxMapBytesAtLoad = 32 << 20
	maxMapBytes       = 80 << 20
)

// TestMapBytesBounded computes, from the specs as the agent sizes them,
// the memory the maps take on machines of 2 to 1,024 CPUs, and holds it to
// the documented bounds: past 512 CPUs only the event log grows, by its
// least ring (32 KiB) a CPU, and the per-CPU drop counters.
func TestMapBytesBounded(t *testing.T) {
	var totals []uint64
	for _, ncpu := range []int{2, 64, 256, 512, 1024} {
		m, err := MapBytes(ncpu)
		if err != nil {
			t.Fatal(err)
		}
		var total, atLoad uint64
		for _, b := range m {
			total += b.Max
			atLoad += b.AtLoad
		}
		totals = append(totals, total)
		names := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Compare(m[b].Max, m[a].Max) })
		var top []string
		for _, n := range names[:5] {
			top = append(top, n+" "+mibs(m[n].Max))
		}
		t.Logf("%4d CPUs: %s at load, %s at most; largest %s", ncpu, mibs(atLoad), mibs(total), strings.Join(top, ", "))
		if ncpu > 512 {
			continue
		}
		if atLoad > maxMapBytesAtLoad || total > maxMapBytes {
			t.Errorf("%d CPUs: maps take %s at load and up to %s, over the documented %s and %s", ncpu,
				mibs(atLoad), mibs(total), mibs(maxMapBytesAtLoad), mibs(maxMapBytes))
		}
	}
	// Per CPU: the log's least ring (32 KiB) and cursor, and the drop
	// counters (a few hundred bytes).
	if grow := totals[4] - totals[3]; grow > 512*33<<10 {
		t.Errorf("from 512 to 1024 CPUs the maps grow by %s, more than 33 KiB a CPU", mibs(grow))
	}
}

func mibs(b uint64) string {
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}

// TestEventLogSettings: every collection gets the ring size for the CPUs
// and the way to commit a record for this architecture (plain stores on
// x86-64 only).
func TestEventLogSettings(t *testing.T) {
	want := uint32(0)
	if runtime.GOARCH == "amd64" {
		want = 1
	}
	for name, load := range map[string]func() (*ebpf.CollectionSpec, error){
		"memory": bpf.LoadMemory, "pagecache": bpf.LoadPagecache, "net": bpf.LoadNet, "requests": bpf.LoadRequests} {
		s, err := load()
		if err != nil {
			t.Fatal(err)
		}
		if err := sizeEventLog(s, 64); err != nil {
			t.Fatal(err)
		}
		for v, w := range map[string]uint32{"ev_ordered_stores": want, "ev_slots_shift": uint32(ringShift(64))} {
			var got uint32
			if err := s.Variables[v].Get(&got); err != nil || got != w {
				t.Errorf("%s: %s = %d (%v), want %d", name, v, got, err, w)
			}
		}
	}
}
