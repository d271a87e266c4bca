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
func seconds(h *histogram.Hist, q float64) *float64 {
	v, ok := h.Quantile(q)
	if !ok {
		return nil
	}
	v /= 1e6
	return &v
}
