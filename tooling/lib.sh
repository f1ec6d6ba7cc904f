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

# xr_configure OBJ FRAGMENT LOG: make OBJ/.config from `tinyconfig` plus FRAGMENT and check that every
# line of FRAGMENT holds afterwards. Redone only when its inputs change: the fragment and every
# Kconfig file the overlay or patches touch.
xr_configure() {
	local obj=$1 fragment=$2 log=$3 inputs bad=0 line sym got
	local -a mk=(make -C "$XR_SRC" O="$obj" "${XR_MAKE_VARS[@]}")
	mkdir -p "$obj"
	inputs=$( (cat "$fragment"; cd "$XR_SRC" && grep -E '(^|/)Kconfig[^/]*$' .xr-managed | xargs -r cat) | sha256sum | cut -d' ' -f1)
	if [ -f "$obj/.config" ] && [ "$(cat "$obj/.xr-config-inputs" 2>/dev/null)" = "$inputs" ]; then
		xr_step "  .config up to date"
		return 0
	fi
	"${mk[@]}" -s tinyconfig >"$log" 2>&1 || { tail -20 "$log"; xr_die "tinyconfig failed"; }
	"$XR_SRC/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$fragment" >>"$log" 2>&1
	"${mk[@]}" -s olddefconfig >>"$log" 2>&1 || { tail -20 "$log"; xr_die "olddefconfig failed"; }
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) sym=${line%%=*} ;;
		"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *} ;;
		*) continue ;;
		esac
		got=$(grep -E "^$sym=|^# $sym is not set" "$obj/.config" || echo "$sym undefined")
		# A symbol whose dependencies are off is not even listed: that is "not set" too.
		[ "$got" = "$sym undefined" ] && [ "$line" = "# $sym is not set" ] && continue
		[ "$got" = "$line" ] || { echo "  config: want '$line', got '$got'" >&2; bad=1; }
	done <"$fragment"
	[ $bad = 0 ] || { rm -f "$obj/.xr-config-inputs"; xr_die "$(basename "$fragment") did not apply (a dependency is missing; see $log)"; }
	echo "$inputs" >"$obj/.xr-config-inputs"
	xr_step "  .config regenerated; every line of $(basename "$fragment") holds"
}
