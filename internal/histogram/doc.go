// Package histogram implements the histograms that Penny's eBPF programs
// and agent fill: log2 histograms (Hist), whose bucket 0 holds values in
// [0, 2) and bucket i (i >= 1) [2^i, 2^(i+1)), for the TCP round-trip and
// connect times, and sparse log-linear ones (LogLinear), eight buckets per
// power of two, for request latency. It computes interval deltas and
// quantiles.
package histogram
