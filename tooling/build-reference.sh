#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the reference kernel: the test kernel with the Xen core pieces in C (upstream's), in
# $XR_CACHE/obj-c, from tools/testing/xen/c-core.config over xen-rust.config. The first time it is
# seeded with a copy of the test kernel's build, so that only what the switch of core changes is
# rebuilt (the Rust crates, whose cfgs change, and the swapped objects). With clippy, as the test
# kernel: clippy-driver's code generation differs from rustc's (it emits other kernel crate
# functions, which are then exported), and the two kernels must differ only in their cores. Then
# check that both export the same symbols, with the same licences and namespaces: the Rust cores
# must be drop-in replacements.
# Prints `pass ...`/`fail ...` lines on stdout for check.sh, progress on stderr; exits non-zero on a
# failure (for `make reference` and `make bench`).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
JOBS=${JOBS:-$(nproc)}
OBJC=$XR_CACHE/obj-c
log=$XR_LOGS/build-reference.log
mkdir -p "$XR_LOGS"

# The fragment: xen-rust.config without the symbols c-core.config sets, then c-core.config.
frag=$XR_CACHE/xen-c-core.config
over=$XR_TOP/tools/testing/xen/c-core.config
syms=$(grep -oE 'CONFIG_[A-Z0-9_]+' "$over" | sort -u)
grep -vwF -f <(echo "$syms") "$XR_TOP/tools/testing/xen/xen-rust.config" >"$frag.new"
cat "$over" >>"$frag.new"
cmp -s "$frag.new" "$frag" 2>/dev/null && rm "$frag.new" || mv "$frag.new" "$frag"

if [ ! -f "$OBJC/.config" ] && [ -f "$XR_OBJ/vmlinux" ]; then
	xr_step "  seeding $OBJC with a copy of the test kernel's build" >&2
	rm -rf "$OBJC.tmp" && cp -a "$XR_OBJ" "$OBJC.tmp" && rm -f "$OBJC.tmp/.xr-config-inputs" &&
		mv "$OBJC.tmp" "$OBJC"
	# The host tools (objtool, fixdep) record their dependencies with absolute paths: point them at
	# the copy, or objtool is rebuilt, and every object after it.
	grep -rlF --include='*.cmd' --include='*.d' "$XR_OBJ/" "$OBJC" | xargs -r sed -i "s|$XR_OBJ/|$OBJC/|g"
fi
if ! (xr_configure "$OBJC" "$frag" "$XR_LOGS/config-reference.log") >&2; then
	echo "fail reference kernel (C core): configuration (see $XR_LOGS/config-reference.log)"
	exit 1
fi
start=$(xr_now)
xr_step "  make -j$JOBS bzImage vmlinux modules in $OBJC (log: $log)" >&2
if ! make -C "$XR_SRC" O="$OBJC" "${XR_MAKE_VARS[@]}" -j"$JOBS" bzImage vmlinux modules >"$log" 2>&1; then
	grep -E -B2 -A8 'error(\[E[0-9]+\])?:|Error [0-9]' "$log" | head -40 >&2
	echo "fail reference kernel (C core) builds (see $log)"
	exit 1
fi
xr_step "  reference kernel built in $(( $(xr_now) - start )) s" >&2
echo "pass reference kernel (C core) builds"

# Module.symvers: CRC, symbol, module, export type, namespace. The CRCs are 0 (no MODVERSIONS).
diff <(cut -f2- "$XR_OBJ/Module.symvers" | sort) <(cut -f2- "$OBJC/Module.symvers" | sort) \
	>"$XR_LOGS/symbols.diff"
if [ -s "$XR_LOGS/symbols.diff" ]; then
	echo "fail exported symbols: the Rust-core kernel and the C-core kernel differ (see $XR_LOGS/symbols.diff)"
	head -20 "$XR_LOGS/symbols.diff" >&2
	exit 1
else
	n=$(grep -c . "$XR_OBJ/Module.symvers")
	echo "pass exported symbols: the Rust-core and C-core kernels export the same $n symbols, licences and namespaces"
fi
