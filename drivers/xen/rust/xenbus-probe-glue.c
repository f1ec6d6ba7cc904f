// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust xenstore bring-up (xenbus_probe.rs, XEN_XENBUS_RUST),
 * which replaces drivers/xen/xenbus/xenbus_probe.c.
 *
 * Everything here is what Rust in this kernel cannot express, and nothing
 * else:
 * - the four data symbols other C files use (xenbus_comms.c, xenbus_xs.c,
 *   xenbus_dev_{front,back}end.c, xenfs, sys-hypervisor.c): the xenstore
 *   event channel, the ring's address, the kind of xenstore and whether it
 *   is up;
 * - the xenstore notifier chain (BLOCKING_NOTIFIER_HEAD is a static
 *   initialiser) and the resume notifier, tables the notifier code keeps
 *   pointers to;
 * - the postcore and device initcalls (module! only makes device
 *   initcalls, and xenbus_ring_ops_init() is __init), as __init shells;
 * - EXPORT_SYMBOL_GPL, with the real prototypes in scope.
 */

#define pr_fmt(fmt) "xenbus: " fmt

#include <linux/export.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/notifier.h>

#include <xen/events.h>
#include <xen/xen.h>
#include <xen/xenbus.h>
#include <xen/xen-ops.h>

#include "xenbus-glue.h"

int xen_store_evtchn;
EXPORT_SYMBOL_GPL(xen_store_evtchn);

struct xenstore_domain_interface *xen_store_interface;
EXPORT_SYMBOL_GPL(xen_store_interface);

enum xenstore_init xen_store_domain_type;
EXPORT_SYMBOL_GPL(xen_store_domain_type);

/* Whether xenstored is up: set once by the Rust xenbus_probe(). */
int xenstored_ready;

BLOCKING_NOTIFIER_HEAD(xen_xenbus_store_chain);

struct notifier_block xen_xenbus_resume_nb = {
	.notifier_call = xen_xenbus_resume_cb,
};

EXPORT_SYMBOL_GPL(register_xenstore_notifier);
EXPORT_SYMBOL_GPL(unregister_xenstore_notifier);
EXPORT_SYMBOL_GPL(xen_set_callback_via);

static int __init xenbus_init(void)
{
	if (!xen_domain())
		return -ENODEV;

	xenbus_ring_ops_init();
	return xen_xenbus_init();
}
postcore_initcall(xenbus_init);

static int __init xenbus_probe_initcall(void)
{
	return xen_xenbus_probe_initcall();
}
device_initcall(xenbus_probe_initcall);

MODULE_LICENSE("GPL");
