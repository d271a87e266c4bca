// Package access is the request path's modules of an aggregator replica,
// chained in front of its HTTP handlers from the configuration:
// authentication (package authn), an audit log, rate limits per identity
// and authorization (package authz). A module that is off is not in the
// chain at all; with every module off the chain is the handler itself.
//
// Routes maps each request to what it asks, in terms of authz's virtual
// resources: the gateway's reads, GET /v1/allocation, the KV API,
// membership, the profiles and the ingest. /v1/health is open: probes
// carry no credentials. /metrics is open unless Config.ProtectMetrics
// makes it a read of every container (its penny_container_* series are):
// Prometheus scrapes without credentials unless told otherwise. A path
// the table does not know is the admins' only.
package access
