package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pennyhq/penny/internal/alerts"
	"github.com/pennyhq/penny/internal/dashboards"
)

// rulesSource is the chart's rule file, which the rendered rules must
// hold every alert of (the repository's root is the working directory).
var rulesSource = alerts.File

// PrometheusRule is the part of monitoring.coreos.com/v1 PrometheusRule
// the chart uses: groups of rules, as in a Prometheus rule file.
type PrometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Groups []struct {
			Name     string        `json:"name"`
			Interval string        `json:"interval,omitempty"`
			Rules    []alerts.Rule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// checkMonitoring checks what the chart ships for Prometheus and Grafana:
// a ConfigMap's dashboards (*.json) pass dashboards.Lint, and rule files
// (penny-alerts.yaml, or a PrometheusRule's spec) hold every alert of the
// chart's rules/penny-alerts.yaml and pass `promtool check rules` when
// promtool is installed.
func checkMonitoring(o object, bad func(object, string, ...any)) {
	switch v := o.obj.(type) {
	case *corev1.ConfigMap:
		for k, data := range v.Data {
			switch {
			case strings.HasSuffix(k, ".json"):
				for _, err := range dashboards.Lint([]byte(data)) {
					bad(o, "%s: %v", k, err)
				}
			case k == "penny-alerts.yaml":
				checkRuleFile(o, []byte(data), bad)
			}
		}
	case *PrometheusRule:
		b, err := yaml.Marshal(v.Spec)
		if err != nil {
			bad(o, "spec: %v", err)
			return
		}
		checkRuleFile(o, b, bad)
	}
}

func checkRuleFile(o object, file []byte, bad func(object, string, ...any)) {
	got, err := alerts.Parse(file)
	if err != nil {
		bad(o, "rules: %v", err)
		return
	}
	want, err := alerts.Load(rulesSource)
	if err != nil {
		bad(o, "rules: %v (run chartcheck from the repository's root)", err)
		return
	}
	have := map[string]bool{}
	for _, r := range got {
		have[r.Alert] = true
	}
	for _, r := range want {
		if r.Alert != "" && !have[r.Alert] {
			bad(o, "rules: no alert %s", r.Alert)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		return // make test-deps installs it; the Go tests run it on the source file
	}
	dir, err := os.MkdirTemp("", "chartcheck-rules-")
	if err != nil {
		bad(o, "rules: %v", err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		bad(o, "rules: %v", err)
		return
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		bad(o, "promtool check rules: %v\n%s", err, out)
	}
}
