// Package daemon runs `penny agent`: the agent core sampling every interval
// and a shipper streaming each sample to the aggregator cluster.
package daemon
