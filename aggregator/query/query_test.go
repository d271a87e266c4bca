package query_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/query/querytest"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/kvraft"
)

var linearizable = kvraft.ReadOptions{Consistency: kvraft.Linearizable}

// fixture is a replica holding querytest.Nodes, and a reader of it.
func fixture(t *testing.T, cfg query.Config) (*query.Reader, *kvraft.Node) {
	t.Helper()
	n := kvtest.Start(t)
	querytest.Write(t, n, time.Now().Truncate(time.Second).Add(-time.Minute))
	cfg.Store = n
	r, err := query.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, n
}

func sel(t *testing.T, s string) labels.Selector {
	t.Helper()
	ls, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestContainers(t *testing.T) {
	r, _ := fixture(t, query.Config{})
	tests := []struct {
		name  string
		req   query.Request
		paths []string // node/path, in order
	}{
		{"every node", query.Request{}, []string{
			"node-a/kubepods/db-0/db", "node-a/kubepods/web-1/app", "node-a/kubepods/web-1/sidecar",
			"node-a/system.slice/sshd.service", "node-b/kubepods/job-1/main", "node-b/kubepods/web-2/app"}},
		{"one node", query.Request{Node: "node-b"}, []string{"node-b/kubepods/job-1/main", "node-b/kubepods/web-2/app"}},
		{"unknown node", query.Request{Node: "node-c"}, nil},
		// Pods select pods, not containers: a containers read ignores them.
		{"pod query ignored", query.Request{Node: "node-b", Pods: pods.Query{Namespace: "batch"}},
			[]string{"node-b/kubepods/job-1/main", "node-b/kubepods/web-2/app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Read = linearizable
			res, err := r.Containers(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Index == 0 {
				t.Error("no index")
			}
			var got []string
			for _, c := range res.Containers {
				got = append(got, c.Node+c.Path)
			}
			if !slices.Equal(got, tt.paths) {
				t.Errorf("containers %q, want %q", got, tt.paths)
			}
		})
	}
}

// TestContainerValues: the view a reader gets is the model's, metadata
// and totals included.
func TestContainerValues(t *testing.T) {
	r, _ := fixture(t, query.Config{})
	res, err := r.Containers(context.Background(), query.Request{Node: "node-a", Window: 30 * time.Second, Read: linearizable})
	if err != nil {
		t.Fatal(err)
	}
	var web *model.Container
	for i := range res.Containers {
		if res.Containers[i].Path == "/kubepods/web-1/app" {
			web = &res.Containers[i]
		}
	}
	if web == nil {
		t.Fatalf("no web-1 app in %+v", res.Containers)
	}
	if web.RSSBytes != 100*querytest.MiB || web.Kubernetes == nil || web.Kubernetes.Pod.Name != "web-1" ||
		web.Kubernetes.Container.Name != "app" {
		t.Errorf("web-1 app = %+v", web)
	}
	if web.NetRxBytes != 20000 || web.Totals.RxBytes < web.NetRxBytes || web.WindowSeconds != 20 {
		t.Errorf("web-1 app rx %d over %gs, total %d; want 20000 over 20s", web.NetRxBytes, web.WindowSeconds, web.Totals.RxBytes)
	}
	// 400 requests of 20ms: the quantiles are within 10% of it.
	if web.Requests != 400 || web.Totals.Requests != 400 || web.RequestLatencyP99Seconds == nil ||
		*web.RequestLatencyP99Seconds < 0.018 || *web.RequestLatencyP99Seconds >= 0.022 {
		t.Errorf("web-1 app: %d requests (total %d), p99 %v; want 400 of 20ms", web.Requests, web.Totals.Requests,
			web.RequestLatencyP99Seconds)
	}
}

func TestPodsAndNamespaces(t *testing.T) {
	r, _ := fixture(t, query.Config{})
	ctx := context.Background()
	tests := []struct {
		name       string
		q          pods.Query
		pods       []string // namespace/name
		namespaces []string
	}{
		{"all", pods.Query{}, []string{"batch/job-1", "shop/db-0", "shop/web-1", "shop/web-2"}, []string{"batch", "shop"}},
		{"namespace", pods.Query{Namespace: "shop"}, []string{"shop/db-0", "shop/web-1", "shop/web-2"}, []string{"shop"}},
		{"one pod", pods.Query{Namespace: "shop", Name: "web-2"}, []string{"shop/web-2"}, []string{"shop"}},
		{"selector", pods.Query{Selector: sel(t, "app=web")}, []string{"shop/web-1", "shop/web-2"}, []string{"shop"}},
		{"metric selector", pods.Query{MetricSelector: sel(t, "container=sidecar")}, []string{"shop/web-1"}, []string{"shop"}},
		{"nothing", pods.Query{Namespace: "none"}, []string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := query.Request{Window: 30 * time.Second, Read: linearizable, Pods: tt.q}
			ps, err := r.Pods(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, p := range ps.Pods {
				got = append(got, p.Namespace+"/"+p.Name)
			}
			if !slices.Equal(got, tt.pods) || ps.Pods == nil {
				t.Errorf("pods %q, want %q", got, tt.pods)
			}
			ns, err := r.Namespaces(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			got = []string{}
			for _, n := range ns.Namespaces {
				got = append(got, n.Name)
			}
			if !slices.Equal(got, tt.namespaces) || ns.Namespaces == nil {
				t.Errorf("namespaces %q, want %q", got, tt.namespaces)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	r, _ := fixture(t, query.Config{MaxSeries: 5})
	tests := []struct {
		name string
		req  query.Request
		want error
	}{
		{"more series than allowed", query.Request{}, kvraft.ErrTooLarge},
		{"bad node name", query.Request{Node: "Bad_Name"}, kvraft.ErrInvalid},
		{"window too long", query.Request{Window: model.MaxWindow + time.Second}, kvraft.ErrInvalid},
		{"negative window", query.Request{Window: -time.Second}, kvraft.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Read = linearizable
			if _, err := r.Containers(context.Background(), tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("Containers = %v, want %v", err, tt.want)
			}
			if _, err := r.Pods(context.Background(), tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("Pods = %v, want %v", err, tt.want)
			}
		})
	}
	// Within the bound, one node is fine.
	if _, err := r.Containers(context.Background(), query.Request{Node: "node-a", Read: linearizable}); err != nil {
		t.Fatal(err)
	}
}

func TestConfig(t *testing.T) {
	n := kvtest.Start(t)
	tests := []struct {
		name string
		cfg  query.Config
		want error // nil: valid
	}{
		{"defaults", query.Config{Store: n}, nil},
		{"no store", query.Config{}, query.ErrNoStore},
		{"negative max series", query.Config{Store: n, MaxSeries: -1}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Complete()
			if cfg.MaxSeries == 0 {
				t.Error("Complete left MaxSeries unset")
			}
			completed := cfg
			err := cfg.Validate()
			if cfg != completed {
				t.Error("Validate changed the config")
			}
			switch {
			case tt.want == nil && err != nil:
				t.Fatal(err)
			case tt.want == errAny && err == nil, tt.want != nil && tt.want != errAny && !errors.Is(err, tt.want):
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
}

var errAny = errors.New("any error")
