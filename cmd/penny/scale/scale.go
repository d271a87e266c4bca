package scale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pennyhq/penny/aggregator/recommend"
	"github.com/pennyhq/penny/internal/apiget"
)

// ErrAggregator means the aggregator refused the request or failed it.
var ErrAggregator = errors.New("the aggregator refused the request")

// DefaultURL is the aggregator's API unless Config.URL says otherwise.
const DefaultURL = "http://127.0.0.1:7379"

// maxBody bounds an answer: about 1 KB per workload, at most
// recommend.DefaultMaxWorkloads of them.
const maxBody = 64 << 20

// Config says what to ask and how.
type Config struct {
	// URL is the aggregator's API (DefaultURL when empty).
	URL string
	// Client makes the request (http.DefaultClient when nil).
	Client *http.Client
	// Namespace selects one namespace ("" for every one).
	Namespace string
	// Window is the history the costs cover (recommend.DefaultWindow).
	Window string
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Window == "" {
		c.Window = recommend.DefaultWindow
	}
}

// Validate checks what the aggregator does not: the URL.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("aggregator url %q: want http://HOST:PORT or https://HOST:PORT", c.URL)
	}
	return nil
}

// Params are the request's parameters.
func (c *Config) Params() url.Values {
	v := url.Values{"window": {c.Window}}
	if c.Namespace != "" {
		v.Set("namespace", c.Namespace)
	}
	return v
}

// Answer is what the aggregator answered: its body as it came, and
// decoded.
type Answer struct {
	Body     []byte
	Response recommend.Response
}

// Fetch asks the aggregator. It completes and validates a copy of cfg
// first.
func Fetch(ctx context.Context, cfg *Config) (*Answer, error) {
	c := *cfg
	c.Complete()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	got, err := apiget.Get(ctx, c.Client, c.URL, recommend.Path, c.Params(), maxBody)
	if errors.Is(err, apiget.ErrTooLarge) {
		return nil, fmt.Errorf("%w: ask for one namespace", err)
	}
	if err != nil {
		return nil, err
	}
	body := got.Body
	if got.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: %s", ErrAggregator, got.Status, apiget.ErrorMessage(body))
	}
	a := &Answer{Body: body}
	if err := json.Unmarshal(body, &a.Response); err != nil {
		return nil, fmt.Errorf("decode %s: %w", recommend.Path, err)
	}
	return a, nil
}

// Table prints one row per workload: replicas now and recommended, cost
// per 1,000 requests (in all, on on-demand and on spot nodes), latency
// against its objective, the monthly savings of spot and of the
// recommended replicas, and the advice; then what the answer warns of.
func Table(w io.Writer, a *Answer) error {
	r := &a.Response
	cur := r.Currency
	if cur == "" {
		cur = "USD"
	}
	fmt.Fprintf(w, "Workloads from %s to %s, costs in %s, savings per month (730 h); PodDisruptionBudgets %s\n",
		r.Window.Start.UTC().Format(time.RFC3339), r.Window.End.UTC().Format(time.RFC3339), cur, r.PodDisruptionBudgets)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tREPLICAS\tRECOMMENDED\tPER 1K REQ\tON-DEMAND\tSPOT\tP99\tOBJECTIVE\tSPOT SAVING\tREPLICA SAVING\tADVICE")
	for i := range r.Workloads {
		x := &r.Workloads[i]
		spot := money(x.SpotSavingMonthly)
		if x.SpotSavingMonthly != nil && x.InterruptionTolerant != nil && !*x.InterruptionTolerant {
			spot = "(" + spot + ")" // what it would save, not advice
		}
		fmt.Fprintf(tw, "%s/%s:%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.Namespace, x.Kind, x.Name, x.Replicas,
			x.RecommendedReplicas, per1k(x.CostPer1kRequests), per1k(x.OnDemand.CostPer1kRequests), per1k(x.Spot.CostPer1kRequests),
			latency(x.LatencySeconds), latency(x.ObjectiveSeconds), spot, money(x.ReplicaSavingMonthly), strings.Join(x.Advice, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, wr := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wr)
	}
	return nil
}

// per1k prints a cost per 1,000 requests with 4 significant digits.
func per1k(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

func money(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64)
}

// latency prints seconds as a duration to the microsecond.
func latency(v *float64) string {
	if v == nil {
		return "-"
	}
	return time.Duration(*v * float64(time.Second)).Round(time.Microsecond).String()
}
