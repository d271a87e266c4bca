// Package scale is `penny scale recommend`: it asks an aggregator's GET
// /v1/scaling/recommendations and prints a table, one row per workload.
package scale
