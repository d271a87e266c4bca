package recommend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// Path is where the Handler is served.
const Path = "/v1/scaling/recommendations"

// Defaults of Config.
const (
	DefaultWindow       = "7d"
	DefaultTimeout      = 30 * time.Second
	DefaultMaxWorkloads = 10_000
	// DefaultMaxConcurrent recommendations compute at once, as many as
	// allocation queries: they read as much history.
	DefaultMaxConcurrent = 2
	// maxDecisions bounds the decisions one answer reads.
	maxDecisions = 10_000
)

// ErrBusy means a request waited its whole timeout for its turn.
var ErrBusy = errors.New("recommend: too many requests at once")

// Spans reads the history of a window: a *history.Reader.
type Spans interface {
	SpansByStep(ctx context.Context, start, end time.Time, step time.Duration, opts kvraft.ReadOptions) ([]cost.Series, []cost.NodeUsage, error)
}

// Live reads the live pods and nodes: a *query.Reader.
type Live interface {
	Pods(ctx context.Context, req query.Request) (*query.Pods, error)
	Nodes(ctx context.Context, req query.Request) (*query.Nodes, error)
}

// Store reads the decisions.
type Store interface {
	Range(ctx context.Context, req kvraft.RangeRequest, opts kvraft.ReadOptions) (kvraft.RangeResult, error)
}

// PDBs are the PodDisruptionBudgets of a cluster.
type PDBs interface {
	// Selectors returns the pod selectors of a namespace's budgets, or an
	// error wrapping ErrPDBsUnknown while they are not known.
	Selectors(namespace string) ([]labels.Selector, error)
}

// Config configures a Handler.
type Config struct {
	History Spans
	Live    Live
	Store   Store
	// Prices give the spot and on-demand prices of a node type (nil:
	// OpenCost's defaults).
	Prices query.Prices
	// PDBs are the cluster's budgets; nil outside Kubernetes, where no
	// workload is known to tolerate interruption.
	PDBs PDBs
	// Cluster and TenantLabel are the cost model's (cost's defaults).
	Cluster     string
	TenantLabel string
	// Limits bound the window (cost's defaults: 90 days).
	Limits cost.Limits
	// MaxWorkloads bounds the workloads of an answer.
	MaxWorkloads  int
	MaxConcurrent int
	// LiveWindow is the span of the live pods' rates and quantiles
	// (costpolicy.DefaultWindow, what a policy decides on).
	LiveWindow time.Duration
	// DefaultStaleness bounds every read (query.DefaultStaleness).
	DefaultStaleness time.Duration
	Timeout          time.Duration
	Now              func() time.Time
	Logger           *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Prices == nil {
		c.Prices = pricing.Default()
	}
	if c.Cluster == "" {
		c.Cluster = cost.DefaultCluster
	}
	if c.TenantLabel == "" {
		c.TenantLabel = cost.DefaultTenantLabel
	}
	c.Limits.Complete()
	if c.MaxWorkloads == 0 {
		c.MaxWorkloads = DefaultMaxWorkloads
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.LiveWindow == 0 {
		c.LiveWindow = costpolicy.DefaultWindow
	}
	if c.DefaultStaleness == 0 {
		c.DefaultStaleness = query.DefaultStaleness
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks a completed config; it changes nothing.
func (c *Config) Validate() error {
	if c.History == nil || c.Live == nil || c.Store == nil {
		return errors.New("recommend: needs a history reader, a live reader and a store")
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("recommend: %w", err)
	}
	if c.MaxWorkloads < 1 || c.MaxConcurrent < 1 || c.LiveWindow <= 0 || c.DefaultStaleness < 0 || c.Timeout <= 0 {
		return errors.New("recommend: limits, windows and timeout must be positive, staleness not negative")
	}
	return nil
}

// Handler serves GET /v1/scaling/recommendations.
type Handler struct {
	cfg Config
	sem chan struct{}
}

// NewHandler returns the handler; it completes cfg with the defaults
// first.
func NewHandler(cfg Config) (*Handler, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// Request is what a request asks.
type Request struct {
	// Namespace selects one namespace's workloads ("" for all).
	Namespace string
	// Window is OpenCost's window grammar (DefaultWindow).
	Window string
}

// ParseRequest reads the parameters namespace and window; any other is
// refused, so that a typo does not silently return the default. Errors
// wrap kvraft.ErrInvalid.
func ParseRequest(v url.Values) (Request, error) {
	r := Request{Window: DefaultWindow}
	for k, vals := range v {
		if k != "namespace" && k != "window" {
			return r, fmt.Errorf("%w: unknown parameter %q (namespace, window)", kvraft.ErrInvalid, k)
		}
		if len(vals) != 1 {
			return r, fmt.Errorf("%w: parameter %s given %d times", kvraft.ErrInvalid, k, len(vals))
		}
	}
	if ns := v.Get("namespace"); ns != "" {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return r, fmt.Errorf("%w: namespace %q: %s", kvraft.ErrInvalid, ns, strings.Join(errs, "; "))
		}
		r.Namespace = ns
	}
	if w := v.Get("window"); w != "" {
		r.Window = w
	}
	return r, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		kvhttp.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
		return
	}
	req, err := ParseRequest(r.URL.Query())
	if err != nil {
		kvhttp.WriteError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	resp, err := h.Recommend(ctx, req)
	if err != nil {
		if !errors.Is(err, kvraft.ErrInvalid) && !errors.Is(err, kvraft.ErrTooLarge) {
			h.cfg.Logger.Warn("scaling recommendations failed", "query", r.URL.RawQuery, "err", err)
		}
		if errors.Is(err, ErrBusy) {
			w.Header().Set("Retry-After", "1")
			err = fmt.Errorf("%w: %w", kvraft.ErrStopped, err) // a 503
		}
		kvhttp.WriteError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	kvhttp.WriteJSON(w, http.StatusOK, resp)
}

// Recommend answers req from the replica's history, live view and store,
// read with bounded staleness.
func (h *Handler) Recommend(ctx context.Context, req Request) (*Response, error) {
	v := url.Values{"window": {req.Window}, "aggregate": {"namespace,controller,node"}, "accumulate": {"true"},
		"idle": {"false"}}
	if req.Namespace != "" {
		v.Set("filter", `namespace:"`+req.Namespace+`"`)
	}
	q, err := h.cfg.Limits.ParseQuery(v, h.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", kvraft.ErrInvalid, err)
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waited %s", ErrBusy, h.cfg.Timeout)
	}
	opts := kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: h.cfg.DefaultStaleness}
	series, nodes, err := h.cfg.History.SpansByStep(ctx, q.Window.Start, q.Window.End, q.Step, opts)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	rates := query.CostRates(h.cfg.Prices.Rates(pricing.Facts{}))
	m, err := cost.New(cost.Config{Cluster: h.cfg.Cluster, TenantLabel: h.cfg.TenantLabel, DefaultRates: &rates,
		MaxAllocations: h.cfg.MaxWorkloads * 8})
	if err != nil {
		return nil, err
	}
	res, err := m.Compute(&q, series, nodes)
	if errors.Is(err, cost.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w", kvraft.ErrTooLarge, err)
	}
	if err != nil {
		return nil, fmt.Errorf("price history: %w", err)
	}
	live, err := h.cfg.Live.Pods(ctx, query.Request{Window: h.cfg.LiveWindow, Read: opts, Pods: pods.Query{Namespace: req.Namespace}})
	if err != nil {
		return nil, fmt.Errorf("read pods: %w", err)
	}
	liveNodes, err := h.cfg.Live.Nodes(ctx, query.Request{Read: opts})
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	decisions, err := h.decisions(ctx, req.Namespace, opts)
	if err != nil {
		return nil, err
	}
	in := &input{window: q.Window, currency: res.Currency, allocations: res.Sets[0].Allocations, pods: live.Pods,
		decisions: decisions, spot: map[string]bool{}, ratio: h.ratios(liveNodes)}
	for i := range nodes {
		if nodes[i].Rates.Spot {
			in.spot[nodes[i].Node] = true
		}
	}
	var warnings []string
	if h.cfg.PDBs != nil {
		covered, err := h.coverage(live.Pods)
		switch {
		case errors.Is(err, ErrPDBsUnknown):
			warnings = append(warnings, err.Error())
		case err != nil:
			return nil, err
		default:
			in.covered = covered
		}
	}
	out := advise(in)
	if len(out.Workloads) > h.cfg.MaxWorkloads {
		return nil, fmt.Errorf("%w: more than %d workloads: ask for one namespace", kvraft.ErrTooLarge, h.cfg.MaxWorkloads)
	}
	out.Warnings = append(res.Warnings, warnings...)
	return out, nil
}

// decisions reads the CostPolicy decisions of a namespace (all when "").
func (h *Handler) decisions(ctx context.Context, namespace string, opts kvraft.ReadOptions) ([]decision, error) {
	prefix := costpolicy.DecisionPrefix
	if namespace != "" {
		prefix += namespace + "/"
	}
	res, err := h.cfg.Store.Range(ctx, kvraft.RangeRequest{Prefix: []byte(prefix), Limit: maxDecisions}, opts)
	if err != nil {
		return nil, fmt.Errorf("read decisions: %w", err)
	}
	out := make([]decision, 0, len(res.Items))
	for _, kv := range res.Items {
		k := strings.TrimPrefix(string(kv.Key), costpolicy.DecisionPrefix)
		if d, ok := decodeDecision(k, kv.Value); ok {
			out = append(out, d)
		} else {
			h.cfg.Logger.Debug("decision record not read", "key", string(kv.Key))
		}
	}
	return out, nil
}

// ratios gives each live node's spot ratio: what the pricing charges for
// a spot node of its instance type and region over what it charges for
// an on-demand one; a node gone since (or without facts) takes the
// default prices' ratio.
func (h *Handler) ratios(ns *query.Nodes) func(string) Ratio {
	facts := map[string]*nodemeta.Facts{}
	for i := range ns.Nodes {
		facts[ns.Nodes[i].Node] = &ns.Nodes[i].Facts
	}
	cache := map[string]Ratio{}
	return func(node string) Ratio {
		if r, ok := cache[node]; ok {
			return r
		}
		var f pricing.Facts
		if nf := facts[node]; nf != nil {
			f = query.PricingFacts(nf)
		}
		f.CapacityType = pricing.CapacityOnDemand
		od := h.cfg.Prices.Rates(f)
		f.CapacityType = pricing.CapacitySpot
		sp := h.cfg.Prices.Rates(f)
		r := Ratio{CPU: ratioOf(sp.CPUCoreHour, od.CPUCoreHour), RAM: ratioOf(sp.RAMGiBHour, od.RAMGiBHour)}
		cache[node] = r
		return r
	}
}

// ratioOf is spot over on-demand; 1 (no saving) when on-demand is free.
func ratioOf(spot, od float64) float64 {
	if !(od > 0) {
		return 1
	}
	return spot / od
}

// coverage returns whether budgets select a pod, from the budgets of the
// pods' namespaces.
func (h *Handler) coverage(ps []pods.Pod) (func(*pods.Pod) bool, error) {
	sels := map[string][]labels.Selector{}
	for i := range ps {
		ns := ps[i].Namespace
		if _, ok := sels[ns]; ok {
			continue
		}
		s, err := h.cfg.PDBs.Selectors(ns)
		if err != nil {
			return nil, err
		}
		sels[ns] = s
	}
	return func(p *pods.Pod) bool {
		for _, s := range sels[p.Namespace] {
			if s.Matches(labels.Set(p.Labels)) {
				return true
			}
		}
		return false
	}, nil
}
