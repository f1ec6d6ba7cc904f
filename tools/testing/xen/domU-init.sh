#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the domU initramfs: run the domU tests, report, power off.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
. /etc/xr/params
. /usr/share/xr/lib.sh

stage domU-init
if [ "$XR_MODE" = test ]; then
	kunit_module xen_xenstore_kunit rust_xen_xenstore
	gnttab_kunit
	. /usr/share/xr/domU-tests.sh
	run_tests domU domU_tests
fi
if [ "$XR_MODE" = test ]; then
	# The checkers' own proof: lkdtm provokes one report of each kind; the host must find each
	# inside its markers (and fails the run on any report outside them). Before the kselftests:
	# after them KFENCE's 255 objects can all be held by long-lived allocations, and lkdtm then
	# never gets one ("kfence memory never allocated").
	provoke WARNING WARNING
	provoke SLAB_FREE_DOUBLE "BUG lkdtm-heap-double_free"
	provoke KFENCE_READ_AFTER_FREE "BUG: KFENCE: use-after-free"
fi
# The stock PV drivers (and save/restore) first, then the demo pair; dom0 runs the other halves.
if [ "$XR_MODE" = test ] && ksft_wanted xen_pv; then
	echo "XR-KSFT-BEGIN xen_pv"
	XEN_PV_XENBUS=$XR_XENBUS XEN_PV_XENBUS_MANY=$XR_XENBUS_MANY XEN_PV_RACE_CYCLES=$XR_RACE_CYCLES XEN_PV_MODDIR=/lib/modules/xr XEN_PV_TIMEOUT=$XR_SYNC_TIMEOUT sh /usr/share/xr/xen_pv.sh
	echo "XR-KSFT-END xen_pv rc=$?"
fi
if ksft_wanted xen_demo; then
	echo "XR-KSFT-BEGIN xen_demo"
	XEN_DEMO_MODE=$XR_MODE XEN_DEMO_CYCLES=$XR_DEMO_CYCLES XEN_DEMO_BENCH_ROUNDS=$XR_BENCH_ROUNDS XEN_DEMO_MODDIR=/lib/modules/xr XEN_DEMO_TIMEOUT=$XR_SYNC_TIMEOUT sh /usr/share/xr/xen_demo.sh
	echo "XR-KSFT-END xen_demo rc=$?"
fi
echo "XR-DONE domU"
poweroff -f
