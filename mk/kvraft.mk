# kvraft: the aggregator's replicated KV store (see docs/kvraft.md).
# Included by the top-level Makefile.

KV_OUT ?= _output
ETCD ?= /usr/bin/etcd
# Flags for hack/benchkv, e.g. BENCH_KV_FLAGS="--duration 10s".
BENCH_KV_FLAGS ?=

.PHONY: bench-kv test-kv fuzz-kv kv-cluster

# Penny vs etcd 3.4 (Debian: apt-get install etcd-server etcd-client), both
# 3-member clusters on loopback with fsync on; prints a markdown table.
bench-kv:
	@test -x $(ETCD) || { echo "bench-kv needs etcd 3.4: apt-get install -y etcd-server etcd-client" >&2; exit 1; }
	go build -o $(KV_OUT)/penny ./cmd/penny
	go run ./hack/benchkv --penny $(KV_OUT)/penny --etcd $(ETCD) $(BENCH_KV_FLAGS)

# The kvraft test suite, including the multi-process aggregator tests.
test-kv:
	go test ./kvraft/... ./cmd/...

# A short run of every kvraft fuzz target.
fuzz-kv:
	go test -run='^$$' -fuzz=FuzzDecode -fuzztime=20s ./kvraft/command
	go test -run='^$$' -fuzz=FuzzDecode -fuzztime=20s ./kvraft/kvstore
	go test -run='^$$' -fuzz=FuzzDecodeBatch -fuzztime=20s ./kvraft/kvhttp
	go test -run='^$$' -fuzz=FuzzParseQuery -fuzztime=20s ./kvraft/kvhttp
	go test -run='^$$' -fuzz=FuzzDecodeSnapshot -fuzztime=20s ./kvraft

# A 3-member cluster on loopback in the foreground (Ctrl-C stops it).
kv-cluster:
	go build -o $(KV_OUT)/penny ./cmd/penny
	hack/kv/cluster.sh $(KV_OUT)/penny
