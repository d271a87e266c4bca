// Package procstat reads what the benchmark drivers report of the
// processes they start: CPU time and resident memory, from /proc.
package procstat
