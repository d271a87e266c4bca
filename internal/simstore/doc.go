// Package simstore writes simulated nodes into a store as the ingest
// would, for the read benchmarks (make bench-read, the query and exporter
// benchmarks): the same nodes, samples and metadata everywhere.
package simstore
