package custommetrics_test

import (
	"context"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/pennyhq/penny/aggregator/custommetrics"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/query/querytest"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/kvraft"
)

const (
	MiB = querytest.MiB
	GiB = querytest.GiB
)

// world is a store holding the fixture, and the containers it holds as
// every reader reads them, to compute the expected latencies from.
type world struct {
	store *kvraft.Node
	base  time.Time
	cs    []model.Container
	// prices, if set, price the containers (default: OpenCost's).
	prices query.Prices
}

func newWorld(t *testing.T) *world {
	t.Helper()
	n := kvtest.Start(t)
	base := time.Now().Truncate(time.Second).Add(-time.Minute)
	querytest.Write(t, n, base)
	r, err := query.New(query.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Containers(context.Background(), query.Request{Window: 30 * time.Second,
		Read: kvraft.ReadOptions{Consistency: kvraft.Linearizable}})
	if err != nil {
		t.Fatal(err)
	}
	return &world{store: n, base: base, cs: res.Containers}
}

// latency returns one container's latency quantile, in seconds.
func (w *world) latency(t *testing.T, path string, field func(*model.Container) *float64) float64 {
	t.Helper()
	for i := range w.cs {
		if c := &w.cs[i]; c.Path == path {
			if v := field(c); v != nil {
				return *v
			}
			t.Fatalf("%s has no latency", path)
		}
	}
	t.Fatalf("no container %s", path)
	return 0
}

func p99(c *model.Container) *float64        { return c.TCPSRTTP99Seconds }
func requestP99(c *model.Container) *float64 { return c.RequestLatencyP99Seconds }
func p50(c *model.Container) *float64        { return c.TCPSRTTP50Seconds }
func connectP99(c *model.Container) *float64 { return c.TCPConnectP99Seconds }

func newProvider(t *testing.T, w *world, reg prometheus.Registerer) *custommetrics.Provider {
	t.Helper()
	p, err := custommetrics.NewProvider(custommetrics.Config{Store: w.store, Prices: w.prices, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func podInfo(metric string) provider.CustomMetricInfo {
	return provider.CustomMetricInfo{GroupResource: custommetrics.PodsResource, Namespaced: true, Metric: metric}
}

func namespaceInfo(metric string) provider.CustomMetricInfo {
	return provider.CustomMetricInfo{GroupResource: custommetrics.NamespacesResource, Metric: metric}
}

func selector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// served is what a test expects of one value.
type served struct {
	kind, namespace, name string
	value                 float64
	at                    time.Duration // sample time after the fixture's base
	window                int64
}

// check compares a value with what is expected of it; sel is the metric
// selector the request carried.
func check(t *testing.T, w *world, got *custom_metrics.MetricValue, metric, sel string, want served) {
	t.Helper()
	obj := custom_metrics.ObjectReference{Kind: want.kind, APIVersion: "/v1", Namespace: want.namespace, Name: want.name}
	if want.kind == "Pod" {
		obj.UID = types.UID("uid-" + want.name)
	}
	if got.DescribedObject != obj {
		t.Errorf("described object %+v, want %+v", got.DescribedObject, obj)
	}
	if got.Metric.Name != metric {
		t.Errorf("metric name %q, want %q", got.Metric.Name, metric)
	}
	checkSelector(t, w, got.Metric.Selector, sel)
	if at := w.base.Add(want.at); !got.Timestamp.Time.Equal(at) {
		t.Errorf("timestamp %s, want %s (base+%s)", got.Timestamp.Time, at, want.at)
	}
	if got.WindowSeconds == nil || *got.WindowSeconds != want.window {
		t.Errorf("window %v, want %d", got.WindowSeconds, want.window)
	}
	if v, wv := got.Value.ScaledValue(resource.Micro), int64(math.Round(want.value*1e6)); v != wv {
		t.Errorf("value %s (%du), want %v (%du)", got.Value.String(), v, want.value, wv)
	}
}

// checkSelector checks that the metric selector a value carries selects the
// fixture's containers that the request's selector sel does.
func checkSelector(t *testing.T, w *world, got *metav1.LabelSelector, sel string) {
	t.Helper()
	if sel == "" {
		if got != nil {
			t.Errorf("metric selector %v, want none", got)
		}
		return
	}
	if got == nil {
		t.Errorf("no metric selector, want %q", sel)
		return
	}
	back, err := metav1.LabelSelectorAsSelector(got)
	if err != nil {
		t.Fatalf("metric selector %v: %v", got, err)
	}
	want := selector(t, sel)
	for _, c := range w.cs {
		if c.Kubernetes == nil {
			continue
		}
		set := labels.Set{pods.LabelContainer: c.Kubernetes.Container.Name, pods.LabelNode: c.Node}
		if back.Matches(set) != want.Matches(set) {
			t.Errorf("metric selector %v (%s) and %q disagree on %v", got, back, sel, set)
		}
	}
}

func TestListAllMetrics(t *testing.T) {
	p := newProvider(t, newWorld(t), nil)
	got := p.ListAllMetrics()
	var want []provider.CustomMetricInfo
	for _, m := range pods.Metrics {
		want = append(want, podInfo(m.Name))
	}
	for _, m := range pods.Metrics {
		want = append(want, namespaceInfo(m.Name))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListAllMetrics:\n%v\nwant\n%v", got, want)
	}
	if len(got) != 32 {
		t.Fatalf("%d metrics, want 16 for pods and 16 for namespaces", len(got))
	}
}

func TestGetMetricByName(t *testing.T) {
	w := newWorld(t)
	p := newProvider(t, w, nil)
	web1P99 := w.latency(t, "/kubepods/web-1/app", p99)
	dbP99 := w.latency(t, "/kubepods/db-0/db", p99)
	web2P50 := w.latency(t, "/kubepods/web-2/app", p50)
	dbConnect := w.latency(t, "/kubepods/db-0/db", connectP99)
	web2Requests := w.latency(t, "/kubepods/web-2/app", requestP99)
	if web1P99 <= 0 || web1P99 >= 1e-3 || dbP99 <= web1P99 {
		t.Fatalf("fixture latencies: web-1 p99 %v, db-0 p99 %v", web1P99, dbP99)
	}
	const ns, pod = "Namespace", "Pod"
	tests := []struct {
		name     string
		info     provider.CustomMetricInfo
		obj      types.NamespacedName
		sel      string // metric selector
		want     served
		notFound string // a not-found error containing this
	}{
		{"pod sums its containers' memory", podInfo(pods.MemoryRSSBytes), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "",
			served{pod, "shop", "web-1", 110 * MiB, 20 * time.Second, 0}, ""},
		{"metric selector counts one container", podInfo(pods.MemoryRSSBytes), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "container=app",
			served{pod, "shop", "web-1", 100 * MiB, 20 * time.Second, 0}, ""},
		{"metric selector by node", podInfo(pods.MemoryRSSBytes), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "node=node-a,container!=app",
			served{pod, "shop", "web-1", 10 * MiB, 20 * time.Second, 0}, ""},
		{"rate over the window", podInfo(pods.NetRxBytesPerSecond), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "",
			served{pod, "shop", "web-1", 1000, 20 * time.Second, 20}, ""},
		{"window rounds up", podInfo(pods.NetTxBytesPerSecond), types.NamespacedName{Namespace: "shop", Name: "web-2"}, "",
			served{pod, "shop", "web-2", 1000, 19 * time.Second, 19}, ""},
		{"hit ratio of the worst container", podInfo(pods.PageCacheHitRatio), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "",
			served{pod, "shop", "web-1", 0.5, 20 * time.Second, 20}, ""},
		{"sub-millisecond latency kept", podInfo(pods.TCPSRTTP99Seconds), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "",
			served{pod, "shop", "web-1", web1P99, 20 * time.Second, 20}, ""},
		{"median latency", podInfo(pods.TCPSRTTP50Seconds), types.NamespacedName{Namespace: "shop", Name: "web-2"}, "",
			served{pod, "shop", "web-2", web2P50, 19 * time.Second, 19}, ""},
		{"pod without latency data", podInfo(pods.TCPSRTTP50Seconds), types.NamespacedName{Namespace: "batch", Name: "job-1"}, "",
			served{}, "tcp_srtt_p50_seconds for pods job-1"},
		{"pod without page cache accesses", podInfo(pods.PageCacheHitRatio), types.NamespacedName{Namespace: "batch", Name: "job-1"}, "",
			served{}, "page_cache_hit_ratio for pods job-1"},
		{"selected container without latency", podInfo(pods.TCPSRTTP99Seconds), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "container=sidecar",
			served{}, "for pods web-1"},
		{"missing pod", podInfo(pods.MemoryRSSBytes), types.NamespacedName{Namespace: "shop", Name: "web-9"}, "",
			served{}, "memory_rss_bytes for pods web-9"},
		{"pod in another namespace", podInfo(pods.MemoryRSSBytes), types.NamespacedName{Namespace: "batch", Name: "web-1"}, "",
			served{}, "for pods web-1"},
		{"no container matches the metric selector", podInfo(pods.MemoryRSSBytes), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "container=nope",
			served{}, "for pods web-1"},
		{"namespace sums memory", namespaceInfo(pods.MemoryRSSBytes), types.NamespacedName{Name: "shop"}, "",
			served{ns, "", "shop", 110*MiB + GiB + 200*MiB, 19 * time.Second, 0}, ""},
		{"namespace sums rates over the longest window", namespaceInfo(pods.NetRxBytesPerSecond), types.NamespacedName{Name: "shop"}, "",
			served{ns, "", "shop", 1000 + 5000 + 2000, 19 * time.Second, 20}, ""},
		{"namespace takes the worst latency", namespaceInfo(pods.TCPSRTTP99Seconds), types.NamespacedName{Name: "shop"}, "",
			served{ns, "", "shop", dbP99, 19 * time.Second, 20}, ""},
		{"requests per second", podInfo(pods.RequestsPerSecond), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "",
			served{pod, "shop", "web-1", 20, 20 * time.Second, 20}, ""},
		{"namespace sums requests per second", namespaceInfo(pods.RequestsPerSecond), types.NamespacedName{Name: "shop"}, "",
			served{ns, "", "shop", 20 + 10, 19 * time.Second, 20}, ""},
		{"namespace takes the worst request latency", namespaceInfo(pods.RequestLatencyP99Seconds), types.NamespacedName{Name: "shop"}, "",
			served{ns, "", "shop", web2Requests, 19 * time.Second, 20}, ""},
		{"pod serving no request has no request latency", podInfo(pods.RequestLatencyP99Seconds), types.NamespacedName{Namespace: "shop", Name: "db-0"}, "",
			served{}, "request_latency_p99_seconds for pods db-0"},
		{"namespace takes the worst connect time", namespaceInfo(pods.TCPConnectP99Seconds), types.NamespacedName{Name: "shop"}, "",
			served{ns, "", "shop", dbConnect, 19 * time.Second, 20}, ""},
		{"namespace takes the lowest hit ratio", namespaceInfo(pods.PageCacheHitRatio), types.NamespacedName{Name: "shop"}, "",
			served{ns, "", "shop", 0.5, 19 * time.Second, 20}, ""},
		{"namespace with a metric selector", namespaceInfo(pods.MemoryRSSBytes), types.NamespacedName{Name: "shop"}, "node=node-b",
			served{ns, "", "shop", 200 * MiB, 19 * time.Second, 0}, ""},
		{"namespace page cache", namespaceInfo(pods.MemoryPageCacheBytes), types.NamespacedName{Name: "batch"}, "",
			served{ns, "", "batch", 4 * MiB, 19 * time.Second, 0}, ""},
		{"namespace without latency data", namespaceInfo(pods.TCPSRTTP99Seconds), types.NamespacedName{Name: "batch"}, "",
			served{}, "for namespaces batch"},
		{"namespace without pods", namespaceInfo(pods.MemoryRSSBytes), types.NamespacedName{Name: "default"}, "",
			served{}, "for namespaces default"},
		{"unknown metric", podInfo("cpu_usage"), types.NamespacedName{Namespace: "shop", Name: "web-1"}, "",
			served{}, "metric cpu_usage for pods"},
		{"unknown resource", provider.CustomMetricInfo{GroupResource: schema.GroupResource{Group: "apps", Resource: "deployments"},
			Namespaced: true, Metric: pods.MemoryRSSBytes}, types.NamespacedName{Namespace: "shop", Name: "web"}, "",
			served{}, "for deployments.apps"},
		{"pods are namespaced", provider.CustomMetricInfo{GroupResource: custommetrics.PodsResource, Metric: pods.MemoryRSSBytes},
			types.NamespacedName{Name: "web-1"}, "", served{}, "memory_rss_bytes for pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sel labels.Selector = labels.Everything()
			if tt.sel != "" {
				sel = selector(t, tt.sel)
			}
			got, err := p.GetMetricByName(context.Background(), tt.obj, tt.info, sel)
			if tt.notFound != "" {
				if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), tt.notFound) {
					t.Fatalf("got %+v, %v; want a not-found error about %q", got, err, tt.notFound)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check(t, w, got, tt.info.Metric, tt.sel, tt.want)
		})
	}
}

func TestGetMetricBySelector(t *testing.T) {
	w := newWorld(t)
	p := newProvider(t, w, nil)
	tests := []struct {
		name      string
		info      provider.CustomMetricInfo
		namespace string
		selector  string
		metricSel string
		want      []served
		// badRequest is part of the error wanted instead of values.
		badRequest string
	}{
		{"pods by label", podInfo(pods.MemoryRSSBytes), "shop", "app=web", "", []served{
			{"Pod", "shop", "web-1", 110 * MiB, 20 * time.Second, 0},
			{"Pod", "shop", "web-2", 200 * MiB, 19 * time.Second, 0}}, ""},
		{"every pod of a namespace", podInfo(pods.MemoryRSSBytes), "shop", "", "", []served{
			{"Pod", "shop", "db-0", GiB, 20 * time.Second, 0},
			{"Pod", "shop", "web-1", 110 * MiB, 20 * time.Second, 0},
			{"Pod", "shop", "web-2", 200 * MiB, 19 * time.Second, 0}}, ""},
		{"label set expression", podInfo(pods.NetRxBytesPerSecond), "shop", "app in (web,db),tier!=front", "", []served{
			{"Pod", "shop", "db-0", 5000, 20 * time.Second, 20},
			{"Pod", "shop", "web-2", 2000, 19 * time.Second, 19}}, ""},
		{"metric selector by container", podInfo(pods.MemoryRSSBytes), "shop", "app=web", "container=sidecar", []served{
			{"Pod", "shop", "web-1", 10 * MiB, 20 * time.Second, 0}}, ""},
		{"metric selector by node", podInfo(pods.MemoryRSSBytes), "shop", "", "node=node-b", []served{
			{"Pod", "shop", "web-2", 200 * MiB, 19 * time.Second, 0}}, ""},
		{"pods without the metric are left out", podInfo(pods.PageCacheHitRatio), "batch", "", "", nil, ""},
		{"namespace without pods", podInfo(pods.MemoryRSSBytes), "default", "", "", nil, ""},
		{"every namespace, never one outside Kubernetes", namespaceInfo(pods.MemoryRSSBytes), "", "", "", []served{
			{"Namespace", "", "batch", MiB, 19 * time.Second, 0},
			{"Namespace", "", "shop", 110*MiB + GiB + 200*MiB, 19 * time.Second, 0}}, ""},
		{"namespaces with a metric selector", namespaceInfo(pods.MemoryRSSBytes), "", "", "container=app", []served{
			{"Namespace", "", "shop", 300 * MiB, 19 * time.Second, 0}}, ""},
		{"namespaces without the metric are left out", namespaceInfo(pods.PageCacheHitRatio), "", "", "", []served{
			{"Namespace", "", "shop", 0.5, 19 * time.Second, 20}}, ""},
		{"namespaces by label refused", namespaceInfo(pods.MemoryRSSBytes), "", "team=a", "", nil, "no namespace labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sel, msel labels.Selector = labels.Everything(), labels.Everything()
			if tt.selector != "" {
				sel = selector(t, tt.selector)
			}
			if tt.metricSel != "" {
				msel = selector(t, tt.metricSel)
			}
			got, err := p.GetMetricBySelector(context.Background(), tt.namespace, sel, tt.info, msel)
			if tt.badRequest != "" {
				if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tt.badRequest) {
					t.Fatalf("got %+v, %v; want a bad request about %q", got, err, tt.badRequest)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Items == nil || len(got.Items) != len(tt.want) {
				t.Fatalf("%d values %+v, want %d", len(got.Items), got.Items, len(tt.want))
			}
			for i := range tt.want {
				check(t, w, &got.Items[i], tt.info.Metric, tt.metricSel, tt.want[i])
			}
		})
	}
	// Unknown resources and metrics are not found, as by name.
	if _, err := p.GetMetricBySelector(context.Background(), "shop", labels.Everything(), podInfo("cpu"), labels.Everything()); !apierrors.IsNotFound(err) {
		t.Errorf("unknown metric: %v, want not found", err)
	}
}

func TestRequestMetrics(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	p := newProvider(t, w, reg)
	ctx, all := context.Background(), labels.Everything()
	if _, err := p.GetMetricByName(ctx, types.NamespacedName{Namespace: "shop", Name: "web-1"}, podInfo(pods.MemoryRSSBytes), all); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GetMetricBySelector(ctx, "shop", all, podInfo(pods.MemoryRSSBytes), all); err != nil {
		t.Fatal(err)
	}
	_, _ = p.GetMetricByName(ctx, types.NamespacedName{Name: "nowhere"}, namespaceInfo(pods.MemoryRSSBytes), all)
	_, _ = p.GetMetricBySelector(ctx, "", selector(t, "a=b"), namespaceInfo(pods.MemoryRSSBytes), all)
	_, _ = p.GetMetricByName(ctx, types.NamespacedName{Name: "x"}, provider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "nodes"}, Metric: "m"}, all)

	want := `
# HELP penny_custom_metrics_requests_total Custom metrics API requests by resource (pods, namespaces, other) and result (ok, not_found, bad_request, error).
# TYPE penny_custom_metrics_requests_total counter
penny_custom_metrics_requests_total{resource="namespaces",result="bad_request"} 1
penny_custom_metrics_requests_total{resource="namespaces",result="error"} 0
penny_custom_metrics_requests_total{resource="namespaces",result="not_found"} 1
penny_custom_metrics_requests_total{resource="namespaces",result="ok"} 0
penny_custom_metrics_requests_total{resource="other",result="bad_request"} 0
penny_custom_metrics_requests_total{resource="other",result="error"} 0
penny_custom_metrics_requests_total{resource="other",result="not_found"} 1
penny_custom_metrics_requests_total{resource="other",result="ok"} 0
penny_custom_metrics_requests_total{resource="pods",result="bad_request"} 0
penny_custom_metrics_requests_total{resource="pods",result="error"} 0
penny_custom_metrics_requests_total{resource="pods",result="not_found"} 0
penny_custom_metrics_requests_total{resource="pods",result="ok"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "penny_custom_metrics_requests_total"); err != nil {
		t.Error(err)
	}
	// One freshness observation per value served: one, then three pods.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "penny_custom_metrics_freshness_seconds" })
	if i < 0 {
		t.Fatal("no penny_custom_metrics_freshness_seconds")
	}
	if n := mfs[i].GetMetric()[0].GetHistogram().GetSampleCount(); n != 4 {
		t.Errorf("freshness observed %d times, want 4", n)
	}
	// One duration observation per request, by resource.
	i = slices.IndexFunc(mfs, func(mf *dto.MetricFamily) bool {
		return mf.GetName() == "penny_custom_metrics_request_duration_seconds"
	})
	if i < 0 {
		t.Fatal("no penny_custom_metrics_request_duration_seconds")
	}
	durations := map[string]uint64{}
	for _, m := range mfs[i].GetMetric() {
		durations[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
	}
	if want := map[string]uint64{"pods": 2, "namespaces": 2, "other": 1}; !maps.Equal(durations, want) {
		t.Errorf("request durations observed %v times by resource, want %v", durations, want)
	}
	// A second provider on the same registry is refused.
	if _, err := custommetrics.NewProvider(custommetrics.Config{Store: w.store, Registerer: reg}); err == nil {
		t.Error("second provider registered the same metrics")
	}
}

func TestConfigCompleteValidate(t *testing.T) {
	store := kvtest.Start(t)
	tests := []struct {
		name string
		cfg  custommetrics.Config
		want string // part of the error; empty for valid
	}{
		{"defaults", custommetrics.Config{Store: store}, ""},
		{"longest window", custommetrics.Config{Store: store, Window: model.MaxWindow}, ""},
		{"no store", custommetrics.Config{}, "no store"},
		{"window too long", custommetrics.Config{Store: store, Window: model.MaxWindow + time.Second}, "window"},
		{"negative window", custommetrics.Config{Store: store, Window: -time.Second}, "window"},
		{"negative staleness", custommetrics.Config{Store: store, MaxStaleness: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Complete()
			completed := cfg
			err := cfg.Validate()
			if cfg != completed {
				t.Fatalf("Validate changed the config: %+v, was %+v", cfg, completed)
			}
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Validate() = %v, want an error about %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Window <= 0 || cfg.MaxStaleness <= 0 || cfg.MaxSeries <= 0 || cfg.Logger == nil {
				t.Fatalf("defaults not filled in: %+v", cfg)
			}
			if tt.cfg.Window == 0 && (cfg.Window != 30*time.Second || cfg.MaxStaleness != 2*time.Second) {
				t.Fatalf("defaults: window %s, max staleness %s", cfg.Window, cfg.MaxStaleness)
			}
		})
	}
}

// TestStaleValuesAreAbsent: a node that stopped reporting has no values,
// rather than its last ones.
func TestStaleValuesAreAbsent(t *testing.T) {
	w := newWorld(t) // sampled about 40 s ago
	ctx := context.Background()
	for _, tt := range []struct {
		maxAge time.Duration
		fresh  bool
	}{{2 * time.Minute, true}, {10 * time.Second, false}} {
		p, err := custommetrics.NewProvider(custommetrics.Config{Store: w.store, MaxAge: tt.maxAge})
		if err != nil {
			t.Fatal(err)
		}
		list, err := p.GetMetricBySelector(ctx, "shop", labels.Everything(), podInfo(pods.MemoryRSSBytes), labels.Everything())
		if err != nil {
			t.Fatal(err)
		}
		if got := len(list.Items) > 0; got != tt.fresh {
			t.Errorf("max age %s: %d values, want values %v", tt.maxAge, len(list.Items), tt.fresh)
		}
		ns, err := p.GetMetricByName(ctx, types.NamespacedName{Name: "shop"}, namespaceInfo(pods.MemoryRSSBytes), labels.Everything())
		if tt.fresh && err != nil || !tt.fresh && !apierrors.IsNotFound(err) {
			t.Errorf("max age %s: namespace shop: %v, %v", tt.maxAge, ns, err)
		}
	}
}
