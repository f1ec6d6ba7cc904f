// SPDX-License-Identifier: GPL-2.0

//! What the grant table KUnit modules (`xen_gnttab_kunit`, `xen_gnttab_misuse_kunit`) share:
//! calls of the grant table's C API, and a count of the free references. Included by both with
//! `#[path]`; not an object of its own.

use kernel::bindings;

/// The end of a private list (`GNTTAB_LIST_END`).
pub(crate) const LIST_END: u32 = 0xffff_ffff;

/// Reserves `count` references as a private list; its head, or `None` when they are not there.
pub(crate) fn reserve(count: u16) -> Option<u32> {
    let mut head = LIST_END;
    // SAFETY: `head` is a valid place for the list's head.
    (unsafe { bindings::gnttab_alloc_grant_references(count, &mut head) } == 0).then_some(head)
}

/// Frees the private list from `head`.
pub(crate) fn release_list(head: u32) {
    // SAFETY: The tests pass lists they reserved, or garbage the Rust core must refuse.
    unsafe { bindings::gnttab_free_grant_references(head) };
}

/// Allocates `count` consecutive references; the first.
pub(crate) fn alloc_seq(count: u32) -> Option<u32> {
    let mut first = LIST_END;
    // SAFETY: `first` is a valid place for the first reference.
    (unsafe { bindings::gnttab_alloc_grant_reference_seq(count, &mut first) } == 0).then_some(first)
}

/// The number of free references, found by reserving as many as possible (the first call grows
/// the table to its maximum, so later calls compare like with like).
pub(crate) fn free_refs() -> u32 {
    let (mut lo, mut hi) = (0u32, u32::from(u16::MAX));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match reserve(mid as u16) {
            Some(h) => {
                release_list(h);
                lo = mid;
            }
            None => hi = mid - 1,
        }
    }
    lo
}
