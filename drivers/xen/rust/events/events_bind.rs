// SPDX-License-Identifier: GPL-2.0

//! Binding the Xen event channels drivers bind, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_bind.c` when `XEN_EVENTS_RUST` is set:
//!
//! - [`bind_evtchn_to_irq`] and [`bind_evtchn_to_irq_lateeoi`] bind a port the driver has to an
//!   IRQ of the `xen-dyn` or `xen-dyn-lateeoi` chip, placed on CPU 0. A port bound already gives
//!   its IRQ again; with `IRQF_SHARED`, one more reference once the port is reference counted
//!   (`evtchn_make_refcounted()`);
//! - [`bind_interdomain_evtchn_to_irq_lateeoi`] first binds a local port to a xenbus device's
//!   other end (`EVTCHNOP_bind_interdomain`), and counts the channel on the device;
//! - the `*_irqhandler*()` variants also request the IRQ with the driver's handler, and undo the
//!   binding (closing the port) if that fails;
//! - [`unbind_from_irqhandler`] frees the IRQ and unbinds it, and [`xen_unbind_from_irq`] unbinds
//!   an IRQ, through `xen_unbind_from_irq_locked()` (`events_virq_ipi`), which drops a reference
//!   and with the last closes the channel and frees the IRQ's `irq_info` after a grace period.
//!
//! Their C names and behaviour are kept, so the drivers that call them do not change; the exports
//! are in `bind-glue.c`. An interdomain binding that fails before its new local port is bound
//! (for want of memory) closes that port, which C leaks. Three more things differ from C, for
//! callers that break the rules:
//!
//! - a port bound already as another type of IRQ (a VIRQ's, an IPI's) warns and fails with
//!   `-EEXIST`, where C warns and gives that IRQ, which a handler variant whose request then fails
//!   unbinds from under its owner;
//! - a shared reference that would overflow the count fails with `-EBUSY`;
//! - an interdomain binding without a device, or with an other end that is not a domain ID,
//!   fails with `-EINVAL`, where C dereferences or truncates it.

use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    prelude::*, //
};

mod common;
use common::{
    mapping_lock,
    max_channels, //
};

const IRQT_EVTCHN: i16 = bindings::xen_irq_type_IRQT_EVTCHN as i16;
const IRQF_SHARED: c_ulong = bindings::IRQF_SHARED as c_ulong;

/// A chip of bound event channels, defined by the irq chips' crate.
#[derive(Clone, Copy)]
enum Chip {
    /// `xen-dyn`.
    Dynamic,
    /// `xen-dyn-lateeoi`.
    LateEoi,
}

impl Chip {
    fn as_ptr(self) -> *const bindings::irq_chip {
        match self {
            Chip::Dynamic => &raw const bindings::xen_dynamic_chip,
            Chip::LateEoi => &raw const bindings::xen_lateeoi_chip,
        }
    }
}

/// Why a binding failed: the error, and whether the port was left open and unbound (so that
/// whoever opened it for the binding can close it).
struct Failed {
    err: c_int,
    left_open: bool,
}

impl Failed {
    /// A failure before anything was bound: the port is as it was.
    fn before(err: Error) -> Self {
        Failed {
            err: err.to_errno(),
            left_open: true,
        }
    }

    /// A failure that did not leave the port open and unbound: it was closed on the way, or is
    /// someone else's binding.
    fn after(err: c_int) -> Self {
        Failed {
            err,
            left_open: false,
        }
    }
}

/// Binds port `evtchn` to an IRQ of `chip` (C's `bind_evtchn_to_irq_chip()`), counted on `dev` if
/// it is not null; returns the IRQ.
///
/// # Safety
///
/// `evtchn`, if not bound yet, must be an open port of this domain that nothing else binds;
/// `dev` must be null or a live xenbus device that outlives the binding.
unsafe fn bind_chip(
    evtchn: bindings::evtchn_port_t,
    chip: Chip,
    dev: *mut bindings::xenbus_device,
    shared: bool,
) -> Result<c_int, Failed> {
    // C's error for a port out of the ABI's range.
    if evtchn >= max_channels() {
        return Err(Failed::before(ENOMEM));
    }
    let _guard = mapping_lock().lock();
    // SAFETY: The port is in range; under the mapping lock the map holds only live `irq_info`s.
    let info = unsafe { bindings::xen_evtchn_to_info(evtchn) };
    if info.is_null() {
        // SAFETY: The mapping lock is held.
        let info = unsafe { bindings::xen_allocate_irq_dynamic() };
        if info.is_null() {
            return Err(Failed::before(ENOMEM));
        }
        // SAFETY: `info` is new and ours under the lock.
        let irq = unsafe { (*info).irq };
        // SAFETY: `irq` has a descriptor; the chip is static, the flow handler the kernel's, the
        // name static.
        unsafe {
            bindings::irq_set_chip_and_handler_name(
                irq,
                chip.as_ptr(),
                Some(bindings::handle_edge_irq),
                c"event".as_char_ptr(),
            )
        };
        // SAFETY: `info` is new and unbound; `evtchn` is open (the caller's guarantee), and so is
        // `dev` if not null. The mapping lock is held.
        let ret = unsafe { bindings::xen_irq_info_evtchn_setup(info, evtchn, dev) };
        if ret < 0 {
            // SAFETY: `info` is `irq`'s; the mapping lock is held. This closes the port, as C.
            unsafe { bindings::xen_unbind_from_irq_locked(info, irq) };
            return Err(Failed::after(ret));
        }
        // New channels start on vCPU 0: they are set up there, and a UP guest never sets the
        // affinity of an IRQ.
        // SAFETY: `info` is bound to an open channel; the mapping lock is held.
        unsafe { bindings::xen_bind_evtchn_to_cpu(info, 0, false) };
        return c_int::try_from(irq).map_err(|_| Failed::after(EINVAL.to_errno()));
    }
    // Bound already. The `irq_info` is live and its count changes only under the lock.
    // SAFETY: As above.
    let (ty, irq, refcnt) = unsafe { ((*info).type_, (*info).irq, (*info).refcnt) };
    // Another type's port: its IRQ is not the driver's to request, or to unbind.
    if kernel::warn_on!(ty != IRQT_EVTCHN) {
        return Err(Failed::after(EEXIST.to_errno()));
    }
    if shared && !kernel::warn_on!(refcnt < 0) {
        let Some(refcnt) = refcnt.checked_add(1) else {
            return Err(Failed::after(EBUSY.to_errno()));
        };
        // SAFETY: As above.
        unsafe { (*info).refcnt = refcnt };
    }
    c_int::try_from(irq).map_err(|_| Failed::after(EINVAL.to_errno()))
}

/// [`bind_chip`], with its error as a negative number.
///
/// # Safety
///
/// As [`bind_chip`].
unsafe fn bind_evtchn_to_irq_chip(
    evtchn: bindings::evtchn_port_t,
    chip: Chip,
    dev: *mut bindings::xenbus_device,
    shared: bool,
) -> c_int {
    // SAFETY: The caller's guarantee.
    match unsafe { bind_chip(evtchn, chip, dev, shared) } {
        Ok(irq) => irq,
        Err(failed) => failed.err,
    }
}

/// Binds open port `evtchn` to an IRQ of the `xen-dyn` chip; returns the IRQ or a negative error.
///
/// # Safety
///
/// As `bind_evtchn_to_irq_chip()`, without a device.
#[export]
pub unsafe extern "C" fn bind_evtchn_to_irq(evtchn: bindings::evtchn_port_t) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe { bind_evtchn_to_irq_chip(evtchn, Chip::Dynamic, core::ptr::null_mut(), false) }
}

/// Binds open port `evtchn` to an IRQ of the `xen-dyn-lateeoi` chip; returns the IRQ or a negative
/// error.
///
/// # Safety
///
/// As [`bind_evtchn_to_irq`].
#[export]
pub unsafe extern "C" fn bind_evtchn_to_irq_lateeoi(evtchn: bindings::evtchn_port_t) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe { bind_evtchn_to_irq_chip(evtchn, Chip::LateEoi, core::ptr::null_mut(), false) }
}

/// Binds a new local port to port `remote_port` of `dev`'s other end, then to an IRQ of `chip`
/// counted on `dev`; returns the IRQ or a negative error.
///
/// # Safety
///
/// `dev` must be null (which fails) or a live xenbus device that outlives the binding.
unsafe fn bind_interdomain_evtchn_to_irq_chip(
    dev: *mut bindings::xenbus_device,
    remote_port: bindings::evtchn_port_t,
    chip: Chip,
    shared: bool,
) -> c_int {
    if dev.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: `dev` is live (the caller's guarantee).
    let Ok(remote_dom) = bindings::domid_t::try_from(unsafe { (*dev).otherend_id }) else {
        return EINVAL.to_errno();
    };
    let mut bind = bindings::evtchn_bind_interdomain {
        remote_dom,
        remote_port,
        local_port: 0,
    };
    // SAFETY: `bind` is a valid argument of this operation, and outlives the call.
    let err = unsafe {
        bindings::HYPERVISOR_event_channel_op(
            bindings::EVTCHNOP_bind_interdomain as c_int,
            (&raw mut bind).cast(),
        )
    };
    if err != 0 {
        return err;
    }
    // SAFETY: The local port was just opened for this binding; `dev` is live.
    match unsafe { bind_chip(bind.local_port, chip, dev, shared) } {
        Ok(irq) => irq,
        Err(failed) => {
            // A port left open would leak (C leaks it): nothing else knows its number.
            if failed.left_open {
                // SAFETY: The port was opened above, and nothing is bound to it.
                unsafe { bindings::xen_evtchn_close(bind.local_port) };
            }
            failed.err
        }
    }
}

/// Binds a new local port to port `remote_port` of `dev`'s other end, then to an IRQ of the
/// `xen-dyn-lateeoi` chip; returns the IRQ or a negative error.
///
/// # Safety
///
/// As `bind_interdomain_evtchn_to_irq_chip()`.
#[export]
pub unsafe extern "C" fn bind_interdomain_evtchn_to_irq_lateeoi(
    dev: *mut bindings::xenbus_device,
    remote_port: bindings::evtchn_port_t,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe { bind_interdomain_evtchn_to_irq_chip(dev, remote_port, Chip::LateEoi, false) }
}

/// Unbinds IRQ `irq` (C's `xen_unbind_from_irq()`): drops a reference, and with the last closes
/// its channel and frees its `irq_info` after a grace period.
///
/// # Safety
///
/// `irq` must be an IRQ the caller bound through the event core, with no handler left.
#[export]
pub unsafe extern "C" fn xen_unbind_from_irq(irq: c_uint) {
    let _guard = mapping_lock().lock();
    // SAFETY: Any IRQ number may be looked up; under the lock the result is live or null.
    let info = unsafe { bindings::xen_info_for_irq(irq) };
    // SAFETY: `info` is `irq`'s, or null for an IRQ with only a descriptor; the lock is held.
    unsafe { bindings::xen_unbind_from_irq_locked(info, irq) };
}

/// Requests bound IRQ `irq` (a result of a binding function) with the driver's handler; unbinds
/// it if that fails. Returns the IRQ or a negative error.
///
/// # Safety
///
/// As `request_irq()`'s, for `handler`, `devname` and `dev_id`.
unsafe fn request(
    irq: c_int,
    handler: bindings::irq_handler_t,
    irqflags: c_ulong,
    devname: *const c_char,
    dev_id: *mut c_void,
) -> c_int {
    let Ok(irq) = c_uint::try_from(irq) else {
        // A binding's error.
        return irq;
    };
    // SAFETY: `irq` is bound; the rest is the caller's guarantee.
    let ret = unsafe { bindings::request_irq(irq, handler, irqflags, devname, dev_id) };
    if ret != 0 {
        // SAFETY: The caller bound `irq` just now, and its request failed: it has no handler.
        unsafe { xen_unbind_from_irq(irq) };
        return ret;
    }
    c_int::try_from(irq).unwrap_or(EINVAL.to_errno())
}

/// Whether `irqflags` ask for a shared IRQ.
fn shared(irqflags: c_ulong) -> bool {
    irqflags & IRQF_SHARED != 0
}

/// Binds port `evtchn` to an IRQ of `chip`, then requests the IRQ with `handler` (C's
/// `bind_evtchn_to_irqhandler_chip()`); returns the IRQ or a negative error.
///
/// # Safety
///
/// As [`bind_evtchn_to_irq`] and `request_irq()`.
unsafe fn bind_evtchn_to_irqhandler_chip(
    evtchn: bindings::evtchn_port_t,
    handler: bindings::irq_handler_t,
    irqflags: c_ulong,
    devname: *const c_char,
    dev_id: *mut c_void,
    chip: Chip,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe {
        let irq = bind_evtchn_to_irq_chip(evtchn, chip, core::ptr::null_mut(), shared(irqflags));
        request(irq, handler, irqflags, devname, dev_id)
    }
}

/// [`bind_evtchn_to_irq`], then requests the IRQ with `handler`; returns the IRQ or a negative
/// error.
///
/// # Safety
///
/// As [`bind_evtchn_to_irq`] and `request_irq()`.
#[export]
pub unsafe extern "C" fn bind_evtchn_to_irqhandler(
    evtchn: bindings::evtchn_port_t,
    handler: bindings::irq_handler_t,
    irqflags: c_ulong,
    devname: *const c_char,
    dev_id: *mut c_void,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe {
        bind_evtchn_to_irqhandler_chip(evtchn, handler, irqflags, devname, dev_id, Chip::Dynamic)
    }
}

/// [`bind_evtchn_to_irq_lateeoi`], then requests the IRQ with `handler`; returns the IRQ or a
/// negative error.
///
/// # Safety
///
/// As [`bind_evtchn_to_irq`] and `request_irq()`.
#[export]
pub unsafe extern "C" fn bind_evtchn_to_irqhandler_lateeoi(
    evtchn: bindings::evtchn_port_t,
    handler: bindings::irq_handler_t,
    irqflags: c_ulong,
    devname: *const c_char,
    dev_id: *mut c_void,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe {
        bind_evtchn_to_irqhandler_chip(evtchn, handler, irqflags, devname, dev_id, Chip::LateEoi)
    }
}

/// [`bind_interdomain_evtchn_to_irq_lateeoi`], then requests the IRQ with `handler`; returns the
/// IRQ or a negative error.
///
/// # Safety
///
/// As [`bind_interdomain_evtchn_to_irq_lateeoi`] and `request_irq()`.
#[export]
pub unsafe extern "C" fn bind_interdomain_evtchn_to_irqhandler_lateeoi(
    dev: *mut bindings::xenbus_device,
    remote_port: bindings::evtchn_port_t,
    handler: bindings::irq_handler_t,
    irqflags: c_ulong,
    devname: *const c_char,
    dev_id: *mut c_void,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe {
        let irq =
            bind_interdomain_evtchn_to_irq_chip(dev, remote_port, Chip::LateEoi, shared(irqflags));
        request(irq, handler, irqflags, devname, dev_id)
    }
}

/// Frees IRQ `irq`'s handler `dev_id` and unbinds it (warns if it has no `irq_info`).
///
/// # Safety
///
/// `irq` must be an IRQ the caller bound with a handler variant, and `dev_id` its.
#[export]
pub unsafe extern "C" fn unbind_from_irqhandler(irq: c_uint, dev_id: *mut c_void) {
    // SAFETY: Any IRQ number may be looked up; only whether it has an `irq_info` is used.
    let info = unsafe { bindings::xen_info_for_irq(irq) };
    if kernel::warn_on!(info.is_null()) {
        return;
    }
    // SAFETY: The caller's guarantee: `dev_id` is the handler it requested `irq` with. Its name
    // is not kept (the result is the name, which C drops too).
    unsafe { bindings::free_irq(irq, dev_id) };
    // SAFETY: The caller bound `irq`, whose handler is freed.
    unsafe { xen_unbind_from_irq(irq) };
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_bind)]
mod tests {
    use super::*;
    use common::kunit::{
        chip_name,
        info,
        on_xen,
        port_status,
        wait_until, //
    };
    use core::mem::MaybeUninit;
    use kernel::{
        alloc::flags::__GFP_ZERO,
        error::to_result,
        sync::atomic::{
            Atomic,
            Full,
            Relaxed, //
        },
    };

    const DOMID_SELF: u16 = bindings::DOMID_SELF as u16;

    /// An event channel operation on `arg`.
    fn op<T>(cmd: u32, arg: &mut T) -> Result {
        // SAFETY: The callers pass the argument structure of `cmd`, which outlives the call.
        to_result(unsafe {
            bindings::HYPERVISOR_event_channel_op(cmd as c_int, core::ptr::from_mut(arg).cast())
        })
    }

    /// A new port of this domain, for this domain to bind to (`EVTCHNOP_alloc_unbound`).
    fn alloc_unbound() -> Result<u32> {
        let mut alloc = bindings::evtchn_alloc_unbound {
            dom: DOMID_SELF,
            remote_dom: DOMID_SELF,
            port: 0,
        };
        op(bindings::EVTCHNOP_alloc_unbound, &mut alloc)?;
        Ok(alloc.port)
    }

    /// Port `port`'s state, an `EVTCHNSTAT_*`.
    fn state(port: u32) -> Result<u32> {
        port_status(port).map(|status| status.status)
    }

    /// Sends an event on port `port`.
    fn send(port: u32) -> Result {
        let mut send = bindings::evtchn_send { port };
        op(bindings::EVTCHNOP_send, &mut send)
    }

    /// Closes port `port`.
    fn close(port: u32) {
        let mut close = bindings::evtchn_close { port };
        let _ = op(bindings::EVTCHNOP_close, &mut close);
    }

    /// Counts its events (its `dev_id` is an `Atomic<u32>`).
    ///
    /// # Safety
    ///
    /// `data` must be a live `Atomic<u32>`.
    unsafe extern "C" fn count(_irq: c_int, data: *mut c_void) -> bindings::irqreturn_t {
        // SAFETY: The caller's guarantee.
        unsafe { &*data.cast::<Atomic<u32>>() }.fetch_add(1, Full);
        bindings::irqreturn::IRQ_HANDLED
    }

    /// [`count`], then the late EOI of its IRQ.
    ///
    /// # Safety
    ///
    /// As [`count`]; `irq` is an IRQ of the `xen-dyn-lateeoi` chip.
    unsafe extern "C" fn count_lateeoi(irq: c_int, data: *mut c_void) -> bindings::irqreturn_t {
        // SAFETY: The caller's guarantee.
        let ret = unsafe { count(irq, data) };
        // SAFETY: `irq` is a late-EOI IRQ whose event is handled.
        unsafe { bindings::xen_irq_lateeoi(irq as c_uint, 0) };
        ret
    }

    /// Waits up to 5 s for `n` to reach `want`.
    fn wait_for(n: &Atomic<u32>, want: u32) -> bool {
        wait_until(|| n.load(Relaxed) >= want)
    }

    #[test]
    fn a_port_is_bound_once_to_its_chip_and_unbinding_closes_it() -> Result {
        if !on_xen() {
            return Ok(());
        }
        for (bind, name) in [
            (
                bind_evtchn_to_irq as unsafe extern "C" fn(u32) -> c_int,
                c"xen-dyn",
            ),
            (bind_evtchn_to_irq_lateeoi, c"xen-dyn-lateeoi"),
        ] {
            let port = alloc_unbound()?;
            // SAFETY: `port` is open and the test's.
            let irq = unsafe { bind(port) };
            let Ok(irq) = u32::try_from(irq) else {
                close(port);
                return Err(Error::from_errno(irq));
            };
            // Binding it again gives the same IRQ, with no reference counted.
            // SAFETY: As above.
            assert_eq!(unsafe { bind(port) }, irq as c_int);
            assert_eq!(chip_name(irq), name);
            let i = info(irq);
            // SAFETY: `i` lives while `irq` is bound.
            unsafe {
                assert_eq!((*i).type_, IRQT_EVTCHN);
                assert_eq!((*i).evtchn, port);
                assert_eq!((*i).refcnt, -1);
                assert_eq!((*i).cpu, 0);
                assert_eq!(bindings::xen_evtchn_to_info(port), i);
            }
            // SAFETY: `irq` is the test's, with no handler.
            unsafe { xen_unbind_from_irq(irq) };
            // SAFETY: Any port may be looked up.
            assert!(unsafe { bindings::xen_evtchn_to_info(port) }.is_null());
            assert_eq!(state(port)?, bindings::EVTCHNSTAT_closed);
        }
        Ok(())
    }

    #[test]
    fn shared_handlers_hold_references_to_their_irq() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // A channel from this domain to itself. Xen sets the port opened by
        // `EVTCHNOP_bind_interdomain` pending when it opens it (notifications to the unbound end
        // may have been lost), so the handlers are bound to the other end, `a`, which starts
        // quiet: each event they count is one the test sent, on `b`.
        let a = alloc_unbound()?;
        let mut bind = bindings::evtchn_bind_interdomain {
            remote_dom: DOMID_SELF,
            remote_port: a,
            local_port: 0,
        };
        if let Err(e) = op(bindings::EVTCHNOP_bind_interdomain, &mut bind) {
            close(a);
            return Err(e);
        }
        let b = bind.local_port;
        let result = shared_on(b, a);
        close(b);
        result
    }

    /// [`shared_handlers_hold_references_to_their_irq`] on a channel from `a` to `b`.
    fn shared_on(a: u32, b: u32) -> Result {
        let (one, two) = (
            KBox::new(Atomic::new(0u32), GFP_KERNEL)?,
            KBox::new(Atomic::new(0u32), GFP_KERNEL)?,
        );
        let (d1, d2) = (
            (&raw const *one).cast_mut().cast::<c_void>(),
            (&raw const *two).cast_mut().cast::<c_void>(),
        );
        let flags = IRQF_SHARED;
        let name = c"rust-xen-bind-kunit".as_char_ptr();
        // SAFETY: `b` is open and the test's; `count` is a valid handler for `d1`, which lives
        // until the IRQ is unbound.
        let irq = unsafe { bind_evtchn_to_irqhandler(b, Some(count), flags, name, d1) };
        let Ok(irq) = u32::try_from(irq) else {
            close(b);
            return Err(Error::from_errno(irq));
        };
        // SAFETY: `b` is bound.
        to_result(unsafe { bindings::evtchn_make_refcounted(b, false) })?;
        // SAFETY: As above, for `d2`.
        let again = unsafe { bind_evtchn_to_irqhandler(b, Some(count), flags, name, d2) };
        assert_eq!(again, irq as c_int);
        // SAFETY: `info(irq)` lives while `irq` is bound.
        assert_eq!(unsafe { (*info(irq)).refcnt }, 2);
        // An event runs both handlers.
        send(a)?;
        assert!(wait_for(&one, 1) && wait_for(&two, 1));
        // The second handler goes; the channel stays bound for the first.
        // SAFETY: `d2` was requested on `irq`.
        unsafe { unbind_from_irqhandler(irq, d2) };
        // SAFETY: As above.
        unsafe {
            assert_eq!((*info(irq)).refcnt, 1);
            assert_eq!(bindings::xen_evtchn_to_info(b), info(irq));
        }
        assert_eq!(state(b)?, bindings::EVTCHNSTAT_interdomain);
        // The next event reaches the first handler alone.
        send(a)?;
        assert!(wait_for(&one, 2));
        // SAFETY: `d1` was requested on `irq`; the last reference closes the port.
        unsafe { unbind_from_irqhandler(irq, d1) };
        assert_eq!(state(b)?, bindings::EVTCHNSTAT_closed);
        assert_eq!(two.load(Relaxed), 1);
        Ok(())
    }

    #[test]
    fn an_interdomain_channel_is_counted_on_its_device_and_its_events_handled() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // The other end: a port of this domain, for this domain.
        let remote = alloc_unbound()?;
        let dev =
            KBox::<MaybeUninit<bindings::xenbus_device>>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
        let dev = KBox::into_raw(dev).cast::<bindings::xenbus_device>();
        // SAFETY: `dev` is the test's, zeroed; only its other end and counter are used.
        unsafe { (*dev).otherend_id = c_int::from(DOMID_SELF) };
        let n = KBox::new(Atomic::new(0u32), GFP_KERNEL)?;
        let data = (&raw const *n).cast_mut().cast::<c_void>();
        let test = || -> Result {
            // A port that is not the other end's: the hypervisor refuses, nothing is bound.
            // SAFETY: `dev` lives until the end; `count_lateeoi` is a valid handler for `data`.
            let bad = unsafe {
                bind_interdomain_evtchn_to_irqhandler_lateeoi(
                    dev,
                    max_channels(),
                    Some(count_lateeoi),
                    0,
                    c"rust-xen-bind-kunit".as_char_ptr(),
                    data,
                )
            };
            assert!(bad < 0);
            // SAFETY: As above.
            assert_eq!(unsafe { (*dev).event_channels.counter }, 0);
            // SAFETY: As above.
            let irq = unsafe {
                bind_interdomain_evtchn_to_irqhandler_lateeoi(
                    dev,
                    remote,
                    Some(count_lateeoi),
                    0,
                    c"rust-xen-bind-kunit".as_char_ptr(),
                    data,
                )
            };
            let irq = u32::try_from(irq).map_err(|_| Error::from_errno(irq))?;
            // SAFETY: As above.
            assert_eq!(unsafe { (*dev).event_channels.counter }, 1);
            assert_eq!(chip_name(irq), c"xen-dyn-lateeoi");
            assert_eq!(state(remote)?, bindings::EVTCHNSTAT_interdomain);
            // SAFETY: `info(irq)` lives while `irq` is bound.
            let local = unsafe { (*info(irq)).evtchn };
            // SAFETY: As above.
            assert_eq!(unsafe { (*info(irq)).u.interdomain }, dev);
            // An event sent from the other end is handled, twice (the late EOI unmasks).
            send(remote)?;
            let first = wait_for(&n, 1);
            send(remote)?;
            let second = wait_for(&n, 2);
            // SAFETY: `data` was requested on `irq`.
            unsafe { unbind_from_irqhandler(irq, data) };
            assert!(first && second);
            // The local port is closed, which leaves the other end unbound again; the device
            // count is back.
            assert_eq!(state(local)?, bindings::EVTCHNSTAT_closed);
            assert!(wait_until(
                || state(remote) == Ok(bindings::EVTCHNSTAT_unbound)
            ));
            // SAFETY: As above.
            assert_eq!(unsafe { (*dev).event_channels.counter }, 0);
            Ok(())
        };
        let result = test();
        close(remote);
        // SAFETY: `dev` came from `KBox::into_raw()` above, and nothing refers to it any more.
        drop(unsafe { KBox::from_raw(dev.cast::<MaybeUninit<bindings::xenbus_device>>()) });
        result
    }

    #[test]
    fn a_failed_request_or_a_bad_port_leaves_nothing_bound() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // A port beyond the ABI's range: C's -ENOMEM.
        // SAFETY: The port is never bound.
        let ret = unsafe { bind_evtchn_to_irq(max_channels()) };
        assert_eq!(ret, ENOMEM.to_errno());
        // No handler: the request fails, and the binding is undone, port and all.
        let port = alloc_unbound()?;
        // SAFETY: `port` is open and the test's; no handler is requested.
        let ret = unsafe {
            bind_evtchn_to_irqhandler(
                port,
                None,
                0,
                c"rust-xen-bind-kunit".as_char_ptr(),
                core::ptr::null_mut(),
            )
        };
        assert_eq!(ret, EINVAL.to_errno());
        // SAFETY: Any port may be looked up.
        assert!(unsafe { bindings::xen_evtchn_to_info(port) }.is_null());
        assert_eq!(state(port)?, bindings::EVTCHNSTAT_closed);
        // A device without an other end that is a domain.
        let dev =
            KBox::<MaybeUninit<bindings::xenbus_device>>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
        let dev = KBox::into_raw(dev).cast::<bindings::xenbus_device>();
        // SAFETY: `dev` is the test's, zeroed.
        unsafe { (*dev).otherend_id = -1 };
        // SAFETY: `dev` lives until below.
        let ret = unsafe { bind_interdomain_evtchn_to_irq_lateeoi(dev, 1) };
        // SAFETY: `dev` came from `KBox::into_raw()` above, and nothing refers to it any more.
        drop(unsafe { KBox::from_raw(dev.cast::<MaybeUninit<bindings::xenbus_device>>()) });
        assert_eq!(ret, EINVAL.to_errno());
        Ok(())
    }
}
