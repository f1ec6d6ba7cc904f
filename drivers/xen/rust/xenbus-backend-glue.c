// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust xenbus backend bus (xenbus_backend.rs,
 * XEN_XENBUS_RUST), which replaces xenbus_probe_backend.c.
 *
 * Everything here is what Rust in this kernel cannot express, and nothing
 * else:
 * - the tables the driver core and xenbus_xs.c keep pointers to, with the
 *   Rust functions as members: the struct xen_bus_type (with its bus_type),
 *   the watch on backend/ and the xenstore notifier (7.3's kernel crate has
 *   no bus_type abstraction);
 * - the initcall at subsys level (module! only makes device initcalls), as
 *   an __init shell;
 * - EXPORT_SYMBOL_GPL of the Rust functions, with the real prototypes in
 *   scope so that the exports are checked against <xen/xenbus.h>.
 */

#define pr_fmt(fmt) "xenbus: " fmt

#include <linux/init.h>

#include <xen/xenbus.h>

#include "xenbus-glue.h"

struct xen_bus_type xen_xenbus_backend = {
	.root = "backend",
	.levels = 3,		/* backend/type/<frontend>/<id> */
	.get_bus_id = xen_xenbus_be_bus_id,
	.probe = xen_xenbus_be_probe,
	.otherend_will_handle = xen_xenbus_be_otherend_will_handle,
	.otherend_changed = xen_xenbus_be_otherend_changed,
	.bus = {
		.name		= "xen-backend",
		.match		= xenbus_match,
		.uevent		= xen_xenbus_be_uevent,
		.probe		= xenbus_dev_probe,
		.remove		= xenbus_dev_remove,
		.dev_groups	= xenbus_dev_groups,
	},
};

/* Devices appearing and vanishing. */
struct xenbus_watch xen_xenbus_be_watch = {
	.node = "backend",
	.callback = xen_xenbus_be_root_changed,
};

struct notifier_block xen_xenbus_be_notifier = {
	.notifier_call = xen_xenbus_be_probe_and_watch,
};

EXPORT_SYMBOL_GPL(xenbus_dev_is_online);
EXPORT_SYMBOL_GPL(__xenbus_register_backend);

static int __init xenbus_probe_backend_init(void)
{
	return xen_xenbus_be_init();
}
subsys_initcall(xenbus_probe_backend_init);
