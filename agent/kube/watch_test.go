package kube

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/pennyhq/penny/internal/podmeta"
)

const (
	node      = "node-a"
	ns        = "shop"
	appID     = "1111111111111111111111111111111111111111111111111111111111111111"
	sidecarID = "2222222222222222222222222222222222222222222222222222222222222222"
	initID    = "3333333333333333333333333333333333333333333333333333333333333333"
	sandboxID = "4444444444444444444444444444444444444444444444444444444444444444"
	appID2    = "5555555555555555555555555555555555555555555555555555555555555555"
)

// Cgroup paths of the pod uid, as containerd with the systemd driver and
// CRI-O with cgroupfs lay them out.
func systemdPath(podUID, id string) string {
	p := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + escapeUID(podUID) + ".slice"
	if id != "" {
		p += "/cri-containerd-" + id + ".scope"
	}
	return p
}

func escapeUID(u string) string {
	b := []byte(u)
	for i := range b {
		if b[i] == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

// newPod returns a Burstable pod of a ReplicaSet on node n with an init
// container, an app container and a sidecar, all started.
func newPod(name, podUID, n string) *corev1.Pod {
	yes := true
	res := func(reqCPU, reqMem, limCPU, limMem string) corev1.ResourceRequirements {
		r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
		for _, x := range []struct {
			l corev1.ResourceList
			n corev1.ResourceName
			v string
		}{
			{r.Requests, corev1.ResourceCPU, reqCPU}, {r.Requests, corev1.ResourceMemory, reqMem},
			{r.Limits, corev1.ResourceCPU, limCPU}, {r.Limits, corev1.ResourceMemory, limMem},
		} {
			if x.v != "" {
				x.l[x.n] = resource.MustParse(x.v)
			}
		}
		return r
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID(podUID),
			Labels:      map[string]string{"app": "web", "cost.tenant-id": "acme"},
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"big":"json"}`},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "v1", Kind: "Node", Name: n},
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c", Controller: &yes},
			},
		},
		Spec: corev1.PodSpec{
			NodeName:       n,
			InitContainers: []corev1.Container{{Name: "migrate", Image: "migrate", Resources: res("100m", "32Mi", "", "")}},
			Containers: []corev1.Container{
				{Name: "app", Image: "app", Resources: res("250m", "64Mi", "1500m", "128Mi")},
				{Name: "sidecar", Image: "proxy"},
			},
		},
		Status: corev1.PodStatus{
			Phase:                 corev1.PodRunning,
			QOSClass:              corev1.PodQOSBurstable,
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "migrate", ContainerID: "containerd://" + initID}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", ContainerID: "containerd://" + appID},
				{Name: "sidecar", ContainerID: "containerd://" + sidecarID},
			},
		},
	}
}

// podMeta is the metadata every series of newPod("web-0", uid, …) carries.
func podMeta(extra map[string]string) map[string]string {
	m := map[string]string{
		podmeta.KeyPodUID: uid, podmeta.KeyNamespace: ns, podmeta.KeyPod: "web-0",
		podmeta.KeyQOSClass: "Burstable", podmeta.KeyOwnerKind: "ReplicaSet", podmeta.KeyOwnerName: "web-7d4b9c",
		podmeta.KeyLabelPrefix + "app": "web", podmeta.KeyLabelPrefix + "cost.tenant-id": "acme",
	}
	maps.Copy(m, extra)
	return m
}

// startWatcher starts a watcher of node over a fake clientset holding
// objs, and waits for it to sync.
func startWatcher(t *testing.T, objs ...runtime.Object) (*Watcher, *fake.Clientset, *prometheus.Registry) {
	t.Helper()
	return startWatcherWith(t, Config{}, objs...)
}

// startWatcherWith is startWatcher with a configuration (its node, logger
// and registerer set here).
func startWatcherWith(t *testing.T, cfg Config, objs ...runtime.Object) (*Watcher, *fake.Clientset, *prometheus.Registry) {
	t.Helper()
	client := fake.NewClientset(objs...)
	// The fake's watch replays nothing: a change made after the
	// informer's list and before its watch is registered is lost. So the
	// tests change pods only once the watch is there (as the fake's own
	// reactor does it, then signalled).
	watching := make(chan struct{})
	var once sync.Once
	client.PrependWatchReactor("pods", func(action k8stesting.Action) (bool, watch.Interface, error) {
		var opts metav1.ListOptions
		if wa, ok := action.(k8stesting.WatchActionImpl); ok {
			opts = wa.ListOptions
		}
		wi, err := client.Tracker().Watch(action.GetResource(), action.GetNamespace(), opts)
		if err != nil {
			return false, nil, err
		}
		once.Do(func() { close(watching) })
		return true, wi, nil
	})
	reg := prometheus.NewRegistry()
	cfg.NodeName, cfg.Logger, cfg.Registerer = node, testLogger(t), reg
	w, err := New(cfg, client)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	w.Start(t.Context())
	t.Cleanup(w.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := w.WaitForSync(ctx); err != nil {
		t.Fatalf("WaitForSync() error = %v", err)
	}
	select {
	case <-watching:
	case <-ctx.Done():
		t.Fatal("the informer never watched pods")
	}
	return w, client, reg
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestResolvePodOnNode(t *testing.T) {
	w, _, _ := startWatcher(t, newPod("web-0", uid, node))
	crioPod := "/kubepods/burstable/pod" + uid
	tests := []struct {
		name string
		path string
		want map[string]string
	}{
		{"app, containerd systemd", systemdPath(uid, appID), podMeta(map[string]string{
			podmeta.KeyContainer: "app", podmeta.KeyContainerID: appID,
			podmeta.KeyRequestCPU: "250", podmeta.KeyRequestMemory: "67108864",
			podmeta.KeyLimitCPU: "1500", podmeta.KeyLimitMemory: "134217728",
		})},
		{"app, child cgroup", systemdPath(uid, appID) + "/init.scope", podMeta(map[string]string{
			podmeta.KeyContainer: "app", podmeta.KeyContainerID: appID,
			podmeta.KeyRequestCPU: "250", podmeta.KeyRequestMemory: "67108864",
			podmeta.KeyLimitCPU: "1500", podmeta.KeyLimitMemory: "134217728",
		})},
		{"sidecar without resources, cri-o cgroupfs", crioPod + "/crio-" + sidecarID, podMeta(map[string]string{
			podmeta.KeyContainer: "sidecar", podmeta.KeyContainerID: sidecarID,
		})},
		{"init container", crioPod + "/crio-" + initID, podMeta(map[string]string{
			podmeta.KeyContainer: "migrate", podmeta.KeyContainerID: initID,
			podmeta.KeyRequestCPU: "100", podmeta.KeyRequestMemory: "33554432",
		})},
		{"sandbox", systemdPath(uid, sandboxID), podMeta(map[string]string{podmeta.KeyContainerID: sandboxID})},
		{"pod-level cgroup", systemdPath(uid, ""), podMeta(nil)},
		{"conmon", crioPod + "/crio-conmon-" + appID, podMeta(nil)},
		{"not a pod", "/system.slice/containerd.service", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := w.Resolve(tt.path)
			if !maps.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Fatalf("Resolve(%q) =\n%v\nwant\n%v", tt.path, got, tt.want)
			}
		})
	}
	if n := w.Pods(); n != 1 {
		t.Fatalf("Pods() = %d, want 1", n)
	}
	if p, ok := w.PodByContainerID(sidecarID); !ok || p.Name != "web-0" {
		t.Fatalf("PodByContainerID(sidecar) = %v, %v; want web-0", p, ok)
	}
}

func TestResolveQOSFallsBackToPath(t *testing.T) {
	p := newPod("web-0", uid, node)
	p.Status.QOSClass = ""
	w, _, _ := startWatcher(t, p)
	path := "/kubepods/besteffort/pod" + uid
	if got := w.Resolve(path)[podmeta.KeyQOSClass]; got != "BestEffort" {
		t.Fatalf("Resolve(%q) QoS = %q, want BestEffort (from the path)", path, got)
	}
}

func TestWatchOnlyThisNode(t *testing.T) {
	const otherUID = "9b2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
	w, client, reg := startWatcher(t, newPod("web-0", uid, node), newPod("elsewhere", otherUID, "node-b"))
	// The fake clientset ignores field selectors: the other node's pod
	// reached the informer, and the watcher must still ignore it.
	if n := len(w.indexer.List()); n != 2 {
		t.Fatalf("informer holds %d pods, want both (the fake does not filter)", n)
	}
	if m := w.Resolve(systemdPath(otherUID, appID)); m != nil {
		t.Fatalf("Resolve(pod of another node) = %v, want nil", m)
	}
	if m := w.Resolve(systemdPath(uid, appID)); m[podmeta.KeyPod] != "web-0" {
		t.Fatalf("Resolve(pod of this node) = %v, want web-0", m)
	}
	if n := w.Pods(); n != 1 {
		t.Fatalf("Pods() = %d, want 1", n)
	}
	if got := metricValue(t, reg, "penny_agent_kube_pods"); got != 1 {
		t.Fatalf("penny_agent_kube_pods = %v, want 1", got)
	}
	var list, watch bool
	for _, a := range client.Actions() {
		if a.GetResource().Resource != "pods" {
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
		if sel != "spec.nodeName="+node {
			t.Errorf("%s pods with field selector %q, want spec.nodeName=%s", a.GetVerb(), sel, node)
		}
	}
	if !list || !watch {
		t.Fatalf("pods listed %v, watched %v; want both", list, watch)
	}
}

// TestResolveDeletedPod: a deleted pod's cgroups keep its metadata for
// DeletedGrace, then resolve to nothing.
func TestResolveDeletedPod(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	w, client, _ := startWatcherWith(t, Config{DeletedGrace: time.Minute, Now: clock}, newPod("web-0", uid, node))
	path := systemdPath(uid, appID)
	if m := w.Resolve(path); m[podmeta.KeyContainer] != "app" {
		t.Fatalf("Resolve() = %v, want container app", m)
	}
	if err := client.CoreV1().Pods(ns).Delete(t.Context(), "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	eventually(t, "the pod to leave the informer", func() bool { return w.Pods() == 0 })
	for _, d := range []time.Duration{0, 59 * time.Second} {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
		if m := w.Resolve(path); m[podmeta.KeyContainer] != "app" {
			t.Fatalf("Resolve() %s after the delete = %v, want the pod's metadata", d, m)
		}
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if m := w.Resolve(path); m != nil {
		t.Fatalf("Resolve() past the grace = %v, want nil", m)
	}
	if n := w.Pods(); n != 0 {
		t.Fatalf("Pods() = %d after delete, want 0", n)
	}
	if n := w.Unresolved(); n != 1 {
		t.Fatalf("Unresolved() = %d, want 1", n)
	}
}

func TestResolveRestartedContainer(t *testing.T) {
	w, client, _ := startWatcher(t, newPod("web-0", uid, node))
	oldPath, newPath := systemdPath(uid, appID), systemdPath(uid, appID2)
	if m := w.Resolve(oldPath); m[podmeta.KeyContainer] != "app" {
		t.Fatalf("Resolve(old) = %v, want container app", m)
	}
	p := newPod("web-0", uid, node)
	p.Status.ContainerStatuses[0].ContainerID = "containerd://" + appID2
	p.Status.ContainerStatuses[0].RestartCount = 1
	p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
		ExitCode: 137, ContainerID: "containerd://" + appID,
	}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	eventually(t, "the new container to resolve", func() bool {
		return w.Resolve(newPath)[podmeta.KeyContainer] == "app"
	})
	got := w.Resolve(newPath)
	if got[podmeta.KeyContainerID] != appID2 || got[podmeta.KeyLimitMemory] != "134217728" {
		t.Fatalf("Resolve(new) = %v, want app's id %s and limits", got, appID2)
	}
	old := w.Resolve(oldPath)
	if old[podmeta.KeyContainer] != "" || old[podmeta.KeyPod] != "web-0" || old[podmeta.KeyContainerID] != appID {
		t.Fatalf("Resolve(old) = %v, want the pod with no container name", old)
	}
	if _, ok := w.PodByContainerID(appID); ok {
		t.Fatalf("PodByContainerID(old id) still finds the pod")
	}
	if p, ok := w.PodByContainerID(appID2); !ok || p.Name != "web-0" {
		t.Fatalf("PodByContainerID(new id) = %v, %v; want web-0", p, ok)
	}
}

func TestResolveUnknownPod(t *testing.T) {
	w, client, reg := startWatcher(t)
	path := systemdPath(uid, appID)
	if m := w.Resolve(path); m != nil {
		t.Fatalf("Resolve(unknown pod) = %v, want nil", m)
	}
	w.Resolve("/system.slice/sshd.service") // not a pod's: not unresolved
	if got := metricValue(t, reg, "penny_agent_kube_unresolved_cgroups"); got != 1 {
		t.Fatalf("penny_agent_kube_unresolved_cgroups = %v, want 1", got)
	}
	// The pod shows up: the same path resolves.
	if _, err := client.CoreV1().Pods(ns).Create(t.Context(), newPod("web-0", uid, node), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	eventually(t, "the new pod to resolve", func() bool { return w.Resolve(path) != nil })
	if n := w.Unresolved(); n != 0 {
		t.Fatalf("Unresolved() = %d after the pod appeared, want 0", n)
	}
}

func TestResolveStaticPod(t *testing.T) {
	const mirrorUID = "c0ffee00-1111-4222-8333-444455556666"
	tests := []struct {
		name       string
		annotation bool // the mirror pod names its static pod
		path       string
		wantUID    string // "": not resolved
	}{
		{"by mirror annotation", true, systemdPath(staticUID, appID), mirrorUID},
		{"pod cgroup by mirror annotation", true, systemdPath(staticUID, ""), mirrorUID},
		{"by container id without annotation", false, systemdPath(staticUID, appID), mirrorUID},
		{"pod cgroup without annotation", false, systemdPath(staticUID, ""), ""},
		{"regular UID never by container id", false, systemdPath(uid, appID), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPod("kube-apiserver-node-a", mirrorUID, node)
			if tt.annotation {
				p.Annotations = map[string]string{MirrorAnnotation: staticUID, "kubernetes.io/config.source": "file"}
			}
			w, _, _ := startWatcher(t, p)
			m := w.Resolve(tt.path)
			if m[podmeta.KeyPodUID] != tt.wantUID {
				t.Fatalf("Resolve(%q) = %v, want pod UID %q", tt.path, m, tt.wantUID)
			}
		})
	}
}

func TestResolveSteadyState(t *testing.T) {
	w, client, _ := startWatcher(t, newPod("web-0", uid, node))
	path := systemdPath(uid, appID)
	first := w.Resolve(path)
	if allocs := testing.AllocsPerRun(100, func() { w.Resolve(path) }); allocs != 0 {
		t.Fatalf("Resolve() allocates %v times per call in a steady state, want 0", allocs)
	}
	if !sameMap(first, w.Resolve(path)) {
		t.Fatalf("Resolve() returned a different map while nothing changed")
	}

	// A change that does not touch the metadata keeps the map.
	p := newPod("web-0", uid, node)
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := client.CoreV1().Pods(ns).UpdateStatus(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	eventually(t, "the status update to reach the informer", func() bool {
		obj, ok, _ := w.indexer.GetByKey(ns + "/web-0")
		return ok && len(obj.(*corev1.Pod).Status.Conditions) == 1
	})
	eventually(t, "the watcher to see the update", func() bool {
		w.Resolve(path)
		w.mu.Lock()
		defer w.mu.Unlock()
		e := w.paths[path]
		return len(e.pod.Status.Conditions) == 1
	})
	if !sameMap(first, w.Resolve(path)) {
		t.Fatalf("Resolve() returned a new map for an update that changed no metadata")
	}

	// A label changes: new contents.
	p.Labels = map[string]string{"app": "web", "cost.tenant-id": "globex"}
	if _, err := client.CoreV1().Pods(ns).Update(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update pod: %v", err)
	}
	eventually(t, "the new label", func() bool {
		return w.Resolve(path)[podmeta.KeyLabelPrefix+"cost.tenant-id"] == "globex"
	})
	if first[podmeta.KeyLabelPrefix+"cost.tenant-id"] != "acme" {
		t.Fatalf("a returned map was modified: %v", first)
	}
}

// sameMap reports whether a and b are the same map, not only equal ones.
func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func TestSweepForgetsUnusedPaths(t *testing.T) {
	w, _, _ := startWatcher(t)
	const unknownUID = "9b2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
	kept, gone := systemdPath(uid, appID), systemdPath(unknownUID, appID)
	w.Resolve(kept)
	w.Resolve(gone)
	if n := w.Unresolved(); n != 2 {
		t.Fatalf("Unresolved() = %d, want 2", n)
	}
	w.sweep() // both were used since the start
	w.Resolve(kept)
	w.sweep() // gone was not used since the previous sweep
	if n := w.Unresolved(); n != 1 {
		t.Fatalf("Unresolved() = %d after the sweep, want 1", n)
	}
	w.mu.Lock()
	_, keptOK := w.paths[kept]
	_, goneOK := w.paths[gone]
	w.mu.Unlock()
	if !keptOK || goneOK {
		t.Fatalf("after sweep: kept cached %v, gone cached %v; want true, false", keptOK, goneOK)
	}
}

func TestTransformDropsWhatIsUnused(t *testing.T) {
	w, client, _ := startWatcher(t)
	if _, err := client.CoreV1().Pods(ns).Create(t.Context(), newPod("web-0", uid, node), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	stored, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), ns, "web-0")
	if err != nil {
		t.Fatalf("tracker get: %v", err)
	}
	if len(stored.(*corev1.Pod).ManagedFields) == 0 {
		t.Fatalf("the fake clientset stored no managed fields: the test checks nothing")
	}
	var cached *corev1.Pod
	eventually(t, "the pod in the informer", func() bool {
		obj, ok, _ := w.indexer.GetByKey(ns + "/web-0")
		if ok {
			cached = obj.(*corev1.Pod)
		}
		return ok
	})
	if len(cached.ManagedFields) != 0 || len(cached.Annotations) != 0 {
		t.Fatalf("cached pod has %d managed fields and annotations %v, want none", len(cached.ManagedFields), cached.Annotations)
	}
	if cached.Labels["app"] != "web" || len(cached.Spec.Containers) != 2 {
		t.Fatalf("transform dropped what the watcher uses: %+v", cached.ObjectMeta)
	}
}

func TestWaitForSyncUnreachable(t *testing.T) {
	client := fake.NewClientset(newPod("web-0", uid, node))
	var down atomic.Bool
	down.Store(true)
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	w, err := New(Config{NodeName: node, Logger: testLogger(t)}, client)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	w.Start(t.Context())
	t.Cleanup(w.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := w.WaitForSync(ctx); !errors.Is(err, ErrNotSynced) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForSync() error = %v, want ErrNotSynced and the deadline", err)
	}
	if m := w.Resolve(systemdPath(uid, appID)); m != nil {
		t.Fatalf("Resolve() before sync = %v, want nil", m)
	}
	// The API server comes back: the informer retries on its own.
	down.Store(false)
	ctx, cancel = context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := w.WaitForSync(ctx); err != nil {
		t.Fatalf("WaitForSync() after recovery error = %v", err)
	}
	eventually(t, "the pod to resolve after recovery", func() bool { return w.Resolve(systemdPath(uid, appID)) != nil })
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"ok", Config{NodeName: "ip-10-0-0-1.ec2.internal"}, false},
		{"no node", Config{}, true},
		{"uppercase node", Config{NodeName: "Node-A"}, true},
		{"underscore", Config{NodeName: "node_a"}, true},
		{"spot labels", Config{NodeName: "n", SpotLabels: []Label{{"example.com/lifecycle", "spot"}, {"pool", ""}}}, false},
		{"bad spot label key", Config{NodeName: "n", SpotLabels: []Label{{"Pool Name", "spot"}}}, true},
		{"bad spot label value", Config{NodeName: "n", SpotLabels: []Label{{"pool", "a b"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Complete()
			if tt.cfg.Logger == nil {
				t.Fatalf("Complete() left Logger nil")
			}
			err := tt.cfg.Validate()
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("Validate() error = %v, want error %v (ErrConfig)", err, tt.wantErr)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(good, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	tests := []struct {
		name    string
		cfg     Config
		wantErr error // nil: no error; errAny: any error
	}{
		{"kubeconfig", Config{KubeConfig: good, NodeName: node}, nil},
		{"missing kubeconfig", Config{KubeConfig: filepath.Join(dir, "nope"), NodeName: node}, errAny},
		{"not in a cluster", Config{NodeName: node}, rest.ErrNotInCluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			switch {
			case tt.wantErr == nil && (err != nil || c == nil):
				t.Fatalf("NewClient() = %v, %v; want a client", c, err)
			case tt.wantErr == errAny && err == nil:
				t.Fatalf("NewClient() error = nil, want one")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("NewClient() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")

// metricValue returns the value of the gauge name in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
