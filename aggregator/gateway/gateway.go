package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// Config configures the gateway.
type Config struct {
	// Store is the replica the gateway reads.
	Store query.Store
	// DefaultStaleness is the bound of reads that ask for no consistency:
	// bounded staleness, so every replica answers (query.DefaultStaleness).
	DefaultStaleness time.Duration
	// Timeout bounds one request (10s).
	Timeout time.Duration
	// MaxSeries bounds the series one response reads
	// (query.DefaultMaxSeries).
	MaxSeries int
	// Prices and MemoryMeasure price containers and nodes (query.Config;
	// nil prices: OpenCost's defaults).
	Prices        query.Prices
	MemoryMeasure cost.MemoryMeasure
	Logger        *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.DefaultStaleness == 0 {
		c.DefaultStaleness = query.DefaultStaleness
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxSeries == 0 {
		c.MaxSeries = query.DefaultMaxSeries
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("gateway: no store")
	}
	if c.DefaultStaleness < 0 || c.Timeout < 0 || c.MaxSeries < 0 {
		return errors.New("gateway: negative setting")
	}
	return nil
}

// Paths the gateway serves.
const (
	ContainersPath = "/v1/containers"
	PodsPath       = "/v1/pods"
	NamespacesPath = "/v1/namespaces"
	NodesPath      = "/v1/nodes"
)

// Handler serves the gateway.
type Handler struct {
	cfg Config
	r   *query.Reader
}

// NewHandler returns the gateway's handler; mount it at ContainersPath,
// PodsPath, NamespacesPath and NodesPath.
func NewHandler(cfg Config) (*Handler, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := query.New(query.Config{Store: cfg.Store, MaxSeries: cfg.MaxSeries, Prices: cfg.Prices, MemoryMeasure: cfg.MemoryMeasure})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return &Handler{cfg: cfg, r: r}, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		kvhttp.WriteError(w, fmt.Errorf("%w: use GET", kvraft.ErrInvalid))
		return
	}
	kind := r.URL.Path
	if kind != ContainersPath && kind != PodsPath && kind != NamespacesPath && kind != NodesPath {
		http.NotFound(w, r)
		return
	}
	q, err := ParseQuery(r.URL.Query(), h.cfg.DefaultStaleness)
	selectsPods := q.Pods.Namespace != "" || q.Pods.Selector != nil || q.Pods.MetricSelector != nil
	switch {
	case err != nil:
	case kind == ContainersPath && selectsPods:
		err = fmt.Errorf("%w: namespace, selector and metric_selector select pods: use %s", kvraft.ErrInvalid, PodsPath)
	case kind == NodesPath && selectsPods:
		err = fmt.Errorf("%w: namespace, selector and metric_selector do not apply to nodes", kvraft.ErrInvalid)
	}
	if err != nil {
		kvhttp.WriteError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	var body any
	switch kind {
	case PodsPath:
		body, err = h.r.Pods(ctx, q)
	case NamespacesPath:
		body, err = h.r.Namespaces(ctx, q)
	case NodesPath:
		body, err = h.r.Nodes(ctx, q)
	default:
		body, err = h.r.Containers(ctx, q)
	}
	if err != nil {
		if !errors.Is(err, kvraft.ErrInvalid) {
			h.cfg.Logger.Warn("gateway read failed", "path", kind, "err", err)
		}
		kvhttp.WriteError(w, err)
		return
	}
	writeAnswer(w, body)
}

// writeAnswer writes a read's answer: by its own encoder when it has one
// (a namespace's pods: encoding/json took longer than the read), through
// encoding/json otherwise or should that encoder fail.
func writeAnswer(w http.ResponseWriter, body any) {
	if a, ok := body.(interface{ AppendJSON([]byte) ([]byte, error) }); ok {
		if b, err := a.AppendJSON(nil); err == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(b)
			return
		}
	}
	kvhttp.WriteJSON(w, http.StatusOK, body)
}

// ParseQuery parses node, window, the pod selection (namespace, selector,
// metric_selector) and the KV API's consistency parameters (consistency,
// max_staleness, index); without consistency, reads are bounded by
// staleness.
func ParseQuery(v url.Values, staleness time.Duration) (query.Request, error) {
	var q query.Request
	for k := range v {
		switch k {
		case "node", "window", "consistency", "max_staleness", "index", "namespace", "selector", "metric_selector":
		default:
			return q, fmt.Errorf("%w: unknown parameter %q", kvraft.ErrInvalid, k)
		}
	}
	if q.Node = v.Get("node"); q.Node != "" {
		if err := model.ValidNode(q.Node); err != nil {
			return q, fmt.Errorf("%w: %v", kvraft.ErrInvalid, err)
		}
	}
	if s := v.Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > model.MaxWindow {
			return q, fmt.Errorf("%w: window %q must be a duration up to %s", kvraft.ErrInvalid, s, model.MaxWindow)
		}
		q.Window = d
	}
	q.Pods.Namespace = v.Get("namespace")
	for _, sel := range []struct {
		param string
		dst   *labels.Selector
	}{{"selector", &q.Pods.Selector}, {"metric_selector", &q.Pods.MetricSelector}} {
		if s := v.Get(sel.param); s != "" {
			ls, err := labels.Parse(s)
			if err != nil {
				return q, fmt.Errorf("%w: %s: %v", kvraft.ErrInvalid, sel.param, err)
			}
			*sel.dst = ls
		}
	}
	if v.Get("consistency") == "" {
		if v.Get("max_staleness") != "" || v.Get("index") != "" {
			return q, fmt.Errorf("%w: max_staleness and index need consistency", kvraft.ErrInvalid)
		}
		q.Read = kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: staleness}
		return q, nil
	}
	var err error
	q.Read, err = kvhttp.ParseReadOptions(v)
	return q, err
}
