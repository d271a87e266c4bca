package allocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// Path is where the Handler is served.
const Path = "/v1/allocation"

// Spans reads the history of a window: a *history.Reader.
type Spans interface {
	SpansByStep(ctx context.Context, start, end time.Time, step time.Duration, opts kvraft.ReadOptions) ([]cost.Series, []cost.NodeUsage, error)
}

// Defaults of Config.
const (
	// DefaultTimeout bounds one request: a 90-day window of thousands of
	// containers reads and prices in seconds, not minutes.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAllocations bounds the allocations of one answer, over all
	// its steps: about 1.4 KB of JSON each, 140 MB in all.
	DefaultMaxAllocations = 100_000
	// DefaultMaxConcurrent is how many queries compute at once; the others
	// wait their turn within their timeout.
	DefaultMaxConcurrent = 2
)

// ErrBusy means a query waited its whole timeout for its turn.
var ErrBusy = errors.New("allocation: too many queries at once")

// Config configures a Handler.
type Config struct {
	// History reads the window's spans: the replica's history.Reader.
	History Spans
	// Prices give the rates of containers on nodes without node data (nil:
	// OpenCost's defaults); the prices in force, not those of the time.
	Prices query.Prices
	// Cluster names the cluster in properties and keys
	// (cost.DefaultCluster); TenantLabel is the pod label that names a
	// tenant (cost.DefaultTenantLabel).
	Cluster     string
	TenantLabel string
	// Limits bound the window and the steps of a query (cost's defaults:
	// 90 days, 10,000 steps); MaxAllocations the allocations of an answer.
	Limits         cost.Limits
	MaxAllocations int
	// MaxConcurrent queries compute at once (DefaultMaxConcurrent).
	MaxConcurrent int
	// DefaultStaleness bounds reads that ask for no consistency
	// (query.DefaultStaleness): bounded staleness, so every replica
	// answers.
	DefaultStaleness time.Duration
	// Timeout bounds one request (DefaultTimeout).
	Timeout time.Duration
	// Now is the clock windows such as "today" and "24h" are relative to
	// (time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer, if set, receives the handler's metrics.
	Registerer prometheus.Registerer
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
	if c.MaxAllocations == 0 {
		c.MaxAllocations = DefaultMaxAllocations
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
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

// Validate checks a completed config; it changes nothing. History is
// NewHandler's to check, so that a server can check the settings before it
// has a store.
func (c *Config) Validate() error {
	mc := cost.Config{Cluster: c.Cluster, TenantLabel: c.TenantLabel, MaxAllocations: c.MaxAllocations}
	mc.Complete()
	if err := mc.Validate(); err != nil {
		return fmt.Errorf("allocation: %w", err)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("allocation: %w", err)
	}
	if c.MaxConcurrent < 1 || c.DefaultStaleness < 0 || c.Timeout <= 0 {
		return errors.New("allocation: max concurrent and timeout must be positive, staleness not negative")
	}
	return nil
}

// Handler serves GET /v1/allocation.
type Handler struct {
	cfg  Config
	sem  chan struct{}
	reqs *prometheus.CounterVec
	dur  prometheus.Histogram
}

// NewHandler returns the handler; it completes cfg with the defaults
// first.
func NewHandler(cfg Config) (*Handler, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.History == nil {
		return nil, errors.New("allocation: no history reader")
	}
	h := &Handler{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent),
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_allocation_requests_total",
			Help: "GET /v1/allocation requests, by HTTP status code."}, []string{"code"}),
		dur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "penny_allocation_request_duration_seconds",
			Help:    "Time to answer GET /v1/allocation: the history read, the pricing and the JSON.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
	if r := cfg.Registerer; r != nil {
		for _, c := range []prometheus.Collector{h.reqs, h.dur} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("allocation: metrics: %w", err)
			}
		}
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.reqs.WithLabelValues(strconv.Itoa(code)).Inc()
	h.dur.Observe(time.Since(start).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return writeError(w, http.StatusMethodNotAllowed, errors.New("use GET"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	res, err := h.Compute(ctx, r.URL.Query())
	if err != nil {
		code := statusOf(err)
		if code >= 500 {
			h.cfg.Logger.Warn("allocation query failed", "query", r.URL.RawQuery, "err", err)
		}
		if errors.Is(err, kvraft.ErrNoLeader) || errors.Is(err, ErrBusy) {
			w.Header().Set("Retry-After", "1")
		}
		return writeError(w, code, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := writeResponse(w, res.Response()); err != nil {
		h.cfg.Logger.Debug("allocation answer not written", "err", err) // the client went away
	}
	return http.StatusOK
}

// Compute answers the query the parameters v ask for: it parses them,
// reads the window's history from the local replica at the consistency
// they ask for (bounded staleness by default) and prices it. Errors wrap
// cost.ErrInvalid or kvraft.ErrInvalid for bad parameters, cost.ErrTooLarge
// or kvraft.ErrTooLarge for too much data, ErrBusy when the query waited
// ctx out for its turn.
func (h *Handler) Compute(ctx context.Context, v url.Values) (*cost.Result, error) {
	q, err := h.cfg.Limits.ParseQuery(v, h.cfg.Now())
	if err != nil {
		return nil, err
	}
	opts, err := readOptions(v, h.cfg.DefaultStaleness)
	if err != nil {
		return nil, err
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waited %s", ErrBusy, h.cfg.Timeout)
	}
	series, nodes, err := h.cfg.History.SpansByStep(ctx, q.Window.Start, q.Window.End, q.Step, opts)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	rates := query.CostRates(h.cfg.Prices.Rates(pricing.Facts{}))
	m, err := cost.New(cost.Config{Cluster: h.cfg.Cluster, TenantLabel: h.cfg.TenantLabel, DefaultRates: &rates,
		MaxAllocations: h.cfg.MaxAllocations})
	if err != nil {
		return nil, err
	}
	return m.Compute(&q, series, nodes)
}

// readOptions parses the consistency parameters as every gateway read
// does: without consistency, bounded staleness.
func readOptions(v url.Values, staleness time.Duration) (kvraft.ReadOptions, error) {
	if v.Get("consistency") == "" {
		if v.Get("max_staleness") != "" || v.Get("index") != "" {
			return kvraft.ReadOptions{}, &cost.ParamError{Param: "consistency", Reason: "max_staleness and index need consistency"}
		}
		return kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: staleness}, nil
	}
	opts, err := kvhttp.ParseReadOptions(v)
	if err != nil {
		return opts, fmt.Errorf("%w: %w", cost.ErrInvalid, err)
	}
	return opts, nil
}

// statusOf maps an error to an HTTP status code.
func statusOf(err error) int {
	switch {
	case errors.Is(err, kvraft.ErrNoLeader), errors.Is(err, ErrBusy): // no leader wraps a deadline
		return http.StatusServiceUnavailable
	case errors.Is(err, cost.ErrInvalid), errors.Is(err, kvraft.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, cost.ErrTooLarge), errors.Is(err, kvraft.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, kvraft.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, kvraft.ErrStopped), errors.Is(err, kvraft.ErrRemoved), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError writes OpenCost's error envelope with the status code.
func writeError(w http.ResponseWriter, code int, err error) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(cost.ErrorResponse(code, err))
	return code
}

// The history reader is what reads spans in a replica.
var _ Spans = (*history.Reader)(nil)
