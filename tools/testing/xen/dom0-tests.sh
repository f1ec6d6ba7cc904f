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
	t "insmod rust_xen_xrtest (before the domU started)" test "$xrtest_loaded" = 1
	t "xrtest backend probed in InitWait" dmesg_has "rust_xen_xrtest: backend probe backend/xrtest/$D/0 (frontend in domain $D)"
	t "xrtest backend reached Connected" dmesg_has "rust_xen_xrtest: backend backend/xrtest/$D/0 connected"
	t "xrtest backend mapped the ring and bound the channel" \
		dmesg_has "rust_xen_xrtest: backend backend/xrtest/$D/0: mapped ring-ref=[0-9]*, bound event-channel=[0-9]*"
	t "xrtest backend answered the request" dmesg_has "rust_xen_xrtest: backend answered id=1 op=7 status=42"
	t "xrtest backend closed after the frontend left" wait_for 10 "backend closed" \
		dmesg_has "rust_xen_xrtest: backend backend/xrtest/$D/0 closed"
	t "xrtest backend state is Closed" wait_for 10 "backend Closed" \
		has_line /sys/bus/xen-backend/devices/xrtest-$D-0/state '^Closed$'
	t "unbind xrtest-$D-0" sh -c "echo xrtest-$D-0 >/sys/bus/xen-backend/drivers/rust_xen_xrtest_back/unbind"
	t "rmmod rust_xen_xrtest" rmmod rust_xen_xrtest
	t "rust_xen_xrtest gone from /proc/modules" module_gone rust_xen_xrtest
}
