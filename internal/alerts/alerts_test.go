package alerts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pennyhq/penny/internal/alerts"
	"github.com/pennyhq/penny/internal/testenv"
)

// root is the repository's root from this package.
const root = "../.."

// TestPromtool runs promtool check rules and promtool test rules on the
// chart's rule file.
func TestPromtool(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool", "apt-get install prometheus")
	dir := filepath.Join(root, filepath.Dir(alerts.File))
	for _, args := range [][]string{
		{"check", "rules", filepath.Base(alerts.File)},
		{"test", "rules", "penny-alerts.test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEveryAlertTested checks that every alert has a severity, a summary
// and a description, and a unit test in which it fires.
func TestEveryAlertTested(t *testing.T) {
	rules, err := alerts.Load(filepath.Join(root, alerts.File))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "charts/penny/rules/penny-alerts.test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		n++
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: no summary or description", r.Alert)
		}
		if !fires[r.Alert] {
			t.Errorf("%s: no unit test in which it fires", r.Alert)
		}
	}
	if n < 8 {
		t.Errorf("%d alerts, want the 8 of issue 16 at least", n)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ name, file string }{
		{"unknown field", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    severity: x\n"},
		{"no name", "groups:\n- name: g\n  rules:\n  - expr: up\n"},
		{"both names", "groups:\n- name: g\n  rules:\n  - alert: A\n    record: a\n    expr: up\n"},
		{"no expr", "groups:\n- name: g\n  rules:\n  - alert: A\n"},
	}
	for _, tt := range tests {
		if _, err := alerts.Parse([]byte(tt.file)); err == nil {
			t.Errorf("%s: parsed", tt.name)
		}
	}
}
