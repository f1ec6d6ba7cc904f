// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust event channel ABIs (events.rs, XEN_EVTCHN_ABI_RUST),
 * which replace events_2l.c and events_fifo.c.
 *
 * Everything here is what Rust in this kernel cannot express, and nothing
 * else:
 * - the per-cpu state of both ABIs and the per-cpu xen_vcpu and xen_vcpu_id
 *   (7.3's kernel crate has no per-cpu support), through accessors, and
 *   passed in to the upcall and unmask with irqs_disabled(), which Rust
 *   cannot ask;
 * - the two struct evtchn_ops, whose members are the Rust functions, and
 *   the __init functions events_base.c calls to pick one;
 * - xen_debug_interrupt(), the 2-level ABI's dump of its bitmaps for the
 *   debug IPI of SMP PV guests (arch/x86/xen/smp.c): a page of printk
 *   continuation lines, kept as events_2l.c writes it.
 */

#define pr_fmt(fmt) "xen:events: " fmt

#include <linux/init.h>
#include <linux/interrupt.h>
#include <linux/irqflags.h>
#include <linux/percpu.h>
#include <linux/printk.h>
#include <linux/spinlock.h>

#include <asm/sync_bitops.h>
#include <asm/xen/hypervisor.h>

#include <xen/events.h>
#include <xen/xen-ops.h>
#include <xen/interface/xen.h>

#include "../events/events_internal.h"
#include "events-abi.h"

static DEFINE_PER_CPU(struct xen_evtchn_2l_cpu, xen_evtchn_2l_state);
static DEFINE_PER_CPU(struct xen_evtchn_fifo_cpu, xen_evtchn_fifo_state);

struct xen_evtchn_2l_cpu *xen_evtchn_2l_cpu(unsigned int cpu)
{
	return per_cpu_ptr(&xen_evtchn_2l_state, cpu);
}

struct xen_evtchn_fifo_cpu *xen_evtchn_fifo_cpu(unsigned int cpu)
{
	return per_cpu_ptr(&xen_evtchn_fifo_state, cpu);
}

unsigned int xen_evtchn_vcpu_nr(unsigned int cpu)
{
	return xen_vcpu_nr(cpu);
}

/*
 * The hot paths: the upcall and unmask need this CPU's per-cpu state and vcpu_info, and unmask
 * whether interrupts are off, which Rust cannot reach or ask; these pass them in (each a tail
 * call).
 */
static void evtchn_2l_handle_events(unsigned int cpu, struct evtchn_loop_ctrl *ctrl)
{
	xen_evtchn_2l_scan(cpu, per_cpu_ptr(&xen_evtchn_2l_state, cpu), __this_cpu_read(xen_vcpu),
			   ctrl);
}

static void evtchn_2l_unmask(evtchn_port_t port)
{
	unsigned int cpu = get_cpu();

	xen_evtchn_2l_unmask_on(port, cpu, __this_cpu_read(xen_vcpu), irqs_disabled());
	put_cpu();
}

static void evtchn_fifo_handle_events(unsigned int cpu, struct evtchn_loop_ctrl *ctrl)
{
	xen_evtchn_fifo_walk(per_cpu_ptr(&xen_evtchn_fifo_state, cpu), ctrl);
}

static void evtchn_fifo_unmask(evtchn_port_t port)
{
	xen_evtchn_fifo_unmask_on(port, irqs_disabled());
}

static const struct evtchn_ops evtchn_ops_2l = {
	.max_channels	= xen_evtchn_2l_max_channels,
	.nr_channels	= xen_evtchn_2l_max_channels,
	.remove		= xen_evtchn_2l_remove,
	.bind_to_cpu	= xen_evtchn_2l_bind_to_cpu,
	.clear_pending	= xen_evtchn_2l_clear_pending,
	.set_pending	= xen_evtchn_2l_set_pending,
	.is_pending	= xen_evtchn_2l_is_pending,
	.mask		= xen_evtchn_2l_mask,
	.unmask		= evtchn_2l_unmask,
	.handle_events	= evtchn_2l_handle_events,
	.resume		= xen_evtchn_2l_resume,
	.percpu_deinit	= xen_evtchn_2l_percpu_deinit,
};

void __init xen_evtchn_2l_init(void)
{
	pr_info("Using 2-level ABI (Rust)\n");
	evtchn_ops = &evtchn_ops_2l;
}

static const struct evtchn_ops evtchn_ops_fifo = {
	.max_channels	= xen_evtchn_fifo_max_channels,
	.nr_channels	= xen_evtchn_fifo_nr_channels,
	.setup		= xen_evtchn_fifo_setup,
	.bind_to_cpu	= xen_evtchn_fifo_bind_to_cpu,
	.clear_pending	= xen_evtchn_fifo_clear_pending,
	.set_pending	= xen_evtchn_fifo_set_pending,
	.is_pending	= xen_evtchn_fifo_is_pending,
	.mask		= xen_evtchn_fifo_mask,
	.unmask		= evtchn_fifo_unmask,
	.handle_events	= evtchn_fifo_handle_events,
	.resume		= xen_evtchn_fifo_resume,
	.percpu_init	= xen_evtchn_fifo_percpu_init,
	.percpu_deinit	= xen_evtchn_fifo_percpu_deinit,
};

int __init xen_evtchn_fifo_init(void)
{
	int ret = xen_evtchn_fifo_percpu_init(smp_processor_id());

	if (ret < 0)
		return ret;

	pr_info("Using FIFO-based ABI (Rust)\n");
	evtchn_ops = &evtchn_ops_fifo;
	return 0;
}

#define BM(x) ((unsigned long *)(x))
#define WORD_DIGITS ((int)sizeof(xen_ulong_t) * 2)

/*
 * One bitmap of XEN_EVTCHN_2L_WORDS words (a & and & ~and_not), highest word first, eight to a
 * line, under its title if there is one.
 */
static void dump_words(const char *title, const xen_ulong_t *a, const xen_ulong_t *and,
		       const xen_ulong_t *and_not)
{
	int i;

	if (title)
		printk("\n%s:\n   ", title);
	for (i = XEN_EVTCHN_2L_WORDS - 1; i >= 0; i--) {
		xen_ulong_t w = a[i] & (and ? and[i] : ~0UL) & ~(and_not ? and_not[i] : 0UL);

		printk("%0*" PRI_xen_ulong "%s", WORD_DIGITS, w, i % 8 == 0 ? "\n   " : " ");
	}
}

irqreturn_t xen_debug_interrupt(int irq, void *dev_id)
{
	static DEFINE_SPINLOCK(debug_lock);
	struct shared_info *sh = HYPERVISOR_shared_info;
	int cpu = smp_processor_id();
	xen_ulong_t *bound = xen_evtchn_2l_cpu(cpu)->bound;
	struct vcpu_info *v;
	unsigned long flags;
	int i;

	spin_lock_irqsave(&debug_lock, flags);

	printk("\nvcpu %d\n  ", cpu);
	for_each_online_cpu(i) {
		int masked;

		v = per_cpu(xen_vcpu, i);
		masked = (get_irq_regs() && i == cpu) ? xen_irqs_disabled(get_irq_regs())
						      : v->evtchn_upcall_mask;
		printk("%d: masked=%d pending=%d event_sel %0*" PRI_xen_ulong "\n  ", i,
		       masked, v->evtchn_upcall_pending, WORD_DIGITS, v->evtchn_pending_sel);
	}
	v = per_cpu(xen_vcpu, cpu);

	dump_words("pending", sh->evtchn_pending, NULL, NULL);
	dump_words("global mask", sh->evtchn_mask, NULL, NULL);
	dump_words("globally unmasked", sh->evtchn_pending, NULL, sh->evtchn_mask);
	printk("\nlocal cpu%d mask:\n   ", cpu);
	dump_words(NULL, bound, NULL, NULL);
	dump_words("locally unmasked", sh->evtchn_pending, bound, sh->evtchn_mask);

	printk("\npending list:\n");
	for (i = 0; i < EVTCHN_2L_NR_CHANNELS; i++) {
		if (sync_test_bit(i, BM(sh->evtchn_pending))) {
			int word_idx = i / XEN_EVTCHN_2L_WORD_BITS;

			printk("  %d: event %d -> irq %u%s%s%s\n", cpu_from_evtchn(i), i,
			       irq_from_evtchn(i),
			       sync_test_bit(word_idx, BM(&v->evtchn_pending_sel)) ? "" : " l2-clear",
			       !sync_test_bit(i, BM(sh->evtchn_mask)) ? "" : " globally-masked",
			       sync_test_bit(i, BM(bound)) ? "" : " locally-masked");
		}
	}

	spin_unlock_irqrestore(&debug_lock, flags);
	return IRQ_HANDLED;
}
