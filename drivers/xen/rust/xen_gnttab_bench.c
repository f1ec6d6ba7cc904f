// SPDX-License-Identifier: GPL-2.0
/*
 * A micro-benchmark of the grant table core, through its C API, so that it
 * measures grant-table.c and the Rust core (XEN_GRANT_TABLE_RUST) alike.
 *
 * On load it runs two loops over one page, granted read-only to dom0 (nobody
 * maps it, so every end of access succeeds at once):
 * - one at a time: gnttab_grant_foreign_access() (claim and grant),
 *   gnttab_end_foreign_access_ref() and gnttab_free_grant_reference(), @cycles
 *   times;
 * - 32 in flight: gnttab_alloc_grant_references(32), then claim and grant 32,
 *   end and release 32, gnttab_free_grant_references(), @cycles / 32 times;
 * and the two halves of the first, to tell where a difference comes from:
 * - entries only: gnttab_grant_foreign_access_ref() and
 *   gnttab_end_foreign_access_ref() on one reference, @cycles times;
 * - allocation only: gnttab_alloc_grant_reference_seq(1) and
 *   gnttab_free_grant_reference(), @cycles times.
 * Each loop runs @reps times; the fastest repetition counts, so that whatever
 * else the machine ran meanwhile (another domain's processes, which share the
 * CPU) does not. The times (ktime, so the guest's clock: deterministic under
 * QEMU -icount) are in the read-only parameters one_ns, batch_ns, entry_ns
 * and alloc_ns, and in a log line. The module stays loaded until it is removed.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/ktime.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <xen/grant_table.h>
#include <xen/page.h>
#include <xen/xen.h>

#define BATCH 32

static unsigned int cycles = 4096;
module_param(cycles, uint, 0444);
MODULE_PARM_DESC(cycles, "grant cycles in each loop (default 4096, rounded down to 32s)");

static unsigned int reps = 16;
module_param(reps, uint, 0444);
MODULE_PARM_DESC(reps, "repetitions of each loop; the fastest counts (default 16)");

static unsigned long long one_ns, batch_ns, entry_ns, alloc_ns;
module_param(one_ns, ullong, 0444);
MODULE_PARM_DESC(one_ns, "result: ns for @cycles cycles one at a time, fastest repetition");
module_param(batch_ns, ullong, 0444);
MODULE_PARM_DESC(batch_ns, "result: ns for @cycles cycles 32 in flight, fastest repetition");
module_param(entry_ns, ullong, 0444);
MODULE_PARM_DESC(entry_ns, "result: ns for @cycles grants and ends of one reference, fastest repetition");
module_param(alloc_ns, ullong, 0444);
MODULE_PARM_DESC(alloc_ns, "result: ns for @cycles allocations and frees of one reference, fastest repetition");

static int one_at_a_time(unsigned long gfn, unsigned int n)
{
	unsigned int i;
	int ref;

	for (i = 0; i < n; i++) {
		ref = gnttab_grant_foreign_access(0, gfn, 1);
		if (ref < 0)
			return ref;
		if (!gnttab_end_foreign_access_ref(ref))
			return -EBUSY;
		gnttab_free_grant_reference(ref);
	}
	return 0;
}

static int in_flight(unsigned long gfn, unsigned int n)
{
	grant_ref_t head, refs[BATCH];
	unsigned int i, j;
	int ref;

	for (i = 0; i < n / BATCH; i++) {
		if (gnttab_alloc_grant_references(BATCH, &head))
			return -ENOSPC;
		for (j = 0; j < BATCH; j++) {
			ref = gnttab_claim_grant_reference(&head);
			if (ref < 0)
				return ref;
			refs[j] = ref;
			gnttab_grant_foreign_access_ref(refs[j], 0, gfn, 1);
		}
		for (j = 0; j < BATCH; j++) {
			if (!gnttab_end_foreign_access_ref(refs[j]))
				return -EBUSY;
			gnttab_release_grant_reference(&head, refs[j]);
		}
		gnttab_free_grant_references(head);
	}
	return 0;
}

static int entries_only(unsigned long gfn, unsigned int n)
{
	grant_ref_t ref;
	unsigned int i;
	int rc = 0;

	if (gnttab_alloc_grant_reference_seq(1, &ref))
		return -ENOSPC;
	for (i = 0; i < n; i++) {
		gnttab_grant_foreign_access_ref(ref, 0, gfn, 1);
		if (!gnttab_end_foreign_access_ref(ref)) {
			rc = -EBUSY;
			break;
		}
	}
	gnttab_free_grant_reference(ref);
	return rc;
}

static int alloc_only(unsigned int n)
{
	grant_ref_t ref;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (gnttab_alloc_grant_reference_seq(1, &ref))
			return -ENOSPC;
		gnttab_free_grant_reference(ref);
	}
	return 0;
}

/*
 * Runs @call, a loop of @cycles cycles; its time goes to *@best if it is the
 * fastest yet. A time under 1 ns per cycle is the clock not advancing (seen
 * once on wall time, early in a boot under TCG, as 1 ns for 4096 cycles), not
 * a measure: it does not count.
 */
#define TIME_LOOP(best, call)				\
	({						\
		u64 __t0 = ktime_get_ns();		\
		int __rc = (call);			\
		u64 __t = ktime_get_ns() - __t0;	\
		if (!__rc && __t >= cycles)		\
			*(best) = min(*(best), __t);	\
		__rc;					\
	})

static int __init xen_gnttab_bench_init(void)
{
	struct page *page;
	unsigned long gfn;
	unsigned int r;
	int rc;

	if (!xen_domain())
		return -ENODEV;
	cycles = cycles / BATCH * BATCH;
	if (!cycles || !reps)
		return -EINVAL;
	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!page)
		return -ENOMEM;
	gfn = xen_page_to_gfn(page);

	/* Warm up: the table grows, and the caches fill, before the first timed loop. */
	rc = one_at_a_time(gfn, BATCH) ?: in_flight(gfn, BATCH);
	if (rc)
		goto out;

	one_ns = batch_ns = entry_ns = alloc_ns = U64_MAX;
	for (r = 0; r < reps && !rc; r++)
		rc = TIME_LOOP(&one_ns, one_at_a_time(gfn, cycles)) ?:
		     TIME_LOOP(&batch_ns, in_flight(gfn, cycles)) ?:
		     TIME_LOOP(&entry_ns, entries_only(gfn, cycles)) ?:
		     TIME_LOOP(&alloc_ns, alloc_only(cycles));
	if (rc)
		goto out;
	if (one_ns == U64_MAX || batch_ns == U64_MAX || entry_ns == U64_MAX ||
	    alloc_ns == U64_MAX) {
		pr_err("the clock did not advance in any repetition of a loop\n");
		rc = -EIO;
		goto out;
	}
	pr_info("%u grant cycles one at a time in %llu ns, with 32 in flight in %llu ns; grant and end only in %llu ns, allocate and free only in %llu ns (fastest of %u)\n",
		cycles, one_ns, batch_ns, entry_ns, alloc_ns, reps);
out:
	__free_page(page);
	if (rc)
		pr_err("grant cycle failed: %d\n", rc);
	return rc;
}

static void __exit xen_gnttab_bench_exit(void)
{
}

module_init(xen_gnttab_bench_init);
module_exit(xen_gnttab_bench_exit);
MODULE_DESCRIPTION("Micro-benchmark of the Xen grant table core");
MODULE_LICENSE("GPL");
