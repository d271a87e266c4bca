//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/pennyhq/penny/agent/shipper"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/wire"
)

// agentPod waits for the chart's DaemonSet to have its pod on node, and
// returns it.
func (c *cluster) agentPod(t *testing.T, node string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	ds, err := c.cp.Client.AppsV1().DaemonSets(namespace).Get(ctx, release+"-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	c.kubelet.wait(t, 60*time.Second, "the agent DaemonSet's pod on "+node, func() error {
		pods, err := c.cp.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String(),
			FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
		if err != nil {
			return err
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.DeletionTimestamp == nil {
				pod = p
				return nil
			}
		}
		return fmt.Errorf("%d pods", len(pods.Items))
	})
	return pod
}

// agentTokenFile writes a token of the chart's agent ServiceAccount bound
// to the DaemonSet's pod on node, the token kubelet mounts in that pod
// (automountServiceAccountToken: a pod-bound token of the API server's
// audience): TokenReview names the pod and its node, so the aggregators
// know its bearer as the agent of that node and of nothing else. It
// returns the file and the token.
func (c *cluster) agentTokenFile(t *testing.T, node string) (string, string) {
	t.Helper()
	pod := c.agentPod(t, node)
	tr, err := c.cp.Client.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), pod.Spec.ServiceAccountName,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: new(int64(2 * 3600)),
			BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of %s bound to pod %s: %v", pod.Spec.ServiceAccountName, pod.Name, err)
	}
	file := c.cp.writeFile(t, "agent-token-"+node, []byte(tr.Status.Token))
	return file, tr.Status.Token
}

// agentTokenArgs are an agent's flags to reach the API as the chart runs
// it: the CA, and the token bound to its pod.
func (c *cluster) agentTokenArgs(t *testing.T, node string) []string {
	t.Helper()
	if c.agentTokens == nil {
		c.agentTokens = map[string]string{}
	}
	file, ok := c.agentTokens[node]
	if !ok {
		file, _ = c.agentTokenFile(t, node)
		c.agentTokens[node] = file
	}
	return []string{"--ca-file", c.pki.serverCA, "--token-file", file}
}

// checkAgentIdentity is issue 11's first attack on the real apiserver: the
// first node's agent token (bound to its DaemonSet pod, reviewed by the
// real TokenReview) streams a frame for the spot node with a pod at 64 GiB
// RSS. Every replica refuses it and counts it, and the pod never shows;
// the same ServiceAccount's token bound to no pod is no agent at all, and
// its stream is refused (403) before any frame.
func (c *cluster) checkAgentIdentity(t *testing.T) {
	t.Helper()
	_, token := c.agentTokenFile(t, nodeName)
	unbound := c.token(t, release+"-agent")
	at := time.Now().Truncate(time.Second)
	meta := podmeta.Encode(&podmeta.Pod{UID: "e2e-forged-uid", Namespace: "shop", Name: "forged"}, &podmeta.Container{Name: "app"})
	forged := &wire.Snapshot{Time: at, Interval: time.Second, Series: []wire.SeriesState{{
		Path: "/kubepods.slice/kubepods-podforged.slice/cri-containerd-forged.scope", ID: 1,
		Meta: meta, Values: wire.Values{Processes: 1, RSSBytes: 64 << 30}}}}
	for _, h := range c.hosts {
		base := apiURL(h)
		mismatch := c.replicaMetric(t, base, `penny_ingest_frames_rejected_total{reason="node_mismatch"}`)
		denied := c.replicaMetric(t, base, `penny_authz_denied_total{resource="ingest"}`)
		stopForged := c.shipAs(t, base, token, spotNodeName, forged)
		stopUnbound := c.shipAs(t, base, unbound, spotNodeName, forged)
		c.kubelet.wait(t, 30*time.Second, "the forged frame refused by "+h.IP, func() error {
			m := c.replicaMetric(t, base, `penny_ingest_frames_rejected_total{reason="node_mismatch"}`)
			d := c.replicaMetric(t, base, `penny_authz_denied_total{resource="ingest"}`)
			if m <= mismatch || d <= denied {
				return fmt.Errorf("node_mismatch %v -> %v, ingest denied %v -> %v", mismatch, m, denied, d)
			}
			return nil
		})
		stopForged()
		stopUnbound()
	}
	var pods struct {
		Pods []struct{ Name, Node string }
	}
	if err := c.getJSON(apiURL(c.hosts[0])+"/v1/pods?namespace=shop&consistency=linearizable", &pods); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Pods {
		if p.Name == "forged" {
			t.Fatalf("the forged pod is stored: %+v", p)
		}
	}
	t.Logf("the agent token bound to %s's pod: frames for %s refused and counted on every replica; the agent ServiceAccount's unbound token: 403",
		nodeName, spotNodeName)
}

// shipAs streams snapshots to the replica at base as node, with token,
// until the returned function or the test's end stops it.
func (c *cluster) shipAs(t *testing.T, base, token, node string, snaps ...*wire.Snapshot) context.CancelFunc {
	t.Helper()
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: node})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := shipper.New(shipper.Config{URLs: []string{base}, TLS: &tls.Config{RootCAs: c.pki.roots(t)},
		Token:      func() (string, error) { return token, nil },
		BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}, enc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go sh.Run(ctx)
	for _, s := range snaps {
		if err := sh.Submit(s); err != nil {
			t.Fatal(err)
		}
	}
	return cancel
}

// replicaMetric reads one sample of a replica's /metrics as the admin (0
// when it is not there).
func (c *cluster) replicaMetric(t *testing.T, base, sample string) float64 {
	t.Helper()
	b, err := c.getBody(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}
