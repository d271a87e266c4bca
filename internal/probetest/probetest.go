// Package probetest loads the agent's eBPF programs for a test. It is not
// in cgtest, which agent/probe's own tests import: it imports agent/probe.
package probetest

import (
	"context"
	"testing"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
)

// Load loads and attaches the programs with cfg, its CgroupV2 set to l's
// (cgtest.Layout), and closes them when the test ends.
func Load(t testing.TB, l cgroupfs.Layout, cfg probe.Config) *probe.Probes {
	t.Helper()
	cfg.CgroupV2 = l.V2
	p, err := probe.Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
