// Package custommetricstest helps test the custom metrics API: KubeAPI is
// a stand-in for the kube-apiserver endpoints that delegated
// authentication and authorization call. The stored data the tests read
// comes from package aggregator/query/querytest.
package custommetricstest
