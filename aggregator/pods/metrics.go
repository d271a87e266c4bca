package pods

import (
	"github.com/pennyhq/penny/aggregator/model"
)

// The metrics of a pod or namespace.
const (
	MemoryRSSBytes       = "memory_rss_bytes"
	MemoryPageCacheBytes = "memory_page_cache_bytes"
	PageCacheHitRatio    = "page_cache_hit_ratio"
	TCPSRTTP50Seconds    = "tcp_srtt_p50_seconds"
	TCPSRTTP99Seconds    = "tcp_srtt_p99_seconds"
	TCPConnectP99Seconds = "tcp_connect_p99_seconds"
	NetRxBytesPerSecond  = "net_rx_bytes_per_second"
	NetTxBytesPerSecond  = "net_tx_bytes_per_second"
	CPUUsageCores        = "cpu_usage_cores"
	CPUThrottledRatio    = "cpu_throttled_ratio"
	// Requests the containers' server sockets answered over the window,
	// per second, and the worst container's latency quantiles (first
	// byte in to first byte of the response out; docs/requests.md).
	Requests                 = "requests"
	RequestsPerSecond        = "requests_per_second"
	RequestLatencyP50Seconds = "request_latency_p50_seconds"
	RequestLatencyP99Seconds = "request_latency_p99_seconds"
	// CostDollarsPerHour is in the pricing's currency, whatever its name
	// says.
	CostDollarsPerHour = "cost_dollars_per_hour"
	// CostPer1kRequests is what 1,000 of the requests answered over the
	// window cost, at the cost per hour of the same window: the pods'
	// cost per hour over their request rate, summed first (a namespace's
	// is its pods' total cost over their total rate). Absent without
	// requests.
	CostPer1kRequests = "cost_per_1k_requests"
)

// Rule says how containers' values combine into a pod's, and pods' into a
// namespace's.
type Rule uint8

// Rules.
const (
	// Sum adds the values: bytes and rates.
	Sum Rule = iota + 1
	// Max takes the highest value: latencies and the throttled ratio,
	// where higher is worse.
	Max
	// Min takes the lowest value: the hit ratio, where lower is worse.
	Min
)

// Metric is one metric a pod or namespace has.
type Metric struct {
	Name string
	Rule Rule
	Help string
	// value is a container's value; ok is false when it has no data.
	value func(c *model.Container) (v float64, ok bool)
	// derive, when set, computes the metric from the others of a pod or
	// namespace once they are combined (Rule and value are not used).
	derive func(m map[string]float64) (v float64, ok bool)
}

// Metrics lists every metric, in the order tables print them.
var Metrics = []Metric{
	{Name: CPUUsageCores, Rule: Sum, Help: "CPU time per second over the window (cores), summed over the containers",
		value: func(c *model.Container) (float64, bool) { return c.CPUCores(c.WindowSeconds) }},
	{Name: CPUThrottledRatio, Rule: Max, Help: "share of the CPU limit's periods that ended throttled over the window, worst container",
		value: func(c *model.Container) (float64, bool) { return c.CPUThrottledRatio() }},
	{Name: MemoryRSSBytes, Rule: Sum, Help: "resident memory (anonymous and shared memory pages), bytes",
		value: func(c *model.Container) (float64, bool) { return float64(c.RSSBytes), true }},
	{Name: MemoryPageCacheBytes, Rule: Sum, Help: "file page cache charged to the containers, bytes",
		value: func(c *model.Container) (float64, bool) { return float64(c.PageCacheBytes), true }},
	{Name: PageCacheHitRatio, Rule: Min, Help: "page cache hits per access over the window, worst container",
		value: func(c *model.Container) (float64, bool) { return deref(c.PageCacheHitRatio) }},
	{Name: TCPSRTTP50Seconds, Rule: Max, Help: "median smoothed TCP round-trip time over the window, worst container",
		value: func(c *model.Container) (float64, bool) { return deref(c.TCPSRTTP50Seconds) }},
	{Name: TCPSRTTP99Seconds, Rule: Max, Help: "99th percentile smoothed TCP round-trip time over the window, worst container",
		value: func(c *model.Container) (float64, bool) { return deref(c.TCPSRTTP99Seconds) }},
	{Name: TCPConnectP99Seconds, Rule: Max, Help: "99th percentile TCP connect time over the window, worst container",
		value: func(c *model.Container) (float64, bool) { return deref(c.TCPConnectP99Seconds) }},
	{Name: NetRxBytesPerSecond, Rule: Sum, Help: "TCP bytes received per second over the window",
		value: func(c *model.Container) (float64, bool) { return rate(c.NetRxBytes, c.WindowSeconds) }},
	{Name: NetTxBytesPerSecond, Rule: Sum, Help: "TCP bytes sent per second over the window",
		value: func(c *model.Container) (float64, bool) { return rate(c.NetTxBytes, c.WindowSeconds) }},
	{Name: Requests, Rule: Sum, Help: "requests the containers' server sockets answered over the window",
		value: func(c *model.Container) (float64, bool) { return float64(c.Requests), true }},
	{Name: RequestsPerSecond, Rule: Sum, Help: "requests the containers' server sockets answered per second over the window",
		value: func(c *model.Container) (float64, bool) { return rate(c.Requests, c.WindowSeconds) }},
	{Name: RequestLatencyP50Seconds, Rule: Max, Help: "median request latency (first byte in to first byte of the response out) over the window, worst container",
		value: func(c *model.Container) (float64, bool) { return deref(c.RequestLatencyP50Seconds) }},
	{Name: RequestLatencyP99Seconds, Rule: Max, Help: "99th percentile request latency over the window, worst container",
		value: func(c *model.Container) (float64, bool) { return deref(c.RequestLatencyP99Seconds) }},
	{Name: CostDollarsPerHour, Rule: Sum, Help: "cost per hour at the node's prices, as the containers went over the window: " +
		"max(request, usage) of CPU and memory, and egress (docs/cost.md)",
		value: func(c *model.Container) (float64, bool) { return deref(c.CostDollarsPerHour) }},
	{Name: CostPer1kRequests, Help: "cost of 1,000 requests: the cost per hour over the requests per second (times 3.6), of the pods summed first",
		derive: func(m map[string]float64) (float64, bool) {
			cost, ok1 := m[CostDollarsPerHour]
			rps, ok2 := m[RequestsPerSecond]
			if !ok1 || !ok2 || rps <= 0 {
				return 0, false
			}
			return cost / (rps * 3.6), true
		}},
}

// Lookup returns the metric called name.
func Lookup(name string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

// rate is n (bytes, requests) per second over a window; no window, no
// rate.
func rate(n uint64, window float64) (float64, bool) {
	if window <= 0 {
		return 0, false
	}
	return float64(n) / window, true
}

// combine folds v into the accumulated value acc (ok when acc holds one).
func (r Rule) combine(acc float64, ok bool, v float64) float64 {
	switch {
	case !ok:
		return v
	case r == Sum:
		return acc + v
	case r == Max:
		return max(acc, v)
	default:
		return min(acc, v)
	}
}
