# SPDX-License-Identifier: GPL-2.0
# Tests run in the PV domU (sourced by domU-init.sh).

domU_tests() {
	t "hypervisor is xen" has_line /sys/hypervisor/type '^xen$'
	t "not the initial domain" sh -c '! grep -q control_d /proc/xen/capabilities 2>/dev/null'
	t "xen frontend bus is registered" test -d /sys/bus/xen/devices
	t "xenbus frontend enumerated xrtest-0" test -e /sys/bus/xen/devices/xrtest-0
	t "frontend device nodename" has_line /sys/bus/xen/devices/xrtest-0/nodename '^device/xrtest/0$'
	t "console is the Xen hvc0" has_line /proc/consoles '^hvc0'
	t "hvc0 tty exists" test -e /sys/class/tty/hvc0
	t "insmod rust_xen_hello" insmod /lib/modules/xr/rust_xen_hello.ko
	t "rust_xen_hello in /proc/modules" module_loaded rust_xen_hello
	t "rust_xen_hello saw domU" dmesg_has "rust_xen_hello: loaded in domU (Pv guest)"
	t "rmmod rust_xen_hello" rmmod rust_xen_hello
	t "rust_xen_hello gone from /proc/modules" module_gone rust_xen_hello
	t "insmod rust_xen_xrtest" insmod /lib/modules/xr/rust_xen_xrtest.ko
	t "xrtest frontend probed, backend in dom0" \
		dmesg_has "rust_xen_xrtest: frontend probe device/xrtest/0 (backend in domain 0)"
	t "xrtest frontend reached Connected" wait_for 20 "frontend Connected" \
		has_line /sys/bus/xen/devices/xrtest-0/state '^Connected$'
	t "xrtest frontend logged the connection" dmesg_has "rust_xen_xrtest: frontend device/xrtest/0 connected"
	t "xrtest frontend published ring-ref and event-channel" \
		dmesg_has "rust_xen_xrtest: frontend device/xrtest/0: ring-ref=[0-9]* event-channel=[0-9]*"
	t "xrtest request answered over the ring (status 41 -> 42)" wait_for 10 "the response" \
		dmesg_has "rust_xen_xrtest: frontend got response id=1 op=7 status=42"
	t "xrtest no bad response" dmesg_lacks "rust_xen_xrtest: frontend got a bad response"
	# A bound xenbus driver holds its module: unbind the device first, as for C drivers.
	t "bound rust_xen_xrtest cannot be removed" sh -c '! rmmod rust_xen_xrtest'
	t "unbind xrtest-0" sh -c 'echo xrtest-0 >/sys/bus/xen/drivers/rust_xen_xrtest_front/unbind'
	t "xrtest frontend unbound" dmesg_has "rust_xen_xrtest: frontend device/xrtest/0 unbound"
	t "xrtest frontend state is Closed" wait_for 10 "frontend Closed" \
		has_line /sys/bus/xen/devices/xrtest-0/state '^Closed$'
	t "rmmod rust_xen_xrtest" rmmod rust_xen_xrtest
	t "rust_xen_xrtest gone from /proc/modules" module_gone rust_xen_xrtest
}
