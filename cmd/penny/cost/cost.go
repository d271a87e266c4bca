package cost

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pennyhq/penny/aggregator/allocation"
	model "github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/internal/apiget"
)

// ErrAggregator means the aggregator refused the query or failed it.
var ErrAggregator = errors.New("the aggregator refused the request")

// DefaultURL is the aggregator's API unless Config.URL says otherwise.
const DefaultURL = "http://127.0.0.1:7379"

// maxBody bounds an answer read from the aggregator: the API's own bound
// on allocations, at about 1.4 KB each.
const maxBody = 512 << 20

// Config says what to ask and how.
type Config struct {
	// URL is the aggregator's API (DefaultURL when empty).
	URL string
	// Client makes the request (http.DefaultClient when nil).
	Client *http.Client
	// Window is OpenCost's window: 24h, 7d, today, yesterday, week, an
	// RFC3339 or a Unix pair (default 24h).
	Window string
	// By is what to aggregate by: namespace (the default), pod,
	// controller, label:KEY, tenant, node or container, or OpenCost's
	// comma-separated aggregate. pod and controller are qualified by their
	// namespace.
	By string
	// Namespace keeps only the pods of one namespace ("" for all).
	Namespace string
	// Filter is an OpenCost filter, anded with Namespace.
	Filter string
	// ShareIdle shares each node's idle cost into the allocations on it.
	ShareIdle bool
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Window == "" {
		c.Window = "24h"
	}
	if c.By == "" {
		c.By = "namespace"
	}
}

// Validate checks what the aggregator does not: the URL. The query's
// parameters are the aggregator's to judge, with its reasons.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("aggregator url %q: want http://HOST:PORT or https://HOST:PORT", c.URL)
	}
	if strings.ContainsAny(c.Namespace, `"\`) {
		return fmt.Errorf("namespace %q: not a namespace name", c.Namespace)
	}
	return nil
}

// aggregate is the API's aggregate for By.
func (c *Config) aggregate() string {
	switch strings.ToLower(strings.TrimSpace(c.By)) {
	case "pod", "pods":
		return "namespace,pod"
	case "controller", "controllers":
		return "namespace,controller"
	case "namespaces", "ns":
		return "namespace"
	}
	return strings.TrimSpace(c.By)
}

// Params are the query's parameters: the whole window accumulated into
// one set.
func (c *Config) Params() url.Values {
	v := url.Values{"window": {c.Window}, "aggregate": {c.aggregate()}, "accumulate": {"true"}}
	var filters []string
	if c.Namespace != "" {
		filters = append(filters, `namespace:"`+c.Namespace+`"`)
	}
	if f := strings.TrimSpace(c.Filter); f != "" {
		if c.Namespace != "" {
			f = "(" + f + ")"
		}
		filters = append(filters, f)
	}
	if len(filters) > 0 {
		v.Set("filter", strings.Join(filters, "+"))
	}
	if c.ShareIdle {
		v.Set("shareIdle", "true")
	}
	return v
}

// Answer is what the aggregator answered: its body as it came, and decoded.
type Answer struct {
	Body     []byte
	Response model.Response
}

// Fetch asks the aggregator. It completes and validates a copy of cfg
// first.
func Fetch(ctx context.Context, cfg *Config) (*Answer, error) {
	c := *cfg
	c.Complete()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	got, err := apiget.Get(ctx, c.Client, c.URL, allocation.Path, c.Params(), maxBody)
	if errors.Is(err, apiget.ErrTooLarge) {
		return nil, fmt.Errorf("%w: aggregate more", err)
	}
	if err != nil {
		return nil, err
	}
	body := got.Body
	a := &Answer{Body: body}
	err = json.Unmarshal(body, &a.Response)
	if got.StatusCode != http.StatusOK {
		msg := a.Response.Message
		if err != nil || msg == "" {
			msg = strings.TrimSpace(string(body))
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrAggregator, got.Status, msg)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", allocation.Path, err)
	}
	return a, nil
}

// Row is one line of the table: an allocation's costs and efficiency.
type Row struct {
	Name string
	Idle bool
	// Window is the query's; Start and End bound the data in it.
	Window                    model.Window
	Start, End                time.Time
	Minutes                   float64
	CPUCoreHours, RAMGiBHours float64
	CPU, RAM, Network         float64
	// SharedIdle is the part of CPU and RAM that is shared idle.
	SharedIdle float64
	Total      float64
	// Efficiencies are usage over request (model.Allocation's); nil for
	// idle.
	CPUEfficiency, RAMEfficiency, TotalEfficiency *float64
	// Requests is how many requests the row's containers answered, and
	// CostPer1kRequests Total per 1,000 of them (nil without requests).
	Requests          float64
	CostPer1kRequests *float64
}

// Rows are the allocations of an answer's set, most expensive first, idle
// last.
func Rows(r *model.Response) []Row {
	var rows []Row
	for _, set := range r.Data {
		for name, a := range set {
			row := Row{Name: name, Idle: a.IsIdle(), Window: a.Window, Start: a.Start, End: a.End, Minutes: a.Minutes(),
				CPUCoreHours: a.CPUCoreHours, RAMGiBHours: a.RAMByteHours / model.GiB,
				CPU: a.CPUCost, RAM: a.RAMCost, Network: a.NetworkCost, SharedIdle: a.CPUCostIdle + a.RAMCostIdle, Total: a.TotalCost(),
				Requests: a.Requests}
			if v, ok := a.CostPer1kRequests(); ok {
				row.CostPer1kRequests = &v
			}
			if !row.Idle {
				ce, re, te := a.CPUEfficiency(), a.RAMEfficiency(), a.TotalEfficiency()
				row.CPUEfficiency, row.RAMEfficiency, row.TotalEfficiency = &ce, &re, &te
			}
			rows = append(rows, row)
		}
	}
	slices.SortFunc(rows, func(a, b Row) int {
		if a.Idle != b.Idle {
			if a.Idle {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(b.Total, a.Total); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return rows
}

// Totals sums rows: costs of all of them, the efficiency of those that are
// not idle, weighed by their CPU and memory cost as an allocation's total
// efficiency is.
func Totals(rows []Row) Row {
	t := Row{Name: "TOTAL"}
	var weighted, weight float64
	for _, r := range rows {
		t.CPUCoreHours += r.CPUCoreHours
		t.RAMGiBHours += r.RAMGiBHours
		t.CPU += r.CPU
		t.RAM += r.RAM
		t.Network += r.Network
		t.SharedIdle += r.SharedIdle
		t.Total += r.Total
		t.Requests += r.Requests
		if r.TotalEfficiency != nil {
			weighted += *r.TotalEfficiency * (r.CPU + r.RAM)
			weight += r.CPU + r.RAM
		}
	}
	if weight > 0 {
		e := weighted / weight
		t.TotalEfficiency = &e
	}
	if t.Requests > 0 {
		// What all the requests cost, idle included: the cluster's cost
		// per 1,000 requests.
		v := t.Total / t.Requests * 1000
		t.CostPer1kRequests = &v
	}
	return t
}

// title is the first column's title for what the rows are.
func title(by string) string {
	by = strings.TrimSpace(by)
	if k, ok := strings.CutPrefix(strings.ToLower(by), "label:"); ok && !strings.Contains(by, ",") {
		return "LABEL " + strings.ToUpper(by[len(by)-len(k):])
	}
	switch strings.ToLower(by) {
	case "pod", "pods":
		return "NAMESPACE/POD"
	case "controller", "controllers":
		return "NAMESPACE/CONTROLLER"
	case "ns", "namespaces":
		return "NAMESPACE"
	}
	return strings.ToUpper(by)
}

// Table prints the answer as a table with a line of totals. The shared idle
// column shows only when idle was shared, the cost per 1,000 requests only
// when some row answered requests ("-" for a row without).
func Table(w io.Writer, a *Answer, cfg *Config) error {
	c := *cfg
	c.Complete()
	rows := Rows(&a.Response)
	tot := Totals(rows)
	cur := a.Response.Currency
	if cur == "" {
		cur = "USD"
	}
	if len(rows) > 0 {
		win := rows[0].Window
		fmt.Fprintf(w, "Cost in %s from %s to %s (%s), by %s\n", cur, win.Start.UTC().Format(time.RFC3339),
			win.End.UTC().Format(time.RFC3339), c.Window, c.By)
	}
	shared := tot.SharedIdle > 0 || c.ShareIdle
	head := []string{title(c.By), "CPU", "RAM", "NETWORK"}
	if shared {
		head = append(head, "SHARED IDLE")
	}
	head = append(head, "TOTAL", "CPU EFF", "RAM EFF", "EFFICIENCY")
	perReq := tot.Requests > 0
	if perReq {
		head = append(head, "PER 1K REQ")
	}
	// Numbers align right, names left: padded to one width.
	width := len(head[0])
	for _, r := range rows {
		width = max(width, len(r.Name))
	}
	head[0] = fmt.Sprintf("%-*s", width, head[0])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	money := moneyFormat(tot.Total)
	line := func(r Row) {
		cells := []string{fmt.Sprintf("%-*s", width, r.Name), money(r.CPU), money(r.RAM), money(r.Network)}
		if r.Idle {
			cells[3] = "-"
		}
		if shared {
			cells = append(cells, money(r.SharedIdle))
		}
		cells = append(cells, money(r.Total), pct(r.CPUEfficiency), pct(r.RAMEfficiency), pct(r.TotalEfficiency))
		if perReq {
			cells = append(cells, perThousand(r.CostPer1kRequests))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	for _, r := range rows {
		line(r)
	}
	line(tot)
	if err := tw.Flush(); err != nil {
		return err
	}
	if a.Response.Warning != "" {
		fmt.Fprintf(w, "warning: %s\n", a.Response.Warning)
	}
	return nil
}

// moneyFormat formats every amount of a table with the same decimals:
// six for a total under 1, four under 100, two above.
func moneyFormat(total float64) func(float64) string {
	prec := 2
	switch {
	case total < 1:
		prec = 6
	case total < 100:
		prec = 4
	}
	return func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
}

// perThousand formats a cost per 1,000 requests with 4 significant
// digits: they are small amounts, often under a thousandth.
func perThousand(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *v*100)
}

// CSVHeader is the header line of CSV. The requests columns came last,
// after the currency, so that earlier columns keep their places.
var CSVHeader = []string{"name", "start", "end", "minutes", "cpu_core_hours", "ram_gib_hours", "cpu_cost", "ram_cost",
	"network_cost", "shared_idle_cost", "total_cost", "cpu_efficiency", "ram_efficiency", "total_efficiency", "currency",
	"requests", "cost_per_1k_requests"}

// CSV prints the rows, idle included, with a header; numbers to the
// API's 6 decimals, efficiencies as ratios (empty for idle), the cost per
// 1,000 requests empty without requests.
func CSV(w io.Writer, a *Answer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64) }
	ratio := func(v *float64) string {
		if v == nil {
			return ""
		}
		return f(*v)
	}
	for _, r := range Rows(&a.Response) {
		if err := cw.Write([]string{r.Name, r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339), f(r.Minutes),
			f(r.CPUCoreHours), f(r.RAMGiBHours), f(r.CPU), f(r.RAM), f(r.Network), f(r.SharedIdle), f(r.Total),
			ratio(r.CPUEfficiency), ratio(r.RAMEfficiency), ratio(r.TotalEfficiency), a.Response.Currency,
			f(r.Requests), ratio(r.CostPer1kRequests)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
