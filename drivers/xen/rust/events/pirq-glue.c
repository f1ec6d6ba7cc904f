// SPDX-License-Identifier: GPL-2.0
/*
 * The exports of the Rust physical IRQs (events_pirq.rs, XEN_EVENTS_RUST),
 * which replace drivers/xen/events/events_pirq.c: with the same licences as
 * C's. Rust in this kernel cannot export a symbol.
 */

#include <linux/export.h>

#include <xen/events.h>

EXPORT_SYMBOL_GPL(xen_irq_from_gsi);
EXPORT_SYMBOL_GPL(xen_pirq_from_irq);
