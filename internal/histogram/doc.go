// Package histogram implements the log2 histograms that Penny's eBPF
// programs fill in the kernel: bucket 0 holds values in [0, 2), bucket i
// (i >= 1) holds [2^i, 2^(i+1)). It computes interval deltas and quantiles.
package histogram
