// Package query is the aggregator's one read path: every reader (the REST
// gateway, the custom metrics API, the Prometheus exporter and, next, cost
// allocation) asks it for containers, pods, namespaces or nodes, and it
// reads them from the local replica with the consistency the reader
// chooses.
//
// A node's agent record, series and series metadata are read in one range,
// at one index, and decoded into model.Container views; pods and
// namespaces group those views (package aggregator/pods). A node's facts
// (package nodemeta) come from its agent record's metadata. Readers never
// decode the store themselves, so a faster index behind this package
// speeds every one of them up.
//
// Every read is priced (docs/cost.md, "Cost rate now"): each container's
// cost per hour at its node's prices (Config.Prices, from the node's
// facts: the aggregator's pricing watcher), by cost.HourlyRate, the rule
// the history's minutes follow; each node's cost per hour and the idle its
// containers leave. Read returns containers and nodes from one range, for
// readers that need both.
package query
