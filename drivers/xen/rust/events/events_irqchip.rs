// SPDX-License-Identifier: GPL-2.0

//! The irq chips of Xen event channels bound to IRQs, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_irqchip.c` when `XEN_EVENTS_RUST` is set:
//!
//! - the chips `xen-dyn` (channels bound with `bind_evtchn_to_irq()` and friends),
//!   `xen-dyn-lateeoi` (bound with a `lateeoi` function: the ack masks the channel until the
//!   driver's `xen_irq_lateeoi()`) and `xen-percpu` (per-cpu VIRQs and IPIs), built with
//!   [`kernel::irq::chip`] under the names C gives them, which `/proc/interrupts` shows and
//!   irqbalance looks for;
//! - the masking of a channel for several reasons at once, [`xen_irq_do_mask`] and
//!   [`xen_irq_do_unmask`]: a channel is masked while any bit of its `irq_info`'s `mask_reason`
//!   is set (the IRQ is disabled, a late EOI is pending, or the core is rebinding or retriggering
//!   it), under the `irq_info`'s raw lock, taken as a [`RawSpinLockIrq`];
//! - the end of an event (`xen_event_handler_exit`: clear `is_active`, then the pending bit).
//!
//! The `xen-pirq` chip is the physical IRQs' (`events_pirq`), and uses the mask, unmask and
//! retrigger exported here; these chips move an IRQ with the event core's
//! `xen_set_affinity_irq()` (`events_affinity`), which rebinds the channel with the hypervisor.
//!
//! Every operation looks the IRQ's `irq_info` up and does nothing for an IRQ without one, or
//! whose channel is closed (port 0), as C does. The IRQ layer calls them with the IRQ's
//! descriptor lock held, so an `irq_info` found stays alive throughout (`events_base.c` frees it
//! only after the IRQ is shut down, and an RCU grace period).

use kernel::{
    bindings,
    cpumask::Cpumask,
    ffi::c_int,
    irq::chip::{
        AffinitySet,
        Chip,
        ChipVtable,
        IrqData, //
    },
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Release, //
        },
        RawSpinLockIrq, //
    },
};

/// The owner `#[vtable]` gives the chips: this code is built in, so the kernel itself (a null
/// `THIS_MODULE`, as for the kernel crate). A `struct irq_chip` has no owner field; nothing uses
/// it.
struct LocalModule;

impl kernel::ModuleMetadata for LocalModule {
    const NAME: &'static CStr = c"xen_events";

    const THIS_MODULE: kernel::ThisModule = {
        // SAFETY: A null module stands for the kernel itself, which module reference counting
        // (`try_module_get()`, `module_put()`) accepts.
        unsafe { kernel::ThisModule::from_ptr(core::ptr::null_mut()) }
    };
}

/// Why a channel is masked (`irq_info::mask_reason`).
const EXPLICIT: u8 = bindings::EVT_MASK_REASON_EXPLICIT as u8;
const TEMPORARY: u8 = bindings::EVT_MASK_REASON_TEMPORARY as u8;
const EOI_PENDING: u8 = bindings::EVT_MASK_REASON_EOI_PENDING as u8;

/// The event channel ABI's operations (`evtchn_ops`).
fn ops() -> &'static bindings::evtchn_ops {
    // SAFETY: The ABI is chosen in `xen_init_IRQ()` before the first IRQ is bound, and never
    // changes after; its ops are static. No chip operation runs before an IRQ is bound.
    unsafe { &*bindings::evtchn_ops }
}

/// Calls one of the ABI's per-port operations, which every ABI has.
fn port_op(
    op: Option<unsafe extern "C" fn(bindings::evtchn_port_t)>,
    port: bindings::evtchn_port_t,
) {
    if let Some(op) = op {
        // SAFETY: The ABI's port operations take any port below its `max_channels`; `port` is
        // bound to an IRQ, so it is one.
        unsafe { op(port) };
    }
}

/// `info`'s raw lock (`irq_info::lock`), which protects its `mask_reason`.
///
/// # Safety
///
/// `info` must be a live `irq_info` whose lock is initialised (its IRQ was bound once), for the
/// lifetime `'a`.
unsafe fn info_lock<'a>(info: *mut bindings::irq_info) -> &'a RawSpinLockIrq<()> {
    // SAFETY: The caller passes a live `info` with an initialised lock.
    unsafe { RawSpinLockIrq::from_raw(&raw mut (*info).lock) }
}

/// `info`'s mask reasons, read or changed under its lock.
///
/// # Safety
///
/// `info` must be live, and its lock held by the caller for as long as the result is used.
unsafe fn reasons<'a>(info: *mut bindings::irq_info) -> &'a mut u8 {
    // SAFETY: `mask_reason` is only accessed under the lock, which the caller holds.
    unsafe { &mut (*info).mask_reason }
}

/// Masks `info`'s channel for `reason`, on top of any other reason it is masked for.
///
/// # Safety
///
/// `info` must be a live `irq_info` whose lock is initialised (its IRQ was bound once).
#[export]
pub unsafe extern "C" fn xen_irq_do_mask(info: *mut bindings::irq_info, reason: u8) {
    // SAFETY: The caller's guarantee.
    let _guard = unsafe { info_lock(info) }.lock();
    // SAFETY: `info` is live and its lock held.
    let reasons = unsafe { reasons(info) };
    if *reasons == 0 {
        // SAFETY: `info` is live; its channel changes only when the IRQ is bound or unbound,
        // which the IRQ layer serialises with the chip's operations.
        port_op(ops().mask, unsafe { (*info).evtchn });
    }
    *reasons |= reason;
}

/// Drops `reason` from the reasons `info`'s channel is masked for, and unmasks it if none is
/// left.
///
/// # Safety
///
/// As [`xen_irq_do_mask`].
#[export]
pub unsafe extern "C" fn xen_irq_do_unmask(info: *mut bindings::irq_info, reason: u8) {
    // SAFETY: The caller's guarantee.
    let _guard = unsafe { info_lock(info) }.lock();
    // SAFETY: `info` is live and its lock held.
    let reasons = unsafe { reasons(info) };
    *reasons &= !reason;
    if *reasons == 0 {
        // SAFETY: As in `xen_irq_do_mask`.
        port_op(ops().unmask, unsafe { (*info).evtchn });
    }
}

/// Ends the event being handled on `info`'s channel (not for lateeoi channels): clears
/// `is_active`, with release order, then the channel's pending bit.
///
/// # Safety
///
/// `info` must be a live `irq_info`.
#[export]
pub unsafe extern "C" fn xen_event_handler_exit(info: *mut bindings::irq_info) {
    // SAFETY: The caller keeps `info` alive; `is_active` is a byte the upcall loop and the late
    // EOI race on, so it is accessed atomically, as C's `smp_store_release()`.
    unsafe { Atomic::<i8>::from_ptr((&raw mut (*info).is_active).cast()) }.store(0, Release);
    // SAFETY: As above.
    port_op(ops().clear_pending, unsafe { (*info).evtchn });
}

/// The IRQ's `irq_info`, if it has one.
fn info(irq: &IrqData) -> Option<*mut bindings::irq_info> {
    // SAFETY: Looks the IRQ up; the chip's operations run with the IRQ's descriptor lock held
    // (or with the IRQ otherwise serialised), so an `irq_info` found stays alive throughout.
    let info = unsafe { bindings::xen_info_for_irq(irq.irq()) };
    (!info.is_null()).then_some(info)
}

/// The IRQ's `irq_info`, if it has one with an open channel, and that channel.
fn bound(irq: &IrqData) -> Option<(*mut bindings::irq_info, bindings::evtchn_port_t)> {
    let info = info(irq)?;
    // SAFETY: `info` is alive (see `info`).
    let port = unsafe { (*info).evtchn };
    (port != 0).then_some((info, port))
}

/// Masks `info`'s channel for the IRQ being disabled, if the channel is open.
///
/// # Safety
///
/// `info` must be a live `irq_info`.
#[export]
pub unsafe extern "C" fn xen_do_disable_dynirq(info: *mut bindings::irq_info) {
    // SAFETY: The caller's guarantee.
    if unsafe { (*info).evtchn } != 0 {
        // SAFETY: The caller's guarantee; an open channel's lock is initialised.
        unsafe { xen_irq_do_mask(info, EXPLICIT) };
    }
}

/// Disables (and masks) an IRQ: `irq_disable` and `irq_mask` of every chip here and of
/// `xen-pirq`.
fn disable(irq: &IrqData) {
    if let Some(info) = info(irq) {
        // SAFETY: `info` is alive (see `info`).
        unsafe { xen_do_disable_dynirq(info) };
    }
}

/// Enables (and unmasks) an IRQ.
fn enable(irq: &IrqData) {
    if let Some((info, _)) = bound(irq) {
        // SAFETY: `info` is alive, and its channel open, so its lock is initialised.
        unsafe { xen_irq_do_unmask(info, EXPLICIT) };
    }
}

/// Ends an event of a channel not bound with `lateeoi`.
fn ack(irq: &IrqData) {
    if let Some((info, _)) = bound(irq) {
        // SAFETY: `info` is alive (see `info`).
        unsafe { xen_event_handler_exit(info) };
    }
}

/// Raises the channel's event again, masked meanwhile so that it is delivered once, on unmask.
fn retrigger(irq: &IrqData) -> bool {
    let Some((info, port)) = bound(irq) else {
        return false;
    };
    // SAFETY: `info` is alive, and its channel open, so its lock is initialised.
    unsafe { xen_irq_do_mask(info, TEMPORARY) };
    port_op(ops().set_pending, port);
    // SAFETY: As above.
    unsafe { xen_irq_do_unmask(info, TEMPORARY) };
    true
}

/// Moves the IRQ with the event core's `xen_set_affinity_irq()`, which rebinds the channel to a
/// CPU of `dest`.
fn set_affinity(irq: &IrqData, dest: &Cpumask, force: bool) -> Result<AffinitySet> {
    // SAFETY: The IRQ layer's `irq_data` and cpumask are valid for the call.
    let ret = unsafe { bindings::xen_set_affinity_irq(irq.as_raw(), dest.as_raw(), force) };
    // C returns -1 (not an errno) when the channel cannot be rebound; it goes back as it came.
    if ret < 0 {
        return Err(Error::from_errno(ret));
    }
    Ok(AffinitySet::Ok)
}

/// `irq_disable` and `irq_mask` of `xen-pirq` (`events_pirq`).
///
/// # Safety
///
/// `data` must be a valid `irq_data`, for the duration of the call.
#[export]
pub unsafe extern "C" fn xen_disable_dynirq(data: *mut bindings::irq_data) {
    // SAFETY: The caller's guarantee.
    disable(unsafe { IrqData::from_raw(data) });
}

/// `irq_enable` and `irq_unmask` of `xen-pirq`.
///
/// # Safety
///
/// As [`xen_disable_dynirq`].
#[export]
pub unsafe extern "C" fn xen_enable_dynirq(data: *mut bindings::irq_data) {
    // SAFETY: The caller's guarantee.
    enable(unsafe { IrqData::from_raw(data) });
}

/// `irq_retrigger` of `xen-pirq`.
///
/// # Safety
///
/// As [`xen_disable_dynirq`].
#[export]
pub unsafe extern "C" fn xen_retrigger_dynirq(data: *mut bindings::irq_data) -> c_int {
    // SAFETY: The caller's guarantee.
    c_int::from(retrigger(unsafe { IrqData::from_raw(data) }))
}

/// `xen-dyn` (`LATE` false: channels bound without `lateeoi`) and `xen-dyn-lateeoi` (`LATE`
/// true: bound with `lateeoi`; the name must contain "xen-dyn" for irqbalance).
struct Dynamic<const LATE: bool>;

#[vtable]
impl<const LATE: bool> Chip for Dynamic<LATE> {
    const NAME: &'static CStr = if LATE { c"xen-dyn-lateeoi" } else { c"xen-dyn" };

    fn disable(irq: &IrqData) {
        disable(irq);
    }

    fn mask(irq: &IrqData) {
        disable(irq);
    }

    fn unmask(irq: &IrqData) {
        enable(irq);
    }

    /// Without `lateeoi`, ends the event. With it, masks the channel until the driver's late
    /// EOI and clears its pending bit; `is_active` stays set, so that an event re-raised
    /// meanwhile (after an affinity change, on another CPU) is ignored until the EOI.
    fn ack(irq: &IrqData) {
        if !LATE {
            ack(irq);
        } else if let Some((info, port)) = bound(irq) {
            // SAFETY: `info` is alive, and its channel open, so its lock is initialised.
            unsafe { xen_irq_do_mask(info, EOI_PENDING) };
            port_op(ops().clear_pending, port);
        }
    }

    fn mask_ack(irq: &IrqData) {
        if LATE {
            if let Some((info, _)) = bound(irq) {
                // SAFETY: `info` is alive, and its channel open, so its lock is initialised.
                unsafe { xen_irq_do_mask(info, EXPLICIT) };
                // SAFETY: As above.
                unsafe { xen_event_handler_exit(info) };
            }
        } else {
            disable(irq);
            ack(irq);
        }
    }

    fn set_affinity(irq: &IrqData, dest: &Cpumask, force: bool) -> Result<AffinitySet> {
        set_affinity(irq, dest, force)
    }

    fn retrigger(irq: &IrqData) -> bool {
        retrigger(irq)
    }
}

/// `xen-percpu`: per-cpu VIRQs and IPIs, which never move.
struct PerCpu;

#[vtable]
impl Chip for PerCpu {
    const NAME: &'static CStr = c"xen-percpu";

    fn disable(irq: &IrqData) {
        disable(irq);
    }

    fn mask(irq: &IrqData) {
        disable(irq);
    }

    fn unmask(irq: &IrqData) {
        enable(irq);
    }

    fn ack(irq: &IrqData) {
        ack(irq);
    }
}

/// The chips, under the names `events_base.c` installs them by.
#[no_mangle]
static xen_dynamic_chip: ChipVtable = ChipVtable::new::<Dynamic<false>>();
#[no_mangle]
static xen_lateeoi_chip: ChipVtable = ChipVtable::new::<Dynamic<true>>();
#[no_mangle]
static xen_percpu_chip: ChipVtable = ChipVtable::new::<PerCpu>();
