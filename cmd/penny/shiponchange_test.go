package main

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/cgtest"
)

// TestShipOnChange: a real agent samples every 10 s; a process in a real
// cgroup grows its RSS by 64 MiB between two samples, and the aggregator
// has the new value long before the next interval (within a quarter of
// it here; docs/agent.md has the measured delay), because the kernel woke
// the agent (TestRSSWatchesWake has the thresholds).
func TestShipOnChange(t *testing.T) {
	cgtest.RequireRoot(t)
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	const interval = 10 * time.Second
	c := newProcCluster(t, 1)
	c.waitHealthy(c.replicas...)
	r := c.replicas[0]
	g := cgtest.NewGroup(t, layout)
	p := g.Start()
	p.Do("touch %d", 32<<20)
	const node = "change-node"
	a := startAgent(t, c.bin, []string{"http://" + r.api}, node, "--interval", interval.String())
	agentMetrics := "http://" + a.metrics + "/metrics"
	rssNear := func(want int64) func() error {
		return func() error {
			got, ok := containerOn(r, node, g.Path)
			if !ok {
				return fmt.Errorf("%s not there yet", g.Path)
			}
			if math.Abs(float64(got.RSSBytes-want)) > 0.05*float64(want) {
				return fmt.Errorf("RSS %d, /proc says %d", got.RSSBytes, want)
			}
			return nil
		}
	}
	eventually(t, "the first sample", 3*interval, rssNear(g.SumVmRSS()))

	for _, step := range []struct {
		name  string
		cmd   string
		bytes int64
	}{
		{"grow", "touch", 64 << 20},
		{"shrink", "free", 0},
	} {
		t.Run(step.name, func(t *testing.T) {
			before, _ := scrape(agentMetrics, "penny_agent_change_samples_total", nil)
			start := time.Now()
			if step.bytes > 0 {
				p.Do("%s %d", step.cmd, step.bytes)
			} else {
				p.Do("%s", step.cmd)
			}
			eventually(t, "the change at the aggregator", interval/4, rssNear(g.SumVmRSS()))
			t.Logf("%s: RSS %d bytes at the aggregator %s after the change", step.name, g.SumVmRSS(),
				time.Since(start).Round(time.Millisecond))
			if after, _ := scrape(agentMetrics, "penny_agent_change_samples_total", nil); after <= before {
				t.Errorf("penny_agent_change_samples_total %v, was %v: the change did not trigger the sample", after, before)
			}
		})
	}
}
