// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust grant table core (grant_table.rs, XEN_GRANT_TABLE_RUST).
 *
 * Everything here is what Rust in this kernel cannot express, and nothing
 * else:
 * - the initcall at core_initcall_sync level (module! only makes device
 *   initcalls), and the debugfs file's late_initcall;
 * - the module parameters under their C names grant_table.version and
 *   grant_table.free_per_iteration (Rust has parameters only through
 *   module!, which a built-in core does not use);
 * - EXPORT_SYMBOL_GPL of the Rust functions (only the kernel crate's symbols
 *   are exported automatically), with the real prototypes in scope so that
 *   the exports are checked against <xen/grant_table.h>;
 * - the data object xen_auto_xlat_grant_frames;
 * - the deferred-free timer (there is no timer_list abstraction), and
 *   in_atomic(), which Rust cannot ask;
 * - pr_warn_ratelimited() (a static ratelimit state per call site, which
 *   the kernel crate has no macro for).
 */

#define pr_fmt(fmt) "xen:grant_table: " fmt

#include <linux/debugfs.h>
#include <linux/hardirq.h>
#include <linux/init.h>
#include <linux/irqflags.h>
#include <linux/jiffies.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>
#include <linux/seq_file.h>
#include <linux/timer.h>

#include <xen/grant_table.h>
#include <xen/xen.h>

/* The parameters keep grant-table.c's names, whatever this object is called. */
#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "grant_table."

unsigned int xen_gnttab_version_param;
module_param_named(version, xen_gnttab_version_param, uint, 0);

unsigned int xen_gnttab_free_per_iteration = 10;
module_param_named(free_per_iteration, xen_gnttab_free_per_iteration, uint, 0600);

struct grant_frames xen_auto_xlat_grant_frames;

/* Implemented in grant_table.rs. */
void xen_gnttab_handle_deferred(void);
void xen_gnttab_refs(unsigned int *size, unsigned int *free, s64 *deferred);

static void gnttab_deferred_timer_fn(struct timer_list *unused)
{
	xen_gnttab_handle_deferred();
}
static DEFINE_TIMER(deferred_timer, gnttab_deferred_timer_fn);

/* Called with the grant table lock held, as grant-table.c arms it. */
void xen_gnttab_arm_deferred_timer(void)
{
	if (!timer_pending(&deferred_timer)) {
		deferred_timer.expires = jiffies + HZ;
		add_timer(&deferred_timer);
	}
}

bool xen_gnttab_in_atomic(void)
{
	return in_atomic() || irqs_disabled();
}

/* gnttab_map_refs() in grant_table/pages.rs, when the hypervisor's maptrack is full. */
void xen_gnttab_warn_maptrack_full(void)
{
	pr_warn_ratelimited("maptrack limit reached, can't map all guest pages\n");
}

EXPORT_SYMBOL_GPL(gnttab_grant_foreign_access_ref);
EXPORT_SYMBOL_GPL(gnttab_grant_foreign_access);
EXPORT_SYMBOL_GPL(gnttab_end_foreign_access_ref);
EXPORT_SYMBOL_GPL(gnttab_try_end_foreign_access);
EXPORT_SYMBOL_GPL(gnttab_end_foreign_access);
EXPORT_SYMBOL_GPL(gnttab_free_grant_reference);
EXPORT_SYMBOL_GPL(gnttab_free_grant_references);
EXPORT_SYMBOL_GPL(gnttab_free_grant_reference_seq);
EXPORT_SYMBOL_GPL(gnttab_alloc_grant_references);
EXPORT_SYMBOL_GPL(gnttab_alloc_grant_reference_seq);
EXPORT_SYMBOL_GPL(gnttab_empty_grant_references);
EXPORT_SYMBOL_GPL(gnttab_claim_grant_reference);
EXPORT_SYMBOL_GPL(gnttab_release_grant_reference);
EXPORT_SYMBOL_GPL(gnttab_request_free_callback);
EXPORT_SYMBOL_GPL(gnttab_cancel_free_callback);
EXPORT_SYMBOL_GPL(gnttab_max_grant_frames);
EXPORT_SYMBOL_GPL(gnttab_setup_auto_xlat_frames);
EXPORT_SYMBOL_GPL(gnttab_free_auto_xlat_frames);
EXPORT_SYMBOL_GPL(gnttab_init);
/* The page and mapping helpers, grant_table/pages.rs (gnttab_foreach_grant is not exported). */
EXPORT_SYMBOL_GPL(gnttab_pages_set_private);
EXPORT_SYMBOL_GPL(gnttab_alloc_pages);
EXPORT_SYMBOL_GPL(gnttab_page_cache_init);
EXPORT_SYMBOL_GPL(gnttab_page_cache_get);
EXPORT_SYMBOL_GPL(gnttab_page_cache_put);
EXPORT_SYMBOL_GPL(gnttab_page_cache_shrink);
EXPORT_SYMBOL_GPL(gnttab_pages_clear_private);
EXPORT_SYMBOL_GPL(gnttab_free_pages);
EXPORT_SYMBOL_GPL(gnttab_batch_map);
EXPORT_SYMBOL_GPL(gnttab_batch_copy);
EXPORT_SYMBOL_GPL(gnttab_foreach_grant_in_range);
EXPORT_SYMBOL_GPL(gnttab_map_refs);
EXPORT_SYMBOL_GPL(gnttab_unmap_refs);
EXPORT_SYMBOL_GPL(gnttab_unmap_refs_async);
EXPORT_SYMBOL_GPL(gnttab_unmap_refs_sync);
#ifdef CONFIG_XEN_GRANT_DMA_ALLOC
EXPORT_SYMBOL_GPL(gnttab_dma_alloc_pages);
EXPORT_SYMBOL_GPL(gnttab_dma_free_pages);
#endif

/* __init: the initcall runs once at boot, as grant-table.c's does. */
static int __init __gnttab_init(void)
{
	if (!xen_domain())
		return -ENODEV;

	/* Delay grant-table initialization in the PV on HVM case */
	if (xen_hvm_domain() && !xen_pvh_domain())
		return 0;

	return gnttab_init();
}
/* Starts after core_initcall so that xen_pvh_gnttab_setup can be called
 * beforehand to initialize xen_auto_xlat_grant_frames. */
core_initcall_sync(__gnttab_init);

#ifdef CONFIG_DEBUG_FS
/* xen-grant-table/refs, the same file as grant-table.c's. */
static int gnttab_refs_show(struct seq_file *m, void *unused)
{
	unsigned int size, free;
	s64 deferred;

	xen_gnttab_refs(&size, &free, &deferred);
	seq_printf(m, "entries %u\nfree %u\nin_use %u\ndeferred %lld\n",
		   size, free,
		   size ? size - GNTTAB_NR_RESERVED_ENTRIES - free : 0,
		   (long long)deferred);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(gnttab_refs);

static int __init gnttab_debugfs_init(void)
{
	unsigned int size, free;
	s64 deferred;
	struct dentry *dir;

	xen_gnttab_refs(&size, &free, &deferred);
	if (!xen_domain() || !size)
		return 0;
	dir = debugfs_create_dir("xen-grant-table", NULL);
	debugfs_create_file("refs", 0444, dir, NULL, &gnttab_refs_fops);
	return 0;
}
late_initcall(gnttab_debugfs_init);
#endif
