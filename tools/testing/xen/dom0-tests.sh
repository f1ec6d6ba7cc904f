# SPDX-License-Identifier: GPL-2.0
# Tests run in dom0 after the domU has reported (sourced by dom0-init.sh).

dom0_tests() {
	# What the run claims about its bed (Xen, vCPUs, event ABI, grant layout, checkers): each
	# line fails if the bed silently lost it. They test the set-up, not the project.
	t "test bed: hypervisor is xen" has_line /sys/hypervisor/type '^xen$'
	t "test bed: dom0 has control_d capability" has_line /proc/xen/capabilities control_d
	t "test bed: xen-backend bus is registered" test -d /sys/bus/xen-backend/devices
	t "test bed: dom0 runs on 2 vCPUs" has_line /sys/devices/system/cpu/online '^0-1$'
	t "test bed: dom0 uses the $XR_DOM0_ABI event channel ABI" dmesg_has "xen:events: Using $XR_DOM0_ABI ABI"
	t "test bed: dom0 uses the v1 grant table layout (the default here)" dmesg_has "xen:grant_table: Grant tables using version 1 layout"
	bed_checkers
	t "insmod rust_xen_hello" insmod /lib/modules/xr/rust_xen_hello.ko
	t "rust_xen_hello in /proc/modules" module_loaded rust_xen_hello
	t "rust_xen_hello saw dom0" dmesg_has "rust_xen_hello: loaded in dom0 (Pv guest)"
	t "rmmod rust_xen_hello" rmmod rust_xen_hello
	t "rust_xen_hello gone from /proc/modules" module_gone rust_xen_hello
	t "rust_xen_demo_back has the autoload alias xen-backend:demo" has_alias rust_xen_demo_back xen-backend:demo
	t "xen_demo_back (C) has the same alias" has_alias xen_demo_back xen-backend:demo
	t "domU relayed its results" test "$relayed_all" = 1
	t "demo backends unloaded" sh -c "! grep -q demo_back /proc/modules"
}
