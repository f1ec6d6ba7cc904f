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
	. /usr/share/xr/domU-tests.sh
	run_tests domU domU_tests
fi
# The domU half of the demo kselftest (or of the demo, or of the benchmark); dom0 runs the other
# half at the same time.
echo "XR-KSFT-BEGIN xen_demo"
XEN_DEMO_MODE=$XR_MODE XEN_DEMO_MODDIR=/lib/modules/xr sh /usr/share/xr/xen_demo.sh
echo "XR-KSFT-END xen_demo rc=$?"
echo "XR-DONE domU"
poweroff -f
