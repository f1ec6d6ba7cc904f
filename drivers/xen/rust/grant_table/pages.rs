// SPDX-License-Identifier: GPL-2.0

//! Pages for grant mappings, and the grant map, unmap and copy operations.
//!
//! This is the part of `grant-table.c` that C moved to `grant-table-pages.c`: it keeps no state of
//! the grant table (the free list, the shared entries, the version). It hands out pages to map
//! other domains' grants into (`gnttab_alloc_pages` and the page cache), marks the pages that hold
//! such a mapping (`PG_foreign` and the `xen_page_foreign` record in `page->private`), wraps the
//! map, unmap and copy hypercalls with the retry of grants the hypervisor has paged out
//! (`GNTST_eagain`), and unmaps a batch once no one else holds its pages.
//!
//! What the hypervisor writes back (statuses) is trusted as the hypervisor is; what callers pass
//! is taken on trust as C takes it (these functions take raw arrays and counts), except that
//! nothing here panics: where C `BUG()`s on a failed hypercall, this marks every operation of the
//! batch failed and warns.
//!
//! Both variants of the page cache are here: pages linked through `page->lru`, and, with
//! `XEN_UNPOPULATED_ALLOC`, through `page->zone_device_data`; and the DMA buffers of
//! `XEN_GRANT_DMA_ALLOC`. 32-bit kernels, which keep the `xen_page_foreign` record in an
//! allocation, are excluded by `XEN_GRANT_TABLE_RUST`'s Kconfig dependencies.

use core::{
    ptr,
    sync::atomic::{
        AtomicI32,
        Ordering, //
    },
};
use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    page::PAGE_SIZE,
    prelude::*,
    static_lock_class,
    sync::Completion,
    warn_on, //
};

use super::XEN_PAGE_SIZE;

// Provided by grant-table-glue.c.
unsafe extern "C" {
    /// `pr_warn_ratelimited("maptrack limit reached, ...")`, with its own ratelimit state.
    fn xen_gnttab_warn_maptrack_full();
}

/// Xen pages per kernel page.
const XEN_PFN_PER_PAGE: usize = PAGE_SIZE / XEN_PAGE_SIZE;

/// Longest wait, in ms, for a grant the hypervisor has paged out (`MAX_DELAY`): the retries
/// sleep 1, 2, ... ms, so about 32 s in all.
const MAX_EAGAIN_DELAY_MS: c_uint = 256;

/// The first retry of an asynchronous unmap, in ms; the n-th waits n times as long.
const UNMAP_REFS_DELAY_MS: c_uint = 5;

/// A grant operation the eagain retry can repeat: its command and where its status is.
trait GrantOp {
    const CMD: c_uint;
    fn status(&mut self) -> &mut i16;
}

impl GrantOp for bindings::gnttab_map_grant_ref {
    const CMD: c_uint = bindings::GNTTABOP_map_grant_ref;
    fn status(&mut self) -> &mut i16 {
        &mut self.status
    }
}

impl GrantOp for bindings::gnttab_unmap_grant_ref {
    const CMD: c_uint = bindings::GNTTABOP_unmap_grant_ref;
    fn status(&mut self) -> &mut i16 {
        &mut self.status
    }
}

impl GrantOp for bindings::gnttab_copy {
    const CMD: c_uint = bindings::GNTTABOP_copy;
    fn status(&mut self) -> &mut i16 {
        &mut self.status
    }
}

/// `GNTST_*` statuses as the `i16` the operations hold.
const fn gntst(s: c_int) -> i16 {
    s as i16
}

/// Issues `count` operations of `T::CMD` from `ops`; the hypercall's result.
///
/// # Safety
///
/// `ops` must point to `count` valid, writable operations of type `T`.
unsafe fn hypercall<T: GrantOp>(ops: *mut T, count: c_uint) -> c_int {
    // SAFETY: The caller passes `count` valid operations of `T`, which is `T::CMD`'s type.
    unsafe { bindings::HYPERVISOR_grant_table_op(T::CMD, ops.cast::<c_void>(), count) }
}

/// Issues `count` operations of `T::CMD` from `ops`; on a hypercall failure (which C treats with
/// `BUG()`) marks each of them failed, so that the caller sees it, and warns.
///
/// # Safety
///
/// `ops` must point to `count` valid, writable operations of type `T`.
unsafe fn grant_table_op<T: GrantOp>(ops: *mut T, count: c_uint) -> bool {
    // SAFETY: The caller's guarantee.
    let rc = unsafe { hypercall(ops, count) };
    if rc == 0 {
        return true;
    }
    pr_err!(
        "grant table operation {} on {} entries failed: {}\n",
        T::CMD,
        count,
        rc
    );
    warn_on!(true);
    for i in 0..count as usize {
        // SAFETY: `i < count`; the caller passes `count` valid, writable operations.
        *unsafe { &mut *ops.add(i) }.status() = gntst(bindings::GNTST_general_error);
    }
    false
}

/// Repeats one operation that the hypervisor answered with `GNTST_eagain` (a paged-out frame),
/// sleeping 1, 2, ... ms between tries, until it gives another answer or `MAX_EAGAIN_DELAY_MS`
/// is reached; then the status is `GNTST_bad_page` (`gnttab_retry_eagain_gop`).
fn retry_eagain<T: GrantOp>(op: &mut T, func: &CStr) {
    let mut delay: c_uint = 1;
    loop {
        // SAFETY: `op` is one valid, writable operation of `T`.
        if !unsafe { grant_table_op(ptr::from_mut(op), 1) } {
            return;
        }
        if *op.status() != gntst(bindings::GNTST_eagain) {
            return;
        }
        // SAFETY: Sleeping is allowed: the caller may sleep (the C API's rule for these).
        unsafe { bindings::msleep(delay) };
        delay += 1;
        if delay >= MAX_EAGAIN_DELAY_MS {
            break;
        }
    }
    // SAFETY: `current` is always valid in process context, where this runs (it sleeps).
    let comm = unsafe { CStr::from_char_ptr((*bindings::get_current()).comm.as_ptr()) };
    pr_err!("{}: {} eagain grant\n", func, comm);
    *op.status() = gntst(bindings::GNTST_bad_page);
}

/// Retries each operation of a batch the hypervisor answered with `GNTST_eagain`.
///
/// # Safety
///
/// `batch` must point to `count` valid, writable operations of type `T`.
unsafe fn batch_op<T: GrantOp>(batch: *mut T, count: c_uint, func: &CStr) {
    // SAFETY: The caller's guarantee.
    if !unsafe { grant_table_op(batch, count) } {
        return;
    }
    for i in 0..count as usize {
        // SAFETY: `i < count`; the caller passes `count` valid, writable operations.
        let op = unsafe { &mut *batch.add(i) };
        if *op.status() == gntst(bindings::GNTST_eagain) {
            retry_eagain(op, func);
        }
    }
}

/// Maps a batch of grants, retrying those the hypervisor has paged out.
///
/// # Safety
///
/// `batch` must point to `count` valid map operations.
#[export]
pub unsafe extern "C" fn gnttab_batch_map(
    batch: *mut bindings::gnttab_map_grant_ref,
    count: c_uint,
) {
    // SAFETY: The caller's guarantee.
    unsafe { batch_op(batch, count, c"gnttab_batch_map") }
}

/// Copies a batch of grants, retrying those the hypervisor has paged out.
///
/// # Safety
///
/// `batch` must point to `count` valid copy operations.
#[export]
pub unsafe extern "C" fn gnttab_batch_copy(batch: *mut bindings::gnttab_copy, count: c_uint) {
    // SAFETY: The caller's guarantee.
    unsafe { batch_op(batch, count, c"gnttab_batch_copy") }
}

/// Calls `func` for each Xen page (grant) of `len` bytes at `offset` in `page`, with its gfn,
/// offset and length in that Xen page; `len` is cut at the end of `page`.
///
/// # Safety
///
/// `page` must be a valid page and `func` a function that may be called with `data`.
#[export]
pub unsafe extern "C" fn gnttab_foreach_grant_in_range(
    page: *mut bindings::page,
    offset: c_uint,
    len: c_uint,
    func: bindings::xen_grant_fn_t,
    data: *mut c_void,
) {
    let Some(func) = func else { return };
    let offset = offset as usize;
    let mut len = (len as usize).min(PAGE_SIZE.saturating_sub(offset));
    let mut goffset = offset % XEN_PAGE_SIZE;
    // SAFETY: The caller passes a valid page.
    let mut xen_pfn =
        unsafe { bindings::xen_page_to_xen_pfn(page) } + (offset / XEN_PAGE_SIZE) as c_ulong;
    while len > 0 {
        let glen = (XEN_PAGE_SIZE - goffset).min(len);
        // SAFETY: `func` may be called with `data` (the caller's guarantee); the other arguments
        // are plain values.
        unsafe {
            func(
                bindings::pfn_to_gfn(xen_pfn),
                goffset as c_uint,
                glen as c_uint,
                data,
            )
        };
        goffset = 0;
        xen_pfn += 1;
        len -= glen;
    }
}

/// Calls `func` for each of the first `nr_grefs` Xen pages of `pages`, whole.
///
/// # Safety
///
/// `pages` must hold `DIV_ROUND_UP(nr_grefs, XEN_PFN_PER_PAGE)` valid pages and `func` be a
/// function that may be called with `data`.
#[export]
pub unsafe extern "C" fn gnttab_foreach_grant(
    pages: *mut *mut bindings::page,
    nr_grefs: c_uint,
    func: bindings::xen_grant_fn_t,
    data: *mut c_void,
) {
    let Some(func) = func else { return };
    let mut left = nr_grefs as usize;
    let mut p = 0usize;
    while left > 0 {
        // SAFETY: The caller passes enough valid pages for `nr_grefs` grants, and `p` counts the
        // pages whose grants were done, so there is a grant left in page `p`.
        let xen_pfn = unsafe { bindings::xen_page_to_xen_pfn(*pages.add(p)) };
        let n = left.min(XEN_PFN_PER_PAGE);
        for j in 0..n {
            // SAFETY: As in `gnttab_foreach_grant_in_range`.
            unsafe {
                func(
                    bindings::pfn_to_gfn(xen_pfn + j as c_ulong),
                    (j * XEN_PAGE_SIZE) as c_uint,
                    XEN_PAGE_SIZE as c_uint,
                    data,
                )
            };
        }
        left -= n;
        p += 1;
    }
}

/// Maps `count` grants into `pages` (and, for PV, the kernel mappings of `kmap_ops`), marking
/// each page that got a mapping foreign with the granting domain and reference.
///
/// # Safety
///
/// `map_ops` and `pages` (and `kmap_ops` if not null) must hold `count` valid entries.
#[export]
pub unsafe extern "C" fn gnttab_map_refs(
    map_ops: *mut bindings::gnttab_map_grant_ref,
    kmap_ops: *mut bindings::gnttab_map_grant_ref,
    pages: *mut *mut bindings::page,
    count: c_uint,
) -> c_int {
    // SAFETY: The caller passes `count` valid map operations.
    let ret = unsafe { hypercall(map_ops, count) };
    if ret != 0 {
        return ret;
    }
    for i in 0..count as usize {
        // SAFETY: `i < count`; the caller passes `count` valid operations.
        let op = unsafe { &mut *map_ops.add(i) };
        if op.status == gntst(bindings::GNTST_eagain) {
            retry_eagain(op, c"gnttab_map_refs");
        }
        match c_int::from(op.status) {
            s if s == bindings::GNTST_okay as c_int => {
                // SAFETY: `i < count`; the caller passes `count` valid pages.
                let page = unsafe { *pages.add(i) };
                // SAFETY: `page` is valid; `PG_foreign` is this code's to set on it.
                let foreign = unsafe {
                    bindings::SetPageForeign(page);
                    bindings::xen_page_foreign(page)
                };
                if !foreign.is_null() {
                    // SAFETY: With `PG_foreign` set, `foreign` points into `page->private`,
                    // which the page's owner gave to the grant mapping (`gnttab_pages_set_private`).
                    unsafe {
                        (*foreign).domid = op.dom;
                        (*foreign).gref = op.ref_;
                    }
                }
            }
            s if s == bindings::GNTST_no_device_space => {
                // SAFETY: A plain call.
                unsafe { xen_gnttab_warn_maptrack_full() };
            }
            _ => {}
        }
    }
    // SAFETY: The caller passes `count` valid entries in each array (or a null `kmap_ops`).
    unsafe { bindings::set_foreign_p2m_mapping(map_ops, kmap_ops, pages, count) }
}

/// Unmaps `count` grants from `pages` and clears their foreign mark.
///
/// # Safety
///
/// `unmap_ops` and `pages` (and `kunmap_ops` if not null) must hold `count` valid entries.
#[export]
pub unsafe extern "C" fn gnttab_unmap_refs(
    unmap_ops: *mut bindings::gnttab_unmap_grant_ref,
    kunmap_ops: *mut bindings::gnttab_unmap_grant_ref,
    pages: *mut *mut bindings::page,
    count: c_uint,
) -> c_int {
    // SAFETY: The caller passes `count` valid unmap operations.
    let ret = unsafe { hypercall(unmap_ops, count) };
    if ret != 0 {
        return ret;
    }
    for i in 0..count as usize {
        // SAFETY: `i < count`; the caller passes `count` valid pages.
        unsafe { bindings::ClearPageForeign(*pages.add(i)) };
    }
    // SAFETY: The caller passes `count` valid entries in each array (or a null `kunmap_ops`).
    unsafe { bindings::clear_foreign_p2m_mapping(unmap_ops, kunmap_ops, pages, count) }
}

/// The delayed work of an asynchronous unmap: counts the retry and tries again.
///
/// # Safety
///
/// `work` must be the `gnttab_work.work` of a live `gntab_unmap_queue_data` that
/// `gnttab_unmap_refs_async` initialised.
unsafe extern "C" fn unmap_work(work: *mut bindings::work_struct) {
    let off = core::mem::offset_of!(bindings::gntab_unmap_queue_data, gnttab_work)
        + core::mem::offset_of!(bindings::delayed_work, work);
    // SAFETY: `work` is embedded in a `gntab_unmap_queue_data` at `off` (the caller's guarantee).
    let item = unsafe { work.byte_sub(off) }.cast::<bindings::gntab_unmap_queue_data>();
    // SAFETY: `item` is live and only this work item runs on it now.
    unsafe {
        if (*item).age != c_uint::MAX {
            (*item).age += 1;
        }
        unmap_refs_async(item);
    }
}

/// Unmaps `item`'s grants if no one else holds a reference to its pages, and calls its `done`;
/// otherwise tries again later, waiting longer each time.
///
/// # Safety
///
/// `item` must be live, with `count` valid entries in its arrays, and its work initialised.
unsafe fn unmap_refs_async(item: *mut bindings::gntab_unmap_queue_data) {
    // SAFETY: `item` is live (the caller's guarantee).
    let it = unsafe { &mut *item };
    for pc in 0..it.count as usize {
        // SAFETY: `pc < count`; the item holds `count` valid pages.
        if unsafe { bindings::page_count(*it.pages.add(pc)) } > 1 {
            let delay = UNMAP_REFS_DELAY_MS.saturating_mul(it.age.saturating_add(1));
            // SAFETY: The work is initialised and `item` stays live until `done` is called.
            unsafe {
                bindings::queue_delayed_work_on(
                    bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                    bindings::system_percpu_wq,
                    &mut it.gnttab_work,
                    bindings::__msecs_to_jiffies(delay),
                )
            };
            return;
        }
    }
    // SAFETY: The item's arrays hold `count` valid entries.
    let ret = unsafe { gnttab_unmap_refs(it.unmap_ops, it.kunmap_ops, it.pages, it.count) };
    if let Some(done) = it.done {
        // SAFETY: `done` is the owner's callback for this item; after it the item is the owner's.
        unsafe { done(ret, item) };
    }
}

/// Unmaps `item`'s grants once no one else holds its pages, then calls `item->done`.
///
/// # Safety
///
/// `item` must stay valid until `done` is called, with `count` valid entries in its arrays.
#[export]
pub unsafe extern "C" fn gnttab_unmap_refs_async(item: *mut bindings::gntab_unmap_queue_data) {
    // SAFETY: `item` is valid; its delayed work is initialised here before any use, with the
    // work function above and the workqueue's timer function, as `INIT_DELAYED_WORK` does.
    unsafe {
        let dw = ptr::addr_of_mut!((*item).gnttab_work);
        bindings::init_work_with_key(
            ptr::addr_of_mut!((*dw).work),
            Some(unmap_work),
            false,
            c"gnttab_unmap_work".as_char_ptr(),
            static_lock_class!().as_ptr(),
        );
        bindings::timer_init_key(
            ptr::addr_of_mut!((*dw).timer),
            Some(bindings::delayed_work_timer_fn),
            bindings::TIMER_IRQSAFE,
            c"gnttab_unmap_work.timer".as_char_ptr(),
            static_lock_class!().as_ptr(),
        );
        (*item).age = 0;
        unmap_refs_async(item);
    }
}

/// What `gnttab_unmap_refs_sync` waits on: the result and the completion.
#[pin_data]
struct SyncWait {
    #[pin]
    done: Completion,
    /// Written by the callback before it completes `done`, read after the wait.
    result: AtomicI32,
}

/// The `done` callback of `gnttab_unmap_refs_sync`'s item.
///
/// # Safety
///
/// `item->data` must point to the live `SyncWait` of a `gnttab_unmap_refs_sync` call.
unsafe extern "C" fn unmap_refs_callback(
    result: c_int,
    item: *mut bindings::gntab_unmap_queue_data,
) {
    // SAFETY: `gnttab_unmap_refs_sync` set `data` to its `SyncWait`, which lives until the
    // completion below is signalled and waited for.
    let w = unsafe { &*(*item).data.cast::<SyncWait>() };
    w.result.store(result, Ordering::Relaxed);
    // The completion orders the store before the waiter's load.
    w.done.complete_all();
}

/// Unmaps `item`'s grants once no one else holds its pages, and waits for it.
///
/// # Safety
///
/// `item` must be valid with `count` valid entries in its arrays; the caller may sleep.
#[export]
pub unsafe extern "C" fn gnttab_unmap_refs_sync(
    item: *mut bindings::gntab_unmap_queue_data,
) -> c_int {
    pin_init::stack_pin_init!(let wait = pin_init!(SyncWait {
        done <- Completion::new(),
        result: AtomicI32::new(0),
    }));
    let w: &SyncWait = &wait;
    // SAFETY: `w` outlives the unmap: this waits for the callback, which is its last use, and
    // the callback only uses it through a shared reference.
    unsafe {
        (*item).data = ptr::from_ref(w).cast_mut().cast::<c_void>();
        (*item).done = Some(unmap_refs_callback);
        gnttab_unmap_refs_async(item);
    }
    w.done.wait_for_completion();
    w.result.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Pages to map grants into, and the page cache.

/// Marks `nr_pages` pages as holding (future) grant mappings: their `page->private` is then the
/// `xen_page_foreign` record that `gnttab_map_refs` fills.
///
/// # Safety
///
/// `pages` must hold `nr_pages` valid pages whose private field is the caller's to give.
#[export]
pub unsafe extern "C" fn gnttab_pages_set_private(
    nr_pages: c_int,
    pages: *mut *mut bindings::page,
) -> c_int {
    for i in 0..nr_pages.max(0) as usize {
        // SAFETY: `i < nr_pages`; the caller passes `nr_pages` valid pages. On 64-bit kernels
        // (the only ones this is built for) the record lives in `page->private` itself.
        unsafe { bindings::SetPagePrivate(*pages.add(i)) };
    }
    0
}

/// Clears what `gnttab_pages_set_private` set.
///
/// # Safety
///
/// `pages` must hold `nr_pages` valid pages.
#[export]
pub unsafe extern "C" fn gnttab_pages_clear_private(
    nr_pages: c_int,
    pages: *mut *mut bindings::page,
) {
    for i in 0..nr_pages.max(0) as usize {
        // SAFETY: `i < nr_pages`; the caller passes `nr_pages` valid pages.
        unsafe {
            let page = *pages.add(i);
            if bindings::PagePrivate(page) {
                bindings::ClearPagePrivate(page);
            }
        }
    }
}

/// Allocates `nr_pages` pages without memory behind them (ballooned out), ready for grant
/// mappings; 0 or a negative errno.
///
/// # Safety
///
/// `pages` must have room for `nr_pages` pointers.
#[export]
pub unsafe extern "C" fn gnttab_alloc_pages(
    nr_pages: c_int,
    pages: *mut *mut bindings::page,
) -> c_int {
    let Ok(n) = c_uint::try_from(nr_pages) else {
        return -(bindings::EINVAL as c_int);
    };
    // SAFETY: `pages` has room for `nr_pages` pointers.
    let ret = unsafe { alloc_unpopulated(n, pages) };
    if ret < 0 {
        return ret;
    }
    // SAFETY: The pages were just allocated for the caller.
    let ret = unsafe { gnttab_pages_set_private(nr_pages, pages) };
    if ret < 0 {
        // SAFETY: As above.
        unsafe { gnttab_free_pages(nr_pages, pages) };
    }
    ret
}

/// Frees pages from `gnttab_alloc_pages`.
///
/// # Safety
///
/// `pages` must hold `nr_pages` pages from `gnttab_alloc_pages`, no longer mapped or used.
#[export]
pub unsafe extern "C" fn gnttab_free_pages(nr_pages: c_int, pages: *mut *mut bindings::page) {
    let Ok(n) = c_uint::try_from(nr_pages) else {
        return;
    };
    // SAFETY: The caller's guarantee.
    unsafe {
        gnttab_pages_clear_private(nr_pages, pages);
        free_unpopulated(n, pages);
    }
}

/// `xen_alloc_unpopulated_pages()`: pages of unpopulated memory, or, without
/// `XEN_UNPOPULATED_ALLOC` (where the C name is an inline wrapper), ballooned-out pages.
///
/// # Safety
///
/// `pages` must have room for `n` pointers.
unsafe fn alloc_unpopulated(n: c_uint, pages: *mut *mut bindings::page) -> c_int {
    #[cfg(CONFIG_XEN_UNPOPULATED_ALLOC)]
    // SAFETY: The caller's guarantee.
    let ret = unsafe { bindings::xen_alloc_unpopulated_pages(n, pages) };
    #[cfg(not(CONFIG_XEN_UNPOPULATED_ALLOC))]
    // SAFETY: The caller's guarantee.
    let ret = unsafe { bindings::xen_alloc_ballooned_pages(n, pages) };
    ret
}

/// The inverse of [`alloc_unpopulated`].
///
/// # Safety
///
/// `pages` must hold `n` pages from [`alloc_unpopulated`], no longer used.
unsafe fn free_unpopulated(n: c_uint, pages: *mut *mut bindings::page) {
    #[cfg(CONFIG_XEN_UNPOPULATED_ALLOC)]
    // SAFETY: The caller's guarantee.
    unsafe {
        bindings::xen_free_unpopulated_pages(n, pages)
    };
    #[cfg(not(CONFIG_XEN_UNPOPULATED_ALLOC))]
    // SAFETY: The caller's guarantee.
    unsafe {
        bindings::xen_free_ballooned_pages(n, pages)
    };
}

/// The page cache's lock, taken with interrupts off (the cache is used from any context).
struct CacheGuard {
    lock: *mut bindings::spinlock_t,
    flags: c_ulong,
}

impl CacheGuard {
    /// # Safety
    ///
    /// `cache` must be a valid cache that `gnttab_page_cache_init` initialised.
    unsafe fn lock(cache: *mut bindings::gnttab_page_cache) -> Self {
        // SAFETY: The lock was initialised by `gnttab_page_cache_init`.
        unsafe {
            let lock = ptr::addr_of_mut!((*cache).lock);
            let flags = bindings::xen_spin_lock_irqsave(lock);
            Self { lock, flags }
        }
    }
}

impl Drop for CacheGuard {
    fn drop(&mut self) {
        // SAFETY: `lock` was taken by `CacheGuard::lock` with these flags.
        unsafe { bindings::spin_unlock_irqrestore(self.lock, self.flags) };
    }
}

/// The cache's list: pages linked through `page->lru` (a `list_head` in the cache), or, with
/// `XEN_UNPOPULATED_ALLOC` (whose pages are `ZONE_DEVICE` pages, with no `lru`), through
/// `page->zone_device_data` from a pointer in the cache. Each function needs the cache's lock.
#[cfg(not(CONFIG_XEN_UNPOPULATED_ALLOC))]
mod cache_list {
    use super::*;

    /// # Safety
    ///
    /// `cache` must be valid for writes.
    pub(super) unsafe fn init(cache: *mut bindings::gnttab_page_cache) {
        // SAFETY: The caller's guarantee.
        unsafe { bindings::INIT_LIST_HEAD(ptr::addr_of_mut!((*cache).pages)) };
    }

    /// # Safety
    ///
    /// `cache` must be initialised, with its lock held.
    pub(super) unsafe fn is_empty(cache: *mut bindings::gnttab_page_cache) -> bool {
        // SAFETY: The caller's guarantee.
        unsafe { bindings::list_empty(ptr::addr_of!((*cache).pages)) }
    }

    /// # Safety
    ///
    /// `cache` must be initialised and not empty, with its lock held.
    pub(super) unsafe fn deq(cache: *mut bindings::gnttab_page_cache) -> *mut bindings::page {
        // SAFETY: The list is valid and not empty; its entries are pages' `lru` fields.
        unsafe {
            let first = (*cache).pages.next;
            bindings::list_del(first);
            bindings::xen_lru_to_page(first)
        }
    }

    /// # Safety
    ///
    /// `cache` must be initialised, with its lock held; `page` must be valid and not listed.
    pub(super) unsafe fn enq(cache: *mut bindings::gnttab_page_cache, page: *mut bindings::page) {
        // SAFETY: The caller's guarantee.
        unsafe {
            bindings::list_add(
                bindings::xen_page_lru(page),
                ptr::addr_of_mut!((*cache).pages),
            )
        };
    }
}

#[cfg(CONFIG_XEN_UNPOPULATED_ALLOC)]
mod cache_list {
    use super::*;

    /// # Safety
    ///
    /// `cache` must be valid for writes.
    pub(super) unsafe fn init(cache: *mut bindings::gnttab_page_cache) {
        // SAFETY: The caller's guarantee.
        unsafe { (*cache).pages = ptr::null_mut() };
    }

    /// # Safety
    ///
    /// `cache` must be initialised, with its lock held.
    pub(super) unsafe fn is_empty(cache: *mut bindings::gnttab_page_cache) -> bool {
        // SAFETY: The caller's guarantee.
        unsafe { (*cache).pages.is_null() }
    }

    /// # Safety
    ///
    /// `cache` must be initialised and not empty, with its lock held.
    pub(super) unsafe fn deq(cache: *mut bindings::gnttab_page_cache) -> *mut bindings::page {
        // SAFETY: The first page is valid; the chain continues in its `zone_device_data`.
        unsafe {
            let page = (*cache).pages;
            (*cache).pages = bindings::xen_page_cache_next(page);
            page
        }
    }

    /// # Safety
    ///
    /// `cache` must be initialised, with its lock held; `page` must be valid and not listed.
    pub(super) unsafe fn enq(cache: *mut bindings::gnttab_page_cache, page: *mut bindings::page) {
        // SAFETY: The caller's guarantee.
        unsafe {
            bindings::xen_page_cache_set_next(page, (*cache).pages);
            (*cache).pages = page;
        }
    }
}

/// Takes the page added last off `cache` (which the caller checked is not empty).
///
/// # Safety
///
/// The cache's lock must be held and the cache not empty.
unsafe fn cache_deq(cache: *mut bindings::gnttab_page_cache) -> *mut bindings::page {
    // SAFETY: The caller's guarantee.
    unsafe {
        (*cache).num_pages = (*cache).num_pages.wrapping_sub(1);
        cache_list::deq(cache)
    }
}

/// Initialises a page cache.
///
/// # Safety
///
/// `cache` must be valid for writes and not in use.
#[export]
pub unsafe extern "C" fn gnttab_page_cache_init(cache: *mut bindings::gnttab_page_cache) {
    // SAFETY: `cache` is valid for writes (the caller's guarantee).
    unsafe {
        bindings::__spin_lock_init(
            ptr::addr_of_mut!((*cache).lock),
            c"&cache->lock".as_char_ptr(),
            static_lock_class!().as_ptr(),
        );
        cache_list::init(cache);
        (*cache).num_pages = 0;
    }
}

/// Takes a page from `cache`, or allocates one if it is empty; 0 or a negative errno.
///
/// # Safety
///
/// `cache` must be initialised; `page` must have room for one pointer.
#[export]
pub unsafe extern "C" fn gnttab_page_cache_get(
    cache: *mut bindings::gnttab_page_cache,
    page: *mut *mut bindings::page,
) -> c_int {
    {
        // SAFETY: The cache is initialised (the caller's guarantee).
        let _guard = unsafe { CacheGuard::lock(cache) };
        // SAFETY: The lock is held.
        if unsafe { cache_list::is_empty(cache) } {
            drop(_guard);
            // SAFETY: `page` has room for one pointer.
            return unsafe { gnttab_alloc_pages(1, page) };
        }
        // SAFETY: The lock is held and the list is not empty; `page` is writable.
        unsafe { *page = cache_deq(cache) };
    }
    0
}

/// Puts `num` pages into `cache`.
///
/// # Safety
///
/// `cache` must be initialised; `page` must hold `num` pages from `gnttab_alloc_pages` (or the
/// cache), not mapped and not in the cache.
#[export]
pub unsafe extern "C" fn gnttab_page_cache_put(
    cache: *mut bindings::gnttab_page_cache,
    page: *mut *mut bindings::page,
    num: c_uint,
) {
    // SAFETY: The cache is initialised (the caller's guarantee).
    let _guard = unsafe { CacheGuard::lock(cache) };
    for i in 0..num as usize {
        // SAFETY: The lock is held; the caller passes `num` pages, which the cache now owns.
        unsafe { cache_list::enq(cache, *page.add(i)) };
    }
    // SAFETY: The lock is held.
    unsafe { (*cache).num_pages = (*cache).num_pages.wrapping_add(num) };
}

/// Frees pages of `cache` until it holds at most `num`.
///
/// # Safety
///
/// `cache` must be initialised; the caller may sleep.
#[export]
pub unsafe extern "C" fn gnttab_page_cache_shrink(
    cache: *mut bindings::gnttab_page_cache,
    num: c_uint,
) {
    // Freed ten at a time, with the lock dropped, as C does.
    const BATCH: usize = 10;
    let mut batch = [ptr::null_mut::<bindings::page>(); BATCH];
    loop {
        let mut n = 0;
        {
            // SAFETY: The cache is initialised (the caller's guarantee).
            let _guard = unsafe { CacheGuard::lock(cache) };
            // SAFETY: The lock is held; while `num_pages` is above `num` the list is not empty.
            while n < BATCH && unsafe { (*cache).num_pages } > num {
                if let Some(slot) = batch.get_mut(n) {
                    // SAFETY: As above.
                    *slot = unsafe { cache_deq(cache) };
                }
                n += 1;
            }
        }
        if n == 0 {
            return;
        }
        // SAFETY: The pages came out of the cache, which held them for the caller.
        unsafe { gnttab_free_pages(n as c_int, batch.as_mut_ptr()) };
    }
}

// ---------------------------------------------------------------------------------------------
// DMA buffers to map grants into (`XEN_GRANT_DMA_ALLOC`).

/// The size in bytes of `nr_pages` pages, if it fits the limit C sets (`INT_MAX >> PAGE_SHIFT`
/// pages).
#[cfg(CONFIG_XEN_GRANT_DMA_ALLOC)]
fn dma_size(nr_pages: c_int) -> Option<usize> {
    let n = usize::try_from(nr_pages).ok()?;
    (n <= (c_int::MAX as usize >> kernel::page::PAGE_SHIFT)).then_some(n * PAGE_SIZE)
}

/// The DMA attributes of a buffer: none for a coherent one, else write-combine.
#[cfg(CONFIG_XEN_GRANT_DMA_ALLOC)]
fn dma_attrs(coherent: bool) -> c_ulong {
    if coherent {
        0
    } else {
        bindings::DMA_ATTR_WRITE_COMBINE as c_ulong
    }
}

/// Allocates a DMA buffer of `args->nr_pages` pages for `args->dev` (coherent or write-combine),
/// gives its frames back to Xen so that grants can be mapped there, and fills `args->pages` and
/// `args->frames`; 0 or a negative errno.
///
/// # Safety
///
/// `args` must be valid, with `pages` and `frames` holding room for `nr_pages` entries and `dev`
/// a device that may do DMA.
#[cfg(CONFIG_XEN_GRANT_DMA_ALLOC)]
#[export]
pub unsafe extern "C" fn gnttab_dma_alloc_pages(
    args: *mut bindings::gnttab_dma_alloc_args,
) -> c_int {
    // SAFETY: The caller passes valid arguments, this function's alone while it runs.
    let a = unsafe { &mut *args };
    let Some(size) = dma_size(a.nr_pages) else {
        return -(bindings::ENOMEM as c_int);
    };
    let attrs = dma_attrs(a.coherent);
    // SAFETY: `dev` may do DMA (the caller's guarantee); `dev_bus_addr` is writable.
    a.vaddr = unsafe {
        bindings::dma_alloc_attrs(
            a.dev,
            size,
            &mut a.dev_bus_addr,
            bindings::GFP_KERNEL | bindings::__GFP_NOWARN,
            attrs,
        )
    };
    if a.vaddr.is_null() {
        return -(bindings::ENOMEM as c_int);
    }
    let start_pfn = (a.dev_bus_addr >> kernel::page::PAGE_SHIFT) as c_ulong;
    for i in 0..a.nr_pages as usize {
        // SAFETY: The buffer's `nr_pages` pages start at `start_pfn` and are ours; `pages` and
        // `frames` have room for `nr_pages` entries.
        unsafe {
            let page = bindings::pfn_to_page(start_pfn + i as c_ulong);
            *a.pages.add(i) = page;
            *a.frames.add(i) = bindings::xen_page_to_gfn(page);
            bindings::xenmem_reservation_scrub_page(page);
        }
    }
    // SAFETY: The pages are the buffer's, whose kernel mappings go with the frames.
    unsafe { bindings::xenmem_reservation_va_mapping_reset(a.nr_pages as c_ulong, a.pages) };
    // SAFETY: `frames` holds the buffer's `nr_pages` frames.
    let ret = unsafe { bindings::xenmem_reservation_decrease(a.nr_pages, a.frames) };
    let ret = if ret != a.nr_pages {
        -(bindings::EFAULT as c_int)
    } else {
        // SAFETY: The pages are the buffer's.
        unsafe { gnttab_pages_set_private(a.nr_pages, a.pages) }
    };
    if ret < 0 {
        // SAFETY: `args` describes the buffer just allocated.
        unsafe { gnttab_dma_free_pages(args) };
        return ret;
    }
    0
}

/// Takes the frames of a buffer from `gnttab_dma_alloc_pages` back from Xen and frees it; 0, or
/// `-EFAULT` if Xen did not give every frame back (the buffer is freed all the same).
///
/// # Safety
///
/// `args` must describe a buffer from `gnttab_dma_alloc_pages`, with no grant mapped in it.
#[cfg(CONFIG_XEN_GRANT_DMA_ALLOC)]
#[export]
pub unsafe extern "C" fn gnttab_dma_free_pages(
    args: *mut bindings::gnttab_dma_alloc_args,
) -> c_int {
    // SAFETY: The caller passes valid arguments, this function's alone while it runs.
    let a = unsafe { &mut *args };
    // SAFETY: `pages` holds the buffer's `nr_pages` pages.
    unsafe { gnttab_pages_clear_private(a.nr_pages, a.pages) };
    for i in 0..a.nr_pages.max(0) as usize {
        // SAFETY: `pages` and `frames` hold `nr_pages` entries.
        unsafe { *a.frames.add(i) = bindings::xen_page_to_xen_pfn(*a.pages.add(i)) };
    }
    // SAFETY: `frames` holds `nr_pages` frames to take back.
    let got = unsafe { bindings::xenmem_reservation_increase(a.nr_pages, a.frames) };
    let ret = if got == a.nr_pages {
        0
    } else {
        -(bindings::EFAULT as c_int)
    };
    // SAFETY: The pages get their kernel mappings back at the frames Xen gave.
    unsafe {
        bindings::xenmem_reservation_va_mapping_update(
            a.nr_pages.max(0) as c_ulong,
            a.pages,
            a.frames,
        )
    };
    let attrs = dma_attrs(a.coherent);
    if let Some(size) = dma_size(a.nr_pages) {
        // SAFETY: The buffer was allocated by `dma_alloc_attrs` with this size and attributes.
        unsafe { bindings::dma_free_attrs(a.dev, size, a.vaddr, a.dev_bus_addr, attrs) };
    }
    ret
}
