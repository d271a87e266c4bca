# The reads of pods: through the pod index against scans of the whole
# store (see docs/custom-metrics.md, "Reads").

.PHONY: bench-read

# Flags for hack/benchread, e.g. BENCH_READ_FLAGS="-containers 5000 -reads 50".
BENCH_READ_FLAGS ?=

bench-read: ## pods reads at 5,000 and 50,000 containers, through the pod index and by scans, in one run (~3 min)
	$(GO) run ./hack/benchread $(BENCH_READ_FLAGS)
