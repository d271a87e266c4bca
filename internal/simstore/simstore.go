package simstore

import (
	"fmt"
	"time"

	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/simnode"
)

// Spacing is the time between a simulated node's samples.
const Spacing = 20 * time.Second

// NodeName is the name of simulated node i.
func NodeName(i int) string { return fmt.Sprintf("load-%04d", i) }

// Fill plans the writes of nodes simulated nodes of perNode cgroups with
// pod metadata, as the ingest plans an agent's frames: a keyframe and two
// updates Spacing apart, the last one at now, so that windows have
// checkpoints and no value is too old to serve. write stores each plan
// (model.Txn of its ops, conditioned on p.Expect), in order.
func Fill(nodes, perNode int, now time.Time, write func(node string, p *model.Plan) error) error {
	for i := range nodes {
		name := NodeName(i)
		sim := simnode.New(perNode, uint64(i)+1, 6*time.Hour, false)
		st := &model.NodeState{Node: name}
		for k := range 3 {
			at := now.Add(time.Duration(k-2) * Spacing)
			snap := daemon.Snapshot(sim.StepAt(at, Spacing), sim.Resolve)
			u := &model.Update{Node: name, Incarnation: 1, Seq: uint64(k + 1), Time: at, Interval: Spacing,
				Keyframe: k == 0, Meta: map[string]string{"agent_version": "bench"}}
			for j := range snap.Series {
				u.Changed = append(u.Changed, model.FromWire(uint64(j+1), &snap.Series[j]))
			}
			p, err := model.PlanUpdate(st, u, at)
			if err != nil {
				return fmt.Errorf("plan %s: %w", name, err)
			}
			if err := write(name, p); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			st = p.Next
		}
	}
	return nil
}
