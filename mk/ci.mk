# Checks CI runs besides `make lint` and `make test` (see .ci/run).
# Included by the top-level Makefile.

# The packages with concurrency, under the race detector.
RACE_PKGS ?= ./kvraft/... ./aggregator/... ./agent/... ./wire/... ./admission/... ./cmd/penny/local/...

.PHONY: test-race check-generate

# Needs root like `make test`. Measured as root on the CI machine (2 cores,
# shared with other work): 1m28s to 1m48s with the race-instrumented
# packages in the build cache, about 6 minutes from a cold cache.
test-race: test-deps ## the tests of the concurrent packages under the race detector (root)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)

# Installs the pinned clang 14 from Debian when it is missing (as root, or
# through sudo), recompiles bpf/ in _output/check-generate and fails, with
# a summary of what differs, unless the committed objects and Go bindings
# are byte for byte what the C sources give. On the CI machine:
# 12s with a cold apt cache (apt-get install of clang 14, libbpf-dev, bpftool:
# 9s; llvm was installed) and 3s once installed.
check-generate: ## check that the committed eBPF objects are what bpf/*.c compile to (installs clang 14)
	hack/check-generate.sh
