// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust xenbus device model (xenbus_device.rs,
 * XEN_XENBUS_RUST), which replaces drivers/xen/xenbus/xenbus_device.c.
 *
 * Everything here is what Rust in this kernel cannot express, and nothing
 * else:
 * - the sysfs attribute tables of every xenbus device (struct
 *   device_attribute, attribute_group), which sysfs keeps pointers to and
 *   whose show and store are the Rust functions: the default group
 *   (nodename, devtype, modalias, state), which the buses name in their
 *   bus_type, and the "xenbus" group of event counters that probe adds;
 * - EXPORT_SYMBOL_GPL of the Rust functions, with the real prototypes in
 *   scope so that the exports are checked against xenbus.h.
 */

#include <linux/device.h>
#include <linux/export.h>
#include <linux/sysfs.h>

#include <xen/xenbus.h>

#include "xenbus-glue.h"

#define XEN_XENBUS_ATTR(_name, _mode, _store)				\
	static struct device_attribute xen_xenbus_attr_##_name =	\
		__ATTR(_name, _mode, xen_xenbus_attr_show, _store)

XEN_XENBUS_ATTR(nodename, 0444, NULL);
XEN_XENBUS_ATTR(devtype, 0444, NULL);
XEN_XENBUS_ATTR(modalias, 0444, NULL);
XEN_XENBUS_ATTR(state, 0444, NULL);

static struct attribute *xenbus_dev_attrs[] = {
	&xen_xenbus_attr_nodename.attr,
	&xen_xenbus_attr_devtype.attr,
	&xen_xenbus_attr_modalias.attr,
	&xen_xenbus_attr_state.attr,
	NULL,
};

static const struct attribute_group xenbus_dev_group = {
	.attrs = xenbus_dev_attrs,
};

const struct attribute_group *xenbus_dev_groups[] = {
	&xenbus_dev_group,
	NULL,
};
EXPORT_SYMBOL_GPL(xenbus_dev_groups);

/* The event counters the event channel core keeps per device (XSA-332). */
XEN_XENBUS_ATTR(event_channels, 0444, NULL);
XEN_XENBUS_ATTR(events, 0444, NULL);
XEN_XENBUS_ATTR(spurious_events, 0444, NULL);
XEN_XENBUS_ATTR(jiffies_eoi_delayed, 0444, NULL);
XEN_XENBUS_ATTR(spurious_threshold, 0644, xen_xenbus_attr_store);

static struct attribute *xenbus_stat_attrs[] = {
	&xen_xenbus_attr_event_channels.attr,
	&xen_xenbus_attr_events.attr,
	&xen_xenbus_attr_spurious_events.attr,
	&xen_xenbus_attr_jiffies_eoi_delayed.attr,
	&xen_xenbus_attr_spurious_threshold.attr,
	NULL,
};

const struct attribute_group xen_xenbus_stat_group = {
	.name = "xenbus",
	.attrs = xenbus_stat_attrs,
};

EXPORT_SYMBOL_GPL(xenbus_match);
EXPORT_SYMBOL_GPL(xenbus_read_otherend_details);
EXPORT_SYMBOL_GPL(xenbus_otherend_changed);
EXPORT_SYMBOL_GPL(xenbus_dev_probe);
EXPORT_SYMBOL_GPL(xenbus_dev_remove);
EXPORT_SYMBOL_GPL(xenbus_register_driver_common);
EXPORT_SYMBOL_GPL(xenbus_unregister_driver);
EXPORT_SYMBOL_GPL(xenbus_probe_node);
EXPORT_SYMBOL_GPL(xenbus_probe_devices);
EXPORT_SYMBOL_GPL(xenbus_dev_changed);
EXPORT_SYMBOL_GPL(xenbus_dev_freeze);
EXPORT_SYMBOL_GPL(xenbus_dev_restore);
EXPORT_SYMBOL_GPL(xenbus_dev_thaw);
