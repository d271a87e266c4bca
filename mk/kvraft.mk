# kvraft: the aggregator's replicated KV store (see docs/kvraft.md).
# Included by the top-level Makefile.

KV_OUT ?= _output
ETCD ?= /usr/bin/etcd
# Flags for hack/benchkv, e.g. BENCH_KV_FLAGS="--duration 10s".
BENCH_KV_FLAGS ?=

.PHONY: bench-kv test-kv fuzz-kv kv-cluster

# Penny vs etcd 3.4 (Debian: apt-get install etcd-server etcd-client), both
# 3-member clusters on loopback with fsync on; prints a markdown table and the
# targets (docs/kvraft.md, "Benchmark"). BENCH_KV_FLAGS="--cpuprofile-dir DIR"
# profiles the replicas and the load generator.
bench-kv: ## Penny's KV store vs etcd 3.4, 3 members each (needs etcd-server, ~80s)
	@test -x $(ETCD) || { echo "bench-kv needs etcd 3.4: apt-get install -y etcd-server etcd-client" >&2; exit 1; }
	$(GO) build -o $(KV_OUT)/penny ./cmd/penny
	$(GO) run ./hack/benchkv --penny $(KV_OUT)/penny --etcd $(ETCD) $(BENCH_KV_FLAGS)

# The kvraft test suite, including the multi-process aggregator tests.
test-kv: ## the kvraft tests only, multi-process ones included
	$(GO) test ./kvraft/... ./cmd/...

# A short run of every kvraft fuzz target.
fuzz-kv: ## a short run of every kvraft fuzz target
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=20s ./kvraft/command
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=20s ./kvraft/kvstore
	$(GO) test -run='^$$' -fuzz=FuzzDecodeBatch -fuzztime=20s ./kvraft/kvhttp
	$(GO) test -run='^$$' -fuzz=FuzzParseQuery -fuzztime=20s ./kvraft/kvhttp
	$(GO) test -run='^$$' -fuzz=FuzzDecodeTxn -fuzztime=20s ./kvraft/kvhttp
	$(GO) test -run='^$$' -fuzz=FuzzReadQueryOptions -fuzztime=20s ./kvraft/kvhttp
	$(GO) test -run='^$$' -fuzz=FuzzUnescapeKey -fuzztime=20s ./kvraft/kvhttp
	$(GO) test -run='^$$' -fuzz=FuzzGetURL -fuzztime=20s ./kvraft/kvhttp
	$(GO) test -run='^$$' -fuzz=FuzzDecodeSnapshot -fuzztime=20s ./kvraft

# A 3-member cluster on loopback in the foreground (Ctrl-C stops it).
kv-cluster: ## run a 3-member aggregator cluster on loopback (Ctrl-C stops it)
	$(GO) build -o $(KV_OUT)/penny ./cmd/penny
	hack/kv/cluster.sh $(KV_OUT)/penny
