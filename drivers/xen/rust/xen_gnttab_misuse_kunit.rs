// SPDX-License-Identifier: GPL-2.0

//! KUnit tests that the Rust grant table core refuses what would corrupt the C one.
//!
//! Each case passes the core something a buggy caller could: a reference freed twice, one out of
//! range, a private list that loops, a garbage list head. grant-table.c takes each of them on
//! trust and corrupts its free list (a double free makes it hand out the same reference twice).
//! The Rust core warns (a `WARNING` splat per case, which the harness expects around this
//! module) and refuses, and the checks below show the free list intact afterwards.
//!
//! Built only with `XEN_GRANT_TABLE_RUST`: on the C core these cases would corrupt memory.

use kernel::{
    bindings,
    prelude::*, //
};

module! {
    type: GnttabMisuseKunit,
    name: "xen_gnttab_misuse_kunit",
    authors: ["Rust for Xen contributors"],
    description: "KUnit tests of the Rust grant table core against misuse",
    license: "GPL",
}

struct GnttabMisuseKunit;

impl kernel::Module for GnttabMisuseKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(GnttabMisuseKunit)
    }
}

#[path = "xen_gnttab_kunit_util.rs"]
mod util;
use util::{
    alloc_seq,
    free_refs,
    release_list,
    reserve,
    LIST_END, //
};

/// Far outside any grant table (Xen allows at most a few hundred thousand entries).
const FAR: u32 = 0x7fff_fff0;

fn free_one(gref: u32) {
    // SAFETY: The tests pass references they own, or ones the core must refuse.
    unsafe { bindings::gnttab_free_grant_reference(gref) };
}

fn alloc_one() -> Result<u32> {
    alloc_seq(1).ok_or(ENOSPC)
}

/// Every free reference, reserved at once and claimed one by one, is different: the free list
/// has no reference on it twice and no loop.
fn free_list_is_sound() -> Result<bool> {
    let n = free_refs();
    let mut head = reserve(n as u16).ok_or(ENOSPC)?;
    let mut seen = KVec::with_capacity(n as usize, GFP_KERNEL)?;
    loop {
        // SAFETY: `head` holds the private list just reserved.
        let g = unsafe { bindings::gnttab_claim_grant_reference(&mut head) };
        if g < 0 {
            break;
        }
        seen.push(g as u32, GFP_KERNEL)?;
    }
    let count = seen.len();
    seen.sort_unstable();
    let distinct = seen.windows(2).all(|w| w[0] != w[1]);
    for g in seen.iter() {
        // SAFETY: Each was claimed above.
        unsafe { bindings::gnttab_release_grant_reference(&mut head, *g) };
    }
    release_list(head);
    Ok(distinct && count == n as usize && free_refs() == n)
}

#[kunit_tests(rust_xen_gnttab_misuse)]
mod tests {
    use super::*;

    #[test]
    fn double_free_is_refused() -> Result {
        let before = free_refs();
        let r = alloc_one()?;
        free_one(r);
        free_one(r);
        assert_eq!(free_refs(), before);
        // grant-table.c would now hand out `r` twice in a row.
        let a = alloc_one()?;
        let b = alloc_one()?;
        assert_ne!(a, b);
        free_one(a);
        free_one(b);
        assert!(free_list_is_sound()?);
        Ok(())
    }

    #[test]
    fn out_of_range_frees_are_refused() -> Result {
        let before = free_refs();
        free_one(FAR);
        // SAFETY: A run past the end of the table, which the core must refuse.
        unsafe { bindings::gnttab_free_grant_reference_seq(FAR, 4) };
        // SAFETY: A run that wraps around, likewise.
        unsafe { bindings::gnttab_free_grant_reference_seq(u32::MAX - 1, 4) };
        assert_eq!(free_refs(), before);
        assert!(free_list_is_sound()?);
        Ok(())
    }

    #[test]
    fn reserved_references_are_never_freed() -> Result {
        let before = free_refs();
        // Reference 1 is xenstore's: freeing it is ignored, as in grant-table.c (no warning).
        free_one(1);
        assert_eq!(free_refs(), before);
        Ok(())
    }

    #[test]
    fn looped_private_list_is_freed_once() -> Result {
        let before = free_refs();
        let mut head = reserve(2).ok_or(ENOSPC)?;
        // SAFETY: `head` holds the two references just reserved.
        let a = unsafe { bindings::gnttab_claim_grant_reference(&mut head) };
        // SAFETY: As above.
        let b = unsafe { bindings::gnttab_claim_grant_reference(&mut head) };
        assert!(a > 0 && b > 0);
        // a -> b -> a -> ...
        let (a, b) = (a as u32, b as u32);
        let mut h = a;
        // SAFETY: The test owns `b`; its link now points at `a`.
        unsafe { bindings::gnttab_release_grant_reference(&mut h, b) };
        let mut h2 = b;
        // SAFETY: The test owns `a`; its link now points at `b`.
        unsafe { bindings::gnttab_release_grant_reference(&mut h2, a) };
        // Must end: a and b are freed once, the second visit of a is refused.
        release_list(a);
        assert_eq!(free_refs(), before);
        assert!(free_list_is_sound()?);
        Ok(())
    }

    #[test]
    fn garbage_list_heads_are_refused() -> Result {
        let before = free_refs();
        let mut head = FAR;
        // SAFETY: A garbage head, which the core must refuse without reading through it.
        let r = unsafe { bindings::gnttab_claim_grant_reference(&mut head) };
        assert_eq!(r, -(bindings::ENOSPC as i32));
        assert_eq!(head, FAR);
        let mut head = LIST_END;
        // SAFETY: Releasing a garbage reference, which the core must refuse.
        unsafe { bindings::gnttab_release_grant_reference(&mut head, FAR) };
        assert_eq!(head, LIST_END);
        release_list(FAR);
        assert_eq!(free_refs(), before);
        Ok(())
    }

    #[test]
    fn out_of_range_entries_are_not_written() -> Result {
        let before = free_refs();
        // SAFETY: A reference far outside the shared table, which the core must refuse to write.
        unsafe { bindings::gnttab_grant_foreign_access_ref(FAR, 0, 0, 1) };
        // SAFETY: Likewise for ending access.
        assert_eq!(unsafe { bindings::gnttab_end_foreign_access_ref(FAR) }, 0);
        // SAFETY: Likewise.
        assert_eq!(unsafe { bindings::gnttab_try_end_foreign_access(FAR) }, 0);
        // Refused, not deferred: a deferred entry for it would be retried (and warn) every second.
        // SAFETY: Likewise; no page is given up.
        unsafe { bindings::gnttab_end_foreign_access(FAR, core::ptr::null_mut()) };
        assert_eq!(free_refs(), before);
        assert!(free_list_is_sound()?);
        Ok(())
    }
}
