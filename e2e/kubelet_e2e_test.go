//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pennyhq/penny/agent/cgroupfs"
)

// TestKubelet checks the harness itself against the real control plane:
// a Deployment's pod is scheduled onto the harness's node, runs a real
// process in the cgroup its container would have, is reported running
// and ready, and is gone with its process when the Deployment is deleted.
func TestKubelet(t *testing.T) {
	e := getEnv(t)
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	newBridge(t)
	cp := startControlPlane(t, e.kubeBin, dir)
	k := newKubelet(t, cp.Client, layout)
	manifest := cp.writeFile(t, "w.yaml", []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n"+deployment("web", "app", 2)))
	cp.kubectl(t, e.kubeBin, "apply", "-f", manifest)
	ctx := context.Background()
	var pods *corev1.PodList
	k.wait(t, 60*time.Second, "web's pods running", func() error {
		pods, err = cp.Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		n := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == nodeName && p.Status.ContainerStatuses[0].Ready {
				n++
			}
		}
		if n != 2 || len(k.workloads("shop", "web-")) != 2 {
			return fmt.Errorf("%d of 2 pods running, %d processes", n, len(k.workloads("shop", "web-")))
		}
		return nil
	})
	for _, w := range k.workloads("shop", "web-") {
		if rss := w.group.SumVmRSS(); rss < k.initialRSS {
			t.Errorf("%s: its process holds %d bytes, want at least %d", w.pod, rss, k.initialRSS)
		}
		if _, err := os.Stat(layout.V2 + w.group.Path); err != nil || !strings.HasPrefix(w.group.Path, "/kubepods.slice/kubepods-burstable.slice/") {
			t.Errorf("%s: cgroup %s: %v", w.pod, w.group.Path, err)
		}
	}
	cp.kubectl(t, e.kubeBin, "delete", "deployment", "web", "-n", "shop", "--wait=false")
	k.wait(t, 60*time.Second, "web's pods gone", func() error {
		pods, err = cp.Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) != 0 || len(k.workloads("shop", "web-")) != 0 {
			return fmt.Errorf("%d pods, %d processes left", len(pods.Items), len(k.workloads("shop", "web-")))
		}
		return nil
	})
}
