// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the grant table core through its C API (`include/xen/grant_table.h`).
//!
//! They use only the exported functions, so they test whichever core the kernel is built with:
//! grant-table.c, or the Rust core of `XEN_GRANT_TABLE_RUST`. A module, so that the harness runs
//! the same suite on both.

use core::{
    ptr,
    sync::atomic::{
        AtomicU32,
        AtomicU64,
        Ordering, //
    },
};
use kernel::{
    bindings,
    ffi::{
        c_uint,
        c_ulong,
        c_void, //
    },
    page::{
        Page,
        PAGE_SIZE, //
    },
    prelude::*,
    types::Opaque, //
};

module! {
    type: GnttabKunit,
    name: "xen_gnttab_kunit",
    authors: ["Rust for Xen contributors"],
    description: "KUnit tests of the Xen grant table core through its C API",
    license: "GPL",
}

struct GnttabKunit;

impl kernel::Module for GnttabKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(GnttabKunit)
    }
}

#[path = "xen_gnttab_kunit_util.rs"]
mod util;
use util::{
    alloc_seq,
    free_refs,
    release_list,
    reserve, //
};

fn free_seq(first: u32, count: u32) {
    // SAFETY: The test allocated `count` references from `first`.
    unsafe { bindings::gnttab_free_grant_reference_seq(first, count) };
}

fn claim(head: &mut u32) -> i32 {
    // SAFETY: `head` holds a private list of the test's.
    unsafe { bindings::gnttab_claim_grant_reference(head) }
}

fn release(head: &mut u32, gref: u32) {
    // SAFETY: `head` holds a private list of the test's, and the test owns `gref`.
    unsafe { bindings::gnttab_release_grant_reference(head, gref) };
}

fn is_empty(head: &u32) -> bool {
    // SAFETY: `head` is a valid pointer.
    (unsafe { bindings::gnttab_empty_grant_references(head) }) != 0
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// The free callback of the tests: counts its calls, and 100 more when its argument is 0x5a.
extern "C" fn count_call(arg: *mut c_void) {
    CALLS.fetch_add(1, Ordering::SeqCst);
    // The argument comes back as given.
    if arg as usize == 0x5a {
        CALLS.fetch_add(100, Ordering::SeqCst);
    }
}

/// The size of a Xen page: a grant's.
const XEN_PAGE_SIZE: usize = 1 << bindings::XEN_PAGE_SHIFT;

/// The calls `record_grant` saw, as (gfn, offset, len), up to `MAX_SEEN`.
const MAX_SEEN: usize = 8;
static SEEN: [AtomicU64; MAX_SEEN * 3] = [const { AtomicU64::new(0) }; MAX_SEEN * 3];
static NR_SEEN: AtomicU32 = AtomicU32::new(0);

/// The `xen_grant_fn_t` of the tests: records its arguments; `data` must be 0x5a.
extern "C" fn record_grant(gfn: c_ulong, offset: c_uint, len: c_uint, data: *mut c_void) {
    let i = NR_SEEN.fetch_add(1, Ordering::SeqCst) as usize;
    if data as usize != 0x5a {
        return;
    }
    for (k, v) in [gfn as u64, u64::from(offset), u64::from(len)]
        .into_iter()
        .enumerate()
    {
        if let Some(slot) = SEEN.get(i * 3 + k) {
            slot.store(v, Ordering::SeqCst);
        }
    }
}

/// The calls recorded since the last `seen()`.
fn seen() -> KVec<(u64, u64, u64)> {
    let n = (NR_SEEN.swap(0, Ordering::SeqCst) as usize).min(MAX_SEEN);
    let mut v = KVec::new();
    for i in 0..n {
        let get = |k: usize| {
            SEEN.get(i * 3 + k)
                .map_or(u64::MAX, |a| a.load(Ordering::SeqCst))
        };
        let _ = v.push((get(0), get(1), get(2)), GFP_KERNEL);
    }
    v
}

fn xen_gfn(page: &Page, n: usize) -> u64 {
    // SAFETY: `page` is a valid page.
    let first = unsafe { bindings::xen_page_to_gfn(page.as_ptr()) } as u64;
    // Within one page the Xen pages are consecutive in the guest's frame numbers; on x86 there is
    // one per page.
    first + n as u64
}

#[kunit_tests(rust_xen_gnttab_core)]
mod tests {
    use super::*;

    #[test]
    fn reserve_and_release_return_to_baseline() -> Result {
        let before = free_refs();
        assert!(before > 16);
        let h = reserve(16).ok_or(ENOSPC)?;
        assert_eq!(free_refs(), before - 16);
        release_list(h);
        assert_eq!(free_refs(), before);
        Ok(())
    }

    #[test]
    fn private_list_claim_and_release() -> Result {
        let before = free_refs();
        let mut head = reserve(4).ok_or(ENOSPC)?;
        let mut got = [0i32; 4];
        for g in got.iter_mut() {
            *g = claim(&mut head);
            assert!(*g >= bindings::GNTTAB_NR_RESERVED_ENTRIES as i32);
        }
        // Four different references, then the list is empty.
        for i in 0..4 {
            for j in i + 1..4 {
                assert_ne!(got[i], got[j]);
            }
        }
        assert!(is_empty(&head));
        assert_eq!(claim(&mut head), -(bindings::ENOSPC as i32));
        // A released reference is the next one claimed.
        release(&mut head, got[2] as u32);
        assert!(!is_empty(&head));
        assert_eq!(claim(&mut head), got[2]);
        for g in got {
            release(&mut head, g as u32);
        }
        release_list(head);
        assert_eq!(free_refs(), before);
        Ok(())
    }

    #[test]
    fn sequential_allocations_are_consecutive_and_disjoint() -> Result {
        let before = free_refs();
        let a = alloc_seq(16).ok_or(ENOSPC)?;
        let b = alloc_seq(16).ok_or(ENOSPC)?;
        // Two runs of 16 that do not overlap, and all 32 are gone from the free list.
        assert!(a + 16 <= b || b + 16 <= a);
        assert_eq!(free_refs(), before - 32);
        // A single reference is never inside either run.
        let one = alloc_seq(1).ok_or(ENOSPC)?;
        assert!(!(a..a + 16).contains(&one) && !(b..b + 16).contains(&one));
        free_seq(one, 1);
        free_seq(a, 16);
        free_seq(b, 16);
        assert_eq!(free_refs(), before);
        // Freed runs can be handed out again as runs.
        let c = alloc_seq(32).ok_or(ENOSPC)?;
        free_seq(c, 32);
        assert_eq!(free_refs(), before);
        Ok(())
    }

    #[test]
    fn free_callback_runs_once_references_are_free() -> Result {
        let before = free_refs();
        let all = reserve(before as u16).ok_or(ENOSPC)?;
        let mut cb = bindings::gnttab_free_callback::default();
        CALLS.store(0, Ordering::SeqCst);
        // SAFETY: `cb` lives until the end of the test, after it ran or was cancelled.
        unsafe {
            bindings::gnttab_request_free_callback(
                &mut cb,
                Some(count_call),
                0x5a as *mut c_void,
                2,
            )
        };
        assert_eq!(CALLS.load(Ordering::SeqCst), 0);
        // One free reference is not enough; two are.
        let mut head = all;
        let r1 = claim(&mut head);
        let r2 = claim(&mut head);
        assert!(r1 > 0 && r2 > 0);
        // SAFETY: The test owns `r1`.
        unsafe { bindings::gnttab_free_grant_reference(r1 as u32) };
        assert_eq!(CALLS.load(Ordering::SeqCst), 0);
        // SAFETY: The test owns `r2`.
        unsafe { bindings::gnttab_free_grant_reference(r2 as u32) };
        assert_eq!(CALLS.load(Ordering::SeqCst), 101);
        // A cancelled callback does not run.
        let r1 = alloc_seq(1).ok_or(ENOSPC)?;
        let r2 = alloc_seq(1).ok_or(ENOSPC)?;
        // SAFETY: As above.
        unsafe {
            bindings::gnttab_request_free_callback(&mut cb, Some(count_call), ptr::null_mut(), 2);
            bindings::gnttab_cancel_free_callback(&mut cb);
        }
        free_seq(r1, 1);
        free_seq(r2, 1);
        assert_eq!(CALLS.load(Ordering::SeqCst), 101);
        release_list(head);
        assert_eq!(free_refs(), before);
        Ok(())
    }

    #[test]
    fn foreach_grant_in_range_cuts_at_the_page_end() -> Result {
        let page = Page::alloc_page(GFP_KERNEL)?;
        let _ = seen();
        // SAFETY: `page` is valid; `record_grant` may be called with any data.
        unsafe {
            bindings::gnttab_foreach_grant_in_range(
                page.as_ptr(),
                100,
                3 * PAGE_SIZE as c_uint,
                Some(record_grant),
                0x5a as *mut c_void,
            )
        };
        let calls = seen();
        // From offset 100 to the end of the page, one call per Xen page it touches.
        let want = PAGE_SIZE / XEN_PAGE_SIZE - 100 / XEN_PAGE_SIZE;
        assert_eq!(calls.len(), want);
        let mut total = 0;
        for (i, &(gfn, off, len)) in calls.iter().enumerate() {
            assert_eq!(gfn, xen_gfn(&page, 100 / XEN_PAGE_SIZE + i));
            assert_eq!(
                off,
                if i == 0 {
                    (100 % XEN_PAGE_SIZE) as u64
                } else {
                    0
                }
            );
            assert!(len > 0 && off + len <= XEN_PAGE_SIZE as u64);
            total += len;
        }
        assert_eq!(total, (PAGE_SIZE - 100) as u64);
        Ok(())
    }

    #[test]
    fn batch_copy_copies_between_local_frames() -> Result {
        let src = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        let dst = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        let pattern: [u8; 64] = core::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(3));
        // SAFETY: `src` is a page of ours; 64 bytes at offset 128 are inside it.
        unsafe { src.write_raw(pattern.as_ptr(), 128, pattern.len())? };
        let mut op = bindings::gnttab_copy::default();
        // SAFETY: The pages are valid.
        unsafe {
            op.source.u.gmfn = bindings::xen_page_to_gfn(src.as_ptr());
            op.dest.u.gmfn = bindings::xen_page_to_gfn(dst.as_ptr());
        }
        op.source.domid = bindings::DOMID_SELF as u16;
        op.dest.domid = bindings::DOMID_SELF as u16;
        op.source.offset = 128;
        op.dest.offset = 256;
        op.len = pattern.len() as u16;
        op.status = 1;
        // SAFETY: One valid copy operation between two local frames of ours.
        unsafe { bindings::gnttab_batch_copy(&mut op, 1) };
        assert_eq!(i32::from(op.status), bindings::GNTST_okay as i32);
        let mut back = [0u8; 64];
        // SAFETY: 64 bytes at offset 256 are inside `dst`, which is ours.
        unsafe { dst.read_raw(back.as_mut_ptr(), 256, back.len())? };
        assert_eq!(back, pattern);
        Ok(())
    }

    #[test]
    fn page_cache_reuses_its_pages_and_shrinks() -> Result {
        let cache = KBox::new(Opaque::<bindings::gnttab_page_cache>::uninit(), GFP_KERNEL)?;
        let c = cache.get();
        let mut page: *mut bindings::page = ptr::null_mut();
        // SAFETY: `c` is valid for writes and not in use.
        unsafe { bindings::gnttab_page_cache_init(c) };
        // An empty cache allocates a page for grant mappings.
        // SAFETY: The cache is initialised; `page` has room for a pointer.
        assert_eq!(unsafe { bindings::gnttab_page_cache_get(c, &mut page) }, 0);
        assert!(!page.is_null());
        // SAFETY: `page` is a valid page.
        assert!(unsafe { bindings::PagePrivate(page) });
        let first = page;
        // SAFETY: `page` came from the cache and is not mapped.
        unsafe { bindings::gnttab_page_cache_put(c, &mut page, 1) };
        // SAFETY: The cache is initialised.
        assert_eq!(unsafe { (*c).num_pages }, 1);
        page = ptr::null_mut();
        // The cached page comes back.
        // SAFETY: As above.
        assert_eq!(unsafe { bindings::gnttab_page_cache_get(c, &mut page) }, 0);
        assert_eq!(page, first);
        // SAFETY: As above.
        assert_eq!(unsafe { (*c).num_pages }, 0);
        // SAFETY: As above.
        unsafe { bindings::gnttab_page_cache_put(c, &mut page, 1) };
        // Shrinking to nothing frees it (and clears its private mark).
        // SAFETY: The cache is initialised.
        unsafe { bindings::gnttab_page_cache_shrink(c, 0) };
        // SAFETY: As above.
        assert_eq!(unsafe { (*c).num_pages }, 0);
        Ok(())
    }

    #[test]
    fn grant_and_end_access() {
        let before = free_refs();
        // SAFETY: Granting domain 0 read access to frame 0 and ending it at once: nothing maps it.
        let r = unsafe { bindings::gnttab_grant_foreign_access(0, 0, 1) };
        assert!(r >= bindings::GNTTAB_NR_RESERVED_ENTRIES as i32);
        // SAFETY: `r` is ours; nobody mapped it, so access ends and the reference is freed.
        let ended = unsafe { bindings::gnttab_try_end_foreign_access(r as u32) };
        assert_eq!(ended, 1);
        assert_eq!(free_refs(), before);
        // The max frame count is what the table grew to at most.
        // SAFETY: Always safe.
        assert!(unsafe { bindings::gnttab_max_grant_frames() } >= 1);
    }
}
