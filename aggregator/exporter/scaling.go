package exporter

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/kvraft"
)

// maxDecisions bounds the decisions one scrape reads.
const maxDecisions = 10_000

var policyLabels = []string{"namespace", "costpolicy"}

var (
	descDesired = prometheus.NewDesc("penny_costpolicy_desired_replicas",
		"The replicas a CostPolicy's last decision asked its target for (what its HPA reads as penny_desired_replicas).",
		append(policyLabels[:2:2], "target_kind", "target_name"), nil)
	descDecided = prometheus.NewDesc("penny_costpolicy_decision_timestamp_seconds",
		"When a CostPolicy's leader last decided.", policyLabels, nil)
	descReason = prometheus.NewDesc("penny_costpolicy_decision_reason",
		"The reason of a CostPolicy's last decision (its Decided condition's), as a label; always 1.",
		append(policyLabels[:2:2], "reason"), nil)
	descObjective = prometheus.NewDesc("penny_costpolicy_objective_seconds",
		"A CostPolicy's latency objective: the highest value of its metric that meets it.",
		append(policyLabels[:2:2], "metric"), nil)
)

func describeScaling(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDesired, descDecided, descReason, descObjective} {
		ch <- d
	}
}

// collectScaling exposes the cost policies' last decisions, as the
// leader wrote them to the store: the replicas decided (to set beside
// the workload's pods), when and why, and the objective (to set beside
// the request latency). A record that does not decode is skipped.
func (c *Collector) collectScaling(ctx context.Context, ch chan<- prometheus.Metric) {
	res, err := c.store.Range(ctx, kvraft.RangeRequest{Prefix: []byte(costpolicy.DecisionPrefix), Limit: maxDecisions},
		kvraft.ReadOptions{Consistency: kvraft.Eventual})
	if err != nil {
		c.errors.Inc()
		c.log.Warn("metrics scrape could not read the scaling decisions", "err", err)
		return
	}
	for _, kv := range res.Items {
		ns, name, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), costpolicy.DecisionPrefix), "/")
		var r costpolicy.Record
		if !ok || json.Unmarshal(kv.Value, &r) != nil || r.Replicas < 0 {
			c.log.Debug("decision record not read", "key", string(kv.Key))
			continue
		}
		// The store takes any key an admin writes: a label that is not
		// valid UTF-8 leaves the record out, never fails the scrape.
		ms := make([]prometheus.Metric, 0, 4)
		add := func(d *prometheus.Desc, v float64, labels ...string) {
			if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...); err == nil {
				ms = append(ms, m)
			}
		}
		add(descDesired, float64(r.Replicas), ns, name, r.TargetKind, r.TargetName)
		add(descDecided, float64(r.Time.UnixMilli())/1e3, ns, name)
		add(descReason, 1, ns, name, r.Reason)
		want := 3
		if r.ObjectiveMetric != "" {
			add(descObjective, r.ObjectiveSeconds, ns, name, r.ObjectiveMetric)
			want++
		}
		if len(ms) != want {
			c.log.Debug("decision record with labels that are not valid UTF-8", "key", string(kv.Key))
			continue
		}
		for _, m := range ms {
			ch <- m
		}
	}
}
