package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/pennyhq/penny/agent/core"
	"github.com/pennyhq/penny/agent/kube"
	"github.com/pennyhq/penny/internal/nodemeta"
)

func TestNodeFacts(t *testing.T) {
	kubeFacts := &nodemeta.Facts{Name: "n", InstanceType: "m5.large", Region: "us-east-1", Zone: "us-east-1b",
		CapacityType: nodemeta.OnDemand, AllocatableCPUMillis: 1930, AllocatableMemoryBytes: 7 << 30,
		CapacityCPUMillis: 2000, CapacityMemoryBytes: 8 << 30, Source: nodemeta.SourceKubernetes}
	host := nodemeta.Facts{CapacityCPUMillis: 2000, CapacityMemoryBytes: 8<<30 - 1<<20, Source: nodemeta.SourceHost}
	tests := []struct {
		name  string
		flags nodemeta.Facts
		kube  *nodemeta.Facts
		host  nodemeta.Facts
		want  nodemeta.Facts
	}{
		{"nothing known", nodemeta.Facts{}, nil, nodemeta.Facts{}, nodemeta.Facts{Name: "node-a"}},
		{"the host's capacity", nodemeta.Facts{}, nil, host,
			nodemeta.Facts{Name: "node-a", CapacityCPUMillis: 2000, CapacityMemoryBytes: 8<<30 - 1<<20, Source: "host"}},
		{"kubernetes over the host", nodemeta.Facts{}, kubeFacts, host,
			nodemeta.Facts{Name: "node-a", InstanceType: "m5.large", Region: "us-east-1", Zone: "us-east-1b",
				CapacityType: nodemeta.OnDemand, AllocatableCPUMillis: 1930, AllocatableMemoryBytes: 7 << 30,
				CapacityCPUMillis: 2000, CapacityMemoryBytes: 8 << 30, Source: "kubernetes"}},
		{"flags over kubernetes", nodemeta.Facts{CapacityType: nodemeta.Spot, Zone: "us-east-1c"}, kubeFacts, host,
			nodemeta.Facts{Name: "node-a", InstanceType: "m5.large", Region: "us-east-1", Zone: "us-east-1c",
				CapacityType: nodemeta.Spot, AllocatableCPUMillis: 1930, AllocatableMemoryBytes: 7 << 30,
				CapacityCPUMillis: 2000, CapacityMemoryBytes: 8 << 30, Source: "flags,kubernetes"}},
		{"flags without kubernetes", nodemeta.Facts{InstanceType: "bare-metal", Region: "home", Source: "kubernetes"}, nil, host,
			nodemeta.Facts{Name: "node-a", InstanceType: "bare-metal", Region: "home", CapacityCPUMillis: 2000,
				CapacityMemoryBytes: 8<<30 - 1<<20, Source: "flags,host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NodeFacts("node-a", tt.flags, tt.kube, tt.host); got != tt.want {
				t.Errorf("NodeFacts =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want int // 0: an error
	}{
		{"0", 1}, {"0-7", 8}, {"0-3,8,10-11", 7}, {"1,3,5", 3},
		{"", 0}, {"a", 0}, {"3-1", 0}, {"0-", 0}, {"-1", 0}, {"0,,1", 0}, {"0-65536", 0},
	}
	for _, tt := range tests {
		got, err := parseCPUList(tt.in)
		if got != tt.want || (err != nil) != (tt.want == 0) {
			t.Errorf("parseCPUList(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestHostFacts(t *testing.T) {
	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		proc, sys := filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
		for p, content := range map[string]string{
			filepath.Join(sys, "devices/system/cpu/online"): "0-5,7\n",
			filepath.Join(proc, "meminfo"):                  "MemTotal:       16314112 kB\nMemFree:         1234 kB\n",
		} {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := HostFacts(proc, sys)
		want := nodemeta.Facts{CapacityCPUMillis: 7000, CapacityMemoryBytes: 16314112 << 10, Source: nodemeta.SourceHost}
		if err != nil || got != want {
			t.Errorf("HostFacts = %+v, %v; want %+v", got, err, want)
		}
		if _, err := HostFacts(filepath.Join(dir, "none"), sys); err == nil {
			t.Error("HostFacts without meminfo: no error")
		}
	})
	t.Run("this host", func(t *testing.T) {
		got, err := HostFacts("/proc", "/sys")
		if err != nil {
			t.Fatal(err)
		}
		var si unix.Sysinfo_t
		if err := unix.Sysinfo(&si); err != nil {
			t.Fatal(err)
		}
		if mem := int64(si.Totalram) * int64(si.Unit); got.CapacityMemoryBytes != mem {
			t.Errorf("capacity memory %d, sysinfo says %d", got.CapacityMemoryBytes, mem)
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			t.Fatal(err)
		}
		if got.CapacityCPUMillis < int64(set.Count())*1000 {
			t.Errorf("capacity cpu %dm, fewer than the %d cpus this process may run on", got.CapacityCPUMillis, set.Count())
		}
	})
}

// TestNodeMeta: the agent ships the facts of its node as agent metadata,
// the same map while they do not change, a new one when the Node object
// changes, and its flags override the Node object.
func TestNodeMeta(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{kube.LabelInstanceType: "m5.large",
			kube.LabelRegion: "us-east-1"}},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1930m")}},
	}
	client := fake.NewClientset(n)
	log := slog.New(slog.DiscardHandler)
	w, err := kube.NewNodeWatcher(kube.Config{NodeName: "node-a", Logger: log}, client)
	if err != nil {
		t.Fatal(err)
	}
	w.Start(t.Context())
	t.Cleanup(w.Close)
	a := newAgent(Config{Core: core.Config{Logger: log}, NodeName: "node-a",
		Facts: nodemeta.Facts{Region: "eu-west-1"}})
	if m := a.nodeMeta(); !reflect.DeepEqual(m, map[string]string{nodemeta.KeyName: "node-a", nodemeta.KeyRegion: "eu-west-1",
		nodemeta.KeySource: "flags"}) {
		t.Errorf("without the Node object: %v", m)
	}
	a.nodes = w
	waitMeta := func(what, key, value string) map[string]string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			m := a.nodeMeta()
			if m[key] == value {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: metadata %v", what, m)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	first := waitMeta("the Node object's facts", nodemeta.KeyInstanceType, "m5.large")
	want := map[string]string{nodemeta.KeyName: "node-a", nodemeta.KeyInstanceType: "m5.large", nodemeta.KeyRegion: "eu-west-1",
		nodemeta.KeyCapacityType: "on-demand", nodemeta.KeyAllocatableCPU: "1930", nodemeta.KeySource: "flags,kubernetes"}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("metadata %v, want %v", first, want)
	}
	if again := a.nodeMeta(); reflect.ValueOf(again).UnsafePointer() != reflect.ValueOf(first).UnsafePointer() {
		t.Error("a new map while nothing changed")
	}
	n.Labels["karpenter.sh/capacity-type"] = "spot"
	if _, err := client.CoreV1().Nodes().Update(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitMeta("the spot label", nodemeta.KeyCapacityType, "spot")
	if first[nodemeta.KeyCapacityType] != "on-demand" {
		t.Errorf("a map shipped before was changed: %v", first)
	}
}
