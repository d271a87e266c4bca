package sampler

import (
	"maps"
	"testing"

	"github.com/pennyhq/penny/agent/probe"
)

// TestSampleCarriesDrops checks that a sample reports the probes' counts
// of lost and slowly counted events, each kind as its own.
func TestSampleCarriesDrops(t *testing.T) {
	tr := newTree(t, "a")
	s, _ := newSampler(t, tr, snap(0, nil), snap(1, func(s *probe.Snapshot) {
		s.Drops = map[string]uint64{"net": 1}
		s.Overflow = map[string]uint64{"net": 2}
		s.LogFullDrops = map[string]uint64{"net": 3}
	}))
	got, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want map[string]uint64
	}{
		{"Drops", got.Drops, map[string]uint64{"net": 1}},
		{"Overflow", got.Overflow, map[string]uint64{"net": 2}},
		{"LogFullDrops", got.LogFullDrops, map[string]uint64{"net": 3}},
	} {
		if !maps.Equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
