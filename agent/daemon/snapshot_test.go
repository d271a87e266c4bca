package daemon

import (
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/wire"
)

// TestSnapshotCarriesCPU checks the wire state of the fields read from
// cgroupfs and the egress classes: totals as counters, the working set and
// the pressure flag as gauges.
func TestSnapshotCarriesCPU(t *testing.T) {
	c := sampler.Cgroup{Path: "/a", ID: 5, PressureKnown: true, MemoryWorkingSetBytes: 4096}
	c.Totals = sampler.Totals{CPUUsageUsec: 10, CPUPeriods: 20, CPUThrottledPeriods: 3, CPUThrottledUsec: 40,
		Pressure:     [cgroupfs.PressureResources]cgroupfs.Pressure{{Some: 1, Full: 2}, {Some: 3, Full: 4}, {Some: 5, Full: 6}},
		TxClassBytes: [probe.TxClasses]uint64{7, 8, 9}, TxBytes: 24}
	unknown := sampler.Cgroup{Path: "/b", ID: 6}
	s := Snapshot(&sampler.Sample{Time: time.Unix(1, 0), Interval: time.Second, Cgroups: []sampler.Cgroup{c, unknown}}, nil)
	want := wire.Values{TxBytes: 24, CPUUsageUsec: 10, CPUPeriods: 20, CPUThrottledPeriods: 3, CPUThrottledUsec: 40,
		PressureKnown: 1, CPUPressureSomeUsec: 1, CPUPressureFullUsec: 2, MemoryPressureSomeUsec: 3, MemoryPressureFullUsec: 4,
		IOPressureSomeUsec: 5, IOPressureFullUsec: 6, MemoryWorkingSetBytes: 4096,
		TxLoopbackBytes: 7, TxClusterBytes: 8, TxInternetBytes: 9}
	if got := s.Series[0].Values; !got.Equal(&want) {
		t.Errorf("values\n %+v\nwant\n %+v", got, want)
	}
	if s.Series[1].PressureKnown != 0 {
		t.Error("pressure known where the kernel has none")
	}
}
