# SPDX-License-Identifier: GPL-2.0
# Tests run in the PV domU (sourced by domU-init.sh).

domU_tests() {
	# What the run claims about its bed (Xen, vCPUs, event ABI, grant layout, checkers): each
	# line fails if the bed silently lost it. They test the set-up, not the project.
	t "test bed: hypervisor is xen" has_line /sys/hypervisor/type '^xen$'
	t "test bed: not the initial domain" sh -c '! grep -q control_d /proc/xen/capabilities 2>/dev/null'
	t "test bed: xen frontend bus is registered" test -d /sys/bus/xen/devices
	t "test bed: domU runs on 2 vCPUs" has_line /sys/devices/system/cpu/online '^0-1$'
	t "test bed: domU uses the $XR_DOMU_ABI event channel ABI" dmesg_has "xen:events: Using $XR_DOMU_ABI ABI"
	t "test bed: domU uses the v2 grant table layout (grant_table.version=2)" dmesg_has "xen:grant_table: Grant tables using version 2 layout"
	bed_checkers
	t "test bed: console is the Xen hvc0" has_line /proc/consoles '^hvc0'
	t "insmod rust_xen_hello" insmod /lib/modules/xr/rust_xen_hello.ko
	t "rust_xen_hello in /proc/modules" module_loaded rust_xen_hello
	t "rust_xen_hello saw domU" dmesg_has "rust_xen_hello: loaded in domU (Pv guest)"
	t "rmmod rust_xen_hello" rmmod rust_xen_hello
	t "rust_xen_hello gone from /proc/modules" module_gone rust_xen_hello
	t "rust_xen_demo_front has the autoload alias xen:demo" has_alias rust_xen_demo_front xen:demo
	t "xen_demo_front (C) has the same alias" has_alias xen_demo_front xen:demo
}
