#!/usr/bin/env bash
# make e2e: the end-to-end test on a real Kubernetes control plane (see
# package e2e). Builds what it needs, reusing the cached Kubernetes and helm
# binaries of earlier runs, then runs the tests as root.
#
#   E2E_RUN  a -run pattern for go test (default: every e2e test)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [[ $(id -u) != 0 ]]; then
	echo "e2e: run as root (sudo make e2e): it creates cgroups, network namespaces and loads eBPF programs" >&2
	exit 1
fi
hack/install-test-deps.sh
kube=$(hack/kube-binaries.sh)
hack/helm.sh version --short >/dev/null # builds helm on the first run
make --no-print-directory build
export PENNY_KUBE_BIN=$kube PENNY_BIN=$root/bin/penny PENNY_AGENT_BIN=$root/bin/penny-agent PENNY_HELM=$root/hack/helm.sh
exec go test -tags e2e -count=1 -timeout 30m -v ${E2E_RUN:+-run "$E2E_RUN"} ./e2e/
