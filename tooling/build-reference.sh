#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the reference kernel: the test kernel with the Xen core pieces in C (upstream's), in
# $XR_CACHE/obj-c, from tools/testing/xen/c-core.config over xen-rust.config (build-variant.sh; the
# first time seeded with a copy of the test kernel's build, so that only what the switch of core
# changes is rebuilt: the Rust crates, whose cfgs change, and the swapped objects). Then check
# that both export the same symbols, with the same licences and namespaces: the Rust cores must be
# drop-in replacements.
# Prints `pass ...`/`fail ...` lines on stdout for check.sh, progress on stderr; exits non-zero on a
# failure (for `make reference` and `make bench`).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
OBJC=$XR_CACHE/obj-c

bash "$XR_TOP/tooling/build-variant.sh" "reference kernel (C core)" "$OBJC" "$XR_OBJ" \
	"$XR_TOP/tools/testing/xen/c-core.config" || exit 1

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
