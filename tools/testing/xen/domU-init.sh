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
kunit_module xen_xenstore_kunit rust_xen_xenstore
. /usr/share/xr/domU-tests.sh
run_tests domU domU_tests
echo "XR-DONE domU"
poweroff -f
