package custommetrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/kvraft"
)

// The resources metrics describe.
var (
	PodsResource       = schema.GroupResource{Resource: "pods"}
	NamespacesResource = schema.GroupResource{Resource: "namespaces"}
)

// Config configures the provider.
type Config struct {
	// Store is the replica values are read from.
	Store query.Store
	// Window is the span that counters, ratios and quantiles cover (30s,
	// at most model.MaxWindow).
	Window time.Duration
	// MaxStaleness bounds how far the local replica may lag behind the
	// cluster for it to answer (2s); a replica further behind reads through
	// the leader.
	MaxStaleness time.Duration
	// MaxAge is how old a value may be and still be served (2m): a pod
	// whose node stopped reporting (the agent or the node is down) has no
	// value rather than its last one, as a pod without data.
	MaxAge time.Duration
	// MaxSeries bounds the series one request reads (200000).
	MaxSeries int
	// Prices and MemoryMeasure price the containers for
	// cost_dollars_per_hour (query.Config; nil prices: OpenCost's
	// defaults). The aggregator passes its pricing watcher.
	Prices        query.Prices
	MemoryMeasure cost.MemoryMeasure
	// ExternalMetrics serves external.metrics.k8s.io too: the CostPolicy
	// decisions (ExternalDesiredReplicas).
	ExternalMetrics bool
	// Registerer receives penny_custom_metrics_*; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Window == 0 {
		c.Window = 30 * time.Second
	}
	if c.MaxStaleness == 0 {
		c.MaxStaleness = query.DefaultStaleness
	}
	if c.MaxSeries == 0 {
		c.MaxSeries = query.DefaultMaxSeries
	}
	if c.MaxAge == 0 {
		c.MaxAge = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("custom metrics: no store")
	}
	if c.Window < 0 || c.Window > model.MaxWindow {
		return fmt.Errorf("custom metrics: window %s must be positive and at most %s", c.Window, model.MaxWindow)
	}
	if c.MaxStaleness < 0 || c.MaxSeries < 0 || c.MaxAge < 0 {
		return errors.New("custom metrics: negative max staleness, max series or max age")
	}
	return nil
}

// unit says how a metric is served.
type unit struct {
	// integer: bytes and bytes per second, whole numbers; milli: CPU
	// cores, with milli precision (250m, as Kubernetes writes CPU);
	// otherwise seconds, ratios and costs with micro precision, so that
	// sub-millisecond latencies and a small pod's cost survive.
	integer, milli bool
	// instant: a gauge read at the sample time, not computed over a
	// window, so its window is 0 (as the API defines it).
	instant bool
}

// units lists every metric of package pods; a metric missing here is
// served with micro precision over the window.
var units = map[string]unit{
	pods.MemoryRSSBytes:       {integer: true, instant: true},
	pods.MemoryPageCacheBytes: {integer: true, instant: true},
	pods.PageCacheHitRatio:    {},
	pods.TCPSRTTP50Seconds:    {},
	pods.TCPSRTTP99Seconds:    {},
	pods.TCPConnectP99Seconds: {},
	pods.NetRxBytesPerSecond:  {integer: true},
	pods.NetTxBytesPerSecond:  {integer: true},
	pods.CPUUsageCores:        {milli: true},
	pods.CPUThrottledRatio:    {},
	// A count over the window; the rate keeps micro precision, for the
	// pods that serve less than one request a second.
	pods.Requests:                 {integer: true},
	pods.RequestsPerSecond:        {},
	pods.RequestLatencyP50Seconds: {},
	pods.RequestLatencyP99Seconds: {},
	// Dollars (the pricing's currency) per hour, to the micro-dollar: a
	// pod of 1 MiB costs about 4u at OpenCost's default prices.
	pods.CostDollarsPerHour: {},
	// Dollars per 1,000 requests, to the micro-dollar.
	pods.CostPer1kRequests: {},
}

// Provider is Penny's provider.CustomMetricsProvider.
type Provider struct {
	cfg       Config
	r         *query.Reader
	all       []provider.CustomMetricInfo
	freshness prometheus.Histogram
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

var _ provider.CustomMetricsProvider = (*Provider)(nil)

// NewProvider returns a provider reading cfg.Store and registers its
// metrics on cfg.Registerer.
func NewProvider(cfg Config) (*Provider, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := query.New(query.Config{Store: cfg.Store, MaxSeries: cfg.MaxSeries, Prices: cfg.Prices,
		MemoryMeasure: cfg.MemoryMeasure})
	if err != nil {
		return nil, fmt.Errorf("custom metrics: %w", err)
	}
	p := &Provider{
		cfg: cfg,
		r:   r,
		freshness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "penny_custom_metrics_freshness_seconds",
			Help:    "Age of each custom metrics value served: from the oldest kernel sample that went into it to the answer.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 10),
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "penny_custom_metrics_requests_total",
			Help: "Custom metrics API requests by resource (pods, namespaces, other) and result (ok, not_found, bad_request, error).",
		}, []string{"resource", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "penny_custom_metrics_request_duration_seconds",
			Help:    "Time the provider took to answer a custom metrics API request, by resource (pods, namespaces, other).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"resource"}),
	}
	// Every series from the start, errors included: a rate of errors is 0,
	// not absent, while nothing fails.
	for _, res := range []string{PodsResource.Resource, NamespacesResource.Resource, "other"} {
		for _, result := range []string{"ok", "not_found", "bad_request", "error"} {
			p.requests.WithLabelValues(res, result)
		}
	}
	for _, r := range []struct {
		gr         schema.GroupResource
		namespaced bool
	}{{PodsResource, true}, {NamespacesResource, false}} {
		for _, m := range pods.Metrics {
			p.all = append(p.all, provider.CustomMetricInfo{GroupResource: r.gr, Namespaced: r.namespaced, Metric: m.Name})
		}
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.freshness, p.requests, p.duration} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("custom metrics: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// ListAllMetrics implements provider.CustomMetricsProvider: every metric
// for pods (namespaced) and for namespaces (root-scoped). The list is the
// same whether or not data exists, as discovery should be.
func (p *Provider) ListAllMetrics() []provider.CustomMetricInfo {
	return append([]provider.CustomMetricInfo(nil), p.all...)
}

// GetMetricByName implements provider.CustomMetricsProvider: one pod's
// value, or one namespace's aggregate (name.Name is the namespace).
func (p *Provider) GetMetricByName(ctx context.Context, name types.NamespacedName, info provider.CustomMetricInfo,
	metricSelector labels.Selector) (_ *custom_metrics.MetricValue, err error) {
	defer func(start time.Time) { p.count(info, start, err) }(time.Now())
	m, err := p.resolve(info)
	if err != nil {
		return nil, err
	}
	sel, err := identifierSelector(metricSelector)
	if err != nil {
		return nil, err
	}
	notFound := provider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
	if name.Name == "" {
		return nil, notFound
	}
	var (
		obj  custom_metrics.ObjectReference
		vals pods.Values
	)
	q := pods.Query{MetricSelector: metricSelector}
	if info.GroupResource == PodsResource {
		q.Namespace, q.Name = name.Namespace, name.Name
		ps, err := p.pods(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			return nil, notFound
		}
		obj, vals = podRef(&ps[0]), ps[0].Values
	} else {
		q.Namespace = name.Name
		ns, err := p.namespaces(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(ns) == 0 {
			return nil, notFound
		}
		obj, vals = namespaceRef(ns[0].Name), ns[0].Values
	}
	v, ok := p.value(obj, m, sel, &vals)
	if !ok {
		return nil, notFound
	}
	return &v, nil
}

// GetMetricBySelector implements provider.CustomMetricsProvider: the pods
// of a namespace whose labels (as the agents reported them) match
// selector, or every namespace with data. The metric selector chooses the
// containers that count, by the labels container and node. Objects
// without a value for the metric are left out.
func (p *Provider) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector,
	info provider.CustomMetricInfo, metricSelector labels.Selector) (_ *custom_metrics.MetricValueList, err error) {
	defer func(start time.Time) { p.count(info, start, err) }(time.Now())
	m, err := p.resolve(info)
	if err != nil {
		return nil, err
	}
	if info.GroupResource == NamespacesResource && selector != nil && !selector.Empty() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("penny cannot select namespaces by label %q: it knows no namespace "+
			"labels, only the pod labels its agents report; ask for one namespace by name", selector.String()))
	}
	sel, err := identifierSelector(metricSelector)
	if err != nil {
		return nil, err
	}
	list := &custom_metrics.MetricValueList{Items: []custom_metrics.MetricValue{}}
	add := func(obj custom_metrics.ObjectReference, vals *pods.Values) {
		if v, ok := p.value(obj, m, sel, vals); ok {
			list.Items = append(list.Items, v)
		}
	}
	if info.GroupResource == PodsResource {
		ps, err := p.pods(ctx, pods.Query{Namespace: namespace, Selector: selector, MetricSelector: metricSelector})
		if err != nil {
			return nil, err
		}
		for i := range ps {
			add(podRef(&ps[i]), &ps[i].Values)
		}
		return list, nil
	}
	ns, err := p.namespaces(ctx, pods.Query{MetricSelector: metricSelector})
	if err != nil {
		return nil, err
	}
	for i := range ns {
		add(namespaceRef(ns[i].Name), &ns[i].Values)
	}
	return list, nil
}

// resolve returns the metric info asks for, or the API's not-found error
// for a resource or metric Penny does not serve.
func (p *Provider) resolve(info provider.CustomMetricInfo) (pods.Metric, error) {
	m, ok := pods.Lookup(info.Metric)
	served := info.GroupResource == PodsResource && info.Namespaced ||
		info.GroupResource == NamespacesResource && !info.Namespaced
	if !ok || !served {
		return pods.Metric{}, provider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	return m, nil
}

// request is the read of every custom metrics request: the local replica,
// no staler than the configured bound, over the window.
func (p *Provider) request(q pods.Query) query.Request {
	return query.Request{Window: p.cfg.Window, Pods: q,
		Read: kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: p.cfg.MaxStaleness}}
}

// pods returns the pods q selects, the newest of each name.
func (p *Provider) pods(ctx context.Context, q pods.Query) ([]pods.Pod, error) {
	res, err := p.r.Pods(ctx, p.request(q))
	if err != nil {
		return nil, p.readError(err)
	}
	return newest(res.Pods), nil
}

// namespaces returns the namespaces of the pods q selects.
func (p *Provider) namespaces(ctx context.Context, q pods.Query) ([]pods.Namespace, error) {
	res, err := p.r.Namespaces(ctx, p.request(q))
	if err != nil {
		return nil, p.readError(err)
	}
	return res.Namespaces, nil
}

// readError turns a failed read into the API's error.
func (p *Provider) readError(err error) error {
	p.cfg.Logger.Warn("custom metrics read failed", "err", err)
	if errors.Is(err, kvraft.ErrTooLarge) {
		return apierrors.NewInternalError(fmt.Errorf("read series: %w", err))
	}
	// Unavailable: the HPA leaves the scale as it is and asks again.
	return apierrors.NewServiceUnavailable(fmt.Sprintf("penny: read series: %v", err))
}

// value turns one metric of vals into an API value; false when vals has
// no data for it.
func (p *Provider) value(obj custom_metrics.ObjectReference, m pods.Metric, sel *metav1.LabelSelector,
	vals *pods.Values) (custom_metrics.MetricValue, bool) {
	x, ok := vals.Metrics[m.Name]
	if !ok || math.IsNaN(x) || math.IsInf(x, 0) || time.Since(vals.Time) > p.cfg.MaxAge {
		return custom_metrics.MetricValue{}, false
	}
	u := units[m.Name]
	var window int64
	if !u.instant {
		window = int64(math.Ceil(vals.WindowSeconds))
	}
	p.freshness.Observe(time.Since(vals.Time).Seconds())
	return custom_metrics.MetricValue{
		DescribedObject: obj,
		Metric:          custom_metrics.MetricIdentifier{Name: m.Name, Selector: sel},
		Timestamp:       metav1.NewTime(vals.Time),
		WindowSeconds:   &window,
		Value:           quantity(u, x),
	}, true
}

// quantity is x as a resource quantity: whole numbers for bytes and
// rates, milli precision for cores, micro precision for seconds and
// ratios.
func quantity(u unit, x float64) resource.Quantity {
	if u.integer {
		return *resource.NewQuantity(toInt64(math.Round(x)), resource.DecimalSI)
	}
	if u.milli {
		return *resource.NewScaledQuantity(toInt64(math.Round(x*1e3)), resource.Milli)
	}
	return *resource.NewScaledQuantity(toInt64(math.Round(x*1e6)), resource.Micro)
}

// toInt64 converts a whole number, saturating at the int64 range.
func toInt64(x float64) int64 {
	switch {
	case x >= math.MaxInt64:
		return math.MaxInt64
	case x <= math.MinInt64:
		return math.MinInt64
	}
	return int64(x)
}

// identifierSelector is the metric selector as the values' metric
// identifier carries it; nil when it selects everything. Equality becomes
// matchLabels, as metav1.ParseToLabelSelector makes it; != becomes NotIn,
// which that function refuses. Numeric comparisons (gt, lt) have no
// LabelSelector form and are refused.
func identifierSelector(s labels.Selector) (*metav1.LabelSelector, error) {
	if s == nil || s.Empty() {
		return nil, nil
	}
	reqs, selectable := s.Requirements()
	if !selectable {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("metric selector %q selects nothing", s.String()))
	}
	ls := &metav1.LabelSelector{}
	for _, r := range reqs {
		values := r.Values().List()
		var op metav1.LabelSelectorOperator
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			if _, dup := ls.MatchLabels[r.Key()]; !dup && len(values) == 1 {
				if ls.MatchLabels == nil {
					ls.MatchLabels = map[string]string{}
				}
				ls.MatchLabels[r.Key()] = values[0]
				continue
			}
			op = metav1.LabelSelectorOpIn
		case selection.In:
			op = metav1.LabelSelectorOpIn
		case selection.NotEquals, selection.NotIn:
			op = metav1.LabelSelectorOpNotIn
		case selection.Exists:
			op, values = metav1.LabelSelectorOpExists, nil
		case selection.DoesNotExist:
			op, values = metav1.LabelSelectorOpDoesNotExist, nil
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("metric selector %q: operator %q is not supported: "+
				"the labels container and node are names", s.String(), r.Operator()))
		}
		ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{Key: r.Key(), Operator: op, Values: values})
	}
	return ls, nil
}

// newest keeps, of pods with the same namespace and name (a pod deleted
// and created again, whose old series have not expired yet), the one
// sampled last. ps is sorted by namespace and name.
func newest(ps []pods.Pod) []pods.Pod {
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Namespace == p.Namespace && out[n-1].Name == p.Name {
			if p.Time.After(out[n-1].Time) {
				out[n-1] = p
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

func podRef(p *pods.Pod) custom_metrics.ObjectReference {
	return custom_metrics.ObjectReference{Kind: "Pod", APIVersion: "/v1", Namespace: p.Namespace, Name: p.Name, UID: types.UID(p.UID)}
}

func namespaceRef(name string) custom_metrics.ObjectReference {
	return custom_metrics.ObjectReference{Kind: "Namespace", APIVersion: "/v1", Name: name}
}

// count records one request's outcome.
func (p *Provider) count(info provider.CustomMetricInfo, start time.Time, err error) {
	res := "other"
	switch info.GroupResource {
	case PodsResource, NamespacesResource:
		res = info.GroupResource.Resource
	}
	result := "error"
	switch {
	case err == nil:
		result = "ok"
	case apierrors.IsNotFound(err):
		result = "not_found"
	case apierrors.IsBadRequest(err):
		result = "bad_request"
	}
	p.requests.WithLabelValues(res, result).Inc()
	p.duration.WithLabelValues(res).Observe(time.Since(start).Seconds())
}
