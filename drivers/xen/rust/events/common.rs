// SPDX-License-Identifier: GPL-2.0

//! What the crates of the Rust event channel core share.
//!
//! Each C file of the core that Rust replaces is an object of its own, and so each Rust file is a
//! crate of its own; those that need these include this file as their module `common`.

// Each crate uses some of these, none all of them.
#![allow(dead_code)]

use kernel::{
    bindings,
    ffi::c_uint,
    sync::Mutex, //
};

/// The owner `#[vtable]` gives the irq chips of the crates that build one (`kernel::irq::chip`),
/// which it finds as `crate::LocalModule` (`events_irqchip`, older than this file, has its own):
/// this code is built in, so the kernel itself (a null `THIS_MODULE`, as for the kernel crate). A
/// `struct irq_chip` has no owner field; nothing uses it.
pub(crate) struct LocalModule;

impl kernel::ModuleMetadata for LocalModule {
    const NAME: &'static kernel::str::CStr = c"xen_events";

    const THIS_MODULE: kernel::ThisModule = {
        // SAFETY: A null module stands for the kernel itself, which module reference counting
        // (`try_module_get()`, `module_put()`) accepts.
        unsafe { kernel::ThisModule::from_ptr(core::ptr::null_mut()) }
    };
}

/// The event channel ABI's operations (`evtchn_ops`).
pub(crate) fn ops() -> &'static bindings::evtchn_ops {
    // SAFETY: The ABI is chosen in `xen_init_IRQ()` before the first IRQ is bound, and never
    // changes after; its ops are static. Nothing in the crates that use this runs before: they
    // bind channels, or act on bound ones.
    unsafe { &*bindings::evtchn_ops }
}

/// The number of ports of the event channel ABI in use.
pub(crate) fn max_channels() -> c_uint {
    let Some(max_channels) = ops().max_channels else {
        return 0;
    };
    // SAFETY: Every ABI's `max_channels` may be called once the ABI is chosen.
    unsafe { max_channels() }
}

/// An event channel operation (`HYPERVISOR_event_channel_op`) on `arg`.
///
/// # Safety
///
/// `arg` must be the argument structure of operation `cmd`.
pub(crate) unsafe fn evtchn_op<T>(cmd: u32, arg: &mut T) -> kernel::error::Result {
    // SAFETY: The caller's guarantee; `arg` outlives the call.
    kernel::error::to_result(unsafe {
        bindings::HYPERVISOR_event_channel_op(
            cmd as kernel::ffi::c_int,
            core::ptr::from_mut(arg).cast(),
        )
    })
}

/// The event core's lock of bindings and reference counts (`events_base.c`'s
/// `xen_irq_mapping_update_lock`): under it, the port-to-IRQ map holds only live `irq_info`s,
/// and their reference counts do not change.
pub(crate) fn mapping_lock() -> &'static Mutex<()> {
    // SAFETY: The mutex is a C static, initialised at build time (`DEFINE_MUTEX`), that lives
    // for ever; it is only used as a mutex.
    unsafe { Mutex::from_raw(&raw mut bindings::xen_irq_mapping_update_lock) }
}

/// Each `irq_info` on the list of all of them, the next read before the current is given to
/// `f`, which may free it.
///
/// # Safety
///
/// The mapping lock must be held, or the other CPUs stopped (resume).
pub(crate) unsafe fn for_each_info(mut f: impl FnMut(*mut bindings::irq_info)) {
    let head = &raw mut bindings::xen_irq_list_head;
    // SAFETY: The list is only changed under the mapping lock (or on resume), which the caller
    // holds (or runs); its entries are live `irq_info`s linked by their `list`.
    let mut link = unsafe { (*head).next };
    while link != head {
        // SAFETY: As above.
        let next = unsafe { (*link).next };
        f(kernel::container_of!(link, bindings::irq_info, list));
        link = next;
    }
}

/// What the crates' KUnit tests share.
#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
pub(crate) mod kunit {
    use kernel::{
        bindings,
        cpu::CpuId,
        irq::IrqReturn,
        prelude::*,
        sync::atomic::{
            Atomic,
            Full,
            Relaxed, //
        },
        xen::events::{
            Handler,
            Registration, //
        },
    };

    /// Whether the test can use the hypervisor; marks it skipped if not.
    pub(crate) fn on_xen() -> bool {
        if kernel::xen::domain_kind() == kernel::xen::DomainKind::Native {
            // SAFETY: The reason is NUL-terminated; this runs in a KUnit test.
            unsafe { bindings::xen_kunit_skip(c"not running on Xen".as_char_ptr()) };
            return false;
        }
        true
    }

    /// Port `port` of this domain as Xen sees it (`EVTCHNOP_status`).
    pub(crate) fn port_status(port: u32) -> Result<bindings::evtchn_status> {
        let mut status: bindings::evtchn_status = pin_init::zeroed();
        status.dom = bindings::DOMID_SELF as u16;
        status.port = port;
        // SAFETY: `status` is this operation's argument, and outlives the call.
        kernel::error::to_result(unsafe {
            bindings::HYPERVISOR_event_channel_op(
                bindings::EVTCHNOP_status as kernel::ffi::c_int,
                (&raw mut status).cast(),
            )
        })?;
        Ok(status)
    }

    /// IRQ `irq`'s `irq_info`, while the caller keeps it bound.
    pub(crate) fn info(irq: u32) -> *mut bindings::irq_info {
        // SAFETY: Any IRQ number may be looked up.
        unsafe { bindings::xen_info_for_irq(irq) }
    }

    /// The name of IRQ `irq`'s chip.
    pub(crate) fn chip_name(irq: u32) -> &'static CStr {
        // SAFETY: The caller keeps `irq` bound, so it has a descriptor and a static chip.
        unsafe {
            let data = bindings::irq_get_irq_data(irq);
            CStr::from_char_ptr((*(*data).chip).name)
        }
    }

    /// Waits up to 5 s, checking every 10 ms, for `done` to hold; whether it did.
    pub(crate) fn wait_until(mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..500 {
            if done() {
                return true;
            }
            // SAFETY: Sleeping is allowed in a KUnit test.
            unsafe { bindings::msleep(10) };
        }
        done()
    }

    /// A handler that counts its events, and remembers the CPU of the last.
    #[pin_data]
    pub(crate) struct Seen {
        pub(crate) n: Atomic<u32>,
        pub(crate) cpu: Atomic<u32>,
    }

    impl Seen {
        /// No event seen yet.
        pub(crate) fn new() -> impl PinInit<Self, Error> {
            try_pin_init!(Seen {
                n: Atomic::new(0),
                cpu: Atomic::new(u32::MAX),
            }? Error)
        }
    }

    impl Handler for Seen {
        fn handle(&self) -> IrqReturn {
            self.cpu.store(CpuId::current().as_u32(), Relaxed);
            self.n.fetch_add(1, Full);
            IrqReturn::Handled
        }
    }

    /// A port bound to a [`Seen`].
    pub(crate) type Bound = Pin<KBox<Registration<Seen>>>;

    /// Waits up to 5 s for `end`'s handler to have run `n` times.
    pub(crate) fn wait_for(end: &Bound, n: u32) -> bool {
        wait_until(|| end.handler().n.load(Relaxed) >= n)
    }
}
