//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cmv1beta2 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"

	"github.com/pennyhq/penny/agent/cgroupfs"
	"github.com/pennyhq/penny/internal/cgtest"
	"github.com/pennyhq/penny/internal/testenv"
)

func TestMain(m *testing.M) {
	cgtest.MaybeHelper()
	os.Exit(m.Run())
}

const (
	release   = "penny"
	namespace = "penny-system"
	replicas  = 3
)

// env is what `make e2e` passes: the binaries under test.
type env struct {
	kubeBin string // kube-apiserver, kube-controller-manager, kubectl
	penny   string
	// pennyAgent is bin/penny-agent, what the chart's DaemonSet runs.
	pennyAgent string
	helm       string
}

func getEnv(t *testing.T) env {
	t.Helper()
	cgtest.RequireRoot(t)
	e := env{kubeBin: os.Getenv("PENNY_KUBE_BIN"), penny: os.Getenv("PENNY_BIN"), pennyAgent: os.Getenv("PENNY_AGENT_BIN"),
		helm: os.Getenv("PENNY_HELM")}
	if e.kubeBin == "" || e.penny == "" || e.pennyAgent == "" || e.helm == "" {
		testenv.Skip(t, "PENNY_KUBE_BIN, PENNY_BIN, PENNY_AGENT_BIN and PENNY_HELM are unset: run `make e2e`")
	}
	return e
}

// cluster is the whole installation: control plane, chart, aggregator
// replicas on their test hosts, the agent and the kubelet.
type cluster struct {
	env
	dir     string
	cp      *controlPlane
	kubelet *kubelet
	hosts   []*testHost
	pki     *apiPKI
	// webhooks are the cost-label webhook's pods (admission_test.go).
	webhooks *webhooks
	// aggregators are the replicas' processes, by host, and the
	// arguments they were started with (to start one again).
	aggregators   []*proc
	aggregatorArg [][]string
	// agent is the first node's agent process (startAgent).
	agent *proc
	// agentTokens are the files of the agents' pod-bound tokens, by node
	// (agentTokenArgs).
	agentTokens map[string]string
}

// TestAutoscaling installs the chart into a real control plane, runs the
// aggregator replicas and the agent it describes, and checks what a user
// checks: the custom metrics API through the real apiserver returns the
// workloads' real values, and the README's HorizontalPodAutoscalers scale
// Deployments on memory_rss_bytes (up and back down), on
// memory_page_cache_bytes and on tcp_srtt_p99_seconds. Before, the
// chart's cost-label webhook stamps new pods (checkAdmission), and the
// node's facts from its Node object (with the chart's RBAC) reach the
// aggregators and follow a label change.
func TestAutoscaling(t *testing.T) {
	c := setUp(t)
	ctx := context.Background()
	// The cost test's pods start first and run through the autoscalers'
	// checks; their minutes are priced at the end (checkCost).
	c.checkAdmission(t)
	c.deployCost(t)
	c.checkNodeFacts(t)
	priced := c.startCost(t)
	c.kubectl(t, "apply", "-f", c.writeManifests(t))
	c.kubelet.wait(t, 60*time.Second, "web's 2 pods, cache's 1 and api's 2 running", func() error {
		w, k, a := len(c.kubelet.workloads("shop", "web-")), len(c.kubelet.workloads("shop", "cache-")),
			len(c.kubelet.workloads("shop", "api-"))
		if w != 2 || k != 1 || a != 2 {
			return fmt.Errorf("web runs %d pods, cache %d, api %d", w, k, a)
		}
		return nil
	})

	// The custom metrics API through kube-apiserver, with kubectl: the
	// value of each web pod is its process's real RSS.
	c.kubelet.wait(t, 90*time.Second, "memory_rss_bytes of web through kube-apiserver", func() error {
		return c.checkRSS(t, "shop", "web")
	})
	// Penny's own API on the same pods: RBAC decides who reads which
	// namespace.
	c.checkReaders(t, "shop", "ledger")
	c.checkAgentIdentity(t)

	// Scale up on memory: one pod grows past the target.
	// The README's autoscaler keeps web at 2 to 10 pods of 512Mi on
	// average: one pod of 1.5Gi makes it 4.
	ws := c.kubelet.workloads("shop", "web-")
	if len(ws) != 2 {
		t.Fatalf("web runs %d pods, want 2", len(ws))
	}
	ws[0].setRSS(1536 << 20)
	c.kubelet.wait(t, 3*time.Minute, "web scaled up on memory_rss_bytes", func() error {
		return c.replicasAtLeast(ctx, "shop", "web", "web-memory", 3)
	})
	c.kubelet.wait(t, 90*time.Second, "memory_rss_bytes of every web pod", func() error {
		return c.checkRSS(t, "shop", "web")
	})
	t.Logf("scaled up:\n%s", c.kubectlQuiet("get", "hpa", "-n", "shop"))
	// And back down once it shrinks.
	for _, w := range c.kubelet.workloads("shop", "web-") {
		w.setRSS(32 << 20)
	}
	c.kubelet.wait(t, 3*time.Minute, "web scaled down on memory_rss_bytes", func() error {
		return c.replicasAtMost(ctx, "shop", "web", "web-memory", 2)
	})

	t.Logf("scaled down:\n%s", c.kubectlQuiet("get", "hpa", "-n", "shop"))

	// Scale up on page cache: the cache pod reads a file nobody cached.
	cw := c.kubelet.workloads("shop", "cache-")
	if len(cw) != 1 {
		t.Fatalf("cache runs %d pods, want 1", len(cw))
	}
	file := cgtest.UncachedFile(t, cgtest.DataDir(t), 256<<20)
	cw[0].proc.Do("read %s", file)
	c.kubelet.wait(t, 3*time.Minute, "cache scaled up on memory_page_cache_bytes", func() error {
		return c.replicasAtLeast(ctx, "shop", "cache", "cache", 2)
	})
	t.Logf("cache scaled up:\n%s\n%s", c.kubectlQuiet("get", "hpa", "-n", "shop"),
		c.kubectlQuiet("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/memory_page_cache_bytes"))

	// Scale up on TCP latency: api's pods stream to a server behind a
	// slow link (a token bucket with a deep queue on the test bridge), so
	// their smoothed RTTs grow past the README autoscaler's 20 ms.
	sink := c.slowSink(t)
	streams := c.kubelet.workloads("shop", "api-")
	for _, w := range streams {
		w.proc.Do("stream %s", sink)
	}
	c.kubelet.wait(t, 3*time.Minute, "api scaled up on tcp_srtt_p99_seconds", func() error {
		return c.replicasAtLeast(ctx, "shop", "api", "api-latency", 3)
	})
	t.Logf("api scaled up:\n%s", c.kubectlQuiet("get", "hpa", "-n", "shop"))
	for _, w := range streams {
		w.proc.Do("streamstop")
	}

	c.checkCost(t, priced)
	c.checkCostPolicies(t)
}

func setUp(t *testing.T) *cluster {
	t.Helper()
	e := getEnv(t)
	layout, err := cgroupfs.DetectLayout()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{env: e, dir: t.TempDir()}
	newBridge(t)
	for i := 1; i <= replicas; i++ {
		c.hosts = append(c.hosts, newTestHost(t, i))
	}
	c.cp = startControlPlane(t, e.kubeBin, c.dir)
	c.kubelet = newKubelet(t, c.cp.Client, layout)
	for i, h := range c.hosts {
		c.kubelet.podIPs[fmt.Sprintf("%s/%s-aggregator-%d", namespace, release, i)] = h.IP
	}
	c.webhooks = newWebhooks(t, c.kubelet)

	var ips []string
	for _, h := range c.hosts {
		ips = append(ips, h.IP)
	}
	// The chart, installed as a user installs it: the real apiserver
	// validates and stores every object in it.
	root, _ := filepath.Abs("..")
	run(t, e.helm, "install", release, filepath.Join(root, "charts/penny"), "--namespace", namespace, "--create-namespace",
		"--kubeconfig", c.cp.Admin, "--set", fmt.Sprintf("aggregator.replicas=%d", replicas), "--set", "costPolicies.enabled=true",
		"-f", c.cp.writeFile(t, "pricing-values.yaml", []byte(pricingValues)),
		// The test hosts' addresses in the chart's certificate: the
		// replicas and their clients dial each other by address here, not
		// by the Services' names.
		"--set", "tls.extraIPAddresses={"+strings.Join(ips, ",")+"}")
	c.kubelet.wait(t, 60*time.Second, "the chart's pods running", func() error {
		return c.chartPodsRunning(t)
	})
	c.checkChartArgs(t)
	c.pki = c.newAPIPKI(t, nodeName, spotNodeName)
	c.startAggregators(t)
	c.startAgent(t)
	c.startWebhooks(t)
	c.kubelet.wait(t, 90*time.Second, "APIService v1beta2.custom.metrics.k8s.io available", func() error {
		out := c.kubectlQuiet("get", "apiservice", "v1beta2.custom.metrics.k8s.io",
			"-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
		if out != "True" {
			return fmt.Errorf("Available=%q; %s", out, c.kubectlQuiet("get", "apiservice", "v1beta2.custom.metrics.k8s.io", "-o", "yaml"))
		}
		return nil
	})
	return c
}

func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return c.cp.kubectl(t, c.kubeBin, args...)
}

// kubectlQuiet runs kubectl and returns its output, errors included.
func (c *cluster) kubectlQuiet(args ...string) string {
	out, _ := execOutput(filepath.Join(c.kubeBin, "kubectl"), append([]string{"--kubeconfig", c.cp.Admin}, args...)...)
	return strings.TrimSpace(out)
}

// chartPodsRunning checks that the StatefulSet made every replica's pod
// and the DaemonSet the agent's, and that the kubelet runs them.
func (c *cluster) chartPodsRunning(t *testing.T) error {
	pods, err := c.cp.Client.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err
	}
	running := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
	}
	if want := replicas + 1 + webhookReplicas; running < want {
		return fmt.Errorf("%d of %d pods running", running, want)
	}
	return nil
}

// slowSink starts a TCP server on a test host of its own, behind a link
// of 1 Mbit/s that queues up to 400 ms, and returns its address.
func (c *cluster) slowSink(t *testing.T) string {
	t.Helper()
	h := newTestHost(t, replicas+1)
	run(t, "tc", "qdisc", "add", "dev", h.Veth, "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms")
	p := cgtest.StartCommand(t, h.Command(os.Args[0], "-test.run=^$"))
	return p.Do("sink %s", h.IP)
}

// checkChartArgs runs the binary each of the chart's containers names
// (penny, or penny-agent for the agent) with the arguments the chart gives
// it, plus --help: a flag the binary does not know fails it.
func (c *cluster) checkChartArgs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	sts, err := c.cp.Client.AppsV1().StatefulSets(namespace).Get(ctx, release+"-aggregator", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := c.cp.Client.AppsV1().DaemonSets(namespace).Get(ctx, release+"-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := c.cp.Client.AppsV1().Deployments(namespace).Get(ctx, release+"-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctrs := append(append(sts.Spec.Template.Spec.Containers, ds.Spec.Template.Spec.Containers...), wh.Spec.Template.Spec.Containers...)
	// The binaries of the image, by the name a container's command gives.
	bins := map[string]string{"penny": c.penny, "penny-agent": c.pennyAgent}
	for _, ctr := range ctrs {
		if len(ctr.Command) != 1 || bins[ctr.Command[0]] == "" {
			t.Errorf("container %s: command %q, want one of the image's binaries, penny or penny-agent", ctr.Name, ctr.Command)
			continue
		}
		args := append(slices.Clone(ctr.Args), "--help")
		if out, err := execOutput(bins[ctr.Command[0]], args...); err != nil {
			t.Errorf("container %s: %s %s: %v\n%s", ctr.Name, ctr.Command[0], strings.Join(args, " "), err, out)
		}
	}
}

// token returns a token of a ServiceAccount of the chart, so the processes
// act with the permissions the chart grants.
func (c *cluster) token(t *testing.T, sa string) string {
	t.Helper()
	return strings.TrimSpace(c.kubectl(t, "create", "token", sa, "--namespace", namespace, "--duration", "2h"))
}

// startAggregators runs the replicas in their test hosts as the
// StatefulSet's pods, with the serving certificate the chart generated
// for the APIService and the aggregator ServiceAccount's token.
func (c *cluster) startAggregators(t *testing.T) {
	t.Helper()
	secret := c.servingSecret(t)
	certFile := c.cp.writeFile(t, "cm.crt", secret.Data[corev1.TLSCertKey])
	keyFile := c.cp.writeFile(t, "cm.key", secret.Data[corev1.TLSPrivateKeyKey])
	kc := kubeconfig(t, filepath.Join(c.dir, "aggregator.kubeconfig"), c.cp.URL, c.cp.CA.File, "", "",
		c.token(t, release+"-aggregator"))
	var peers []string
	for i, h := range c.hosts {
		peers = append(peers, fmt.Sprintf("%d=https://%s:7380", i+1, h.IP))
	}
	// The pricing file the chart renders from its values, as the
	// ConfigMap's volume would hold it.
	cm, err := c.cp.Client.CoreV1().ConfigMaps(namespace).Get(context.Background(), release+"-pricing", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pricingFile := c.cp.writeFile(t, "pricing.yaml", []byte(cm.Data["pricing.yaml"]))
	for i, h := range c.hosts {
		args := append([]string{"aggregator", "--pricing-file", pricingFile,
			"--id", fmt.Sprint(i + 1), "--data-dir", filepath.Join(c.dir, fmt.Sprintf("data-%d", i+1)),
			"--listen", h.IP + ":7379", "--peer-listen", h.IP + ":7380", "--initial-cluster", strings.Join(peers, ","),
			"--cluster-token", "e2e", "--custom-metrics", "--secure-port", "6443", "--bind-address", h.IP,
			"--tls-cert-file", certFile, "--tls-private-key-file", keyFile,
			"--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc, "--lister-kubeconfig", kc, "--cost-policies"},
			c.pki.aggregatorAccessArgs(kc)...)
		c.aggregatorArg = append(c.aggregatorArg, args)
		c.aggregators = append(c.aggregators, start(t, c.dir, fmt.Sprintf("aggregator-%d", i+1), h.Command(c.penny, args...)))
	}
	for i, h := range c.hosts {
		waitHTTP(t, c.aggregators[i], apiURL(h)+"/v1/health", c.pki.serverCA, c.pki.adminCert, c.pki.adminKey, 60*time.Second)
	}
}

// restartAggregator starts replica i again (after it was killed), with
// its data directory, and waits for it to serve.
func (c *cluster) restartAggregator(t *testing.T, i int) {
	t.Helper()
	h := c.hosts[i]
	c.aggregators[i] = start(t, c.dir, fmt.Sprintf("aggregator-%d-restarted", i+1), h.Command(c.penny, c.aggregatorArg[i]...))
	waitHTTP(t, c.aggregators[i], apiURL(h)+"/v1/health", c.pki.serverCA, c.pki.adminCert, c.pki.adminKey, 60*time.Second)
}

// servingSecret is the chart's TLS Secret for the custom metrics API (the
// chart makes another for the aggregators' own API).
func (c *cluster) servingSecret(t *testing.T) *corev1.Secret {
	t.Helper()
	s, err := c.cp.Client.CoreV1().Secrets(namespace).Get(context.Background(), release+"-custom-metrics-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's custom metrics serving Secret: %v", err)
	}
	if s.Type != corev1.SecretTypeTLS {
		t.Fatalf("secret %s is of type %s, want %s", s.Name, s.Type, corev1.SecretTypeTLS)
	}
	return s
}

// startAgent runs the agents on the host, as the DaemonSet's pods, with
// the agent ServiceAccount's token for the API server: one for each node of
// the harness. Both see every cgroup of the host; each attributes those of
// its node's pods, and the others are cgroups outside pods to it, as a
// node's system cgroups are (priced, not allocated from the node:
// docs/cost.md). To the aggregators, the first node's agent authenticates
// as the chart's DaemonSet pods do, with a token bound to its pod
// (agentTokenArgs); the spot node's with a client certificate of its node,
// the other identity agents may have.
func (c *cluster) startAgent(t *testing.T) {
	t.Helper()
	c.startNodeAgent(t, "agent")
	kc := filepath.Join(c.dir, "agent.kubeconfig")
	var urls []string
	for _, h := range c.hosts {
		urls = append(urls, apiURL(h))
	}
	start(t, c.dir, "agent-2", execCommand(c.pennyAgent, append([]string{"agent", "--aggregator", strings.Join(urls, ","),
		"--node-name", spotNodeName, "--kubeconfig", kc, "--interval", "1s"}, c.pki.agentArgs(spotNodeName)...)...))
}

// startNodeAgent (re)starts the first node's agent, as name, with extra
// arguments after the harness's.
func (c *cluster) startNodeAgent(t *testing.T, name string, extra ...string) {
	t.Helper()
	kc := kubeconfig(t, filepath.Join(c.dir, "agent.kubeconfig"), c.cp.URL, c.cp.CA.File, "", "",
		c.token(t, release+"-agent"))
	var urls []string
	for _, h := range c.hosts {
		urls = append(urls, apiURL(h))
	}
	if c.agent != nil {
		c.agent.stop()
	}
	args := append([]string{"agent", "--aggregator", strings.Join(urls, ","),
		"--node-name", nodeName, "--kubeconfig", kc, "--interval", "1s"}, c.agentTokenArgs(t, nodeName)...)
	c.agent = start(t, c.dir, name, execCommand(c.pennyAgent, append(args, extra...)...))
}

// checkRSS reads memory_rss_bytes of every pod of a Deployment through
// kube-apiserver with kubectl get --raw, and compares each with the real
// RSS of its process.
func (c *cluster) checkRSS(t *testing.T, ns, deploy string) error {
	out, err := execOutput(filepath.Join(c.kubeBin, "kubectl"), "--kubeconfig", c.cp.Admin, "get", "--raw",
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/memory_rss_bytes?labelSelector=app%3D"+deploy)
	if err != nil {
		return fmt.Errorf("kubectl get --raw: %v: %s", err, out)
	}
	var list cmv1beta2.MetricValueList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return fmt.Errorf("decode %q: %w", out, err)
	}
	ws := c.kubelet.workloads(ns, deploy+"-")
	if len(ws) == 0 {
		return fmt.Errorf("no pod of %s runs yet", deploy)
	}
	if len(list.Items) != len(ws) {
		return fmt.Errorf("%d values for %d pods: %s", len(list.Items), len(ws), out)
	}
	for _, w := range ws {
		want := float64(w.group.SumVmRSS())
		found := false
		for _, v := range list.Items {
			if ns+"/"+v.DescribedObject.Name == w.pod {
				found = true
				if got := float64(v.Value.Value()); math.Abs(got-want) > 0.1*want {
					return fmt.Errorf("%s: memory_rss_bytes %v, the process has %v", w.pod, got, want)
				}
				if v.Metric.Name != "memory_rss_bytes" || time.Since(v.Timestamp.Time) > 30*time.Second {
					return fmt.Errorf("%s: %+v", w.pod, v)
				}
			}
		}
		if !found {
			return fmt.Errorf("no value for %s: %s", w.pod, out)
		}
	}
	return nil
}

func (c *cluster) replicasAtLeast(ctx context.Context, ns, name, hpa string, n int32) error {
	return c.replicas(ctx, ns, name, hpa, func(r int32) bool { return r >= n }, fmt.Sprintf("at least %d", n))
}

func (c *cluster) replicasAtMost(ctx context.Context, ns, name, hpa string, n int32) error {
	return c.replicas(ctx, ns, name, hpa, func(r int32) bool { return r <= n }, fmt.Sprintf("at most %d", n))
}

// replicas checks the Deployment's scale as its HorizontalPodAutoscaler
// hpaName set it.
func (c *cluster) replicas(ctx context.Context, ns, name, hpaName string, ok func(int32) bool, want string) error {
	d, err := c.cp.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if d.Spec.Replicas != nil && ok(*d.Spec.Replicas) {
		return nil
	}
	hpa, err := c.cp.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, hpaName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	return fmt.Errorf("%s has %d replicas, want %s; its autoscaler: %s", name, *d.Spec.Replicas, want, hpaStatus(hpa))
}

func hpaStatus(h *autoscalingv2.HorizontalPodAutoscaler) string {
	var b strings.Builder
	fmt.Fprintf(&b, "current %d desired %d", h.Status.CurrentReplicas, h.Status.DesiredReplicas)
	for _, m := range h.Status.CurrentMetrics {
		if m.Pods != nil {
			fmt.Fprintf(&b, "; %s average %s", m.Pods.Metric.Name, m.Pods.Current.AverageValue.String())
		}
		if m.External != nil && m.External.Current.AverageValue != nil {
			fmt.Fprintf(&b, "; %s average %s", m.External.Metric.Name, m.External.Current.AverageValue.String())
		}
	}
	for _, cond := range h.Status.Conditions {
		fmt.Fprintf(&b, "; %s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message)
	}
	return b.String()
}
