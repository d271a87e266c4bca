package probe

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestDropReasons checks that every counter of the programs' drops arrays
// (enum drop_reason in bpf/penny.h) is read into a Snapshot field of its
// own: an event lost for one reason must not be reported as another.
func TestDropReasons(t *testing.T) {
	h, err := os.ReadFile("../../bpf/penny.h")
	if err != nil {
		t.Fatal(err)
	}
	inC := map[string]uint32{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(DROP_[A-Z_]+)\s*=\s*(\d+),`).FindAllSubmatch(h, -1) {
		v, err := strconv.ParseUint(string(m[2]), 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		inC[string(m[1])] = uint32(v)
	}
	max, ok := inC["DROP_MAX"]
	if !ok {
		t.Fatalf("no DROP_MAX in bpf/penny.h (found %v)", inC)
	}
	delete(inC, "DROP_MAX")
	for _, tt := range []struct {
		name   string // in bpf/penny.h
		reason uint32
		field  func(*Snapshot) map[string]uint64
	}{
		{"DROP_MAP_FULL", dropMapFull, func(s *Snapshot) map[string]uint64 { return s.Drops }},
		{"DROP_LOG_FULL", dropLogFull, func(s *Snapshot) map[string]uint64 { return s.Overflow }},
		{"DROP_LOG_FULL_LOST", dropLogFullLost, func(s *Snapshot) map[string]uint64 { return s.LogFullDrops }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := inC[tt.name]
			delete(inC, tt.name)
			if !ok || v != tt.reason {
				t.Fatalf("bpf/penny.h has %s = %d (defined: %v), Go has %d", tt.name, v, ok, tt.reason)
			}
			if tt.reason >= max {
				t.Fatalf("%s = %d does not fit the drops array (DROP_MAX = %d)", tt.name, tt.reason, max)
			}
			s := &Snapshot{Drops: map[string]uint64{}, Overflow: map[string]uint64{}, LogFullDrops: map[string]uint64{}}
			out := s.dropCounters()[tt.reason]
			if out == nil {
				t.Fatalf("%s is not read into the snapshot", tt.name)
			}
			out["net"]++
			if got := tt.field(s)["net"]; got != 1 {
				t.Errorf("a %s drop is not counted in its own field", tt.name)
			}
			if sum := s.Drops["net"] + s.Overflow["net"] + s.LogFullDrops["net"]; sum != 1 {
				t.Errorf("a %s drop is counted %d times", tt.name, sum)
			}
		})
	}
	if len(inC) != 0 {
		t.Errorf("drop reasons in bpf/penny.h the agent does not read: %v", inC)
	}
	if n := len((&Snapshot{}).dropCounters()); n != 3 {
		t.Errorf("dropCounters maps %d reasons, the test knows 3", n)
	}
}
