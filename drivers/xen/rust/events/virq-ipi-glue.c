// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust VIRQs and IPIs (events_virq_ipi.rs, XEN_EVENTS_RUST),
 * which replace drivers/xen/events/events_virq_ipi.c.
 *
 * Everything here is what Rust in this kernel cannot express, and nothing
 * else:
 * - the per-cpu tables (7.3's kernel crate has no per-cpu support), with
 *   their initial "unbound" entries, and the accessor Rust reaches them by;
 * - the export, with C's licence.
 */

#include <linux/cpumask.h>
#include <linux/export.h>
#include <linux/percpu.h>

#include "virq-ipi.h"

static DEFINE_PER_CPU(struct xen_virq_ipi_cpu, xen_virq_ipi) = {
	.virq_to_irq = { [0 ... NR_VIRQS - 1] = -1 },
	.ipi_to_irq = { [0 ... XEN_NR_IPIS - 1] = -1 },
};

struct xen_virq_ipi_cpu *xen_virq_ipi_cpu(unsigned int cpu)
{
	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return NULL;
	return per_cpu_ptr(&xen_virq_ipi, cpu);
}

/* bind_virq_to_irqhandler() is events_virq_ipi.rs's. */
EXPORT_SYMBOL_GPL(bind_virq_to_irqhandler);
