package dashboards

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The parts of a dashboard's JSON model that Lint and Queries read, as
// Grafana writes them (schemaVersion 39 and later).
type (
	model struct {
		UID        string     `json:"uid"`
		Title      string     `json:"title"`
		Tags       []string   `json:"tags"`
		Panels     []jsPanel  `json:"panels"`
		Templating templating `json:"templating"`
	}
	templating struct {
		List []variable `json:"list"`
	}
	variable struct {
		Type       string `json:"type"`
		Name       string `json:"name"`
		Query      any    `json:"query"`
		Datasource *dsRef `json:"datasource"`
		IncludeAll bool   `json:"includeAll"`
		AllValue   string `json:"allValue"`
	}
	jsPanel struct {
		ID          int       `json:"id"`
		Type        string    `json:"type"`
		Title       string    `json:"title"`
		Description string    `json:"description"`
		Datasource  *dsRef    `json:"datasource"`
		Targets     []target  `json:"targets"`
		Panels      []jsPanel `json:"panels"` // a collapsed row's
		FieldConfig struct {
			Defaults struct {
				Unit string `json:"unit"`
			} `json:"defaults"`
		} `json:"fieldConfig"`
	}
	dsRef struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	target struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource *dsRef `json:"datasource"`
		Instant    bool   `json:"instant"`
	}
)

func parse(b []byte) (*model, error) {
	var m model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return &m, nil
}

// panels lists every panel, those inside collapsed rows included.
func (m *model) panels() []jsPanel {
	var out []jsPanel
	var walk func([]jsPanel)
	walk = func(ps []jsPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(m.Panels)
	return out
}

// Query is one PromQL query of a dashboard's panel.
type Query struct {
	Dashboard string // its title
	Panel     string // its panel's title
	RefID     string
	Expr      string // as written, with the dashboard's variables
	// Instant tells whether Grafana asks for one value (a bar gauge) or a
	// range.
	Instant bool
}

// Queries lists the PromQL of every panel of a dashboard's JSON model.
func Queries(dashboard []byte) ([]Query, error) {
	m, err := parse(dashboard)
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, p := range m.panels() {
		for _, t := range p.Targets {
			out = append(out, Query{Dashboard: m.Title, Panel: p.Title, RefID: t.RefID, Expr: t.Expr, Instant: t.Instant})
		}
	}
	return out, nil
}

// Variable is one template variable of a dashboard.
type Variable struct {
	Name string
	Type string // datasource, query
	// Query is a query variable's PromQL of Grafana's Prometheus
	// datasource, such as label_values(metric{matchers}, label).
	Query string
	// AllValue is what All stands for, when the variable offers All.
	AllValue   string
	IncludeAll bool
}

// Variables lists a dashboard's template variables, in order.
func Variables(dashboard []byte) ([]Variable, error) {
	m, err := parse(dashboard)
	if err != nil {
		return nil, err
	}
	var out []Variable
	for _, v := range m.Templating.List {
		q, _ := v.Query.(string)
		out = append(out, Variable{Name: v.Name, Type: v.Type, Query: q, AllValue: v.AllValue, IncludeAll: v.IncludeAll})
	}
	return out, nil
}

// Expand substitutes Grafana's variables in expr: $name, ${name} and
// [[name]] by vars[name], longest names first, and fails on a variable
// left over.
func Expand(expr string, vars map[string]string) (string, error) {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, n := range names {
		expr = strings.NewReplacer("${"+n+"}", vars[n], "[["+n+"]]", vars[n], "$"+n, vars[n]).Replace(expr)
	}
	if i := strings.IndexByte(expr, '$'); i >= 0 {
		return "", fmt.Errorf("expand %q: a variable is left at %d", expr, i)
	}
	return expr, nil
}
