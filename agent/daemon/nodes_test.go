package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/pennyhq/penny/agent/core"
	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/kube"
	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/nodemeta"
	"github.com/pennyhq/penny/kvraft"
)

// TestNodeFactsShipped runs the agent with a Node object in a fake
// clientset and a one-member aggregator: the node's facts, the flags'
// over the Node object's, show in GET /v1/nodes and on /metrics, and
// follow a label change.
func TestNodeFactsShipped(t *testing.T) {
	cgtest.RequireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	srv, err := server.Start(ctx, server.Config{
		Store: kvraft.Config{ID: 1, DataDir: t.TempDir(), TickInterval: 20 * time.Millisecond,
			InitialCluster: []kvraft.Member{{ID: 1, PeerURL: "http://127.0.0.1:1"}}},
		SingleMember: true, Listen: "127.0.0.1:0", RequestTimeout: 5 * time.Second, ShutdownGrace: time.Second, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "test-node", Labels: map[string]string{
			kube.LabelInstanceType: "m5.xlarge", kube.LabelRegion: "us-east-1", kube.LabelZone: "us-east-1a", "pool": "cheap"}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("3920m"), corev1.ResourceMemory: resource.MustParse("15Gi")}},
	}
	client := fake.NewClientset(node)
	agent, err := daemon.Start(ctx, daemon.Config{
		Core:     core.Config{Interval: 300 * time.Millisecond, Logger: log},
		Shipper:  shipper.Config{URLs: []string{"http://" + srv.Addr.String()}, Logger: log, BackoffMin: 50 * time.Millisecond},
		NodeName: "test-node", Kube: &kube.Config{SpotLabels: []kube.Label{{Key: "pool", Value: "cheap"}}}, KubeClient: client,
		Facts: nodemeta.Facts{Region: "eu-west-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	go func() {
		for {
			if _, err := agent.Next(ctx); err != nil {
				return
			}
		}
	}()

	api := "http://" + srv.Addr.String()
	got := waitNode(t, api, func(n *query.Node) bool { return n.Zone == "us-east-1a" })
	if at, err := time.Parse(time.RFC3339Nano, got.Updated); err != nil || time.Since(at) > time.Minute {
		t.Errorf("updated %q: %v", got.Updated, err)
	}
	if got.InstanceType != "m5.xlarge" || got.Region != "eu-west-1" || got.CapacityType != nodemeta.Spot ||
		got.AllocatableCPUMillis != 3920 || got.AllocatableMemoryBytes != 15<<30 || got.Source != "flags,kubernetes,host" ||
		got.CapacityCPUMillis <= 0 || got.Series == 0 {
		t.Errorf("GET /v1/nodes: %+v", got)
	}

	// A label changes: the next frame carries the new facts.
	node.Labels[kube.LabelZone] = "us-east-1b"
	delete(node.Labels, "pool")
	if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNode(t, api, func(n *query.Node) bool { return n.Zone == "us-east-1b" && n.CapacityType == nodemeta.OnDemand })

	var metrics string
	deadline := time.Now().Add(10 * time.Second)
	want := `penny_node_info{capacity_type="on-demand",instance_type="m5.xlarge",node="test-node",region="eu-west-1",zone="us-east-1b"} 1`
	for !strings.Contains(metrics, want) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no %s:\n%s", want, grepLines(metrics, "penny_node_"))
		}
		metrics = getText(t, api+"/metrics")
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(metrics, `penny_node_allocatable_cpu_cores{node="test-node"} 3.92`) {
		t.Errorf("/metrics:\n%s", grepLines(metrics, "penny_node_"))
	}
}

// waitNode polls GET /v1/nodes?node=test-node until the node satisfies ok.
func waitNode(t *testing.T, api string, ok func(*query.Node) bool) *query.Node {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last query.Nodes
	for time.Now().Before(deadline) {
		last = query.Nodes{}
		getJSON(t, api+gateway.NodesPath+"?node=test-node&consistency=linearizable", &last)
		if len(last.Nodes) == 1 && ok(&last.Nodes[0]) {
			return &last.Nodes[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET /v1/nodes never showed the node as expected; last answer: %+v", last.Nodes)
	return nil
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
