package exporter

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/kvraft"
)

var labels = []string{"node", "cgroup"}

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("penny_container_"+name, help, labels, nil)
}

var (
	descRSS       = desc("memory_rss_bytes", "Resident memory of the cgroup's processes.")
	descPageCache = desc("page_cache_bytes", "File page cache charged to the cgroup.")
	descHitRatio  = desc("page_cache_hit_ratio", "Page cache hit ratio over the agent's last interval.")
	descSRTT50    = desc("tcp_srtt_p50_seconds", "Median smoothed TCP RTT over the agent's last interval.")
	descSRTT99    = desc("tcp_srtt_p99_seconds", "99th percentile smoothed TCP RTT over the agent's last interval.")
	descConnect99 = desc("tcp_connect_p99_seconds", "99th percentile TCP connect latency over the agent's last interval.")
	descRetrans   = desc("tcp_retransmits_total", "TCP segments retransmitted since the agent started.")
	descRx        = desc("network_receive_bytes_total", "IP bytes received since the agent started.")
	descTx        = desc("network_transmit_bytes_total", "IP bytes sent since the agent started.")
	descPCAdded   = desc("page_cache_added_bytes_total", "Page cache bytes added since the agent started.")
	descPCEvicted = desc("page_cache_evicted_bytes_total", "Page cache bytes evicted since the agent started.")
	descUpdated   = desc("updated_timestamp_seconds", "When the values were last current: the sample time of the node's last frame.")
)

// Collector reads every container from the local replica (eventual
// consistency: a scrape never waits for the leader) when scraped.
type Collector struct {
	store   gateway.Store
	timeout time.Duration
	log     *slog.Logger
	errors  prometheus.Counter
}

// NewCollector returns a collector of the containers in store.
func NewCollector(store gateway.Store, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{store: store, timeout: 5 * time.Second, log: log,
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_container_scrape_errors_total",
			Help: "Scrapes that could not read the store."})}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRSS, descPageCache, descHitRatio, descSRTT50, descSRTT99, descConnect99,
		descRetrans, descRx, descTx, descPCAdded, descPCEvicted, descUpdated, c.errors.Desc()} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	defer func() { ch <- c.errors }()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, err := c.store.Range(ctx, kvraft.RangeRequest{Prefix: model.AllNodesPrefix()},
		kvraft.ReadOptions{Consistency: kvraft.Eventual})
	if err != nil {
		c.errors.Inc()
		c.log.Warn("metrics scrape could not read the store", "err", err)
		return
	}
	agents := map[string]*model.Agent{}
	for _, kv := range res.Items {
		if node, kind, _, err := model.ParseKey(kv.Key); err == nil && kind == model.KindAgent {
			if a, err := model.DecodeAgent(kv.Value); err == nil {
				agents[node] = a
			}
		}
	}
	for _, kv := range res.Items {
		node, kind, _, err := model.ParseKey(kv.Key)
		if err != nil || kind != model.KindSeries {
			continue
		}
		s, err := model.DecodeStored(kv.Value)
		if err != nil {
			c.log.Warn("undecodable series in the store", "key", string(kv.Key), "err", err)
			continue
		}
		v := model.View(node, agents[node], s, 0)
		gauge := func(d *prometheus.Desc, x float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, node, s.Path)
		}
		counter := func(d *prometheus.Desc, x uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(x), node, s.Path)
		}
		gauge(descRSS, float64(v.RSSBytes))
		gauge(descPageCache, float64(v.PageCacheBytes))
		for _, q := range []struct {
			d *prometheus.Desc
			v *float64
		}{{descHitRatio, v.PageCacheHitRatio}, {descSRTT50, v.TCPSRTTP50Seconds}, {descSRTT99, v.TCPSRTTP99Seconds},
			{descConnect99, v.TCPConnectP99Seconds}} {
			if q.v != nil {
				gauge(q.d, *q.v)
			}
		}
		counter(descRetrans, s.Total.Retransmits)
		counter(descRx, s.Total.RxBytes)
		counter(descTx, s.Total.TxBytes)
		counter(descPCAdded, s.Total.PageCacheAddedBytes)
		counter(descPCEvicted, s.Total.PageCacheEvictedBytes)
		if t, err := time.Parse(time.RFC3339Nano, v.Updated); err == nil {
			gauge(descUpdated, float64(t.UnixNano())/1e9)
		}
	}
}
