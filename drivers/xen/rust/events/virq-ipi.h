/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the Rust VIRQs and IPIs (events_virq_ipi.rs, XEN_EVENTS_RUST) share
 * with their C glue (virq-ipi-glue.c). Included by the Rust bindings.
 *
 * The per-cpu tables are defined in the glue because 7.3's kernel crate has
 * no per-cpu support; Rust reaches a CPU's through xen_virq_ipi_cpu().
 */
#ifndef __XEN_RUST_EVENTS_VIRQ_IPI_H__
#define __XEN_RUST_EVENTS_VIRQ_IPI_H__

#include <xen/events.h>
#include <xen/interface/event_channel.h>
#include <xen/interface/xen.h>

/* The VIRQs and IPIs of one CPU (events_virq_ipi.c's per-cpu tables). */
struct xen_virq_ipi_cpu {
	/* The IRQ each VIRQ is bound to on this CPU, or -1. */
	int virq_to_irq[NR_VIRQS];
	/* The IRQ each IPI is bound to on this CPU, or -1. */
	int ipi_to_irq[XEN_NR_IPIS];
	/*
	 * The port of each IPI bound on this CPU, or 0: xen_send_IPI_one()
	 * reads it without a lock, and without the irq_info (no RCU), so that
	 * it works from any context, CPU hotplug included.
	 */
	evtchn_port_t ipi_to_evtchn[XEN_NR_IPIS];
};

/* CPU @cpu's tables, or NULL if @cpu is not a possible CPU. */
struct xen_virq_ipi_cpu *xen_virq_ipi_cpu(unsigned int cpu);

#endif /* __XEN_RUST_EVENTS_VIRQ_IPI_H__ */
