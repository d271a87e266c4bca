package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/kvraft"
)

// Node is one node as GET /v1/nodes shows it: the facts its agent
// reported (package nodemeta; unknown facts are left out), when it last
// sampled and how many series it has.
type Node struct {
	// Node is the node's name, its agent's id.
	Node string `json:"node"`
	nodemeta.Facts
	// InvalidFacts lists the metadata keys whose values were malformed
	// and left their facts unknown.
	InvalidFacts []string `json:"invalid_facts,omitempty"`
	// Updated is the sample time of the node's last frame.
	Updated string `json:"updated"`
	// SampleTime is Updated as a time, for readers in Go.
	SampleTime time.Time `json:"-"`
	// Series is how many series (cgroups) of the node are live.
	Series int `json:"series"`
}

// Nodes is the answer of a nodes read, and the body of GET /v1/nodes.
type Nodes struct {
	Index uint64 `json:"index"`
	Nodes []Node `json:"nodes"`
}

// Nodes returns the nodes that have an agent record (req.Node only when
// set), sorted by name. req.Window and req.Pods do not apply to nodes.
//
// Every node's agent record is read at one index: with req.Node, that
// record alone; without, the range of every node's records, whose series
// are counted against Config.MaxSeries but not decoded.
func (r *Reader) Nodes(ctx context.Context, req Request) (*Nodes, error) {
	rr := kvraft.RangeRequest{Prefix: model.AllNodesPrefix(), Limit: 3*r.cfg.MaxSeries + 1}
	if req.Node != "" {
		if err := model.ValidNode(req.Node); err != nil {
			return nil, fmt.Errorf("%w: %w", kvraft.ErrInvalid, err)
		}
		k := model.AgentKey(req.Node)
		rr = kvraft.RangeRequest{Start: k, End: append(k, 0), Limit: 1}
	}
	res, err := r.cfg.Store.Range(ctx, rr, req.Read)
	if err != nil {
		return nil, err
	}
	if res.More && req.Node == "" {
		return nil, fmt.Errorf("%w: more than %d series: ask for one node", kvraft.ErrTooLarge, r.cfg.MaxSeries)
	}
	out := &Nodes{Index: res.Index, Nodes: []Node{}}
	for _, kv := range res.Items {
		node, kind, _, err := model.ParseKey(kv.Key)
		if err != nil || kind != model.KindAgent {
			continue
		}
		a, err := model.DecodeAgent(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("agent record of %s: %w", node, err)
		}
		out.Nodes = append(out.Nodes, NodeOf(node, a))
	}
	slices.SortFunc(out.Nodes, func(a, b Node) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// NodeOf is the view of a node's agent record.
func NodeOf(node string, a *model.Agent) Node {
	f, invalid := nodemeta.Decode(a.Meta)
	n := Node{Node: node, Facts: f, InvalidFacts: invalid, SampleTime: a.SampleTime().UTC(), Series: a.Series}
	n.Updated = n.SampleTime.Format(time.RFC3339Nano)
	return n
}
