// Package podindex keeps each replica's index of the pods' series: which
// series (node and cgroup path) belong to which namespace and pod, from the
// metadata the agents store with each series (model.MetaKey).
//
// An Index follows the store's writes as the replica applies them (it is
// the kvraft Config's Watcher): a metadata write files its series under
// its pod, a delete takes it out, and a snapshot that replaces the store
// rebuilds the index from it. Metadata changes when a pod starts or stops,
// not with every sample, so the applying path pays a key check per write
// and a decode per new pod's container.
//
// Readers (package query) look series up inside kvraft's View, which holds
// the applying of entries back: what the index names and the pairs read
// then come from one state, so a namespace or one pod reads its own series
// instead of decoding the whole store. The index holds no values, only each
// pod series' metadata decoded (docs/custom-metrics.md, "Reads", has its
// bytes per series), which every read then takes instead of decoding it.
package podindex
