// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust late EOI and upcall loop (events_lateeoi.rs,
 * XEN_EVENTS_RUST), which replace drivers/xen/events/events_lateeoi.c.
 *
 * Everything here is what Rust in this kernel cannot express, and nothing
 * else:
 * - the module parameters xen.event_loop_timeout and xen.event_eoi_delay
 *   (module_param() needs a C variable; Rust reads them once per use, as C
 *   does);
 * - the per-cpu state (7.3's kernel crate has no per-cpu support), with the
 *   initialisation of its delayed work, lock and list, which are macros
 *   that give each a lockdep class;
 * - the entry point from the hypervisor callback, xen_evtchn_do_upcall(),
 *   which passes this CPU's state and vcpu_info to the Rust loop (a tail
 *   call);
 * - the exports.
 */

#include <linux/export.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include <xen/events.h>
#include <xen/xen-ops.h>

#include "../../events/events_internal.h"
#include "lateeoi.h"

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "xen."

unsigned int xen_event_loop_timeout __read_mostly = 2;
module_param_named(event_loop_timeout, xen_event_loop_timeout, uint, 0644);

unsigned int xen_event_eoi_delay __read_mostly = 10;
module_param_named(event_eoi_delay, xen_event_eoi_delay, uint, 0644);

static DEFINE_PER_CPU(struct xen_lateeoi_cpu, xen_lateeoi_state);

struct xen_lateeoi_cpu *xen_lateeoi_cpu(unsigned int cpu)
{
	return per_cpu_ptr(&xen_lateeoi_state, cpu);
}

void xen_cpu_init_eoi(unsigned int cpu)
{
	struct xen_lateeoi_cpu *eoi = per_cpu_ptr(&xen_lateeoi_state, cpu);

	INIT_DELAYED_WORK(&eoi->delayed, xen_lateeoi_worker);
	spin_lock_init(&eoi->eoi_list_lock);
	INIT_LIST_HEAD(&eoi->eoi_list);
}

int xen_evtchn_do_upcall(void)
{
	return xen_lateeoi_upcall(smp_processor_id(), __this_cpu_read(xen_vcpu),
				  this_cpu_ptr(&xen_lateeoi_state));
}
EXPORT_SYMBOL_GPL(xen_evtchn_do_upcall);

/* xen_irq_lateeoi() is events_lateeoi.rs's. */
EXPORT_SYMBOL_GPL(xen_irq_lateeoi);
