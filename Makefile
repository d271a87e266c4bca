# Penny's build. `make help` lists the targets.
#
# sudo resets PATH, so find go where Debian's Go tarball install puts it.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN ?= bin
PENNY := $(BIN)/penny
# The eBPF C sources and what bpf2go generates from them.
BPF_SRC := $(wildcard bpf/*.bpf.c bpf/*.h)
TEST_TIMEOUT ?= 45m
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help build run test bench generate vmlinux lint tidy clean deps-generate

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/penny (no clang needed: the eBPF objects are committed)
	$(GO) build -trimpath -o $(PENNY) ./cmd/penny

run: build ## build and run `penny local` (asks for sudo: eBPF needs root)
	$(SUDO) $(PENNY) local $(ARGS)

test: ## run every test (as root: the kernel tests load eBPF and create cgroups)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

bench: build ## measure the agent: eBPF cost per event, agent CPU and RSS (root, ~80s)
	$(SUDO) $(GO) run ./hack/benchagent -penny $(PENNY) $(BENCH_ARGS)

generate: deps-generate ## recompile the eBPF programs with bpf2go (needs clang, see hack/install-bpf-tools.sh)
	cd bpf && $(GO) generate ./...

deps-generate:
	@command -v clang >/dev/null || { echo "clang missing: run hack/install-bpf-tools.sh"; exit 1; }

vmlinux: ## regenerate bpf/vmlinux.h from this kernel's BTF (needs bpftool)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h.tmp && mv bpf/vmlinux.h.tmp bpf/vmlinux.h

lint: ## go vet, gofmt and go mod tidy
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@cp go.mod /tmp/penny-go.mod.$$$$ && cp go.sum /tmp/penny-go.sum.$$$$ && $(GO) mod tidy && \
		if ! cmp -s go.mod /tmp/penny-go.mod.$$$$ || ! cmp -s go.sum /tmp/penny-go.sum.$$$$; then \
		echo "go.mod/go.sum not tidy: run go mod tidy"; exit 1; fi; rm -f /tmp/penny-go.*.$$$$

clean: ## remove build output
	rm -rf $(BIN) _output

-include mk/*.mk
