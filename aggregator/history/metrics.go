package history

import (
	"github.com/prometheus/client_golang/prometheus"
)

// kindFinal labels the final records of series in deleted_records_total.
const kindFinal = "final"

type metrics struct {
	minutes   prometheus.Counter
	errors    prometheus.Counter
	conflicts prometheus.Counter
	compacted prometheus.Counter
	deleted   *prometheus.CounterVec
	bytes     *prometheus.GaugeVec
	lag       prometheus.Gauge
	// Quota pressure (pressure.go).
	pressureHours prometheus.Counter
	pressure      prometheus.Gauge
}

func newMetrics() metrics {
	m := metrics{
		minutes: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_history_minutes_rolled_total",
			Help: "Node-minutes rolled up into the history (a span rolled late counts each of its minutes)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_history_roll_errors_total",
			Help: "Rolls and compactions of a node that failed (they are retried the next minute or pass)."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_history_roll_conflicts_total",
			Help: "Rolls of a node whose condition failed (a frame or another roller came first) and were read again."}),
		compacted: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_history_compacted_hours_total",
			Help: "Node-hours whose minute records were compacted into their hour record."}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_history_deleted_records_total",
			Help: "History records deleted, by kind: compacted minutes, expired hours, identities and cursors, final records rolled up."},
			[]string{"kind"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "penny_history_store_bytes",
			Help: "Bytes of keys and values the history holds in the store, by kind, as of the last compaction pass."},
			[]string{"kind"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_history_roll_lag_seconds",
			Help: "How long after the end of the span it covered the last roll committed (the most behind node of the pass)."}),
		pressureHours: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_history_pressure_compacted_hours_total",
			Help: "Node-hours whose minutes were compacted before --history-minute-retention because the store neared its quota."}),
		pressure: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_history_quota_pressure",
			Help: "1 while the store stays over 80% of its quota with only the last hour of minutes left: raise the quota or shorten the hour retention."}),
	}
	for _, k := range []string{KindMinute, KindHour, KindIdentity, KindCursor, kindFinal} {
		m.deleted.WithLabelValues(k)
	}
	for _, k := range kindPrefixes {
		m.bytes.WithLabelValues(k.kind)
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.minutes, m.errors, m.conflicts, m.compacted, m.deleted, m.bytes, m.lag, m.pressureHours, m.pressure} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
