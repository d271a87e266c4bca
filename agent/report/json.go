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
	Time            string  `json:"time"`
	IntervalSeconds float64 `json:"interval_seconds"`
	// Currency is the ISO 4217 code of the cgroups' costs
	// (cost_dollars_per_hour is in it, whatever its name says), for the
	// table's title; the JSON document's header stays as it is (the
	// aggregator's GET /v1/containers has it, and GET /v1/pricing).
	Currency string   `json:"-"`
	Cgroups  []Cgroup `json:"cgroups"`
}

// Cgroup is one cgroup's values, in the shape the aggregator's
// `GET /v1/containers` shares.
type Cgroup = usage.Cgroup

// Pricer prices the cgroups of samples. Package report knows no prices
// (the agent does not import the aggregator): `penny local` gives the
// prices in force of its in-process aggregator.
type Pricer interface {
	// Prices is called once per sample, so that a sample is priced at one
	// set of prices: it returns their currency and a function that sets a
	// cgroup's cost rate (Cgroup.SetCost) from its values over the
	// interval.
	Prices() (currency string, price func(c *Cgroup, intervalSeconds float64))
}

// FromSample converts a sample to its report, priced by p (nil: no cost).
func FromSample(s *sampler.Sample, p Pricer) Report {
	r := Report{
		Time:            s.Time.UTC().Format(time.RFC3339Nano),
		IntervalSeconds: s.Interval.Seconds(),
		Cgroups:         make([]Cgroup, 0, len(s.Cgroups)),
	}
	var price func(*Cgroup, float64)
	if p != nil {
		r.Currency, price = p.Prices()
	}
	for i := range s.Cgroups {
		if !s.Cgroups[i].Idle {
			c := cgroupOf(&s.Cgroups[i])
			if price != nil {
				price(&c, r.IntervalSeconds)
			}
			r.Cgroups = append(r.Cgroups, c)
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
	out.SetRequests(c.Requests, &c.RequestLatency)
	out.SetCPU(c.CPUUsageUsec, c.CPUPeriods, c.CPUThrottledPeriods, c.CPUThrottledUsec)
	out.SetPressure(c.PressureKnown, c.Pressure[cgroupfs.PressureCPU].Some, c.Pressure[cgroupfs.PressureMemory].Some,
		c.Pressure[cgroupfs.PressureIO].Some)
	out.MemoryWorkingSetBytes = c.MemoryWorkingSetBytes
	out.NetTxLoopbackBytes = c.TxClassBytes[probe.TxLoopback]
	out.NetTxClusterBytes = c.TxClassBytes[probe.TxCluster]
	out.NetTxInternetBytes = c.TxClassBytes[probe.TxInternet]
	return out
}

// WriteJSON writes the report of s, priced by p, as one line of JSON.
func WriteJSON(w io.Writer, s *sampler.Sample, p Pricer) error {
	return json.NewEncoder(w).Encode(FromSample(s, p))
}
