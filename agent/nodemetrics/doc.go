// Package nodemetrics serves the agent's node-local HTTP endpoints: /metrics in
// the Prometheus exposition format (per-cgroup series and the agent's own
// health) and /healthz.
package nodemetrics
