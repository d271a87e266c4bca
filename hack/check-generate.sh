#!/usr/bin/env bash
# make check-generate: checks that the committed bpf2go output (bpf/*_bpfel.go
# and bpf/*_bpfel.o) is what the C sources in bpf/ compile to, so that a
# change to a .bpf.c file or penny.h without `make generate` fails.
#
# Installs the pinned clang, llvm and libbpf headers first
# (hack/install-bpf-tools.sh), copies bpf/ without its generated files to
# _output/check-generate/bpf (inside the module, so `go tool bpf2go` runs
# at the version go.mod pins; the go tool ignores _output), regenerates there
# and compares. bpf2go maps the source directory to "." in the debug info,
# so the output does not depend on where the checkout is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# sudo resets PATH: find go where Debian's Go tarball install puts it.
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}

hack/install-bpf-tools.sh

work=_output/check-generate
rm -rf "$work"
mkdir -p "$work"
cp -R bpf "$work/"
rm -f "$work"/bpf/*_bpfel.* "$work"/bpf/*_bpfeb.*
# Only the flags in gen.go: no compiler or flags from the environment.
(cd "$work/bpf" && env -u BPF2GO_CC -u BPF2GO_CFLAGS -u BPF2GO_STRIP -u BPF2GO_MAKEBASE "$GO" generate .)

generated() { (cd "$1" && ls -1 -- *_bpfel.* *_bpfeb.* 2>/dev/null || true) | sort; }
bad=0
while read -r f; do
	a=bpf/$f b=$work/bpf/$f
	if [[ ! -e $a ]]; then
		echo "check-generate: bpf/$f is generated from the C sources but not committed"
		bad=1
	elif [[ ! -e $b ]]; then
		echo "check-generate: bpf/$f is committed but no longer generated"
		bad=1
	elif ! cmp -s "$a" "$b"; then
		bad=1
		case $f in
		*.go)
			echo "check-generate: bpf/$f differs from what bpf2go generates:"
			diff -u --label "committed bpf/$f" --label "generated bpf/$f" "$a" "$b" | head -n 40 || true
			;;
		*)
			echo "check-generate: bpf/$f differs from what clang compiles" \
				"($(stat -c %s "$a") bytes committed, $(stat -c %s "$b") generated)"
			if command -v llvm-objdump >/dev/null; then
				# The instructions that differ, when any do (else the
				# difference is in data, maps or BTF).
				diff -u --label "committed bpf/$f" --label "generated bpf/$f" \
					<(llvm-objdump -d --no-show-raw-insn "$a" | tail -n +3) \
					<(llvm-objdump -d --no-show-raw-insn "$b" | tail -n +3) | head -n 20 || true
			fi
			;;
		esac
	fi
done < <(sort -u <(generated bpf) <(generated "$work/bpf"))
if [[ $bad != 0 ]]; then
	echo "check-generate: the committed eBPF objects do not match bpf/*.c and bpf/*.h:" \
		"run make generate and commit bpf/ (regenerated output is in $work/bpf)" >&2
	exit 1
fi
rm -rf "$work"
echo "check-generate: bpf/ matches its C sources"
