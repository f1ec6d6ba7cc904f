#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build gates a maintainer runs before taking the series: configurations other than the test
# kernel's, built as far as the series matters to them, without clippy (the test kernel's build
# lints). Each gate prints `pass NAME` or `fail NAME (log)` on stdout for check.sh. Incremental:
# each gate keeps its own O= directory under $XR_CACHE.
#   (a) Rust and no Xen at all: `make vmlinux modules` (tools/testing/xen/gate-rust-no-xen.config);
#       the helpers and the kernel crate must neither fail to compile nor leave Xen symbols unresolved
#   (b) a PV domU without XEN_DOM0 and XEN_BACKEND, only modular frontends, and the Rust event
#       channel core over the C ABIs: `make vmlinux modules` (tools/testing/xen/gate-domU.config)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
JOBS=${JOBS:-$(nproc)}
# The test kernel's toolchain, without clippy.
XR_MAKE_VARS=("${XR_MAKE_VARS[@]/CLIPPY=1/CLIPPY=}")

gate() {
	local name=$1 fragment=$XR_TOP/tools/testing/xen/$2 desc=$3 obj=$XR_CACHE/gate-$1 log=$XR_LOGS/gate-$1.log
	shift 3
	local start
	start=$(xr_now)
	xr_step "gate $name: $desc (log: $log)" >&2
	if ! (xr_configure "$obj" "$fragment" "$XR_LOGS/gate-$name-config.log") >&2; then
		echo "fail build gate $name: $desc: configuration (see $XR_LOGS/gate-$name-config.log)"
		return
	fi
	if make -C "$XR_SRC" O="$obj" "${XR_MAKE_VARS[@]}" -j"$JOBS" "$@" >"$log" 2>&1; then
		xr_step "  gate $name built in $(( $(xr_now) - start )) s" >&2
		echo "pass build gate $name: $desc"
	else
		grep -E -B2 -A8 'error(\[E[0-9]+\])?:|Error [0-9]|undefined' "$log" | head -40 >&2
		echo "fail build gate $name: $desc (see $log)"
	fi
}

gate rust-no-xen gate-rust-no-xen.config "CONFIG_RUST=y without Xen builds and links" vmlinux modules
gate domU gate-domU.config "a domU-only kernel (no XEN_DOM0, no XEN_BACKEND; Rust event core, C ABIs) builds and links" vmlinux modules
