package query

import (
	"context"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/nodemeta"
)

// Node is one node as GET /v1/nodes shows it: the facts its agent
// reported (package nodemeta; unknown facts are left out), when it last
// sampled, how many series it has, and its cost rate.
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
	NodeCost
}

// Nodes is the answer of a nodes read, and the body of GET /v1/nodes.
type Nodes struct {
	Index uint64 `json:"index"`
	// Currency is the ISO 4217 code of every cost and price.
	Currency string `json:"currency"`
	Nodes    []Node `json:"nodes"`
}

// Nodes returns the nodes that have an agent record (req.Node only when
// set), sorted by name, each with its cost and idle over req.Window (each
// node's last interval when 0). req.Pods does not apply to nodes.
//
// A node's idle is what its containers are not charged, so its series are
// read and priced with it, in one range at one index, as Read does.
func (r *Reader) Nodes(ctx context.Context, req Request) (*Nodes, error) {
	s, err := r.Read(ctx, req)
	if err != nil {
		return nil, err
	}
	return &Nodes{Index: s.Index, Currency: s.Currency, Nodes: s.Nodes}, nil
}

// NodeOf is the view of a node's agent record, its cost not set.
func NodeOf(node string, a *model.Agent) Node {
	f, invalid := nodemeta.Decode(a.Meta)
	n := Node{Node: node, Facts: f, InvalidFacts: invalid, SampleTime: a.SampleTime().UTC(), Series: a.Series}
	n.Updated = n.SampleTime.Format(time.RFC3339Nano)
	return n
}
