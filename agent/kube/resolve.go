package kube

import (
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pennyhq/penny/internal/podmeta"
)

// entry is the cached answer for one cgroup path.
type entry struct {
	ref   Ref
	isPod bool // the path names a pod
	// used is set by Resolve and cleared by sweep: entries not used
	// between two sweeps are forgotten.
	used bool
	// checked is set when pod and meta are as of the watcher's
	// generation gen.
	checked bool
	gen     uint64
	pod     *corev1.Pod // the pod meta was encoded from; nil when unresolved
	meta    map[string]string
	// goneAt is when pod was first found deleted from the API; zero
	// while it is known.
	goneAt time.Time
}

// Resolve returns the series metadata (podmeta.Encode) of the cgroup at
// path, or nil when the path is not a pod's or the pod is not known (yet).
//
// It is called for every series of every sample: the answer is cached per
// path and checked again only when the pods change, so that a steady state
// allocates nothing, and the same map is returned for as long as its
// contents stay the same. Callers must not modify it.
func (w *Watcher) Resolve(path string) map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.paths[path]
	if e == nil {
		ref, ok := ParsePath(path)
		e = &entry{ref: ref, isPod: ok}
		w.paths[path] = e
	}
	e.used = true
	if !e.isPod {
		return nil
	}
	// Load the generation before looking the pod up: a change that lands
	// in between bumps it again and the next call looks again.
	gen := w.gen.Load()
	if e.checked && e.gen == gen {
		return e.meta
	}
	e.checked, e.gen = true, gen
	pod := w.lookup(&e.ref)
	switch {
	case pod == nil && e.pod != nil:
		// Deleted: its cgroups keep its metadata for DeletedGrace (the
		// path names the pod by its UID, which no other pod takes), and
		// the next call looks at the clock again.
		now := w.cfg.Now()
		if e.goneAt.IsZero() {
			e.goneAt = now
		}
		if now.Sub(e.goneAt) < w.cfg.DeletedGrace {
			e.checked = false
			return e.meta
		}
		e.pod, e.meta, e.goneAt = nil, nil, time.Time{}
	case pod == nil:
		e.pod, e.meta = nil, nil
	case pod != e.pod:
		e.goneAt = time.Time{}
		// The informer stores a new object for every change of the pod.
		if m := encode(pod, &e.ref); !maps.Equal(m, e.meta) {
			e.meta = m
		}
		e.pod = pod
	}
	return e.meta
}

// Unresolved returns the number of recently resolved cgroup paths that
// name a pod the watcher does not know.
func (w *Watcher) Unresolved() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.paths {
		if e.isPod && e.checked && e.pod == nil {
			n++
		}
	}
	return n
}

// sweep forgets the paths not resolved since the previous sweep.
func (w *Watcher) sweep() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, e := range w.paths {
		if !e.used {
			delete(w.paths, p)
			continue
		}
		e.used = false
	}
}

// lookup returns the pod of ref: by its UID (or a static pod's), else,
// for a static pod whose mirror pod lacks MirrorAnnotation, by its
// container's id. A path with a regular pod UID never resolves to a pod
// with another UID.
func (w *Watcher) lookup(ref *Ref) *corev1.Pod {
	if p, ok := w.byIndex(indexPodUID, ref.PodUID); ok {
		return p
	}
	if len(ref.PodUID) == 32 && ref.ContainerID != "" && !ref.Conmon {
		if p, ok := w.byIndex(indexContainerID, ref.ContainerID); ok {
			return p
		}
	}
	return nil
}

// encode returns the metadata of the cgroup ref of pod p.
//
// The container is named only when the pod's status lists its id: the
// sandbox (pause) container, a container not listed yet, the pod-level
// cgroup and CRI-O's conmon cgroups are the pod's overhead, with an empty
// name. Conmon cgroups carry no container id either, so that only the
// container's own series carries its id.
func encode(p *corev1.Pod, ref *Ref) map[string]string {
	pm := podmeta.Pod{
		UID:       string(p.UID),
		Namespace: p.Namespace,
		Name:      p.Name,
		Labels:    p.Labels,
		QOSClass:  string(p.Status.QOSClass),
	}
	if pm.QOSClass == "" {
		pm.QOSClass = ref.QOSClass
	}
	if o := metav1.GetControllerOfNoCopy(p); o != nil {
		pm.OwnerKind, pm.OwnerName = o.Kind, o.Name
	}
	var c podmeta.Container
	if ref.ContainerID != "" && !ref.Conmon {
		c.ID = ref.ContainerID
		if name, ok := containerName(p, ref.ContainerID); ok {
			c.Name = name
			if r := containerResources(p, name); r != nil {
				c.RequestCPUMillis = milli(r.Requests, corev1.ResourceCPU)
				c.RequestMemory = value(r.Requests, corev1.ResourceMemory)
				c.LimitCPUMillis = milli(r.Limits, corev1.ResourceCPU)
				c.LimitMemory = value(r.Limits, corev1.ResourceMemory)
			}
		}
	}
	return podmeta.Encode(&pm, &c)
}

// containerName returns the name of the container whose status has id.
func containerName(p *corev1.Pod, id string) (string, bool) {
	for _, list := range [][]corev1.ContainerStatus{
		p.Status.ContainerStatuses, p.Status.InitContainerStatuses, p.Status.EphemeralContainerStatuses,
	} {
		for i := range list {
			if stripScheme(list[i].ContainerID) == id {
				return list[i].Name, true
			}
		}
	}
	return "", false
}

// containerResources returns the resources of the named init, regular or
// ephemeral container in the pod's spec.
func containerResources(p *corev1.Pod, name string) *corev1.ResourceRequirements {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i].Resources
		}
	}
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == name {
			return &p.Spec.InitContainers[i].Resources
		}
	}
	for i := range p.Spec.EphemeralContainers {
		if p.Spec.EphemeralContainers[i].Name == name {
			return &p.Spec.EphemeralContainers[i].Resources
		}
	}
	return nil
}

func milli(l corev1.ResourceList, n corev1.ResourceName) int64 {
	if q, ok := l[n]; ok {
		return q.MilliValue()
	}
	return 0
}

func value(l corev1.ResourceList, n corev1.ResourceName) int64 {
	if q, ok := l[n]; ok {
		return q.Value()
	}
	return 0
}
