package admission

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func namespace(labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: labels, Annotations: annotations}}
}

// replicaSetPod is a pod of Deployment name, as its ReplicaSet makes it.
func replicaSetPod(name string, labels map[string]string) *corev1.Pod {
	l := map[string]string{"app": name, "pod-template-hash": "5d8f6b"}
	maps.Copy(l, labels)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-5d8f6b-", Namespace: "shop", Labels: l,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name + "-5d8f6b",
				Controller: new(true)}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "main", Image: "registry.example:5000/shop/" + name + ":v1.4.2"},
			{Name: "proxy", Image: "envoyproxy/envoy@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		}},
	}
}

func barePod(labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "debug", Namespace: "shop", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "sh", Image: "busybox"}}}}
}

// apply applies the patch to pod as kube-apiserver does (the same JSON
// patch library) and returns the pod's labels after it.
func apply(t *testing.T, pod *corev1.Pod, ops []Op) map[string]string {
	t.Helper()
	if len(ops) == 0 {
		return pod.Labels
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(pb)
	if err != nil {
		t.Fatalf("decode patch %s: %v", pb, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", pb, err)
	}
	var patched corev1.Pod
	if err := json.Unmarshal(out, &patched); err != nil {
		t.Fatal(err)
	}
	return patched.Labels
}

func TestPatch(t *testing.T) {
	tenantNS := namespace(map[string]string{"cost.tenant-id": "acme", "cost.service-tier": "gold"},
		map[string]string{"cost.owner": "team-payments"})
	version := ""
	withVersion := &Rules{Labels: append(DefaultRules().Labels,
		LabelRule{Key: "cost.version", From: []Source{{PodLabel: "app.kubernetes.io/version"}, {ImageTag: &version}}})}
	proxy := "proxy"
	tests := []struct {
		name  string
		rules *Rules
		pod   *corev1.Pod
		ns    *corev1.Namespace
		want  map[string]string // the pod's labels after the patch
	}{
		{
			name: "labels absent: all three from the namespace", rules: DefaultRules(),
			pod: replicaSetPod("api", nil), ns: tenantNS,
			want: map[string]string{"app": "api", "pod-template-hash": "5d8f6b",
				"cost.tenant-id": "acme", "cost.service-tier": "gold", "cost.owner": "team-payments"},
		},
		{
			name: "a label the pod has is kept", rules: DefaultRules(),
			pod: replicaSetPod("api", map[string]string{"cost.tenant-id": "own-tenant"}), ns: tenantNS,
			want: map[string]string{"app": "api", "pod-template-hash": "5d8f6b",
				"cost.tenant-id": "own-tenant", "cost.service-tier": "gold", "cost.owner": "team-payments"},
		},
		{
			name: "every label present: no patch", rules: DefaultRules(),
			pod: barePod(map[string]string{"cost.tenant-id": "a", "cost.service-tier": "b", "cost.owner": "c"}), ns: tenantNS,
			want: map[string]string{"cost.tenant-id": "a", "cost.service-tier": "b", "cost.owner": "c"},
		},
		{
			name: "namespace without labels: the owner from the controller", rules: DefaultRules(),
			pod: replicaSetPod("checkout", nil), ns: namespace(nil, nil),
			want: map[string]string{"app": "checkout", "pod-template-hash": "5d8f6b", "cost.owner": "checkout"},
		},
		{
			name: "pod without labels or owner in a bare namespace: nothing", rules: DefaultRules(),
			pod: barePod(nil), ns: namespace(nil, nil), want: nil,
		},
		{
			name: "pod without labels: the labels map is added", rules: DefaultRules(),
			pod: barePod(nil), ns: tenantNS,
			want: map[string]string{"cost.tenant-id": "acme", "cost.service-tier": "gold", "cost.owner": "team-payments"},
		},
		{
			name: "rules that name a missing source fall through to the next, then to the default",
			rules: &Rules{Labels: []LabelRule{
				{Key: "cost.tenant-id", From: []Source{{NamespaceLabel: "no-such-label"}, {NamespaceAnnotation: "nor-this"}, {Value: "shared"}}},
				{Key: "cost.service-tier", From: []Source{{PodLabel: "tier"}}},
				{Key: "team", From: []Source{{PodAnnotation: "team"}, {Owner: OwnerKindName}}},
			}},
			pod: replicaSetPod("api", nil), ns: tenantNS,
			want: map[string]string{"app": "api", "pod-template-hash": "5d8f6b", "cost.tenant-id": "shared", "team": "deployment-api"},
		},
		{
			name:  "namespace unknown: namespace sources give nothing",
			rules: &Rules{Labels: []LabelRule{{Key: "cost.tenant-id", From: []Source{{NamespaceLabel: "cost.tenant-id"}, {Value: "none"}}}}},
			pod:   barePod(nil), ns: nil,
			want: map[string]string{"cost.tenant-id": "none"},
		},
		{
			name: "the version from a pod label, else the image tag", rules: withVersion,
			pod: replicaSetPod("api", map[string]string{"app.kubernetes.io/version": "2.0.1"}), ns: namespace(nil, nil),
			want: map[string]string{"app": "api", "pod-template-hash": "5d8f6b", "app.kubernetes.io/version": "2.0.1",
				"cost.owner": "api", "cost.version": "2.0.1"},
		},
		{
			name: "the version from the first container's image tag", rules: withVersion,
			pod: replicaSetPod("api", nil), ns: namespace(nil, nil),
			want: map[string]string{"app": "api", "pod-template-hash": "5d8f6b", "cost.owner": "api", "cost.version": "v1.4.2"},
		},
		{
			name:  "a named container's digest when it has no tag",
			rules: &Rules{Labels: []LabelRule{{Key: "proxy-version", From: []Source{{ImageTag: &proxy}}}}},
			pod:   replicaSetPod("api", nil), ns: nil,
			want: map[string]string{"app": "api", "pod-template-hash": "5d8f6b", "proxy-version": "0123456789ab"},
		},
		{
			name: "values that are not label values are made so; one that sanitizes to nothing gives none",
			rules: &Rules{Labels: []LabelRule{
				{Key: "cost.owner", From: []Source{{NamespaceAnnotation: "cost.owner"}}},
				{Key: "cost.tenant-id", From: []Source{{NamespaceAnnotation: "junk"}, {Value: "fallback"}}},
			}},
			pod:  barePod(map[string]string{}),
			ns:   namespace(nil, map[string]string{"cost.owner": " Team Payments <pay@example.com> ", "junk": "!!!"}),
			want: map[string]string{"cost.owner": "Team-Payments--pay-example.com", "cost.tenant-id": "fallback"},
		},
		{
			name:  "keys with a slash are escaped in the patch path",
			rules: &Rules{Labels: []LabelRule{{Key: "cost.penny.dev/tenant", From: []Source{{Value: "acme"}}}}},
			pod:   barePod(map[string]string{"app": "x"}), ns: nil,
			want: map[string]string{"app": "x", "cost.penny.dev/tenant": "acme"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, stamps := Patch(tt.rules, tt.pod, tt.ns)
			got := apply(t, tt.pod, ops)
			if !maps.Equal(got, tt.want) {
				t.Fatalf("labels after the patch %+v:\n got %v\nwant %v", ops, got, tt.want)
			}
			if len(stamps) != len(tt.want)-len(tt.pod.Labels) {
				t.Errorf("%d stamps %+v for %d new labels", len(stamps), stamps, len(tt.want)-len(tt.pod.Labels))
			}
			// Reinvoked on the patched pod: nothing more to do.
			again := tt.pod.DeepCopy()
			again.Labels = got
			if ops, _ := Patch(tt.rules, again, tt.ns); len(ops) != 0 {
				t.Errorf("second invocation patches again: %+v", ops)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"acme", "acme"},
		{"Team Payments", "Team-Payments"},
		{"-x-", "x"},
		{"a/b:c", "a-b-c"},
		{"ünïcode", "n--code"},
		{"___", ""},
		{"", ""},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
		{strings.Repeat("a", 62) + "-b", strings.Repeat("a", 62)},
	}
	for _, tt := range tests {
		got := Sanitize(tt.in)
		if got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("Sanitize(%q) = %q, not a label value: %v", tt.in, got, errs)
		}
	}
}

func TestImageTag(t *testing.T) {
	tests := []struct{ image, want string }{
		{"nginx", "latest"},
		{"nginx:1.27", "1.27"},
		{"registry.example:5000/team/app", "latest"},
		{"registry.example:5000/team/app:v2", "v2"},
		{"app@sha256:abcdef0123456789abcdef", "abcdef012345"},
		{"app:v3@sha256:abcdef0123456789abcdef", "v3"},
	}
	for _, tt := range tests {
		if got := ImageTag(tt.image); got != tt.want {
			t.Errorf("ImageTag(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"acme", "Team Payments", "", "-", strings.Repeat("x", 80), "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Sanitize(s)
		if got != "" && len(validation.IsValidLabelValue(got)) > 0 {
			t.Fatalf("Sanitize(%q) = %q: not a label value", s, got)
		}
	})
}
