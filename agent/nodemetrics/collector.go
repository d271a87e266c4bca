package nodemetrics

import (
	"log/slog"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/probe"
	"github.com/pennyhq/penny/agent/sampler"
	"github.com/pennyhq/penny/internal/histogram"
)

// Latency histograms are exported with buckets at powers of two
// microseconds from 2^minLe to 2^maxLe (16µs to about 33s).
const (
	minLe = 4
	maxLe = 25
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("penny_"+name, help, labels, nil)
}

var (
	cg = []string{"cgroup"}

	descProcesses           = desc("cgroup_processes", "Processes in the cgroup.", cg...)
	descRSS                 = desc("cgroup_memory_rss_bytes", "Resident memory (anonymous, file and shmem pages) of the cgroup's processes.", cg...)
	descPageCache           = desc("cgroup_page_cache_bytes", "File page cache charged to the cgroup's memory cgroup.", cg...)
	descHitRatio            = desc("cgroup_page_cache_hit_ratio", "Share of page cache pages accessed in the last interval that were already cached.", cg...)
	descPCAdded             = desc("cgroup_page_cache_added_bytes_total", "Bytes added to the page cache and charged to the cgroup.", cg...)
	descPCEvicted           = desc("cgroup_page_cache_evicted_bytes_total", "Bytes of the cgroup's page cache evicted or truncated.", cg...)
	descPCAccessed          = desc("cgroup_page_cache_accessed_pages_total", "Page cache pages the cgroup's tasks accessed through read(2) and page faults.", cg...)
	descPCMissed            = desc("cgroup_page_cache_missed_pages_total", "Accessed pages that had to be read into the page cache first.", cg...)
	descSRTT                = desc("cgroup_tcp_srtt_seconds", "Smoothed round-trip time of the cgroup's TCP sockets, sampled on every received segment.", cg...)
	descConnect             = desc("cgroup_tcp_connect_seconds", "Time from SYN sent to connection established for the cgroup's TCP connects.", cg...)
	descRetransmits         = desc("cgroup_tcp_retransmits_total", "TCP segments the cgroup's sockets retransmitted.", cg...)
	descRequests            = desc("cgroup_requests_total", "Requests the cgroup's server sockets answered: HTTP/1 request lines, HTTP/2 client streams, request/response turns of other TCP protocols (docs/requests.md).", cg...)
	descRequestLatency      = desc("cgroup_request_latency_seconds", "Time from a request's first byte in to its response's first byte out, for the requests the cgroup's server sockets answered and timed.", cg...)
	descRxBytes             = desc("cgroup_network_receive_bytes_total", "IP bytes received by the cgroup's sockets.", cg...)
	descTxBytes             = desc("cgroup_network_transmit_bytes_total", "IP bytes sent by the cgroup's sockets.", cg...)
	descRxPackets           = desc("cgroup_network_receive_packets_total", "IP packets received by the cgroup's sockets.", cg...)
	descTxPackets           = desc("cgroup_network_transmit_packets_total", "IP packets sent by the cgroup's sockets.", cg...)
	descEgress              = desc("cgroup_network_egress_bytes_total", "IP bytes sent by the cgroup's sockets, by destination: loopback, cluster (private and link-local addresses) or internet; they add up to penny_cgroup_network_transmit_bytes_total.", "cgroup", "class")
	descCPU                 = desc("cgroup_cpu_usage_seconds_total", "CPU time of the cgroup's own tasks (its child cgroups' excluded), from cgroupfs.", cg...)
	descCFSPeriods          = desc("cgroup_cpu_cfs_periods_total", "Enforcement periods of the cgroup's CPU limit in which it had runnable tasks.", cg...)
	descCFSThrottled        = desc("cgroup_cpu_cfs_throttled_periods_total", "Enforcement periods of the cgroup's CPU limit at whose end it was throttled.", cg...)
	descCFSThrottledSeconds = desc("cgroup_cpu_cfs_throttled_seconds_total", "Time the cgroup's tasks were throttled by its CPU limit.", cg...)
	descWorkingSet          = desc("cgroup_memory_working_set_bytes", "Memory usage minus inactive file pages of the cgroup's memory cgroup (its children's excluded), as kubelet computes the working set.", cg...)
	descPressureWaiting     = [cgroupfs.PressureResources]*prometheus.Desc{
		desc("cgroup_pressure_cpu_waiting_seconds_total", "Time at least one of the cgroup's tasks waited for a CPU (PSI some), where the kernel reports pressure stall information.", cg...),
		desc("cgroup_pressure_memory_waiting_seconds_total", "Time at least one of the cgroup's tasks stalled on memory (PSI some).", cg...),
		desc("cgroup_pressure_io_waiting_seconds_total", "Time at least one of the cgroup's tasks stalled on IO (PSI some).", cg...),
	}
	descPressureStalled = [cgroupfs.PressureResources]*prometheus.Desc{
		desc("cgroup_pressure_cpu_stalled_seconds_total", "Time all of the cgroup's non-idle tasks waited for a CPU at once (PSI full).", cg...),
		desc("cgroup_pressure_memory_stalled_seconds_total", "Time all of the cgroup's non-idle tasks stalled on memory at once (PSI full).", cg...),
		desc("cgroup_pressure_io_stalled_seconds_total", "Time all of the cgroup's non-idle tasks stalled on IO at once (PSI full).", cg...),
	}
	descCgroups      = desc("agent_cgroups", "Cgroups in the last sample.")
	descDrops        = desc("agent_events_dropped_total", "Kernel events lost because an eBPF map was full.", "program")
	descOverflow     = desc("agent_event_log_overflow_total", "Kernel events that found the event log full and were counted in per-cgroup maps instead.", "program")
	descLogFullDrops = desc("agent_event_log_full_dropped_total", "Kernel events lost because the event log was full and they have no slower way to be counted.", "program")
	descProgRunTime  = desc("agent_bpf_program_run_seconds_total", "Time the kernel spent running the eBPF program (while statistics are enabled).", "program")
	descProgRunCount = desc("agent_bpf_program_runs_total", "Times the kernel ran the eBPF program (while statistics are enabled).", "program")
)

// Collector exports the latest sample. It is an unchecked-free collector:
// every metric it may emit is described.
type Collector struct {
	latest func() *sampler.Sample
	stats  func() ([]probe.ProgramStat, error)
	log    *slog.Logger
}

// NewCollector returns a collector for the samples latest returns. stats
// may be nil; when set, eBPF program run times are exported too.
func NewCollector(latest func() *sampler.Sample, stats func() ([]probe.ProgramStat, error), log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{latest: latest, stats: stats, log: log}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProcesses, descRSS, descPageCache, descHitRatio, descPCAdded,
		descPCEvicted, descPCAccessed, descPCMissed, descSRTT, descConnect, descRetransmits, descRequests,
		descRequestLatency, descRxBytes,
		descTxBytes, descRxPackets, descTxPackets, descEgress, descCPU, descCFSPeriods, descCFSThrottled,
		descCFSThrottledSeconds, descWorkingSet, descCgroups, descDrops, descOverflow, descLogFullDrops,
		descProgRunTime, descProgRunCount} {
		ch <- d
	}
	for i := range descPressureWaiting {
		ch <- descPressureWaiting[i]
		ch <- descPressureStalled[i]
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.stats != nil {
		stats, err := c.stats()
		if err != nil {
			c.log.Warn("read eBPF program statistics", "err", err)
		}
		for _, st := range stats {
			ch <- prometheus.MustNewConstMetric(descProgRunTime, prometheus.CounterValue, float64(st.RunTime)/1e9, st.Name)
			ch <- prometheus.MustNewConstMetric(descProgRunCount, prometheus.CounterValue, float64(st.RunCount), st.Name)
		}
	}
	s := c.latest()
	if s == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descCgroups, prometheus.GaugeValue, float64(len(s.Cgroups)))
	for prog, n := range s.Drops {
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(n), prog)
	}
	for prog, n := range s.Overflow {
		ch <- prometheus.MustNewConstMetric(descOverflow, prometheus.CounterValue, float64(n), prog)
	}
	for prog, n := range s.LogFullDrops {
		ch <- prometheus.MustNewConstMetric(descLogFullDrops, prometheus.CounterValue, float64(n), prog)
	}
	for i := range s.Cgroups {
		g := &s.Cgroups[i]
		t := &g.Totals
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, g.Path)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), g.Path)
		}
		gauge(descProcesses, float64(g.Processes))
		gauge(descRSS, float64(g.RSSBytes))
		gauge(descPageCache, float64(g.PageCacheBytes))
		if r, ok := g.HitRatio(); ok {
			gauge(descHitRatio, r)
		}
		counter(descPCAdded, t.PageCacheAddedBytes)
		counter(descPCEvicted, t.PageCacheEvictedBytes)
		counter(descPCAccessed, t.PageCacheAccesses)
		counter(descPCMissed, t.PageCacheMisses)
		counter(descRetransmits, t.Retransmits)
		counter(descRequests, t.Requests)
		counter(descRxBytes, t.RxBytes)
		counter(descTxBytes, t.TxBytes)
		counter(descRxPackets, t.RxPackets)
		counter(descTxPackets, t.TxPackets)
		for class, name := range TxClassNames {
			ch <- prometheus.MustNewConstMetric(descEgress, prometheus.CounterValue, float64(t.TxClassBytes[class]), g.Path, name)
		}
		seconds := func(d *prometheus.Desc, us uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(us)/1e6, g.Path)
		}
		seconds(descCPU, t.CPUUsageUsec)
		counter(descCFSPeriods, t.CPUPeriods)
		counter(descCFSThrottled, t.CPUThrottledPeriods)
		seconds(descCFSThrottledSeconds, t.CPUThrottledUsec)
		if g.PressureKnown {
			for i, p := range t.Pressure {
				seconds(descPressureWaiting[i], p.Some)
				seconds(descPressureStalled[i], p.Full)
			}
		}
		gauge(descWorkingSet, float64(g.MemoryWorkingSetBytes))
		ch <- latencyHistogram(descSRTT, &t.SRTT, g.Path)
		ch <- latencyHistogram(descConnect, &t.Connect, g.Path)
		// The log2 buckets of the request latency's log-linear ones: the
		// exported layout stays that of the other latencies.
		lat := t.RequestLatency.Log2()
		ch <- latencyHistogram(descRequestLatency, &lat, g.Path)
	}
}

// TxClassNames are the values of the class label of egress bytes, by
// class (probe.TxLoopback, ...).
var TxClassNames = [probe.TxClasses]string{probe.TxLoopback: "loopback", probe.TxCluster: "cluster", probe.TxInternet: "internet"}

// latencyHistogram converts a log2 microsecond histogram to a Prometheus
// histogram in seconds. Kernel bucket i holds [2^i, 2^(i+1)) µs, so it is
// counted in every exported bucket whose bound is at least 2^(i+1) µs.
func latencyHistogram(d *prometheus.Desc, h *histogram.Hist, label string) prometheus.Metric {
	buckets := make(map[float64]uint64, maxLe-minLe+1)
	var cum uint64
	i := 0
	for le := minLe; le <= maxLe; le++ {
		for ; i+1 <= le && i < histogram.Buckets; i++ {
			cum += h.Buckets[i]
		}
		buckets[math.Ldexp(1, le)/1e6] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, float64(h.Sum)/1e6, buckets, label)
}
