package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pennyhq/penny/internal/alerts"
	"github.com/pennyhq/penny/internal/testenv"
)

const root = "../.."

// monitoring renders what the chart does with the dashboards and both
// rule objects on: a PrometheusRule and a ConfigMap of the rule file, and
// a dashboard's ConfigMap.
func monitoring(t *testing.T) string {
	t.Helper()
	rules, err := os.ReadFile(filepath.Join(root, alerts.File))
	if err != nil {
		t.Fatal(err)
	}
	dash, err := os.ReadFile(filepath.Join(root, "charts/penny/dashboards/penny-self.json"))
	if err != nil {
		t.Fatal(err)
	}
	indent := func(s, by string) string { return by + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+by) }
	labels := "{helm.sh/chart: penny-0.1.0, app.kubernetes.io/name: penny, app.kubernetes.io/instance: r, " +
		`app.kubernetes.io/version: "0.1.0", app.kubernetes.io/managed-by: Helm, app.kubernetes.io/part-of: penny, ` +
		"app.kubernetes.io/component: monitoring}"
	return strings.ReplaceAll(`---
# Source: penny/templates/alerts.yaml
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: a-alerts
  namespace: ns
  labels: LABELS
spec:
`+indent(string(rules), "  ")+`
---
# Source: penny/templates/alerts.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: a-alerts
  namespace: ns
  labels: LABELS
data:
  penny-alerts.yaml: |-
`+indent(string(rules), "    ")+`
---
# Source: penny/templates/dashboards-configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: a-self-dashboard
  namespace: ns
  labels: LABELS
data:
  penny-self.json: |-
`+indent(string(dash), "    ")+"\n", "LABELS", labels)
}

func TestMonitoring(t *testing.T) {
	rulesSource = filepath.Join(root, alerts.File)
	t.Cleanup(func() { rulesSource = alerts.File })
	good := monitoring(t)
	if p := run(t, good); len(p) > 0 {
		t.Fatalf("problems in good monitoring objects: %q", p)
	}
	tests := []struct {
		name, old, new, want string
		promtool             bool
	}{
		{"unknown rule field", "\n          for: 1m\n", "\n          for: 1m\n          severity: x\n", `unknown field "severity"`, false},
		{"an alert missing", "alert: PennyNoRaftLeader", "alert: PennyNoLeader", "no alert PennyNoRaftLeader", false},
		{"bad PromQL", "sum by (cluster) (penny_kvraft_is_leader) < 1", "sum by (cluster) (penny_kvraft_is_leader < 1", "promtool check rules", true},
		{"dashboard lint", `"description": "Agent streams open`, `"descr": "Agent streams open`, "no description", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.promtool {
				testenv.RequireTool(t, "promtool", "apt-get install prometheus")
			}
			doc := strings.ReplaceAll(good, tt.old, tt.new)
			if doc == good {
				t.Fatalf("%q is not in the good objects", tt.old)
			}
			if p := run(t, doc); !strings.Contains(strings.Join(p, "\n"), tt.want) {
				t.Fatalf("want a problem with %q, got %q", tt.want, p)
			}
		})
	}
}
