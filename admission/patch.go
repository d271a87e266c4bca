package admission

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pennyhq/penny/aggregator/cost"
)

// Op is one operation of a JSON patch (RFC 6902); the webhook only adds.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Stamp is one label Patch stamps: its key, its value and the source it
// came from, for the log and the metrics.
type Stamp struct {
	Key, Value string
	Source     string
}

// Patch computes the labels the rules stamp on pod, which runs in
// namespace ns (nil when the rules need no namespace or it is unknown:
// then namespace sources give nothing), and the JSON patch that adds
// them. A label the pod already has is kept; a pod with every label gets
// no patch. Values are made valid label values (Sanitize); a source whose
// value sanitizes to nothing gives none, and the next source is tried.
func Patch(r *Rules, pod *corev1.Pod, ns *corev1.Namespace) ([]Op, []Stamp) {
	var stamps []Stamp
	for _, l := range r.Labels {
		if _, ok := pod.Labels[l.Key]; ok {
			continue
		}
		for _, s := range l.From {
			if v := Sanitize(s.value(pod, ns)); v != "" {
				stamps = append(stamps, Stamp{Key: l.Key, Value: v, Source: s.kind()})
				break
			}
		}
	}
	if len(stamps) == 0 {
		return nil, nil
	}
	if len(pod.Labels) == 0 { // an empty map is no "labels" in the pod's JSON
		m := make(map[string]string, len(stamps))
		for _, s := range stamps {
			m[s.Key] = s.Value
		}
		return []Op{{Op: "add", Path: "/metadata/labels", Value: m}}, stamps
	}
	ops := make([]Op, 0, len(stamps))
	for _, s := range stamps {
		ops = append(ops, Op{Op: "add", Path: "/metadata/labels/" + escapePointer(s.Key), Value: s.Value})
	}
	return ops, stamps
}

// value is what the source gives for pod in ns, before Sanitize.
func (s *Source) value(pod *corev1.Pod, ns *corev1.Namespace) string {
	switch {
	case s.NamespaceLabel != "":
		if ns != nil {
			return ns.Labels[s.NamespaceLabel]
		}
	case s.NamespaceAnnotation != "":
		if ns != nil {
			return ns.Annotations[s.NamespaceAnnotation]
		}
	case s.PodLabel != "":
		return pod.Labels[s.PodLabel]
	case s.PodAnnotation != "":
		return pod.Annotations[s.PodAnnotation]
	case s.Owner != "":
		kind, name := owner(pod)
		switch {
		case name == "":
			return ""
		case s.Owner == OwnerKind:
			return kind
		case s.Owner == OwnerKindName:
			return kind + "-" + name
		}
		return name
	case s.ImageTag != nil:
		for _, c := range pod.Spec.Containers {
			if *s.ImageTag == "" || c.Name == *s.ImageTag {
				return ImageTag(c.Image)
			}
		}
	default:
		return s.Value
	}
	return ""
}

// kind names the source for the log and the metrics.
func (s *Source) kind() string {
	switch {
	case s.NamespaceLabel != "":
		return "namespaceLabel"
	case s.NamespaceAnnotation != "":
		return "namespaceAnnotation"
	case s.PodLabel != "":
		return "podLabel"
	case s.PodAnnotation != "":
		return "podAnnotation"
	case s.Owner != "":
		return "owner"
	case s.ImageTag != nil:
		return "imageTag"
	}
	return "value"
}

// owner is the pod's controller as cost allocation names it.
func owner(pod *corev1.Pod) (kind, name string) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return "", ""
	}
	return cost.Controller(ref.Kind, ref.Name, pod.Labels)
}

// ImageTag is the tag of an image reference (registry:5000/app:v1.2 gives
// v1.2), else the first 12 hex digits of its digest, else "latest", which
// is what a reference without either runs.
func ImageTag(image string) string {
	ref, digest, hasDigest := strings.Cut(image, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[i+1:]
	}
	if hasDigest {
		_, hex, _ := strings.Cut(digest, ":")
		return hex[:min(12, len(hex))]
	}
	return "latest"
}

// Sanitize makes v a valid label value: at most 63 characters of
// [A-Za-z0-9_.-] that begin and end with a letter or digit. Other
// characters become '-'; what is left after trimming may be "" (no
// value).
func Sanitize(v string) string {
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v
	}
	b := []byte(strings.TrimSpace(v))
	for i, c := range b {
		if !alnum(c) && c != '-' && c != '_' && c != '.' {
			b[i] = '-'
		}
	}
	b = b[:min(len(b), validation.LabelValueMaxLength)]
	s := strings.TrimFunc(string(b), func(r rune) bool { return r > 0x7f || !alnum(byte(r)) })
	return s
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// escapePointer escapes a label key for a JSON pointer (RFC 6901):
// cost.penny.dev/tenant becomes cost.penny.dev~1tenant.
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
