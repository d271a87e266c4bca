// Package kube attributes the agent's cgroups to Kubernetes pods and
// containers.
//
// ParsePath reads the pod UID, QoS class and container ID out of a cgroup
// path as the kubelet and the container runtimes lay them out (containerd,
// CRI-O and cri-dockerd, with the systemd or the cgroupfs cgroup driver, on
// cgroup v1 or v2). A Watcher keeps an informer over the pods of this node
// only, and Resolve turns a cgroup path into the series metadata of package
// podmeta: the pod's namespace, name, labels, owner and QoS class, and the
// container's name, requests and limits. Resolve is on the sampling path:
// it caches its answer per path and allocates nothing while nothing
// changes.
//
// A NodeWatcher follows this node's Node object (field selector
// metadata.name) and keeps its facts (package nodemeta): instance type,
// region and zone from their well-known labels, spot or on-demand from the
// labels clouds and autoscalers set (SpotLabels, and labels the user
// names), allocatable and capacity CPU and memory from its status. The
// agent runs without them when the Node object is missing or unreadable.
//
// The watchers need get, list and watch on pods and nodes, and the agent
// must see the host's cgroup hierarchy (docs/agent.md, "Kubernetes
// attribution").
package kube
