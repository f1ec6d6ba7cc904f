# SPDX-License-Identifier: GPL-2.0
#
# Rust for Xen on Linux 7.3. This repository is an overlay on linux-source-7.3: see README.md.
#
#   make check    setup + build + lint + series + Xen harness; ends with `N passed, N failed`
#   make check-full  the same with the kselftests' repeated cycles in full (about 7 min longer)
#   make demo     boot Xen, dom0 and domU; the Rust demo pair's exchange, traced on both sides
#   make bench    round trips per second of the four Rust/C demo pairings, batch 1 and 32, and
#                 grant cycles: one boot under QEMU -icount (deterministic), one on wall time
#                 (noisy); and a domU on the Rust cores side by side with a domU2 on the C cores;
#                 on the bench kernels (checkers off, obj-bench and obj-bench-c: ~10 min to build
#                 the first time); logs/bench.txt, bench.json, bench.svg
#   make soak     the Rust demo pair's connect/disconnect cycles, 1000 of each kind (SOAK_CYCLES=N),
#                 with grants, event channels, module refcounts and slab memory checked afterwards;
#                 SOAK_OBJ=$XR_CACHE/obj-bench: on the bench kernel, without the checkers
#   make setup    install the toolchain, QEMU, Xen and the Linux source (idempotent)
#   make build    assemble the tree and build the kernel (incremental)
#   make reference  the reference kernel: the same with the Xen core pieces in C (obj-c)
#   make series   export everything as a `git format-patch` series in out/series and check it applies
#   make clean    remove logs/ and out/;  make distclean  also the build in $(XR_CACHE)

XR_CACHE ?= /var/cache/xen-rust
export XR_CACHE

.PHONY: all check check-full demo bench bench-kernels soak setup build reference series clean distclean
all: build

check:
	@bash tooling/check.sh

check-full:
	@XR_FULL=1 bash tooling/check.sh

setup:
	@bash tooling/setup.sh

build: setup
	@bash tooling/build.sh

demo: build
	@python3 tools/testing/xen/xen-test.py demo --obj $(XR_CACHE)/obj --xen $(XR_CACHE)/xen/xen \
		--xen-root $(XR_CACHE)/xen/root --logs logs --expect-kselftest xen_demo

# The reference kernel (the Xen core pieces in C), which the bench's second frontend domain boots.
reference: build
	@bash tooling/build-reference.sh

# The bench kernels: the test kernel with its checkers off, Rust cores (obj-bench) and C cores
# (obj-bench-c, the side-by-side domU2's).
bench-kernels: build
	@bash tooling/build-bench.sh

bench: bench-kernels
	@python3 tools/testing/xen/xen-test.py bench --obj $(XR_CACHE)/obj-bench --xen $(XR_CACHE)/xen/xen \
		--xen-root $(XR_CACHE)/xen/root --logs logs --expect-kselftest xen_demo \
		--domu2-obj $(XR_CACHE)/obj-bench-c

# The soak boots the test kernel, checkers and all (a detach/attach cycle about 1.8 s here);
# SOAK_OBJ=$(XR_CACHE)/obj-bench boots the Rust-core bench kernel instead (no checkers, about
# 0.8 s), built first if need be.
SOAK_CYCLES ?= 1000
SOAK_OBJ ?= $(XR_CACHE)/obj
soak: $(if $(filter $(XR_CACHE)/obj-bench,$(SOAK_OBJ)),bench-kernels,build)
	@python3 tools/testing/xen/xen-test.py soak --obj $(SOAK_OBJ) --xen $(XR_CACHE)/xen/xen \
		--xen-root $(XR_CACHE)/xen/root --logs logs --expect-kselftest xen_demo --cycles $(SOAK_CYCLES)

series: build
	@python3 tooling/tree.py export out/series
	@python3 tooling/tree.py verify out/series

clean:
	rm -rf logs out

distclean: clean
	rm -rf $(XR_CACHE)/obj $(XR_CACHE)/obj-c $(XR_CACHE)/obj-bench $(XR_CACHE)/obj-bench-c $(XR_CACHE)/linux
