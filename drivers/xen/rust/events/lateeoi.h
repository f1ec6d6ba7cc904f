/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the Rust late EOI and upcall loop (events_lateeoi.rs, XEN_EVENTS_RUST)
 * share with their C glue (lateeoi-glue.c). Included by the Rust bindings.
 *
 * The per-cpu state is defined in the glue because 7.3's kernel crate has no
 * per-cpu support; the glue passes this CPU's to the upcall, and Rust reaches
 * another CPU's through xen_lateeoi_cpu().
 */
#ifndef __XEN_RUST_EVENTS_LATEEOI_H__
#define __XEN_RUST_EVENTS_LATEEOI_H__

#include <linux/list.h>
#include <linux/spinlock_types.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <xen/interface/xen.h>

struct evtchn_loop_ctrl;

/* The late-EOI state of one CPU (events_lateeoi.c's lateeoi and irq_epoch). */
struct xen_lateeoi_cpu {
	/* Sends the EOIs of eoi_list that are due, on this CPU. */
	struct delayed_work delayed;
	/* Protects eoi_list and the eoi_list links of the irq_infos on it. */
	spinlock_t eoi_list_lock;
	/* struct irq_info by eoi_list, the earliest eoi_time first. */
	struct list_head eoi_list;
	/* Upcalls this CPU has finished; written only by this CPU. */
	unsigned int irq_epoch;
};

/* lateeoi-glue.c: the module parameters xen.event_loop_timeout and xen.event_eoi_delay. */
extern unsigned int xen_event_loop_timeout;
extern unsigned int xen_event_eoi_delay;

struct xen_lateeoi_cpu *xen_lateeoi_cpu(unsigned int cpu);

/* events_lateeoi.rs */
int xen_lateeoi_upcall(unsigned int cpu, struct vcpu_info *vcpu_info,
		       struct xen_lateeoi_cpu *state);
void xen_lateeoi_worker(struct work_struct *work);

#endif /* __XEN_RUST_EVENTS_LATEEOI_H__ */
