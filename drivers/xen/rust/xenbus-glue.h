/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the Rust xenbus core and buses (xenbus_probe.rs, xenbus_device.rs,
 * xenbus_frontend.rs and xenbus_backend.rs, XEN_XENBUS_RUST) share with
 * their C glue (xenbus-probe-glue.c, xenbus-device-glue.c,
 * xenbus-frontend-glue.c and xenbus-backend-glue.c). Included by the Rust bindings, so that the Rust
 * definitions are checked against these prototypes.
 *
 * The glue holds the tables the driver core and xenbus_xs.c keep pointers
 * to (the struct xen_bus_type with its struct bus_type and dev_pm_ops, the
 * watch on the bus's root and the xenstore notifier), whose members are the
 * Rust functions below, and the __init shells of the initcalls.
 */
#ifndef __XEN_RUST_XENBUS_GLUE_H__
#define __XEN_RUST_XENBUS_GLUE_H__

#include <linux/device.h>
#include <linux/notifier.h>
#include <linux/proc_fs.h>
#include <xen/xen-ops.h>
#include <xen/xenbus.h>

#include "../xenbus/xenbus.h"

/* The frontend bus "xen": device/<type>/<id>. */
extern struct xen_bus_type xen_xenbus_frontend;
extern struct xenbus_watch xen_xenbus_fe_watch;
extern struct notifier_block xen_xenbus_fe_notifier;

int xen_xenbus_fe_bus_id(char bus_id[XEN_BUS_ID_SIZE], const char *nodename);
int xen_xenbus_fe_probe(struct xen_bus_type *bus, const char *type, const char *name);
void xen_xenbus_fe_otherend_changed(struct xenbus_watch *watch, const char *path,
				    const char *token);
int xen_xenbus_fe_uevent(const struct device *dev, struct kobj_uevent_env *env);
int xen_xenbus_fe_dev_probe(struct device *dev);
int xen_xenbus_fe_dev_restore(struct device *dev);
void xen_xenbus_fe_dev_shutdown(struct device *dev);
void xen_xenbus_fe_root_changed(struct xenbus_watch *watch, const char *path, const char *token);
int xen_xenbus_fe_probe_and_watch(struct notifier_block *nb, unsigned long event, void *data);
int xen_xenbus_fe_init(void);
void xen_xenbus_fe_boot_wait(void);

/*
 * The HVM frontend reset (kexec, kdump) waits for the backend's state with
 * wait_event_interruptible_timeout(), a macro: the glue keeps the wait
 * queue and the state the watch saw.
 */
void xen_xenbus_fe_reset_state_seen(int state);
/* Whether the backend reached @expected within 5 seconds. */
bool xen_xenbus_fe_reset_wait(int expected);

/* The backend bus "xen-backend": backend/<type>/<frontend-id>/<id>. */
extern struct xen_bus_type xen_xenbus_backend;
extern struct xenbus_watch xen_xenbus_be_watch;
extern struct notifier_block xen_xenbus_be_notifier;

int xen_xenbus_be_bus_id(char bus_id[XEN_BUS_ID_SIZE], const char *nodename);
int xen_xenbus_be_probe(struct xen_bus_type *bus, const char *type, const char *domid);
bool xen_xenbus_be_otherend_will_handle(struct xenbus_watch *watch, const char *path,
					const char *token);
void xen_xenbus_be_otherend_changed(struct xenbus_watch *watch, const char *path,
				    const char *token);
int xen_xenbus_be_uevent(const struct device *dev, struct kobj_uevent_env *env);
void xen_xenbus_be_root_changed(struct xenbus_watch *watch, const char *path, const char *token);
int xen_xenbus_be_probe_and_watch(struct notifier_block *nb, unsigned long event, void *data);
int xen_xenbus_be_init(void);

/*
 * The device model (xenbus_device.rs, xenbus-device-glue.c): the show and
 * store of every xenbus device attribute, and the "xenbus" group of event
 * counters that probe adds to a bound device.
 */
extern const struct attribute_group xen_xenbus_stat_group;

ssize_t xen_xenbus_attr_show(struct device *dev, struct device_attribute *attr, char *buf);
ssize_t xen_xenbus_attr_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t count);

/*
 * The xenstore bring-up (xenbus_probe.rs, xenbus-probe-glue.c): the
 * xenstore notifier chain and the resume notifier, and the Rust halves of
 * the postcore and device initcalls.
 */
extern struct blocking_notifier_head xen_xenbus_store_chain;
extern struct notifier_block xen_xenbus_resume_nb;

int xen_xenbus_resume_cb(struct notifier_block *nb, unsigned long action, void *data);
int xen_xenbus_init(void);
int xen_xenbus_probe_initcall(void);

#endif /* __XEN_RUST_XENBUS_GLUE_H__ */
