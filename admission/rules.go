package admission

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// ErrBadRules means a rules file was refused; the error says which field
// and why.
var ErrBadRules = errors.New("admission: bad rules")

// Limits of a rules file, so that a rule set stays cheap to apply on every
// pod creation.
const (
	// MaxRulesBytes bounds the rules file.
	MaxRulesBytes = 64 << 10
	// MaxLabels bounds the labels one rules file stamps.
	MaxLabels = 32
	// MaxSources bounds the sources of one label.
	MaxSources = 8
)

// Rules says which labels to stamp on new pods and where each value comes
// from. In YAML (the rules ConfigMap's rules.yaml):
//
//	labels:
//	  - key: cost.tenant-id
//	    from:
//	      - namespaceLabel: cost.tenant-id
//	      - namespaceAnnotation: cost.tenant-id
//	  - key: cost.service-tier
//	    from:
//	      - namespaceLabel: cost.service-tier
//	      - value: standard
//	  - key: cost.owner
//	    from:
//	      - namespaceLabel: cost.owner
//	      - owner: name
//	  - key: cost.version
//	    from:
//	      - podLabel: app.kubernetes.io/version
//	      - imageTag: ""      # the first container's; or a container's name
//
// The sources of a label are tried in order; the first that gives a value
// wins. A label the pod already has is never changed.
type Rules struct {
	Labels []LabelRule `json:"labels"`
}

// LabelRule is one label to stamp.
type LabelRule struct {
	// Key is the label's key, e.g. cost.tenant-id.
	Key string `json:"key"`
	// From are the sources of its value, tried in order.
	From []Source `json:"from"`
}

// Source is where a label's value comes from: exactly one field is set.
type Source struct {
	// NamespaceLabel and NamespaceAnnotation name a label or an annotation
	// of the pod's namespace.
	NamespaceLabel      string `json:"namespaceLabel,omitempty"`
	NamespaceAnnotation string `json:"namespaceAnnotation,omitempty"`
	// PodLabel and PodAnnotation name a label or an annotation of the pod
	// itself (a workload's app.kubernetes.io/version, say).
	PodLabel      string `json:"podLabel,omitempty"`
	PodAnnotation string `json:"podAnnotation,omitempty"`
	// Owner is the pod's controller, named as the cost allocation names it
	// (a ReplicaSet of a Deployment is that Deployment): "name" gives its
	// name, "kind" its kind in lower case, "kind-name" both.
	Owner string `json:"owner,omitempty"`
	// ImageTag is the tag of a container's image (its digest's first 12
	// hex digits when it has no tag): "" for the first container, else the
	// container's name.
	ImageTag *string `json:"imageTag,omitempty"`
	// Value is a fixed value: the default when the sources before it gave
	// none.
	Value string `json:"value,omitempty"`
}

// The Owner forms.
const (
	OwnerName     = "name"
	OwnerKind     = "kind"
	OwnerKindName = "kind-name"
)

// DefaultRules are the rules without a rules file: the tenant, service
// tier and owner from the namespace's labels or annotations of the same
// key, and the owner from the pod's controller when the namespace names
// none.
func DefaultRules() *Rules {
	fromNamespace := func(key string) []Source {
		return []Source{{NamespaceLabel: key}, {NamespaceAnnotation: key}}
	}
	return &Rules{Labels: []LabelRule{
		{Key: "cost.tenant-id", From: fromNamespace("cost.tenant-id")},
		{Key: "cost.service-tier", From: fromNamespace("cost.service-tier")},
		{Key: "cost.owner", From: append(fromNamespace("cost.owner"), Source{Owner: OwnerName})},
	}}
}

// ParseRules parses and checks a rules file. Unknown fields, a label key
// or source key that Kubernetes would refuse, a fixed value that is not a
// valid label value, a source with no field or two, and the same key
// twice are errors that name the field. An empty file gives no rules (the
// webhook then stamps nothing).
func ParseRules(b []byte) (*Rules, error) {
	if len(b) > MaxRulesBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRules, len(b), MaxRulesBytes)
	}
	var r Rules
	if len(bytes.TrimSpace(b)) > 0 {
		if err := yaml.UnmarshalStrict(b, &r); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRules, err)
		}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the rules (see ParseRules).
func (r *Rules) Validate() error {
	if len(r.Labels) > MaxLabels {
		return fmt.Errorf("%w: labels: %d, at most %d", ErrBadRules, len(r.Labels), MaxLabels)
	}
	seen := map[string]bool{}
	for i, l := range r.Labels {
		field := fmt.Sprintf("labels[%d]", i)
		if err := qualifiedName(l.Key); err != nil {
			return fmt.Errorf("%w: %s.key: %w", ErrBadRules, field, err)
		}
		if seen[l.Key] {
			return fmt.Errorf("%w: %s.key: %q is stamped twice", ErrBadRules, field, l.Key)
		}
		seen[l.Key] = true
		if len(l.From) == 0 {
			return fmt.Errorf("%w: %s.from: no source for %q", ErrBadRules, field, l.Key)
		}
		if len(l.From) > MaxSources {
			return fmt.Errorf("%w: %s.from: %d sources, at most %d", ErrBadRules, field, len(l.From), MaxSources)
		}
		for j, s := range l.From {
			if err := s.validate(); err != nil {
				return fmt.Errorf("%w: %s.from[%d]: %w", ErrBadRules, field, j, err)
			}
		}
	}
	return nil
}

func (s *Source) validate() error {
	n := 0
	for _, set := range []bool{s.NamespaceLabel != "", s.NamespaceAnnotation != "", s.PodLabel != "", s.PodAnnotation != "",
		s.Owner != "", s.ImageTag != nil, s.Value != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%d of namespaceLabel, namespaceAnnotation, podLabel, podAnnotation, owner, imageTag, value set, want one", n)
	}
	switch {
	case s.NamespaceLabel != "":
		return named("namespaceLabel", qualifiedName(s.NamespaceLabel))
	case s.NamespaceAnnotation != "":
		return named("namespaceAnnotation", qualifiedName(s.NamespaceAnnotation))
	case s.PodLabel != "":
		return named("podLabel", qualifiedName(s.PodLabel))
	case s.PodAnnotation != "":
		return named("podAnnotation", qualifiedName(s.PodAnnotation))
	case s.Owner != "":
		switch s.Owner {
		case OwnerName, OwnerKind, OwnerKindName:
			return nil
		}
		return fmt.Errorf("owner: %q: want %s, %s or %s", s.Owner, OwnerName, OwnerKind, OwnerKindName)
	case s.ImageTag != nil:
		if *s.ImageTag != "" {
			return named("imageTag", joinErrs(validation.IsDNS1123Label(*s.ImageTag)))
		}
		return nil
	default:
		return named("value", joinErrs(validation.IsValidLabelValue(s.Value)))
	}
}

func named(field string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func qualifiedName(key string) error {
	if key == "" {
		return errors.New("empty")
	}
	if err := joinErrs(validation.IsQualifiedName(key)); err != nil {
		return fmt.Errorf("%q: %w", key, err)
	}
	return nil
}

func joinErrs(msgs []string) error {
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// NeedsNamespace reports whether a rule reads the pod's namespace.
func (r *Rules) NeedsNamespace() bool {
	for _, l := range r.Labels {
		for _, s := range l.From {
			if s.NamespaceLabel != "" || s.NamespaceAnnotation != "" {
				return true
			}
		}
	}
	return false
}
