package custommetrics_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"
	"k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	cmclient "k8s.io/metrics/pkg/client/custom_metrics"

	"github.com/pennyhq/penny/aggregator/custommetrics"
	"github.com/pennyhq/penny/aggregator/custommetrics/custommetricstest"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/internal/freeport"
	"github.com/pennyhq/penny/internal/tlsfiles/tlstest"
)

const (
	hpaToken    = "hpa-token"
	deniedToken = "denied-token"
	hpaUser     = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
)

// syncBuffer is a log sink the adapter's goroutines may write to while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a running adapter and what a client needs to reach it.
type servedAPI struct {
	url  string
	ca   string // CA file of its serving certificate
	reg  *prometheus.Registry
	kube *custommetricstest.KubeAPI
}

// startAdapter runs the adapter on a free loopback port with a test
// certificate, authenticating and authorizing against the stand-in
// kube-apiserver, and waits until it is ready.
func startAdapter(t *testing.T, w *world) *servedAPI {
	t.Helper()
	kube := custommetricstest.StartKubeAPI(t)
	kube.AddUser(hpaToken, hpaUser, true)
	kube.AddUser(deniedToken, "mallory", false)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	cert, key := ca.Server(t, "custom-metrics")
	host, port, err := net.SplitHostPort(freeport.T(t))
	if err != nil {
		t.Fatal(err)
	}

	a := custommetrics.NewAdapter()
	fs := pflag.NewFlagSet("adapter", pflag.ContinueOnError)
	a.AddFlags(fs)
	args := append([]string{"--secure-port", port, "--bind-address", host,
		"--tls-cert-file", cert, "--tls-private-key-file", key}, kube.Args()...)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, custommetrics.Config{Store: w.store, Prices: w.prices, Registerer: reg,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("adapter stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("adapter did not stop after its context was cancelled")
		}
		if t.Failed() {
			t.Logf("adapter log:\n%s", logs.String())
			t.Logf("requests the stand-in could not answer: %v", kube.Unexpected())
		}
	})

	api := &servedAPI{url: "https://" + net.JoinHostPort(host, port), ca: ca.File, reg: reg, kube: kube}
	hc := api.httpClient(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("adapter stopped before it was ready: %v\n%s", err, logs.String())
		default:
		}
		resp, err := hc.Get(api.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return api
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("adapter not ready: %v %v\n%s", resp, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpClient trusts the adapter's certificate and sends no credentials.
func (s *servedAPI) httpClient(t *testing.T) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// restConfig is a client configuration with a bearer token.
func (s *servedAPI) restConfig(token string) *rest.Config {
	return &rest.Config{Host: s.url, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: s.ca}}
}

// coreMapper maps pods and namespaces as kube-apiserver's discovery would;
// the adapter serves no core API to discover them from.
func coreMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{corev1.SchemeGroupVersion})
	m.Add(corev1.SchemeGroupVersion.WithKind("Pod"), meta.RESTScopeNamespace)
	m.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	return m
}

// TestServedAPI serves the fixture over HTTPS through the library, with
// delegated authentication and authorization against a stand-in for
// kube-apiserver's TokenReview and SubjectAccessReview (the real
// kube-apiserver and HPA controller come in the end-to-end tests), and
// reads it with the client the HPA controller uses.
func TestServedAPI(t *testing.T) {
	w := newWorld(t)
	api := startAdapter(t, w)
	cfg := api.restConfig(hpaToken)
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// Discovery as kube-apiserver's aggregator and client-go read it:
	// the aggregated document (client-go's default), and the legacy one.
	legacy, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	legacy.UseLegacyDiscovery = true
	discoveries := []struct {
		name     string
		dc       *discovery.DiscoveryClient
		versions []string // the group's, preferred first
	}{
		{"aggregated discovery", dc, []string{"v1beta1", "v1beta2"}},
		// The library lists one version in the legacy document, and
		// serves both.
		{"legacy discovery", legacy, []string{"v1beta1"}},
	}
	for _, d := range discoveries {
		t.Run(d.name, func(t *testing.T) {
			groups, err := d.dc.ServerGroups()
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(groups.Groups, func(g metav1.APIGroup) bool { return g.Name == "custom.metrics.k8s.io" })
			if i < 0 {
				t.Fatalf("groups %+v: no custom.metrics.k8s.io", groups.Groups)
			}
			var versions []string
			for _, v := range groups.Groups[i].Versions {
				versions = append(versions, v.Version)
			}
			if g := groups.Groups[i]; !slices.Equal(versions, d.versions) || g.PreferredVersion.Version != d.versions[0] {
				t.Errorf("custom.metrics.k8s.io versions %v preferring %s, want %v", versions, g.PreferredVersion.Version, d.versions)
			}
			checkResources(t, d.dc, v1beta1.SchemeGroupVersion, v1beta2.SchemeGroupVersion)
		})
	}

	web1P99 := w.latency(t, "/kubepods/web-1/app", p99)
	mapper := coreMapper()
	clients := []struct {
		name   string
		client cmclient.CustomMetricsClient
	}{
		// As the HPA controller reads: the version discovery prefers.
		{"preferred version", cmclient.NewForConfig(cfg, mapper, cmclient.NewAvailableAPIsGetter(dc))},
	}
	for _, gv := range []schema.GroupVersion{v1beta1.SchemeGroupVersion, v1beta2.SchemeGroupVersion} {
		c, err := cmclient.NewForVersionForConfig(cfg, mapper, gv)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, struct {
			name   string
			client cmclient.CustomMetricsClient
		}{gv.Version, c})
	}
	pod, namespace := schema.GroupKind{Kind: "Pod"}, schema.GroupKind{Kind: "Namespace"}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			tests := []struct {
				name string
				get  func() ([]v1beta2.MetricValue, error)
				sel  string // the metric selector get sends
				want []served
			}{
				{"pod", func() ([]v1beta2.MetricValue, error) {
					return one(c.client.NamespacedMetrics("shop").GetForObject(pod, "web-1", pods.MemoryRSSBytes, labels.Everything()))
				}, "", []served{{"Pod", "shop", "web-1", 110 * MiB, 20 * time.Second, 0}}},
				{"pod latency in microseconds", func() ([]v1beta2.MetricValue, error) {
					return one(c.client.NamespacedMetrics("shop").GetForObject(pod, "web-1", pods.TCPSRTTP99Seconds, labels.Everything()))
				}, "", []served{{"Pod", "shop", "web-1", web1P99, 20 * time.Second, 20}}},
				{"pods by label and container", func() ([]v1beta2.MetricValue, error) {
					return list(c.client.NamespacedMetrics("shop").GetForObjects(pod, selector(t, "app=web"), pods.MemoryRSSBytes,
						selector(t, "container=app")))
				}, "container=app", []served{{"Pod", "shop", "web-1", 100 * MiB, 20 * time.Second, 0}, {"Pod", "shop", "web-2", 200 * MiB, 19 * time.Second, 0}}},
				{"pods by node", func() ([]v1beta2.MetricValue, error) {
					return list(c.client.NamespacedMetrics("shop").GetForObjects(pod, labels.Everything(), pods.NetRxBytesPerSecond,
						selector(t, "node=node-a")))
				}, "node=node-a", []served{{"Pod", "shop", "db-0", 5000, 20 * time.Second, 20}, {"Pod", "shop", "web-1", 1000, 20 * time.Second, 20}}},
				{"namespace", func() ([]v1beta2.MetricValue, error) {
					return one(c.client.RootScopedMetrics().GetForObject(namespace, "shop", pods.NetRxBytesPerSecond, labels.Everything()))
				}, "", []served{{"Namespace", "", "shop", 8000, 19 * time.Second, 20}}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := tt.get()
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != len(tt.want) {
						t.Fatalf("%d values %+v, want %d", len(got), got, len(tt.want))
					}
					for i, want := range tt.want {
						checkServed(t, w, &got[i], want)
						checkSelector(t, w, got[i].Metric.Selector, tt.sel)
					}
				})
			}
			_, err := c.client.NamespacedMetrics("shop").GetForObject(pod, "web-9", pods.MemoryRSSBytes, labels.Everything())
			if !apierrors.IsNotFound(err) {
				t.Errorf("missing pod: %v, want not found", err)
			}
		})
	}

	t.Run("access", func(t *testing.T) {
		path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/web-1/" + pods.MemoryRSSBytes
		hc := api.httpClient(t)
		tests := []struct {
			name   string
			token  string
			status []int
		}{
			{"no credentials", "", []int{http.StatusUnauthorized, http.StatusForbidden}},
			{"unknown token", "forged", []int{http.StatusUnauthorized}},
			{"access review denied", deniedToken, []int{http.StatusForbidden}},
			{"access review allowed", hpaToken, []int{http.StatusOK}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, api.url+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.token != "" {
					req.Header.Set("Authorization", "Bearer "+tt.token)
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if !slices.Contains(tt.status, resp.StatusCode) {
					t.Fatalf("%s: %s, want one of %v", path, resp.Status, tt.status)
				}
			})
		}
		// Authorization was delegated with the request's attributes.
		reviews := api.kube.Reviews()
		if !slices.ContainsFunc(reviews, func(r authzv1.SubjectAccessReviewSpec) bool {
			ra := r.ResourceAttributes
			return r.User == hpaUser && ra != nil && ra.Group == "custom.metrics.k8s.io" && ra.Resource == "pods" &&
				ra.Subresource == pods.MemoryRSSBytes && ra.Namespace == "shop" && ra.Name == "web-1" && ra.Verb == "get"
		}) {
			t.Errorf("no subject access review for the pod's metric among %+v", reviews)
		}
	})

	t.Run("freshness metrics", func(t *testing.T) {
		mfs, err := prometheus.Gatherers{api.reg, custommetrics.Gatherer()}.Gather()
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]uint64{}
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "go_") || strings.HasPrefix(mf.GetName(), "process_") {
				t.Errorf("the gatherers serve %s", mf.GetName())
			}
			for _, m := range mf.GetMetric() {
				counts[mf.GetName()] += m.GetHistogram().GetSampleCount()
			}
		}
		for _, name := range []string{"penny_custom_metrics_freshness_seconds", "metrics_apiserver_metric_freshness_seconds"} {
			if counts[name] == 0 {
				t.Errorf("%s has no observations (%v)", name, counts)
			}
		}
	})
}

// checkResources checks that discovery lists every metric of pods
// (namespaced) and namespaces (root-scoped) in each version.
func checkResources(t *testing.T, dc *discovery.DiscoveryClient, gvs ...schema.GroupVersion) {
	t.Helper()
	for _, gv := range gvs {
		rl, err := dc.ServerResourcesForGroupVersion(gv.String())
		if err != nil {
			t.Fatalf("%s: %v", gv, err)
		}
		got := map[string]bool{}
		for _, r := range rl.APIResources {
			got[r.Name] = r.Namespaced
		}
		for _, m := range pods.Metrics {
			if namespaced, ok := got["pods/"+m.Name]; !ok || !namespaced {
				t.Errorf("%s: pods/%s listed %t, namespaced %t", gv, m.Name, ok, namespaced)
			}
			if namespaced, ok := got["namespaces/"+m.Name]; !ok || namespaced {
				t.Errorf("%s: namespaces/%s listed %t, namespaced %t", gv, m.Name, ok, namespaced)
			}
		}
		if len(got) != 2*len(pods.Metrics) {
			t.Errorf("%s lists %d resources: %v", gv, len(got), got)
		}
	}
}

// one and list adapt the client's answers to a list of values.
func one(v *v1beta2.MetricValue, err error) ([]v1beta2.MetricValue, error) {
	if err != nil {
		return nil, err
	}
	return []v1beta2.MetricValue{*v}, nil
}

func list(l *v1beta2.MetricValueList, err error) ([]v1beta2.MetricValue, error) {
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// checkServed compares a value read over the API with what is expected of
// it. Timestamps travel with a precision of seconds.
func checkServed(t *testing.T, w *world, got *v1beta2.MetricValue, want served) {
	t.Helper()
	o := got.DescribedObject
	if o.Kind != want.kind || o.APIVersion != "/v1" || o.Namespace != want.namespace || o.Name != want.name {
		t.Errorf("described object %+v, want %s %s/%s", o, want.kind, want.namespace, want.name)
	}
	if at := w.base.Add(want.at); !got.Timestamp.Time.Equal(at) {
		t.Errorf("timestamp %s, want %s", got.Timestamp.Time, at)
	}
	if got.WindowSeconds == nil || *got.WindowSeconds != want.window {
		t.Errorf("window %v, want %d", got.WindowSeconds, want.window)
	}
	if v, wv := got.Value.ScaledValue(resource.Micro), int64(math.Round(want.value*1e6)); v != wv {
		t.Errorf("value %s, want %v", got.Value.String(), want.value)
	}
	if t.Failed() {
		t.Logf("value: %s", fmt.Sprintf("%+v", *got))
	}
}
