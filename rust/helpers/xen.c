// SPDX-License-Identifier: GPL-2.0

/*
 * Helpers for kernel::xen. Only kernels with RUST_XEN_ABSTRACTIONS (and so with XEN) have the
 * headers and the symbols they use.
 */
#if IS_ENABLED(CONFIG_RUST_XEN_ABSTRACTIONS)

#include <linux/irq.h>
#include <linux/irqflags.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/semaphore.h>
#include <linux/sysfs.h>
#include <xen/events.h>
#include <xen/grant_table.h>
#include <xen/hvm.h>
#include <xen/xen.h>
#include <xen/page.h>
#include <xen/mem-reservation.h>
#include <xen/xenbus.h>
#include <xen/xen-ops.h>
#include <asm/xen/hypercall.h>
#ifdef CONFIG_X86
#include <asm/xen/hypervisor.h>
#include <asm/cpuid/api.h>
#include <asm/i8259.h>
#endif
#if IS_ENABLED(CONFIG_RUST_XEN_KUNIT_TEST)
#include <kunit/test.h>
#include <kunit/test-bug.h>
#endif
#include <xen/interface/io/ring.h>
#include <xen/interface/io/blkif.h>
#include <xen/interface/io/netif.h>
#include <xen/interface/io/demo.h>

__rust_helper bool rust_helper_xen_domain(void)
{
	return xen_domain();
}

__rust_helper bool rust_helper_xen_pv_domain(void)
{
	return xen_pv_domain();
}

__rust_helper bool rust_helper_xen_hvm_domain(void)
{
	return xen_hvm_domain();
}

__rust_helper bool rust_helper_xen_initial_domain(void)
{
	return xen_initial_domain();
}

/* Barriers for memory shared with another domain: real even on UP kernels. */
__rust_helper void rust_helper_virt_mb(void)
{
	virt_mb();
}

__rust_helper void rust_helper_virt_rmb(void)
{
	virt_rmb();
}

__rust_helper void rust_helper_virt_wmb(void)
{
	virt_wmb();
}

__rust_helper void *rust_helper_xen_page_address(struct page *page)
{
	return page_address(page);
}

__rust_helper unsigned long rust_helper_xen_page_to_gfn(struct page *page)
{
	return xen_page_to_gfn(page);
}

/* The frame Xen knows a page of the kernel's direct map by. */
__rust_helper unsigned long rust_helper_virt_to_gfn(void *addr)
{
	return virt_to_gfn(addr);
}

__rust_helper int rust_helper_HYPERVISOR_event_channel_op(int cmd, void *arg)
{
	return HYPERVISOR_event_channel_op(cmd, arg);
}

__rust_helper int rust_helper_HYPERVISOR_sched_op(int cmd, void *arg)
{
	return HYPERVISOR_sched_op(cmd, arg);
}

__rust_helper int rust_helper_HYPERVISOR_physdev_op(int cmd, void *arg)
{
	return HYPERVISOR_physdev_op(cmd, arg);
}

#ifdef CONFIG_X86
/*
 * The HVM event callback: xen/hvm.h and xen/interface/hvm/hvm_op.h do not go
 * through bindgen (the guest handles of hvm_op.h's typedefs clash with them).
 * The "via" that has Xen raise the event vector, and the request that it
 * raise it on vCPU vcpu.
 */
__rust_helper u64 rust_helper_xen_hvm_callback_vector_via(void)
{
	return HVM_CALLBACK_VECTOR(HYPERVISOR_CALLBACK_VECTOR);
}

__rust_helper int rust_helper_xen_hvm_set_evtchn_upcall_vector(u32 vcpu)
{
	xen_hvm_evtchn_upcall_vector_t op = {
		.vector = HYPERVISOR_CALLBACK_VECTOR,
		.vcpu = vcpu,
	};

	return HYPERVISOR_hvm_op(HVMOP_set_evtchn_upcall_vector, &op);
}
#endif

__rust_helper int rust_helper_HYPERVISOR_vcpu_op(int cmd, int vcpuid, void *extra_args)
{
	return HYPERVISOR_vcpu_op(cmd, vcpuid, extra_args);
}

__rust_helper void rust_helper_notify_remote_via_evtchn(evtchn_port_t port)
{
	notify_remote_via_evtchn(port);
}

__rust_helper void rust_helper_xen_evtchn_close(evtchn_port_t port)
{
	xen_evtchn_close(port);
}

/* Whether a bound channel can be moved to another vCPU (not with HVM's platform PCI IRQ). */
__rust_helper bool rust_helper_xen_support_evtchn_rebind(void)
{
	return xen_support_evtchn_rebind();
}

__rust_helper uint32_t rust_helper_xen_vcpu_nr(int cpu)
{
	return xen_vcpu_nr(cpu);
}

__rust_helper const struct cpumask *rust_helper_cpumask_of(unsigned int cpu)
{
	return cpumask_of(cpu);
}

__rust_helper void rust_helper_irq_data_update_affinity(struct irq_data *d,
							const struct cpumask *m)
{
	irq_data_update_affinity(d, m);
}

__rust_helper void rust_helper_irq_data_update_effective_affinity(struct irq_data *d,
								  const struct cpumask *m)
{
	irq_data_update_effective_affinity(d, m);
}

__rust_helper const struct cpumask *
rust_helper_irq_data_get_effective_affinity_mask(struct irq_data *d)
{
	return irq_data_get_effective_affinity_mask(d);
}

__rust_helper void rust_helper_gnttab_set_map_op(struct gnttab_map_grant_ref *map,
						 phys_addr_t addr, uint32_t flags,
						 grant_ref_t ref, domid_t domid)
{
	gnttab_set_map_op(map, addr, flags, ref, domid);
}

__rust_helper void rust_helper_gnttab_set_unmap_op(struct gnttab_unmap_grant_ref *unmap,
						   phys_addr_t addr, uint32_t flags,
						   grant_handle_t handle)
{
	gnttab_set_unmap_op(unmap, addr, flags, handle);
}

/* The hypercalls, pages and CPUID leaves the Rust grant table core uses. */
__rust_helper int rust_helper_HYPERVISOR_grant_table_op(unsigned int cmd, void *uop,
							unsigned int count)
{
	return HYPERVISOR_grant_table_op(cmd, uop, count);
}

__rust_helper int rust_helper_HYPERVISOR_memory_op(unsigned int cmd, void *arg)
{
	return HYPERVISOR_memory_op(cmd, arg);
}

__rust_helper void rust_helper_get_page(struct page *page)
{
	get_page(page);
}

__rust_helper void rust_helper_put_page(struct page *page)
{
	put_page(page);
}

__rust_helper struct page *rust_helper_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

__rust_helper unsigned long rust_helper_gfn_to_pfn(unsigned long gfn)
{
	return gfn_to_pfn(gfn);
}

__rust_helper unsigned long rust_helper_pfn_to_gfn(unsigned long pfn)
{
	return pfn_to_gfn(pfn);
}

/* The page flags and fields the grant mapping helpers of the Rust core use. */
__rust_helper int rust_helper_page_count(const struct page *page)
{
	return page_count(page);
}

__rust_helper unsigned long rust_helper_xen_page_to_xen_pfn(struct page *page)
{
	return page_to_xen_pfn(page);
}

__rust_helper bool rust_helper_PagePrivate(const struct page *page)
{
	return PagePrivate(page);
}

__rust_helper void rust_helper_SetPagePrivate(struct page *page)
{
	SetPagePrivate(page);
}

__rust_helper void rust_helper_ClearPagePrivate(struct page *page)
{
	ClearPagePrivate(page);
}

__rust_helper void rust_helper_SetPageForeign(struct page *page)
{
	SetPageForeign(page);
}

__rust_helper void rust_helper_ClearPageForeign(struct page *page)
{
	ClearPageForeign(page);
}

__rust_helper struct xen_page_foreign *rust_helper_xen_page_foreign(struct page *page)
{
	return xen_page_foreign(page);
}

/* The page cache of grant mappings links its pages through page->lru. */
__rust_helper struct list_head *rust_helper_xen_page_lru(struct page *page)
{
	return &page->lru;
}

__rust_helper struct page *rust_helper_xen_lru_to_page(struct list_head *lru)
{
	return list_entry(lru, struct page, lru);
}

__rust_helper void rust_helper_list_add(struct list_head *new, struct list_head *head)
{
	list_add(new, head);
}

__rust_helper void rust_helper_list_del(struct list_head *entry)
{
	list_del(entry);
}

__rust_helper bool rust_helper_list_empty(const struct list_head *head)
{
	return list_empty(head);
}

__rust_helper void rust_helper_list_del_init(struct list_head *entry)
{
	list_del_init(entry);
}

/* An inline on 64-bit, a function on 32-bit. */
__rust_helper u64 rust_helper_get_jiffies_64(void)
{
	return get_jiffies_64();
}

/* irqs_disabled() is a macro. */
__rust_helper bool rust_helper_xen_irqs_disabled(void)
{
	return irqs_disabled();
}

#ifdef CONFIG_XEN_UNPOPULATED_ALLOC
/* The page cache of unpopulated memory links its pages through page->zone_device_data. */
__rust_helper struct page *rust_helper_xen_page_cache_next(struct page *page)
{
	return page->zone_device_data;
}

__rust_helper void rust_helper_xen_page_cache_set_next(struct page *page, struct page *next)
{
	page->zone_device_data = next;
}
#endif

/* The DMA buffers of XEN_GRANT_DMA_ALLOC give their frames back to Xen and take them again. */
__rust_helper void rust_helper_xenmem_reservation_scrub_page(struct page *page)
{
	xenmem_reservation_scrub_page(page);
}

__rust_helper void rust_helper_xenmem_reservation_va_mapping_reset(unsigned long count,
								   struct page **pages)
{
	xenmem_reservation_va_mapping_reset(count, pages);
}

__rust_helper void rust_helper_xenmem_reservation_va_mapping_update(unsigned long count,
								    struct page **pages,
								    xen_pfn_t *frames)
{
	xenmem_reservation_va_mapping_update(count, pages, frames);
}

/* spin_lock_irqsave() is a macro that assigns its flags argument. */
__rust_helper unsigned long rust_helper_xen_spin_lock_irqsave(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

__rust_helper void rust_helper_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

#ifdef CONFIG_X86
__rust_helper u32 rust_helper_xen_cpuid_base(void)
{
	return xen_cpuid_base();
}

__rust_helper u32 rust_helper_cpuid_eax(u32 op)
{
	return cpuid_eax(op);
}

__rust_helper u32 rust_helper_cpuid_ebx(u32 op)
{
	return cpuid_ebx(op);
}
#endif

/* The IRQs whose descriptors the architecture manages (drivers/xen/rust/events/events_map.rs). */
__rust_helper int rust_helper_nr_legacy_irqs(void)
{
	return nr_legacy_irqs();
}

__rust_helper bool rust_helper_xen_xenstored_ready(void)
{
	return READ_ONCE(xenstored_ready) > 0;
}

/*
 * For the xenbus device model (drivers/xen/rust/xenbus_device.rs): taking a
 * driver's module and initialising a device's reclaim semaphore are static
 * inline functions.
 */
__rust_helper bool rust_helper_try_module_get(struct module *module)
{
	return try_module_get(module);
}

__rust_helper void rust_helper_sema_init(struct semaphore *sem, int val)
{
	sema_init(sem, val);
}

/*
 * Functions in most kernels, inlines that do nothing without MODULES or SYSFS
 * (a domU-only kernel may have neither): named apart so that the binding is
 * the same in both.
 */
__rust_helper void rust_helper_xen_module_put(struct module *module)
{
	module_put(module);
}

__rust_helper int rust_helper_xen_sysfs_create_group(struct kobject *kobj,
						     const struct attribute_group *grp)
{
	return sysfs_create_group(kobj, grp);
}

__rust_helper void rust_helper_xen_sysfs_remove_group(struct kobject *kobj,
						      const struct attribute_group *grp)
{
	sysfs_remove_group(kobj, grp);
}

/*
 * For the xenstore bring-up (drivers/xen/rust/xenbus_probe.rs): reading and
 * setting an HVM parameter, and the direct-map address of a PV domain's
 * xenstore ring, are static inlines and macros. The setter is the
 * counterpart of hvm_get_parameter(); struct xen_hvm_param's header does not
 * go through bindgen.
 */
__rust_helper int rust_helper_xen_hvm_set_parameter(int idx, uint64_t value)
{
	struct xen_hvm_param a = {
		.domid = DOMID_SELF,
		.index = idx,
		.value = value,
	};

	return HYPERVISOR_hvm_op(HVMOP_set_param, &a);
}

__rust_helper int rust_helper_hvm_get_parameter(int idx, uint64_t *value)
{
	return hvm_get_parameter(idx, value);
}

__rust_helper void *rust_helper_xen_gfn_to_virt(unsigned long gfn)
{
	return gfn_to_virt(gfn);
}

#if IS_ENABLED(CONFIG_RUST_XEN_KUNIT_TEST)
/* Marks the running KUnit test as skipped, with a reason. */
__rust_helper void rust_helper_xen_kunit_skip(const char *reason)
{
	struct kunit *test = kunit_get_current_test();

	if (test)
		kunit_mark_skipped(test, "%s", reason);
}

/*
 * Ring geometry as the ring.h macros compute it, for the Rust ring layout tests:
 * out[0] = entries (__CONST_RING_SIZE), out[1] = entry size, out[2] = offset of the entries.
 * proto 0: blkif, 1: netif tx, 2: netif rx, 4: demo (one page each), 3: blkif on four pages.
 */
__rust_helper void rust_helper_xen_ring_geometry(unsigned int proto, size_t *out)
{
	switch (proto) {
	case 0:
		out[0] = __CONST_RING_SIZE(blkif, PAGE_SIZE);
		out[1] = sizeof(union blkif_sring_entry);
		out[2] = offsetof(struct blkif_sring, ring);
		break;
	case 1:
		out[0] = __CONST_RING_SIZE(xen_netif_tx, PAGE_SIZE);
		out[1] = sizeof(union xen_netif_tx_sring_entry);
		out[2] = offsetof(struct xen_netif_tx_sring, ring);
		break;
	case 2:
		out[0] = __CONST_RING_SIZE(xen_netif_rx, PAGE_SIZE);
		out[1] = sizeof(union xen_netif_rx_sring_entry);
		out[2] = offsetof(struct xen_netif_rx_sring, ring);
		break;
	case 4:
		out[0] = XEN_DEMO_RING_SIZE;
		out[1] = sizeof(union demo_sring_entry);
		out[2] = offsetof(struct demo_sring, ring);
		break;
	default:
		out[0] = __CONST_RING_SIZE(blkif, 4 * PAGE_SIZE);
		out[1] = sizeof(union blkif_sring_entry);
		out[2] = offsetof(struct blkif_sring, ring);
		break;
	}
}
#endif

#endif /* CONFIG_RUST_XEN_ABSTRACTIONS */
