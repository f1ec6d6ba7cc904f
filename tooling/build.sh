#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Assemble the tree (pristine Linux 7.3 + overlay + patches), configure it from the fragment, and build
# bzImage, vmlinux and modules with LLVM 19 and /usr/bin/rustc under clippy. Incremental: only files
# whose content changed are rewritten, and .config is regenerated only when its inputs change.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FRAGMENT=$XR_TOP/tools/testing/xen/xen-rust.config
JOBS=${JOBS:-$(nproc)}
mkdir -p "$XR_OBJ" "$XR_LOGS"
log=$XR_LOGS/build.log

xr_step "build 1/3: assemble the tree"
python3 "$XR_TOP/tooling/tree.py" sync

kmake() { make -C "$XR_SRC" O="$XR_OBJ" "${XR_MAKE_VARS[@]}" "$@"; }

xr_step "build 2/3: configure (tinyconfig + $(basename "$FRAGMENT"))"
xr_configure "$XR_OBJ" "$FRAGMENT" "$XR_LOGS/config.log"

# Our Rust files are linted (clippy runs in every build through CLIPPY=1, then rustdoc) whenever their
# content changes: touching them makes this build recompile them, so their warnings are in this log.
mapfile -t rsfiles < <(grep '\.rs$' "$XR_SRC/.xr-managed")
lintkey=$(cd "$XR_SRC" && cat "${rsfiles[@]}" /dev/null | sha256sum | cut -d' ' -f1)
relint=0
if [ "$(cat "$XR_OBJ/.xr-lint-clean" 2>/dev/null)" != "$lintkey" ]; then
	relint=1
	rm -f "$XR_OBJ/.xr-lint-clean"
	(cd "$XR_SRC" && touch "${rsfiles[@]}")
fi

xr_step "build 3/3: make -j$JOBS bzImage vmlinux modules (CLIPPY=1; log: $log; ~13 min from scratch)"
start=$(xr_now)
if ! kmake -j"$JOBS" bzImage vmlinux modules >"$log" 2>&1; then
	grep -E -B2 -A8 'error(\[E[0-9]+\])?:|Error [0-9]' "$log" | head -60
	xr_die "kernel build failed (full log: $log)"
fi
# Warnings in our own Rust code are picked out below; upstream ones are only counted.
n=$(grep -c "^warning" "$log" || true); [ "$n" = 0 ] || xr_step "  $n warning lines in the build log (upstream ones included; ours are checked below)"
xr_step "  built in $(( $(xr_now) - start )) s: $XR_OBJ/arch/x86/boot/bzImage, $XR_OBJ/vmlinux"

status=$XR_LOGS/lint-status
if [ $relint = 1 ]; then
	xr_step "lint: clippy and rustdoc on ${#rsfiles[@]} Rust files of ours (log: $XR_LOGS/rustdoc.log)"
	: >"$status"
	if python3 "$XR_TOP/tooling/lint_diagnostics.py" "$log" "$XR_SRC" "${rsfiles[@]}" >"$XR_LOGS/clippy.txt"; then
		echo "pass clippy: no warnings in our Rust code" >>"$status"
	else
		echo "fail clippy: warnings in our Rust code (see $XR_LOGS/clippy.txt)" >>"$status"
		cat "$XR_LOGS/clippy.txt"
	fi
	# objtool names Rust functions by their mangled path: ours contain `3xen` (kernel::xen) or
	# `rust_xen` (the samples).
	if grep 'warning: objtool' "$log" | grep -E '3xen|rust_xen' >"$XR_LOGS/objtool.txt"; then
		echo "fail objtool: warnings in our Rust code (see $XR_LOGS/objtool.txt)" >>"$status"
	else
		echo "pass objtool: no warnings in our Rust code" >>"$status"
	fi
	if ! kmake -j"$JOBS" rustdoc >"$XR_LOGS/rustdoc.log" 2>&1; then
		echo "fail rustdoc: make rustdoc failed (see $XR_LOGS/rustdoc.log)" >>"$status"
	elif python3 "$XR_TOP/tooling/lint_diagnostics.py" "$XR_LOGS/rustdoc.log" "$XR_SRC" "${rsfiles[@]}" >"$XR_LOGS/rustdoc.txt"; then
		echo "pass rustdoc: no warnings in our Rust docs" >>"$status"
	else
		echo "fail rustdoc: warnings in our Rust docs (see $XR_LOGS/rustdoc.txt)" >>"$status"
		cat "$XR_LOGS/rustdoc.txt"
	fi
	grep -q '^fail' "$status" || echo "$lintkey" >"$XR_OBJ/.xr-lint-clean"
	cp "$status" "$XR_OBJ/.xr-lint-status"
else
	cp "$XR_OBJ/.xr-lint-status" "$status" 2>/dev/null || true
	xr_step "lint: our Rust files are unchanged since their last clean clippy and rustdoc run"
fi
