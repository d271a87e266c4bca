#!/usr/bin/env bash
# Installs what `make generate` and `make check-generate` need to recompile
# the eBPF programs, from Debian 12 (bookworm): clang and llvm (llvm-strip)
# and libbpf's headers at the versions the committed objects were built
# with, so that regenerating gives the committed bytes; and bpftool, which
# only `make vmlinux` uses (its output follows the running kernel anyway, so
# it is not pinned). Building Penny needs none of them: the compiled objects
# are committed.
#
# Then it checks that `clang --version` is the one the objects were built
# with. To move to another clang: change the versions below, run
# `make generate`, check `sudo go test ./bpf/ ./agent/...` and commit the
# objects with the new pins.
#
#   --check  install nothing; only check the versions (exit 1 if wrong)
set -euo pipefail

# Debian package versions (apt-cache policy clang llvm libbpf-dev).
CLANG_DEB=1:14.0-55.7~deb12u1 # clang and llvm: LLVM 14.0.6
LIBBPF_DEB=1:1.1.2-0+deb12u1
# What `clang --version` says for the objects committed in bpf/.
CLANG_VERSION=14.0.6

have() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

need=()
[[ $(have clang) == "$CLANG_DEB" ]] || need+=("clang=$CLANG_DEB")
[[ $(have llvm) == "$CLANG_DEB" ]] || need+=("llvm=$CLANG_DEB")
[[ $(have libbpf-dev) == "$LIBBPF_DEB" ]] || need+=("libbpf-dev=$LIBBPF_DEB")
command -v bpftool >/dev/null || need+=(bpftool)

if [[ ${1:-} != --check && ${#need[@]} -gt 0 ]]; then
	if ! command -v apt-get >/dev/null; then
		echo "install-bpf-tools: no apt-get here: install clang/llvm $CLANG_VERSION and libbpf ${LIBBPF_DEB#*:} headers yourself" >&2
		exit 1
	fi
	sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
	$sudo apt-get update -qq
	if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		--allow-downgrades "${need[@]}" >/dev/null; then
		echo "install-bpf-tools: could not install ${need[*]}: if Debian no longer has these" \
			"versions, pin the ones it has in hack/install-bpf-tools.sh and run make generate" >&2
		exit 1
	fi
fi

got=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9.]*\).*/\1/p' | head -n1 || true)
if [[ $got != "$CLANG_VERSION" ]]; then
	echo "install-bpf-tools: clang ${got:-is missing}${got:+ is here}, but the committed eBPF objects" \
		"were built with clang $CLANG_VERSION: run hack/install-bpf-tools.sh (Debian 12)" \
		"or, to move to another clang, see its header" >&2
	exit 1
fi
if [[ $(have libbpf-dev) != "$LIBBPF_DEB" ]]; then
	echo "install-bpf-tools: libbpf-dev $(have libbpf-dev) is here, but the committed eBPF objects" \
		"were built with libbpf-dev $LIBBPF_DEB: run hack/install-bpf-tools.sh" >&2
	exit 1
fi
