#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent, non-interactive setup of everything the build and the Xen harness need, as root on Debian 12.
# Every piece comes from Debian's archive or crates.io by package name. A second run takes seconds.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || xr_die "setup must run as root (it installs Debian packages)"
grep -q '^12\.' /etc/debian_version 2>/dev/null || echo "warning: not Debian 12; continuing anyway" >&2
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$XR_CACHE"

# Host packages: build toolchain, QEMU, initramfs pieces.
HOST_PKGS=(rustc-web rust-web-src rust-web-clippy rustfmt-web
	clang-19 lld-19 llvm-19 libclang-19-dev libc6-dev
	bc flex bison libelf-dev libssl-dev dwarves cpio kmod python3 rsync xz-utils gzip
	busybox-static qemu-system-x86)
# Xen pieces: never installed on the host (they would try to set up a boot loader and services), only
# downloaded and unpacked into $XR_XEN for the dom0 initramfs.
XEN_PKGS=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils
	libxenmisc4.17 libxenstore4 libxenhypfs1 libxencall1 libxendevicemodel1 libxenevtchn1
	libxenforeignmemory1 libxengnttab1 libxentoolcore1 libxentoollog1 libyajl2)

step=0
s() { step=$((step + 1)); xr_step "setup $step/6: $*"; }

s "apt sources (bookworm-backports, trixie-backports pinned to 100)"
src=/etc/apt/sources.list.d/xen-rust.sources
want_src='Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
want_pin='# Only take what we ask for from these suites.
Package: *
Pin: release n=trixie-backports
Pin-Priority: 100

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100

Package: qemu-system-x86 qemu-system-common qemu-system-data qemu-system-gui qemu-block-extra qemu-utils ipxe-qemu seabios
Pin: release n=bookworm-backports
Pin-Priority: 600'
changed=0
if [ "$(cat $src 2>/dev/null)" != "$want_src" ]; then printf '%s\n' "$want_src" >$src; changed=1; fi
if [ "$(cat /etc/apt/preferences.d/xen-rust 2>/dev/null)" != "$want_pin" ]; then
	printf '%s\n' "$want_pin" >/etc/apt/preferences.d/xen-rust; changed=1
fi
missing=()
for p in "${HOST_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
stamp=$XR_CACHE/.apt-updated
if [ $changed = 1 ] || [ ${#missing[@]} -gt 0 ] || [ ! -e "$stamp" ]; then
	xr_step "  apt-get update"
	apt-get update -qq
	touch "$stamp"
fi

s "host packages (${#HOST_PKGS[@]})"
if [ ${#missing[@]} -gt 0 ]; then
	xr_step "  installing: ${missing[*]}"
	apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	xr_step "  all installed"
fi
/usr/bin/rustc --version | grep -q '^rustc 1\.' || xr_die "/usr/bin/rustc missing after install"
[ -d /usr/lib/rustlib/src/rust/library/core ] || xr_die "rust-web-src did not provide core sources"
qv=$(qemu-system-x86_64 --version | head -1)
xr_step "  $(/usr/bin/rustc --version); clang-19 $(clang-19 --version | head -1 | grep -o '[0-9][0-9.]*' | head -1); $qv"

s "bindgen-cli from crates.io"
bg=${BINDGEN:-$HOME/.cargo/bin/bindgen}
bgv=$("$bg" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1 || true)
if [ -z "$bgv" ] || [ "$(printf '%s\n0.71.1\n' "$bgv" | sort -V | head -1)" != 0.71.1 ]; then
	xr_step "  cargo install bindgen-cli --locked (about 3.5 min on 2 cores)"
	LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install bindgen-cli --locked --quiet
	bgv=$("$bg" --version | grep -o '[0-9][0-9.]*' | head -1)
fi
xr_step "  bindgen $bgv"

s "Linux 7.3 source (linux-source-7.3 from trixie-backports)"
if [ ! -f "$XR_PRISTINE/Makefile" ]; then
	d=$XR_CACHE/dl && rm -rf "$d" && mkdir -p "$d" && { chown _apt "$d" 2>/dev/null || true; }
	xr_step "  downloading linux-source-7.3 (~170 MB)"
	(cd "$d" && apt-get download -qq linux-source-7.3)
	dpkg-deb -x "$d"/linux-source-7.3_*.deb "$d/x"
	tarball=$(ls "$d"/x/usr/src/linux-source-7.3*.tar.xz | head -1)
	[ -n "$tarball" ] || xr_die "linux-source-7.3 package holds no tarball"
	xr_step "  unpacking $(basename "$tarball")"
	rm -rf "$XR_PRISTINE.tmp" && mkdir -p "$XR_PRISTINE.tmp"
	tar -xJf "$tarball" -C "$XR_PRISTINE.tmp" --strip-components=1
	rm -rf "$XR_PRISTINE" && mv "$XR_PRISTINE.tmp" "$XR_PRISTINE"
	rm -rf "$d"
fi
kv=$(make -s -C "$XR_PRISTINE" kernelversion 2>/dev/null)
case "$kv" in 7.3|7.3.*) ;; *) xr_die "pristine source is $kv, expected 7.3.x" ;; esac
xr_step "  Linux $kv in $XR_PRISTINE"

s "Xen 4.17 hypervisor and tools (unpacked, not installed)"
if [ ! -f "$XR_XEN/.done" ]; then
	rm -rf "$XR_XEN" && mkdir -p "$XR_XEN/debs" && { chown _apt "$XR_XEN/debs" 2>/dev/null || true; }
	(cd "$XR_XEN/debs" && apt-get download -qq "${XEN_PKGS[@]}")
	for f in "$XR_XEN"/debs/*.deb; do dpkg-deb -x "$f" "$XR_XEN/root"; done
	gunzip -c "$XR_XEN"/root/boot/xen-4.17-amd64.gz >"$XR_XEN/xen.gz.unpacked"
	mv "$XR_XEN/xen.gz.unpacked" "$XR_XEN/xen"
	touch "$XR_XEN/.done"
fi
[ -x "$XR_XEN/root/usr/lib/xen-4.17/bin/xl" ] || xr_die "xl missing from $XR_XEN/root"
xr_step "  $(ls "$XR_XEN"/debs | grep -o 'xen-utils-4.17_[^_]*' | head -1) in $XR_XEN"

s "check"
command -v busybox >/dev/null || [ -x /bin/busybox ] || xr_die "busybox-static missing"
xr_step "setup done"
