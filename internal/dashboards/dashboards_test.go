package dashboards_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pennyhq/penny/internal/dashboards"
)

// dir holds the dashboards the chart ships.
const dir = "../../charts/penny/dashboards"

// committed reads the committed dashboards, by file name.
func committed(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dir, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// TestCommittedAreBuilt fails when the committed JSON is not what the code
// builds: run go run ./hack/dashboards.
func TestCommittedAreBuilt(t *testing.T) {
	files := committed(t)
	ds, err := dashboards.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if !bytes.Equal(files[d.File], d.JSON) {
			t.Errorf("%s/%s is stale: run go run ./hack/dashboards", dir, d.File)
		}
		delete(files, d.File)
	}
	for f := range files {
		t.Errorf("%s/%s is built by no code", dir, f)
	}
}

// TestLintCommitted lints every committed dashboard, and checks that
// their uids differ and that each has panels.
func TestLintCommitted(t *testing.T) {
	uids := map[string]string{}
	for f, b := range committed(t) {
		for _, err := range dashboards.Lint(b) {
			t.Errorf("%s: %v", f, err)
		}
		var m struct {
			UID string `json:"uid"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if other, ok := uids[m.UID]; ok {
			t.Errorf("%s and %s have the same uid %q", f, other, m.UID)
		}
		uids[m.UID] = f
		qs, err := dashboards.Queries(b)
		if err != nil || len(qs) < 5 {
			t.Errorf("%s: %d queries, %v", f, len(qs), err)
		}
	}
}

// TestLintFinds breaks a good dashboard in each way the lint looks for,
// and expects the lint to say so.
func TestLintFinds(t *testing.T) {
	good := committed(t)["penny-self.json"]
	if errs := dashboards.Lint(good); len(errs) > 0 {
		t.Fatalf("the good dashboard has problems: %v", errs)
	}
	firstPanel := func(m map[string]any) map[string]any { return m["panels"].([]any)[1].(map[string]any) }
	firstTarget := func(m map[string]any) map[string]any {
		return firstPanel(m)["targets"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name   string
		break_ func(m map[string]any)
		want   string
	}{
		{"no description", func(m map[string]any) { firstPanel(m)["description"] = " " }, "no description"},
		{"no unit", func(m map[string]any) {
			delete(firstPanel(m)["fieldConfig"].(map[string]any)["defaults"].(map[string]any), "unit")
		}, "unit"},
		{"unknown unit", func(m map[string]any) {
			firstPanel(m)["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["unit"] = "watts"
		}, "unit"},
		{"fixed datasource", func(m map[string]any) {
			firstPanel(m)["datasource"] = map[string]any{"type": "prometheus", "uid": "P1"}
		}, "datasource"},
		{"query datasource", func(m map[string]any) { delete(firstTarget(m), "datasource") }, "datasource"},
		{"rate over 5m", func(m map[string]any) {
			firstTarget(m)["expr"] = `sum(rate(penny_ingest_frames_total{cluster=~"$cluster"}[5m]))`
		}, "want [$__rate_interval]"},
		{"increase over 1h", func(m map[string]any) {
			firstTarget(m)["expr"] = `sum(increase(penny_ingest_frames_total{cluster=~"$cluster", job="x"}[1h]))`
		}, "want [$__rate_interval]"},
		{"no cluster filter", func(m map[string]any) { firstTarget(m)["expr"] = `sum(penny_ingest_streams)` }, "no cluster"},
		{"another metric", func(m map[string]any) { firstTarget(m)["expr"] = `sum(up{cluster=~"$cluster"})` }, "no Penny metric"},
		{"same panel id", func(m map[string]any) { firstPanel(m)["id"] = m["panels"].([]any)[0].(map[string]any)["id"] }, "panel id"},
		{"same title", func(m map[string]any) {
			firstPanel(m)["title"] = m["panels"].([]any)[2].(map[string]any)["title"]
		}, "used twice"},
		{"no tag", func(m map[string]any) { m["tags"] = []any{} }, "tag"},
		{"no cluster variable", func(m map[string]any) {
			l := m["templating"].(map[string]any)
			l["list"] = l["list"].([]any)[:1]
		}, "cluster variable"},
		{"no datasource variable", func(m map[string]any) {
			l := m["templating"].(map[string]any)
			l["list"] = l["list"].([]any)[1:]
		}, "datasource variable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			tt.break_(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			errs := dashboards.Lint(b)
			for _, err := range errs {
				if strings.Contains(err.Error(), tt.want) {
					return
				}
			}
			t.Errorf("lint found %v, want a problem with %q", errs, tt.want)
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"cluster": ".*", "node": "n1", "namespace": "shop", "__rate_interval": "4s"}
	tests := []struct {
		in, want string
		fails    bool
	}{
		{`rate(x{cluster=~"$cluster"}[$__rate_interval])`, `rate(x{cluster=~".*"}[4s])`, false},
		{`x{namespace="${namespace}", node=~"[[node]]"}`, `x{namespace="shop", node=~"n1"}`, false},
		{`x{pod=~"$pod"}`, "", true},
	}
	for _, tt := range tests {
		got, err := dashboards.Expand(tt.in, vars)
		if (err != nil) != tt.fails || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q, failing %t", tt.in, got, err, tt.want, tt.fails)
		}
	}
}
