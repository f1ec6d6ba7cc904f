// SPDX-License-Identifier: GPL-2.0

//! Late EOI and the upcall loop of the Xen event channel core, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_lateeoi.c` when `XEN_EVENTS_RUST` is set. It
//! holds the event channel core's protections against an event storm from another domain
//! (XSA-332):
//!
//! - the upcall loop, [`xen_lateeoi_upcall`]: it asks the event channel ABI (2-level or FIFO, C
//!   or Rust) for the pending ports until Xen raises no more, and each port comes back through
//!   [`handle_irq_for_port`] to its IRQ. After `xen.event_loop_timeout` jiffies in one loop, the
//!   EOIs of the events it still takes are deferred by `xen.event_eoi_delay` jiffies, so that the
//!   loop ends;
//! - the late EOI, [`xen_irq_lateeoi`]: a driver bound with a `lateeoi` function ends each event
//!   with it, and says whether the event brought any work. The channel stays masked until then.
//!   Past the device's `spurious_threshold` spurious events in a row, the EOI is delayed, one
//!   jiffy and then twice as long for each further spurious event (at most a second), on a
//!   per-cpu list sorted by due time that a delayed work item walks, [`xen_lateeoi_worker`]. The
//!   device's `xenbus/` counters (`events`, `spurious_events`, `jiffies_eoi_delayed`) account for
//!   it.
//!
//! The C glue, `lateeoi-glue.c`, holds what Rust in this kernel cannot express: the module
//! parameters, the per-cpu state and its initialisation (`xen_cpu_init_eoi`), the entry point from
//! the hypervisor callback that passes this CPU's state to the loop, and the exports.
//!
//! The rest of the core, `events_base.c`, owns the `struct irq_info` of each IRQ and frees it
//! through RCU (`queue_rcu_work`) after closing its channel and taking it off the late-EOI list
//! ([`xen_lateeoi_list_del`]). So an `irq_info` found under `rcu_read_lock()` stays valid until
//! the lock is dropped: the upcall loop and the late EOI hold it throughout.
//!
//! Lock order, as in C: the IRQ descriptor's lock, then a CPU's `eoi_list_lock`, then an
//! `irq_info`'s own lock (taken by `xen_irq_do_unmask`, never with the list lock held here).

use core::ptr;

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint,
        c_ulong, //
    },
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        rcu,
        SpinLockIrq,
        SpinLockIrqGuard, //
    },
};

/// The kernel's clock tick rate, in jiffies per second.
const HZ: u64 = bindings::HZ as u64;

/// Why a lateeoi channel is masked between an event and its EOI.
const EOI_PENDING: u8 = bindings::EVT_MASK_REASON_EOI_PENDING as u8;

/// `struct irq_info`'s type of a channel bound by port (interdomain or local).
const IRQT_EVTCHN: i16 = bindings::xen_irq_type_IRQT_EVTCHN as i16;

/// The upcall loop's state, which the event channel ABI passes back to [`handle_irq_for_port`]
/// for every pending port: `struct evtchn_loop_ctrl`, opaque to C.
struct LoopCtrl {
    /// When EOIs start to be deferred (`ktime_get()` ns), or 0 before the first 256 events.
    timeout: i64,
    /// Events taken so far, counted until EOIs are deferred.
    count: u32,
    /// Whether the EOIs of the events taken from now on are deferred.
    defer_eoi: bool,
    /// The CPU the loop runs on, with interrupts off.
    cpu: c_uint,
    /// That CPU's late-EOI state.
    state: *mut bindings::xen_lateeoi_cpu,
}

/// The current time in jiffies, 64 bits wide.
fn jiffies64() -> u64 {
    // SAFETY: Reads the jiffies counter; no memory is passed.
    unsafe { bindings::get_jiffies_64() }
}

/// This CPU's number: the CPU whose list a delayed EOI goes on.
///
/// `xen_irq_lateeoi()` may be called from a context that can migrate, so the result is a hint
/// that may be stale by the time it is used, as C's `smp_processor_id()` is there; any CPU's
/// list and work item will do.
fn this_cpu() -> c_uint {
    // SAFETY: Reads this CPU's number; no memory is passed.
    unsafe { bindings::raw_smp_processor_id() }
}

/// `xen.event_loop_timeout` in jiffies, read once per use as C does.
fn loop_timeout() -> u32 {
    // SAFETY: The parameter lives forever in the glue; sysfs may write it at any time, so it is
    // read with an atomic load.
    unsafe { Atomic::<u32>::from_ptr(&raw mut bindings::xen_event_loop_timeout) }.load(Relaxed)
}

/// `xen.event_eoi_delay` in jiffies, read once per use as C does.
fn eoi_delay() -> u32 {
    // SAFETY: As in `loop_timeout`.
    unsafe { Atomic::<u32>::from_ptr(&raw mut bindings::xen_event_eoi_delay) }.load(Relaxed)
}

/// `state`'s count of finished upcalls (`irq_epoch`).
///
/// # Safety
///
/// `state` must be a CPU's late-EOI state (they live forever).
unsafe fn irq_epoch(state: *mut bindings::xen_lateeoi_cpu) -> &'static Atomic<u32> {
    // SAFETY: The caller passes per-cpu state, which is never freed. Only its CPU writes the
    // count; other CPUs read it, so every access is atomic.
    unsafe { Atomic::<u32>::from_ptr(&raw mut (*state).irq_epoch) }
}

/// `info`'s "an event is being handled" flag (`is_active`).
///
/// # Safety
///
/// `info` must be a live `struct irq_info` for as long as the result is used.
unsafe fn is_active<'a>(info: *mut bindings::irq_info) -> &'a Atomic<i8> {
    // SAFETY: The caller keeps `info` alive; `is_active` is a byte that the upcall loop, the irq
    // chip and the late EOI race on, so every access is atomic, as C's `xchg_acquire()` and
    // `smp_store_release()` are.
    unsafe { Atomic::<i8>::from_ptr((&raw mut (*info).is_active).cast()) }
}

/// Adds `v` to one of a xenbus device's `atomic_t` counters.
///
/// # Safety
///
/// `counter` must point to an `atomic_t` that lives for the duration of the call.
unsafe fn count(counter: *mut bindings::atomic_t, v: i32) {
    // SAFETY: The caller passes a live `atomic_t`, whose `counter` is only accessed atomically.
    unsafe { Atomic::<i32>::from_ptr(&raw mut (*counter).counter) }.add(v, Relaxed);
}

/// The `struct irq_info` whose `eoi_list` link `link` is.
///
/// # Safety
///
/// `link` must be the `eoi_list` of a `struct irq_info`.
unsafe fn info_of(link: *mut bindings::list_head) -> *mut bindings::irq_info {
    // SAFETY: The caller passes an `irq_info`'s `eoi_list`, so the containing object is one.
    unsafe { kernel::container_of!(link, bindings::irq_info, eoi_list) }
}

/// A CPU's `eoi_list_lock`, held with interrupts off: unlocks on drop.
struct EoiListGuard {
    state: *mut bindings::xen_lateeoi_cpu,
    _held: SpinLockIrqGuard<'static, ()>,
}

impl EoiListGuard {
    /// Locks `state`'s list with interrupts off, as a [`SpinLockIrq`] (C: `spin_lock_irqsave`).
    ///
    /// # Safety
    ///
    /// `state` must be a CPU's late-EOI state, initialised by `xen_cpu_init_eoi`.
    unsafe fn lock(state: *mut bindings::xen_lateeoi_cpu) -> Self {
        // SAFETY: The caller passes initialised per-cpu state, which lives forever.
        let lock = unsafe { SpinLockIrq::<()>::from_raw(&raw mut (*state).eoi_list_lock) };
        Self {
            state,
            _held: lock.lock(),
        }
    }

    /// The locked list's head.
    fn head(&self) -> *mut bindings::list_head {
        // SAFETY: `state` lives forever (per-cpu).
        unsafe { &raw mut (*self.state).eoi_list }
    }

    /// The `irq_info` whose EOI is due first, if any.
    fn first(&self) -> Option<*mut bindings::irq_info> {
        let head = self.head();
        // SAFETY: The list of initialised state is valid, and locked.
        let first = unsafe { (*head).next };
        if first == head {
            return None;
        }
        // SAFETY: `first` is not the head, so it is the `eoi_list` of an `irq_info` on the list,
        // which stays alive while it is on it (`xen_free_irq` takes it off first, under this
        // lock).
        Some(unsafe { info_of(first) })
    }

    /// (Re)arms the list's work item to run on `cpu` in `delay` jiffies.
    fn arm(&self, cpu: c_uint, delay: u64) {
        // SAFETY: The work item is initialised and lives forever, as the system workqueue does.
        unsafe {
            bindings::mod_delayed_work_on(
                cpu as c_int,
                bindings::system_percpu_wq,
                &raw mut (*self.state).delayed,
                c_ulong::try_from(delay).unwrap_or(c_ulong::MAX),
            )
        };
    }
}

/// The count of spurious events in a row after one more (`spurious_cnt`). It stops growing once
/// 2^count reaches four seconds' worth of jiffies, past which [`backoff_delay`] is at its cap.
fn spurious_count_after(cnt: u8) -> u8 {
    if cnt != u8::MAX
        && 1u64
            .checked_shl(u32::from(cnt))
            .is_some_and(|v| v < (HZ << 2))
    {
        cnt + 1
    } else {
        cnt
    }
}

/// The delay, in jiffies, of the EOI of the `cnt`-th spurious event in a row on a channel whose
/// device tolerates `threshold` of them: none up to the threshold, then one jiffy, and twice as
/// long for each further one, at most a second.
fn backoff_delay(cnt: u8, threshold: u64) -> u64 {
    let cnt = u64::from(cnt);
    if cnt <= threshold {
        return 0;
    }
    // `cnt - 1 - threshold` is below 255; a shift past 63 bits is past the cap anyway.
    1u64.checked_shl((cnt - 1 - threshold) as u32)
        .map_or(HZ, |d| d.min(HZ))
}

/// Queues `info`'s delayed EOI on the list of its `eoi_cpu`, sorted by `eoi_time`, and (re)arms
/// that CPU's work item when it becomes the first (`lateeoi_list_add`).
///
/// # Safety
///
/// `info` must be a live `struct irq_info` that is on no late-EOI list, with `eoi_cpu` a CPU
/// whose late-EOI state is initialised.
unsafe fn lateeoi_list_add(info: *mut bindings::irq_info) {
    // SAFETY: The caller passes a live `info`; `eoi_cpu` is a CPU (see above).
    let (cpu, eoi_time) = unsafe { (c_uint::from((*info).eoi_cpu), (*info).eoi_time) };
    // SAFETY: `cpu` is a possible CPU, which has per-cpu state.
    let state = unsafe { bindings::xen_lateeoi_cpu(cpu) };
    let now = jiffies64();
    let delay = if now < eoi_time { eoi_time - now } else { 1 };

    // SAFETY: `state` is initialised (see above).
    let guard = unsafe { EoiListGuard::lock(state) };
    let head = guard.head();
    let due_later = |first: *mut bindings::irq_info| {
        // SAFETY: An entry of the locked list is a live `irq_info` (see `EoiListGuard::first`).
        eoi_time < unsafe { (*first).eoi_time }
    };
    if guard.first().is_none_or(due_later) {
        // SAFETY: `info` is on no list, and the list is locked.
        unsafe { bindings::list_add(&raw mut (*info).eoi_list, head) };
        guard.arm(cpu, delay);
        return;
    }
    // After the last entry due no later than `info`: walk from the end, as C does, since a new
    // delay is usually the longest.
    // SAFETY: As above.
    let mut pos = unsafe { (*head).prev };
    while pos != head {
        // SAFETY: `pos` is not the head, so it is an `irq_info`'s link on the list (see above).
        if unsafe { (*info_of(pos)).eoi_time } <= eoi_time {
            break;
        }
        // SAFETY: As above.
        pos = unsafe { (*pos).prev };
    }
    // SAFETY: `info` is on no list, `pos` is the head or an entry, and the list is locked.
    unsafe { bindings::list_add(&raw mut (*info).eoi_list, pos) };
}

/// Takes `info` off its CPU's late-EOI list (`lateeoi_list_del`). `events_base.c` calls it before
/// freeing `info`.
///
/// # Safety
///
/// `info` must be a live `struct irq_info` on the late-EOI list of its `eoi_cpu`.
#[export]
pub unsafe extern "C" fn xen_lateeoi_list_del(info: *mut bindings::irq_info) {
    // SAFETY: The caller passes a live `info` queued on its `eoi_cpu`, a CPU with per-cpu state.
    let state = unsafe { bindings::xen_lateeoi_cpu(c_uint::from((*info).eoi_cpu)) };
    // SAFETY: `state` is initialised: `info` is on its list.
    let _guard = unsafe { EoiListGuard::lock(state) };
    // SAFETY: `info` is on this list, which is locked.
    unsafe { bindings::list_del_init(&raw mut (*info).eoi_list) };
}

/// The late EOI of `info` (`xen_irq_lateeoi_locked`): counts a spurious event and delays the EOI
/// when they keep coming, else unmasks the channel now, or when the delay is over.
///
/// # Safety
///
/// `info` must be a live `struct irq_info` (the caller holds `rcu_read_lock()` or is the late-EOI
/// worker, which does).
unsafe fn lateeoi_locked(info: *mut bindings::irq_info, spurious: bool) {
    // SAFETY: The caller passes a live `info`.
    let evtchn = unsafe { (*info).evtchn };
    // SAFETY: As above.
    if evtchn == 0 || !unsafe { bindings::list_empty(&raw const (*info).eoi_list) } {
        return;
    }
    let mut delay = 0u64;
    if spurious {
        // SAFETY: As above. Only channels bound to a xenbus device's other end set `interdomain`;
        // the field is NULL otherwise (`irq_info`s are zeroed), as C relies on too.
        let dev = unsafe { (*info).u.interdomain };
        // A device's threshold is set through sysfs at any time; 0 means the default, 1.
        let threshold = if dev.is_null() {
            1
        } else {
            // SAFETY: `dev` outlives its binding, which outlives `info`'s events.
            match unsafe { ptr::read_volatile(&raw const (*dev).spurious_threshold) } {
                0 => 1,
                t => u64::from(t),
            }
        };
        // SAFETY: As above; the late EOI of one channel is not run concurrently with itself (the
        // channel stays masked until it is done).
        let cnt = unsafe {
            (*info).spurious_cnt = spurious_count_after((*info).spurious_cnt);
            (*info).spurious_cnt
        };
        delay = backoff_delay(cnt, threshold);
        if delay != 0 {
            // SAFETY: As above.
            unsafe {
                if (*info).eoi_time == 0 {
                    (*info).eoi_cpu = this_cpu() as u16;
                }
                (*info).eoi_time = jiffies64() + delay;
            }
            if !dev.is_null() {
                // SAFETY: `dev` is live (see above); `delay` is at most HZ.
                unsafe { count(&raw mut (*dev).jiffies_eoi_delayed, delay as i32) };
            }
        }
        if !dev.is_null() {
            // SAFETY: As above.
            unsafe { count(&raw mut (*dev).spurious_events, 1) };
        }
    } else {
        // SAFETY: As above.
        unsafe { (*info).spurious_cnt = 0 };
    }

    // SAFETY: As above.
    let (cpu, eoi_time, epoch) = unsafe { ((*info).eoi_cpu, (*info).eoi_time, (*info).irq_epoch) };
    // An EOI that the upcall loop deferred waits on the list while that loop still runs (its
    // CPU's epoch has not moved on), and a delayed one until its time has come.
    let deferred = || {
        // SAFETY: `eoi_cpu` is a CPU this channel's events were taken on, which has per-cpu
        // state.
        let state = unsafe { bindings::xen_lateeoi_cpu(c_uint::from(cpu)) };
        // SAFETY: `state` is a CPU's late-EOI state.
        epoch == unsafe { irq_epoch(state) }.load(Relaxed)
    };
    if eoi_time != 0 && (delay != 0 || deferred()) {
        // SAFETY: `info` is live and on no list (checked above); `eoi_cpu` is a CPU.
        unsafe { lateeoi_list_add(info) };
        return;
    }
    // SAFETY: As above.
    unsafe { (*info).eoi_time = 0 };
    // The ack left `is_active` set, so that events re-raised meanwhile were ignored.
    // SAFETY: As above.
    unsafe { is_active(info) }.store(0, Release);
    // SAFETY: As above.
    unsafe { bindings::xen_irq_do_unmask(info, EOI_PENDING) };
}

/// Ends the event being handled on `irq`, a channel bound with a `lateeoi` function, and says
/// whether it brought any work (`eoi_flags` has `XEN_EOI_FLAG_SPURIOUS` if not).
///
/// # Safety
///
/// Called by a driver for an IRQ it bound, from any context.
#[export]
pub unsafe extern "C" fn xen_irq_lateeoi(irq: c_uint, eoi_flags: c_uint) {
    let _rcu = rcu::read_lock();
    // SAFETY: Looks `irq` up; the result, if any, is freed only after an RCU grace period.
    let info = unsafe { bindings::xen_info_for_irq(irq) };
    if !info.is_null() {
        // SAFETY: `info` is live while the RCU read lock is held.
        unsafe { lateeoi_locked(info, eoi_flags & bindings::XEN_EOI_FLAG_SPURIOUS != 0) };
    }
}

/// A CPU's late-EOI work item: sends the EOIs that are due, in order, and re-arms itself for the
/// next one (`xen_irq_lateeoi_worker`).
///
/// # Safety
///
/// `work` must be the `delayed.work` of a CPU's late-EOI state (`xen_cpu_init_eoi` sets it up
/// so).
#[export]
pub unsafe extern "C" fn xen_lateeoi_worker(work: *mut bindings::work_struct) {
    // SAFETY: The caller passes the `work` of a `delayed_work`...
    let delayed = unsafe { kernel::container_of!(work, bindings::delayed_work, work) };
    // SAFETY: ... which is the `delayed` of a CPU's late-EOI state.
    let state = unsafe { kernel::container_of!(delayed, bindings::xen_lateeoi_cpu, delayed) };
    let now = jiffies64();

    let _rcu = rcu::read_lock();
    loop {
        // SAFETY: `state` is initialised: its work item runs.
        let guard = unsafe { EoiListGuard::lock(state) };
        let Some(info) = guard.first() else {
            return;
        };
        // SAFETY: An entry of the locked list is a live `irq_info`.
        let (eoi_time, cpu) = unsafe { ((*info).eoi_time, (*info).eoi_cpu) };
        if now < eoi_time {
            guard.arm(c_uint::from(cpu), eoi_time - now);
            return;
        }
        // SAFETY: `info` is on this list, which is locked.
        unsafe { bindings::list_del_init(&raw mut (*info).eoi_list) };
        drop(guard);
        // SAFETY: Off the list, `info` is still live under the RCU read lock held here.
        unsafe {
            (*info).eoi_time = 0;
            lateeoi_locked(info, false);
        }
    }
}

/// Takes the event on `port` to its IRQ (`handle_irq_for_port`): the event channel ABI calls it
/// for each pending port during [`xen_lateeoi_upcall`], with the `ctrl` it was given.
///
/// # Safety
///
/// `ctrl` must be the loop state that [`xen_lateeoi_upcall`] passed to the ABI, on this CPU, with
/// interrupts off and the RCU read lock held.
#[export]
pub unsafe extern "C" fn handle_irq_for_port(
    port: bindings::evtchn_port_t,
    ctrl: *mut bindings::evtchn_loop_ctrl,
) {
    // SAFETY: Looks `port` up; the loop holds the RCU read lock, so the result stays alive.
    let info = unsafe { bindings::xen_evtchn_to_info(port) };
    if info.is_null() {
        return;
    }
    // SAFETY: The ABI passes back the `LoopCtrl` of the running loop, which nothing else uses
    // until this returns.
    let ctrl = unsafe { &mut *ctrl.cast::<LoopCtrl>() };

    // Every 256 events, check the time; set the deadline only after the first 256, so that a
    // short loop does not read the clock. Past the deadline, defer all further EOIs so that the
    // loop ends soon.
    if !ctrl.defer_eoi {
        ctrl.count = ctrl.count.wrapping_add(1);
        if ctrl.count & 0xff == 0 {
            // SAFETY: Reads the clock; no memory is passed.
            let now = unsafe { bindings::ktime_get() };
            if ctrl.timeout == 0 {
                // SAFETY: A pure conversion.
                let ms = unsafe { bindings::jiffies64_to_msecs(u64::from(loop_timeout())) };
                let ns = i64::try_from(ms).map_or(i64::MAX, |ms| ms.saturating_mul(1_000_000));
                ctrl.timeout = now.saturating_add(ns);
            } else if now > ctrl.timeout {
                ctrl.defer_eoi = true;
            }
        }
    }

    // SAFETY: `info` is live (see above).
    if unsafe { is_active(info) }.xchg(1, Acquire) != 0 {
        return;
    }

    // SAFETY: As above.
    let dev = if unsafe { (*info).type_ } == IRQT_EVTCHN {
        // SAFETY: As above; an event channel's `interdomain` is its xenbus device or NULL.
        unsafe { (*info).u.interdomain }
    } else {
        ptr::null_mut()
    };
    if !dev.is_null() {
        // SAFETY: The device outlives its channel's binding.
        unsafe { count(&raw mut (*dev).events, 1) };
    }

    if ctrl.defer_eoi {
        // SAFETY: `ctrl.state` is this CPU's late-EOI state; `info` is live and being handled
        // here (`is_active` was clear).
        unsafe {
            (*info).eoi_cpu = ctrl.cpu as u16;
            (*info).irq_epoch = irq_epoch(ctrl.state).load(Relaxed);
            (*info).eoi_time = jiffies64() + u64::from(eoi_delay());
        }
    }

    // SAFETY: `info->irq` is the IRQ bound to `port`, whose descriptor outlives `info`.
    unsafe { bindings::generic_handle_irq((*info).irq) };
}

/// The upcall loop (`xen_evtchn_do_upcall`): hands the pending ports to their IRQs until Xen
/// raises no more. Returns `IRQ_HANDLED` if Xen had raised the upcall, else `IRQ_NONE`.
///
/// # Safety
///
/// Called by the glue's `xen_evtchn_do_upcall()` with interrupts off, with this CPU's number, its
/// `vcpu_info` and its late-EOI state.
#[export]
pub unsafe extern "C" fn xen_lateeoi_upcall(
    cpu: c_uint,
    vcpu_info: *mut bindings::vcpu_info,
    state: *mut bindings::xen_lateeoi_cpu,
) -> c_int {
    // SAFETY: `vcpu_info` is this CPU's, which Xen writes too: every access is atomic.
    let pending = unsafe {
        Atomic::<i8>::from_ptr((&raw mut (*vcpu_info).evtchn_upcall_pending).cast::<i8>())
    };
    let ret = if pending.load(Relaxed) != 0 {
        bindings::irqreturn::IRQ_HANDLED
    } else {
        bindings::irqreturn::IRQ_NONE
    };
    let mut ctrl = LoopCtrl {
        timeout: 0,
        count: 0,
        defer_eoi: false,
        cpu,
        state,
    };
    // SAFETY: The ABI is chosen at boot, before the first upcall, and never changes after.
    let handle_events = unsafe { (*bindings::evtchn_ops).handle_events };

    {
        // An IRQ's `irq_info` is freed only after its channel is closed and an RCU grace period
        // has passed, so none is freed while this loop runs.
        let _rcu = rcu::read_lock();
        loop {
            pending.store(0, Relaxed);
            if let Some(handle_events) = handle_events {
                // SAFETY: `ctrl` lives across the call, and the ABI hands it only to
                // `handle_irq_for_port` on this CPU.
                unsafe { handle_events(cpu, (&raw mut ctrl).cast()) };
            }
            // SAFETY: Asks whether interrupts are off; no memory is passed.
            kernel::warn_on!(!unsafe { bindings::xen_irqs_disabled() });
            // SAFETY: A barrier; no memory is passed. Xen may have raised the upcall again.
            unsafe { bindings::virt_rmb() };
            if pending.load(Relaxed) == 0 {
                break;
            }
        }
    }

    // Only now: the EOIs deferred by this loop wait for the loop to end, not beyond.
    // SAFETY: `state` is this CPU's, which only this CPU writes, with interrupts off.
    let epoch = unsafe { irq_epoch(state) };
    epoch.store(epoch.load(Relaxed).wrapping_add(1), Relaxed);

    ret.0 as c_int
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_lateeoi)]
mod tests {
    use super::*;

    #[test]
    fn the_eoi_delay_doubles_past_the_threshold_up_to_a_second() {
        // The default threshold, 1.
        assert_eq!(backoff_delay(0, 1), 0);
        assert_eq!(backoff_delay(1, 1), 0);
        assert_eq!(backoff_delay(2, 1), 1);
        assert_eq!(backoff_delay(3, 1), 2);
        assert_eq!(backoff_delay(4, 1), 4);
        assert_eq!(backoff_delay(5, 1), 8);
        // A device that tolerates 3 spurious events in a row.
        assert_eq!(backoff_delay(3, 3), 0);
        assert_eq!(backoff_delay(4, 3), 1);
        assert_eq!(backoff_delay(5, 3), 2);
        // Never more than a second, whatever the count, and no overflow on the way.
        for cnt in 0..=u8::MAX {
            assert!(backoff_delay(cnt, 1) <= HZ);
        }
        assert_eq!(backoff_delay(u8::MAX, 1), HZ);
        assert_eq!(backoff_delay(u8::MAX, 0), HZ);
        // A threshold above any count never delays.
        assert_eq!(backoff_delay(u8::MAX, 255), 0);
    }

    #[test]
    fn the_spurious_count_stops_once_the_delay_is_at_its_cap() {
        let mut cnt = 0u8;
        let mut steps = 0;
        while spurious_count_after(cnt) != cnt {
            // One at a time.
            assert_eq!(spurious_count_after(cnt), cnt + 1);
            cnt += 1;
            steps += 1;
            assert!(steps < 64);
        }
        // It stops at the first count with 2^count >= 4 * HZ ...
        assert!(1u64 << cnt >= 4 * HZ);
        assert!(1u64 << (cnt - 1) < 4 * HZ);
        // ... where the delay (default threshold) has reached its cap, and stays there.
        assert_eq!(backoff_delay(cnt, 1), HZ);
        assert_eq!(spurious_count_after(spurious_count_after(cnt)), cnt);
        // A count that is already at its ceiling does not wrap.
        assert_eq!(spurious_count_after(u8::MAX), u8::MAX);
    }
}
