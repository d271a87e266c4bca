package podmeta

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid means a metadata map names a pod but is malformed.
var ErrInvalid = errors.New("podmeta: invalid")

// Keys of the series metadata. A label is KeyLabelPrefix + its key.
const (
	KeyPodUID          = "k8s.pod.uid"
	KeyNamespace       = "k8s.namespace"
	KeyPod             = "k8s.pod"
	KeyContainer       = "k8s.container"
	KeyContainerID     = "k8s.container.id"
	KeyQOSClass        = "k8s.qos"
	KeyOwnerKind       = "k8s.owner.kind"
	KeyOwnerName       = "k8s.owner.name"
	KeyRequestCPU      = "k8s.request.cpu.millis"
	KeyRequestMemory   = "k8s.request.memory.bytes"
	KeyLimitCPU        = "k8s.limit.cpu.millis"
	KeyLimitMemory     = "k8s.limit.memory.bytes"
	KeyLabelsTruncated = "k8s.labels.truncated"
	KeyLabelPrefix     = "k8s.label/"
)

// FixedKeys is the number of keys other than labels that Encode may write;
// a metadata map holds at most FixedKeys plus MaxLabels entries.
const FixedKeys = 13

// MaxLabels bounds the pod labels Encode writes, so that the map fits the
// wire format's default of 128 entries; the rest are dropped and
// KeyLabelsTruncated says how many.
const MaxLabels = 128 - FixedKeys

// Pod is what a container's series says of its pod.
type Pod struct {
	UID       string            `json:"uid"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	QOSClass  string            `json:"qos_class,omitempty"`
	OwnerKind string            `json:"owner_kind,omitempty"`
	OwnerName string            `json:"owner_name,omitempty"`
	// LabelsTruncated counts labels left out to fit the metadata limit.
	LabelsTruncated int `json:"labels_truncated,omitempty"`
}

// Container is one container of a pod. Name is empty for the pod's sandbox
// (pause) container and for a container the pod's status does not list
// yet. Requests and limits are 0 when unset.
type Container struct {
	Name             string `json:"name"`
	ID               string `json:"id,omitempty"`
	RequestCPUMillis int64  `json:"request_cpu_millis,omitempty"`
	RequestMemory    int64  `json:"request_memory_bytes,omitempty"`
	LimitCPUMillis   int64  `json:"limit_cpu_millis,omitempty"`
	LimitMemory      int64  `json:"limit_memory_bytes,omitempty"`
}

// Encode returns the metadata of container c of pod p. Labels beyond
// MaxLabels are dropped, the largest keys first, and counted.
func Encode(p *Pod, c *Container) map[string]string {
	m := make(map[string]string, FixedKeys+min(len(p.Labels), MaxLabels))
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	setInt := func(k string, v int64) {
		if v > 0 {
			m[k] = strconv.FormatInt(v, 10)
		}
	}
	set(KeyPodUID, p.UID)
	set(KeyNamespace, p.Namespace)
	set(KeyPod, p.Name)
	set(KeyQOSClass, p.QOSClass)
	set(KeyOwnerKind, p.OwnerKind)
	set(KeyOwnerName, p.OwnerName)
	set(KeyContainer, c.Name)
	set(KeyContainerID, c.ID)
	setInt(KeyRequestCPU, c.RequestCPUMillis)
	setInt(KeyRequestMemory, c.RequestMemory)
	setInt(KeyLimitCPU, c.LimitCPUMillis)
	setInt(KeyLimitMemory, c.LimitMemory)
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	if len(keys) > MaxLabels {
		// Keep a deterministic subset: the smallest keys.
		slices.Sort(keys)
		m[KeyLabelsTruncated] = strconv.Itoa(len(keys) - MaxLabels + p.LabelsTruncated)
		keys = keys[:MaxLabels]
	} else if p.LabelsTruncated > 0 {
		m[KeyLabelsTruncated] = strconv.Itoa(p.LabelsTruncated)
	}
	for _, k := range keys {
		m[KeyLabelPrefix+k] = p.Labels[k]
	}
	return m
}

// Decode reads the pod and container of a series' metadata. ok is false
// when the metadata names no pod (a cgroup outside Kubernetes); err is
// set when it names one but is malformed.
func Decode(m map[string]string) (p Pod, c Container, ok bool, err error) {
	p.UID = m[KeyPodUID]
	if p.UID == "" {
		return Pod{}, Container{}, false, nil
	}
	p.Namespace, p.Name = m[KeyNamespace], m[KeyPod]
	if p.Namespace == "" || p.Name == "" {
		return Pod{}, Container{}, false, fmt.Errorf("%w: pod %s without namespace or name", ErrInvalid, p.UID)
	}
	p.QOSClass, p.OwnerKind, p.OwnerName = m[KeyQOSClass], m[KeyOwnerKind], m[KeyOwnerName]
	c.Name, c.ID = m[KeyContainer], m[KeyContainerID]
	for _, f := range []struct {
		key string
		dst *int64
	}{
		{KeyRequestCPU, &c.RequestCPUMillis}, {KeyRequestMemory, &c.RequestMemory},
		{KeyLimitCPU, &c.LimitCPUMillis}, {KeyLimitMemory, &c.LimitMemory},
	} {
		if s, ok := m[f.key]; ok {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v < 0 {
				return Pod{}, Container{}, false, fmt.Errorf("%w: %s %q", ErrInvalid, f.key, s)
			}
			*f.dst = v
		}
	}
	if s, ok := m[KeyLabelsTruncated]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return Pod{}, Container{}, false, fmt.Errorf("%w: %s %q", ErrInvalid, KeyLabelsTruncated, s)
		}
		p.LabelsTruncated = n
	}
	for k, v := range m {
		if name, ok := strings.CutPrefix(k, KeyLabelPrefix); ok {
			if p.Labels == nil {
				p.Labels = map[string]string{}
			}
			p.Labels[name] = v
		}
	}
	return p, c, true, nil
}

// Equal reports whether two pods' metadata are the same.
func (p *Pod) Equal(o *Pod) bool {
	return p.UID == o.UID && p.Namespace == o.Namespace && p.Name == o.Name && p.QOSClass == o.QOSClass &&
		p.OwnerKind == o.OwnerKind && p.OwnerName == o.OwnerName && p.LabelsTruncated == o.LabelsTruncated &&
		maps.Equal(p.Labels, o.Labels)
}
