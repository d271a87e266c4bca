package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/wire"
)

// bind ties the stream to the agent of its first frame and loads what the
// store holds for it, with a linearizable read: the stream must start from
// every frame another replica applied.
func (s *stream) bind(ctx context.Context, h *wire.Header) error {
	if err := model.ValidNode(h.AgentID); err != nil {
		s.in.m.rejected.WithLabelValues("agent_mismatch").Inc()
		_ = s.ack(wire.Ack{Incarnation: h.Incarnation, Seq: h.Seq, Status: wire.StatusRejected, Reason: wire.ReasonAgentMismatch})
		return fmt.Errorf("agent id: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.in.cfg.LoadTimeout)
	defer cancel()
	ns, ws, err := s.load(ctx, h.AgentID)
	if err != nil {
		return fmt.Errorf("load agent %s: %w", h.AgentID, err)
	}
	s.agent, s.ns, s.ws = h.AgentID, ns, ws
	if ns.Agent != nil {
		s.committed = committed{inc: ns.Agent.Incarnation, seq: ns.Agent.Seq}
	}
	s.in.log.Debug("agent stream bound", "agent", s.agent, "remote", s.remote, "incarnation", s.committed.inc,
		"applied", s.committed.seq, "series", len(ns.Series))
	return nil
}

// load reads a node's agent record and series, in one range: at one index.
func (in *Ingest) load(ctx context.Context, node string) (*model.NodeState, *wire.State, error) {
	rng, err := in.cfg.Node.Range(ctx, kvraft.RangeRequest{Prefix: model.NodePrefix(node), Limit: model.MaxNodeKeys},
		kvraft.ReadOptions{Consistency: kvraft.Linearizable})
	if err != nil {
		return nil, nil, err
	}
	if rng.More {
		return nil, nil, fmt.Errorf("%w: more than %d series and their metadata", model.ErrInvalid, model.MaxSeriesPerNode)
	}
	ns, err := model.LoadNode(node, rng.Items)
	if err != nil {
		return nil, nil, err
	}
	ws, err := wireState(in.cfg.Limits, ns)
	if err != nil {
		return nil, nil, err
	}
	return ns, ws, nil
}

// wireState rebuilds the wire-level state of an agent from the store, so
// that the deltas it resends after a reconnect apply on any replica.
func wireState(lim wire.Limits, ns *model.NodeState) (*wire.State, error) {
	if ns.Agent == nil {
		return wire.NewState(lim)
	}
	series := make(map[uint64]wire.SeriesState, len(ns.Series))
	for _, s := range ns.Series {
		series[s.Ref] = s.WireState()
	}
	return wire.RestoreState(lim, wire.Restore{
		AgentID: ns.Node, Incarnation: ns.Agent.Incarnation, Applied: ns.Agent.Seq,
		Time: time.Unix(0, ns.Agent.Time), Interval: time.Duration(ns.Agent.Interval),
		Meta: ns.Agent.Meta, Series: series,
	})
}

// update turns an applied frame into the model's update: the absolute state
// of every series the frame touched.
func (s *stream) update(f *wire.Frame, removed []string) (*model.Update, error) {
	u := &model.Update{Node: s.agent, Incarnation: f.Incarnation, Seq: f.Seq, Time: f.Time, Interval: f.Interval,
		Keyframe: f.Keyframe, Meta: s.ws.Meta()}
	for i := range f.Series {
		ref := f.Series[i].Ref
		st, ok := s.ws.Series(ref)
		if !ok {
			return nil, fmt.Errorf("%w: series %d not in the state after apply", wire.ErrInconsistent, ref)
		}
		u.Changed = append(u.Changed, model.FromWire(ref, &st))
	}
	u.Removed = removed
	return u, nil
}

// removedPaths returns the paths of the series f removes, from the state
// before f applies.
func (s *stream) removedPaths(f *wire.Frame) ([]string, error) {
	if len(f.Removed) == 0 {
		return nil, nil
	}
	byRef := make(map[uint64]string, len(s.ns.Series))
	for p, st := range s.ns.Series {
		byRef[st.Ref] = p
	}
	paths := make([]string, 0, len(f.Removed))
	for _, ref := range f.Removed {
		p, ok := byRef[ref]
		if !ok {
			return nil, fmt.Errorf("%w: removal of unknown series %d", wire.ErrInconsistent, ref)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
