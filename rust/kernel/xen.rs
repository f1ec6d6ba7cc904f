// SPDX-License-Identifier: GPL-2.0

//! Xen guest support.
//!
//! This module is the home of the safe abstractions over Linux's Xen guest support: the kind of
//! domain the kernel runs in today, and grant references, event channels, xenstore, xenbus drivers
//! and shared rings as they are added.
//!
//! C header: [`include/xen/xen.h`](srctree/include/xen/xen.h)

use crate::{alloc::Flags, bindings, prelude::*};
use core::ptr::NonNull;

/// The size of the frames Xen grants and maps: 4 KiB on every architecture.
pub const XEN_PAGE_SIZE: usize = 1 << bindings::XEN_PAGE_SHIFT;

// Grants, shared rings and mappings here are one kernel page per Xen frame. A kernel with larger
// pages (arm64 with 16K or 64K pages) would map only the first 4 KiB of each page while the rings
// index all of it. Kconfig keeps RUST_XEN_ABSTRACTIONS to 64-bit kernels with 4K pages (64-bit:
// no highmem, so every page has a kernel address); this keeps the first half true.
const _: () = assert!(crate::page::PAGE_SIZE == XEN_PAGE_SIZE);

pub mod events;
pub mod grant_table;
pub mod ring;
pub mod xenbus;
pub mod xenstore;

/// The kind of domain the kernel runs in, as Linux detected it at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainKind {
    /// Not running on Xen (bare metal or another hypervisor).
    Native,
    /// A paravirtualised (PV) guest, dom0 or domU.
    Pv,
    /// A hardware-virtualised guest (HVM or PVH).
    Hvm,
}

/// Returns the kind of domain the kernel runs in.
///
/// # Examples
///
/// ```
/// use kernel::xen::{self, DomainKind};
///
/// // Compiled, not run: on Xen this would only print. The KUnit tests below check the kind
/// // against the CPU and the hypervisor.
/// # fn example() {
/// match xen::domain_kind() {
///     DomainKind::Native => assert!(!xen::is_initial_domain()),
///     DomainKind::Pv | DomainKind::Hvm => pr_info!("running on Xen\n"),
/// }
/// # }
/// ```
pub fn domain_kind() -> DomainKind {
    // SAFETY: `xen_domain()` only reads a variable that is set once during early boot.
    if !unsafe { bindings::xen_domain() } {
        DomainKind::Native
    // SAFETY: `xen_pv_domain()` only tests a CPU feature bit fixed during early boot.
    } else if unsafe { bindings::xen_pv_domain() } {
        DomainKind::Pv
    } else {
        DomainKind::Hvm
    }
}

/// Returns `true` if the kernel runs as the initial domain (dom0), which owns the hardware and
/// usually runs the backends and the toolstack.
pub fn is_initial_domain() -> bool {
    // SAFETY: `xen_initial_domain()` only reads variables that are set once during early boot.
    unsafe { bindings::xen_initial_domain() }
}

/// A zeroed page of kernel memory meant to be shared with another domain: a ring, or a buffer.
///
/// # Invariants
///
/// `page` is an order-0 page allocated by `alloc_pages` and owned by this object; `addr` is its
/// kernel virtual address.
pub struct SharedPage {
    page: NonNull<bindings::page>,
    addr: NonNull<u8>,
}

// SAFETY: The page is plain memory owned by this object, usable from any thread.
unsafe impl Send for SharedPage {}
// SAFETY: `&SharedPage` only gives out addresses; accessing the memory is up to `unsafe` users.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    /// Allocates a zeroed page.
    pub fn alloc(flags: Flags) -> Result<Self> {
        let flags = flags | crate::alloc::flags::__GFP_ZERO;
        // SAFETY: `alloc_pages` may be called with any flags and order 0.
        let page =
            NonNull::new(unsafe { bindings::alloc_pages(flags.as_raw(), 0) }).ok_or(ENOMEM)?;
        // SAFETY: `page` is a valid page (64-bit kernels have no highmem; a NULL is checked
        // anyway).
        let addr = match NonNull::new(unsafe { bindings::xen_page_address(page.as_ptr()) }) {
            Some(addr) => addr.cast(),
            None => {
                // SAFETY: `page` was allocated above with order 0 and is not used elsewhere.
                unsafe { bindings::__free_pages(page.as_ptr(), 0) };
                return Err(ENOMEM);
            }
        };
        // INVARIANT: Allocated above with order 0, and `addr` is its address.
        Ok(Self { page, addr })
    }

    /// The kernel virtual address of the page.
    pub fn as_ptr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    /// The `struct page` of the page.
    pub fn as_page_ptr(&self) -> *mut bindings::page {
        self.page.as_ptr()
    }

    /// The guest frame number of the page, as a peer domain names it in grants.
    pub fn gfn(&self) -> u64 {
        // SAFETY: The page is valid (type invariant).
        unsafe { bindings::xen_page_to_gfn(self.page.as_ptr()) as u64 }
    }

    /// Gives up ownership: the caller becomes responsible for freeing the page.
    pub fn into_raw(self) -> NonNull<bindings::page> {
        let page = self.page;
        core::mem::forget(self);
        page
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: The page was allocated with order 0 and is owned by this object (type
        // invariant).
        unsafe { bindings::__free_pages(self.page.as_ptr(), 0) };
    }
}

/// Helpers for the KUnit tests of the Xen modules.
#[cfg(CONFIG_RUST_XEN_KUNIT_TEST)]
pub(crate) mod testutil {
    use crate::{bindings, prelude::*, str::CStr, time::msecs_to_jiffies, types::Opaque};
    use core::sync::atomic::{AtomicU32, Ordering};

    /// Marks the running test as skipped.
    pub(crate) fn skip(reason: &CStr) {
        // SAFETY: `reason` is NUL-terminated; the helper does nothing outside a KUnit test.
        unsafe { bindings::xen_kunit_skip(reason.as_char_ptr()) };
    }

    /// Whether the test can use the hypervisor; marks the test skipped if not.
    pub(crate) fn need_xen() -> bool {
        if super::domain_kind() == super::DomainKind::Native {
            skip(c"not running on Xen");
            return false;
        }
        true
    }

    /// Counts events signalled from any context (including hard IRQ) and lets a test wait for
    /// them with a bound, so that a missing event fails the test instead of hanging it.
    #[pin_data]
    pub(crate) struct Signal {
        #[pin]
        done: Opaque<bindings::completion>,
        count: AtomicU32,
    }

    // SAFETY: A completion is not tied to the thread that initialised it, and the count is atomic.
    unsafe impl Send for Signal {}
    // SAFETY: `complete` may be called from any context, concurrently with other `complete`s and
    // with a waiter (the completion's own lock serialises them); the count is atomic.
    unsafe impl Sync for Signal {}

    impl Signal {
        pub(crate) fn new() -> impl PinInit<Self> {
            pin_init!(Self {
                // SAFETY: `init_completion` initialises the completion in place.
                done <- Opaque::ffi_init(|p| unsafe { bindings::init_completion(p) }),
                count: AtomicU32::new(0),
            })
        }

        /// Records one event and wakes one waiter.
        pub(crate) fn fire(&self) {
            self.count.fetch_add(1, Ordering::Relaxed);
            // SAFETY: The completion was initialised in `new`; `complete` is IRQ safe.
            unsafe { bindings::complete(self.done.get()) };
        }

        /// Events recorded so far.
        pub(crate) fn count(&self) -> u32 {
            self.count.load(Ordering::Relaxed)
        }

        /// Waits for the next event for at most `ms` milliseconds; returns whether it came.
        pub(crate) fn wait(&self, ms: u32) -> bool {
            // SAFETY: The completion was initialised in `new`.
            let left = unsafe {
                bindings::wait_for_completion_timeout(self.done.get(), msecs_to_jiffies(ms))
            };
            left != 0
        }
    }
}

#[cfg(CONFIG_RUST_XEN_KUNIT_TEST)]
#[macros::kunit_tests(rust_xen_domain)]
mod tests {
    use super::*;

    /// The privilege level the kernel runs at, from the CPU: 3 in an x86-64 PV guest (Xen runs
    /// its kernel in ring 3), 0 natively and in an HVM or PVH guest.
    #[cfg(target_arch = "x86_64")]
    fn kernel_ring() -> u16 {
        let cs: u16;
        // SAFETY: Reading the code segment selector has no side effects.
        unsafe {
            core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags))
        };
        cs & 3
    }

    // Checked against the CPU, not against the C predicates `domain_kind()` is built from.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn pv_kind_agrees_with_the_cpu() {
        let pv = domain_kind() == DomainKind::Pv;
        let ring3 = kernel_ring() == 3;
        assert_eq!(pv, ring3);
    }

    // Checked against the hypervisor: the status of domain 0's port 0 may be read by domain 0
    // itself (and by a privileged domain, which in this test bed is domain 0 too); any other
    // domain gets EPERM. Port 0 is always valid and reserved.
    #[test]
    fn initial_domain_agrees_with_the_hypervisor() {
        if !testutil::need_xen() {
            return;
        }
        // Domain 0, port 0.
        let mut op: bindings::evtchn_status = pin_init::zeroed();
        // SAFETY: `op` is a valid argument for this operation and lives across the call.
        let rc = unsafe {
            bindings::HYPERVISOR_event_channel_op(
                bindings::EVTCHNOP_status as crate::ffi::c_int,
                (&raw mut op).cast(),
            )
        };
        let want = if is_initial_domain() {
            0
        } else {
            EPERM.to_errno()
        };
        assert_eq!(rc, want);
    }
}
