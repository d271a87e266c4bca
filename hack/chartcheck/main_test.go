package main

import (
	"os"
	"strings"
	"testing"
)

// good is a small rendered chart that passes every check.
var good = strings.ReplaceAll(`---
# Source: penny/templates/sa.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: a
  namespace: ns
  labels: LABELS
---
# Source: penny/templates/ds.yaml
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: a
  namespace: ns
  labels: LABELS
spec:
  selector:
    matchLabels: {app.kubernetes.io/component: agent}
  template:
    metadata:
      labels: LABELS
    spec:
      serviceAccountName: a
      containers:
        - name: agent
          image: penny:dev
          ports: [{name: metrics, containerPort: 9464}]
          readinessProbe: {httpGet: {path: /healthz, port: metrics}}
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {memory: 256Mi}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL], add: [BPF, PERFMON, NET_ADMIN]}
          volumeMounts: [{name: cgroup, mountPath: /sys/fs/cgroup, readOnly: true}]
      volumes: [{name: cgroup, hostPath: {path: /sys/fs/cgroup}}]
---
# Source: penny/templates/svc.yaml
apiVersion: v1
kind: Service
metadata:
  name: a
  namespace: ns
  labels: LABELS
spec:
  clusterIP: None
  selector: {app.kubernetes.io/component: agent}
  ports: [{name: metrics, port: 9464, targetPort: metrics}]
---
# Source: penny/templates/rbac.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: a
  labels: LABELS
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects: [{kind: ServiceAccount, name: a, namespace: ns}]
---
# Source: penny/templates/pricing-configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  namespace: ns
  labels: LABELS
data:
  pricing.yaml: |
    apiVersion: penny.dev/v1
    kind: Pricing
    nodes: [{instanceType: m5.xlarge, hourlyPrice: 0.192}]
`, "LABELS", "{helm.sh/chart: penny-0.1.0, app.kubernetes.io/name: penny, app.kubernetes.io/instance: r, "+
	`app.kubernetes.io/version: "0.1.0", app.kubernetes.io/managed-by: Helm, app.kubernetes.io/part-of: penny, `+
	"app.kubernetes.io/component: agent}")

func run(t *testing.T, doc string) []string {
	t.Helper()
	objs, err := decodeAll(strings.NewReader(doc))
	if err != nil {
		return []string{err.Error()}
	}
	return check(objs, "ns")
}

func TestGood(t *testing.T) {
	if p := run(t, good); len(p) > 0 {
		t.Fatalf("problems in a good chart: %q", p)
	}
}

// extra is what the chart renders with TLS from cert-manager and a metrics
// ServiceAccount that no pod runs as.
var extra = strings.ReplaceAll(`---
# Source: penny/templates/aggregator-tls.yaml
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: a
  namespace: ns
  labels: LABELS
spec:
  secretName: a-tls
  dnsNames: [a.ns.svc]
  duration: 2160h
  renewBefore: 720h
  usages: [server auth, client auth]
  issuerRef: {name: ca, kind: ClusterIssuer, group: cert-manager.io}
---
# Source: penny/templates/reader-rbac.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: metrics
  namespace: ns
  labels: LABELS
---
# Source: penny/templates/reader-rbac.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: metrics
  labels: LABELS
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects: [{kind: ServiceAccount, name: metrics, namespace: ns}]
---
# Source: penny/templates/webhook-configuration.yaml
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: a
  labels: LABELS
  annotations: {cert-manager.io/inject-ca-from: ns/a}
webhooks:
  - name: cost-labels.penny.dev
    admissionReviewVersions: [v1]
    clientConfig: {service: {name: a, namespace: ns, path: /mutate-pods, port: 9464}}
    rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
    sideEffects: None
    failurePolicy: Ignore
    timeoutSeconds: 2
    namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, ns]}]}
`, "LABELS", "{helm.sh/chart: penny-0.1.0, app.kubernetes.io/name: penny, app.kubernetes.io/instance: r, "+
	`app.kubernetes.io/version: "0.1.0", app.kubernetes.io/managed-by: Helm, app.kubernetes.io/part-of: penny, `+
	"app.kubernetes.io/component: aggregator}")

func TestGoodExtra(t *testing.T) {
	if p := run(t, good+extra); len(p) > 0 {
		t.Fatalf("problems in a good chart: %q", p)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"  renewBefore: 720h", "  renewBefor: 720h", `unknown field "renewBefor"`},
		{"values: [kube-system, ns]", "values: [ns]", "must exclude kube-system and ns"},
		{"sideEffects: None", "sideEffects: Some", "sideEffects must be None"},
		{"timeoutSeconds: 2", "timeoutSeconds: 31", "timeoutSeconds of 1 to 30"},
		{"inject-ca-from: ns/a", "inject-ca-from: ns/b", `inject-ca-from "ns/b" names no rendered Certificate`},
		{"path: /mutate-pods, port: 9464", "path: /mutate-pods, port: 443", "service a has no port 443"},
	} {
		bad := strings.Replace(good+extra, tc.old, tc.new, 1)
		if p := run(t, bad); !strings.Contains(strings.Join(p, "\n"), tc.want) {
			t.Errorf("%s -> %s: want a problem with %q, got %q", tc.old, tc.new, tc.want, p)
		}
	}
}

func TestBad(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown field", "      serviceAccountName: a", "      serviceAcountName: a", `unknown field "serviceAcountName"`},
		{"duplicate key", "kind: Service\nmetadata:\n  name: a\n", "kind: Service\nmetadata:\n  name: a\n  name: b\n", `key "name" already set`},
		{"bad quantity", "cpu: 50m", "cpu: 50q", "quantities must match"},
		{"unknown kind", "kind: ServiceAccount", "kind: ServiceAcount", "unknown kind v1/ServiceAcount"},
		{"label missing", "app.kubernetes.io/part-of: penny, ", "", "label app.kubernetes.io/part-of missing"},
		{"no memory limit", "limits: {memory: 256Mi}", "limits: {cpu: 1}", "resources.limits must set memory"},
		{"no drop ALL", "drop: [ALL]", "drop: [NET_RAW]", "capabilities.drop must contain ALL"},
		{"escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation must be false"},
		{"writable root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"},
		{"SYS_ADMIN", "add: [BPF,", "add: [SYS_ADMIN,", `capability "SYS_ADMIN"`},
		{"mount without volume", "volumes: [{name: cgroup", "volumes: [{name: cgroups", `volume mount "cgroup" names no volume`},
		{"probe port", "port: metrics}}", "port: metric}}", `readiness probe port "metric"`},
		{"service selects nothing", "selector: {app.kubernetes.io/component: agent}\n  ports", "selector: {app.kubernetes.io/component: agg}\n  ports", "selects no rendered pods"},
		{"service target port", "targetPort: metrics", "targetPort: http", "target port http is not a port"},
		{"unknown role", "name: system:auth-delegator", "name: nope", "roleRef ClusterRole/nope"},
		{"subject not a pod's", "subjects: [{kind: ServiceAccount, name: a,", "subjects: [{kind: ServiceAccount, name: b,", "subject ServiceAccount ns/b"},
		{"bad pricing file", "hourlyPrice: 0.192", "hourlyPrice: -0.192", "pricing.yaml: nodes[0].hourlyPrice: negative price -0.192"},
		{"cluster-scoped with namespace", "kind: ClusterRoleBinding\nmetadata:\n  name: a\n", "kind: ClusterRoleBinding\nmetadata:\n  name: a\n  namespace: ns\n", "cluster-scoped but has metadata.namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(good, tc.old, tc.new, 1)
			if doc == good {
				t.Fatalf("%q is not in the good chart", tc.old)
			}
			p := run(t, doc)
			if !strings.Contains(strings.Join(p, "\n"), tc.want) {
				t.Fatalf("want a problem with %q, got %q", tc.want, p)
			}
		})
	}
}

func TestDocs(t *testing.T) {
	dir := t.TempDir()
	values := dir + "/values.yaml"
	readme := dir + "/README.md"
	write := func(name, s string) {
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(values, `# The chart's values.
# -- Documented.
a: 1
b:
  # -- Documented, as a whole.
  c: {d: 1}
  e: 2
# A group comment is not documentation.
f: ""
`)
	write(readme, "| `a` | `1` | ... |\n")
	problems, n, err := checkDocs(values, readme)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(problems, "\n")
	for _, want := range []string{"value b.c has no row", `value b.e has no "# --" comment`, `value f has no "# --" comment`} {
		if !strings.Contains(got, want) {
			t.Errorf("want a problem with %q, got %q", want, problems)
		}
	}
	if len(problems) != 3 || n != 2 {
		t.Errorf("got %d problems and %d documented values, want 3 and 2: %q", len(problems), n, problems)
	}
}
