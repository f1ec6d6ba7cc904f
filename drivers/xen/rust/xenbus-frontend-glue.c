// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust xenbus frontend bus (xenbus_frontend.rs,
 * XEN_XENBUS_RUST), which replaces xenbus_probe_frontend.c.
 *
 * Everything here is what Rust in this kernel cannot express, and nothing
 * else:
 * - the tables the driver core and xenbus_xs.c keep pointers to, with the
 *   Rust functions as members: the struct xen_bus_type (with its bus_type
 *   and dev_pm_ops), the watch on device/ and the xenstore notifier (7.3's
 *   kernel crate has no bus_type abstraction);
 * - the initcalls at subsys and late level (module! only makes device
 *   initcalls), as __init shells;
 * - EXPORT_SYMBOL_GPL of the Rust function, with the real prototype in
 *   scope so that the export is checked against <xen/xenbus.h>;
 * - the HVM reset's wait on the backend state
 *   (wait_event_interruptible_timeout() is a macro).
 */

#define pr_fmt(fmt) "xenbus_probe_frontend: " fmt

#include <linux/init.h>
#include <linux/jiffies.h>
#include <linux/pm.h>
#include <linux/wait.h>

#include <xen/platform_pci.h>
#include <xen/xenbus.h>

#include "xenbus-glue.h"

static const struct dev_pm_ops xenbus_pm_ops = {
	.freeze		= xenbus_dev_freeze,
	.thaw		= xenbus_dev_thaw,
	.restore	= xen_xenbus_fe_dev_restore,
};

struct xen_bus_type xen_xenbus_frontend = {
	.root = "device",
	.levels = 2,		/* device/type/<id> */
	.get_bus_id = xen_xenbus_fe_bus_id,
	.probe = xen_xenbus_fe_probe,
	.otherend_changed = xen_xenbus_fe_otherend_changed,
	.bus = {
		.name		= "xen",
		.match		= xenbus_match,
		.uevent		= xen_xenbus_fe_uevent,
		.probe		= xen_xenbus_fe_dev_probe,
		.remove		= xenbus_dev_remove,
		.shutdown	= xen_xenbus_fe_dev_shutdown,
		.dev_groups	= xenbus_dev_groups,
		.pm		= &xenbus_pm_ops,
	},
};

/* Devices appearing and vanishing. */
struct xenbus_watch xen_xenbus_fe_watch = {
	.node = "device",
	.callback = xen_xenbus_fe_root_changed,
};

struct notifier_block xen_xenbus_fe_notifier = {
	.notifier_call = xen_xenbus_fe_probe_and_watch,
};

EXPORT_SYMBOL_GPL(__xenbus_register_frontend);

static DECLARE_WAIT_QUEUE_HEAD(backend_state_wq);
static int backend_state;

void xen_xenbus_fe_reset_state_seen(int state)
{
	WRITE_ONCE(backend_state, state);
	wake_up(&backend_state_wq);
}

bool xen_xenbus_fe_reset_wait(int expected)
{
	return wait_event_interruptible_timeout(backend_state_wq,
						READ_ONCE(backend_state) == expected, 5 * HZ) > 0;
}

static int __init xenbus_probe_frontend_init(void)
{
	return xen_xenbus_fe_init();
}
subsys_initcall(xenbus_probe_frontend_init);

static int __init boot_wait_for_devices(void)
{
	if (!xen_has_pv_devices())
		return -ENODEV;

	xen_xenbus_fe_boot_wait();
	return 0;
}
late_initcall(boot_wait_for_devices);
