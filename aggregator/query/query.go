package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/aggregator/podindex"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/kvraft"
)

// Store is what queries read: a kvraft node.
type Store interface {
	Range(ctx context.Context, req kvraft.RangeRequest, opts kvraft.ReadOptions) (kvraft.RangeResult, error)
}

// IndexedStore is a store that keeps a pod index as it applies entries
// (podindex.Store): a Reader of it reads through the index unless its
// Config names one.
type IndexedStore interface {
	Viewer
	PodIndex() *podindex.Index
}

// Viewer is a store whose state can be read at one point together with an
// index that follows it: a kvraft node whose Config.Watcher is the index.
type Viewer interface {
	View(ctx context.Context, opts kvraft.ReadOptions, fn func(kvraft.State) error) error
}

// Defaults every reader shares.
const (
	// DefaultStaleness bounds the reads of callers that ask for no
	// consistency: bounded staleness, so every replica answers.
	DefaultStaleness = 2 * time.Second
	// DefaultMaxSeries bounds the series one read decodes.
	DefaultMaxSeries = 200000
)

// ErrNoStore means a Config has no store.
var ErrNoStore = errors.New("query: no store")

// Config configures a Reader.
type Config struct {
	Store Store
	// MaxSeries bounds the series one read decodes (DefaultMaxSeries); a
	// read that would decode more fails with kvraft.ErrTooLarge.
	MaxSeries int
	// Prices price every container and node from its node's facts: the
	// aggregator's *pricing.Watcher, which follows the pricing file (nil:
	// OpenCost's default prices, pricing.Default).
	Prices Prices
	// MemoryMeasure is the memory a container is charged for when it uses
	// more than it requests (cost.MemoryRSS, the default; the history's
	// rollups take the same setting).
	MemoryMeasure cost.MemoryMeasure
	// Index, when set, is the store's pod index (the kvraft node's
	// Watcher, and Store must then be a Viewer): reads of one namespace's
	// pods, or one pod's, read their own series through it instead of
	// decoding every series in the store. Nil: every read ranges over the
	// store.
	Index *podindex.Index
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if s, ok := c.Store.(IndexedStore); ok && c.Index == nil {
		c.Index = s.PodIndex()
	}
	if c.MaxSeries == 0 {
		c.MaxSeries = DefaultMaxSeries
	}
	if c.Prices == nil {
		c.Prices = pricing.Default()
	}
	if c.MemoryMeasure == "" {
		c.MemoryMeasure = cost.MemoryRSS
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Store == nil {
		return ErrNoStore
	}
	if c.MaxSeries < 0 {
		return fmt.Errorf("query: max series %d is negative", c.MaxSeries)
	}
	if c.Prices == nil {
		return errors.New("query: no prices")
	}
	if _, ok := c.Store.(Viewer); c.Index != nil && !ok {
		return errors.New("query: an index needs a store with views")
	}
	if m, err := cost.ParseMemoryMeasure(string(c.MemoryMeasure)); err != nil || m != c.MemoryMeasure {
		return fmt.Errorf("query: memory measure %q: want %s, %s or %s", c.MemoryMeasure, cost.MemoryRSS,
			cost.MemoryRSSPageCache, cost.MemoryWorkingSet)
	}
	return nil
}

// Request selects what a read returns.
type Request struct {
	// Node restricts the read to one node's containers; "" reads every
	// node.
	Node string
	// Window is the span that counters, ratios and quantiles cover; 0 is
	// each node's last interval (at most model.MaxWindow).
	Window time.Duration
	// Read is the consistency of the read.
	Read kvraft.ReadOptions
	// Pods selects pods (Pods and Namespaces only).
	Pods pods.Query
}

// Containers is the answer of a containers read, and the body of
// GET /v1/containers.
type Containers struct {
	// Index is the store's applied index the answer reflects; pass it as
	// index with consistency=session to read at least as new later.
	Index uint64 `json:"index"`
	// Currency is the ISO 4217 code of every cost (cost_dollars_per_hour
	// is in it, whatever its name says).
	Currency   string            `json:"currency"`
	Containers []model.Container `json:"containers"`
	// Warnings say what was priced on a guess: the containers of a node
	// without facts, at the default prices.
	Warnings []string `json:"warnings,omitempty"`
}

// Pods is the answer of a pods read, and the body of GET /v1/pods.
type Pods struct {
	Index    uint64     `json:"index"`
	Currency string     `json:"currency"`
	Pods     []pods.Pod `json:"pods"`
	Warnings []string   `json:"warnings,omitempty"`
}

// Namespaces is the answer of a namespaces read, and the body of
// GET /v1/namespaces.
type Namespaces struct {
	Index      uint64           `json:"index"`
	Currency   string           `json:"currency"`
	Namespaces []pods.Namespace `json:"namespaces"`
	Warnings   []string         `json:"warnings,omitempty"`
}

// Reader answers queries from a store. It is safe for concurrent use.
type Reader struct {
	cfg Config
}

// New returns a reader of cfg.Store.
func New(cfg Config) (*Reader, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Reader{cfg: cfg}, nil
}

// Pods returns the pods req selects, sorted by namespace and name;
// containers outside Kubernetes are left out.
func (r *Reader) Pods(ctx context.Context, req Request) (*Pods, error) {
	cs, err := r.podContainers(ctx, req)
	if err != nil {
		return nil, err
	}
	return &Pods{Index: cs.Index, Currency: cs.Currency, Pods: nonNil(pods.Group(cs.Containers, req.Pods)),
		Warnings: cs.Warnings}, nil
}

// Namespaces returns the namespaces of the pods req selects, sorted by
// name.
func (r *Reader) Namespaces(ctx context.Context, req Request) (*Namespaces, error) {
	cs, err := r.podContainers(ctx, req)
	if err != nil {
		return nil, err
	}
	ns := pods.Namespaces(pods.Group(cs.Containers, req.Pods))
	return &Namespaces{Index: cs.Index, Currency: cs.Currency, Namespaces: nonNil(ns), Warnings: cs.Warnings}, nil
}

// Containers returns the containers of req.Node (every node when empty),
// sorted by node and path, each with its cost rate. req.Pods is not
// applied: containers are not pods.
func (r *Reader) Containers(ctx context.Context, req Request) (*Containers, error) {
	s, err := r.Read(ctx, req)
	if err != nil {
		return nil, err
	}
	return &Containers{Index: s.Index, Currency: s.Currency, Containers: s.Containers, Warnings: s.Warnings}, nil
}

// Snapshot is the containers and the nodes of one read, at one index.
type Snapshot struct {
	Index    uint64
	Currency string
	// Containers are sorted by node and path, Nodes (those with an agent
	// record) by name.
	Containers []model.Container
	Nodes      []Node
	Warnings   []string
}

// Read reads the containers and the nodes of req.Node (every node when
// empty) in one range, at one index, and prices them: each container's
// cost rate, each node's cost and idle (docs/cost.md, "Cost rate now").
// Readers that need both, as the exporter does, read once.
func (r *Reader) Read(ctx context.Context, req Request) (*Snapshot, error) {
	prefix, err := checkRequest(req)
	if err != nil {
		return nil, err
	}
	// Each series may come with a metadata key and a checkpoints key, each
	// node with its agent record.
	res, err := r.cfg.Store.Range(ctx, kvraft.RangeRequest{Prefix: prefix, Limit: 4*r.cfg.MaxSeries + 1}, req.Read)
	if err != nil {
		return nil, err
	}
	if res.More {
		return nil, r.tooMany()
	}
	return r.build(req, res.Index, res.Items)
}

// checkRequest checks req and returns the prefix of what it reads.
func checkRequest(req Request) ([]byte, error) {
	if req.Window < 0 || req.Window > model.MaxWindow {
		return nil, fmt.Errorf("%w: window %s must be at most %s", kvraft.ErrInvalid, req.Window, model.MaxWindow)
	}
	if req.Node == "" {
		return model.AllNodesPrefix(), nil
	}
	if err := model.ValidNode(req.Node); err != nil {
		return nil, fmt.Errorf("%w: %w", kvraft.ErrInvalid, err)
	}
	return model.NodePrefix(req.Node), nil
}

func (r *Reader) tooMany() error {
	return fmt.Errorf("%w: more than %d series: ask for one node", kvraft.ErrTooLarge, r.cfg.MaxSeries)
}

// decoded decodes a series from its pairs (those absent are zero),
// taking its metadata decoded from the index when the index has the same.
func (r *Reader) decoded(ref podindex.Ref, series, meta, marks kvraft.KV) (*model.Stored, error) {
	if r.cfg.Index != nil && meta.Value != nil {
		if kube, ok := r.cfg.Index.Kube(ref, meta.ModIndex); ok {
			st, err := decodeSeries(ref.Node, ref.Path, series.Value, nil, marks.Value)
			if err == nil {
				st.SetKube(kube)
			}
			return st, err
		}
	}
	return decodeSeries(ref.Node, ref.Path, series.Value, meta.Value, marks.Value)
}

// decodeSeries decodes a series' value, metadata and checkpoints (nil:
// none).
func decodeSeries(node, path string, value, meta, marks []byte) (*model.Stored, error) {
	st, err := model.DecodeStored(path, value)
	if err != nil {
		return nil, fmt.Errorf("series %q on %s: %w", path, node, err)
	}
	if meta != nil {
		if st.Meta, err = model.DecodeMeta(meta); err != nil {
			return nil, fmt.Errorf("metadata of %q on %s: %w", path, node, err)
		}
	}
	if marks != nil {
		if err := st.SetMarks(marks); err != nil {
			return nil, fmt.Errorf("checkpoints of %q on %s: %w", path, node, err)
		}
	}
	return st, nil
}

// build decodes the pairs of a read at index into its containers and
// nodes, and prices them.
func (r *Reader) build(req Request, index uint64, kvs []kvraft.KV) (*Snapshot, error) {
	agents := map[string]*model.Agent{}
	// Keys come in order: a node's agent record, checkpoints, metadata,
	// then its series.
	metas := map[[2]string]kvraft.KV{} // by node and path
	marks := map[[2]string]kvraft.KV{} // by node and path
	type item struct {
		node, path string
		value      kvraft.KV
	}
	var items []item
	for _, kv := range kvs {
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
			items = append(items, item{node: node, path: path, value: kv})
		case model.KindMeta:
			metas[[2]string{node, path}] = kv
		case model.KindMarks:
			if req.Window > 0 {
				marks[[2]string{node, path}] = kv
			}
		}
	}
	if len(items) > r.cfg.MaxSeries {
		return nil, r.tooMany()
	}
	cs := make([]model.Container, 0, len(items))
	for _, it := range items {
		k := [2]string{it.node, it.path}
		st, err := r.decoded(podindex.Ref{Node: it.node, Path: it.path}, it.value, metas[k], marks[k])
		if err != nil {
			return nil, err
		}
		cs = append(cs, model.View(it.node, agents[it.node], st, req.Window))
	}
	slices.SortFunc(cs, func(a, b model.Container) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return r.price(index, agents, cs), nil
}

// nonNil makes an empty list encode as [], not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
