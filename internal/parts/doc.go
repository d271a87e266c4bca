// Package parts splits work over a slice into parts run on up to
// GOMAXPROCS goroutines: the reads that decode, sum or walk thousands of
// series do the same work sooner when cores are free, and as before on one.
package parts
