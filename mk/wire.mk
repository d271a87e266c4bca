# wire: the format agents stream to the aggregator (see docs/wire.md).
# Included by the top-level Makefile.

# Flags for hack/benchwire, e.g. BENCH_WIRE_FLAGS="-cgroups 100 -all-busy".
BENCH_WIRE_FLAGS ?=
# How long fuzz-wire runs each fuzz target, and how many runs it spends
# minimizing each new input: minimizing kilobyte-long inputs for the default
# minute each would take most of the fuzzing time.
WIRE_FUZZTIME ?= 60s
WIRE_FUZZMINIMIZE ?= 100x
WIRE_FUZZ := FuzzDecodeHeader FuzzDecode FuzzDecodeBody FuzzReader FuzzDecodeAck FuzzStateApply FuzzRoundTrip

.PHONY: bench-wire test-wire fuzz-wire

# Bytes per interval of Penny frames against the agent's own Prometheus
# exposition (text, gzip, protobuf) for 100 and 1000 cgroups; prints tables.
bench-wire: ## wire size: Penny frames vs the agent's Prometheus text, gzip, protobuf (~15s)
	$(GO) run ./hack/benchwire $(BENCH_WIRE_FLAGS)

test-wire: ## the wire package's tests, and its benchmarks run briefly
	$(GO) test -count=1 ./wire/...
	$(GO) test -run='^$$' -bench=. -benchtime=100x ./wire

fuzz-wire: ## every wire fuzz target for WIRE_FUZZTIME each (default 60s)
	@for f in $(WIRE_FUZZ); do \
		echo "$$f"; \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(WIRE_FUZZTIME) -fuzzminimizetime=$(WIRE_FUZZMINIMIZE) ./wire || exit 1; \
	done
