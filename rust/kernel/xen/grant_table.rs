// SPDX-License-Identifier: GPL-2.0

//! Grant tables: sharing pages with other domains, and mapping pages they share.
//!
//! C header: [`include/xen/grant_table.h`](srctree/include/xen/grant_table.h)
//!
//! Frontend side: [`GrantedPage`] grants another domain access to a page this domain owns. The
//! grant reference is owned and not `Copy`; dropping it ends the access. If the peer still has the
//! page mapped, the page is neither freed nor reused: it goes to the grant table's deferred path,
//! which frees it once the peer lets go (XSA-396); the KUnit tests below count those.
//! [`GrantedPage::try_end`] gives the page back when access really ended.
//!
//! Backend side: [`ForeignMapping`] maps a batch of pages another domain granted. Every
//! operation's status is checked; if any fails, nothing stays mapped (XSA-361).

use crate::{
    bindings,
    error::to_result,
    ffi::c_void,
    prelude::*,
    types::Opaque,
    xen::{
        events::DomId,
        SharedPage, //
    },
};
use core::{
    marker::PhantomPinned,
    mem::ManuallyDrop,
    sync::atomic::{
        AtomicU32,
        Ordering, //
    },
};

/// A grant reference number, as published to the peer.
pub type GrantRef = u32;

static DEFERRED_ENDS: AtomicU32 = AtomicU32::new(0);

/// How many grants were dropped while the peer still had them mapped: their pages went to
/// `gnttab_end_foreign_access`, which frees them once the peer lets go (at once if it did in the
/// meantime, otherwise from the deferred-free list). For the KUnit tests: it counts for all
/// drivers at once, so it is not an API for them.
#[cfg(CONFIG_KUNIT = "y")]
pub(crate) fn deferred_ends() -> u32 {
    DEFERRED_ENDS.load(Ordering::Relaxed)
}

/// A page this domain granted to another domain.
///
/// # Invariants
///
/// `gref` is a grant reference of this domain giving `domid` access to `page`, owned by this
/// object.
pub struct GrantedPage {
    gref: GrantRef,
    domid: DomId,
    page: ManuallyDrop<SharedPage>,
}

impl GrantedPage {
    /// Grants `domid` access to `page`, read-only or read-write. Out of grant references is
    /// `ENOSPC`.
    pub fn new(page: SharedPage, domid: DomId, readonly: bool) -> Result<Self> {
        // SAFETY: Any domain id and frame may be granted; the page stays allocated as long as
        // the grant exists, since this object owns it.
        let r = unsafe {
            bindings::gnttab_grant_foreign_access(domid, page.gfn() as usize, c_int(readonly))
        };
        to_result(r)?;
        // INVARIANT: `r` is the reference just granted for `page`.
        Ok(Self {
            gref: r as GrantRef,
            domid,
            page: ManuallyDrop::new(page),
        })
    }

    /// The grant reference, to publish to the peer.
    pub fn gref(&self) -> GrantRef {
        self.gref
    }

    /// The domain the page is granted to.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The granted page.
    pub fn page(&self) -> &SharedPage {
        &self.page
    }

    /// Ends access if the peer no longer uses the page, and gives the page back. If the peer
    /// still has it mapped, nothing changes and the grant is returned as the error.
    pub fn try_end(self) -> core::result::Result<SharedPage, Self> {
        // SAFETY: `gref` is ours (type invariant). On success the reference is freed.
        if unsafe { bindings::gnttab_try_end_foreign_access(self.gref) } == 0 {
            return Err(self);
        }
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again, so the page is moved out exactly once.
        Ok(unsafe { ManuallyDrop::take(&mut me.page) })
    }
}

impl Drop for GrantedPage {
    fn drop(&mut self) {
        // SAFETY: `gref` is ours (type invariant). On success the reference is freed.
        if unsafe { bindings::gnttab_try_end_foreign_access(self.gref) } != 0 {
            // SAFETY: The page is dropped exactly once, here.
            unsafe { ManuallyDrop::drop(&mut self.page) };
            return;
        }
        // The peer still maps the page: hand the reference and the page to the deferred path,
        // which ends access and frees the page once the peer unmaps it.
        DEFERRED_ENDS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: The page is moved out exactly once, here.
        let page = unsafe { ManuallyDrop::take(&mut self.page) }.into_raw();
        // SAFETY: `gref` is ours; the page's single reference passes to the grant table code,
        // which releases it with `put_page`.
        unsafe { bindings::gnttab_end_foreign_access(self.gref, page.as_ptr()) };
    }
}

fn c_int(b: bool) -> crate::ffi::c_int {
    crate::ffi::c_int::from(b)
}

/// A batch of reserved grant references (`gnttab_alloc_grant_references`); the unused ones are
/// returned on drop.
///
/// # Invariants
///
/// `head` is a private list of free grant references owned by this object.
pub struct Reservation {
    head: GrantRef,
}

impl Reservation {
    /// Reserves `count` references. Out of references is `ENOSPC`, never a wait.
    pub fn new(count: u16) -> Result<Self> {
        let mut head: GrantRef = 0;
        // SAFETY: `head` is a valid out-pointer.
        to_result(unsafe { bindings::gnttab_alloc_grant_references(count, &mut head) })?;
        // INVARIANT: The list was just allocated for us.
        Ok(Self { head })
    }

    /// Grants `domid` access to `page` using one of the reserved references; `ENOSPC` when the
    /// reservation is used up.
    pub fn grant(&mut self, page: SharedPage, domid: DomId, readonly: bool) -> Result<GrantedPage> {
        // SAFETY: `head` is our private list (type invariant).
        let r = unsafe { bindings::gnttab_claim_grant_reference(&mut self.head) };
        to_result(r)?;
        let gref = r as GrantRef;
        // SAFETY: `gref` was just claimed from our reservation and is not in use.
        unsafe {
            bindings::gnttab_grant_foreign_access_ref(
                gref,
                domid,
                page.gfn() as usize,
                c_int(readonly),
            )
        };
        // INVARIANT: `gref` now grants `domid` access to `page`; the `GrantedPage` owns both.
        Ok(GrantedPage {
            gref,
            domid,
            page: ManuallyDrop::new(page),
        })
    }

    /// Whether all reserved references have been used.
    pub fn is_empty(&self) -> bool {
        // SAFETY: `head` is our private list (type invariant).
        unsafe { bindings::gnttab_empty_grant_references(&self.head) != 0 }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: `head` is our private list (type invariant); an empty list is fine.
        unsafe { bindings::gnttab_free_grant_references(self.head) };
    }
}

/// What a [`FreeRefsCallback`] calls once enough grant references are free.
pub trait FreeRefsHandler: Sync {
    /// Called with the grant table lock held and interrupts off: only signal someone (complete a
    /// completion, queue work), never allocate references or sleep here.
    fn available(&self);
}

/// Waits for free grant references (`gnttab_request_free_callback`), for a driver that ran out.
///
/// Each [`request`](Self::request) fires the handler once, when at least the requested number
/// of references is free (at once if they already are). Drop cancels a pending request.
///
/// # Invariants
///
/// While a request is pending, `cb` is on the grant table's callback list with this object as
/// argument.
#[pin_data(PinnedDrop)]
pub struct FreeRefsCallback<H: FreeRefsHandler> {
    #[pin]
    cb: Opaque<bindings::gnttab_free_callback>,
    #[pin]
    handler: H,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The C callback state is only touched by the grant table code, under its lock, and is
// found by its pinned address, which a move to another thread does not change; the handler is
// `Send`.
unsafe impl<H: FreeRefsHandler + Send> Send for FreeRefsCallback<H> {}
// SAFETY: A shared reference reaches only the handler, which is `Sync` (`FreeRefsHandler: Sync`),
// and the C callback state, which the grant table's lock serialises.
unsafe impl<H: FreeRefsHandler> Sync for FreeRefsCallback<H> {}

impl<H: FreeRefsHandler> FreeRefsCallback<H> {
    /// Creates the callback; nothing is requested yet.
    pub fn new(handler: impl PinInit<H, Error>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            cb: Opaque::zeroed(),
            handler <- handler,
            _pin: PhantomPinned,
        }? Error)
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Asks for the handler to be called once `count` references are free. A request that is
    /// still pending is left as it is.
    pub fn request(self: Pin<&Self>, count: u16) {
        let this = self.get_ref();
        // SAFETY: `cb` is pinned and lives until drop cancels it; the trampoline and the argument
        // stay valid as long.
        unsafe {
            bindings::gnttab_request_free_callback(
                this.cb.get(),
                Some(free_refs_trampoline::<H>),
                core::ptr::from_ref(this).cast_mut().cast::<c_void>(),
                count,
            )
        };
    }
}

/// # Safety
///
/// `arg` must be the argument given by [`FreeRefsCallback::request`].
unsafe extern "C" fn free_refs_trampoline<H: FreeRefsHandler>(arg: *mut c_void) {
    // SAFETY: `arg` is a live, pinned `FreeRefsCallback<H>`: drop cancels the request, under the
    // same lock this runs with, before the memory goes.
    let this = unsafe { &*arg.cast::<FreeRefsCallback<H>>() };
    this.handler.available();
}

#[pinned_drop]
impl<H: FreeRefsHandler> PinnedDrop for FreeRefsCallback<H> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Cancelling a callback that is not queued is a no-op; once this returns the
        // callback is not queued and not running.
        unsafe { bindings::gnttab_cancel_free_callback(self.cb.get()) };
    }
}

/// Pages granted by another domain, mapped into this one; unmapped and freed on drop.
///
/// Must be dropped in process context: unmapping waits for the unmap to complete.
///
/// # Invariants
///
/// `pages` holds pages from `gnttab_alloc_pages`, each mapping a grant of `domid`, and `unmap` as
/// many operations, the one at each index unmapping the page at the same index. Both were
/// allocated before anything was mapped, so drop needs no memory.
pub struct ForeignMapping {
    pages: KVec<*mut bindings::page>,
    unmap: KVec<bindings::gnttab_unmap_grant_ref>,
    domid: DomId,
}

// SAFETY: The mapping is owned memory with no thread affinity.
unsafe impl Send for ForeignMapping {}
// SAFETY: Shared references only expose addresses.
unsafe impl Sync for ForeignMapping {}

fn page_addr(page: *mut bindings::page) -> u64 {
    // SAFETY: `page` is a valid page from `gnttab_alloc_pages`; it has a kernel address, as
    // every page has in the 64-bit kernels `kernel::xen` is built for (no highmem).
    unsafe { bindings::xen_page_address(page) as u64 }
}

fn free_pages(pages: &mut KVec<*mut bindings::page>) {
    if !pages.is_empty() {
        // SAFETY: The pages came from `gnttab_alloc_pages` and are no longer mapped.
        unsafe { bindings::gnttab_free_pages(pages.len() as i32, pages.as_mut_ptr()) };
    }
}

fn map_error(status: i16) -> Error {
    match i32::from(status) {
        bindings::GNTST_permission_denied => EACCES,
        bindings::GNTST_bad_gntref | bindings::GNTST_bad_domain => EINVAL,
        _ => EIO,
    }
}

impl ForeignMapping {
    /// Maps the pages `domid` granted with `refs`. If any grant fails to map, the ones that did
    /// are unmapped again and the error of the first failure is returned: `EACCES` for a grant
    /// the peer did not give us, `EINVAL` for a bad reference, `EIO` otherwise.
    ///
    /// Every allocation is made before the first grant is mapped, so running out of memory
    /// leaves nothing mapped.
    pub fn map(domid: DomId, refs: &[GrantRef], readonly: bool) -> Result<Self> {
        let n = refs.len();
        if n == 0 {
            return Err(EINVAL);
        }
        let count = i32::try_from(n).map_err(|_| EINVAL)?;
        let mut pages = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            pages.push(core::ptr::null_mut(), GFP_KERNEL)?;
        }
        let mut ops = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut me = ForeignMapping {
            pages: KVec::with_capacity(n, GFP_KERNEL)?,
            unmap: KVec::with_capacity(n, GFP_KERNEL)?,
            domid,
        };
        let mut failed = KVec::with_capacity(n, GFP_KERNEL)?;
        // SAFETY: `pages` has room for `n` page pointers.
        to_result(unsafe { bindings::gnttab_alloc_pages(count, pages.as_mut_ptr()) })?;
        let flags = bindings::GNTMAP_host_map
            | if readonly {
                bindings::GNTMAP_readonly
            } else {
                0
            };
        for (page, gref) in pages.iter().zip(refs) {
            // SAFETY: All-zero is a valid `gnttab_map_grant_ref`.
            let mut op: bindings::gnttab_map_grant_ref = unsafe { core::mem::zeroed() };
            // SAFETY: `op` is valid for writes.
            unsafe { bindings::gnttab_set_map_op(&mut op, page_addr(*page), flags, *gref, domid) };
            // `ops` has room for `n` operations, so this cannot fail.
            let _ = ops.push_within_capacity(op);
        }
        // SAFETY: `ops` and `pages` hold `n` entries each.
        let r = unsafe {
            bindings::gnttab_map_refs(
                ops.as_mut_ptr(),
                core::ptr::null_mut(),
                pages.as_mut_ptr(),
                count as u32,
            )
        };
        let mut first_err = if r != 0 { Some(EIO) } else { None };
        for (op, page) in ops.iter().zip(pages.iter()) {
            if op.status == bindings::GNTST_okay as i16 {
                // Mapped: keep it with its unmap operation (it is unmapped below if another one
                // failed).
                // SAFETY: All-zero is a valid `gnttab_unmap_grant_ref`.
                let mut unmap: bindings::gnttab_unmap_grant_ref = unsafe { core::mem::zeroed() };
                // SAFETY: `unmap` is valid for writes.
                unsafe {
                    bindings::gnttab_set_unmap_op(
                        &mut unmap,
                        page_addr(*page),
                        bindings::GNTMAP_host_map,
                        op.handle,
                    )
                };
                // Each of the three vectors has room for `n`, so none of these can fail.
                let _ = me.pages.push_within_capacity(*page);
                let _ = me.unmap.push_within_capacity(unmap);
            } else {
                first_err.get_or_insert(map_error(op.status));
                let _ = failed.push_within_capacity(*page);
            }
        }
        if let Some(e) = first_err {
            // Dropping `me` unmaps what was mapped; the pages that failed are only freed.
            drop(me);
            free_pages(&mut failed);
            return Err(e);
        }
        // INVARIANT: Every page maps a grant of `domid`, unmapped by the operation at its index.
        Ok(me)
    }

    /// Number of mapped pages.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The domain that granted the pages.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The kernel address of the `i`-th mapped page, or `None` past the end. The memory is
    /// shared with the granting domain, which may change it at any time: copy out before use.
    pub fn addr(&self, i: usize) -> Option<*mut u8> {
        self.pages.get(i).map(|p| page_addr(*p) as *mut u8)
    }
}

impl Drop for ForeignMapping {
    fn drop(&mut self) {
        let n = self.pages.len();
        if n == 0 {
            return;
        }
        // SAFETY: All-zero is a valid `gntab_unmap_queue_data`; the fields used are set below.
        let mut item: bindings::gntab_unmap_queue_data = unsafe { core::mem::zeroed() };
        item.unmap_ops = self.unmap.as_mut_ptr();
        item.pages = self.pages.as_mut_ptr();
        item.count = n as u32;
        // SAFETY: `item` describes `n` mapped pages and as many unmap operations (type
        // invariant), all valid for the duration of the call, which waits for the unmap to
        // complete.
        let r = unsafe { bindings::gnttab_unmap_refs_sync(&mut item) };
        if r != 0 {
            // Leak them rather than free pages the peer may still write.
            pr_err!("xen: unmapping {n} foreign pages failed ({r}), leaking them\n");
            return;
        }
        free_pages(&mut self.pages);
    }
}

// These tests count free grant references and fill the whole table (exhaustion, the free-refs
// callback), so they assume nobody else allocates references while they run. That holds where
// they run: in the kernel crate, at boot, after the initcalls and before init; the drivers that
// grant pages at run time (blkfront, netfront, the demo pair) are modules loaded later, and the
// console and xenstore use reserved references. They would be wrong in a module loaded beside
// running frontends.
#[cfg(CONFIG_RUST_XEN_KUNIT_TEST)]
#[macros::kunit_tests(rust_xen_grant_table)]
mod tests {
    use super::*;
    use crate::xen::xenstore::Xenstore;

    /// This domain's id, for grants to ourselves. Dom0 knows it is 0 without asking xenstore,
    /// which it cannot reach until the xenstored daemon starts after boot.
    fn self_domid() -> Result<DomId> {
        if crate::xen::is_initial_domain() {
            return Ok(0);
        }
        Xenstore::read_parsed::<DomId>(c"domid", c"")
    }

    /// Free grant references, found by reserving as many as possible (the table is grown to its
    /// maximum on the first call, so later calls compare like with like).
    fn free_refs() -> u32 {
        let (mut lo, mut hi) = (0u32, u32::from(u16::MAX));
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if Reservation::new(mid as u16).is_ok() {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    #[test]
    fn grant_and_end_returns_to_baseline() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let domid = self_domid()?;
        let before = free_refs();
        let mut grants = KVec::new();
        for _ in 0..8 {
            grants.push(
                GrantedPage::new(SharedPage::alloc(GFP_KERNEL)?, domid, false)?,
                GFP_KERNEL,
            )?;
        }
        assert_eq!(free_refs(), before - 8);
        // Nobody mapped them: ending gives the pages back.
        while let Some(g) = grants.pop() {
            assert!(g.try_end().is_ok());
        }
        assert_eq!(free_refs(), before);
        // Dropping ends access too.
        let deferred = deferred_ends();
        drop(GrantedPage::new(
            SharedPage::alloc(GFP_KERNEL)?,
            domid,
            true,
        )?);
        assert_eq!(free_refs(), before);
        assert_eq!(deferred_ends(), deferred);
        Ok(())
    }

    #[test]
    fn exhaustion_is_an_error() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let free = free_refs();
        let all = Reservation::new(free as u16)?;
        // Nothing left: an ordinary error, at once.
        assert_eq!(
            GrantedPage::new(SharedPage::alloc(GFP_KERNEL)?, 0, true).err(),
            Some(ENOSPC)
        );
        assert_eq!(Reservation::new(1).err(), Some(ENOSPC));
        drop(all);
        assert_eq!(free_refs(), free);
        // A reservation hands out exactly its size.
        let mut r = Reservation::new(2)?;
        let a = r.grant(SharedPage::alloc(GFP_KERNEL)?, 0, true)?;
        let b = r.grant(SharedPage::alloc(GFP_KERNEL)?, 0, true)?;
        assert!(r.is_empty());
        assert_eq!(
            r.grant(SharedPage::alloc(GFP_KERNEL)?, 0, true).err(),
            Some(ENOSPC)
        );
        assert_ne!(a.gref(), b.gref());
        drop((a, b, r));
        assert_eq!(free_refs(), free);
        Ok(())
    }

    #[pin_data]
    struct Waiter {
        #[pin]
        signal: crate::xen::testutil::Signal,
    }

    impl FreeRefsHandler for Waiter {
        fn available(&self) {
            self.signal.fire();
        }
    }

    #[test]
    fn wait_for_free_refs() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let free = free_refs();
        let all = Reservation::new(free as u16)?;
        let cb = KBox::pin_init(
            FreeRefsCallback::new(try_pin_init!(Waiter {
                signal <- crate::xen::testutil::Signal::new(),
            }? Error)),
            GFP_KERNEL,
        )?;
        cb.as_ref().request(1);
        // Nothing is free: the handler must not have run.
        assert_eq!(cb.handler().signal.count(), 0);
        drop(all);
        // Fails if freeing the references did not call the handler within 5 s.
        assert!(cb.handler().signal.wait(5000));
        assert_eq!(cb.handler().signal.count(), 1);
        // Enough is free now: a new request fires at once.
        cb.as_ref().request(1);
        assert_eq!(cb.handler().signal.count(), 2);
        drop(cb);
        assert_eq!(free_refs(), free);
        Ok(())
    }

    #[test]
    fn map_own_grant_and_defer_end() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let domid = self_domid()?;
        let before = free_refs();
        let g = GrantedPage::new(SharedPage::alloc(GFP_KERNEL)?, domid, false)?;
        // SAFETY: The page is ours and nothing else uses it yet.
        unsafe { g.page().as_ptr().cast::<u32>().write_volatile(0x5a5a_1234) };
        let m = ForeignMapping::map(domid, &[g.gref()], false)?;
        let addr = m.addr(0).ok_or(EINVAL)?;
        // SAFETY: `addr` maps the granted page for as long as `m` lives.
        assert_eq!(unsafe { addr.cast::<u32>().read_volatile() }, 0x5a5a_1234);
        // While mapped, access cannot end: try_end hands the grant back.
        let g = match g.try_end() {
            Ok(_) => panic!("access ended while the page was mapped"),
            Err(g) => g,
        };
        // Dropping it now takes the deferred path; the page is not freed under the mapping.
        let deferred = deferred_ends();
        drop(g);
        assert_eq!(deferred_ends(), deferred + 1);
        // SAFETY: `m` is still alive, so `addr` still maps the granted page; the read checks that
        // the page is still intact.
        assert_eq!(unsafe { addr.cast::<u32>().read_volatile() }, 0x5a5a_1234);
        drop(m);
        // Unmapped: the deferred path ends access and frees the reference within a few of its
        // one-second retries. Wait for that, with a bound.
        let mut tries = 0;
        while free_refs() != before && tries < 100 {
            crate::time::delay::fsleep(crate::time::Delta::from_millis(100));
            tries += 1;
        }
        // Fails if the deferred grant was not released within 10 s.
        assert_eq!(free_refs(), before);
        Ok(())
    }

    #[test]
    fn partly_failed_batch_maps_nothing() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let domid = self_domid()?;
        let g = GrantedPage::new(SharedPage::alloc(GFP_KERNEL)?, domid, true)?;
        // The second reference lies past the end of any grant table (GNTST_bad_gntref): the
        // whole batch fails with EINVAL, and the first page is unmapped again, so access to it
        // can end right away.
        let r = ForeignMapping::map(domid, &[g.gref(), 0xffff_fff0], true);
        assert_eq!(r.err(), Some(EINVAL));
        assert!(g.try_end().is_ok());
        Ok(())
    }
}
