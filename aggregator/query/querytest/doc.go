// Package querytest stores a known set of nodes, pods and containers in a
// replica, as agents would have reported them, for the tests of every
// reader (package query, the gateway, the custom metrics API, and the
// end-to-end tests of penny aggregator).
package querytest
