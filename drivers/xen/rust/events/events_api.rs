// SPDX-License-Identifier: GPL-2.0

//! Operations on Xen event channels bound to IRQs, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_api.c` when `XEN_EVENTS_RUST` is set. It is
//! what a driver does with a bound channel other than binding and unbinding it:
//!
//! - the lookups: the IRQ of a port ([`irq_from_evtchn`]), the CPU a port is bound to
//!   ([`cpu_from_evtchn`]), the port of an IRQ ([`xen_evtchn_from_irq`], which `events_base.c`
//!   uses as well), and the number of ports the ABI can use ([`xen_evtchn_nr_channels`]);
//! - [`notify_remote_via_irq`], which blkfront, netfront and the console call for every
//!   request, and [`xen_set_irq_priority`] (the timer VIRQ's);
//! - the reference counts of channels that several users hold ([`evtchn_make_refcounted`] by
//!   the evtchn device, which xenstored and the toolstack bind through; [`evtchn_get`] and
//!   [`evtchn_put`] by gntdev and gntalloc for their unmap notifications, and the console): the
//!   last put unbinds the IRQ and closes the channel;
//! - the pending state of a channel whose IRQ is disabled, which PV spinlocks wait on
//!   ([`xen_clear_irq_pending`], [`xen_test_irq_pending`], [`xen_poll_irq`]) and pcifront polls
//!   with a timeout ([`xen_poll_irq_timeout`]);
//! - [`xen_test_irq_shared`], which pciback asks of a physical IRQ.
//!
//! Their C names and behaviour are kept, so the drivers that call them do not change; the exports
//! are in `api-glue.c`. An IRQ or port number is never trusted: one out of range, not bound, or
//! bound to a closed channel has no port (0) or no IRQ (-1), and the operations on it do nothing.
//! Three things differ from C. Two are for callers that break the API's rules: a failed poll
//! warns where C calls `BUG()`, and [`xen_test_irq_shared`] of an IRQ that is not a physical IRQ
//! fails where C reads another member of a union. The third: [`evtchn_make_refcounted`] takes
//! the event core's lock, under which [`evtchn_get`] reads the count, where C writes it without.
//!
//! These functions are called with the IRQ bound, as in C: the `irq_info` they read is freed only
//! after its IRQ is unbound and an RCU grace period.

use core::ptr::NonNull;

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_short,
        c_uint, //
    },
    prelude::*, //
};

mod common;
use common::{
    mapping_lock,
    max_channels,
    ops, //
};

const __LOG_PREFIX: &[u8] = b"xen:events\0";

/// The `irq_info` of IRQ `irq` (an `int` from a driver: a negative one is no IRQ), if it has
/// one.
///
/// Its fields are read one at a time through the pointer, never through a reference: other
/// CPUs change some of them (`is_active`, `mask_reason`, the late EOI's) while it is bound.
///
/// # Safety
///
/// If `irq` is bound, the caller keeps it bound while it uses the result.
unsafe fn info(irq: c_int) -> Option<NonNull<bindings::irq_info>> {
    let irq = c_uint::try_from(irq).ok()?;
    // SAFETY: `irq_get_nr_irqs()` only reads the number of IRQ descriptors.
    if irq >= unsafe { bindings::irq_get_nr_irqs() } {
        return None;
    }
    // SAFETY: Any IRQ number below `nr_irqs` may be looked up; the caller keeps a bound IRQ
    // bound, so its `irq_info` lives (it is freed only after the IRQ is unbound).
    NonNull::new(unsafe { bindings::xen_info_for_irq(irq) })
}

/// The `irq_info` of the IRQ port `evtchn` is bound to, if any.
///
/// # Safety
///
/// As [`info`], for the IRQ `evtchn` is bound to.
unsafe fn port_info(evtchn: bindings::evtchn_port_t) -> Option<NonNull<bindings::irq_info>> {
    // SAFETY: The map checks the port against the ABI's range; the caller keeps the IRQ bound.
    NonNull::new(unsafe { bindings::xen_evtchn_to_info(evtchn) })
}

/// The port IRQ `irq` is bound to, if it is an event channel's IRQ and the channel is open.
///
/// # Safety
///
/// As [`info`].
unsafe fn port_of(irq: c_int) -> Option<bindings::evtchn_port_t> {
    // SAFETY: The caller's guarantee; the `irq_info` found lives while the IRQ is bound, and its
    // port changes only when the IRQ is bound, unbound or rebound, which the caller excludes.
    let evtchn = unsafe { (*info(irq)?.as_ptr()).evtchn };
    // Port 0 is never allocated: the channel is closed.
    (evtchn != 0).then_some(evtchn)
}

/// The event channel port IRQ `irq` is bound to, or 0 if it has none.
///
/// # Safety
///
/// If `irq` is bound, the caller keeps it bound during the call.
#[export]
pub unsafe extern "C" fn xen_evtchn_from_irq(irq: c_uint) -> bindings::evtchn_port_t {
    // An IRQ number beyond `int` is out of range either way.
    let irq = c_int::try_from(irq).unwrap_or(-1);
    // SAFETY: The caller's guarantee.
    unsafe { port_of(irq) }.unwrap_or(0)
}

/// The IRQ port `evtchn` is bound to, or -1 (as an `unsigned int`, as C returns it).
///
/// # Safety
///
/// As [`xen_evtchn_from_irq`], for the IRQ `evtchn` is bound to.
#[export]
pub unsafe extern "C" fn irq_from_evtchn(evtchn: bindings::evtchn_port_t) -> c_uint {
    // SAFETY: The caller's guarantee.
    let Some(info) = (unsafe { port_info(evtchn) }) else {
        return c_uint::MAX;
    };
    // SAFETY: The `irq_info` found lives while its IRQ is bound, and its IRQ number never
    // changes.
    unsafe { (*info.as_ptr()).irq }
}

/// The CPU port `evtchn` is bound to, or 0 if it is not bound to an IRQ.
///
/// # Safety
///
/// As [`irq_from_evtchn`].
#[export]
pub unsafe extern "C" fn cpu_from_evtchn(evtchn: bindings::evtchn_port_t) -> c_uint {
    // SAFETY: The caller's guarantee.
    let Some(info) = (unsafe { port_info(evtchn) }) else {
        return 0;
    };
    // SAFETY: The `irq_info` found lives while its IRQ is bound. Its CPU changes when the IRQ
    // moves, under the descriptor's lock; a reader that races with the move gets the old or the
    // new CPU, as in C.
    c_uint::from(unsafe { (*info.as_ptr()).cpu })
}

/// Sends an event to the other end of the channel bound to IRQ `irq`. Unlike
/// `notify_remote_via_evtchn()`, this is safe across save/restore: an event on a closed channel
/// is dropped.
///
/// # Safety
///
/// If `irq` is bound, the caller keeps it bound during the call.
#[export]
pub unsafe extern "C" fn notify_remote_via_irq(irq: c_int) {
    // SAFETY: The caller's guarantee.
    if let Some(evtchn) = unsafe { port_of(irq) } {
        // SAFETY: `evtchn` is an open port of this domain; sending on it is a hypercall that
        // fails harmlessly if the other end has gone.
        unsafe { bindings::notify_remote_via_evtchn(evtchn) };
    }
}

/// The number of ports the event channel ABI can use now; possibly fewer than its maximum
/// (`xen_evtchn_max_channels()`).
#[export]
pub extern "C" fn xen_evtchn_nr_channels() -> c_uint {
    let Some(nr_channels) = ops().nr_channels else {
        return 0;
    };
    // SAFETY: Every ABI's `nr_channels` may be called once the ABI is chosen, which a driver's
    // call implies (it has a port to count).
    unsafe { nr_channels() }
}

/// Sets the priority of the channel bound to IRQ `irq` (`EVTCHNOP_set_priority`, FIFO only):
/// from `XEN_IRQ_PRIORITY_MAX` (0) to `XEN_IRQ_PRIORITY_MIN` (15). Returns the hypervisor's
/// answer: `-ENOSYS` with the 2-level ABI, `-EINVAL` for a priority out of range.
///
/// # Safety
///
/// If `irq` is bound, the caller keeps it bound during the call.
#[export]
pub unsafe extern "C" fn xen_set_irq_priority(irq: c_uint, priority: c_uint) -> c_int {
    let mut op = bindings::evtchn_set_priority {
        // SAFETY: The caller's guarantee.
        port: unsafe { xen_evtchn_from_irq(irq) },
        priority,
    };
    // SAFETY: `op` is a valid argument for this operation; the hypervisor checks the port (port 0,
    // for an IRQ without a channel, is one it refuses or ignores).
    unsafe {
        bindings::HYPERVISOR_event_channel_op(
            bindings::EVTCHNOP_set_priority as c_int,
            (&raw mut op).cast(),
        )
    }
}

/// Makes the channel bound at port `evtchn` reference counted, with one reference: from here
/// on, unbinding its IRQ drops a reference, and the last one unbinds it and closes the channel
/// (unless `is_static`: a channel the toolstack set up, which stays open). Fails with `-ENOENT`
/// if the port is not bound to an IRQ.
#[export]
pub extern "C" fn evtchn_make_refcounted(
    evtchn: bindings::evtchn_port_t,
    is_static: bool,
) -> c_int {
    let _guard = mapping_lock().lock();
    // SAFETY: Under the lock, the map holds only live `irq_info`s.
    let Some(info) = (unsafe { port_info(evtchn) }) else {
        return ENOENT.to_errno();
    };
    let info = info.as_ptr();
    // SAFETY: `info` lives while the lock is held; its count and `is_static` are only written
    // under the lock.
    unsafe {
        kernel::warn_on!((*info).refcnt != -1);
        (*info).refcnt = 1;
        (*info).is_static = is_static;
    }
    0
}

/// Takes a reference to the reference-counted channel at port `evtchn`, for a user other than
/// the one that bound it (gntdev's and gntalloc's unmap notifications, from a port number that
/// user space gives). Fails with `-EINVAL` for a port out of range, one not reference counted or
/// one whose count is at its maximum, and `-ENOENT` for a port not bound to an IRQ.
#[export]
pub extern "C" fn evtchn_get(evtchn: bindings::evtchn_port_t) -> c_int {
    if evtchn >= max_channels() {
        return EINVAL.to_errno();
    }
    let _guard = mapping_lock().lock();
    // SAFETY: Under the lock, the map holds only live `irq_info`s.
    let Some(info) = (unsafe { port_info(evtchn) }) else {
        return ENOENT.to_errno();
    };
    let info = info.as_ptr();
    // SAFETY: `info` lives while the lock is held; its count is only changed under the lock.
    let refcnt = unsafe { &mut (*info).refcnt };
    if *refcnt <= 0 || *refcnt == c_short::MAX {
        return EINVAL.to_errno();
    }
    *refcnt += 1;
    0
}

/// Drops a reference to the channel at port `evtchn`; the last one unbinds its IRQ and closes
/// the channel.
///
/// # Safety
///
/// The caller holds a reference to the channel, from [`evtchn_make_refcounted`] or
/// [`evtchn_get`], which this gives up.
#[export]
pub unsafe extern "C" fn evtchn_put(evtchn: bindings::evtchn_port_t) {
    // SAFETY: The caller's reference keeps the channel bound.
    let Some(info) = (unsafe { port_info(evtchn) }) else {
        kernel::warn_on!(true);
        return;
    };
    // SAFETY: `info` lives while the caller's reference keeps the channel bound; its IRQ number
    // never changes.
    let irq = unsafe { (*info.as_ptr()).irq };
    // SAFETY: The caller gives its reference up; `xen_unbind_from_irq()` drops it under the lock,
    // and unbinds the IRQ if it was the last.
    unsafe { bindings::xen_unbind_from_irq(irq) };
}

/// Clears the pending state of the channel bound to IRQ `irq`, before polling on it, and ends
/// the event being handled if any (`xen_event_handler_exit()`).
///
/// # Safety
///
/// If `irq` is bound, the caller keeps it bound during the call.
#[export]
pub unsafe extern "C" fn xen_clear_irq_pending(irq: c_int) {
    // SAFETY: The caller's guarantee.
    let Some(info) = (unsafe { info(irq) }) else {
        return;
    };
    // SAFETY: `info` lives while the IRQ is bound; its port changes only when the IRQ is bound,
    // unbound or rebound, which the caller excludes.
    if unsafe { (*info.as_ptr()).evtchn } != 0 {
        // SAFETY: `info` is live and its channel open; `xen_event_handler_exit()` only clears its
        // `is_active` flag and the port's pending bit.
        unsafe { bindings::xen_event_handler_exit(info.as_ptr()) };
    }
}

/// Whether the channel bound to IRQ `irq` is pending; false if it has none.
///
/// # Safety
///
/// If `irq` is bound, the caller keeps it bound during the call.
#[export]
pub unsafe extern "C" fn xen_test_irq_pending(irq: c_int) -> bool {
    // SAFETY: The caller's guarantee.
    match (unsafe { port_of(irq) }, ops().is_pending) {
        // SAFETY: The ABI's `is_pending` takes any open port of this domain.
        (Some(evtchn), Some(is_pending)) => unsafe { is_pending(evtchn) },
        _ => false,
    }
}

/// Blocks until the channel bound to IRQ `irq` is pending (`SCHEDOP_poll`), or Xen's system time
/// reaches `timeout` (in ns; 0: no timeout). The IRQ is usually disabled, so that no event is
/// delivered. Returns at once for an IRQ without a channel.
///
/// # Safety
///
/// If `irq` is bound, the caller keeps it bound during the call.
#[export]
pub unsafe extern "C" fn xen_poll_irq_timeout(irq: c_int, timeout: u64) {
    // SAFETY: The caller's guarantee.
    let Some(mut evtchn) = (unsafe { port_of(irq) }) else {
        return;
    };
    let mut poll = bindings::sched_poll {
        ports: &raw mut evtchn,
        nr_ports: 1,
        timeout,
    };
    // SAFETY: `poll` and the one port it points to are valid for the call.
    let rc = unsafe {
        bindings::HYPERVISOR_sched_op(bindings::SCHEDOP_poll as c_int, (&raw mut poll).cast())
    };
    // C calls `BUG()`: Xen refuses a poll only for a bad port or argument, which the checks above
    // rule out. The caller, whose port is open, sees a spurious wake-up.
    if rc != 0 {
        pr_warn!("SCHEDOP_poll of port {} failed: {}\n", evtchn, rc);
        kernel::warn_on!(true);
    }
}

/// [`xen_poll_irq_timeout`] without a timeout.
///
/// # Safety
///
/// As [`xen_poll_irq_timeout`].
#[export]
pub unsafe extern "C" fn xen_poll_irq(irq: c_int) {
    // SAFETY: The caller's guarantee.
    unsafe { xen_poll_irq_timeout(irq, 0) };
}

/// Whether the physical IRQ `irq` is not shared with other domains
/// (`PHYSDEVOP_irq_status_query`): 1 if not shared, 0 if shared or the query fails, `-ENOENT`
/// for an IRQ the event core does not know, `-EINVAL` for one that is not a physical IRQ.
///
/// # Safety
///
/// If `irq` is bound, the caller keeps it bound during the call.
#[export]
pub unsafe extern "C" fn xen_test_irq_shared(irq: c_int) -> c_int {
    // SAFETY: The caller's guarantee.
    let Some(info) = (unsafe { info(irq) }) else {
        kernel::warn_on!(true);
        return ENOENT.to_errno();
    };
    let info = info.as_ptr();
    // SAFETY: `info` lives while the IRQ is bound; its type is set when it is bound.
    if c_uint::try_from(unsafe { (*info).type_ }) != Ok(bindings::xen_irq_type_IRQT_PIRQ) {
        kernel::warn_on!(true);
        return EINVAL.to_errno();
    }
    let mut query = bindings::physdev_irq_status_query {
        // SAFETY: As above; a physical IRQ's `irq_info` holds the `pirq` member of the union.
        irq: u32::from(unsafe { (*info).u.pirq.pirq }),
        flags: 0,
    };
    // SAFETY: `query` is a valid argument for this operation.
    let rc = unsafe {
        bindings::HYPERVISOR_physdev_op(
            bindings::PHYSDEVOP_irq_status_query as c_int,
            (&raw mut query).cast(),
        )
    };
    if rc != 0 {
        return 0;
    }
    c_int::from(query.flags & bindings::XENIRQSTAT_shared == 0)
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_api)]
mod tests {
    use super::*;
    use common::kunit::{
        on_xen,
        wait_until, //
    };
    use core::sync::atomic::{
        AtomicU32,
        Ordering, //
    };
    use kernel::{
        cpu::CpuId,
        cpumask::{
            Cpumask,
            CpumaskVar, //
        },
        error::to_result,
        irq::IrqReturn,
        xen::events::{
            Handler,
            Port,
            Registration,
            DOMID_SELF, //
        },
    };

    /// Counts its events.
    #[pin_data]
    struct Count {
        n: AtomicU32,
    }

    impl Handler for Count {
        fn handle(&self) -> IrqReturn {
            self.n.fetch_add(1, Ordering::Relaxed);
            IrqReturn::Handled
        }
    }

    type Bound = Pin<KBox<Registration<Count>>>;

    /// A channel from this domain to itself, both ends bound to a counting handler.
    fn loopback() -> Result<(Bound, Bound)> {
        let a = Port::alloc_unbound(DOMID_SELF)?;
        let b = Port::bind_interdomain(DOMID_SELF, a.number())?;
        let bind = |port| {
            KBox::pin_init(
                Registration::new(
                    port,
                    c"rust-xen-api-kunit",
                    try_pin_init!(Count { n: AtomicU32::new(0) }? Error),
                ),
                GFP_KERNEL,
            )
        };
        let a = bind(a)?;
        Ok((a, bind(b)?))
    }

    /// Waits up to 5 s for `end`'s handler to have run `n` times.
    fn wait_for(end: &Bound, n: u32) -> bool {
        wait_until(|| end.handler().n.load(Ordering::Relaxed) >= n)
    }

    /// The port of IRQ `irq` (an IRQ number the registration holds).
    fn port(irq: u32) -> u32 {
        // SAFETY: `irq` stays bound while the caller's registration lives.
        unsafe { xen_evtchn_from_irq(irq) }
    }

    /// Events `end`'s handler has had, once it is quiet: disabling the IRQ waits for a running
    /// handler, and its channel is masked until [`quiet_end`].
    fn quiet_count(end: &Bound) -> u32 {
        // SAFETY: `end`'s IRQ is bound while `end` lives.
        unsafe { bindings::disable_irq(end.irq()) };
        end.handler().n.load(Ordering::Relaxed)
    }

    /// Ends [`quiet_count`]: drops what arrived meanwhile and enables the IRQ again.
    fn quiet_end(end: &Bound) {
        // SAFETY: `end`'s IRQ is bound while `end` lives, and was disabled by `quiet_count`.
        unsafe {
            xen_clear_irq_pending(end.irq() as c_int);
            bindings::enable_irq(end.irq());
        }
    }

    #[test]
    fn a_bound_port_and_its_irq_find_each_other() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let (a, b) = loopback()?;
        let (pa, pb) = (port(a.irq()), port(b.irq()));
        assert!(pa != 0 && pb != 0 && pa != pb);
        // SAFETY: The ports stay bound while `a` and `b` live.
        unsafe {
            assert_eq!(irq_from_evtchn(pa), a.irq());
            assert_eq!(irq_from_evtchn(pb), b.irq());
        }
        // A port is on the CPU its IRQ is moved to.
        // SAFETY: `__cpu_online_mask` is a kernel global that lives for ever; it is only read.
        let online = unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) };
        let mut one = CpumaskVar::new_zero(GFP_KERNEL)?;
        for cpu in (0..kernel::cpu::nr_cpu_ids()).filter_map(CpuId::from_u32) {
            if !online.test(cpu) {
                continue;
            }
            one.set(cpu);
            // SAFETY: `a`'s IRQ is bound while `a` lives; `one` outlives the call.
            to_result(unsafe { bindings::irq_set_affinity(a.irq(), one.as_raw()) })?;
            // SAFETY: `pa` stays bound while `a` lives.
            assert_eq!(unsafe { cpu_from_evtchn(pa) }, cpu.as_u32());
            one.clear(cpu);
        }
        // Each end's IRQ reaches the other end's handler, and only it. (Binding `b` left it an
        // event: Xen marks a newly bound interdomain port pending.)
        let before = quiet_count(&b);
        quiet_end(&b);
        for n in 1..=3 {
            // SAFETY: `b`'s IRQ stays bound while `b` lives.
            unsafe { notify_remote_via_irq(b.irq() as c_int) };
            assert!(wait_for(&a, n));
        }
        // SAFETY: As above, for `a`.
        unsafe { notify_remote_via_irq(a.irq() as c_int) };
        assert!(wait_for(&b, before + 1));
        assert_eq!(a.handler().n.load(Ordering::Relaxed), 3);
        assert_eq!(quiet_count(&b), before + 1);
        quiet_end(&b);
        Ok(())
    }

    #[test]
    fn numbers_out_of_range_have_no_port_and_no_irq() {
        if !on_xen() {
            return;
        }
        // SAFETY: `irq_get_nr_irqs()` only reads the number of IRQ descriptors.
        let nr_irqs = unsafe { bindings::irq_get_nr_irqs() };
        for irq in [nr_irqs, i32::MAX as u32, u32::MAX] {
            assert_eq!(port(irq), 0);
        }
        let max = max_channels();
        assert!(max > 0);
        for evtchn in [max, u32::MAX] {
            // SAFETY: Unbound ports: nothing is kept.
            unsafe {
                assert_eq!(irq_from_evtchn(evtchn), u32::MAX);
                assert_eq!(cpu_from_evtchn(evtchn), 0);
            }
        }
        for irq in [-1, i32::MAX, nr_irqs as c_int] {
            // SAFETY: IRQs that do not exist: the operations must do nothing. A poll of port 0,
            // which is never pending, would not return; the harness reports that as a stall.
            unsafe {
                assert!(!xen_test_irq_pending(irq));
                xen_clear_irq_pending(irq);
                notify_remote_via_irq(irq);
                xen_poll_irq(irq);
            }
        }
    }

    #[test]
    fn a_disabled_irq_is_waited_for_through_its_pending_state() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // What a PV spinlock's waiter does: its IRQ is disabled, and it clears, tests and polls
        // the channel's pending state.
        let (a, b) = loopback()?;
        let irq = b.irq() as c_int;
        // Disabling the IRQ masks the channel. The handler may have run for the event binding `b`
        // left, but cannot run from here on.
        let before = quiet_count(&b);
        // SAFETY: `irq` stays bound while `b` lives.
        unsafe {
            xen_clear_irq_pending(irq);
            assert!(!xen_test_irq_pending(irq));
            notify_remote_via_irq(a.irq() as c_int);
            assert!(xen_test_irq_pending(irq));
            // Pending: the poll returns at once (one that waited would stall the test, which the
            // harness reports).
            xen_poll_irq(irq);
            assert!(xen_test_irq_pending(irq));
            xen_clear_irq_pending(irq);
            assert!(!xen_test_irq_pending(irq));
            // Not pending: the poll returns when Xen's system time reaches the timeout, which
            // has passed.
            xen_poll_irq_timeout(irq, 1);
            assert!(!xen_test_irq_pending(irq));
        }
        // The handler did not run: the IRQ was disabled throughout.
        assert_eq!(b.handler().n.load(Ordering::Relaxed), before);
        quiet_end(&b);
        a.notify();
        assert!(wait_for(&b, before + 1));
        Ok(())
    }

    #[test]
    fn priorities_are_set_with_fifo_and_refused_with_two_level() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let (a, b) = loopback()?;
        let nr = xen_evtchn_nr_channels();
        let max = max_channels();
        assert!(nr <= max);
        assert!(port(a.irq()) < nr && port(b.irq()) < nr);
        // FIFO has 2^17 ports, 2-level 4096 on a 64-bit kernel.
        let fifo = max == 1 << bindings::EVTCHN_FIFO_LINK_BITS;
        // SAFETY: `a`'s IRQ stays bound while `a` lives.
        let (top, beyond, default) = unsafe {
            (
                xen_set_irq_priority(a.irq(), bindings::XEN_IRQ_PRIORITY_MAX),
                xen_set_irq_priority(a.irq(), bindings::XEN_IRQ_PRIORITY_MIN + 1),
                xen_set_irq_priority(a.irq(), bindings::XEN_IRQ_PRIORITY_DEFAULT),
            )
        };
        if fifo {
            assert_eq!((top, beyond, default), (0, EINVAL.to_errno(), 0));
        } else {
            let nosys = ENOSYS.to_errno();
            assert_eq!((top, beyond, default), (nosys, nosys, nosys));
        }
        Ok(())
    }

    /// The reference count of the channel at port `evtchn`, read under the event core's lock.
    fn refcnt(evtchn: u32) -> Option<c_short> {
        let _guard = mapping_lock().lock();
        // SAFETY: Under the lock, the map holds only live `irq_info`s, whose counts do not
        // change.
        unsafe { port_info(evtchn).map(|info| (*info.as_ptr()).refcnt) }
    }

    /// Sets the reference count of the channel at port `evtchn`, under the event core's lock (a
    /// test's own channel, whose count it puts back).
    fn set_refcnt(evtchn: u32, value: c_short) {
        let _guard = mapping_lock().lock();
        // SAFETY: Under the lock, the map holds only live `irq_info`s, whose counts are only
        // changed under it.
        if let Some(info) = unsafe { port_info(evtchn) } {
            // SAFETY: As above.
            unsafe { (*info.as_ptr()).refcnt = value };
        }
    }

    #[test]
    fn the_last_put_of_a_refcounted_channel_unbinds_it() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // What the evtchn device and gntdev do: a channel bound to a handler is made reference
        // counted, gntdev takes a reference for its unmap notification, the handler is unbound,
        // and gntdev's put unbinds and closes the channel.
        let (a, b) = loopback()?;
        let pa = port(a.irq());
        let pb = port(b.irq());
        // Not reference counted yet (-1): no reference can be taken.
        assert_eq!(refcnt(pa), Some(-1));
        assert_eq!(evtchn_get(pa), EINVAL.to_errno());
        assert_eq!(evtchn_make_refcounted(pa, false), 0);
        assert_eq!(refcnt(pa), Some(1));
        assert_eq!(evtchn_get(pa), 0);
        assert_eq!(evtchn_get(pa), 0);
        assert_eq!(refcnt(pa), Some(3));
        // SAFETY: Gives up one of the two references taken above.
        unsafe { evtchn_put(pa) };
        assert_eq!(refcnt(pa), Some(2));
        // A count at its maximum takes no more references.
        set_refcnt(pa, c_short::MAX);
        assert_eq!(evtchn_get(pa), EINVAL.to_errno());
        set_refcnt(pa, 2);
        // Unbinding the handler drops the binder's reference; the channel stays bound for the
        // one left, and still carries events.
        // SAFETY: The port is bound while a reference is held.
        let info = unsafe { bindings::xen_evtchn_to_info(pa) };
        drop(a);
        assert_eq!(refcnt(pa), Some(1));
        // SAFETY: As above.
        assert_eq!(unsafe { bindings::xen_evtchn_to_info(pa) }, info);
        // SAFETY: `b`'s IRQ stays bound while `b` lives.
        unsafe { notify_remote_via_irq(b.irq() as c_int) };
        // SAFETY: `pa` is bound while the reference is held.
        assert!(unsafe { xen_test_irq_pending(irq_from_evtchn(pa) as c_int) });
        // The last put unbinds it: the port has no `irq_info` any more (the old one is freed
        // only after a grace period, so a new binding of the same port number cannot have its
        // address yet).
        // SAFETY: Gives up the last reference.
        unsafe { evtchn_put(pa) };
        // SAFETY: Only compares the pointers.
        assert!(unsafe { bindings::xen_evtchn_to_info(pa) } != info);
        // Errors: out of range, not bound to an IRQ, bound but not counted.
        assert_eq!(evtchn_get(max_channels()), EINVAL.to_errno());
        assert_eq!(evtchn_get(u32::MAX), EINVAL.to_errno());
        let unbound = Port::alloc_unbound(DOMID_SELF)?;
        assert_eq!(evtchn_get(unbound.number()), ENOENT.to_errno());
        assert_eq!(
            evtchn_make_refcounted(unbound.number(), false),
            ENOENT.to_errno()
        );
        assert_eq!(evtchn_get(pb), EINVAL.to_errno());
        assert_eq!(refcnt(pb), Some(-1));
        Ok(())
    }
}
