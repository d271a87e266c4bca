#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl at the version
# hack/kube/go.mod pins, from k8s.io/kubernetes through the Go module proxy,
# into a cache outside the checkout that later runs on this machine reuse
# (about 10 minutes on 2 cores the first time, nothing after). Prints the
# directory that holds them.
#
#   PENNY_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/penny)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mod=$root/hack/kube
version=$(cd "$mod" && go list -m -f "{{.Version}}" k8s.io/kubernetes)
[[ -n $version ]] || { echo "kube-binaries: no k8s.io/kubernetes version in $mod/go.mod" >&2; exit 1; }
cache=${PENNY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/penny}
out=$cache/kube-$version
# The stamp names the go.mod and go.sum the binaries were built from.
stamp=$(cat "$mod/go.mod" "$mod/go.sum" "$(command -v go)" | sha256sum | cut -c1-16)
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp" ]]; then
	echo "$out"
	exit 0
fi
echo "kube-binaries: building Kubernetes $version into $out (about 10 minutes the first time)" >&2
mkdir -p "$out"
rm -f "$out/stamp"
(
	cd "$mod"
	for cmd in kube-apiserver kube-controller-manager kubectl; do
		CGO_ENABLED=0 go build -trimpath -ldflags "-s -w \
			-X k8s.io/component-base/version.gitVersion=$version \
			-X k8s.io/component-base/version.gitMajor=1 \
			-X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)" \
			-o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
		mv "$out/$cmd.tmp" "$out/$cmd"
	done
)
echo "$stamp" > "$out/stamp"
echo "$out"
