//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/internal/nodemeta"
)

// checkNodeFacts checks that the agent, with the chart's ServiceAccount,
// reads its Node object and ships its facts: every replica's
// GET /v1/nodes shows them, and a label change reaches them.
func (c *cluster) checkNodeFacts(t *testing.T) {
	t.Helper()
	want := nodemeta.Facts{InstanceType: nodeLabels["node.kubernetes.io/instance-type"],
		Region: nodeLabels["topology.kubernetes.io/region"], Zone: nodeLabels["topology.kubernetes.io/zone"],
		CapacityType: nodemeta.Spot, AllocatableCPUMillis: 64000, AllocatableMemoryBytes: 256 << 30,
		CapacityCPUMillis: 64000, CapacityMemoryBytes: 256 << 30, Source: nodemeta.SourceKubernetes}
	c.kubelet.wait(t, 60*time.Second, "the node's facts in GET /v1/nodes on every replica", func() error {
		return c.nodeFacts(want)
	})

	ctx := context.Background()
	patch := []byte(`{"metadata":{"labels":{"topology.kubernetes.io/zone":"e2e-region-1b","karpenter.sh/capacity-type":"on-demand"}}}`)
	if _, err := c.cp.Client.CoreV1().Nodes().Patch(ctx, nodeName, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	want.Zone, want.CapacityType = "e2e-region-1b", nodemeta.OnDemand
	c.kubelet.wait(t, 30*time.Second, "the node's new zone and capacity type in GET /v1/nodes", func() error {
		return c.nodeFacts(want)
	})
}

// nodeFacts compares the facts of the harness's node, as each replica
// serves them, with want.
func (c *cluster) nodeFacts(want nodemeta.Facts) error {
	for _, h := range c.hosts {
		url := apiURL(h) + "/v1/nodes?node=" + nodeName + "&consistency=linearizable"
		var nodes query.Nodes
		if err := c.getJSON(url, &nodes); err != nil {
			return err
		}
		if len(nodes.Nodes) != 1 {
			return fmt.Errorf("GET %s: %+v", url, nodes)
		}
		if got := nodes.Nodes[0].Facts; got != want {
			return fmt.Errorf("GET %s: facts %+v, want %+v", url, got, want)
		}
	}
	return nil
}
