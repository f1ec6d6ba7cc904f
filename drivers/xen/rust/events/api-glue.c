// SPDX-License-Identifier: GPL-2.0
/*
 * The exports of the Rust operations on bound event channels (events_api.rs,
 * XEN_EVENTS_RUST), which replace drivers/xen/events/events_api.c: with the
 * same licences as C's. Rust in this kernel cannot export a symbol.
 */

#include <linux/export.h>

#include <xen/events.h>

EXPORT_SYMBOL_GPL(irq_from_evtchn);
EXPORT_SYMBOL_GPL(notify_remote_via_irq);
EXPORT_SYMBOL_GPL(xen_evtchn_nr_channels);
EXPORT_SYMBOL_GPL(xen_set_irq_priority);
EXPORT_SYMBOL_GPL(evtchn_make_refcounted);
EXPORT_SYMBOL_GPL(evtchn_get);
EXPORT_SYMBOL_GPL(evtchn_put);
EXPORT_SYMBOL(xen_clear_irq_pending);
EXPORT_SYMBOL(xen_poll_irq_timeout);
EXPORT_SYMBOL_GPL(xen_test_irq_shared);
