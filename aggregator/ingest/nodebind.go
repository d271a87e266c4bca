package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/pennyhq/penny/wire"
)

// ErrNodeMismatch means a frame names another node than the one the
// authenticated agent speaks for.
var ErrNodeMismatch = errors.New("ingest: frame for another node than the agent's")

type agentNodeKey struct{}

// WithAgentNode returns ctx saying that the stream's requester is the
// agent of node: every frame on the stream must name that node. Without
// it (authentication off) frames may name any node.
func WithAgentNode(ctx context.Context, node string) context.Context {
	return context.WithValue(ctx, agentNodeKey{}, node)
}

// checkNode refuses a frame for another node than the stream's agent's:
// the frame is counted (reason node_mismatch) and refused, and the stream
// ends before anything reaches the store.
func (s *stream) checkNode(ctx context.Context, h *wire.Header) error {
	node, ok := ctx.Value(agentNodeKey{}).(string)
	if !ok || h.AgentID == node {
		return nil
	}
	s.in.m.rejected.WithLabelValues("node_mismatch").Inc()
	_ = s.ack(wire.Ack{Incarnation: h.Incarnation, Seq: h.Seq, Status: wire.StatusRejected, Reason: wire.ReasonAgentMismatch})
	return fmt.Errorf("%w: frame for node %q from the agent of node %q", ErrNodeMismatch, h.AgentID, node)
}
