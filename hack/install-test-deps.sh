#!/usr/bin/env bash
# Installs the programs the tests compare against: promtool (checks /metrics
# and the alert rules) and the prometheus server (scrapes a real Penny
# cluster to run every dashboard query and alert; both from Debian's
# package prometheus), ss and ip (ground truth for TCP RTTs, and the
# e2e's network namespaces; iproute2), unshare (cgroup namespaces;
# util-linux) and etcd (the e2e's control plane store; etcd-server).
# `make test` runs it as root; as another user it runs it with --check.
#
#   --check  install nothing; when something is missing, say in one line
#            which command installs it (exit status 0: the tests that need
#            it skip and say so, or fail under PENNY_TEST_NO_SKIP=1)
set -euo pipefail
missing=() tools=()
need() { # need PACKAGE COMMAND...
	local pkg=$1 cmd
	shift
	for cmd; do
		if ! command -v "$cmd" >/dev/null; then
			missing+=("$pkg") tools+=("$cmd")
			return
		fi
	done
}
need prometheus promtool prometheus
need iproute2 ss ip
need util-linux unshare
need etcd-server etcd
[ ${#missing[@]} -gt 0 ] || exit 0
if [ "${1:-}" = --check ]; then
	list=$(IFS=,; echo "${tools[*]}")
	echo "missing ${list//,/, }: run sudo hack/install-test-deps.sh (Debian), or the tests that need them skip" >&2
	exit 0
fi
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
# prometheus' package starts a server through systemd where there is one;
# the tests run their own, on a free port with a config of their own.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
