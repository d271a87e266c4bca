package admission

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestParseRules(t *testing.T) {
	tests := []struct {
		name, file string
		err        string // a part of the error; "" for none
		labels     int
	}{
		{name: "empty file: no rules", file: "", labels: 0},
		{name: "the documented example", file: `
labels:
  - key: cost.tenant-id
    from:
      - namespaceLabel: cost.tenant-id
      - namespaceAnnotation: cost.tenant-id
  - key: cost.service-tier
    from:
      - namespaceLabel: cost.service-tier
      - value: standard
  - key: cost.owner
    from:
      - namespaceLabel: cost.owner
      - owner: name
  - key: cost.version
    from:
      - podLabel: app.kubernetes.io/version
      - imageTag: ""
`, labels: 4},
		{name: "unknown field", file: "labels:\n- key: a\n  from: [{namespaceLabels: a}]\n", err: `unknown field "namespaceLabels"`},
		{name: "bad key", file: "labels:\n- key: 'Bad Key'\n  from: [{value: x}]\n", err: `labels[0].key: "Bad Key"`},
		{name: "no key", file: "labels:\n- from: [{value: x}]\n", err: "labels[0].key: empty"},
		{name: "key twice", file: "labels:\n- key: a\n  from: [{value: x}]\n- key: a\n  from: [{value: y}]\n",
			err: `labels[1].key: "a" is stamped twice`},
		{name: "no source", file: "labels:\n- key: a\n", err: `labels[0].from: no source for "a"`},
		{name: "two fields in a source", file: "labels:\n- key: a\n  from: [{value: x, podLabel: b}]\n",
			err: "labels[0].from[0]: 2 of namespaceLabel"},
		{name: "empty source", file: "labels:\n- key: a\n  from: [{}]\n", err: "labels[0].from[0]: 0 of"},
		{name: "bad value", file: "labels:\n- key: a\n  from: [{podLabel: b}, {value: 'not a value'}]\n",
			err: "labels[0].from[1]: value:"},
		{name: "bad owner form", file: "labels:\n- key: a\n  from: [{owner: uid}]\n", err: `labels[0].from[0]: owner: "uid"`},
		{name: "bad namespace label key", file: "labels:\n- key: a\n  from: [{namespaceLabel: '-x'}]\n",
			err: `labels[0].from[0]: namespaceLabel: "-x"`},
		{name: "bad container name", file: "labels:\n- key: a\n  from: [{imageTag: 'Main_1'}]\n", err: "labels[0].from[0]: imageTag:"},
		{name: "not YAML", file: "labels: [", err: "bad rules"},
		{name: "too many labels", file: "labels:\n" + strings.Repeat("- key: a\n  from: [{value: x}]\n", MaxLabels+1),
			err: "labels: 33, at most 32"},
		{name: "too many sources", file: "labels:\n- key: a\n  from:\n" + strings.Repeat("  - value: x\n", MaxSources+1),
			err: "labels[0].from: 9 sources"},
		{name: "too large", file: "# " + strings.Repeat("x", MaxRulesBytes), err: "more than 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRules([]byte(tt.file))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Labels) != tt.labels {
					t.Fatalf("%d labels, want %d", len(r.Labels), tt.labels)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBadRules) {
				t.Fatalf("error %v, want one with %q that is ErrBadRules", err, tt.err)
			}
		})
	}
}

// TestChartRulesAreTheDefaults: the chart's rules ConfigMap, as its
// values render it, says what DefaultRules says, so a pod gets the same
// labels with or without the file.
func TestChartRulesAreTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../charts/penny/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Webhook struct {
			Rules Rules `json:"rules"`
		} `json:"webhook"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&values.Webhook.Rules, DefaultRules()) {
		t.Errorf("the chart's webhook.rules\n%+v\nare not DefaultRules\n%+v", values.Webhook.Rules, DefaultRules())
	}
}

func FuzzParseRules(f *testing.F) {
	for _, s := range []string{"", "labels: []", "labels:\n- key: a\n  from: [{value: x}]\n",
		"labels:\n- key: a\n  from: [{imageTag: ''}, {owner: kind-name}]\n", "labels: ["} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRules(b)
		if err != nil {
			if r != nil || !errors.Is(err, ErrBadRules) {
				t.Fatalf("ParseRules: %v and %v", r, err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("parsed rules do not validate: %v", err)
		}
		// What the rules stamp on any pod is a valid label value.
		for _, pod := range []*corev1.Pod{replicaSetPod("api", nil), barePod(nil)} {
			_, stamps := Patch(r, pod, namespace(map[string]string{"a": "b c"}, nil))
			for _, s := range stamps {
				if Sanitize(s.Value) != s.Value || s.Value == "" {
					t.Fatalf("stamp %+v is not a label value", s)
				}
			}
		}
	})
}
