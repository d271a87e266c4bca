package nodemetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollectorDrops checks that each way of losing (or slowly counting)
// kernel events is exported as its own series.
func TestCollectorDrops(t *testing.T) {
	s := testSample()
	s.Drops = map[string]uint64{"net": 1, "event_log_lost": 4}
	s.Overflow = map[string]uint64{"net": 2}
	s.LogFullDrops = map[string]uint64{"net": 3}
	want := `
# HELP penny_agent_events_dropped_total Kernel events lost because an eBPF map was full.
# TYPE penny_agent_events_dropped_total counter
penny_agent_events_dropped_total{program="event_log_lost"} 4
penny_agent_events_dropped_total{program="net"} 1
# HELP penny_agent_event_log_overflow_total Kernel events that found the event log full and were counted in per-cgroup maps instead.
# TYPE penny_agent_event_log_overflow_total counter
penny_agent_event_log_overflow_total{program="net"} 2
# HELP penny_agent_event_log_full_dropped_total Kernel events lost because the event log was full and they have no slower way to be counted.
# TYPE penny_agent_event_log_full_dropped_total counter
penny_agent_event_log_full_dropped_total{program="net"} 3
`
	if err := testutil.CollectAndCompare(newCollector(s), strings.NewReader(want), "penny_agent_events_dropped_total",
		"penny_agent_event_log_overflow_total", "penny_agent_event_log_full_dropped_total"); err != nil {
		t.Fatal(err)
	}
}
