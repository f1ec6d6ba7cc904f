#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# build-variant.sh NAME OBJ SEED OVER...: build a variant of the test kernel in OBJ, configured from
# tools/testing/xen/xen-rust.config with each OVER fragment (in order) replacing the lines for the
# symbols it sets. The first time, OBJ is seeded with a copy of SEED's build, so that only what the
# variant changes is rebuilt. With clippy, as the test kernel: clippy-driver's code generation
# differs from rustc's (it emits other kernel crate functions, which are then exported), and the
# variants must differ only in what their fragments say.
# Used by build-reference.sh (the C cores) and build-bench.sh (the bench kernels, checkers off).
# Prints `pass ...`/`fail ...` lines on stdout, progress on stderr; exits non-zero on a failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 4 ] || { echo "usage: $0 NAME OBJ SEED OVER..." >&2; exit 2; }
name=$1 obj=$2 seed=$3
shift 3
JOBS=${JOBS:-$(nproc)}
tag=$(basename "$obj")
log=$XR_LOGS/build-$tag.log
mkdir -p "$XR_LOGS"

frag=$XR_CACHE/xen-$tag.config
cp "$XR_TOP/tools/testing/xen/xen-rust.config" "$frag.new"
for over in "$@"; do
	syms=$(grep -oE 'CONFIG_[A-Z0-9_]+' "$over" | sort -u)
	grep -vwF -f <(echo "$syms") "$frag.new" >"$frag.tmp"
	cat "$over" >>"$frag.tmp"
	mv "$frag.tmp" "$frag.new"
done
cmp -s "$frag.new" "$frag" 2>/dev/null && rm "$frag.new" || mv "$frag.new" "$frag"

if [ ! -f "$obj/.config" ] && [ -f "$seed/vmlinux" ]; then
	xr_step "  seeding $obj with a copy of $seed" >&2
	rm -rf "$obj.tmp" && cp -a "$seed" "$obj.tmp" && rm -f "$obj.tmp/.xr-config-inputs" &&
		mv "$obj.tmp" "$obj"
	# The host tools (objtool, fixdep) record their dependencies with absolute paths: point them at
	# the copy, or objtool is rebuilt, and every object after it.
	grep -rlF --include='*.cmd' --include='*.d' "$seed/" "$obj" | xargs -r sed -i "s|$seed/|$obj/|g"
fi
if ! (xr_configure "$obj" "$frag" "$XR_LOGS/config-$tag.log") >&2; then
	echo "fail $name: configuration (see $XR_LOGS/config-$tag.log)"
	exit 1
fi
start=$(xr_now)
xr_step "  make -j$JOBS bzImage vmlinux modules in $obj (log: $log)" >&2
if ! make -C "$XR_SRC" O="$obj" "${XR_MAKE_VARS[@]}" -j"$JOBS" bzImage vmlinux modules >"$log" 2>&1; then
	grep -E -B2 -A8 'error(\[E[0-9]+\])?:|Error [0-9]' "$log" | head -40 >&2
	echo "fail $name builds (see $log)"
	exit 1
fi
xr_step "  $name built in $(( $(xr_now) - start )) s" >&2
echo "pass $name builds"
