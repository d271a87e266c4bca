# The streaming pipeline's benchmarks (see docs/streaming.md).

.PHONY: bench-pipeline

bench-pipeline: build ## wire size vs Prometheus, then 3 replicas under simulated agents (~6 min)
	$(GO) run ./hack/benchwire
	$(GO) run ./hack/benchpipeline -penny $(PENNY) $(BENCH_PIPELINE_ARGS)
