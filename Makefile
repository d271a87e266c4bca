# Penny's build. `make help` lists the targets.
#
# sudo resets PATH, so find go where Debian's Go tarball install puts it.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN ?= bin
PENNY := $(BIN)/penny
# The agent alone (cmd/penny built with -tags agentonly): what the chart's
# DaemonSet runs, half the binary and half the RSS (docs/agent.md).
PENNY_AGENT := $(BIN)/penny-agent
# The eBPF C sources and what bpf2go generates from them.
BPF_SRC := $(wildcard bpf/*.bpf.c bpf/*.h)
TEST_TIMEOUT ?= 45m
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# staticcheck, pinned in hack/tools/go.mod (its own module: Penny's go.mod
# does not list it) and built by `go tool` on first use. With a cold
# staticcheck cache (~/.cache/staticcheck) `make lint` takes about 1.5
# minutes on the CI machine (3 when staticcheck itself is built too), 15s
# after.
STATICCHECK := $(GO) tool -modfile=hack/tools/go.mod staticcheck

.PHONY: help build run test test-deps bench generate vmlinux lint tidy clean deps-generate

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/penny and bin/penny-agent, the agent alone (no clang needed: the eBPF objects are committed)
	$(GO) build -trimpath -o $(PENNY) ./cmd/penny
	$(GO) build -trimpath -tags agentonly -o $(PENNY_AGENT) ./cmd/penny

run: build ## build and run `penny local` (asks for sudo: eBPF needs root)
	$(SUDO) $(PENNY) local $(ARGS)

test: test-deps ## run every test (as root: the kernel tests load eBPF and create cgroups; installs promtool & co. first)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# What the tests run besides Go (promtool, ss, unshare, etcd): installed as
# root, else named with the command that installs them.
test-deps:
	@if [ "$$(id -u)" = 0 ]; then hack/install-test-deps.sh; else hack/install-test-deps.sh --check; fi

bench: build ## measure the agent: eBPF cost per event, agent CPU and RSS (root, ~80s)
	$(SUDO) $(GO) run ./hack/benchagent -penny $(PENNY) -penny-agent $(PENNY_AGENT) $(BENCH_ARGS)

generate: deps-generate ## recompile the eBPF programs with bpf2go (needs clang 14, see hack/install-bpf-tools.sh)
	cd bpf && $(GO) generate ./...

# The clang and libbpf the committed objects were built with, or a clear
# message.
deps-generate:
	@hack/install-bpf-tools.sh --check

vmlinux: ## regenerate bpf/vmlinux.h from this kernel's BTF (needs bpftool)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h.tmp && mv bpf/vmlinux.h.tmp bpf/vmlinux.h

lint: ## go vet, gofmt, go mod tidy (Penny's module and hack/tools), no bare t.Skip, staticcheck
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/
	$(GO) build -tags agentonly -o /dev/null ./cmd/penny/
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@out=$$(git grep --untracked -nE '(^|[^[:alnum:]_])(t|b|tb|f)\.Skip(f|Now)?\(' -- '*.go' ':!internal/testenv/'); \
		[ -z "$$out" ] || { echo "skip through internal/testenv, which PENNY_TEST_NO_SKIP=1 turns into a failure:"; echo "$$out"; exit 1; }
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run go mod tidy"; exit 1; }
	@cd hack/tools && $(GO) mod tidy -diff || { echo "hack/tools/go.mod not tidy: run (cd hack/tools && go mod tidy)"; exit 1; }
	@echo "$(STATICCHECK) ./... && $(STATICCHECK) -tags e2e ./e2e/"
	@rc=0; $(STATICCHECK) ./... || rc=1; $(STATICCHECK) -tags e2e ./e2e/ || rc=1; exit $$rc

clean: ## remove build output
	rm -rf $(BIN) _output

-include mk/*.mk
