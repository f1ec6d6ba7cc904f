// SPDX-License-Identifier: GPL-2.0

//! Xen guest support.
//!
//! This module is the home of the safe abstractions over Linux's Xen guest support: the kind of
//! domain the kernel runs in today, and grant references, event channels, xenstore, xenbus drivers
//! and shared rings as they are added.
//!
//! C header: [`include/xen/xen.h`](srctree/include/xen/xen.h)

use crate::bindings;

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
/// match xen::domain_kind() {
///     DomainKind::Native => assert!(!xen::is_initial_domain()),
///     DomainKind::Pv | DomainKind::Hvm => pr_info!("running on Xen\n"),
/// }
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

#[cfg(CONFIG_RUST_XEN_KUNIT_TEST)]
#[macros::kunit_tests(rust_xen_domain)]
mod tests {
    use super::*;

    #[test]
    fn kind_matches_c_predicates() {
        // SAFETY: The predicates only read state that is fixed during early boot.
        let (xen, pv, hvm) = unsafe {
            (
                bindings::xen_domain(),
                bindings::xen_pv_domain(),
                bindings::xen_hvm_domain(),
            )
        };
        let expected = match (xen, pv, hvm) {
            (false, _, _) => DomainKind::Native,
            (true, true, _) => DomainKind::Pv,
            (true, false, _) => DomainKind::Hvm,
        };
        assert_eq!(domain_kind(), expected);
        // A PV guest is never also an HVM guest.
        assert!(!(pv && hvm));
    }

    #[test]
    fn initial_domain_is_a_xen_domain() {
        if is_initial_domain() {
            assert_ne!(domain_kind(), DomainKind::Native);
        }
    }
}
