package usage

import "github.com/pennyhq/penny/internal/histogram"

// Cgroup is one cgroup's values. Gauges are as of the sample's time;
// counters, the hit ratio and the quantiles cover an interval, and a null
// means there was no event in it. The fields up to net_tx_bytes are the
// stable contract; later fields are additions.
type Cgroup struct {
	Path                 string   `json:"path"`
	ID                   uint64   `json:"id"`
	RSSBytes             int64    `json:"rss_bytes"`
	PageCacheBytes       int64    `json:"page_cache_bytes"`
	PageCacheHitRatio    *float64 `json:"page_cache_hit_ratio"`
	TCPSRTTP50Seconds    *float64 `json:"tcp_srtt_p50_seconds"`
	TCPSRTTP99Seconds    *float64 `json:"tcp_srtt_p99_seconds"`
	TCPConnectP99Seconds *float64 `json:"tcp_connect_p99_seconds"`
	TCPRetransmits       uint64   `json:"tcp_retransmits"`
	NetRxBytes           uint64   `json:"net_rx_bytes"`
	NetTxBytes           uint64   `json:"net_tx_bytes"`

	Processes             int64 `json:"processes"`
	PageCacheAddedBytes   int64 `json:"page_cache_added_bytes"`
	PageCacheEvictedBytes int64 `json:"page_cache_evicted_bytes"`

	// CPU time of the cgroup's own tasks in the interval, and its CPU
	// limit's enforcement periods, those that ended throttled, and the
	// time throttled (zero without a limit).
	CPUUsageSeconds     float64 `json:"cpu_usage_seconds"`
	CPUPeriods          uint64  `json:"cpu_periods"`
	CPUThrottledPeriods uint64  `json:"cpu_throttled_periods"`
	CPUThrottledSeconds float64 `json:"cpu_throttled_seconds"`
	// Pressure stall "some" time in the interval: how long at least one of
	// the cgroup's tasks waited for CPU, memory or IO; null where the
	// kernel has no pressure stall information.
	CPUPressureSeconds    *float64 `json:"cpu_pressure_seconds"`
	MemoryPressureSeconds *float64 `json:"memory_pressure_seconds"`
	IOPressureSeconds     *float64 `json:"io_pressure_seconds"`
	// MemoryWorkingSetBytes is memory usage minus inactive file pages, as
	// kubelet and cAdvisor compute it.
	MemoryWorkingSetBytes int64 `json:"memory_working_set_bytes"`
	// The bytes of net_tx_bytes by destination: loopback, in-cluster
	// (private and link-local addresses) and internet (every other).
	NetTxLoopbackBytes uint64 `json:"net_tx_loopback_bytes"`
	NetTxClusterBytes  uint64 `json:"net_tx_cluster_bytes"`
	NetTxInternetBytes uint64 `json:"net_tx_internet_bytes"`

	// The cost rate: what the cgroup costs per hour if it goes on as over
	// the interval, and its CPU, memory and egress parts, in the pricing's
	// currency whatever the name says (docs/cost.md, "Cost rate now");
	// null where it cannot be priced.
	CostDollarsPerHour        *float64 `json:"cost_dollars_per_hour"`
	CPUCostDollarsPerHour     *float64 `json:"cpu_cost_dollars_per_hour"`
	MemoryCostDollarsPerHour  *float64 `json:"memory_cost_dollars_per_hour"`
	NetworkCostDollarsPerHour *float64 `json:"network_cost_dollars_per_hour"`

	// Requests the cgroup's server sockets answered in the interval, and
	// the median and 99th percentile of their latency, first byte in to
	// first byte of the response out; null without a timed request (see
	// docs/requests.md).
	Requests                 uint64   `json:"requests"`
	RequestLatencyP50Seconds *float64 `json:"request_latency_p50_seconds"`
	RequestLatencyP99Seconds *float64 `json:"request_latency_p99_seconds"`
}

// SetRequests sets the requests of the interval and their latency
// quantiles from a histogram of microseconds: a log-linear one
// (histogram.LogLinear), or the log2 one of an older agent.
func (c *Cgroup) SetRequests(n uint64, latency histogram.Quantiler) {
	c.Requests = n
	c.RequestLatencyP50Seconds = seconds(latency, 0.5)
	c.RequestLatencyP99Seconds = seconds(latency, 0.99)
}

// SetCost sets the cost rate from its CPU, memory and egress parts per
// hour; their sum is the total.
func (c *Cgroup) SetCost(cpu, memory, network float64) {
	v := &[4]float64{cpu + memory + network, cpu, memory, network} // one allocation, not four
	c.CostDollarsPerHour, c.CPUCostDollarsPerHour, c.MemoryCostDollarsPerHour, c.NetworkCostDollarsPerHour = &v[0], &v[1], &v[2], &v[3]
}

// ClearCost leaves the cost rate unknown (null).
func (c *Cgroup) ClearCost() {
	c.CostDollarsPerHour, c.CPUCostDollarsPerHour, c.MemoryCostDollarsPerHour, c.NetworkCostDollarsPerHour = nil, nil, nil, nil
}

// SetCPU sets the CPU fields from microseconds.
func (c *Cgroup) SetCPU(usageUsec, periods, throttledPeriods, throttledUsec uint64) {
	c.CPUUsageSeconds = float64(usageUsec) / 1e6
	c.CPUPeriods = periods
	c.CPUThrottledPeriods = throttledPeriods
	c.CPUThrottledSeconds = float64(throttledUsec) / 1e6
}

// SetPressure sets the "some" stall times of CPU, memory and IO from
// microseconds; when the kernel has no pressure stall information (known
// false) they stay null.
func (c *Cgroup) SetPressure(known bool, cpuUsec, memoryUsec, ioUsec uint64) {
	if !known {
		c.CPUPressureSeconds, c.MemoryPressureSeconds, c.IOPressureSeconds = nil, nil, nil
		return
	}
	sec := func(us uint64) *float64 {
		v := float64(us) / 1e6
		return &v
	}
	c.CPUPressureSeconds, c.MemoryPressureSeconds, c.IOPressureSeconds = sec(cpuUsec), sec(memoryUsec), sec(ioUsec)
}

// CPUCores is the CPU time of the interval per second of it: the cores the
// cgroup used on average; false without an interval.
func (c *Cgroup) CPUCores(intervalSeconds float64) (float64, bool) {
	if intervalSeconds <= 0 {
		return 0, false
	}
	return c.CPUUsageSeconds / intervalSeconds, true
}

// SetLatency fills the latency quantiles from histograms of microseconds:
// the smoothed RTTs and the connect times of the interval.
func (c *Cgroup) SetLatency(srtt, connect *histogram.Hist) {
	c.TCPSRTTP50Seconds = seconds(srtt, 0.5)
	c.TCPSRTTP99Seconds = seconds(srtt, 0.99)
	c.TCPConnectP99Seconds = seconds(connect, 0.99)
}

// SetHitRatio sets the page cache hit ratio from the interval's accesses
// and misses; with no access it stays null.
func (c *Cgroup) SetHitRatio(accesses, misses uint64) {
	if accesses == 0 {
		c.PageCacheHitRatio = nil
		return
	}
	r := 1 - float64(misses)/float64(accesses)
	r = min(max(r, 0), 1)
	c.PageCacheHitRatio = &r
}

// seconds is a quantile of a histogram of microseconds, in seconds; nil
// when the histogram is empty.
func seconds(h histogram.Quantiler, q float64) *float64 {
	v, ok := h.Quantile(q)
	if !ok {
		return nil
	}
	v /= 1e6
	return &v
}
