package daemon_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/agent/core"
	"github.com/pennyhq/penny/agent/daemon"
	"github.com/pennyhq/penny/agent/kube"
	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/pods"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/kvraft"
)

func TestMain(m *testing.M) {
	cgtest.MaybeHelper()
	os.Exit(m.Run())
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestPodAttribution runs a workload in a real cgroup at the path the
// kubelet's systemd driver gives a containerd container, the agent with a
// pod informer fed by a fake clientset, and a one-member aggregator: the
// pod shows in GET /v1/pods with the workload's real RSS, follows a label
// change, and leaves when the pod is deleted while its cgroup stays.
func TestPodAttribution(t *testing.T) {
	cgtest.RequireRoot(t)
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	uid := "0b5c3a52-8d2e-4f5e-9c1a-" + randHex(t, 12)
	cid := randHex(t, 64)
	base := cgtest.NewGroup(t, layout)
	podCg := base.Child("kubepods.slice").Child("kubepods-burstable.slice").
		Child("kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice")
	ctr := podCg.Child("cri-containerd-" + cid + ".scope")
	proc := ctr.Start()
	proc.Do("touch %d", 48<<20)

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

	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: types.UID(uid), Labels: map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f", UID: "rs", Controller: &yes}}},
		Spec: corev1.PodSpec{NodeName: "test-node", Containers: []corev1.Container{{Name: "app",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
		Status: corev1.PodStatus{QOSClass: corev1.PodQOSBurstable,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "containerd://" + cid}}},
	}
	client := fake.NewClientset(pod)
	agent, err := daemon.Start(ctx, daemon.Config{
		Core:     core.Config{Interval: 300 * time.Millisecond, Logger: log},
		Shipper:  shipper.Config{URLs: []string{"http://" + srv.Addr.String()}, Logger: log, BackoffMin: 50 * time.Millisecond},
		NodeName: "test-node", Kube: &kube.Config{DeletedGrace: 2 * time.Second}, KubeClient: client,
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
	web := waitPod(t, api, "namespace=shop", func(p *pods.Pod) bool {
		want := float64(ctr.SumVmRSS())
		return p.Name == "web-1" && math.Abs(p.Metrics[pods.MemoryRSSBytes]-want) <= 0.05*want
	})
	if web.UID != uid || web.Node != "test-node" || web.Labels["app"] != "web" || web.OwnerName != "web-7d9f" ||
		web.QOSClass != "Burstable" || len(web.Containers) != 1 || web.Containers[0] != "app" || web.RequestMemoryBytes != 64<<20 {
		t.Errorf("pod as served: %+v", web)
	}

	// A label change reaches the aggregator as a metadata change.
	pod.Labels["version"] = "2"
	if _, err := client.CoreV1().Pods("shop").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, api, "selector=version%3D2", func(p *pods.Pod) bool { return p.Name == "web-1" })

	// Deleted (forced: its cgroup still runs), the pod leaves once its
	// cgroups' DeletedGrace has passed; its cgroup stays a cgroup.
	if err := client.CoreV1().Pods("shop").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ps query.Pods
		getJSON(t, api+gateway.PodsPath+"?namespace=shop&consistency=linearizable", &ps)
		var cs query.Containers
		getJSON(t, api+gateway.ContainersPath+"?node=test-node&consistency=linearizable", &cs)
		stays := false
		for _, c := range cs.Containers {
			stays = stays || c.Path == ctr.Path && c.Kubernetes == nil
		}
		if len(ps.Pods) == 0 && stays {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the pod's deletion: pods %+v; cgroup unattributed in /v1/containers: %v", ps.Pods, stays)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitPod polls GET /v1/pods?params until a pod satisfies ok.
func waitPod(t *testing.T, api, params string, ok func(*pods.Pod) bool) *pods.Pod {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last query.Pods
	for time.Now().Before(deadline) {
		last = query.Pods{}
		getJSON(t, api+gateway.PodsPath+"?consistency=linearizable&"+params, &last)
		for i := range last.Pods {
			if ok(&last.Pods[i]) {
				return &last.Pods[i]
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET /v1/pods?%s never showed the pod; last answer: %+v", params, last.Pods)
	return nil
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(fmt.Errorf("GET %s: %w", url, err))
	}
}
