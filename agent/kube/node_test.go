package kube

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/pennyhq/penny/internal/nodemeta"
)

// newNode returns a Node object named name with labels, 4 cores and
// 16 GiB of which 3920m and 15 GiB are allocatable.
func newNode(name string, labels map[string]string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels,
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"}},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"),
				corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3920m"),
				corev1.ResourceMemory: resource.MustParse("15Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Images: []corev1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}, SizeBytes: 320000}},
		},
	}
}

// sized are the facts of newNode's status.
func sized(f nodemeta.Facts) nodemeta.Facts {
	f.Name, f.Source = node, nodemeta.SourceKubernetes
	f.AllocatableCPUMillis, f.AllocatableMemoryBytes = 3920, 15<<30
	f.CapacityCPUMillis, f.CapacityMemoryBytes = 4000, 16<<30
	return f
}

func TestFactsOf(t *testing.T) {
	userSpot := []Label{{"example.com/lifecycle", "spot"}, {"pool", "cheap"}}
	tests := []struct {
		name   string
		labels map[string]string
		want   nodemeta.Facts
	}{
		{"no labels: on-demand", nil, sized(nodemeta.Facts{CapacityType: nodemeta.OnDemand})},
		{"stable labels", map[string]string{LabelInstanceType: "m5.xlarge", LabelRegion: "us-east-1", LabelZone: "us-east-1a"},
			sized(nodemeta.Facts{InstanceType: "m5.xlarge", Region: "us-east-1", Zone: "us-east-1a", CapacityType: nodemeta.OnDemand})},
		{"beta labels as fallback", map[string]string{LabelInstanceTypeBeta: "n1-standard-4", LabelRegionBeta: "europe-west1",
			LabelZoneBeta: "europe-west1-b"},
			sized(nodemeta.Facts{InstanceType: "n1-standard-4", Region: "europe-west1", Zone: "europe-west1-b", CapacityType: nodemeta.OnDemand})},
		{"stable labels win over beta", map[string]string{LabelInstanceType: "m6i.large", LabelInstanceTypeBeta: "m5.large",
			LabelRegion: "eu-west-1", LabelRegionBeta: "us-east-1", LabelZone: "eu-west-1c", LabelZoneBeta: "us-east-1a"},
			sized(nodemeta.Facts{InstanceType: "m6i.large", Region: "eu-west-1", Zone: "eu-west-1c", CapacityType: nodemeta.OnDemand})},
		{"empty stable label falls back", map[string]string{LabelZone: "", LabelZoneBeta: "z1"},
			sized(nodemeta.Facts{Zone: "z1", CapacityType: nodemeta.OnDemand})},
		{"karpenter spot", map[string]string{"karpenter.sh/capacity-type": "spot"}, sized(nodemeta.Facts{CapacityType: nodemeta.Spot})},
		{"karpenter on-demand", map[string]string{"karpenter.sh/capacity-type": "on-demand"}, sized(nodemeta.Facts{CapacityType: nodemeta.OnDemand})},
		{"eks spot", map[string]string{"eks.amazonaws.com/capacityType": "SPOT"}, sized(nodemeta.Facts{CapacityType: nodemeta.Spot})},
		{"eks on-demand", map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND"}, sized(nodemeta.Facts{CapacityType: nodemeta.OnDemand})},
		{"gke spot", map[string]string{"cloud.google.com/gke-spot": "true"}, sized(nodemeta.Facts{CapacityType: nodemeta.Spot})},
		{"gke spot false", map[string]string{"cloud.google.com/gke-spot": "false"}, sized(nodemeta.Facts{CapacityType: nodemeta.OnDemand})},
		{"gke preemptible", map[string]string{"cloud.google.com/gke-preemptible": "true"}, sized(nodemeta.Facts{CapacityType: nodemeta.Spot})},
		{"aks spot", map[string]string{"kubernetes.azure.com/scalesetpriority": "spot"}, sized(nodemeta.Facts{CapacityType: nodemeta.Spot})},
		{"aks regular", map[string]string{"kubernetes.azure.com/scalesetpriority": "regular"}, sized(nodemeta.Facts{CapacityType: nodemeta.OnDemand})},
		{"a label the user names", map[string]string{"pool": "cheap"}, sized(nodemeta.Facts{CapacityType: nodemeta.Spot})},
		{"another value of it", map[string]string{"pool": "steady"}, sized(nodemeta.Facts{CapacityType: nodemeta.OnDemand})},
		{"a value the wire refuses is left out", map[string]string{LabelInstanceType: "custom large", LabelRegion: "r1"},
			sized(nodemeta.Facts{Region: "r1", CapacityType: nodemeta.OnDemand})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FactsOf(newNode(node, tt.labels), userSpot); got != tt.want {
				t.Errorf("FactsOf =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	t.Run("no status", func(t *testing.T) {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
		want := nodemeta.Facts{Name: node, CapacityType: nodemeta.OnDemand, Source: nodemeta.SourceKubernetes}
		if got := FactsOf(n, nil); got != want {
			t.Errorf("FactsOf = %+v, want %+v", got, want)
		}
	})
}

func TestParseLabel(t *testing.T) {
	tests := []struct {
		in      string
		want    Label
		wantErr bool
	}{
		{"example.com/lifecycle=spot", Label{"example.com/lifecycle", "spot"}, false},
		{"pool=cheap", Label{"pool", "cheap"}, false},
		{"pool=", Label{"pool", ""}, false},
		{"a=b=c", Label{}, true},
		{"pool", Label{}, true},
		{"=spot", Label{}, true},
		{"Example.com/x=spot", Label{}, true},
		{"pool=has space", Label{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLabel(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrConfig) {
					t.Errorf("ParseLabel(%q) = %v, %v; want ErrConfig", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want || got.String() != tt.in {
				t.Errorf("ParseLabel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// logBuffer collects a logger's output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns how many lines hold s.
func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// startNodeWatcher starts a node watcher over client, its log in the
// returned buffer.
func startNodeWatcher(t *testing.T, client *fake.Clientset, spot ...Label) (*NodeWatcher, *prometheus.Registry, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	w, err := NewNodeWatcher(Config{NodeName: node, SpotLabels: spot, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, client)
	if err != nil {
		t.Fatalf("NewNodeWatcher() error = %v", err)
	}
	w.Start(t.Context())
	t.Cleanup(func() {
		w.Close()
		t.Logf("node watcher log:\n%s", logs.b.String())
	})
	return w, reg, logs
}

func facts(w *NodeWatcher) nodemeta.Facts {
	f, _ := w.Facts()
	return f
}

// TestNodeWatcherFollowsTheNode: the watcher lists and watches its own
// Node object only, and follows its labels and status until it is
// deleted.
func TestNodeWatcherFollowsTheNode(t *testing.T) {
	client := fake.NewClientset(
		newNode(node, map[string]string{LabelInstanceType: "m5.xlarge", LabelRegion: "us-east-1", LabelZone: "us-east-1a"}),
		newNode("node-b", map[string]string{LabelInstanceType: "c5.large", "karpenter.sh/capacity-type": "spot"}))
	w, reg, logs := startNodeWatcher(t, client, Label{"pool", "cheap"})
	want := sized(nodemeta.Facts{InstanceType: "m5.xlarge", Region: "us-east-1", Zone: "us-east-1a", CapacityType: nodemeta.OnDemand})
	eventually(t, "the node's facts", func() bool { return facts(w) == want })
	if got := metricValue(t, reg, "penny_agent_kube_node_facts_known"); got != 1 {
		t.Errorf("penny_agent_kube_node_facts_known = %v, want 1", got)
	}
	// The fake does not filter: node-b reached the informer, and the
	// watcher must still ignore it.
	if n := len(w.informer.GetStore().List()); n != 2 {
		t.Fatalf("informer holds %d nodes, want both (the fake does not filter)", n)
	}
	var list, watch bool
	for _, a := range client.Actions() {
		if a.GetResource().Resource != "nodes" {
			continue
		}
		var sel string
		switch a := a.(type) {
		case k8stesting.ListAction:
			sel, list = a.GetListRestrictions().Fields.String(), true
		case k8stesting.WatchAction:
			sel, watch = a.GetWatchRestrictions().Fields.String(), true
		default:
			continue
		}
		if sel != "metadata.name="+node {
			t.Errorf("%s nodes with field selector %q, want metadata.name=%s", a.GetVerb(), sel, node)
		}
	}
	if !list || !watch {
		t.Fatalf("nodes listed %v, watched %v; want both", list, watch)
	}
	// The transform keeps what the facts need only.
	obj, ok, _ := w.informer.GetStore().GetByKey(node)
	if n, _ := obj.(*corev1.Node); !ok || len(n.Status.Images) != 0 || len(n.Annotations) != 0 || n.Labels[LabelZone] != "us-east-1a" {
		t.Errorf("cached node: %+v", obj)
	}

	// The node becomes spot through the user's label, then is resized.
	n := newNode(node, map[string]string{LabelInstanceType: "m5.xlarge", LabelRegion: "us-east-1", LabelZone: "us-east-1a", "pool": "cheap"})
	if _, err := client.CoreV1().Nodes().Update(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want.CapacityType = nodemeta.Spot
	eventually(t, "the spot label", func() bool { return facts(w) == want })
	n.Status.Allocatable[corev1.ResourceMemory] = resource.MustParse("14Gi")
	if _, err := client.CoreV1().Nodes().UpdateStatus(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want.AllocatableMemoryBytes = 14 << 30
	eventually(t, "the new allocatable memory", func() bool { return facts(w) == want })
	if c := logs.count("node facts from the Node object"); c != 3 {
		t.Errorf("%d log lines of new facts, want 3 (one per change)", c)
	}

	// Deleted, the facts are unknown.
	if err := client.CoreV1().Nodes().Delete(t.Context(), node, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the facts to be forgotten", func() bool { _, ok := w.Facts(); return !ok })
	eventually(t, "the log line", func() bool { return logs.count("its Node object was deleted") == 1 })
	if got := metricValue(t, reg, "penny_agent_kube_node_facts_known"); got != 0 {
		t.Errorf("penny_agent_kube_node_facts_known = %v, want 0", got)
	}
}

// TestNodeWatcherWithoutNode: without a Node object the facts are
// unknown, said once, until it appears.
func TestNodeWatcherWithoutNode(t *testing.T) {
	client := fake.NewClientset(newNode("node-b", nil))
	w, reg, logs := startNodeWatcher(t, client)
	eventually(t, "the log line", func() bool { return logs.count("there is no Node object named "+node) == 1 })
	if _, ok := w.Facts(); ok {
		t.Fatalf("facts known without a Node object: %+v", facts(w))
	}
	if got := metricValue(t, reg, "penny_agent_kube_node_facts_known"); got != 0 {
		t.Errorf("penny_agent_kube_node_facts_known = %v, want 0", got)
	}
	if _, err := client.CoreV1().Nodes().Create(t.Context(), newNode(node, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := sized(nodemeta.Facts{CapacityType: nodemeta.OnDemand})
	eventually(t, "the new node's facts", func() bool { return facts(w) == want })
}

// TestNodeWatcherForbidden: an agent that may not read nodes runs without
// facts, says why once however often the informer retries, and learns
// them once it may.
func TestNodeWatcherForbidden(t *testing.T) {
	client := fake.NewClientset(newNode(node, map[string]string{LabelZone: "z1"}))
	var allowed atomic.Bool
	var refused atomic.Int32
	client.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		if allowed.Load() {
			return false, nil, nil
		}
		refused.Add(1)
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "",
			errors.New(`User "system:serviceaccount:penny-system:penny-agent" cannot list resource "nodes"`))
	})
	w, _, logs := startNodeWatcher(t, client)
	eventually(t, "two refused lists", func() bool { return refused.Load() >= 2 })
	if c := logs.count("may not read Node objects"); c != 1 {
		t.Errorf("%d log lines saying why, want 1", c)
	}
	if _, ok := w.Facts(); ok {
		t.Fatalf("facts known while forbidden: %+v", facts(w))
	}
	allowed.Store(true)
	want := sized(nodemeta.Facts{Zone: "z1", CapacityType: nodemeta.OnDemand})
	eventually(t, "the facts once allowed", func() bool { return facts(w) == want })
}
