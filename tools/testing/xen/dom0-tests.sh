# SPDX-License-Identifier: GPL-2.0
# Tests run in dom0 after the domU has reported (sourced by dom0-init.sh).

dom0_tests() {
	t "hypervisor is xen" has_line /sys/hypervisor/type '^xen$'
	t "dom0 has control_d capability" has_line /proc/xen/capabilities control_d
	t "xen-backend bus is registered" test -d /sys/bus/xen-backend/devices
	t "xenbus backend enumerated xrtest-$D-0" test -e /sys/bus/xen-backend/devices/xrtest-$D-0
	t "backend device nodename" has_line /sys/bus/xen-backend/devices/xrtest-$D-0/nodename \
		"^backend/xrtest/$D/0\$"
	t "insmod rust_xen_hello" insmod /lib/modules/xr/rust_xen_hello.ko
	t "rust_xen_hello in /proc/modules" module_loaded rust_xen_hello
	t "rust_xen_hello saw dom0" dmesg_has "rust_xen_hello: loaded in dom0 (Pv guest)"
	t "rmmod rust_xen_hello" rmmod rust_xen_hello
	t "rust_xen_hello gone from /proc/modules" module_gone rust_xen_hello
	t "domU relayed its results" test "$relayed_all" = 1
}
