package report

import (
	"encoding/json"
	"io"
	"time"

	"github.com/pennyhq/penny/agent/sampler"
)

// Report is one sample as `penny local --json` prints it. The fields up to
// net_tx_bytes are the stable contract; later fields are additions.
type Report struct {
	Time            string   `json:"time"`
	IntervalSeconds float64  `json:"interval_seconds"`
	Cgroups         []Cgroup `json:"cgroups"`
}

// Cgroup is one cgroup's values. Gauges are as of the report's time;
// counters cover the interval; a null means there was no event in it.
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

	Processes             int   `json:"processes"`
	PageCacheAddedBytes   int64 `json:"page_cache_added_bytes"`
	PageCacheEvictedBytes int64 `json:"page_cache_evicted_bytes"`
}

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
		Processes:             c.Processes,
		PageCacheAddedBytes:   c.PageCacheAddedBytes,
		PageCacheEvictedBytes: c.PageCacheEvictedBytes,
	}
	if v, ok := c.HitRatio(); ok {
		out.PageCacheHitRatio = &v
	}
	out.TCPSRTTP50Seconds = quantileSeconds(c, 0.5, false)
	out.TCPSRTTP99Seconds = quantileSeconds(c, 0.99, false)
	out.TCPConnectP99Seconds = quantileSeconds(c, 0.99, true)
	return out
}

// quantileSeconds converts a microsecond histogram quantile to seconds.
func quantileSeconds(c *sampler.Cgroup, q float64, connect bool) *float64 {
	h := &c.SRTT
	if connect {
		h = &c.Connect
	}
	v, ok := h.Quantile(q)
	if !ok {
		return nil
	}
	v /= 1e6
	return &v
}

// WriteJSON writes the report as one line of JSON.
func WriteJSON(w io.Writer, s *sampler.Sample) error {
	return json.NewEncoder(w).Encode(FromSample(s))
}
