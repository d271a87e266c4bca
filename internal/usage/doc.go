// Package usage is the JSON shape of one cgroup's usage, shared by
// `penny local --json` (package agent/report) and the aggregator's
// `GET /v1/containers` (package aggregator/model), so the two cannot drift
// apart: a client that reads one reads the other.
package usage
