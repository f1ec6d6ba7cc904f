// SPDX-License-Identifier: GPL-2.0

//! The lifecycle of a Xen event channel IRQ's `irq_info`, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_irqinfo.c` when `XEN_EVENTS_RUST` is set. Every
//! IRQ the event core binds has a `struct irq_info`, the chip data of its descriptor (or an entry
//! of the legacy table, below `nr_legacy_irqs()`):
//!
//! - [`xen_allocate_irq_dynamic`] and [`xen_allocate_irq_gsi`] allocate a descriptor and an
//!   unbound `irq_info` for it ([`xen_irq_init`]), on the list of all of them,
//!   [`xen_irq_list_head`], which resume (`events_resume`) and the PIRQ code (`events_pirq`)
//!   walk;
//! - [`xen_irq_info_common_setup`] and [`xen_irq_info_evtchn_setup`] record the channel the IRQ is
//!   bound to, map its port to the IRQ and let drivers request it; [`xen_irq_info_cleanup`]
//!   unmaps the port again;
//! - [`xen_free_irq`] takes the `irq_info` off the lists, and frees it and the descriptor only
//!   after an RCU grace period: the upcall loop looks `irq_info`s up under `rcu_read_lock()`,
//!   without the mapping lock, so one found there stays valid until the loop is done with it
//!   (XSA-332).
//!
//! All of them are called with `events_base.c`'s `xen_irq_mapping_update_lock` held, or from
//! resume with one CPU running, which also serialises the list.
//!
//! C's behaviour is kept, with two differences for callers that break the rules or a failure C
//! does not check: a second setup as another type of IRQ warns and fails with `-EINVAL`, where C
//! calls `BUG()`; and [`xen_allocate_irq_gsi`] fails when the GSI's descriptor cannot be
//! allocated (it exists already), where C goes on with the error number as the IRQ.

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint,
        c_ulong,
        c_ushort, //
    },
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

mod common;
use common::ops;

const IRQT_UNBOUND: i16 = bindings::xen_irq_type_IRQT_UNBOUND as i16;
const IRQT_EVTCHN: bindings::xen_irq_type = bindings::xen_irq_type_IRQT_EVTCHN;
const EXPLICIT: u8 = bindings::EVT_MASK_REASON_EXPLICIT as u8;
/// The IRQ status flags that keep drivers from requesting an IRQ, cleared by the setup.
const HIDDEN: c_ulong = (bindings::IRQ_NOREQUEST | bindings::IRQ_NOAUTOEN) as c_ulong;

/// Every `irq_info`, bound or not (C's `xen_irq_list_head`), linked by their `list`.
///
/// Changed only here, with the event core's mapping lock held; the PIRQ code walks it under the
/// same lock, and it and resume (`events_resume`) walk it with the other CPUs stopped.
#[no_mangle]
static mut xen_irq_list_head: bindings::list_head = bindings::list_head {
    next: &raw mut xen_irq_list_head,
    prev: &raw mut xen_irq_list_head,
};

/// The number of IRQs whose descriptors the architecture manages (`nr_legacy_irqs()`).
fn legacy_irqs() -> c_uint {
    // SAFETY: `nr_legacy_irqs()` only reads the legacy PIC's description, set up at boot.
    let n = unsafe { bindings::nr_legacy_irqs() };
    c_uint::try_from(n).unwrap_or(0)
}

/// Frees IRQ `irq`'s descriptor, unless the architecture manages it (a legacy IRQ).
///
/// # Safety
///
/// `irq`'s descriptor, if it is not a legacy IRQ, must have been allocated by the event core, and
/// have no user left.
#[export]
pub unsafe extern "C" fn xen_irq_free_desc(irq: c_uint) {
    if irq >= legacy_irqs() {
        // SAFETY: The caller's guarantee: the descriptor is the core's, and unused.
        unsafe { bindings::irq_free_descs(irq, 1) };
    }
}

/// Frees an `irq_info` and its IRQ's descriptor, after the grace period that followed
/// [`xen_free_irq`] (the `irq_info`'s `rwork`).
///
/// # Safety
///
/// `work` must be the `rwork.work` of an `irq_info` that [`xen_irq_init`] allocated and
/// [`xen_free_irq`] queued. The workqueue calls it once, after the grace period.
unsafe extern "C" fn delayed_free_irq(work: *mut bindings::work_struct) {
    // SAFETY: The caller's guarantee: `work` is the `rwork.work` of such an `irq_info`.
    let info = unsafe { kernel::container_of!(work, bindings::irq_info, rwork.work) };
    // SAFETY: `info` is valid until it is freed below.
    let irq = unsafe { (*info).irq };
    // Only now, with no user left (the grace period is over), does the IRQ lose its `irq_info`.
    // A dynamic IRQ's number is not reused before its descriptor is freed below. A legacy IRQ's
    // (dom0's GSIs below 16) could be bound again meanwhile and lose its new `irq_info` here, as
    // in C, which does not guard against it either.
    // SAFETY: `irq` is the IRQ of `info`; setting an entry of the map is always allowed.
    unsafe { bindings::xen_set_info_for_irq(irq, core::ptr::null_mut()) };
    // SAFETY: `info` came from `KBox::into_raw()` in `xen_irq_init()`; it is off every list and
    // nothing can reach it any more.
    drop(unsafe { KBox::from_raw(info) });
    // SAFETY: The descriptor was allocated for this `irq_info`, whose users are gone.
    unsafe { xen_irq_free_desc(irq) };
}

/// Records that `info`'s IRQ is bound to port `evtchn` as an IRQ of type `type_` on CPU `cpu`,
/// maps the port to the IRQ, lets drivers request the IRQ, and has the ABI set the port up.
/// Returns 0 or a negative error.
///
/// # Safety
///
/// `info` must be an `irq_info` from [`xen_irq_init`], not freed; the caller holds the event
/// core's mapping lock (or runs resume), and `evtchn` is an open port.
#[export]
pub unsafe extern "C" fn xen_irq_info_common_setup(
    info: *mut bindings::irq_info,
    type_: bindings::xen_irq_type,
    evtchn: bindings::evtchn_port_t,
    cpu: c_ushort,
) -> c_int {
    let Ok(ty) = i16::try_from(type_) else {
        kernel::warn_on!(true);
        return EINVAL.to_errno();
    };
    // SAFETY: The caller's guarantee: `info` is valid and its binding is not changed meanwhile.
    let (old, irq) = unsafe { ((*info).type_, (*info).irq) };
    // An IRQ is bound once, or set up again as the same type (resume); C calls `BUG()`.
    if kernel::warn_on!(old != IRQT_UNBOUND && old != ty) {
        return EINVAL.to_errno();
    }
    // SAFETY: As above. The IRQ's handler does not run: the port is not mapped to it yet (or, on
    // resume, no event is delivered before the channels are set up again).
    unsafe {
        (*info).type_ = ty;
        (*info).evtchn = evtchn;
        (*info).cpu = cpu;
        (*info).mask_reason = EXPLICIT;
        bindings::raw_spin_lock_init(
            &raw mut (*info).lock,
            c"irq_info.lock".as_char_ptr(),
            kernel::static_lock_class!().as_ptr(),
        );
    }
    // SAFETY: `irq` has a descriptor and this `irq_info` (the caller's guarantee).
    let ret = unsafe { bindings::xen_set_evtchn_to_irq(evtchn, irq) };
    if ret < 0 {
        return ret;
    }
    // SAFETY: `irq` has a descriptor; clearing the flags lets drivers request it.
    unsafe { bindings::irq_modify_status(irq, HIDDEN, 0) };
    match ops().setup {
        // SAFETY: `evtchn` is an open port (the caller's guarantee).
        Some(setup) => unsafe { setup(evtchn) },
        None => 0,
    }
}

/// [`xen_irq_info_common_setup`] for a channel bound by a driver (`IRQT_EVTCHN`) on CPU 0;
/// counts it in `dev`'s `event_channels` if it is an interdomain channel of xenbus device `dev`.
/// Returns 0 or a negative error (the count is kept either way: unbinding takes it off).
///
/// # Safety
///
/// As [`xen_irq_info_common_setup`]; `dev` is null or a live xenbus device.
#[export]
pub unsafe extern "C" fn xen_irq_info_evtchn_setup(
    info: *mut bindings::irq_info,
    evtchn: bindings::evtchn_port_t,
    dev: *mut bindings::xenbus_device,
) -> c_int {
    // SAFETY: The caller's guarantee.
    let ret = unsafe { xen_irq_info_common_setup(info, IRQT_EVTCHN, evtchn, 0) };
    // SAFETY: As above.
    unsafe { (*info).u.interdomain = dev };
    if !dev.is_null() {
        // SAFETY: `dev` is live; its `event_channels` is an `atomic_t`, only accessed atomically.
        unsafe { Atomic::<i32>::from_ptr(&raw mut (*dev).event_channels.counter) }.add(1, Relaxed);
    }
    ret
}

/// Unmaps `info`'s port from its IRQ, has the ABI forget it, and stops counting it on its CPU.
/// The caller closes the port (or it was closed by a restore).
///
/// # Safety
///
/// As [`xen_irq_info_common_setup`], with `info` set up.
#[export]
pub unsafe extern "C" fn xen_irq_info_cleanup(info: *mut bindings::irq_info) {
    // SAFETY: The caller's guarantee: `info` is valid and its binding is not changed meanwhile.
    let (evtchn, cpu) = unsafe { ((*info).evtchn, (*info).cpu) };
    // Unmapping never fails: a row that is not there maps every port to no IRQ already, and a
    // port out of range was never mapped.
    // SAFETY: Any port number may be unmapped.
    unsafe { bindings::xen_set_evtchn_to_irq(evtchn, c_uint::MAX) };
    if let Some(remove) = ops().remove {
        // SAFETY: `evtchn` was set up with the ABI by the setup functions.
        unsafe { remove(evtchn, c_uint::from(cpu)) };
    }
    // SAFETY: The caller's guarantee.
    unsafe {
        (*info).evtchn = 0;
        bindings::xen_channels_on_cpu_dec(info);
    }
}

/// Allocates an unbound `irq_info` for IRQ `irq`, makes it the IRQ's, and puts it on
/// [`xen_irq_list_head`]. Returns null if it cannot be allocated.
///
/// # Safety
///
/// `irq` must have a descriptor the event core allocated (or be a legacy IRQ), with no
/// `irq_info`; the caller holds the event core's mapping lock.
#[export]
pub unsafe extern "C" fn xen_irq_init(irq: c_uint) -> *mut bindings::irq_info {
    let Ok(info) = KBox::<bindings::irq_info>::new(pin_init::zeroed(), GFP_KERNEL) else {
        return core::ptr::null_mut();
    };
    let info = KBox::into_raw(info);
    // SAFETY: `info` is a new, zeroed `irq_info`, owned here until it is published below. The
    // work's lockdep class key is static; the list head is this crate's and the mapping lock
    // (the caller's) serialises its changes.
    unsafe {
        (*info).irq = irq;
        (*info).type_ = IRQT_UNBOUND;
        (*info).refcnt = -1;
        bindings::init_work_with_key(
            &raw mut (*info).rwork.work,
            Some(delayed_free_irq),
            false,
            c"irq_info.rwork".as_char_ptr(),
            kernel::static_lock_class!().as_ptr(),
        );
        bindings::xen_set_info_for_irq(irq, info);
        bindings::INIT_LIST_HEAD(&raw mut (*info).eoi_list);
        bindings::list_add_tail(&raw mut (*info).list, &raw mut xen_irq_list_head);
    }
    info
}

/// [`xen_irq_init`] for descriptor `irq` (a result of `irq_alloc_desc*()`): frees the descriptor
/// if either failed.
///
/// # Safety
///
/// The caller holds the event core's mapping lock; `irq`, if not an error, is a descriptor just
/// allocated for the event core, or a legacy IRQ.
unsafe fn init_or_free(irq: c_int) -> *mut bindings::irq_info {
    let Ok(irq) = c_uint::try_from(irq) else {
        return core::ptr::null_mut();
    };
    // SAFETY: The caller's guarantee.
    let info = unsafe { xen_irq_init(irq) };
    if info.is_null() {
        // SAFETY: The descriptor was just allocated for the event core, and has no user.
        unsafe { xen_irq_free_desc(irq) };
    }
    info
}

/// Allocates an IRQ descriptor, and an unbound `irq_info` for it; null if either fails.
///
/// # Safety
///
/// The caller holds the event core's mapping lock.
#[export]
pub unsafe extern "C" fn xen_allocate_irq_dynamic() -> *mut bindings::irq_info {
    // `irq_alloc_desc_from(0, NUMA_NO_NODE)`; the event core is built in (no owner module).
    // SAFETY: Allocating a descriptor has no precondition.
    let irq = unsafe {
        bindings::__irq_alloc_descs(
            -1,
            0,
            1,
            bindings::NUMA_NO_NODE,
            core::ptr::null_mut(),
            core::ptr::null(),
        )
    };
    // SAFETY: The caller's guarantee; `irq` is a new descriptor or an error.
    unsafe { init_or_free(irq) }
}

/// Allocates the IRQ of GSI `gsi` and an unbound `irq_info` for it; null if either fails.
///
/// In dom0, the IRQ is the GSI: a legacy IRQ's descriptor is the architecture's, a higher one's is
/// allocated (and fails if it exists). Other PV domains have no GSIs, and get any IRQ.
///
/// # Safety
///
/// The caller holds the event core's mapping lock; a legacy IRQ `gsi` has no `irq_info`.
#[export]
pub unsafe extern "C" fn xen_allocate_irq_gsi(gsi: c_uint) -> *mut bindings::irq_info {
    // SAFETY: These only read how the domain was started.
    if unsafe { bindings::xen_pv_domain() && !bindings::xen_initial_domain() } {
        // SAFETY: The caller's guarantee.
        return unsafe { xen_allocate_irq_dynamic() };
    }
    let irq = if gsi < legacy_irqs() {
        // The architecture has allocated the legacy IRQs' descriptors.
        c_int::try_from(gsi).unwrap_or(-1)
    } else {
        let Ok(at) = c_int::try_from(gsi) else {
            return core::ptr::null_mut();
        };
        // `irq_alloc_desc_at(gsi, NUMA_NO_NODE)`.
        // SAFETY: Allocating a descriptor has no precondition.
        unsafe {
            bindings::__irq_alloc_descs(
                at,
                gsi,
                1,
                bindings::NUMA_NO_NODE,
                core::ptr::null_mut(),
                core::ptr::null(),
            )
        }
    };
    // SAFETY: The caller's guarantee; `irq` is a legacy IRQ, a new descriptor or an error.
    unsafe { init_or_free(irq) }
}

/// Takes `info` off the list of late EOIs and [`xen_irq_list_head`], and frees it and its IRQ's
/// descriptor after an RCU grace period.
///
/// # Safety
///
/// `info` must be null (which warns) or an `irq_info` from [`xen_irq_init`] not freed yet,
/// whose port is unmapped; the caller holds the event core's mapping lock.
#[export]
pub unsafe extern "C" fn xen_free_irq(info: *mut bindings::irq_info) {
    if kernel::warn_on!(info.is_null()) {
        return;
    }
    // SAFETY: The caller's guarantee: `info` is valid, and only the late EOI (under its own
    // lock) changes its `eoi_list` meanwhile.
    unsafe {
        if !bindings::list_empty(&raw const (*info).eoi_list) {
            bindings::xen_lateeoi_list_del(info);
        }
        bindings::list_del(&raw mut (*info).list);
    }
    // SAFETY: As above.
    kernel::warn_on!(unsafe { (*info).refcnt } > 0);
    // SAFETY: `rwork` was initialised by `xen_irq_init()` and is queued only here, once;
    // `system_percpu_wq` lives for ever.
    unsafe { bindings::queue_rcu_work(bindings::system_percpu_wq, &raw mut (*info).rwork) };
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_irqinfo)]
mod tests {
    use super::*;
    use common::{
        kunit::{
            on_xen,
            wait_until, //
        },
        mapping_lock,
    };

    // The tests hold the mapping lock throughout, so that no IRQ is bound meanwhile: an IRQ
    // number they free is not reused before they have seen it freed.
    use core::mem::MaybeUninit;
    use kernel::{
        alloc::flags::__GFP_ZERO,
        sync::rcu,
        xen::events::{
            Port,
            DOMID_SELF, //
        },
    };

    /// Whether `info` is on [`xen_irq_list_head`].
    fn listed(info: *mut bindings::irq_info) -> bool {
        let head = &raw mut xen_irq_list_head;
        // SAFETY: The caller holds the mapping lock, under which the list does not change; its
        // entries are live `irq_info`s.
        unsafe {
            let mut link = (*head).next;
            while link != head {
                if kernel::container_of!(link, bindings::irq_info, list) == info {
                    return true;
                }
                link = (*link).next;
            }
        }
        false
    }

    /// Whether IRQ `irq` has a descriptor.
    fn has_desc(irq: u32) -> bool {
        // SAFETY: Any IRQ number may be looked up.
        !unsafe { bindings::irq_to_desc(irq) }.is_null()
    }

    /// Whether IRQ `irq` (which has a descriptor) has all of status flags `flags`.
    fn status(irq: u32, flags: u32) -> bool {
        // SAFETY: Any IRQ number may be asked about.
        unsafe { bindings::irq_check_status_bit(irq, flags) }
    }

    /// Frees `info`, and waits up to 5 s for its IRQ's descriptor to go; whether it went.
    ///
    /// Checks that the `irq_info` stays the IRQ's while a reader that may have found it (as the
    /// upcall loop does) holds `rcu_read_lock()`.
    fn free_and_wait(info: *mut bindings::irq_info) -> bool {
        // SAFETY: `info` is the test's, unbound or cleaned up.
        let irq = unsafe { (*info).irq };
        let reader = rcu::read_lock();
        // SAFETY: As above; the caller holds the mapping lock.
        unsafe { xen_free_irq(info) };
        assert!(!listed(info));
        // The grace period cannot end while `reader` is held.
        assert!(has_desc(irq));
        // SAFETY: Any IRQ number may be looked up; the `irq_info` is read under `reader`.
        unsafe {
            assert_eq!(bindings::xen_info_for_irq(irq), info);
            assert_eq!((*info).irq, irq);
        }
        drop(reader);
        // SAFETY: Grace periods and timers work in a KUnit test.
        unsafe { bindings::rcu_barrier() };
        // SAFETY: Any IRQ number may be looked up.
        wait_until(|| !has_desc(irq)) && unsafe { bindings::xen_info_for_irq(irq) }.is_null()
    }

    #[test]
    fn a_dynamic_irq_starts_unbound_and_is_freed_after_a_grace_period() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let _lock = mapping_lock().lock();
        // SAFETY: The mapping lock is held.
        let info = unsafe { xen_allocate_irq_dynamic() };
        assert!(!info.is_null());
        // SAFETY: `info` is the test's until it is freed.
        let irq = unsafe { (*info).irq };
        assert!(irq >= legacy_irqs());
        assert!(has_desc(irq));
        // SAFETY: Any IRQ number may be looked up.
        assert_eq!(unsafe { bindings::xen_info_for_irq(irq) }, info);
        // SAFETY: As above.
        unsafe {
            assert_eq!((*info).type_, IRQT_UNBOUND);
            assert_eq!((*info).refcnt, -1);
            assert_eq!((*info).evtchn, 0);
            assert!(bindings::list_empty(&raw const (*info).eoi_list));
        }
        assert!(listed(info));
        // Not freed at once: an upcall may still hold it (XSA-332), until the grace period ends.
        assert!(free_and_wait(info));
        Ok(())
    }

    #[test]
    fn setup_maps_the_port_and_cleanup_unmaps_it() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // An open port, with no IRQ: no event comes to it (nothing is bound at the other end).
        let port = Port::alloc_unbound(DOMID_SELF)?;
        let evtchn = port.number();
        // Its counter, zero, is the only part of the device that the setup touches.
        let dev =
            KBox::<MaybeUninit<bindings::xenbus_device>>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
        let dev = KBox::into_raw(dev).cast::<bindings::xenbus_device>();
        let _lock = mapping_lock().lock();
        // SAFETY: The mapping lock is held.
        let info = unsafe { xen_allocate_irq_dynamic() };
        assert!(!info.is_null());
        // SAFETY: `info` is the test's until it is freed; `port` is open and not bound; `dev`
        // lives until the end.
        unsafe {
            let irq = (*info).irq;
            bindings::irq_modify_status(irq, 0, HIDDEN);
            assert!(status(
                irq,
                bindings::IRQ_NOREQUEST | bindings::IRQ_NOAUTOEN
            ));
            assert_eq!(xen_irq_info_evtchn_setup(info, evtchn, dev), 0);
            assert_eq!((*info).type_, IRQT_EVTCHN as i16);
            assert_eq!((*info).evtchn, evtchn);
            assert_eq!((*info).cpu, 0);
            assert_eq!((*info).mask_reason, EXPLICIT);
            assert_eq!((*info).u.interdomain, dev);
            assert_eq!((*dev).event_channels.counter, 1);
            assert_eq!(bindings::xen_evtchn_to_info(evtchn), info);
            // Drivers may request the IRQ now.
            assert!(!status(irq, bindings::IRQ_NOREQUEST));
            assert!(!status(irq, bindings::IRQ_NOAUTOEN));
            // Set up again as the same type, as resume does: allowed.
            assert_eq!(xen_irq_info_common_setup(info, IRQT_EVTCHN, evtchn, 0), 0);
            xen_irq_info_cleanup(info);
            assert!(bindings::xen_evtchn_to_info(evtchn).is_null());
            assert_eq!((*info).evtchn, 0);
            assert_eq!((*info).is_accounted, 0);
            // The IRQ is still the `irq_info`'s until it is freed.
            assert_eq!(bindings::xen_info_for_irq(irq), info);
        }
        assert!(free_and_wait(info));
        // SAFETY: `dev` came from `KBox::into_raw()` above, and nothing refers to it any more.
        drop(unsafe { KBox::from_raw(dev.cast::<MaybeUninit<bindings::xenbus_device>>()) });
        drop(port);
        Ok(())
    }

    #[test]
    fn a_pv_domu_gets_any_irq_for_a_gsi_and_dom0_the_gsi() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let _lock = mapping_lock().lock();
        // SAFETY: This only reads how the domain was started.
        if !unsafe { bindings::xen_initial_domain() } {
            // A PV domU has no GSIs: the IRQ of a legacy one is any free IRQ, not the GSI.
            // SAFETY: The mapping lock is held.
            let info = unsafe { xen_allocate_irq_gsi(3) };
            assert!(!info.is_null());
            // SAFETY: `info` is the test's until it is freed.
            assert!(unsafe { (*info).irq } >= legacy_irqs());
            assert!(free_and_wait(info));
            return Ok(());
        }
        // dom0: the IRQ is the GSI. One with no descriptor yet, past the legacy ones.
        // SAFETY: Reading the number of IRQs has no precondition.
        let limit = unsafe { bindings::irq_get_nr_irqs() };
        let gsi = (legacy_irqs()..limit)
            .rev()
            .find(|irq| !has_desc(*irq))
            .ok_or(ENOSPC)?;
        // SAFETY: The mapping lock is held; `gsi` is not a legacy IRQ.
        let info = unsafe { xen_allocate_irq_gsi(gsi) };
        assert!(!info.is_null());
        // SAFETY: `info` is the test's until it is freed.
        assert_eq!(unsafe { (*info).irq }, gsi);
        assert!(has_desc(gsi));
        // Its descriptor exists now: a second one fails, and adds nothing to the list.
        // SAFETY: As above.
        assert!(unsafe { xen_allocate_irq_gsi(gsi) }.is_null());
        assert!(free_and_wait(info));
        Ok(())
    }
}
