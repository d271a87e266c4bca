# The end-to-end test on a real control plane (see package e2e).

.PHONY: e2e kube-binaries

e2e: ## sudo: chart, APIService and the real HPA on kube-apiserver and kube-controller-manager (first run builds them, ~10 min)
	bash hack/e2e.sh

kube-binaries: ## build (or find cached) kube-apiserver, kube-controller-manager and kubectl from k8s.io/kubernetes
	bash hack/kube-binaries.sh
