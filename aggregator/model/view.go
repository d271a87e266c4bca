package model

import (
	"time"

	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/internal/usage"
)

// Container is one cgroup as `GET /v1/containers` shows it: the fields of
// `penny local --json`, plus its node and when its values were current.
type Container struct {
	Node string `json:"node"`
	usage.Cgroup
	// Updated is when the values were current: the node's last sample,
	// which restated or left unchanged this cgroup's values.
	Updated string `json:"updated"`
	// SampleTime is Updated as a time, for readers in Go.
	SampleTime time.Time `json:"-"`
	// WindowSeconds is the span the counters and quantiles cover: the
	// agent's interval, or the window asked for (shorter while the series
	// is younger than it).
	WindowSeconds float64 `json:"window_seconds"`
	// Kubernetes is the pod and container the cgroup belongs to, as its
	// agent reported them; nil outside Kubernetes.
	Kubernetes *Kube `json:"kubernetes,omitempty"`
	// Totals are the counters since the agent started, for readers that
	// export them as counters (Prometheus).
	Totals Counters `json:"-"`
	// PressureKnown tells whether Totals' pressure counters hold the
	// kernel's pressure stall information.
	PressureKnown bool `json:"-"`
	// RequestLatency is the window's request latency histogram
	// (microseconds, log-linear), for readers that merge containers into
	// a workload's quantiles; empty from an agent that sends only log2.
	RequestLatency histogram.LogLinear `json:"-"`
}

// CPUThrottledRatio is the share of its CPU limit's enforcement periods at
// whose end the container was throttled, over its window; false when no
// period ran (no limit, or nothing to run).
func (c *Container) CPUThrottledRatio() (float64, bool) {
	if c.CPUPeriods == 0 {
		return 0, false
	}
	return min(float64(c.CPUThrottledPeriods)/float64(c.CPUPeriods), 1), true
}

// Kube is a container's Kubernetes identity.
type Kube struct {
	Pod       podmeta.Pod       `json:"pod"`
	Container podmeta.Container `json:"container"`
}

// kube decodes a series' metadata; nil outside Kubernetes. Malformed
// metadata (refused by no earlier check) leaves the cgroup unattributed
// rather than failing the whole read.
func kube(meta map[string]string) *Kube {
	if p, ct, ok, err := podmeta.Decode(meta); ok && err == nil {
		return &Kube{Pod: p, Container: ct}
	}
	return nil
}

// SetKube sets s's pod and container, its Meta decoded by the caller
// (nil: decode Meta): the containers that View makes of s share it,
// read-only.
func (s *Stored) SetKube(k *Kube) { s.kube = k }

// noChange is the values of a series unchanged in its node's last frame:
// none (read-only).
var noChange Delta

// View turns a stored series into a container. With window 0 the counters,
// ratio and quantiles cover the node's last interval, as in `penny local`;
// otherwise about the last window (at most MaxWindow). agent may be nil
// (a series whose agent record is gone); its values are then as stored.
func View(node string, agent *Agent, s *Stored, window time.Duration) Container {
	c := Container{Node: node, Cgroup: usage.Cgroup{
		Path: s.Path, ID: s.CgroupID,
		RSSBytes: s.RSSBytes, PageCacheBytes: s.PageCache, Processes: s.Processes,
		MemoryWorkingSetBytes: s.WorkingSet,
	}, Totals: s.Total, PressureKnown: s.PressureKnown}
	latest := s.Time
	if agent != nil && agent.Time > latest {
		latest = agent.Time
	}
	if s.kube != nil {
		c.Kubernetes = s.kube
	} else {
		c.Kubernetes = kube(s.Meta)
	}
	c.SampleTime = time.Unix(0, latest).UTC()
	c.Updated = c.SampleTime.Format(time.RFC3339Nano)

	// d points into s, or at what a window adds up: a Delta is about
	// 1 KB, and the quantiles take it by pointer, so a copy of it would
	// go to the heap for every container.
	d := &noChange
	span := time.Duration(s.Interval)
	switch {
	case window > 0:
		var w Delta
		w, span = s.window(latest, window)
		d = &w
	case s.Time == latest:
		d = &s.Last // written by the node's last frame
	default:
		// Unchanged in the node's last frame: nothing happened.
		if agent != nil {
			span = time.Duration(agent.Interval)
		}
	}
	c.WindowSeconds = span.Seconds()
	c.TCPRetransmits = d.Counters.Retransmits
	c.NetRxBytes = d.Counters.RxBytes
	c.NetTxBytes = d.Counters.TxBytes
	c.PageCacheAddedBytes = int64(d.Counters.PageCacheAddedBytes)
	c.PageCacheEvictedBytes = int64(d.Counters.PageCacheEvictedBytes)
	c.SetHitRatio(d.Counters.PageCacheAccesses, d.Counters.PageCacheMisses)
	c.SetLatency(&d.SRTT.Hist, &d.Connect.Hist)
	c.SetRequests(d.Counters.Requests, d.requestLatency())
	c.RequestLatency = d.RequestLatencyLogLinear.LogLinear
	k := &d.Counters
	c.SetCPU(k.CPUUsageUsec, k.CPUPeriods, k.CPUThrottledPeriods, k.CPUThrottledUsec)
	c.SetPressure(s.PressureKnown, k.CPUPressureSomeUsec, k.MemoryPressureSomeUsec, k.IOPressureSomeUsec)
	c.NetTxLoopbackBytes, c.NetTxClusterBytes, c.NetTxInternetBytes = k.TxLoopbackBytes, k.TxClusterBytes, k.TxInternetBytes
	return c
}

// window returns the increase over about the last w before now (a sample
// time) and the span it really covers: from the newest checkpoint at least
// w old, or the oldest one when the series is younger than w.
func (s *Stored) window(now int64, w time.Duration) (Delta, time.Duration) {
	w = min(w, MaxWindow)
	marks, err := s.unpacked() // packed in the ingest's node states only
	if err != nil || len(marks) == 0 {
		return s.Last, time.Duration(s.Interval)
	}
	m := &marks[0]
	for i := len(marks) - 1; i >= 0; i-- {
		if now-marks[i].Time >= int64(w) {
			m = &marks[i]
			break
		}
	}
	var d Delta
	d.Counters, _ = s.Total.Sub(m.Total)
	d.SRTT = Hist{s.SRTT.Delta(&m.SRTT.Hist)}
	d.Connect = Hist{s.Connect.Delta(&m.Connect.Hist)}
	d.RequestLatency = Hist{s.RequestLatency.Delta(&m.RequestLatency.Hist)}
	d.RequestLatencyLogLinear = LogHist{s.RequestLatencyLogLinear.Delta(&m.RequestLatencyLogLinear.LogLinear)}
	return d, time.Duration(now - m.Time)
}

// requestLatency is the histogram the request latency quantiles come
// from: the log-linear one, or an older agent's log2 one when the
// interval has no log-linear sample (within 12.5% or a factor of two:
// docs/requests.md).
func (d *Delta) requestLatency() histogram.Quantiler {
	if d.RequestLatencyLogLinear.Count > 0 || d.RequestLatency.Count == 0 {
		return &d.RequestLatencyLogLinear.LogLinear
	}
	return &d.RequestLatency.Hist
}
