# The request path's modules' benchmark (see docs/security.md).

.PHONY: bench-auth

bench-auth: ## reads at 64 clients alternating between a replica with every module off and one with all on (TokenReview and SubjectAccessReview cached), then the chain alone (~1 min)
	$(GO) run ./hack/benchauth $(BENCH_AUTH_ARGS)
	$(GO) test ./aggregator/access -run '^$$' -bench Chain -benchmem
