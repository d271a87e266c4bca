package alerts

import (
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// File is the rule file from the repository's root.
const File = "charts/penny/rules/penny-alerts.yaml"

// Rule is one alerting or recording rule.
type Rule struct {
	Group       string            `json:"-"`
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Load reads a Prometheus rule file and returns its rules, in order.
func Load(path string) ([]Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return Parse(b)
}

// Parse decodes a Prometheus rule file (groups of rules), refusing
// unknown fields.
func Parse(b []byte) ([]Rule, error) {
	var f struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Rules    []Rule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	var out []Rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if (r.Alert == "") == (r.Record == "") || r.Expr == "" {
				return nil, errors.New("alerts: group " + g.Name + ": a rule needs an alert or a record name, and an expr")
			}
			r.Group = g.Name
			out = append(out, r)
		}
	}
	return out, nil
}
