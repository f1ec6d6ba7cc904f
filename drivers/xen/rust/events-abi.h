/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the Rust event channel ABIs (events.rs, XEN_EVTCHN_ABI_RUST) share
 * with their C glue (events-abi-glue.c). Included by the Rust bindings.
 *
 * The per-cpu state is defined in the glue because 7.3's kernel crate has no
 * per-cpu support; Rust reaches it through the accessors below, and on the
 * hot paths (the upcall and unmask) the glue passes it in, with the CPU's
 * vcpu_info and whether interrupts are off. The ops are implemented in Rust
 * and gathered into a struct evtchn_ops by the glue.
 */
#ifndef __XEN_RUST_EVENTS_ABI_H__
#define __XEN_RUST_EVENTS_ABI_H__

#include <linux/types.h>
#include <xen/interface/xen.h>
#include <xen/interface/event_channel.h>

struct evtchn_loop_ctrl;

enum {
	/* Bits in a word of the 2-level bitmaps (BITS_PER_EVTCHN_WORD). */
	XEN_EVTCHN_2L_WORD_BITS = sizeof(xen_ulong_t) * 8,
	/* Words in each 2-level bitmap: the selector has one bit per word. */
	XEN_EVTCHN_2L_WORDS = sizeof(xen_ulong_t) * 8,
};

/* The 2-level ABI's state of one CPU (cpu_evtchn_mask, current_word_idx and current_bit_idx). */
struct xen_evtchn_2l_cpu {
	/* The ports bound to this CPU. */
	xen_ulong_t bound[XEN_EVTCHN_2L_WORDS];
	/* Where the next scan starts: the port after the last one handled. */
	unsigned int word_idx;
	unsigned int bit_idx;
};

/* The FIFO ABI's state of one CPU (cpu_control_block and cpu_queue). */
struct xen_evtchn_fifo_cpu {
	/* The page registered with EVTCHNOP_init_control, or NULL. */
	struct evtchn_fifo_control_block *control_block;
	/* The port at the head of each queue as far as this CPU has walked it (0: read Xen's). */
	u32 head[EVTCHN_FIFO_MAX_QUEUES];
};

/* events-abi-glue.c */
struct xen_evtchn_2l_cpu *xen_evtchn_2l_cpu(unsigned int cpu);
struct xen_evtchn_fifo_cpu *xen_evtchn_fifo_cpu(unsigned int cpu);
unsigned int xen_evtchn_vcpu_nr(unsigned int cpu);

/* events.rs: the 2-level ABI. */
unsigned int xen_evtchn_2l_max_channels(void);
void xen_evtchn_2l_remove(evtchn_port_t port, unsigned int cpu);
void xen_evtchn_2l_bind_to_cpu(evtchn_port_t port, unsigned int cpu, unsigned int old_cpu);
void xen_evtchn_2l_clear_pending(evtchn_port_t port);
void xen_evtchn_2l_set_pending(evtchn_port_t port);
bool xen_evtchn_2l_is_pending(evtchn_port_t port);
void xen_evtchn_2l_mask(evtchn_port_t port);
void xen_evtchn_2l_unmask_on(evtchn_port_t port, unsigned int cpu, struct vcpu_info *vcpu_info,
			     bool irqs_off);
void xen_evtchn_2l_scan(unsigned int cpu, struct xen_evtchn_2l_cpu *state,
			struct vcpu_info *vcpu_info, struct evtchn_loop_ctrl *ctrl);
void xen_evtchn_2l_resume(void);
int xen_evtchn_2l_percpu_deinit(unsigned int cpu);

/* events.rs: the FIFO ABI. */
unsigned int xen_evtchn_fifo_max_channels(void);
unsigned int xen_evtchn_fifo_nr_channels(void);
int xen_evtchn_fifo_setup(evtchn_port_t port);
void xen_evtchn_fifo_bind_to_cpu(evtchn_port_t port, unsigned int cpu, unsigned int old_cpu);
void xen_evtchn_fifo_clear_pending(evtchn_port_t port);
void xen_evtchn_fifo_set_pending(evtchn_port_t port);
bool xen_evtchn_fifo_is_pending(evtchn_port_t port);
void xen_evtchn_fifo_mask(evtchn_port_t port);
void xen_evtchn_fifo_unmask_on(evtchn_port_t port, bool irqs_off);
void xen_evtchn_fifo_walk(struct xen_evtchn_fifo_cpu *state, struct evtchn_loop_ctrl *ctrl);
void xen_evtchn_fifo_resume(void);
int xen_evtchn_fifo_percpu_init(unsigned int cpu);
int xen_evtchn_fifo_percpu_deinit(unsigned int cpu);

#endif /* __XEN_RUST_EVENTS_ABI_H__ */
