#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the bench kernels (build-variant.sh): the test kernel with its checkers off
# (tools/testing/xen/bench.config), once with the Rust cores in $XR_CACHE/obj-bench and once with
# the C cores in $XR_CACHE/obj-bench-c. `make bench` boots the first as dom0 and domU and the second
# as the side-by-side domU2, so that its Rust-against-C ratios are those of the code, not of the
# checkers' bookkeeping. The first time, obj-bench is seeded from the test kernel (most of it is
# rebuilt: lockdep's switch reaches every file that takes a lock) and obj-bench-c from obj-bench
# (only the cores are rebuilt). Exits non-zero on a failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cfg=$XR_TOP/tools/testing/xen
xr_step "bench kernels: the test kernel without its checkers, Rust cores and C cores (~10 min the first time)" >&2
bash "$XR_TOP/tooling/build-variant.sh" "bench kernel (Rust core)" "$XR_CACHE/obj-bench" "$XR_OBJ" \
	"$cfg/bench.config" || exit 1
bash "$XR_TOP/tooling/build-variant.sh" "bench kernel (C core)" "$XR_CACHE/obj-bench-c" \
	"$XR_CACHE/obj-bench" "$cfg/bench.config" "$cfg/c-core.config" || exit 1
diff <(cut -f2- "$XR_CACHE/obj-bench/Module.symvers" | sort) \
	<(cut -f2- "$XR_CACHE/obj-bench-c/Module.symvers" | sort) >"$XR_LOGS/symbols-bench.diff" || {
	echo "fail exported symbols: the two bench kernels differ (see $XR_LOGS/symbols-bench.diff)"
	exit 1
}
