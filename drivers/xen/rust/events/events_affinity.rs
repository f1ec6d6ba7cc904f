// SPDX-License-Identifier: GPL-2.0

//! The CPU a bound Xen event channel's events are delivered to, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_affinity.c` when `XEN_EVENTS_RUST` is set. A
//! channel is bound to one vCPU at a time, and its events are delivered there:
//!
//! - [`xen_set_affinity_irq`] is the irq chips' `irq_set_affinity`. It picks the online CPU of
//!   the new mask with the fewest channels, rebinds the channel to it with `EVTCHNOP_bind_vcpu`
//!   (masked meanwhile, so that no event is delivered on the way), and moves a global VIRQ's entry
//!   in the per-CPU VIRQ table (`events_virq_ipi`) with it;
//! - [`xen_bind_evtchn_to_cpu`] places a channel on a CPU for the ABI, and keeps the count of
//!   channels on each CPU; the binding functions and resume call it, and
//!   [`xen_channels_on_cpu_dec`] when a channel is closed.
//!
//! The counts are a hint, as in C: they are read without a lock while other CPUs bind and move
//! channels. Each channel is counted at most once (its `irq_info`'s `is_accounted`), and a count
//! never goes below 0 or above `INT_MAX`.
//!
//! C's behaviour is kept, with one difference for a caller that breaks the rules: a CPU number
//! past `nr_cpu_ids` warns and changes nothing, where C would make a cpumask of it (out of
//! bounds) before it warns.

use core::ptr::NonNull;

use kernel::{
    bindings,
    cpu::CpuId,
    cpumask::Cpumask,
    ffi::{
        c_int,
        c_uint, //
    },
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

mod common;
use common::ops;

const TEMPORARY: u8 = bindings::EVT_MASK_REASON_TEMPORARY as u8;
const IRQT_VIRQ: i16 = bindings::xen_irq_type_IRQT_VIRQ as i16;

/// The number of channels bound to each CPU (C's `channels_on_cpu`).
static CHANNELS_ON_CPU: [Atomic<i32>; bindings::NR_CPUS as usize] =
    [const { Atomic::new(0) }; bindings::NR_CPUS as usize];

/// The channel count of CPU `cpu`, if it is a possible CPU number.
fn channels_on(cpu: c_uint) -> Option<&'static Atomic<i32>> {
    if cpu >= kernel::cpu::nr_cpu_ids() {
        return None;
    }
    CHANNELS_ON_CPU.get(usize::try_from(cpu).ok()?)
}

/// Adds `delta` to `count` unless it is `limit` (C's `atomic_add_unless()`); returns whether it
/// did.
fn add_unless(count: &Atomic<i32>, delta: i32, limit: i32) -> bool {
    let mut old = count.load(Relaxed);
    loop {
        if old == limit {
            return false;
        }
        // The counts order nothing else: they only steer the choice of a CPU.
        match count.cmpxchg(old, old.wrapping_add(delta), Relaxed) {
            Ok(_) => return true,
            Err(now) => old = now,
        }
    }
}

/// The online CPUs.
fn online() -> &'static Cpumask {
    // SAFETY: `__cpu_online_mask` is a kernel global that lives for ever; it is only read.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) }
}

/// Xen's number of CPU `cpu`'s vCPU.
fn xen_vcpu(cpu: CpuId) -> u32 {
    // SAFETY: `cpu` is a CPU number; its Xen vCPU number is a per-cpu variable.
    unsafe { bindings::xen_vcpu_nr(cpu.as_u32() as c_int) }
}

/// The mask of CPU `cpu` alone, if it is a possible CPU number.
fn mask_of(cpu: c_uint) -> Option<*const bindings::cpumask> {
    channels_on(cpu)?;
    // SAFETY: `cpumask_of()` takes any CPU number below `nr_cpu_ids`; its masks are static.
    Some(unsafe { bindings::cpumask_of(cpu) })
}

/// Stops counting the channel of `info` on its CPU, if it was counted.
///
/// # Safety
///
/// `info` must be a valid `irq_info`. The caller serialises the changes of its binding (the
/// event core's mapping lock, or the IRQ's descriptor lock, or resume's stopped machine).
#[export]
pub unsafe extern "C" fn xen_channels_on_cpu_dec(info: *mut bindings::irq_info) {
    // SAFETY: The caller's guarantee: `info` is valid, and its binding is not changed meanwhile.
    let (accounted, cpu) = unsafe { ((*info).is_accounted, (*info).cpu) };
    if accounted == 0 {
        return;
    }
    // SAFETY: As above.
    unsafe { (*info).is_accounted = 0 };
    let Some(count) = channels_on(c_uint::from(cpu)) else {
        kernel::warn_on!(true);
        return;
    };
    kernel::warn_on!(!add_unless(count, -1, 0));
}

/// Counts the channel of `info` on its CPU.
///
/// # Safety
///
/// As [`xen_channels_on_cpu_dec`].
unsafe fn channels_on_cpu_inc(info: *mut bindings::irq_info) {
    // SAFETY: The caller's guarantee.
    let cpu = unsafe { (*info).cpu };
    let Some(count) = channels_on(c_uint::from(cpu)) else {
        kernel::warn_on!(true);
        return;
    };
    if kernel::warn_on!(!add_unless(count, 1, i32::MAX)) {
        return;
    }
    // SAFETY: The caller's guarantee.
    unsafe { (*info).is_accounted = 1 };
}

/// Places the channel of `info` on CPU `cpu` for the ABI, and counts it there. With
/// `force_affinity`, the IRQ's affinity and effective affinity become that CPU alone (per-cpu
/// VIRQs and IPIs, whose affinity the IRQ layer never sets).
///
/// # Safety
///
/// `info` must be a valid `irq_info` of a bound IRQ whose channel is open. The caller
/// serialises the changes of its binding, as for [`xen_channels_on_cpu_dec`].
#[export]
pub unsafe extern "C" fn xen_bind_evtchn_to_cpu(
    info: *mut bindings::irq_info,
    cpu: c_uint,
    force_affinity: bool,
) {
    // A CPU that cannot exist: warn, and leave the channel where it is (C's count would warn,
    // after a cpumask of it was read out of bounds).
    let Some(mask) = mask_of(cpu) else {
        kernel::warn_on!(true);
        return;
    };
    // `cpu` is below `nr_cpu_ids`, which fits the `unsigned short` of `irq_info::cpu`.
    let Ok(cpu16) = u16::try_from(cpu) else {
        kernel::warn_on!(true);
        return;
    };
    // SAFETY: The caller's guarantee: `info` is valid and its binding is not changed meanwhile.
    let (irq, evtchn, old_cpu) = unsafe { ((*info).irq, (*info).evtchn, (*info).cpu) };
    if cfg!(CONFIG_SMP) && force_affinity {
        // SAFETY: The IRQ is bound, so it has a descriptor; `mask` is a static cpumask.
        unsafe {
            let data = bindings::irq_get_irq_data(irq);
            bindings::irq_data_update_affinity(data, mask);
            bindings::irq_data_update_effective_affinity(data, mask);
        }
    }
    if let Some(bind_to_cpu) = ops().bind_to_cpu {
        // SAFETY: The channel is open; every ABI takes an open port and two CPU numbers.
        unsafe { bind_to_cpu(evtchn, cpu, c_uint::from(old_cpu)) };
    }
    // SAFETY: The caller's guarantee.
    unsafe {
        xen_channels_on_cpu_dec(info);
        (*info).cpu = cpu16;
        channels_on_cpu_inc(info);
    }
}

/// Rebinds the channel of `info` to CPU `tcpu` with the hypervisor; returns 0, or -1 if it has
/// no open channel or channels cannot be moved (as C, whose value the IRQ layer passes on).
///
/// A channel the hypervisor does not move (a per-vCPU VIRQ or an IPI, whose IRQs are per-cpu)
/// stays where it is, and the result is still 0, as in C.
///
/// # Safety
///
/// `info`, if not `None`, must be the `irq_info` of an IRQ whose descriptor lock the caller
/// holds (so it stays bound, and its binding does not change).
unsafe fn rebind_to_cpu(info: Option<NonNull<bindings::irq_info>>, tcpu: CpuId) -> c_int {
    let Some(info) = info else {
        return -1;
    };
    let info = info.as_ptr();
    // SAFETY: The caller's guarantee.
    let evtchn = unsafe { (*info).evtchn };
    // Port 0 is never allocated: the channel is closed.
    // SAFETY: `xen_support_evtchn_rebind()` only reads how events are delivered.
    if evtchn == 0 || !unsafe { bindings::xen_support_evtchn_rebind() } {
        return -1;
    }
    let mut bind_vcpu = bindings::evtchn_bind_vcpu {
        port: evtchn,
        vcpu: xen_vcpu(tcpu),
    };
    // Masked meanwhile, so that no event is delivered on a CPU in between.
    // SAFETY: The channel is open, so `info`'s lock is initialised.
    unsafe { bindings::xen_irq_do_mask(info, TEMPORARY) };
    // SAFETY: `bind_vcpu` is a valid argument for this operation.
    let rc = unsafe {
        bindings::HYPERVISOR_event_channel_op(
            bindings::EVTCHNOP_bind_vcpu as c_int,
            (&raw mut bind_vcpu).cast(),
        )
    };
    // A failure means a channel Xen does not move (a per-vCPU VIRQ, an IPI): ignored, as in C.
    if rc >= 0 {
        // SAFETY: The caller's guarantee.
        let (old_cpu, kind) = unsafe { ((*info).cpu, (*info).type_) };
        // SAFETY: As above; the channel is open.
        unsafe { xen_bind_evtchn_to_cpu(info, tcpu.as_u32(), false) };
        if kind == IRQT_VIRQ {
            // SAFETY: A VIRQ's `irq_info` has its number in `u.virq`; the table is the core's,
            // which changes it under the same serialisation.
            unsafe {
                bindings::xen_virq_move_cpu(
                    c_uint::from((*info).u.virq),
                    c_uint::from(old_cpu),
                    tcpu.as_u32(),
                )
            };
        }
    }
    // SAFETY: As for the mask.
    unsafe { bindings::xen_irq_do_unmask(info, TEMPORARY) };
    0
}

/// The online CPU of `dest` with the fewest channels, or of all online CPUs if `dest` has none
/// online. Not exact: other CPUs change the counts meanwhile.
fn select_target_cpu(dest: &Cpumask) -> CpuId {
    let online = online();
    let pick = |dest: &Cpumask| {
        let mut best: Option<(CpuId, i32)> = None;
        for cpu in (0..kernel::cpu::nr_cpu_ids()).filter_map(CpuId::from_u32) {
            if !dest.test(cpu) || !online.test(cpu) {
                continue;
            }
            let n = channels_on(cpu.as_u32()).map_or(i32::MAX, |count| count.load(Relaxed));
            if best.is_none_or(|(_, fewest)| n < fewest) {
                best = Some((cpu, n));
            }
        }
        best.map(|(cpu, _)| cpu)
    };
    // The CPU running this is online, so the second pick always finds one.
    pick(dest)
        .or_else(|| pick(online))
        .unwrap_or_else(CpuId::current)
}

/// The irq chips' `irq_set_affinity`: moves the IRQ's channel to the online CPU of `dest` with
/// the fewest channels; returns 0 or -1 (see [`rebind_to_cpu`]).
///
/// # Safety
///
/// `data` and `dest` must be valid for the call, and the caller must hold `data`'s descriptor
/// lock (the IRQ layer does).
#[export]
pub unsafe extern "C" fn xen_set_affinity_irq(
    data: *mut bindings::irq_data,
    dest: *const bindings::cpumask,
    _force: bool,
) -> c_int {
    // SAFETY: The caller's guarantee: `dest` is valid for the call.
    let tcpu = select_target_cpu(unsafe { Cpumask::from_raw(dest) });
    // SAFETY: `data` is valid; an IRQ the IRQ layer passes is below `nr_irqs`.
    let info = NonNull::new(unsafe { bindings::xen_info_for_irq((*data).irq) });
    // SAFETY: The caller holds the descriptor lock.
    let ret = unsafe { rebind_to_cpu(info, tcpu) };
    if ret == 0 {
        if let Some(mask) = mask_of(tcpu.as_u32()) {
            // SAFETY: `data` is valid and its descriptor locked; `mask` is a static cpumask.
            unsafe { bindings::irq_data_update_effective_affinity(data, mask) };
        }
    }
    ret
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_affinity)]
mod tests {
    use super::*;
    use common::kunit::{
        info,
        port_status,
        wait_for,
        Bound,
        Seen, //
    };
    use kernel::{
        cpumask::CpumaskVar,
        error::to_result,
        ffi::c_void,
        sync::atomic::Full,
        xen::events::{
            Port,
            Registration,
            DOMID_SELF, //
        },
    };

    /// Whether the test can use the hypervisor and at least two CPUs are online; marks it
    /// skipped if not.
    fn on_xen_smp() -> bool {
        let reason = if kernel::xen::domain_kind() == kernel::xen::DomainKind::Native {
            c"not running on Xen"
        } else if online().weight() < 2 {
            c"needs two online CPUs"
        } else {
            return true;
        };
        // SAFETY: The reason is NUL-terminated; this runs in a KUnit test.
        unsafe { bindings::xen_kunit_skip(reason.as_char_ptr()) };
        false
    }

    /// A channel from this domain to itself, both ends bound to a handler.
    fn loopback() -> Result<(Bound, Bound)> {
        let a = Port::alloc_unbound(DOMID_SELF)?;
        let b = Port::bind_interdomain(DOMID_SELF, a.number())?;
        let bind = |port| {
            KBox::pin_init(
                Registration::new(port, c"rust-xen-affinity-kunit", Seen::new()),
                GFP_KERNEL,
            )
        };
        let a = bind(a)?;
        Ok((a, bind(b)?))
    }

    /// The online CPUs.
    fn online_cpus() -> impl Iterator<Item = CpuId> {
        (0..kernel::cpu::nr_cpu_ids())
            .filter_map(CpuId::from_u32)
            .filter(|cpu| online().test(*cpu))
    }

    /// Moves IRQ `irq` (one the caller holds bound) to CPU `cpu` alone, through the IRQ layer.
    fn move_irq(irq: u32, cpu: CpuId) -> Result {
        let mut one = CpumaskVar::new_zero(GFP_KERNEL)?;
        one.set(cpu);
        // SAFETY: The caller keeps `irq` bound; `one` outlives the call.
        to_result(unsafe { bindings::irq_set_affinity(irq, one.as_raw()) })
    }

    /// The vCPU Xen notifies of port `port`'s events (`EVTCHNOP_status`).
    fn notified_vcpu(port: u32) -> Result<u32> {
        port_status(port).map(|status| status.vcpu)
    }

    /// The channel counts of all CPUs.
    fn counts() -> [i32; bindings::NR_CPUS as usize] {
        core::array::from_fn(|cpu| CHANNELS_ON_CPU[cpu].load(Relaxed))
    }

    #[test]
    fn a_channel_follows_its_irq_to_each_online_cpu() -> Result {
        if !on_xen_smp() {
            return Ok(());
        }
        let (a, b) = loopback()?;
        // SAFETY: `a`'s IRQ stays bound while `a` lives.
        let port = unsafe { bindings::xen_evtchn_from_irq(a.irq()) };
        let mut sent = 0;
        // Twice round, so that each CPU is left as well as reached.
        for cpu in Iterator::chain(online_cpus(), online_cpus()) {
            move_irq(a.irq(), cpu)?;
            // The port is bound there, counted there, and the IRQ says so.
            // SAFETY: `port` stays bound while `a` lives.
            assert_eq!(unsafe { bindings::cpu_from_evtchn(port) }, cpu.as_u32());
            let i = info(a.irq());
            // SAFETY: `i` lives while `a` does; nothing else moves the test's IRQ.
            unsafe {
                assert_eq!(u32::from((*i).cpu), cpu.as_u32());
                assert_eq!((*i).is_accounted, 1);
            }
            // Xen notifies that CPU's vCPU: the channel was rebound, not only recorded. (With
            // 2-level, an event sent to another vCPU is still handled on the right CPU, at that
            // CPU's next upcall, so the handler's CPU below does not show it.)
            assert_eq!(notified_vcpu(port)?, xen_vcpu(cpu));
            // SAFETY: `a`'s IRQ has a descriptor while it is bound.
            let effective = unsafe {
                Cpumask::from_raw(bindings::irq_data_get_effective_affinity_mask(
                    bindings::irq_get_irq_data(a.irq()),
                ))
            };
            assert_eq!(effective.weight(), 1);
            assert!(effective.test(cpu));
            // An event sent to it is handled there.
            b.notify();
            sent += 1;
            assert!(wait_for(&a, sent));
            assert_eq!(a.handler().cpu.load(Relaxed), cpu.as_u32());
        }
        Ok(())
    }

    #[test]
    fn the_online_cpu_with_fewest_channels_is_chosen() -> Result {
        if !on_xen_smp() {
            return Ok(());
        }
        // Far more than the channels a domain binds, so that bindings elsewhere meanwhile cannot
        // change the order; added to and taken from the live counts, which keeps their changes.
        const LOAD: i32 = 1 << 20;
        let mut all = CpumaskVar::new_zero(GFP_KERNEL)?;
        let empty = CpumaskVar::new_zero(GFP_KERNEL)?;
        let mut one = CpumaskVar::new_zero(GFP_KERNEL)?;
        for cpu in online_cpus() {
            all.set(cpu);
        }
        for idle in online_cpus() {
            let others = || online_cpus().filter(move |cpu| *cpu != idle);
            for cpu in others() {
                CHANNELS_ON_CPU[cpu.as_u32() as usize].fetch_add(LOAD, Full);
            }
            // The least loaded of the mask, or of all online CPUs if the mask has none.
            let chosen = (select_target_cpu(&all), select_target_cpu(&empty));
            // A mask of one CPU gets that CPU, however loaded.
            let mut single = [None; bindings::NR_CPUS as usize];
            for cpu in others() {
                one.set(cpu);
                single[cpu.as_u32() as usize] = Some(select_target_cpu(&one));
                one.clear(cpu);
            }
            // The loads come off before anything is asserted.
            for cpu in others() {
                CHANNELS_ON_CPU[cpu.as_u32() as usize].fetch_sub(LOAD, Full);
            }
            assert_eq!(chosen, (idle, idle));
            for cpu in others() {
                assert_eq!(single[cpu.as_u32() as usize], Some(cpu));
            }
        }
        Ok(())
    }

    #[test]
    fn channels_are_counted_once_on_their_cpu() -> Result {
        if !on_xen_smp() {
            return Ok(());
        }
        // Other CPUs bind and move channels meanwhile (frontends connecting), which changes the
        // counts; a few tries give one undisturbed.
        let mut exact = 0;
        for _ in 0..5 {
            let before = counts();
            let (a, b) = loopback()?;
            let (ia, ib) = (info(a.irq()), info(b.irq()));
            // SAFETY: The `irq_info`s live while `a` and `b` do.
            let (ca, cb) = unsafe { (usize::from((*ia).cpu), usize::from((*ib).cpu)) };
            let bound = counts();
            // Each end is counted once, on its CPU.
            let mut expected = before;
            expected[ca] += 1;
            expected[cb] += 1;
            let bound_ok = bound == expected;
            // Moving one end moves its count.
            let to = online_cpus()
                .find(|cpu| cpu.as_u32() as usize != ca)
                .ok_or(EINVAL)?;
            move_irq(a.irq(), to)?;
            let moved = counts();
            expected[ca] -= 1;
            expected[to.as_u32() as usize] += 1;
            let moved_ok = moved == expected;
            // Unbinding takes both counts away.
            drop((a, b));
            let after_ok = counts() == before;
            if bound_ok && moved_ok && after_ok {
                exact += 1;
            }
        }
        assert!(exact > 0);
        Ok(())
    }

    /// A VIRQ handler that is never meant to run.
    ///
    /// # Safety
    ///
    /// None needed: it uses neither argument. (The IRQ layer calls it.)
    unsafe extern "C" fn no_handler(_irq: c_int, _data: *mut c_void) -> bindings::irqreturn_t {
        bindings::irqreturn::IRQ_NONE
    }

    /// The IRQ of VIRQ `virq` on each CPU, from the core's per-CPU table.
    /// (-1 for CPU numbers past `nr_cpu_ids`, which have no table).
    fn virq_table(virq: u32) -> [c_int; bindings::NR_CPUS as usize] {
        core::array::from_fn(|cpu| {
            let cpu = cpu as c_uint;
            if cpu >= kernel::cpu::nr_cpu_ids() {
                return -1;
            }
            let mut port = 0;
            // SAFETY: `cpu` is a possible CPU, `virq` below `NR_VIRQS`; the port goes to a local.
            unsafe { bindings::irq_evtchn_from_virq(cpu, virq, &raw mut port) }
        })
    }

    #[test]
    fn a_global_virq_moves_in_the_virq_table_with_its_channel() -> Result {
        if !on_xen_smp() {
            return Ok(());
        }
        // The trace buffer's VIRQ: global (it can be moved), and bound by nothing else while
        // the tests run (xentrace is not started). Bound on CPU 0; starting the IRQ may have
        // moved it already.
        let virq = bindings::VIRQ_TBUF;
        // SAFETY: `no_handler` is a valid handler for any IRQ; the name is static.
        let irq = unsafe {
            bindings::bind_virq_to_irqhandler(
                virq,
                0,
                Some(no_handler),
                0,
                c"rust-xen-affinity-virq".as_char_ptr(),
                core::ptr::null_mut(),
            )
        };
        to_result(irq)?;
        let irq = irq as u32;
        let test = || -> Result {
            for cpu in Iterator::chain(online_cpus(), online_cpus()) {
                move_irq(irq, cpu)?;
                let table = virq_table(virq);
                for (other, entry) in table.iter().enumerate() {
                    let expected = if other == cpu.as_u32() as usize {
                        irq as c_int
                    } else {
                        -1
                    };
                    assert_eq!(*entry, expected);
                }
                // SAFETY: The VIRQ's port stays bound while its IRQ is.
                let port = unsafe { bindings::xen_evtchn_from_irq(irq) };
                // SAFETY: As above.
                assert_eq!(unsafe { bindings::cpu_from_evtchn(port) }, cpu.as_u32());
                assert_eq!(notified_vcpu(port)?, xen_vcpu(cpu));
            }
            Ok(())
        };
        let result = test();
        // SAFETY: The IRQ was bound above with a null `dev_id`.
        unsafe { bindings::unbind_from_irqhandler(irq, core::ptr::null_mut()) };
        // Unbinding clears its entry, on the CPU it was moved to last.
        assert!(virq_table(virq).iter().all(|entry| *entry == -1));
        result
    }
}
