# The end-to-end test on a real control plane (see package e2e).

.PHONY: e2e kube-binaries

e2e: ## sudo: chart, APIService and the real HPA on kube-apiserver and kube-controller-manager (first run builds them, ~10 min)
	bash hack/e2e.sh

kube-binaries: ## build (or find cached) kube-apiserver, kube-controller-manager and kubectl from k8s.io/kubernetes
	bash hack/kube-binaries.sh

.PHONY: bench-freshness
bench-freshness: ## sudo: a pod's RSS change to the custom metrics API through kube-apiserver, shipping on change vs at the interval (~6 min)
	PENNY_BENCH_FRESHNESS=1 E2E_RUN='^TestFreshness$$' bash hack/e2e.sh
