//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/cgtest"
)

// nodeLabels are the labels of the harness's Node object: the ones a
// cloud's node has, the facts the agent ships (see checkNodeFacts).
var nodeLabels = map[string]string{"kubernetes.io/hostname": nodeName, "kubernetes.io/os": "linux",
	"node.kubernetes.io/instance-type": "e2e.xlarge", "topology.kubernetes.io/region": "e2e-region-1",
	"topology.kubernetes.io/zone": "e2e-region-1a", "karpenter.sh/capacity-type": "spot"}

// spotNodeLabels are the labels of the harness's second Node, a spot node
// as GKE labels it, which the cost test runs pods on.
var spotNodeLabels = map[string]string{"kubernetes.io/hostname": spotNodeName, "kubernetes.io/os": "linux",
	"node.kubernetes.io/instance-type": "e2e.large", "topology.kubernetes.io/region": "e2e-region-1",
	"topology.kubernetes.io/zone": "e2e-region-1b", "cloud.google.com/gke-spot": "true"}

const (
	nodeName = "e2e-node"
	// spotNodeName is the second node: the same host, measured by a second
	// agent (see startAgent), with pods of its own.
	spotNodeName = "e2e-node-2"
	// workloadLabel marks the pods the kubelet runs a real process for;
	// the others (the chart's) only get a running status, their processes
	// are the harness's.
	workloadLabel = "e2e.penny.dev/workload"
)

// kubelet plays the kubelet and the scheduler of two nodes: it binds every
// pending pod to a node (the one its node selector or a DaemonSet's node
// affinity names, else nodeName), starts a real process in a real cgroup
// at the path the kubelet's systemd driver and containerd give a container
// for each workload pod, reports the pods running and ready, and finishes
// the deletion of pods being deleted. It works when the test calls sync,
// from the test's goroutine (every wait of the harness does).
type kubelet struct {
	client kubernetes.Interface
	layout cgroupfs.Layout
	// podIPs gives chosen pods (by namespace/name) their IP: the
	// aggregator replicas' test hosts.
	podIPs map[string]string
	// prefixIPs gives the pods of a Deployment (by namespace/name prefix)
	// the IPs of their test hosts, one each, in order of start.
	prefixIPs map[string][]string
	// initialRSS is the memory each new workload process touches.
	initialRSS int64
	running    map[types.UID]*workload
	nextIP     int
	// serve gives the pods of a Deployment (by namespace/name prefix) a
	// command their process runs when it starts, which answers the
	// address it serves on (rateserve); a pod being deleted is taken out
	// of its backends, then drained.
	serve    map[string]string
	backends *backends
}

// workload is one workload pod's process.
type workload struct {
	pod   string // namespace/name
	group *cgtest.Group
	proc  *cgtest.Proc
	rss   int64
	// addr is where it serves, when its Deployment's pods serve.
	addr string
}

// backends are the addresses the serving pods listen on, by Deployment
// (namespace/name prefix): what a Service's endpoints would hold. The
// kubelet writes them from the test's goroutine; load generators read
// them from theirs.
type backends struct {
	mu    sync.Mutex
	addrs map[string]map[types.UID]string
}

// of returns the addresses of prefix's pods now.
func (b *backends) of(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Collect(maps.Values(b.addrs[prefix]))
	slices.Sort(out)
	return out
}

func (b *backends) set(prefix string, uid types.UID, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if addr == "" {
		delete(b.addrs[prefix], uid)
		return
	}
	if b.addrs[prefix] == nil {
		b.addrs[prefix] = map[types.UID]string{}
	}
	b.addrs[prefix][uid] = addr
}

func newKubelet(t *testing.T, client kubernetes.Interface, layout cgroupfs.Layout) *kubelet {
	t.Helper()
	k := &kubelet{client: client, layout: layout, podIPs: map[string]string{}, prefixIPs: map[string][]string{}, initialRSS: 32 << 20,
		running: map[types.UID]*workload{}, nextIP: 100, serve: map[string]string{},
		backends: &backends{addrs: map[string]map[types.UID]string{}}}
	createNode(t, client, nodeName, nodeLabels, "64", "256Gi", "64", "256Gi")
	createNode(t, client, spotNodeName, spotNodeLabels, "8", "32Gi", "7", "28Gi")
	return k
}

// createNode creates a Ready Node with its labels, capacity and
// allocatable CPU and memory.
func createNode(t *testing.T, client kubernetes.Interface, name string, labels map[string]string, cpu, mem, allocCPU, allocMem string) {
	t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: maps.Clone(labels)},
	}
	ctx := context.Background()
	node, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem),
		corev1.ResourcePods: resource.MustParse("110")}
	allocatable := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(allocCPU), corev1.ResourceMemory: resource.MustParse(allocMem),
		corev1.ResourcePods: resource.MustParse("110")}
	node.Status = corev1.NodeStatus{Capacity: capacity, Allocatable: allocatable,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: bridgeIP}, {Type: corev1.NodeHostName, Address: name}}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// target is the node to bind a pending pod to: the one its node selector
// names (kubernetes.io/hostname), or the one a DaemonSet's node affinity
// names, else nodeName.
func target(pod *corev1.Pod) string {
	if n := pod.Spec.NodeSelector["kubernetes.io/hostname"]; n == spotNodeName {
		return n
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range term.MatchFields {
				if f.Key == "metadata.name" && slices.Contains(f.Values, spotNodeName) {
					return spotNodeName
				}
			}
		}
	}
	return nodeName
}

// sync does one round of the kubelet's work.
func (k *kubelet) sync(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	list, err := k.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("kubelet: list pods: %v", err)
		return
	}
	alive := map[types.UID]bool{}
	for i := range list.Items {
		pod := &list.Items[i]
		alive[pod.UID] = true
		switch {
		case pod.DeletionTimestamp != nil:
			k.kill(pod.UID)
			err = k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
				GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		case pod.Spec.NodeName == "":
			err = k.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
				Target:     corev1.ObjectReference{Kind: "Node", Name: target(pod)}}, metav1.CreateOptions{})
		case (pod.Spec.NodeName == nodeName || pod.Spec.NodeName == spotNodeName) && pod.Status.Phase != corev1.PodRunning:
			err = k.startPod(t, pod)
		}
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			t.Logf("kubelet: pod %s/%s: %v", pod.Namespace, pod.Name, err)
		}
	}
	for uid := range k.running {
		if !alive[uid] {
			k.kill(uid)
		}
	}
}

// startPod runs a workload pod's process and reports the pod running.
func (k *kubelet) startPod(t *testing.T, pod *corev1.Pod) error {
	t.Helper()
	key := pod.Namespace + "/" + pod.Name
	ip := k.podIPs[key]
	for prefix, ips := range k.prefixIPs {
		if ip == "" && strings.HasPrefix(key, prefix) && len(ips) > 0 {
			ip, k.podIPs[key], k.prefixIPs[prefix] = ips[0], ips[0], ips[1:]
		}
	}
	if ip == "" {
		ip = fmt.Sprintf("10.78.0.%d", k.nextIP)
		k.nextIP++
	}
	now := metav1.Now()
	status := corev1.PodStatus{Phase: corev1.PodRunning, HostIP: bridgeIP, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		StartTime: &now, QOSClass: pod.Status.QOSClass}
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		status.Conditions = append(status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for i, c := range pod.Spec.Containers {
		id := randomID(t)
		if i == 0 && pod.Labels[workloadLabel] == "true" && k.running[pod.UID] == nil {
			w := &workload{pod: key, group: cgtest.NewGroupAt(t, k.layout, containerCgroup(pod, id))}
			w.proc = w.group.Start()
			w.setRSS(k.initialRSS)
			k.running[pod.UID] = w
			for prefix, cmd := range k.serve {
				if strings.HasPrefix(key, prefix) {
					w.addr = w.proc.Do("%s", cmd)
					k.backends.set(prefix, pod.UID, w.addr)
				}
			}
		}
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Ready: true, Started: new(true), Image: c.Image, ImageID: c.Image,
			ContainerID: "containerd://" + id,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	pod.Status = status
	_, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
	return err
}

// containerCgroup is the cgroup the kubelet (systemd driver) and
// containerd give container id of pod.
func containerCgroup(pod *corev1.Pod, id string) string {
	uid := strings.ReplaceAll(string(pod.UID), "-", "_")
	switch pod.Status.QOSClass {
	case corev1.PodQOSGuaranteed:
		return "/kubepods.slice/kubepods-pod" + uid + ".slice/cri-containerd-" + id + ".scope"
	case corev1.PodQOSBestEffort:
		return "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid + ".slice/cri-containerd-" + id + ".scope"
	default:
		return "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice/cri-containerd-" + id + ".scope"
	}
}

func (k *kubelet) kill(uid types.UID) {
	if w := k.running[uid]; w != nil {
		if w.addr != "" {
			for prefix := range k.serve {
				k.backends.set(prefix, uid, "")
			}
			_, _ = w.proc.Try("drain")
		}
		w.group.Remove()
		delete(k.running, uid)
	}
}

// workloads returns the running workload processes of pods whose name
// starts with prefix in namespace ns.
func (k *kubelet) workloads(ns, prefix string) []*workload {
	var out []*workload
	for _, w := range k.running {
		if strings.HasPrefix(w.pod, ns+"/"+prefix) {
			out = append(out, w)
		}
	}
	return out
}

// setRSS makes the process hold about bytes of anonymous memory.
func (w *workload) setRSS(bytes int64) {
	w.proc.Do("free")
	w.proc.Do("touch %d", bytes)
	w.rss = bytes
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// wait polls cond, doing the kubelet's work between polls, until cond
// returns nil; it fails the test with cond's last error after timeout.
func (k *kubelet) wait(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	eventually(t, timeout, what, func() error {
		k.sync(t)
		return cond()
	})
}
