package ingest

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/wire"
)

func TestStreamRefusesFramesForAnotherNode(t *testing.T) {
	for _, tc := range []struct {
		name, frameNode string
		ctx             context.Context
		refused         bool
	}{
		{"no agent identity: any node", "node-b", context.Background(), false},
		{"the agent's own node", agentA, WithAgentNode(context.Background(), agentA), false},
		{"another node", "node-b", WithAgentNode(context.Background(), agentA), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testIngest(t, nil)
			s, c, acks := testStream(in, newAgent)
			fs := frames(t, tc.frameNode, 1, 1)
			err := s.frame(tc.ctx, &fs[0])
			if !tc.refused {
				if err != nil {
					t.Fatal(err)
				}
				c.next(t)
				return
			}
			if !errors.Is(err, ErrNodeMismatch) {
				t.Fatalf("frame for %s: %v, want ErrNodeMismatch", tc.frameNode, err)
			}
			if a := acks.now(t); a.Status != wire.StatusRejected || a.Reason != wire.ReasonAgentMismatch {
				t.Errorf("ack %+v, want rejected for agent mismatch", a)
			}
			c.none(t)
			if s.agent != "" {
				t.Errorf("stream bound to %q", s.agent)
			}
			if n := testutil.ToFloat64(in.m.rejected.WithLabelValues("node_mismatch")); n != 1 {
				t.Errorf("node_mismatch counted %v times, want 1", n)
			}
		})
	}
}
