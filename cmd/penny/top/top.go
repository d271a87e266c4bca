package top

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pennyhq/penny/agent/report"
	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/apiget"
)

// ErrGateway means the aggregator answered with an error.
var ErrGateway = errors.New("the aggregator refused the request")

// maxBody bounds an answer read from the gateway.
const maxBody = 256 << 20

// DefaultURL is the aggregator's API unless Config.URL says otherwise.
const DefaultURL = "http://127.0.0.1:7379"

// Config says what to fetch and how to print it.
type Config struct {
	// URL is the aggregator's API, e.g. http://127.0.0.1:7379 (DefaultURL
	// when empty).
	URL string
	// Client makes the requests (http.DefaultClient when nil).
	Client *http.Client
	// Namespace limits the pods to one namespace ("" for all).
	Namespace string
	// Selector is a label selector over the pods; MetricSelector one over
	// the containers (container=, node=).
	Selector, MetricSelector string
	// Window is the span counters, ratios and quantiles cover; 0 for the
	// agents' last interval.
	Window time.Duration
	// Sort orders the rows: "name" ("" too) or a metric (cpu, rss, cache,
	// hit, srtt50, srtt99, conn99, rx, tx, cost), largest first.
	Sort string
}

// Complete fills in the defaults: URL.
func (c *Config) Complete() {
	if c.URL == "" {
		c.URL = DefaultURL
	}
}

// sortKeys maps --sort values to metrics.
var sortKeys = map[string]string{
	"cpu": pods.CPUUsageCores, "rss": pods.MemoryRSSBytes, "cache": pods.MemoryPageCacheBytes, "hit": pods.PageCacheHitRatio,
	"srtt50": pods.TCPSRTTP50Seconds, "srtt99": pods.TCPSRTTP99Seconds, "conn99": pods.TCPConnectP99Seconds,
	"rx": pods.NetRxBytesPerSecond, "tx": pods.NetTxBytesPerSecond, "cost": pods.CostDollarsPerHour,
}

// Validate checks the config.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("aggregator url %q: want http://HOST:PORT or https://HOST:PORT", c.URL)
	}
	if c.Window < 0 {
		return errors.New("window must not be negative")
	}
	if _, ok := sortKeys[c.Sort]; !ok && c.Sort != "" && c.Sort != "name" {
		keys := []string{"name"}
		for k := range sortKeys {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return fmt.Errorf("sort %q: want one of %s", c.Sort, strings.Join(keys, ", "))
	}
	return nil
}

// Pods fetches the pods c selects, sorted as c asks. It completes and
// validates a copy of c first.
func Pods(ctx context.Context, c *Config) (*query.Pods, error) {
	var out query.Pods
	if err := get(ctx, c, gateway.PodsPath, &out); err != nil {
		return nil, err
	}
	sortRows(out.Pods, c.Sort, func(p *pods.Pod) (string, map[string]float64) {
		return p.Namespace + "/" + p.Name, p.Metrics
	})
	return &out, nil
}

// Namespaces fetches the namespaces of the pods c selects.
func Namespaces(ctx context.Context, c *Config) (*query.Namespaces, error) {
	var out query.Namespaces
	if err := get(ctx, c, gateway.NamespacesPath, &out); err != nil {
		return nil, err
	}
	sortRows(out.Namespaces, c.Sort, func(n *pods.Namespace) (string, map[string]float64) { return n.Name, n.Metrics })
	return &out, nil
}

func get(ctx context.Context, cfg *Config, path string, out any) error {
	c := *cfg
	c.Complete()
	if err := c.Validate(); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"namespace": c.Namespace, "selector": c.Selector, "metric_selector": c.MetricSelector} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if c.Window > 0 {
		q.Set("window", c.Window.String())
	}
	got, err := apiget.Get(ctx, c.Client, c.URL, path, q, maxBody)
	if err != nil {
		return err
	}
	if got.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s: %s", ErrGateway, got.Status, apiget.ErrorMessage(got.Body))
	}
	body := got.Body
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// sortRows sorts by name, or by a metric, largest first and rows without
// the metric last.
func sortRows[T any](rows []T, by string, key func(*T) (string, map[string]float64)) {
	metric := sortKeys[by]
	slices.SortStableFunc(rows, func(a, b T) int {
		an, am := key(&a)
		bn, bm := key(&b)
		if metric != "" {
			av, aok := am[metric]
			bv, bok := bm[metric]
			switch {
			case aok && !bok:
				return -1
			case !aok && bok:
				return 1
			case av != bv:
				return cmp.Compare(bv, av)
			}
		}
		return cmp.Compare(an, bn)
	})
}

// metricColumns are the metric columns of both tables.
var metricColumns = []struct {
	title  string
	metric string
	format func(float64) string
}{
	{"CPU", pods.CPUUsageCores, report.Millicores},
	{"RSS", pods.MemoryRSSBytes, func(v float64) string { return report.Bytes(int64(v)) }},
	{"PCACHE", pods.MemoryPageCacheBytes, func(v float64) string { return report.Bytes(int64(v)) }},
	{"HIT%", pods.PageCacheHitRatio, func(v float64) string { return fmt.Sprintf("%.1f", v*100) }},
	{"SRTT50", pods.TCPSRTTP50Seconds, func(v float64) string { return report.Seconds(&v) }},
	{"SRTT99", pods.TCPSRTTP99Seconds, func(v float64) string { return report.Seconds(&v) }},
	{"CONN99", pods.TCPConnectP99Seconds, func(v float64) string { return report.Seconds(&v) }},
	{"RX/s", pods.NetRxBytesPerSecond, func(v float64) string { return report.Bytes(int64(v)) }},
	{"TX/s", pods.NetTxBytesPerSecond, func(v float64) string { return report.Bytes(int64(v)) }},
	// Per hour, in the currency of the answer (Pods.Currency).
	{"COST/h", pods.CostDollarsPerHour, func(v float64) string { return report.Cost(&v) }},
}

func metricCells(m map[string]float64) []string {
	cells := make([]string, len(metricColumns))
	for i, c := range metricColumns {
		cells[i] = "-"
		if v, ok := m[c.metric]; ok {
			cells[i] = c.format(v)
		}
	}
	return cells
}

func metricTitles() []string {
	t := make([]string, len(metricColumns))
	for i, c := range metricColumns {
		t[i] = c.title
	}
	return t
}

// age is how old a sample is, as kubectl prints ages.
func age(now, t time.Time) string {
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	default:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
}

// PodsTable prints pods, one row each; the NAMESPACE column only when they
// may come from several namespaces. "-" is a metric without data.
func PodsTable(w io.Writer, ps []pods.Pod, allNamespaces bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"NAME", "NODE", "CTRS"}
	if allNamespaces {
		head = append([]string{"NAMESPACE"}, head...)
	}
	head = append(append(head, metricTitles()...), "AGE")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i := range ps {
		p := &ps[i]
		row := []string{p.Name, p.Node, fmt.Sprint(len(p.Containers))}
		if allNamespaces {
			row = append([]string{p.Namespace}, row...)
		}
		row = append(append(row, metricCells(p.Metrics)...), age(now, p.Time))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// NamespacesTable prints namespaces, one row each.
func NamespacesTable(w io.Writer, ns []pods.Namespace, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(append(append([]string{"NAMESPACE", "PODS"}, metricTitles()...), "AGE"), "\t"))
	for i := range ns {
		n := &ns[i]
		row := append(append([]string{n.Name, fmt.Sprint(n.Pods)}, metricCells(n.Metrics)...), age(now, n.Time))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}
