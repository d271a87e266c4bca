package report

import (
	"encoding/json"
	"io"
	"time"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/internal/usage"
)

// Report is one sample as `penny local --json` prints it. The fields up to
// net_tx_bytes are the stable contract; later fields are additions.
type Report struct {
	Time            string   `json:"time"`
	IntervalSeconds float64  `json:"interval_seconds"`
	Cgroups         []Cgroup `json:"cgroups"`
}

// Cgroup is one cgroup's values, in the shape the aggregator's
// `GET /v1/containers` shares.
type Cgroup = usage.Cgroup

// FromSample converts a sample to its report.
func FromSample(s *sampler.Sample) Report {
	r := Report{
		Time:            s.Time.UTC().Format(time.RFC3339Nano),
		IntervalSeconds: s.Interval.Seconds(),
		Cgroups:         make([]Cgroup, 0, len(s.Cgroups)),
	}
	for i := range s.Cgroups {
		if !s.Cgroups[i].Idle {
			r.Cgroups = append(r.Cgroups, cgroupOf(&s.Cgroups[i]))
		}
	}
	return r
}

func cgroupOf(c *sampler.Cgroup) Cgroup {
	out := Cgroup{
		Path:                  c.Path,
		ID:                    c.ID,
		RSSBytes:              c.RSSBytes,
		PageCacheBytes:        c.PageCacheBytes,
		TCPRetransmits:        c.Retransmits,
		NetRxBytes:            c.RxBytes,
		NetTxBytes:            c.TxBytes,
		Processes:             int64(c.Processes),
		PageCacheAddedBytes:   c.PageCacheAddedBytes,
		PageCacheEvictedBytes: c.PageCacheEvictedBytes,
	}
	if c.HitRatioKnown {
		out.SetHitRatio(c.PageCacheAccesses, c.PageCacheMisses)
	}
	out.SetLatency(&c.SRTT, &c.Connect)
	out.SetCPU(c.CPUUsageUsec, c.CPUPeriods, c.CPUThrottledPeriods, c.CPUThrottledUsec)
	out.SetPressure(c.PressureKnown, c.Pressure[cgroupfs.PressureCPU].Some, c.Pressure[cgroupfs.PressureMemory].Some,
		c.Pressure[cgroupfs.PressureIO].Some)
	out.MemoryWorkingSetBytes = c.MemoryWorkingSetBytes
	out.NetTxLoopbackBytes = c.TxClassBytes[probe.TxLoopback]
	out.NetTxClusterBytes = c.TxClassBytes[probe.TxCluster]
	out.NetTxInternetBytes = c.TxClassBytes[probe.TxInternet]
	return out
}

// WriteJSON writes the report as one line of JSON.
func WriteJSON(w io.Writer, s *sampler.Sample) error {
	return json.NewEncoder(w).Encode(FromSample(s))
}
