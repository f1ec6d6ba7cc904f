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
//! until the handler's work is done, and an event that carried no work is reported as such, so
//! the event core throttles a frontend that floods events (XSA-332). Here the handler returns a
//! [`LateEoi`] and the EOI is sent for it: it cannot be forgotten. A handler that has more work
//! than it should do in hard interrupt context returns [`LateEoi::Deferred`]: the rest runs in a
//! work item ([`LateEoiHandler::handle_deferred`]), with the channel still masked, and the EOI is
//! sent when that is done. A frontend that keeps producing requests then costs the backend's
//! domain bounded interrupt time and work items, not a CPU held in interrupt context.

use crate::{
    bindings,
    error::to_result,
    ffi::{
        c_int,
        c_uint,
        c_void, //
    },
    irq::IrqReturn,
    prelude::*,
    str::CStr,
    sync::aref::ARef,
    types::Opaque, //
};
use core::{
    marker::PhantomPinned,
    sync::atomic::{
        AtomicU32,
        Ordering, //
    },
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

    /// Takes ownership of an open port.
    ///
    /// # Safety
    ///
    /// `port` is an open port of this domain that nothing else closes.
    pub(crate) unsafe fn from_raw(port: u32) -> Self {
        // INVARIANT: The caller guarantees that the port is open and ours.
        Self { port }
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
    /// The event carried work, all done: the EOI is sent now.
    Handled,
    /// The event carried no work: the EOI is sent now, flagged spurious. The event core delays
    /// the channel of a peer that sends many of those (a storm, XSA-391).
    Spurious,
    /// The event carried more work than the handler does at once: the channel stays masked and
    /// [`LateEoiHandler::handle_deferred`] continues in process context, from a work item,
    /// until it returns [`Handled`](Self::Handled) or [`Spurious`](Self::Spurious).
    Deferred,
}

/// The handler of an event channel bound with [`LateEoiRegistration`].
pub trait LateEoiHandler: Sync {
    /// Called in hard interrupt context. The channel stays masked until the EOI, so a peer
    /// cannot fire this again while it runs, nor while its deferred part runs. `peer` notifies
    /// the other end, for instance after pushing responses.
    ///
    /// It should do a bounded amount of work and return [`LateEoi::Deferred`] if more is left.
    fn handle(&self, peer: &Notifier) -> LateEoi;

    /// Continues the work of an event for which [`handle`](Self::handle) or the previous call
    /// returned [`LateEoi::Deferred`]. Called in process context (it may sleep), from a work item
    /// on the system's unbound workqueue; never at the same time as `handle`. Returning
    /// [`LateEoi::Deferred`] again queues the work item again, so other work runs in between.
    ///
    /// The default sends the EOI without doing anything, for handlers that never defer.
    fn handle_deferred(&self, peer: &Notifier) -> LateEoi {
        let _ = peer;
        LateEoi::Handled
    }
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
struct Binding {
    irq: AtomicU32,
    events: AtomicU32,
}

/// The work item that runs the deferred part of a late-EOI handler
/// ([`LateEoiHandler::handle_deferred`]).
///
/// # Invariants
///
/// `work` is initialised, with the work function of the registration that holds this.
#[pin_data]
struct Deferred {
    #[pin]
    work: Opaque<bindings::work_struct>,
    /// How many times the handler's work was deferred.
    deferrals: AtomicU32,
}

impl Deferred {
    /// # Safety
    ///
    /// `func` must be sound to call with the address of the `work` field of the object
    /// initialised, for as long as the work item may be queued.
    unsafe fn new(func: unsafe extern "C" fn(*mut bindings::work_struct)) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: The caller vouches for `func`.
            work <- Opaque::ffi_init(|slot| unsafe { Self::init_work(slot, func) }),
            deferrals: AtomicU32::new(0),
        })
    }

    /// Initialises the work item at `slot` with `func`.
    ///
    /// Not inlined, and not generic, so that the lockdep class and its name live in the kernel
    /// image: lockdep keeps the name pointer for as long as the class exists, which is longer
    /// than any module that binds a channel.
    ///
    /// # Safety
    ///
    /// `slot` must be valid for writes, and `func` as for [`Deferred::new`].
    #[inline(never)]
    unsafe fn init_work(
        slot: *mut bindings::work_struct,
        func: unsafe extern "C" fn(*mut bindings::work_struct),
    ) {
        // SAFETY: `slot` is valid for writes (the caller's guarantee); the name and the lock
        // class are statics of the kernel image.
        unsafe {
            bindings::init_work_with_key(
                slot,
                Some(func),
                false,
                c"xen_lateeoi_deferred".as_char_ptr(),
                crate::sync::static_lock_class!().as_ptr(),
            )
        }
    }

    /// Queues the work item (it is not queued: the channel is masked until it sends the EOI).
    fn queue(&self) {
        self.deferrals.fetch_add(1, Ordering::Relaxed);
        // SAFETY: The work item is initialised (type invariant); the unbound system workqueue
        // always exists.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                bindings::system_dfl_wq,
                self.work.get(),
            )
        };
    }

    /// Stops the deferred part for good, before `irq` is unbound: once this returns, neither
    /// the handler nor its deferred part runs, nor will again.
    ///
    /// # Safety
    ///
    /// `irq` must be the IRQ of the registration that holds this.
    unsafe fn stop(&self, irq: u32) {
        // SAFETY: `irq` is bound (the caller's guarantee). `disable_irq` waits for a running
        // handler and keeps the handler from running again, so nothing queues the work item
        // any more except the work item itself, which `cancel_work_sync` copes with: it
        // returns once the work item is neither queued nor running.
        unsafe {
            bindings::disable_irq(irq);
            bindings::cancel_work_sync(self.work.get());
        }
    }
}

macro_rules! registration {
    ($name:ident, $trait:ident, $bind:ident, $callback:ident, $doc:literal
     $(, deferred: $deferred:ident, $work_fn:ident)?) => {
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
            bound: Binding,
            /// The xenbus device whose event counters the event core updates for this port, if
            /// any: held so that it outlives the binding even if the registration is leaked.
            owner: Option<ARef<crate::xen::xenbus::Device>>,
            $(
            #[pin]
            $deferred: Deferred,
            )?
            #[pin]
            handler: T,
            #[pin]
            _pin: PhantomPinned,
        }

        impl<T: $trait> $name<T> {
            /// Binds `port` to `handler`. The port is closed when the registration is dropped.
            ///
            /// If binding fails the port is given up, not closed: the event core has closed it
            /// already on most of its failure paths (a failed `request_irq`, a failed setup of
            /// the port's event word), and closing the number again could close a port that
            /// another driver has been given since. On the others (no memory for an IRQ
            /// descriptor, before the port was recorded) it stays open, as it does for the C
            /// callers of the same function.
            pub fn new(
                port: Port,
                name: &'static CStr,
                handler: impl PinInit<T, Error>,
            ) -> impl PinInit<Self, Error> {
                Self::bind_with(handler, None, move |cookie| {
                    let raw = port.into_raw();
                    // SAFETY: `raw` is an open port we own and hand over; the callback and the
                    // cookie stay valid until `drop` unbinds the handler. `name` is `'static`.
                    unsafe {
                        bindings::$bind(raw, Some($callback::<T>), 0, name.as_char_ptr(), cookie)
                    }
                })
            }

            /// Initialises the registration, then calls `bind` with the registration's address
            /// as cookie, once every field is initialised (the handler may run at once).
            /// `bind` binds a channel to this type's callback with that cookie and returns the
            /// IRQ, or a negative errno; on failure no handler with that cookie is left bound.
            /// `owner` is the device `bind` hands to the event core, if any.
            fn bind_with(
                handler: impl PinInit<T, Error>,
                owner: Option<ARef<crate::xen::xenbus::Device>>,
                bind: impl FnOnce(*mut c_void) -> c_int,
            ) -> impl PinInit<Self, Error> {
                try_pin_init!(&this in Self {
                    bound: Binding { irq: AtomicU32::new(0), events: AtomicU32::new(0) },
                    owner,
                    // SAFETY: The work function finds this registration from the field's
                    // address; drop stops the work item before the registration goes away.
                    $($deferred <- unsafe { Deferred::new($work_fn::<T>) },)?
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
                $(
                // SAFETY: The IRQ is this registration's (type invariant).
                unsafe { self.$deferred.stop(self.irq()) };
                )?
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
    "An event channel port bound to a [`LateEoiHandler`], for backends.",
    deferred: deferred,
    deferred_work
);

impl<T: LateEoiHandler> LateEoiRegistration<T> {
    /// How many events the handler deferred to process context ([`LateEoi::Deferred`] from
    /// [`LateEoiHandler::handle`] or [`LateEoiHandler::handle_deferred`]).
    pub fn deferrals(&self) -> u32 {
        self.deferred.deferrals.load(Ordering::Relaxed)
    }

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
        // The event core keeps `xdev` without a reference, for its spurious-event accounting
        // until the port is unbound; the registration holds one for it.
        let owner: ARef<crate::xen::xenbus::Device> = dev.into();
        Self::bind_with(handler, Some(owner), move |cookie| {
            // SAFETY: `xdev` is a bound xenbus device, kept alive until the port is unbound by
            // the reference in `owner`; the callback and the cookie stay valid
            // until `drop` unbinds the handler. On failure nothing is left bound (the local
            // port the C function opened is closed or, on its out-of-memory paths, left open, as
            // for its C callers; see `new`).
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

// SAFETY: Besides the handler (`T: Send`), a registration holds the atomics of its binding and an
// optional `ARef<Device>` (`Send`); the event core knows it only by its pinned address, which a
// move to another thread does not change. Dropping it on another thread is what `PinnedDrop`
// allows: `unbind_from_irqhandler` may be called from any process context.
unsafe impl<T: Handler + Send> Send for Registration<T> {}
// SAFETY: A shared reference reaches the handler (`Handler: Sync`), the binding's atomics and
// `notify`, and `notify_remote_via_irq` may be called from any context, concurrently.
unsafe impl<T: Handler> Sync for Registration<T> {}
// SAFETY: As for `Registration<T>` (`T: Send`, atomics, `ARef<Device>`); the deferred work item is
// a `work_struct` at a pinned address and an atomic count, and the workqueue runs it on any CPU.
unsafe impl<T: LateEoiHandler + Send> Send for LateEoiRegistration<T> {}
// SAFETY: As for `Registration<T>` (`LateEoiHandler: Sync`, atomics, `notify`); shared access to
// the deferred work item is only queueing it and reading its atomic count, and `queue_work`
// serialises concurrent callers itself.
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
    // SAFETY: `ptr` is the cookie given at bind time: a live, pinned `LateEoiRegistration<T>`,
    // valid until drop unbinds the handler (which waits for this call to return).
    let this = unsafe { &*ptr.cast::<LateEoiRegistration<T>>() };
    this.bound.events.fetch_add(1, Ordering::Relaxed);
    // The handler may run before the constructor stored the IRQ; the deferred part needs it.
    this.bound.irq.store(irq as u32, Ordering::Release);
    let outcome = this.handler.handle(&Notifier { irq });
    this.finish(outcome);
    bindings::irqreturn_t(IrqReturn::Handled as c_uint)
}

impl<T: LateEoiHandler> LateEoiRegistration<T> {
    /// Sends the EOI for `outcome`, or queues the deferred part.
    fn finish(&self, outcome: LateEoi) {
        let flags = match outcome {
            LateEoi::Handled => 0,
            LateEoi::Spurious => bindings::XEN_EOI_FLAG_SPURIOUS,
            LateEoi::Deferred => {
                self.deferred.queue();
                return;
            }
        };
        // SAFETY: The IRQ is bound to this registration's late-EOI channel (type invariant):
        // the handler or the work item that calls this runs only while it is.
        unsafe { bindings::xen_irq_lateeoi(self.irq(), flags) };
    }
}

/// # Safety
///
/// `work` must be the work item of the `deferred` field of a live [`LateEoiRegistration<T>`].
unsafe extern "C" fn deferred_work<T: LateEoiHandler>(work: *mut bindings::work_struct) {
    // SAFETY: `Opaque` is `repr(transparent)`, so `work` is the address of the field inside a
    // `Deferred`, itself the `deferred` field of a live registration (the caller's guarantee);
    // drop stops the work item before the registration goes away.
    let this = unsafe {
        &*crate::container_of!(
            work.cast::<Opaque<bindings::work_struct>>(),
            LateEoiRegistration<T>,
            deferred.work
        )
    };
    let irq = this.irq() as c_int;
    let outcome = this.handler.handle_deferred(&Notifier { irq });
    this.finish(outcome);
}

#[cfg(CONFIG_RUST_XEN_KUNIT_TEST)]
#[macros::kunit_tests(rust_xen_events)]
mod tests {
    use super::*;
    use crate::{
        cpu::CpuId,
        cpumask::{
            Cpumask,
            CpumaskVar, //
        },
        sync::Arc,
        time::{
            delay::udelay,
            Delta, //
        },
        xen::testutil::Signal,
    };
    use core::sync::atomic::AtomicBool;

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

    /// A channel from this domain to itself: `a`, allocated unbound, and `b`, bound to it.
    fn loopback() -> Result<(Port, Port)> {
        let a = Port::alloc_unbound(DOMID_SELF)?;
        let b = Port::bind_interdomain(DOMID_SELF, a.number())?;
        Ok((a, b))
    }

    #[test]
    fn loopback_notify_runs_handler() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        // A channel from this domain to itself: `a` is bound to the handler, `b` notifies it.
        let (a, b) = loopback()?;
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
        // Xen marks the end bound with EVTCHNOP_bind_interdomain (`b`) pending, so that no
        // notification sent before the bind is lost; whether that event is still there when
        // the handler is bound varies. The other end (`a`) gets no such event: the count of
        // its handler is exact.
        let (a, b) = loopback()?;
        let reg = KBox::pin_init(
            LateEoiRegistration::new(
                b,
                c"rust-xen-kunit-eoi",
                try_pin_init!(Counted { signal <- Signal::new() }? Error),
            ),
            GFP_KERNEL,
        )?;
        // The other end has a handler too, so that a notification each way is seen.
        let peer = KBox::pin_init(
            Registration::new(
                a,
                c"rust-xen-kunit-peer",
                try_pin_init!(Counted { signal <- Signal::new() }? Error),
            ),
            GFP_KERNEL,
        )?;
        // Each event is EOIed by the framework, so the next one gets through.
        for _ in 1..=3 {
            peer.notify();
            // Fails if an event did not arrive within 5 s.
            assert!(reg.handler().signal.wait(5000));
        }
        assert!(reg.handler().signal.count() >= 3);
        // And the other direction: the late-EOI registration notifies its peer, once.
        assert_eq!(peer.handler().signal.count(), 0);
        reg.notify();
        assert!(peer.handler().signal.wait(5000));
        assert_eq!(peer.handler().signal.count(), 1);
        Ok(())
    }

    /// Defers every event: the deferred part runs `rounds` times (blocking in the first of
    /// them until released), then sends the EOI.
    #[pin_data]
    struct Deferring {
        #[pin]
        handled: Signal,
        #[pin]
        release: Signal,
        #[pin]
        finished: Signal,
        rounds: u32,
        left: AtomicU32,
        deferred_calls: AtomicU32,
        /// `deferred_calls` when the last round finished.
        finished_at: AtomicU32,
    }

    impl Deferring {
        fn new(rounds: u32) -> impl PinInit<Self, Error> {
            try_pin_init!(Self {
                handled <- Signal::new(),
                release <- Signal::new(),
                finished <- Signal::new(),
                rounds,
                left: AtomicU32::new(0),
                deferred_calls: AtomicU32::new(0),
                finished_at: AtomicU32::new(0),
            }? Error)
        }
    }

    impl LateEoiHandler for Deferring {
        fn handle(&self, _peer: &Notifier) -> LateEoi {
            self.left.store(self.rounds, Ordering::Relaxed);
            self.handled.fire();
            LateEoi::Deferred
        }

        fn handle_deferred(&self, _peer: &Notifier) -> LateEoi {
            let calls = self.deferred_calls.fetch_add(1, Ordering::Relaxed) + 1;
            if self.left.load(Ordering::Relaxed) == self.rounds {
                // Process context: the deferred part may sleep. The test releases it.
                self.release.wait(5000);
            }
            if self.left.fetch_sub(1, Ordering::Relaxed) > 1 {
                return LateEoi::Deferred;
            }
            self.finished_at.store(calls, Ordering::Relaxed);
            self.finished.fire();
            LateEoi::Handled
        }
    }

    #[test]
    fn deferred_eoi_is_sent_when_the_deferred_part_is_done() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let (a, b) = loopback()?;
        let reg = KBox::pin_init(
            LateEoiRegistration::new(a, c"rust-xen-kunit-defer", Deferring::new(3)),
            GFP_KERNEL,
        )?;
        let h = reg.handler();
        b.notify();
        assert!(h.handled.wait(5000));
        // The deferred part is blocked: the channel must stay masked, so a second event is
        // held back. (Were the EOI sent when `handle` returned, it would arrive at once.)
        b.notify();
        assert!(!h.handled.wait(200));
        assert_eq!(h.handled.count(), 1);
        h.release.fire();
        assert!(h.finished.wait(5000));
        // 3 rounds: `handle` deferred, then the deferred part twice more; the third sent the EOI.
        assert_eq!(h.finished_at.load(Ordering::Relaxed), 3);
        // The EOI unmasked the channel: the event held back is delivered now, and deferred
        // (its deferred part blocks in its first round until released).
        assert!(h.handled.wait(5000));
        let mut spins = 0;
        while h.deferred_calls.load(Ordering::Relaxed) < 4 && spins < 500 {
            crate::time::delay::fsleep(crate::time::Delta::from_millis(10));
            spins += 1;
        }
        assert_eq!(h.deferred_calls.load(Ordering::Relaxed), 4);
        assert_eq!(reg.deferrals(), 4);
        assert_eq!(reg.events(), 2);
        h.release.fire();
        assert!(h.finished.wait(5000));
        assert_eq!(h.finished_at.load(Ordering::Relaxed), 6);
        Ok(())
    }

    #[test]
    fn drop_stops_a_deferred_part_that_never_ends() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let (a, b) = loopback()?;
        let reg = KBox::pin_init(
            LateEoiRegistration::new(a, c"rust-xen-kunit-defer", Deferring::new(u32::MAX)),
            GFP_KERNEL,
        )?;
        b.notify();
        assert!(reg.handler().handled.wait(5000));
        reg.handler().release.fire();
        // The deferred part queues itself again and again; drop must still return, and nothing
        // may run after it (the memory goes away with it).
        let mut spins = 0;
        while reg.handler().deferred_calls.load(Ordering::Relaxed) < 3 && spins < 500 {
            crate::time::delay::fsleep(crate::time::Delta::from_millis(10));
            spins += 1;
        }
        assert!(reg.handler().deferred_calls.load(Ordering::Relaxed) >= 3);
        drop(reg);
        Ok(())
    }

    /// Events handled by the spurious-EOI test.
    const SPURIOUS_RUNS: usize = 12;

    /// Finds no work in any event, and records the jiffies at which each one was handled.
    #[pin_data]
    struct NoWork {
        #[pin]
        signal: Signal,
        runs: AtomicU32,
        at: [core::sync::atomic::AtomicU64; SPURIOUS_RUNS],
    }

    fn jiffies() -> u64 {
        // SAFETY: `jiffies_64` is a kernel global that is always valid; a 64-bit kernel reads it
        // with one load, as `get_jiffies_64()` does.
        unsafe { core::ptr::read_volatile(&raw const bindings::jiffies_64) }
    }

    impl LateEoiHandler for NoWork {
        fn handle(&self, _peer: &Notifier) -> LateEoi {
            let run = self.runs.fetch_add(1, Ordering::Relaxed) as usize;
            if let Some(at) = self.at.get(run) {
                at.store(jiffies(), Ordering::Relaxed);
            }
            self.signal.fire();
            LateEoi::Spurious
        }
    }

    // XSA-391's back-off: a handler that keeps finding no work returns `Spurious`, and the event
    // core holds the channel masked. In 7.3 (`xen_irq_lateeoi_locked()`), the second spurious
    // EOI in a row holds it for a jiffy; the delayed unmask then counts as a good EOI and starts
    // the count again, so a channel whose events come one at a time is held a jiffy after every
    // second one: at most two events a jiffy. Only lower bounds are asserted (an event cannot be
    // handled before the channel is unmasked, however slow the machine): with the EOI not
    // flagged spurious (`Handled` instead), events arrive well within a jiffy of each other and
    // the assertion fails for the first pair.
    #[test]
    fn spurious_events_hold_the_channel_masked() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        // `a` gets no event of its own at bind time (see `loopback_lateeoi`): each run below is
        // one notification from `b`.
        let (a, b) = loopback()?;
        let reg = KBox::pin_init(
            LateEoiRegistration::new(
                a,
                c"rust-xen-kunit-spurious",
                try_pin_init!(NoWork {
                    signal <- Signal::new(),
                    runs: AtomicU32::new(0),
                    at: [const { core::sync::atomic::AtomicU64::new(0) }; SPURIOUS_RUNS],
                }? Error),
            ),
            GFP_KERNEL,
        )?;
        let h = reg.handler();
        for _ in 0..SPURIOUS_RUNS {
            // Sent while the channel may still be masked from the last EOI: it stays pending
            // and is handled when the event core unmasks the channel.
            b.notify();
            // Fails if an event is lost.
            assert!(h.signal.wait(5000));
        }
        assert_eq!(h.runs.load(Ordering::Relaxed), SPURIOUS_RUNS as u32);
        let at = |i: usize| h.at.get(i).map_or(0, |a| a.load(Ordering::Relaxed));
        // Runs 1, 3, 5, ... (from 0) end with the second spurious EOI in a row: the next run
        // comes a jiffy later at the earliest.
        for run in (1..SPURIOUS_RUNS - 1).step_by(2) {
            assert!(at(run + 1).saturating_sub(at(run)) >= 1);
        }
        Ok(())
    }

    /// Points `irq` at the online CPUs other than the one running the test; `None` (and the
    /// test marked skipped) when there is no other.
    fn away_from_here(irq: u32) -> Result<Option<CpuId>> {
        // SAFETY: `__cpu_online_mask` is a kernel global that lives for ever; it is only read.
        let online = unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) };
        let mut away = CpumaskVar::try_clone(online)?;
        let here = CpuId::current();
        away.clear(here);
        if away.empty() {
            crate::xen::testutil::skip(c"needs a second online CPU");
            return Ok(None);
        }
        // SAFETY: `irq` is bound to an event channel by a live registration; `away` is a valid
        // cpumask that outlives the call.
        to_result(unsafe { bindings::irq_set_affinity(irq, away.as_raw()) })?;
        Ok(Some(here))
    }

    /// What the XSA-331 handlers share with their test, which outlives the registration.
    #[pin_data]
    struct Lingering {
        #[pin]
        entered: Signal,
        /// Whether the next event lingers in the handler (else it only counts).
        linger: AtomicBool,
        /// Set by the test just before it unbinds.
        unbinding: AtomicBool,
        /// Set by a lingering handler as its last access.
        left: AtomicBool,
        /// The CPU of the last handler run.
        cpu: AtomicU32,
    }

    impl Lingering {
        fn new() -> impl PinInit<Self, Error> {
            try_pin_init!(Self {
                entered <- Signal::new(),
                linger: AtomicBool::new(false),
                unbinding: AtomicBool::new(false),
                left: AtomicBool::new(false),
                cpu: AtomicU32::new(u32::MAX),
            }? Error)
        }
    }

    /// The handler: all it has is shared with the test.
    #[pin_data]
    struct Linger {
        shared: Arc<Lingering>,
    }

    impl Handler for Linger {
        fn handle(&self) -> IrqReturn {
            let l = &self.shared;
            l.cpu.store(CpuId::current().as_u32(), Ordering::Relaxed);
            l.entered.fire();
            if l.linger.load(Ordering::Acquire) {
                // Stay until the test starts to unbind (1 s at most, should the event have
                // come to the test's own CPU), then 20 ms more, so that the unbind is under way
                // while the handler still runs.
                let mut waited = 0;
                while !l.unbinding.load(Ordering::Acquire) && waited < 10_000 {
                    udelay(Delta::from_micros(100));
                    waited += 1;
                }
                for _ in 0..4 {
                    udelay(Delta::from_millis(5));
                }
                l.left.store(true, Ordering::Release);
            }
            IrqReturn::Handled
        }
    }

    /// The pieces of an XSA-331 test: the notifying end of a loopback channel, the other end
    /// bound to a [`Linger`] handler whose IRQ is pointed away from this CPU, what the handler
    /// shares, and this CPU.
    type Lingerer = (Port, Pin<KBox<Registration<Linger>>>, Arc<Lingering>, CpuId);

    /// Sets up a [`Lingerer`]; `None` (the test marked skipped) if there is no other CPU.
    fn lingerer(name: &'static CStr) -> Result<Option<Lingerer>> {
        let (a, b) = loopback()?;
        let shared = Arc::pin_init(Lingering::new(), GFP_KERNEL)?;
        let theirs = shared.clone();
        let reg = KBox::pin_init(
            Registration::new(a, name, try_pin_init!(Linger { shared: theirs }? Error)),
            GFP_KERNEL,
        )?;
        Ok(away_from_here(reg.irq())?.map(|here| (b, reg, shared, here)))
    }

    // XSA-331, seen from a driver: the channel is unbound while its handler runs on another CPU.
    // The unbind must not return before the handler has returned (the registration, and what
    // the handler uses, go away with it), and no handler may run after it. A core that let the
    // unbind return at once fails `left`; one that freed the IRQ's state under the running
    // handler is caught by the checkers (SLUB poisoning, KFENCE) that fail the run.
    #[test]
    fn unbind_waits_for_a_handler_running_on_another_cpu() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let mut raced = 0;
        for _ in 0..5 {
            let Some((b, reg, shared, here)) = lingerer(c"rust-xen-kunit-xsa331")? else {
                return Ok(());
            };
            // A first event that only counts: an affinity change may take effect at the IRQ's
            // next event.
            b.notify();
            assert!(shared.entered.wait(5000));
            shared.linger.store(true, Ordering::Release);
            b.notify();
            assert!(shared.entered.wait(5000));
            // Still in the handler, on another CPU: the unbind below races it.
            if !shared.left.load(Ordering::Acquire)
                && shared.cpu.load(Ordering::Relaxed) != here.as_u32()
                && CpuId::current() == here
            {
                raced += 1;
            }
            shared.unbinding.store(true, Ordering::Release);
            drop(reg);
            assert!(shared.left.load(Ordering::Acquire));
            let runs = shared.entered.count();
            b.notify();
            udelay(Delta::from_millis(5));
            assert_eq!(shared.entered.count(), runs);
        }
        // The unbind ran while the handler was running on another CPU at least once.
        assert!(raced >= 1);
        Ok(())
    }

    /// Events that arrive on other CPUs while a channel goes away: an event the upcall has
    /// found (port to IRQ) but not yet handled when the IRQ's state is freed is XSA-331's race.
    const STORM_CYCLES: u32 = 50;

    #[test]
    fn unbind_under_an_event_storm_on_another_cpu() -> Result {
        if !crate::xen::testutil::need_xen() {
            return Ok(());
        }
        let mut away = 0;
        for _ in 0..STORM_CYCLES {
            let Some((b, reg, shared, here)) = lingerer(c"rust-xen-kunit-storm")? else {
                return Ok(());
            };
            // A first event, waited for: the other CPU is taking this channel's events before
            // the storm starts (under TCG a vCPU may otherwise not run before the unbind), and an
            // affinity change may take effect at the IRQ's next event.
            b.notify();
            assert!(shared.entered.wait(5000));
            // Each notification is an upcall on the other CPU while this one sends the next
            // and then unbinds.
            for _ in 0..200 {
                b.notify();
            }
            drop(reg);
            let runs = shared.entered.count();
            if runs > 0 && shared.cpu.load(Ordering::Relaxed) != here.as_u32() {
                away += 1;
            }
            b.notify();
            udelay(Delta::from_millis(1));
            assert_eq!(shared.entered.count(), runs);
        }
        // Events were handled on another CPU in most cycles (the affinity held).
        assert!(away >= STORM_CYCLES / 2);
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
