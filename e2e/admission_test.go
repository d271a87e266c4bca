//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// webhookReplicas is the chart's default webhook.replicas.
const webhookReplicas = 2

// webhooks are the cost-label webhook's pods: a process per pod, each in a
// test host whose IP the kubelet gives the pod, so that kube-apiserver
// reaches them through the Service's endpoints as in a cluster.
type webhooks struct {
	hosts []*testHost
	procs []*proc
	// rulesFile is each pod's copy of the rules ConfigMap, as the kubelet
	// projects it into the pod's volume.
	rulesFiles []string
	client     *http.Client
	starts     int
}

func newWebhooks(t *testing.T, k *kubelet) *webhooks {
	t.Helper()
	w := &webhooks{}
	var ips []string
	for i := range webhookReplicas {
		h := newTestHost(t, replicas+2+i)
		w.hosts = append(w.hosts, h)
		ips = append(ips, h.IP)
	}
	k.prefixIPs[namespace+"/"+release+"-webhook-"] = ips
	return w
}

// startWebhooks runs the webhook's pods with what the chart gave them: the
// serving certificate it made, the rules ConfigMap it rendered and the
// webhook ServiceAccount's token.
func (c *cluster) startWebhooks(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	secret, err := c.cp.Client.CoreV1().Secrets(namespace).Get(ctx, release+"-webhook-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's webhook serving Secret: %v", err)
	}
	certFile := c.cp.writeFile(t, "webhook.crt", secret.Data[corev1.TLSCertKey])
	keyFile := c.cp.writeFile(t, "webhook.key", secret.Data[corev1.TLSPrivateKeyKey])
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(secret.Data["ca.crt"])
	w := c.webhooks
	w.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: release + "-webhook." + namespace + ".svc"}}}
	kc := kubeconfig(t, filepath.Join(c.dir, "webhook.kubeconfig"), c.cp.URL, c.cp.CA.File, "", "",
		c.token(t, release+"-webhook"))
	w.procs, w.rulesFiles = nil, nil
	w.starts++
	for i, h := range w.hosts {
		rules := c.cp.writeFile(t, fmt.Sprintf("webhook-rules-%d.yaml", i), []byte(c.webhookRules(t)))
		w.rulesFiles = append(w.rulesFiles, rules)
		w.procs = append(w.procs, start(t, c.dir, fmt.Sprintf("webhook-%d-%d", w.starts, i), h.Command(c.penny, "webhook",
			"--listen", h.IP+":9443", "--tls-cert-file", certFile, "--tls-private-key-file", keyFile,
			"--rules-file", rules, "--kubeconfig", kc)))
	}
	for i, h := range w.hosts {
		eventually(t, 30*time.Second, w.procs[i].name+" ready", func() error {
			if w.procs[i].exited() {
				t.Fatalf("%s exited:\n%s", w.procs[i].name, tail(w.procs[i].log, 40))
			}
			// The certificate is the Service's: verified for its name.
			resp, err := w.client.Get("https://" + h.IP + ":9443/healthz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("/healthz: %s", resp.Status)
			}
			return nil
		})
	}
}

// webhookRules is the rules file of the chart's ConfigMap.
func (c *cluster) webhookRules(t *testing.T) string {
	t.Helper()
	cm, err := c.cp.Client.CoreV1().ConfigMaps(namespace).Get(context.Background(), release+"-webhook-rules", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data["rules.yaml"]
}

// syncRules writes the rules ConfigMap into every webhook pod's file, as
// the kubelet updates a ConfigMap volume.
func (c *cluster) syncRules(t *testing.T) {
	t.Helper()
	rules := c.webhookRules(t)
	for _, f := range c.webhooks.rulesFiles {
		c.cp.writeFile(t, filepath.Base(f), []byte(rules))
	}
}

// webhookMetric is the sum of a counter over every webhook pod.
func (c *cluster) webhookMetric(t *testing.T, name string) float64 {
	t.Helper()
	var sum float64
	for _, h := range c.webhooks.hosts {
		resp, err := c.webhooks.client.Get("https://" + h.IP + ":9443/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				var f float64
				if _, err := fmt.Sscan(v, &f); err == nil {
					sum += f
				}
			}
		}
	}
	return sum
}

const (
	tenantNS  = "tenant-a"    // labelled: tenant, tier; annotated: owner
	plainNS   = "unlabelled"  // no cost labels
	optOutNS  = "not-stamped" // penny.dev/cost-labels=disabled
	pauseImg  = "registry.k8s.io/pause:3.10"
	tenantVal = "acme"
)

// bare is a pod of no controller.
func bare(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: pauseImg}}}}
}

// costLabels are the cost.* labels of a pod.
func costLabels(p *corev1.Pod) map[string]string {
	out := map[string]string{}
	for k, v := range p.Labels {
		if strings.HasPrefix(k, "cost.") {
			out[k] = v
		}
	}
	return out
}

// checkAdmission checks the cost-label webhook the chart installed, through
// the real API server: pods created in labelled namespaces get the labels,
// a pod's own label is kept, excluded namespaces are left alone, a bad
// rules ConfigMap changes nothing, and with the webhook stopped pods are
// still created. It prints the admission latency it adds.
func (c *cluster) checkAdmission(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	// tenant-a as the README shows it: labelled once, with a Deployment
	// that knows nothing of costs.
	c.kubectl(t, "create", "namespace", tenantNS)
	c.kubectl(t, "label", "namespace", tenantNS, "cost.tenant-id="+tenantVal, "cost.service-tier=gold")
	c.kubectl(t, "annotate", "namespace", tenantNS, "cost.owner=team-a")
	c.kubectl(t, "apply", "-f", c.cp.writeFile(t, "admission.yaml", []byte(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
---
apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels: {cost.tenant-id: nobody, penny.dev/cost-labels: disabled}
`, plainNS, optOutNS))))
	pods := c.cp.Client.CoreV1().Pods
	stamped := map[string]string{"cost.tenant-id": tenantVal, "cost.service-tier": "gold", "cost.owner": "team-a"}

	// The API server reaches the webhook once the endpoints name its pods.
	n := 0
	c.kubelet.wait(t, 90*time.Second, "a pod in "+tenantNS+" stamped", func() error {
		n++
		p, err := pods(tenantNS).Create(ctx, bare(tenantNS, fmt.Sprintf("probe-%d", n), nil), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if got := costLabels(p); !maps.Equal(got, stamped) {
			return fmt.Errorf("pod %s has %v", p.Name, got)
		}
		return nil
	})

	c.kubectl(t, "-n", tenantNS, "create", "deployment", "api", "--image="+pauseImg)
	c.kubectl(t, "apply", "-f", c.cp.writeFile(t, "worker.yaml", []byte(deploymentIn(plainNS, "worker"))))

	// Pods of Deployments: the namespace's labels, else the owner.
	c.kubelet.wait(t, 60*time.Second, "the Deployments' pods stamped", func() error {
		for _, tc := range []struct {
			ns, app string
			want    map[string]string
		}{
			{tenantNS, "api", stamped},
			{plainNS, "worker", map[string]string{"cost.owner": "worker"}},
		} {
			list, err := pods(tc.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + tc.app})
			if err != nil {
				return err
			}
			if len(list.Items) == 0 {
				return fmt.Errorf("no pod of %s/%s yet", tc.ns, tc.app)
			}
			for _, p := range list.Items {
				if got := costLabels(&p); !maps.Equal(got, tc.want) {
					return fmt.Errorf("%s/%s has %v, want %v", tc.ns, p.Name, got, tc.want)
				}
			}
		}
		return nil
	})

	t.Logf("kubectl -n %s get pods -l app=api --show-labels\n%s", tenantNS,
		c.kubectlQuiet("-n", tenantNS, "get", "pods", "-l", "app=api", "--show-labels"))

	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want map[string]string
	}{
		{"a pod's own tenant is kept", bare(tenantNS, "own-tenant", map[string]string{"cost.tenant-id": "mine"}),
			map[string]string{"cost.tenant-id": "mine", "cost.service-tier": "gold", "cost.owner": "team-a"}},
		{"kube-system is not stamped", bare("kube-system", "system-pod", nil), map[string]string{}},
		{"an opted-out namespace is not stamped", bare(optOutNS, "opted-out", nil), map[string]string{}},
		{"an opted-out pod is not stamped", bare(tenantNS, "pod-opted-out", map[string]string{"penny.dev/cost-labels": "disabled"}),
			map[string]string{}},
	} {
		p, err := pods(tc.pod.Namespace).Create(ctx, tc.pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := costLabels(p); !maps.Equal(got, tc.want) {
			t.Errorf("%s: %s/%s has %v, want %v", tc.name, p.Namespace, p.Name, got, tc.want)
		}
	}

	c.checkBadRules(t)
	c.measureAdmission(t)

	// Stopped, the webhook keeps nobody from creating pods
	// (failurePolicy: Ignore); they come without the labels.
	for _, p := range c.webhooks.procs {
		p.stop()
	}
	p, err := pods(tenantNS).Create(ctx, bare(tenantNS, "webhook-down", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("with the webhook stopped, a pod is refused: %v", err)
	}
	if got := costLabels(p); len(got) != 0 {
		t.Errorf("with the webhook stopped, a pod has %v", got)
	}
	c.startWebhooks(t)
	n = 0
	c.kubelet.wait(t, 60*time.Second, "pods stamped again after a restart", func() error {
		n++
		p, err := pods(tenantNS).Create(ctx, bare(tenantNS, fmt.Sprintf("restarted-%d", n), nil), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if got := costLabels(p); !maps.Equal(got, stamped) {
			return fmt.Errorf("pod %s has %v", p.Name, got)
		}
		return nil
	})
}

// checkBadRules updates the rules ConfigMap with rules the webhook must
// refuse: every pod keeps being stamped by the last good rules, and the
// refusal is counted; then the good rules come back.
func (c *cluster) checkBadRules(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	cms := c.cp.Client.CoreV1().ConfigMaps(namespace)
	cm, err := cms.Get(ctx, release+"-webhook-rules", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := cm.Data["rules.yaml"]
	refused := c.webhookMetric(t, `penny_webhook_rules_reloads_total{result="refused"}`)
	cm.Data["rules.yaml"] = "labels:\n  - key: cost.tenant-id\n    from:\n      - value: 'not a label value'\n"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.syncRules(t)
	// Each pod looks at its file every second, called or not.
	eventually(t, 30*time.Second, "the bad rules refused by every webhook pod", func() error {
		if got := c.webhookMetric(t, `penny_webhook_rules_reloads_total{result="refused"}`); got != refused+webhookReplicas {
			return fmt.Errorf("%v refusals, want one per pod", got-refused)
		}
		return nil
	})
	p, err := c.cp.Client.CoreV1().Pods(tenantNS).Create(ctx, bare(tenantNS, "after-bad-rules", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := costLabels(p); got["cost.tenant-id"] != tenantVal || got["cost.owner"] != "team-a" {
		t.Errorf("after a bad rules ConfigMap, a pod has %v: the last good rules must stay", got)
	}
	if cm, err = cms.Get(ctx, release+"-webhook-rules", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	cm.Data["rules.yaml"] = good
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.syncRules(t)
}

// measureAdmission creates 1,000 pods the webhook stamps and, interleaved,
// 1,000 in a namespace it is never called for, and prints the creation
// latency of both and what the webhook adds. Printed, not asserted: the
// target (p99 <= 10 ms added) depends on the machine.
func (c *cluster) measureAdmission(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	const n = 1000
	var with, without []time.Duration
	before := c.webhookMetric(t, `penny_webhook_admissions_total{result="patched"}`)
	for i := range n {
		for _, ns := range []string{tenantNS, optOutNS} {
			pod := bare(ns, fmt.Sprintf("latency-%d", i), nil)
			t0 := time.Now()
			if _, err := c.cp.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); ns == tenantNS {
				with = append(with, d)
			} else {
				without = append(without, d)
			}
		}
	}
	if got := c.webhookMetric(t, `penny_webhook_admissions_total{result="patched"}`) - before; got < n {
		t.Errorf("the webhook stamped %v of the %d pods", got, n)
	}
	// The pods are not scheduled: deleted at once, before the kubelet
	// would bind them.
	for _, ns := range []string{tenantNS, optOutNS} {
		if err := c.cp.Client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: "!app"}); err != nil {
			t.Fatal(err)
		}
	}
	q := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	t.Logf("pod creation through kube-apiserver, %d pods each, interleaved:\n"+
		"%-32s %10s %10s\n%-32s %10s %10s\n%-32s %10s %10s\n%-32s %10s %10s",
		n, "", "p50", "p99",
		"with the cost-label webhook", ms(q(with, 0.5)), ms(q(with, 0.99)),
		"without (namespace opted out)", ms(q(without, 0.5)), ms(q(without, 0.99)),
		"added by the webhook", ms(q(with, 0.5)-q(without, 0.5)), ms(q(with, 0.99)-q(without, 0.99)))
}

// deploymentIn is a Deployment of one pause pod in ns.
func deploymentIn(ns, name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: main
          image: %[3]s
`, name, ns, pauseImg)
}
