package cost

import (
	"maps"
	"strings"
)

// Names OpenCost gives special allocations.
const (
	// IdleSuffix names idle allocations: "__idle__", or
	// "<cluster>/<node>/__idle__" with splitIdle.
	IdleSuffix = "__idle__"
	// UnallocatedSuffix stands for a missing label, controller or
	// controller kind in an aggregation key.
	UnallocatedSuffix = "__unallocated__"
)

type propKind uint8

const (
	propCluster propKind = iota + 1
	propNode
	propNamespace
	propControllerKind
	propController
	propPod
	propContainer
	propLabel
	propTenant
	propDeployment
	propStatefulSet
	propDaemonSet
	propJob
)

var propNames = map[string]propKind{
	"cluster":        propCluster,
	"node":           propNode,
	"namespace":      propNamespace,
	"controllerkind": propControllerKind,
	"controller":     propController,
	"pod":            propPod,
	"container":      propContainer,
	"tenant":         propTenant,
	"deployment":     propDeployment,
	"statefulset":    propStatefulSet,
	"daemonset":      propDaemonSet,
	"job":            propJob,
}

// Property is one thing allocations are aggregated by: cluster, node,
// namespace, controllerKind, controller, pod, container, label:KEY, tenant,
// or one controller kind (deployment, statefulset, daemonset, job: the
// controller's name for pods of that kind, __unallocated__ for others).
type Property struct {
	kind propKind
	// Label is the key of a label:KEY property.
	Label string
}

var kindNames = [...]string{
	propCluster: "cluster", propNode: "node", propNamespace: "namespace", propControllerKind: "controllerKind",
	propController: "controller", propPod: "pod", propContainer: "container", propLabel: "label", propTenant: "tenant",
	propDeployment: "deployment", propStatefulSet: "statefulset", propDaemonSet: "daemonset", propJob: "job",
}

// String is the property as the aggregate parameter spells it.
func (p Property) String() string {
	if p.kind == propLabel {
		return "label:" + p.Label
	}
	if int(p.kind) < len(kindNames) && p.kind > 0 {
		return kindNames[p.kind]
	}
	return "?"
}

// defaultAggregate is OpenCost's aggregation when none is asked for: one
// allocation per container.
var defaultAggregate = []Property{{kind: propCluster}, {kind: propNode}, {kind: propNamespace}, {kind: propPod}, {kind: propContainer}}

// ParseAggregate parses the aggregate parameter: comma-separated
// properties (names are case-insensitive, label keys are not). "" is the
// default, per container (nil); "all" aggregates everything into one
// allocation (an empty slice).
func ParseAggregate(s string) ([]Property, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if strings.EqualFold(strings.TrimSpace(s), "all") {
		return []Property{}, nil
	}
	var ps []Property
	seen := map[Property]bool{}
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		lower := strings.ToLower(tok)
		var p Property
		switch k, ok := propNames[lower]; {
		case ok:
			p.kind = k
		case strings.HasPrefix(lower, "label:"):
			p = Property{kind: propLabel, Label: strings.TrimSpace(tok[len("label:"):])}
			if p.Label == "" {
				return nil, badParam("aggregate", s, "label: needs a key, as in label:app")
			}
		case strings.HasPrefix(lower, "annotation:"), lower == "service", lower == "providerid",
			lower == "department", lower == "environment", lower == "owner", lower == "product", lower == "team":
			return nil, badParam("aggregate", s, "%q is not supported by Penny (no annotations, services or label aliases)", tok)
		default:
			return nil, badParam("aggregate", s, "unknown property %q: want cluster, node, namespace, controllerKind, "+
				"controller, pod, container, label:KEY, tenant, deployment, statefulset, daemonset, job or all", tok)
		}
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// Properties describe what an allocation covers, with OpenCost's JSON
// names. An aggregate keeps the fields all its members share; labels only
// for a single member, or with includeAggregatedMetadata.
type Properties struct {
	Cluster        string            `json:"cluster,omitempty"`
	Node           string            `json:"node,omitempty"`
	Container      string            `json:"container,omitempty"`
	Controller     string            `json:"controller,omitempty"`
	ControllerKind string            `json:"controllerKind,omitempty"`
	Namespace      string            `json:"namespace,omitempty"`
	Pod            string            `json:"pod,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
}

// intersect keeps the fields p shares with o; labels only when meta (and
// then the labels both have), as OpenCost's Properties.Intersection.
// It never writes to a labels map it did not make.
func (p *Properties) intersect(o *Properties, meta bool) {
	if p.Cluster != o.Cluster {
		p.Cluster = ""
	}
	if p.Node != o.Node {
		p.Node = ""
	}
	if p.Container != o.Container {
		p.Container = ""
	}
	if p.Controller != o.Controller {
		p.Controller = ""
	}
	if p.ControllerKind != o.ControllerKind {
		p.ControllerKind = ""
	}
	if p.Namespace != o.Namespace {
		p.Namespace = ""
	}
	if p.Pod != o.Pod {
		p.Pod = ""
	}
	if !meta || len(p.Labels) == 0 {
		p.Labels = nil
		return
	}
	if maps.Equal(p.Labels, o.Labels) {
		return
	}
	common := map[string]string{}
	for k, v := range p.Labels {
		if w, ok := o.Labels[k]; ok && w == v {
			common[k] = v
		}
	}
	if len(common) == 0 {
		common = nil
	}
	p.Labels = common
}

// keyValue is the part of an aggregation key property p gives a container.
func (p Property) keyValue(c *Properties, tenant string) string {
	switch p.kind {
	case propCluster:
		return c.Cluster
	case propNode:
		return c.Node
	case propNamespace:
		return orUnallocated(c.Namespace)
	case propPod:
		return orUnallocated(c.Pod)
	case propContainer:
		return c.Container
	case propTenant:
		return orUnallocated(tenant)
	case propControllerKind:
		return orUnallocated(c.ControllerKind)
	case propController:
		if c.Controller == "" {
			return UnallocatedSuffix
		}
		if c.ControllerKind != "" {
			return c.ControllerKind + ":" + c.Controller
		}
		return c.Controller
	case propDeployment, propStatefulSet, propDaemonSet, propJob:
		if c.Controller == "" || c.ControllerKind != p.String() {
			return UnallocatedSuffix
		}
		return c.Controller
	case propLabel:
		v, ok := labelValue(c.Labels, p.Label)
		if !ok {
			return UnallocatedSuffix
		}
		return v
	}
	return ""
}

func orUnallocated(s string) string {
	if s == "" {
		return UnallocatedSuffix
	}
	return s
}

// aggregationKey joins the values of the properties with "/", as OpenCost
// names aggregated allocations.
func aggregationKey(ps []Property, c *Properties, tenant string) string {
	switch len(ps) {
	case 0:
		return ""
	case 1:
		return ps[0].keyValue(c, tenant)
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p.keyValue(c, tenant))
	}
	return b.String()
}

// labelValue looks a label up by its Kubernetes key or, for clients written
// for OpenCost (whose label keys come from Prometheus), by the key with
// every character other than a letter, digit or _ replaced by _
// ("app_kubernetes_io_name" finds "app.kubernetes.io/name").
func labelValue(labels map[string]string, key string) (string, bool) {
	if v, ok := labels[key]; ok {
		return v, true
	}
	for k, v := range labels {
		if promEqual(k, key) {
			return v, true
		}
	}
	return "", false
}

func promEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if promChar(a[i]) != promChar(b[i]) {
			return false
		}
	}
	return true
}

func promChar(c byte) byte {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
		return c
	}
	return '_'
}
