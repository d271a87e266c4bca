package admission

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the webhook's Prometheus metrics.
type Metrics struct {
	admissions *prometheus.CounterVec
	duration   prometheus.Histogram
	stamped    *prometheus.CounterVec
	reloads    *prometheus.CounterVec
}

// NewMetrics registers the webhook's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "penny_webhook_admissions_total",
			Help: "Admission reviews answered, by result: patched, unchanged (every label there or no source gave one), " +
				"ignored (not a pod CREATE), namespace_unavailable (not stamped), refused (not a valid review).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "penny_webhook_admission_duration_seconds",
			Help:    "Time to answer an admission review, from its first byte read to the answer written.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}),
		stamped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "penny_webhook_labels_stamped_total",
			Help: "Labels stamped on pods, by label key and by the kind of source that gave the value.",
		}, []string{"label", "source"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "penny_webhook_rules_reloads_total",
			Help: "Reads of the rules file, by result: ok, or refused (the last good rules stay in force).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.admissions, m.duration, m.stamped, m.reloads)
	for _, r := range []string{resultPatched, resultUnchanged, resultIgnored, resultNoNamespace, resultRefused} {
		m.admissions.WithLabelValues(r)
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("refused")
	return m
}

func (m *Metrics) observe(result string, d time.Duration) {
	m.admissions.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
}
