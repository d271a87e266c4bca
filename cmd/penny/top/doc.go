// Package top is `penny top`: a kubectl-free look at what pods and
// namespaces use, read from an aggregator's gateway (GET /v1/pods and
// GET /v1/namespaces) and printed as a table.
package top
