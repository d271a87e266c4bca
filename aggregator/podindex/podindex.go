package podindex

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/pennyhq/penny/aggregator/model"
	"github.com/pennyhq/penny/internal/podmeta"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// Ref names one series: its node and cgroup path.
type Ref struct {
	Node, Path string
}

// pod is what the index knows of a series' pod.
type pod struct {
	namespace, name string
}

// entry is an indexed series.
type entry struct {
	pod pod
	// labels are its pod's, for selectors: shared by the pod's
	// containers when their metadata is the same.
	labels labels.Set
	// metaMod is the mod index of the metadata the series is filed by,
	// and kube that metadata decoded: shared by every read (read-only).
	metaMod uint64
	kube    *model.Kube
}

// Index is the pods' series by namespace and by pod. It implements
// kvstore.Watcher. It is safe for concurrent use; its lookups agree with
// the store when they run inside kvraft's View.
type Index struct {
	mu    sync.RWMutex
	byRef map[Ref]*entry
	byNS  map[string]map[Ref]struct{}
	byPod map[pod]map[Ref]struct{}
	// sorted holds namespaces' series sorted by node and path, as Series
	// returns them, from the first read of each after it changed: readers
	// fill it under mu's read lock (and sortedMu), writers drop a
	// namespace's under its write lock when its series change.
	sortedMu sync.Mutex
	sorted   map[string][]filed
}

// filed is a series and its entry (read-only: a write files a new one).
type filed struct {
	ref Ref
	e   *entry
}

var _ kvstore.Watcher = (*Index)(nil)

// New returns an empty index.
func New() *Index {
	return &Index{byRef: map[Ref]*entry{}, byNS: map[string]map[Ref]struct{}{}, byPod: map[pod]map[Ref]struct{}{},
		sorted: map[string][]filed{}}
}

var (
	nodesPrefix = model.AllNodesPrefix()
	metaPart    = []byte("/meta/")
)

// isMeta reports whether key is a series' metadata key, without
// allocating: the check every applied write pays.
func isMeta(key []byte) bool {
	rest, ok := bytes.CutPrefix(key, nodesPrefix)
	if !ok {
		return false
	}
	i := bytes.IndexByte(rest, '/')
	return i > 0 && bytes.HasPrefix(rest[i:], metaPart)
}

// Reset rebuilds the index from s.
func (x *Index) Reset(s *kvstore.Store) {
	x.mu.Lock()
	defer x.mu.Unlock()
	clear(x.byRef)
	clear(x.byNS)
	clear(x.byPod)
	clear(x.sorted)
	s.Ascend(nodesPrefix, kvstore.PrefixEnd(nodesPrefix), func(kv kvstore.KV) bool {
		if isMeta(kv.Key) {
			x.put(kv)
		}
		return true
	})
}

// Put files a metadata write's series under its pod.
func (x *Index) Put(kv kvstore.KV) {
	if !isMeta(kv.Key) {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.put(kv)
}

// Delete takes a deleted metadata key's series out.
func (x *Index) Delete(key []byte) {
	if !isMeta(key) {
		return
	}
	node, _, path, err := model.ParseKey(key)
	if err != nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.remove(Ref{Node: node, Path: path})
}

func (x *Index) put(kv kvstore.KV) {
	node, _, path, err := model.ParseKey(kv.Key)
	if err != nil {
		return
	}
	r := Ref{Node: node, Path: path}
	x.remove(r)
	// Metadata that does not decode or names no pod (a systemd unit's)
	// is no pod's: the reads of pods leave such series out too.
	m, err := model.DecodeMeta(kv.Value)
	if err != nil {
		return
	}
	p, c, ok, err := podmeta.Decode(m)
	if err != nil || !ok || p.Namespace == "" {
		return
	}
	// The strings are the index's own: it must not keep the decoder's
	// buffers alive, and names repeat across a pod's containers.
	pk := pod{namespace: strings.Clone(p.Namespace), name: strings.Clone(p.Name)}
	p.Labels = x.labelsOf(pk, p.Labels)
	x.byRef[r] = &entry{pod: pk, labels: p.Labels, metaMod: kv.ModIndex, kube: &model.Kube{Pod: p, Container: c}}
	add(x.byNS, pk.namespace, r)
	delete(x.sorted, pk.namespace)
	add(x.byPod, pk, r)
}

// labelsOf returns ls, or the same labels another container of the pod
// has: a pod's containers share one map.
func (x *Index) labelsOf(pk pod, ls map[string]string) labels.Set {
	for r := range x.byPod[pk] {
		if have := x.byRef[r].labels; maps.Equal(have, ls) {
			return have
		}
		break
	}
	return ls
}

func (x *Index) remove(r Ref) {
	e, ok := x.byRef[r]
	if !ok {
		return
	}
	delete(x.byRef, r)
	drop(x.byNS, e.pod.namespace, r)
	delete(x.sorted, e.pod.namespace)
	drop(x.byPod, e.pod, r)
}

// Kube returns the pod and container of series r as its metadata at mod
// index metaMod says, if r is filed by that metadata: decoded once, when
// it was applied, for every read (read-only).
func (x *Index) Kube(r Ref, metaMod uint64) (*model.Kube, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.byRef[r]
	if !ok || e.metaMod != metaMod {
		return nil, false
	}
	return e.kube, true
}

func add[K comparable](m map[K]map[Ref]struct{}, k K, r Ref) {
	set := m[k]
	if set == nil {
		set = map[Ref]struct{}{}
		m[k] = set
	}
	set[r] = struct{}{}
}

func drop[K comparable](m map[K]map[Ref]struct{}, k K, r Ref) {
	set := m[k]
	delete(set, r)
	if len(set) == 0 {
		delete(m, k)
	}
}

// Namespace returns the series of namespace's pods, sorted by node and
// path; with name set, those of that pod only; with sel set (not nil),
// those of the pods whose labels it matches.
func (x *Index) Namespace(namespace, name string, sel labels.Selector) []Ref {
	ss := x.Series(namespace, name, sel)
	refs := make([]Ref, len(ss))
	for i := range ss {
		refs[i] = ss[i].Ref
	}
	return refs
}

// Series is a pod's series and its pod and container.
type Series struct {
	Ref
	// Kube is decoded from the metadata the series is filed by, shared by
	// every read (read-only).
	Kube *model.Kube
}

// Series returns what Namespace returns, each series with its pod and
// container. Inside kvraft's View, each Kube is that of the metadata the
// store holds then: the index files a series by every metadata write
// applied and takes it out with every delete, so a reader need not read
// the metadata to know it is the same (Kube checks a mod index for
// readers that do).
func (x *Index) Series(namespace, name string, sel labels.Selector) []Series {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var fs []filed
	if name != "" {
		fs = x.sortedSet(x.byPod[pod{namespace: namespace, name: name}])
	} else {
		fs = x.sortedNamespace(namespace)
	}
	ss := make([]Series, 0, len(fs))
	for _, f := range fs {
		if sel == nil || sel.Matches(f.e.labels) {
			ss = append(ss, Series{Ref: f.ref, Kube: f.e.kube})
		}
	}
	return ss
}

// sortedNamespace returns namespace's series sorted, from the cache when
// they have not changed since they were last sorted (read-only). Callers
// hold mu's read lock.
func (x *Index) sortedNamespace(namespace string) []filed {
	x.sortedMu.Lock()
	fs, ok := x.sorted[namespace]
	x.sortedMu.Unlock()
	if ok {
		return fs
	}
	set, ok := x.byNS[namespace]
	if !ok {
		return nil // not kept: a namespace of no series would stay
	}
	fs = x.sortedSet(set)
	x.sortedMu.Lock()
	x.sorted[namespace] = fs
	x.sortedMu.Unlock()
	return fs
}

// sortedSet returns set's series with their entries, sorted by node and
// path. Callers hold mu.
func (x *Index) sortedSet(set map[Ref]struct{}) []filed {
	fs := make([]filed, 0, len(set))
	for r := range set {
		fs = append(fs, filed{ref: r, e: x.byRef[r]})
	}
	slices.SortFunc(fs, func(a, b filed) int {
		if c := strings.Compare(a.ref.Node, b.ref.Node); c != 0 {
			return c
		}
		return strings.Compare(a.ref.Path, b.ref.Path)
	})
	return fs
}

// Len returns the number of series filed under a pod.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byRef)
}
