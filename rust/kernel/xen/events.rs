// SPDX-License-Identifier: GPL-2.0

//! Event channels: ports, and ports bound to interrupt handlers.
//!
//! C header: [`include/xen/events.h`](srctree/include/xen/events.h)
//!
//! An event channel connects a port in this domain with a port in another. A frontend allocates an
//! unbound port for its backend's domain ([`Port::alloc_unbound`]) and publishes its number in
//! xenstore; the backend binds its own port to it ([`Port::bind_interdomain`]). Each side then
//! binds its port to a handler ([`Registration`], or [`LateEoiRegistration`] for backends) and
//! notifies the other with [`Registration::notify`].
//!
//! Backends serving an untrusted frontend use the late-EOI form: the event channel stays masked
//! until the handler's work is done, so a frontend flooding events cannot monopolise dom0
//! (XSA-332). Here the handler returns a [`LateEoi`] and the EOI is sent for it: it cannot be
//! forgotten.

use crate::ffi::{c_int, c_uint, c_void};
use crate::{bindings, error::to_result, irq::IrqReturn, prelude::*, str::CStr};
use core::{
    marker::PhantomPinned,
    sync::atomic::{AtomicU32, Ordering},
};

/// A domain id.
pub type DomId = u16;

/// The domain id a domain uses for itself in event channel and grant operations.
pub const DOMID_SELF: DomId = bindings::DOMID_SELF as DomId;

/// An open event channel port of this domain; closed on drop.
///
/// # Invariants
///
/// `port` is an open port of this domain, owned by this object.
pub struct Port {
    port: u32,
}

impl Port {
    /// Allocates a port that `remote` (or this domain, with [`DOMID_SELF`]) may bind to
    /// (`EVTCHNOP_alloc_unbound`).
    pub fn alloc_unbound(remote: DomId) -> Result<Self> {
        let mut op = bindings::evtchn_alloc_unbound {
            dom: DOMID_SELF,
            remote_dom: remote,
            port: 0,
        };
        // SAFETY: `op` is a valid argument for this operation.
        to_result(unsafe {
            bindings::HYPERVISOR_event_channel_op(
                bindings::EVTCHNOP_alloc_unbound as c_int,
                (&raw mut op).cast(),
            )
        })?;
        // INVARIANT: The hypervisor allocated the port for us.
        Ok(Self { port: op.port })
    }

    /// Connects a new local port to `remote_port` of domain `remote`
    /// (`EVTCHNOP_bind_interdomain`). The remote port must be unbound and allocated for this
    /// domain; anything else is an error from the hypervisor, not a crash.
    pub fn bind_interdomain(remote: DomId, remote_port: u32) -> Result<Self> {
        let mut op = bindings::evtchn_bind_interdomain {
            remote_dom: remote,
            remote_port,
            local_port: 0,
        };
        // SAFETY: `op` is a valid argument for this operation.
        to_result(unsafe {
            bindings::HYPERVISOR_event_channel_op(
                bindings::EVTCHNOP_bind_interdomain as c_int,
                (&raw mut op).cast(),
            )
        })?;
        // INVARIANT: The hypervisor opened the local port for us.
        Ok(Self {
            port: op.local_port,
        })
    }

    /// The port number, as published in xenstore.
    pub fn number(&self) -> u32 {
        self.port
    }

    /// Sends an event to the other end.
    pub fn notify(&self) {
        // SAFETY: The port is open (type invariant).
        unsafe { bindings::notify_remote_via_evtchn(self.port) };
    }

    /// Gives up ownership of the port without closing it.
    fn into_raw(self) -> u32 {
        let port = self.port;
        core::mem::forget(self);
        port
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: The port is open and owned by this object (type invariant).
        unsafe { bindings::xen_evtchn_close(self.port) };
    }
}

/// The handler of an event channel bound with [`Registration`].
pub trait Handler: Sync {
    /// Called in hard interrupt context when the other end notifies the port.
    fn handle(&self) -> IrqReturn;
}

/// What a late-EOI handler did with an event; the EOI that unmasks the channel is sent for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LateEoi {
    /// The event carried work.
    Handled,
    /// The event carried no work. The event core delays the channel of a peer that sends many
    /// of those (a storm, XSA-391).
    Spurious,
}

/// The handler of an event channel bound with [`LateEoiRegistration`].
pub trait LateEoiHandler: Sync {
    /// Called in hard interrupt context. The channel stays masked until the EOI that follows the
    /// return, so a peer cannot fire this again while it runs. `peer` notifies the other end,
    /// for instance after pushing responses.
    fn handle(&self, peer: &Notifier) -> LateEoi;
}

/// Notifies the other end of the channel a handler runs for.
pub struct Notifier {
    irq: c_int,
}

impl Notifier {
    /// Sends an event to the other end.
    pub fn notify(&self) {
        // SAFETY: `irq` is the event channel IRQ the handler was called for.
        unsafe { bindings::notify_remote_via_irq(self.irq) };
    }
}

/// Common part of both registrations.
///
/// # Invariants
///
/// Once initialised, `irq` is an IRQ bound to the port with a handler whose cookie is the
/// address of the registration that holds this.
struct Bound {
    irq: AtomicU32,
    events: AtomicU32,
}

macro_rules! registration {
    ($name:ident, $trait:ident, $bind:ident, $callback:ident, $doc:literal) => {
        #[doc = $doc]
        ///
        /// The handler may run as soon as the port is bound, even before the constructor returns;
        /// it is given only the handler's state, never half-built data. Drop unbinds the handler,
        /// waiting for a running one to finish, and closes the port.
        ///
        /// # Invariants
        ///
        /// `bound.irq` is bound to the port with `this` as cookie until drop.
        #[pin_data(PinnedDrop)]
        pub struct $name<T: $trait> {
            bound: Bound,
            #[pin]
            handler: T,
            #[pin]
            _pin: PhantomPinned,
        }

        impl<T: $trait> $name<T> {
            /// Binds `port` to `handler`. The port is closed when the registration is dropped,
            /// or right away if binding fails.
            pub fn new(
                port: Port,
                name: &'static CStr,
                handler: impl PinInit<T, Error>,
            ) -> impl PinInit<Self, Error> {
                Self::bind_with(handler, move |cookie| {
                    let raw = port.into_raw();
                    // SAFETY: `raw` is an open port we own; the callback and the cookie stay
                    // valid until `drop` unbinds the handler. `name` is `'static`.
                    let irq = unsafe {
                        bindings::$bind(raw, Some($callback::<T>), 0, name.as_char_ptr(), cookie)
                    };
                    if irq < 0 {
                        // Binding failed: the port is still ours to close.
                        drop(Port { port: raw });
                    }
                    irq
                })
            }

            /// Initialises the registration, then calls `bind` with the registration's address
            /// as cookie, once every field is initialised (the handler may run at once).
            /// `bind` binds a channel to this type's callback with that cookie and returns the
            /// IRQ, or a negative errno after undoing what it did.
            fn bind_with(
                handler: impl PinInit<T, Error>,
                bind: impl FnOnce(*mut c_void) -> c_int,
            ) -> impl PinInit<Self, Error> {
                try_pin_init!(&this in Self {
                    bound: Bound { irq: AtomicU32::new(0), events: AtomicU32::new(0) },
                    handler <- handler,
                    _pin: PhantomPinned,
                    _: {
                        let irq = bind(this.as_ptr().cast::<c_void>());
                        to_result(irq)?;
                        // SAFETY: `this` is valid; only this field is written.
                        unsafe { (*this.as_ptr()).bound.irq.store(irq as u32, Ordering::Release) };
                    },
                }? Error)
            }

            /// The handler.
            pub fn handler(&self) -> &T {
                &self.handler
            }

            /// The Linux IRQ the port is bound to.
            pub fn irq(&self) -> u32 {
                self.bound.irq.load(Ordering::Acquire)
            }

            /// Events the handler was called for.
            pub fn events(&self) -> u32 {
                self.bound.events.load(Ordering::Relaxed)
            }

            /// Sends an event to the other end of the channel.
            pub fn notify(&self) {
                // SAFETY: The IRQ is bound to an event channel (type invariant).
                unsafe { bindings::notify_remote_via_irq(self.irq() as c_int) };
            }
        }

        #[pinned_drop]
        impl<T: $trait> PinnedDrop for $name<T> {
            fn drop(self: Pin<&mut Self>) {
                // SAFETY: The IRQ is bound with this object as cookie (type invariant);
                // `unbind_from_irqhandler` frees the IRQ, waiting for a running handler, and
                // closes the port.
                unsafe {
                    bindings::unbind_from_irqhandler(
                        self.irq(),
                        (&raw const *self).cast_mut().cast::<c_void>(),
                    )
                };
            }
        }
    };
}

registration!(
    Registration,
    Handler,
    bind_evtchn_to_irqhandler,
    handle_callback,
    "An event channel port bound to a [`Handler`], for frontends."
);
registration!(
    LateEoiRegistration,
    LateEoiHandler,
    bind_evtchn_to_irqhandler_lateeoi,
    handle_lateeoi_callback,
    "An event channel port bound to a [`LateEoiHandler`], for backends."
);

impl<T: LateEoiHandler> LateEoiRegistration<T> {
    /// Binds a new local port to `remote_port` of the xenbus device's other end and to `handler`
    /// (`bind_interdomain_evtchn_to_irqhandler_lateeoi`), the way backends connect to their
    /// frontend's event channel. The event core then also accounts the device's spurious events.
    pub fn bind_interdomain(
        dev: &crate::xen::xenbus::Device<crate::device::Bound>,
        remote_port: u32,
        name: &'static CStr,
        handler: impl PinInit<T, Error>,
    ) -> impl PinInit<Self, Error> {
        let xdev = dev.as_raw();
        Self::bind_with(handler, move |cookie| {
            // SAFETY: `xdev` is a bound xenbus device; the callback and the cookie stay valid
            // until `drop` unbinds the handler. On failure the C function closes the port it
            // opened.
            unsafe {
                bindings::bind_interdomain_evtchn_to_irqhandler_lateeoi(
                    xdev,
                    remote_port,
                    Some(handle_lateeoi_callback::<T>),
                    0,
                    name.as_char_ptr(),
                    cookie,
                )
            }
        })
    }
}

// SAFETY: The registration is only touched through shared references and atomics; the handler
// is `Sync`.
unsafe impl<T: Handler + Send> Send for Registration<T> {}
// SAFETY: As above.
unsafe impl<T: Handler> Sync for Registration<T> {}
// SAFETY: As above.
unsafe impl<T: LateEoiHandler + Send> Send for LateEoiRegistration<T> {}
// SAFETY: As above.
unsafe impl<T: LateEoiHandler> Sync for LateEoiRegistration<T> {}

/// # Safety
///
/// `ptr` must be the cookie of a live [`Registration<T>`].
unsafe extern "C" fn handle_callback<T: Handler>(
    _irq: c_int,
    ptr: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: `ptr` is the cookie given at bind time: a live, pinned `Registration<T>`, valid
    // until drop unbinds the handler (which waits for this call to return).
    let this = unsafe { &*ptr.cast::<Registration<T>>() };
    this.bound.events.fetch_add(1, Ordering::Relaxed);
    bindings::irqreturn_t(this.handler.handle() as c_uint)
}

/// # Safety
///
/// `ptr` must be the cookie of a live [`LateEoiRegistration<T>`], and `irq` its IRQ.
unsafe extern "C" fn handle_lateeoi_callback<T: LateEoiHandler>(
    irq: c_int,
    ptr: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: As in `handle_callback`.
    let this = unsafe { &*ptr.cast::<LateEoiRegistration<T>>() };
    this.bound.events.fetch_add(1, Ordering::Relaxed);
    let flags = match this.handler.handle(&Notifier { irq }) {
        LateEoi::Handled => 0,
        LateEoi::Spurious => bindings::XEN_EOI_FLAG_SPURIOUS,
    };
    // SAFETY: `irq` is the late-EOI IRQ this handler was called for (the number comes from the
    // call, so it is right even before the constructor stored it).
    unsafe { bindings::xen_irq_lateeoi(irq as u32, flags) };
    bindings::irqreturn_t(IrqReturn::Handled as c_uint)
}

#[cfg(CONFIG_RUST_XEN_KUNIT_TEST)]
#[macros::kunit_tests(rust_xen_events)]
mod tests {
    use super::*;
    use crate::xen::testutil::Signal;

    #[pin_data]
    struct Counted {
        #[pin]
        signal: Signal,
    }

    impl Handler for Counted {
        fn handle(&self) -> IrqReturn {
            self.signal.fire();
            IrqReturn::Handled
        }
    }

    impl LateEoiHandler for Counted {
        fn handle(&self, _peer: &Notifier) -> LateEoi {
            self.signal.fire();
            LateEoi::Handled
        }
    }

    #[test]
    fn loopback_notify_runs_handler() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        // A channel from this domain to itself: `a` is bound to the handler, `b` notifies it.
        let a = Port::alloc_unbound(DOMID_SELF)?;
        let b = Port::bind_interdomain(DOMID_SELF, a.number())?;
        let reg = KBox::pin_init(
            Registration::new(
                a,
                c"rust-xen-kunit",
                try_pin_init!(Counted { signal <- Signal::new() }? Error),
            ),
            GFP_KERNEL,
        )?;
        assert!(reg.irq() > 0);
        for _ in 1..=3 {
            b.notify();
            // Fails if an event did not arrive within 5 s.
            assert!(reg.handler().signal.wait(5000));
        }
        assert!(reg.events() >= 3);
        Ok(())
    }

    #[test]
    fn loopback_lateeoi() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let a = Port::alloc_unbound(DOMID_SELF)?;
        let b = Port::bind_interdomain(DOMID_SELF, a.number())?;
        let reg = KBox::pin_init(
            LateEoiRegistration::new(
                a,
                c"rust-xen-kunit-eoi",
                try_pin_init!(Counted { signal <- Signal::new() }? Error),
            ),
            GFP_KERNEL,
        )?;
        // Each event is EOIed by the framework, so the next one gets through.
        for _ in 1..=3 {
            b.notify();
            // Fails if an event did not arrive within 5 s.
            assert!(reg.handler().signal.wait(5000));
        }
        // And the other direction: the registration notifies `b`'s side (no handler there;
        // the call must simply not fail).
        reg.notify();
        Ok(())
    }

    #[test]
    fn binding_to_a_bad_remote_port_fails() {
        if !crate::xen::testutil::need_xen() {
            return;
        }
        // A port number far beyond any allocated one.
        assert!(Port::bind_interdomain(DOMID_SELF, 999_999).is_err());
    }
}
