// Package pricing holds the prices Penny turns measured usage into money
// with: per CPU core-hour, per GiB-hour of memory (on-demand and spot), per
// GiB of internet and of in-cluster egress, in one currency, and optional
// whole-node hourly prices per instance type, region and capacity type.
//
// Prices come from a pricing file, a YAML object of apiVersion penny.dev/v1
// and kind Pricing (written like a Kubernetes component config, so that it
// reads like the rest of a cluster's configuration and sits in a
// ConfigMap), decoded strictly: an unknown field, a value of the wrong type,
// a duplicate key, a negative price, an unknown capacity type or currency,
// a duplicate node entry or a file over 1 MiB is refused, naming the field
// and the reason, all problems in one error. Without a file, OpenCost's
// published defaults apply (its configs/default.json), so numbers are
// comparable with OpenCost's out of the box.
//
// Pricing.Rates resolves the prices of one node from its facts (instance
// type, region, capacity type, CPU and memory): a matching whole-node price
// is split into CPU and memory prices exactly as OpenCost splits a node
// price, otherwise the default prices (spot or on-demand) apply.
//
// A Watcher keeps the prices in force: it loads the file at start (a bad
// file is an error), then polls the file's content every 10 s, which
// follows a mounted ConfigMap's symlink swap, and applies a changed file
// only if it is valid; a refused file is logged and counted and the last
// good prices stay in force. Readers get the current prices from an atomic
// pointer. Its handler serves them read-only (GET /v1/pricing).
//
// docs/pricing.md describes the file, the defaults and their source, the
// node price split with a worked example, and where Penny differs from
// OpenCost's custom pricing.
package pricing
