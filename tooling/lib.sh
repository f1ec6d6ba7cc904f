# SPDX-License-Identifier: GPL-2.0
# Shared settings and helpers for the project tooling (sourced, not run).

# Where everything that is not source lives. Outside the git work tree so that a fresh clone on the same
# machine reuses the pristine source and the kernel build; override with XR_CACHE=... to isolate a run.
# cargo (for bindgen-cli) comes with the machine's rustup toolchain; make sure it is found even
# where the environment does not put it on PATH.
export PATH="$HOME/.cargo/bin:$PATH"

XR_CACHE=${XR_CACHE:-/var/cache/xen-rust}
XR_TOP=${XR_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
XR_PRISTINE=$XR_CACHE/pristine        # linux-source-7.3.x, unpacked once, never modified
XR_SRC=$XR_CACHE/linux                # pristine + overlay + patches (kept in sync file by file)
XR_OBJ=$XR_CACHE/obj                  # kbuild O= directory
XR_XEN=$XR_CACHE/xen                  # Xen hypervisor and extracted xen-utils
XR_LOGS=${XR_LOGS:-$XR_TOP/logs}      # logs of the last run, named in the output

# The toolchain the kernel is built with (see shared notes: the rustup rustc has no rust-src).
XR_MAKE_VARS=(ARCH=x86_64 LLVM=-19 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTFMT=/usr/bin/rustfmt
	CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN="${BINDGEN:-$HOME/.cargo/bin/bindgen}")

# Overlay directories: files here are copied to the same path in the kernel tree.
XR_OVERLAY_DIRS=(Documentation drivers include kernel rust samples tools)

xr_now() { date +%s; }
xr_step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
xr_die() { printf 'error: %s\n' "$*" >&2; exit 1; }
