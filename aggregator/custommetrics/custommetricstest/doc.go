// Package custommetricstest helps test the custom metrics API: KubeAPI is
// a stand-in for the kube-apiserver endpoints that delegated
// authentication and authorization call, and Write stores a known set of
// pods in a replica, as agents would have reported them.
package custommetricstest
