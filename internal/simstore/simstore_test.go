package simstore_test

import (
	"testing"
	"time"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/simstore"
)

func TestFill(t *testing.T) {
	now := time.Now()
	plans := map[string][]*model.Plan{}
	err := simstore.Fill(2, 10, now, func(node string, p *model.Plan) error {
		plans[node] = append(plans[node], p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{simstore.NodeName(0), simstore.NodeName(1)} {
		ps := plans[node]
		if len(ps) != 3 {
			t.Fatalf("%s: %d plans, want 3", node, len(ps))
		}
		if ps[0].Expect != nil || string(ps[1].Expect) != string(ps[0].Next.AgentValue) {
			t.Fatalf("%s: plans not chained on the agent record", node)
		}
		last := ps[2].Next
		if len(last.Series) != 10 || last.Agent.Time != now.UnixNano() {
			t.Fatalf("%s: %d series, last sample at %d, want 10 at %d", node, len(last.Series), last.Agent.Time, now.UnixNano())
		}
	}
}
