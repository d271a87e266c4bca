package dashboards

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Dashboard is one dashboard as the chart ships it.
type Dashboard struct {
	// File is its file name under charts/penny/dashboards/.
	File string
	// JSON is the dashboard model, indented, with a final newline.
	JSON []byte
}

// All builds every dashboard, in a stable order.
func All() ([]Dashboard, error) {
	var out []Dashboard
	for _, d := range []struct {
		file  string
		build func() *board
	}{
		{"penny-cost.json", costDashboard},
		{"penny-workload.json", workloadDashboard},
		{"penny-node.json", nodeDashboard},
		{"penny-self.json", selfDashboard},
	} {
		m, err := d.build().Build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.file, err)
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.file, err)
		}
		out = append(out, Dashboard{File: d.file, JSON: append(b, '\n')})
	}
	return out, nil
}

// Tag is on every Penny dashboard, and links them to each other.
const Tag = "penny"

// datasource is the datasource variable every panel and variable queries.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// cluster filters on the cluster variable. Its "All" is .*, which also
// matches series without a cluster label: a Prometheus that watches one
// cluster seldom adds one.
const cluster = `cluster=~"$cluster"`

// newDashboard starts a dashboard with Penny's conventions: the
// datasource and cluster variables, the links to the other Penny
// dashboards, the browser's time zone and a 30s refresh.
//
// The classic dashboard model (schemaVersion 42), not the SDK's preferred
// dashboardv2: the v2 schema needs Grafana 12 with dynamic dashboards
// turned on, while the sidecar provisions the classic JSON model on any
// current Grafana.
func newDashboard(uid, title, description string) *board {
	//lint:ignore SA1019 the classic model on purpose, see above
	return &board{DashboardBuilder: dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{Tag}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Link(dashboard.NewDashboardLinkBuilder("Penny").Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{Tag}).AsDropdown(true).IncludeVars(true).KeepTime(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Description("The Prometheus that scrapes Penny's aggregators and agents.").
			Type("prometheus")).
		WithVariable(queryVariable("cluster", "Cluster",
			"The cluster label Prometheus adds to Penny's series, if any: All matches series without one too.",
			"label_values(penny_node_info, cluster)").IncludeAll(true).AllValue(".*"))}
}

// queryVariable is a variable of label values.
func queryVariable(name, label, description, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Description(description).
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// kind is how a panel shows its queries.
type kind int

const (
	graph  kind = iota // a time series
	single             // a stat: the last value
	bars               // a bar gauge of an instant query, largest first
)

// panel is one panel's specification.
type panel struct {
	kind        kind
	title       string
	description string
	unit        string
	width       uint32 // of 24 columns; 12 when 0
	height      uint32 // 8 when 0
	signed      bool   // a graph whose values may be negative (no minimum of 0)
	queries     []query
}

// query is one PromQL query of a panel and its legend.
type query struct {
	expr   string
	legend string
}

func q(expr, legend string) query { return query{expr: expr, legend: legend} }

// build turns a panel's specification into a builder.
func (p panel) build(id uint32) cog.Builder[dashboard.Panel] {
	w, h := p.width, p.height
	if w == 0 {
		w = 12
	}
	if h == 0 {
		h = 8
	}
	var targets []cog.Builder[variants.Dataquery]
	for i, qu := range p.queries {
		t := prometheus.NewDataqueryBuilder().Expr(qu.expr).LegendFormat(qu.legend).
			RefId(string(rune('A' + i))).Datasource(datasource)
		if p.kind == bars {
			t = t.Instant()
		} else {
			t = t.Range()
		}
		targets = append(targets, t)
	}
	switch p.kind {
	case single:
		return stat.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).Unit(p.unit).
			Datasource(datasource).Targets(targets).Span(w).Height(h).
			GraphMode(common.BigValueGraphModeArea).Orientation(common.VizOrientationAuto).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	case bars:
		return bargauge.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).Unit(p.unit).
			Datasource(datasource).Targets(targets).Span(w).Height(h).
			Orientation(common.VizOrientationHorizontal).DisplayMode(common.BarGaugeDisplayModeGradient).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	default:
		b := timeseries.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).Unit(p.unit).
			Datasource(datasource).Targets(targets).Span(w).Height(h).FillOpacity(10).
			Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeTable).
				Placement(common.LegendPlacementBottom).ShowLegend(true).Calcs([]string{"mean", "lastNotNull", "max"})).
			Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
		if !p.signed {
			b = b.Min(0)
		}
		return b
	}
}

// board is a dashboard being built, and the id of its next panel.
type board struct {
	*dashboard.DashboardBuilder
	next uint32
}

// add adds a row of panels, numbering them.
func (b *board) add(row string, ps ...panel) {
	b.next++
	b.WithRow(dashboard.NewRowBuilder(row).Id(b.next))
	for _, p := range ps {
		b.next++
		b.WithPanel(p.build(b.next))
	}
}

// sel is a selector of the cluster variable and more matchers.
func sel(matchers ...string) string {
	return "{" + strings.Join(append([]string{cluster}, matchers...), ", ") + "}"
}

// dedup takes, of what every aggregator replica exports for the whole
// store, one value per series identity (by): the replicas' values differ
// only by how far each has applied the log.
func dedup(by, expr string) string {
	return "max by (" + by + ") (" + expr + ")"
}

// rate is a per-second rate over $__rate_interval.
func rate(metric, selector string) string {
	return "rate(" + metric + selector + "[$__rate_interval])"
}

// containerKey identifies a container series across replicas.
const containerKey = "cluster, node, cgroup"

// byPod joins a container expression (one series per cluster, node and
// cgroup) to penny_container_info{info...}, keeping the pod's namespace
// and name, and aggregates it per pod with agg (sum, max, min).
func byPod(agg, expr string, info ...string) string {
	return agg + " by (namespace, pod) (" + dedup(containerKey, expr) +
		" * on (" + containerKey + ") group_left (namespace, pod) " +
		dedup(containerKey+", namespace, pod", "penny_container_info"+sel(info...)) + ")"
}
