package top_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/cmd/penny/top"
	"github.com/pennyhq/penny/internal/histogram"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/internal/podmeta"
)

// serve starts a real gateway over a store holding two pods and a plain
// cgroup, written through the model as the ingest writes them.
func serve(t *testing.T) string {
	t.Helper()
	n := kvtest.Start(t)
	now := time.Now().Add(-3 * time.Second)
	var h histogram.Hist
	h.Observe(2500)
	meta := func(ns, pod, ctr string) map[string]string {
		return podmeta.Encode(&podmeta.Pod{UID: ns + "-" + pod, Namespace: ns, Name: pod, Labels: map[string]string{"app": pod}},
			&podmeta.Container{Name: ctr})
	}
	u := &model.Update{Node: "node-a", Incarnation: 1, Seq: 1, Time: now, Interval: time.Second, Keyframe: true,
		Changed: []model.SeriesState{
			{Path: "/k/a", CgroupID: 2, RSSBytes: 300 << 20, SRTT: h, Meta: meta("shop", "web", "app"),
				Total: model.Counters{CPUUsageUsec: 500_000}},
			{Path: "/k/b", CgroupID: 3, RSSBytes: 20 << 20, Meta: meta("shop", "web", "proxy"),
				Total: model.Counters{CPUUsageUsec: 25_000}},
			{Path: "/k/c", CgroupID: 4, RSSBytes: 900 << 20, Meta: meta("data", "db", "pg"),
				Total: model.Counters{CPUUsageUsec: 1_250_000}},
			{Path: "/system.slice/x.service", CgroupID: 5, RSSBytes: 1 << 30},
		}}
	p, err := model.PlanUpdate(&model.NodeState{Node: "node-a"}, u, now)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := n.Txn(context.Background(), model.Txn(u.Node, p.Expect, p.Ops)); err != nil || !res.Succeeded {
		t.Fatalf("txn: %+v %v", res, err)
	}
	gw, err := gateway.NewHandler(gateway.Config{Store: n})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPods(t *testing.T) {
	url := serve(t)
	tests := []struct {
		name      string
		cfg       top.Config
		wantLines []string // each row's leading fields, in order
	}{
		{"all namespaces by name", top.Config{},
			[]string{"NAMESPACE NAME NODE CTRS CPU RSS", "data db node-a 1 1250m 900M", "shop web node-a 2 525m 320M"}},
		{"one namespace drops the column", top.Config{Namespace: "shop"},
			[]string{"NAME NODE CTRS CPU RSS", "web node-a 2 525m 320M"}},
		{"label selector", top.Config{Selector: "app=db"}, []string{"NAMESPACE NAME", "data db"}},
		{"metric selector", top.Config{MetricSelector: "container=proxy"},
			[]string{"NAMESPACE NAME NODE CTRS CPU RSS", "shop web node-a 1 25m 20.0M"}},
		{"sort by cpu", top.Config{Sort: "cpu"}, []string{"NAMESPACE", "data db", "shop web"}},
		{"sort by srtt puts pods without data last", top.Config{Sort: "srtt99"},
			[]string{"NAMESPACE", "shop web", "data db"}},
		{"sort by cost", top.Config{Sort: "cost"}, []string{"NAMESPACE", "data db", "shop web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URL = url
			res, err := top.Pods(context.Background(), &cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := top.PodsTable(&out, res.Pods, cfg.Namespace == "", time.Now()); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != len(tt.wantLines) {
				t.Fatalf("table:\n%s", out.String())
			}
			for i, want := range tt.wantLines {
				if got := strings.Join(strings.Fields(lines[i]), " "); !strings.HasPrefix(got, want) {
					t.Errorf("line %d = %q, want prefix %q", i, got, want)
				}
			}
			if strings.Contains(out.String(), "x.service") {
				t.Error("a cgroup outside Kubernetes shows as a pod")
			}
		})
	}
}

// TestCostColumn: at OpenCost's default prices (node-a has no facts), web
// costs 0.525 cores × 0.031611 + 320/1024 GiB × 0.004237 = 0.0179 an
// hour, db 1.25 × 0.031611 + 900/1024 × 0.004237 = 0.0432.
func TestCostColumn(t *testing.T) {
	cfg := top.Config{URL: serve(t), Sort: "cost"}
	res, err := top.Pods(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := top.PodsTable(&out, res.Pods, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	cost := func(line string) string {
		f := strings.Fields(line)
		return f[len(f)-2] // before AGE
	}
	if len(lines) != 3 || cost(lines[0]) != "COST/h" || cost(lines[1]) != "0.0432" || cost(lines[2]) != "0.0179" ||
		res.Currency != "USD" {
		t.Errorf("table in %q:\n%s", res.Currency, out.String())
	}
	ns, err := top.Namespaces(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := top.NamespacesTable(&out, ns.Namespaces, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "data") || cost(lines[1]) != "0.0432" || cost(lines[2]) != "0.0179" {
		t.Errorf("namespaces:\n%s", out.String())
	}
}

func TestNamespaces(t *testing.T) {
	cfg := top.Config{URL: serve(t), Sort: "rss"}
	res, err := top.Namespaces(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := top.NamespacesTable(&out, res.Namespaces, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "data 1 1250m 900M") ||
		!strings.HasSuffix(lines[2], "3s") && !strings.HasSuffix(lines[2], "4s") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestErrors(t *testing.T) {
	url := serve(t)
	tests := []struct {
		name string
		cfg  top.Config
		want string
		gw   bool
	}{
		{"bad selector comes back from the gateway", top.Config{URL: url, Selector: "a in ("}, "selector", true},
		{"bad url", top.Config{URL: "localhost:7379"}, "want http://", false},
		{"bad sort", top.Config{URL: url, Sort: "frob"}, "sort \"frob\"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := top.Pods(context.Background(), &tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, top.ErrGateway) != tt.gw {
				t.Errorf("err = %v, want %q (gateway error %v)", err, tt.want, tt.gw)
			}
		})
	}
}
