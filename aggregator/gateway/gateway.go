package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// Store is what the gateway reads: a kvraft node.
type Store interface {
	Range(ctx context.Context, req kvraft.RangeRequest, opts kvraft.ReadOptions) (kvraft.RangeResult, error)
}

// Defaults of reads, shared by the custom metrics API.
const (
	// DefaultStaleness bounds reads that ask for no consistency.
	DefaultStaleness = 2 * time.Second
	// DefaultMaxSeries bounds the series one read returns.
	DefaultMaxSeries = 200000
)

// Config configures the gateway.
type Config struct {
	Store Store
	// DefaultStaleness is the bound of reads that ask for no consistency:
	// bounded staleness, so every replica answers (2s).
	DefaultStaleness time.Duration
	// Timeout bounds one request (10s).
	Timeout time.Duration
	// MaxSeries bounds the series one response reads (200000).
	MaxSeries int
	Logger    *slog.Logger
}

// Validate checks the config and fills in the defaults.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("gateway: no store")
	}
	if c.DefaultStaleness == 0 {
		c.DefaultStaleness = DefaultStaleness
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxSeries == 0 {
		c.MaxSeries = DefaultMaxSeries
	}
	if c.DefaultStaleness < 0 || c.Timeout < 0 || c.MaxSeries < 0 {
		return errors.New("gateway: negative setting")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Paths the gateway serves.
const (
	ContainersPath = "/v1/containers"
	PodsPath       = "/v1/pods"
	NamespacesPath = "/v1/namespaces"
)

// Containers is the body of GET /v1/containers.
type Containers struct {
	// Index is the store's applied index the answer reflects; pass it as
	// index with consistency=session to read at least as new later.
	Index      uint64            `json:"index"`
	Containers []model.Container `json:"containers"`
}

// Pods is the body of GET /v1/pods.
type Pods struct {
	Index uint64     `json:"index"`
	Pods  []pods.Pod `json:"pods"`
}

// Namespaces is the body of GET /v1/namespaces.
type Namespaces struct {
	Index      uint64           `json:"index"`
	Namespaces []pods.Namespace `json:"namespaces"`
}

// Handler serves the gateway.
type Handler struct {
	cfg Config
}

// NewHandler returns the gateway's handler; mount it at ContainersPath,
// PodsPath and NamespacesPath.
func NewHandler(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg}, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		kvhttp.WriteError(w, fmt.Errorf("%w: use GET", kvraft.ErrInvalid))
		return
	}
	kind := r.URL.Path
	if kind != ContainersPath && kind != PodsPath && kind != NamespacesPath {
		http.NotFound(w, r)
		return
	}
	q, err := ParseQuery(r.URL.Query(), h.cfg.DefaultStaleness)
	if err == nil && kind == ContainersPath && (q.Pods.Namespace != "" || q.Pods.Selector != nil || q.Pods.MetricSelector != nil) {
		err = fmt.Errorf("%w: namespace, selector and metric_selector select pods: use %s", kvraft.ErrInvalid, PodsPath)
	}
	if err != nil {
		kvhttp.WriteError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	body, err := Read(ctx, h.cfg.Store, q, h.cfg.MaxSeries)
	if err != nil {
		if !errors.Is(err, kvraft.ErrInvalid) {
			h.cfg.Logger.Warn("gateway read failed", "path", kind, "err", err)
		}
		kvhttp.WriteError(w, err)
		return
	}
	switch kind {
	case PodsPath:
		kvhttp.WriteJSON(w, http.StatusOK, &Pods{Index: body.Index, Pods: nonNil(pods.Group(body.Containers, q.Pods))})
	case NamespacesPath:
		ns := pods.Namespaces(pods.Group(body.Containers, q.Pods))
		kvhttp.WriteJSON(w, http.StatusOK, &Namespaces{Index: body.Index, Namespaces: nonNil(ns)})
	default:
		kvhttp.WriteJSON(w, http.StatusOK, body)
	}
}

// nonNil makes an empty list encode as [], not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Query is a parsed gateway request.
type Query struct {
	Node   string // "" for every node
	Window time.Duration
	Read   kvraft.ReadOptions
	// Pods selects pods (PodsPath and NamespacesPath only).
	Pods pods.Query
}

// ParseQuery parses node, window, the pod selection (namespace, selector,
// metric_selector) and the KV API's consistency parameters (consistency,
// max_staleness, index); without consistency, reads are bounded by
// staleness.
func ParseQuery(v url.Values, staleness time.Duration) (Query, error) {
	var q Query
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

// Read reads the containers q selects. A node's agent record and series
// are read in one range, at one index.
func Read(ctx context.Context, s Store, q Query, maxSeries int) (*Containers, error) {
	prefix := model.AllNodesPrefix()
	if q.Node != "" {
		prefix = model.NodePrefix(q.Node)
	}
	// Each series may come with a metadata key, each node with its agent
	// record.
	res, err := s.Range(ctx, kvraft.RangeRequest{Prefix: prefix, Limit: 3*maxSeries + 1}, q.Read)
	if err != nil {
		return nil, err
	}
	tooMany := fmt.Errorf("%w: more than %d series: ask for one node", kvraft.ErrTooLarge, maxSeries)
	if res.More {
		return nil, tooMany
	}
	agents := map[string]*model.Agent{}
	metas := map[[2]string][]byte{} // by node and path
	type item struct {
		node string
		s    *model.Stored
	}
	var items []item
	for _, kv := range res.Items {
		node, kind, path, err := model.ParseKey(kv.Key)
		if err != nil {
			continue // not the model's: ignore
		}
		switch kind {
		case model.KindAgent:
			a, err := model.DecodeAgent(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("agent record of %s: %w", node, err)
			}
			agents[node] = a
		case model.KindSeries:
			st, err := model.DecodeStored(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("series %q: %w", kv.Key, err)
			}
			items = append(items, item{node: node, s: st})
		case model.KindMeta:
			metas[[2]string{node, path}] = kv.Value
		}
	}
	if len(items) > maxSeries {
		return nil, tooMany
	}
	out := &Containers{Index: res.Index, Containers: make([]model.Container, 0, len(items))}
	for _, it := range items {
		if m, ok := metas[[2]string{it.node, it.s.Path}]; ok {
			if it.s.Meta, err = model.DecodeMeta(m); err != nil {
				return nil, fmt.Errorf("metadata of %q on %s: %w", it.s.Path, it.node, err)
			}
		}
		out.Containers = append(out.Containers, model.View(it.node, agents[it.node], it.s, q.Window))
	}
	slices.SortFunc(out.Containers, func(a, b model.Container) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out, nil
}
