// SPDX-License-Identifier: GPL-2.0
/*
 * The exports of the Rust binding of driver channels (events_bind.rs,
 * XEN_EVENTS_RUST), which replaces drivers/xen/events/events_bind.c: with the
 * same licences as C's. Rust in this kernel cannot export a symbol.
 */

#include <linux/export.h>

#include <xen/events.h>

EXPORT_SYMBOL_GPL(bind_evtchn_to_irq);
EXPORT_SYMBOL_GPL(bind_evtchn_to_irq_lateeoi);
EXPORT_SYMBOL_GPL(bind_interdomain_evtchn_to_irq_lateeoi);
EXPORT_SYMBOL_GPL(bind_evtchn_to_irqhandler);
EXPORT_SYMBOL_GPL(bind_evtchn_to_irqhandler_lateeoi);
EXPORT_SYMBOL_GPL(bind_interdomain_evtchn_to_irqhandler_lateeoi);
EXPORT_SYMBOL_GPL(unbind_from_irqhandler);
