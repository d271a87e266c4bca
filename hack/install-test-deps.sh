#!/usr/bin/env bash
# Installs the programs the tests compare against: promtool (checks /metrics;
# Debian package prometheus), ss and ip (ground truth for TCP RTTs, and the
# e2e's network namespaces; iproute2) and etcd (the e2e's control plane
# store; etcd-server).
set -euo pipefail
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v ss >/dev/null && command -v ip >/dev/null || missing+=(iproute2)
command -v etcd >/dev/null || missing+=(etcd-server)
if [ ${#missing[@]} -gt 0 ]; then
	$sudo apt-get update -qq
	# prometheus' package starts a server through systemd where there is one;
	# the tests only need its promtool.
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
