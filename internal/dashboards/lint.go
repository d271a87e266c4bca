package dashboards

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// units are the units Penny's panels may use: Grafana's ids for bytes,
// rates, durations, ratios, currencies and plain numbers.
var units = []string{"bytes", "Bps", "s", "ms", "percentunit", "short", "cps", "ops", "reqps", "currencyUSD"}

var (
	// rangeFunc finds a range vector's duration in a function over it.
	rangeFunc = regexp.MustCompile(`\b(rate|irate|increase|delta|deriv|[a-z]+_over_time)\((?:[^()\[]|\([^()]*\))*\[([^\]]+)\]`)
	// metricSel finds a Penny metric and its label matchers, if any.
	metricSel = regexp.MustCompile(`\b(penny_[a-z0-9_]+)(\{[^}]*\})?`)
)

// Lint checks one dashboard's JSON model against Penny's conventions,
// those of grafana/dashboard-linter among them, and returns every problem
// found:
//
//   - a uid, a title and the tag "penny";
//   - a datasource variable named datasource of type prometheus, and a
//     cluster variable of label values whose All matches everything (.*);
//   - every query variable, panel and query reads the datasource variable;
//   - every panel has a title, a description and a unit (among units);
//     panel ids and titles are unique;
//   - every range function (rate, increase, *_over_time) spans
//     $__rate_interval;
//   - every Penny metric selected filters on cluster=~"$cluster".
func Lint(dashboard []byte) []error {
	m, err := parse(dashboard)
	if err != nil {
		return []error{err}
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(m.UID+": "+format, args...)) }
	if m.UID == "" || m.Title == "" {
		bad("no uid or title")
	}
	if !slices.Contains(m.Tags, Tag) {
		bad("no tag %q", Tag)
	}
	vars := map[string]variable{}
	for _, v := range m.Templating.List {
		vars[v.Name] = v
		if v.Type == "query" && !isVariable(v.Datasource) {
			bad("variable %s: datasource %v, want the variable ${datasource}", v.Name, v.Datasource)
		}
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.Query != "prometheus" {
		bad("no datasource variable of type prometheus")
	}
	if v, ok := vars["cluster"]; !ok || v.Type != "query" || !v.IncludeAll || v.AllValue != ".*" {
		bad("no cluster variable of label values with All = .*")
	}
	ids, titles := map[int]bool{}, map[string]bool{}
	for _, p := range m.panels() {
		if ids[p.ID] {
			bad("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("panel %q", p.Title)
		if p.Title == "" || titles[p.Title] {
			bad("%s: no title, or one used twice", where)
		}
		titles[p.Title] = true
		if strings.TrimSpace(p.Description) == "" {
			bad("%s: no description", where)
		}
		if !slices.Contains(units, p.FieldConfig.Defaults.Unit) {
			bad("%s: unit %q, want one of %v", where, p.FieldConfig.Defaults.Unit, units)
		}
		if !isVariable(p.Datasource) {
			bad("%s: datasource %v, want the variable ${datasource}", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			bad("%s: no query", where)
		}
		for _, t := range p.Targets {
			where := fmt.Sprintf("panel %q query %s", p.Title, t.RefID)
			if !isVariable(t.Datasource) {
				bad("%s: datasource %v, want the variable ${datasource}", where, t.Datasource)
			}
			for _, e := range lintExpr(t.Expr) {
				bad("%s: %v", where, e)
			}
		}
	}
	return errs
}

// lintExpr checks one query's PromQL: its ranges and its selectors.
func lintExpr(expr string) []error {
	var errs []error
	if strings.TrimSpace(expr) == "" {
		return []error{fmt.Errorf("no expression")}
	}
	for _, m := range rangeFunc.FindAllStringSubmatch(expr, -1) {
		if m[2] != "$__rate_interval" {
			errs = append(errs, fmt.Errorf("%s over [%s], want [$__rate_interval]", m[1], m[2]))
		}
	}
	found := false
	for _, m := range metricSel.FindAllStringSubmatch(expr, -1) {
		found = true
		if !strings.Contains(m[2], `cluster=~"$cluster"`) {
			errs = append(errs, fmt.Errorf("%s%s: no cluster=~\"$cluster\"", m[1], m[2]))
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("%q reads no Penny metric", expr))
	}
	return errs
}

// isVariable tells whether ref names the datasource variable.
func isVariable(ref *dsRef) bool {
	return ref != nil && ref.Type == "prometheus" && (ref.UID == "${datasource}" || ref.UID == "$datasource")
}
