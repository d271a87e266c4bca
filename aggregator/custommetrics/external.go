package custommetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/kvraft"
)

// ExternalDesiredReplicas is the external metric of CostPolicy decisions:
// one value per policy of the namespace, labelled costpolicy=<name>, the
// replicas the leader decided. An HPA carries a decision out with an
// External metric of this name, the selector costpolicy=<name> and an
// AverageValue target of 1.
const ExternalDesiredReplicas = "penny_desired_replicas"

// LabelCostPolicy labels each decision with its policy's name.
const LabelCostPolicy = "costpolicy"

// maxDecisions bounds the decisions one request reads.
const maxDecisions = 10000

var _ provider.ExternalMetricsProvider = (*Provider)(nil)

// ListAllExternalMetrics implements provider.ExternalMetricsProvider.
func (p *Provider) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	return []provider.ExternalMetricInfo{{Metric: ExternalDesiredReplicas}}
}

// GetExternalMetric implements provider.ExternalMetricsProvider: the
// decisions of the namespace's CostPolicies that the selector matches,
// from this replica's store within the staleness bound.
func (p *Provider) GetExternalMetric(ctx context.Context, namespace string, sel labels.Selector,
	info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	if info.Metric != ExternalDesiredReplicas {
		return nil, provider.NewMetricNotFoundError(schema.GroupResource{Group: "external.metrics.k8s.io"}, info.Metric)
	}
	if sel == nil {
		sel = labels.Everything()
	}
	prefix := []byte(costpolicy.DecisionPrefix + namespace + "/")
	res, err := p.cfg.Store.Range(ctx, kvraft.RangeRequest{Prefix: prefix, Limit: maxDecisions},
		kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: p.cfg.MaxStaleness})
	if err != nil {
		return nil, fmt.Errorf("read decisions: %w", err)
	}
	out := &external_metrics.ExternalMetricValueList{}
	for _, kv := range res.Items {
		name := strings.TrimPrefix(string(kv.Key), string(prefix))
		l := map[string]string{LabelCostPolicy: name}
		if !sel.Matches(labels.Set(l)) {
			continue
		}
		var rec costpolicy.Record
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			p.cfg.Logger.Warn("decision not decoded", "key", string(kv.Key), "err", err)
			continue
		}
		out.Items = append(out.Items, external_metrics.ExternalMetricValue{MetricName: ExternalDesiredReplicas, MetricLabels: l,
			Timestamp: metav1.NewTime(rec.Time), Value: *resource.NewQuantity(int64(rec.Replicas), resource.DecimalSI)})
	}
	return out, nil
}
