// Package loadgen simulates many agents streaming to an aggregator cluster
// and measures whether the cluster keeps up: the frames waiting for an
// acknowledgement (a backlog that grows means it does not) and freshness,
// the time from a sample being taken to its being readable on every
// replica.
//
// Each simulated agent is the real thing from the shipper down (encoder,
// buffer, HTTP/2 stream, acknowledgements); only the eBPF sampling is
// replaced by a simulated node (internal/simnode). Agents take their
// samples at staggered moments of the interval, as real nodes do.
package loadgen
