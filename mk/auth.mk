# The request path's modules' benchmark (see docs/security.md).

.PHONY: bench-auth

bench-auth: ## reads at 64 clients with every module off vs on (TokenReview and SubjectAccessReview cached), and the chain alone (~1 min)
	$(GO) run ./hack/benchauth $(BENCH_AUTH_ARGS)
	$(GO) test ./aggregator/access -run '^$$' -bench Chain -benchmem
