// SPDX-License-Identifier: GPL-2.0

//! Rust Xen sample: reports the kind of domain it was loaded into.
//!
//! The smallest module built on `kernel::xen`; the test harness loads it in dom0 and in a domU.

use kernel::prelude::*;
use kernel::xen::{self, DomainKind};

module! {
    type: RustXenHello,
    name: "rust_xen_hello",
    authors: ["Rust for Xen contributors"],
    description: "Rust Xen sample: report the domain kind",
    license: "GPL",
}

struct RustXenHello;

impl kernel::Module for RustXenHello {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let kind = xen::domain_kind();
        if kind == DomainKind::Native {
            pr_err!("not running on Xen\n");
            return Err(ENODEV);
        }
        let role = if xen::is_initial_domain() {
            "dom0"
        } else {
            "domU"
        };
        pr_info!("loaded in {role} ({kind:?} guest)\n");
        pr_info!("xenstore ready: {}\n", xen::xenstore::is_ready());
        Ok(RustXenHello)
    }
}

impl Drop for RustXenHello {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
