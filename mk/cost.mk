# The cost allocation's benchmark (see docs/cost.md).

.PHONY: bench-cost

bench-cost: build ## 7 days of history for 5,000 pods: GET /v1/allocation p50/p99, store bytes per container per day, and the rollups' ingest cost (~15 min)
	$(GO) run ./hack/benchcost -penny $(PENNY) $(BENCH_COST_ARGS)
