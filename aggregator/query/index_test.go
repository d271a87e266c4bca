package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/podindex"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/query/querytest"
	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/kvraft"
)

// indexed is a replica holding querytest.Nodes with its pod index, a
// reader through the index and one that ranges over the store.
func indexed(t *testing.T, cfg query.Config) (withIndex, scan *query.Reader, n *kvraft.Node) {
	t.Helper()
	idx := podindex.New()
	n = kvtest.Start(t, func(c *kvraft.Config) { c.Watcher = idx })
	querytest.Write(t, n, time.Now().Truncate(time.Second).Add(-time.Minute))
	cfg.Store = podindex.Store{Node: n, Index: idx}
	withIndex, err := query.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = n
	if scan, err = query.New(cfg); err != nil {
		t.Fatal(err)
	}
	return withIndex, scan, n
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIndexedReadsMatchScans: every pods and namespaces read answers the
// same through the index as by ranging over the store.
func TestIndexedReadsMatchScans(t *testing.T) {
	r, scan, _ := indexed(t, query.Config{})
	ctx := context.Background()
	tests := []struct {
		name string
		req  query.Request
		pods int
	}{
		{"namespace", query.Request{Pods: pods.Query{Namespace: "shop"}}, 3},
		{"namespace over a window", query.Request{Window: 30 * time.Second, Pods: pods.Query{Namespace: "shop"}}, 3},
		{"one pod", query.Request{Window: 10 * time.Second, Pods: pods.Query{Namespace: "shop", Name: "web-1"}}, 1},
		{"pod on another node", query.Request{Pods: pods.Query{Namespace: "shop", Name: "web-2"}}, 1},
		{"selector", query.Request{Pods: pods.Query{Namespace: "shop", Selector: sel(t, "app=web")}}, 2},
		{"metric selector", query.Request{Pods: pods.Query{Namespace: "shop", MetricSelector: sel(t, "container=sidecar")}}, 1},
		{"one node", query.Request{Node: "node-b", Pods: pods.Query{Namespace: "shop"}}, 1},
		{"other namespace", query.Request{Pods: pods.Query{Namespace: "batch"}}, 1},
		{"no such namespace", query.Request{Pods: pods.Query{Namespace: "none"}}, 0},
		{"no such pod", query.Request{Pods: pods.Query{Namespace: "shop", Name: "web-9"}}, 0},
		{"every namespace (ranges)", query.Request{}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Read = linearizable
			got, err := r.Pods(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			want, err := scan.Pods(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Pods) != tt.pods {
				t.Errorf("%d pods, want %d", len(got.Pods), tt.pods)
			}
			if g, w := jsonOf(t, got.Pods), jsonOf(t, want.Pods); g != w {
				t.Errorf("pods through the index:\n%s\nby a scan:\n%s", g, w)
			}
			if got.Index < want.Index-1 || got.Currency != want.Currency {
				t.Errorf("index %d, currency %q; the scan's %d, %q", got.Index, got.Currency, want.Index, want.Currency)
			}
			// Warnings name only the nodes the answer read.
			for _, w := range got.Warnings {
				if !slices.Contains(want.Warnings, w) {
					t.Errorf("warning %q not in the scan's %q", w, want.Warnings)
				}
			}
			gn, err := r.Namespaces(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			wn, err := scan.Namespaces(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := jsonOf(t, gn.Namespaces), jsonOf(t, wn.Namespaces); g != w {
				t.Errorf("namespaces through the index:\n%s\nby a scan:\n%s", g, w)
			}
		})
	}
}

// TestIndexedReadsOwnSeriesOnly: a namespace's read decodes its own
// series, so a broken series elsewhere fails the scan and not it, and the
// index follows pods that go.
func TestIndexedReadsOwnSeriesOnly(t *testing.T) {
	r, scan, n := indexed(t, query.Config{})
	ctx := context.Background()
	// job-1 (namespace batch, node-b) gets a value no decoder reads.
	if _, err := n.Batch(ctx, []kvraft.Op{{Type: kvraft.OpPut, Key: model.SeriesKey("node-b", "/kubepods/job-1/main"),
		Value: []byte{0xc1}}}); err != nil {
		t.Fatal(err)
	}
	req := query.Request{Read: linearizable, Pods: pods.Query{Namespace: "shop"}}
	if _, err := scan.Pods(ctx, req); err == nil {
		t.Fatal("the scan read a broken series")
	}
	got, err := r.Pods(ctx, req)
	if err != nil {
		t.Fatalf("shop through the index: %v", err)
	}
	if len(got.Pods) != 3 {
		t.Fatalf("%d shop pods, want 3", len(got.Pods))
	}
	// web-2 goes: its series and metadata are deleted.
	if _, err := n.Batch(ctx, []kvraft.Op{{Type: kvraft.OpDelete, Key: model.SeriesKey("node-b", "/kubepods/web-2/app")},
		{Type: kvraft.OpDelete, Key: model.MetaKey("node-b", "/kubepods/web-2/app")}}); err != nil {
		t.Fatal(err)
	}
	if got, err = r.Pods(ctx, req); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got.Pods {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"db-0", "web-1"}) {
		t.Fatalf("shop pods after web-2 went: %q", names)
	}
}

// TestIndexedReadsBounded: the series bound holds through the index.
func TestIndexedReadsBounded(t *testing.T) {
	r, _, _ := indexed(t, query.Config{MaxSeries: 2})
	_, err := r.Pods(context.Background(), query.Request{Read: linearizable, Pods: pods.Query{Namespace: "shop"}})
	if !errors.Is(err, kvraft.ErrTooLarge) {
		t.Fatalf("shop's 4 series with a bound of 2: %v, want %v", err, kvraft.ErrTooLarge)
	}
	if _, err := r.Pods(context.Background(), query.Request{Read: linearizable, Pods: pods.Query{Namespace: "shop", Name: "db-0"}}); err != nil {
		t.Fatalf("one pod within the bound: %v", err)
	}
}

// TestIndexedReadsFollowWrites: what a read decoded is decoded again when
// its series, metadata or checkpoints change, so repeated reads through
// the index answer as scans do after every write.
func TestIndexedReadsFollowWrites(t *testing.T) {
	r, scan, n := indexed(t, query.Config{})
	ctx := context.Background()
	get := func(key []byte) []byte {
		t.Helper()
		res, err := n.Get(ctx, key, linearizable)
		if err != nil || !res.Found {
			t.Fatalf("get %s: %v %v", key, res.Found, err)
		}
		return res.Value
	}
	same := func(step string) {
		t.Helper()
		for _, w := range []time.Duration{0, 30 * time.Second} {
			req := query.Request{Window: w, Read: linearizable, Pods: pods.Query{Namespace: "shop"}}
			got, err := r.Pods(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			want, err := scan.Pods(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := jsonOf(t, got.Pods), jsonOf(t, want.Pods); g != w {
				t.Fatalf("%s: pods through the index:\n%s\nby a scan:\n%s", step, g, w)
			}
		}
	}
	same("first read")
	same("second read, from what the first decoded")
	tests := []struct {
		name     string
		key, src []byte
	}{
		{"values", model.SeriesKey("node-a", "/kubepods/web-1/app"), model.SeriesKey("node-a", "/kubepods/db-0/db")},
		{"metadata", model.MetaKey("node-a", "/kubepods/web-1/sidecar"), model.MetaKey("node-a", "/kubepods/web-1/app")},
		{"checkpoints", model.MarksKey("node-a", "/kubepods/db-0/db"), model.MarksKey("node-b", "/kubepods/web-2/app")},
	}
	for _, tt := range tests {
		v := get(tt.src)
		if _, err := n.Batch(ctx, []kvraft.Op{{Type: kvraft.OpPut, Key: tt.key, Value: v}}); err != nil {
			t.Fatal(err)
		}
		same("after a write of " + tt.name)
	}
}
