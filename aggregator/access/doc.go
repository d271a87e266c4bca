// Package access is the request path's modules of an aggregator replica,
// chained in front of its HTTP handlers from the configuration:
// authentication (package authn), an audit log, rate limits per identity
// and authorization (package authz). A module that is off is not in the
// chain at all; with every module off the chain is the handler itself.
//
// Routes maps each request to what it asks, in terms of authz's virtual
// resources: the gateway's reads, GET /v1/allocation, the KV API,
// membership, the profiles and the ingest. /v1/health and /metrics are
// open: probes and Prometheus carry no credentials, and they say nothing
// about tenants (health is one word; /metrics holds counters per reason
// and per node, no pod or namespace). A path the table does not know is
// the admins' only.
package access
