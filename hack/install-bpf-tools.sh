#!/usr/bin/env bash
# Installs what `make generate` needs to recompile the eBPF programs: clang,
# llvm, libbpf headers and bpftool, from Debian. Building Penny does not need
# them: the compiled objects are committed.
set -euo pipefail
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev bpftool
