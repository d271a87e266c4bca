#!/usr/bin/env bash
# Runs helm, built from source through the Go module proxy at a pinned
# version, with the given arguments: `hack/helm.sh lint charts/penny`.
#
# helm is a tool, not a dependency of Penny: `go install pkg@version`
# builds it in module mode on its own go.mod, so Penny's go.mod never lists
# it. The binary is cached in $PENNY_CACHE/bin (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/penny/bin) and rebuilt only when the
# cached one is not exactly HELM_VERSION. A cold build takes a few minutes.
set -euo pipefail

HELM_VERSION=${HELM_VERSION:-v3.22.0}
cache=${PENNY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/penny}
bin="$cache/bin"
helm="$bin/helm"
# sudo resets PATH: find go where Debian's Go tarball install puts it.
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}

have=""
if [ -x "$helm" ]; then
	have=$("$helm" version --template '{{.Version}}' 2>/dev/null || true)
fi
if [ "$have" != "$HELM_VERSION" ]; then
	echo "hack/helm.sh: building helm $HELM_VERSION into $bin (cached for later runs)" >&2
	mkdir -p "$bin"
	(
	# Work outside any module, so Penny's go.mod and go.work play no part.
	export GO111MODULE=on GOWORK=off GOFLAGS=-trimpath CGO_ENABLED=0
	cd /
	# The ldflags helm's own Makefile sets: the version, and the Kubernetes
	# version that `helm template` and `helm lint` assume without a cluster
	# (1.N for the k8s.io/client-go v0.N helm is built with; unset, v1.20).
	gomod=$("$GO" mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
	k8s=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
	if [ -z "$k8s" ]; then
		echo "hack/helm.sh: no k8s.io/client-go version in $gomod" >&2
		exit 1
	fi
	ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
	for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
		ldflags="$ldflags -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$k8s"
	done
	GOBIN="$bin" "$GO" install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	)
	have=$("$helm" version --template '{{.Version}}')
	if [ "$have" != "$HELM_VERSION" ]; then
		echo "hack/helm.sh: built helm reports version $have, want $HELM_VERSION" >&2
		exit 1
	fi
fi
exec "$helm" "$@"
