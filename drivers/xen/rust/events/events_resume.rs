// SPDX-License-Identifier: GPL-2.0

//! Resume and CPU bring-up of the Xen event channel core, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_resume.c` when `XEN_EVENTS_RUST` is set:
//!
//! - [`xen_irq_resume`] runs once a domain is restored (or migrated), when none of its ports
//!   exists any more: it forgets them all, keeping the IRQs, and binds each CPU's VIRQs and IPIs,
//!   and each GSI's PIRQ, to new ports;
//! - drivers then bind their own channels' IRQs to the new ports their other ends give them with
//!   [`rebind_evtchn_irq`] (the xenstore and console IRQs);
//! - [`xen_evtchn_cpu_prepare`] and [`xen_evtchn_cpu_dead`] are the CPU hotplug callbacks
//!   `xen_init_IRQ()` registers: a CPU coming up gets its late-EOI list and the ABI's per-CPU
//!   state, a CPU gone has the ABI drop what is left of it;
//! - on x86, [`xen_setup_callback_vector`] and [`xen_set_upcall_vector`] give an HVM domain, or
//!   one of its CPUs, the vector Xen raises for events (on resume and CPU bring-up, as at boot).
//!
//! Their C names and behaviour are kept, so their callers do not change. What differs is for
//! states and numbers C trusts:
//!
//! - [`rebind_evtchn_irq`] of an IRQ that is not a driver's channel (a VIRQ, IPI or PIRQ, or one
//!   not bound yet), or to a port that is mapped to an IRQ already, is refused with a message and
//!   leaves the IRQ as it was (C calls `BUG()`); of an IRQ still bound to a port (not after
//!   resume), first unmaps that port from the IRQ, leaving it open for the caller to close (C
//!   leaves it mapped to the IRQ as well); to a port the ABI cannot hold, leaves the IRQ without a
//!   port (C goes on to bind the port to a CPU and unmask it, beyond the ABI's arrays);
//! - [`xen_evtchn_cpu_prepare`], [`xen_evtchn_cpu_dead`] and [`xen_set_upcall_vector`] of a CPU
//!   number that cannot exist return `-EINVAL` (C indexes per-CPU data with it).

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint, //
    },
    prelude::*,
};

mod common;
use common::{
    for_each_info,
    mapping_lock,
    ops, //
};

// Messages carry the prefix of the event core's other messages.
const __LOG_PREFIX: &[u8] = b"xen:events\0";

const IRQT_EVTCHN: i16 = bindings::xen_irq_type_IRQT_EVTCHN as i16;

/// Whether `cpu` is a CPU number that can exist (below `nr_cpu_ids`).
fn cpu_exists(cpu: c_uint) -> bool {
    cpu < kernel::cpu::nr_cpu_ids()
}

/// Binds IRQ `irq`, a driver's channel whose port has gone (resume), to port `evtchn`, a new
/// port of the same channel: the IRQ and its handler are kept; the channel is on CPU 0 again,
/// and enabled as before.
///
/// # Safety
///
/// `irq` must be an IRQ the caller bound to an event channel and keeps bound during the call;
/// `evtchn` is an open port the IRQ then owns (unbinding the IRQ closes it).
#[export]
pub unsafe extern "C" fn rebind_evtchn_irq(evtchn: bindings::evtchn_port_t, irq: c_int) {
    let Ok(irq) = c_uint::try_from(irq) else {
        kernel::warn_on!(true);
        return;
    };
    // SAFETY: Any IRQ number may be looked up.
    let info = unsafe { bindings::xen_info_for_irq(irq) };
    if kernel::warn_on!(info.is_null()) {
        return;
    }
    // The IRQ's type is set when it is bound, and stays while the caller keeps it bound.
    // SAFETY: `info` is live while the IRQ is bound (the caller's guarantee).
    let ty = unsafe { (*info).type_ };
    if ty != IRQT_EVTCHN {
        pr_err!(
            "IRQ {} is not a driver's channel (type {}): not rebound\n",
            irq,
            ty
        );
        return;
    }

    // The new port is masked: so is the IRQ until it is bound, waiting for a running handler.
    // SAFETY: The IRQ is bound (the caller's guarantee); this may sleep.
    unsafe { bindings::disable_irq(irq) };
    let bound = {
        let _guard = mapping_lock().lock();
        // SAFETY: Any port number may be looked up; the map's entries change under the lock,
        // which is held.
        let taken = unsafe { bindings::xen_evtchn_to_info(evtchn) };
        if !taken.is_null() {
            pr_err!(
                "port {} is bound to an IRQ already: IRQ {} not rebound\n",
                evtchn,
                irq
            );
            false
        } else {
            // SAFETY: `info` is the IRQ's, live; its binding changes under the lock, held.
            unsafe {
                // Not after resume: the IRQ's old port is mapped to it still.
                if (*info).evtchn != 0 {
                    bindings::xen_irq_info_cleanup(info);
                }
            }
            // SAFETY: As above; `evtchn` is an open port (the caller's guarantee).
            // A rebound channel is counted on no xenbus device, as in C.
            let ret =
                unsafe { bindings::xen_irq_info_evtchn_setup(info, evtchn, core::ptr::null_mut()) };
            if ret < 0 {
                pr_err!("IRQ {} cannot be bound to port {}: {}\n", irq, evtchn, ret);
                // SAFETY: As above. The setup recorded the port but could not map it (the
                // port is beyond the ABI's): the IRQ is left without one, as after resume.
                unsafe { (*info).evtchn = 0 };
            }
            ret >= 0
        }
    };
    if bound {
        // SAFETY: `info`'s channel is open and mapped; the IRQ is disabled and ours to bind.
        unsafe { bindings::xen_bind_evtchn_to_cpu(info, 0, false) };
    }
    // SAFETY: Disabled above.
    unsafe { bindings::enable_irq(irq) };
}

/// Forgets every port after a restore, keeping the IRQs, and binds the CPUs' VIRQs and IPIs and
/// the GSIs' PIRQs to new ports.
///
/// # Safety
///
/// Only on resume (`xen_suspend()`), with the other CPUs stopped and interrupts off.
#[export]
pub unsafe extern "C" fn xen_irq_resume() {
    // The ABI's new event space is not live yet.
    if let Some(resume) = ops().resume {
        // SAFETY: Every ABI's `resume` may be called on resume, which this is.
        unsafe { resume() };
    }
    // No IRQ is bound to a port any more.
    // SAFETY: The other CPUs are stopped (the caller's guarantee); each `info` is live.
    unsafe {
        for_each_info(|info| {
            (*info).evtchn = 0;
            bindings::xen_channels_on_cpu_dec(info);
        })
    };
    // SAFETY: As above: no port is bound to an IRQ.
    unsafe { bindings::xen_clear_evtchn_to_irq_all() };
    // A CPU that is not possible has no VIRQ or IPI tables: these return at once for it.
    for cpu in 0..kernel::cpu::nr_cpu_ids() {
        // SAFETY: The caller's guarantee; the map was cleared above.
        unsafe {
            bindings::xen_restore_cpu_virqs(cpu);
            bindings::xen_restore_cpu_ipis(cpu);
        }
    }
    // SAFETY: As above.
    unsafe { bindings::xen_restore_pirqs() };
}

/// The CPU hotplug callback for a CPU coming up: its late-EOI list, then the ABI's per-CPU
/// state. Returns 0 or a negative error.
#[export]
pub extern "C" fn xen_evtchn_cpu_prepare(cpu: c_uint) -> c_int {
    if !cpu_exists(cpu) {
        return EINVAL.to_errno();
    }
    // SAFETY: `cpu` exists, and is not online: nothing uses its late-EOI list.
    unsafe { bindings::xen_cpu_init_eoi(cpu) };
    match ops().percpu_init {
        // SAFETY: An ABI's `percpu_init` takes a CPU coming up.
        Some(init) => unsafe { init(cpu) },
        None => 0,
    }
}

/// The CPU hotplug callback for a CPU gone down: the ABI drops its per-CPU state. Returns 0 or
/// a negative error.
#[export]
pub extern "C" fn xen_evtchn_cpu_dead(cpu: c_uint) -> c_int {
    if !cpu_exists(cpu) {
        return EINVAL.to_errno();
    }
    match ops().percpu_deinit {
        // SAFETY: An ABI's `percpu_deinit` takes a CPU gone down.
        Some(deinit) => unsafe { deinit(cpu) },
        None => 0,
    }
}

/// Has Xen deliver events through the HVM callback vector (`HVM_PARAM_CALLBACK_IRQ`), if the
/// domain uses one; if Xen refuses, it does not any more.
///
/// Vector callbacks are better than PCI interrupts to receive events: they reach any vCPU, and
/// need neither PCI nor the APIC.
// Declared in `xen/hvm.h`, which does not go through bindgen: without `#[export]`'s check of the
// declaration, this is `void xen_setup_callback_vector(void)`.
#[cfg(CONFIG_X86)]
#[no_mangle]
pub extern "C" fn xen_setup_callback_vector() {
    // SAFETY: `xen_have_vector_callback` is a kernel global, only written at boot and on resume
    // (here), which run on one CPU.
    if !unsafe { bindings::xen_have_vector_callback } {
        return;
    }
    // SAFETY: Computes a constant.
    let via = unsafe { bindings::xen_hvm_callback_vector_via() };
    // SAFETY: Setting the callback takes any value; Xen checks it.
    if unsafe { bindings::xen_set_callback_via(via) } != 0 {
        pr_err!("Request for Xen HVM callback vector failed\n");
        // SAFETY: As above.
        unsafe { bindings::xen_have_vector_callback = false };
    }
}

/// Has Xen raise the callback vector on CPU `cpu`'s vCPU for its events
/// (`HVMOP_set_evtchn_upcall_vector`), and for CPU 0 also sets the domain's callback, so that the
/// toolstack sees the domain enlightened. Returns 0 or a negative error.
// As above: `int xen_set_upcall_vector(unsigned int cpu)`.
#[cfg(CONFIG_X86)]
#[no_mangle]
pub extern "C" fn xen_set_upcall_vector(cpu: c_uint) -> c_int {
    if !cpu_exists(cpu) {
        return EINVAL.to_errno();
    }
    // SAFETY: `cpu` exists; its Xen vCPU number is a per-cpu variable. Any vCPU number may be
    // passed to Xen, which checks it.
    let rc =
        unsafe { bindings::xen_hvm_set_evtchn_upcall_vector(bindings::xen_vcpu_nr(cpu as c_int)) };
    if rc != 0 || cpu != 0 {
        return rc;
    }
    // SAFETY: Setting the callback takes any value; Xen checks it.
    unsafe { bindings::xen_set_callback_via(1) }
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_resume)]
mod tests {
    use super::*;
    use common::{
        evtchn_op,
        kunit::{
            info,
            on_xen,
            port_status,
            wait_for,
            Bound,
            Seen, //
        },
        max_channels,
    };
    use kernel::{
        cpu::CpuId,
        cpumask::{
            Cpumask,
            CpumaskVar, //
        },
        error::to_result,
        sync::atomic::Relaxed,
        xen::events::{
            Port,
            Registration,
            DOMID_SELF, //
        },
    };

    /// A channel from this domain to itself: one end bound to a handler, the other a port to
    /// send from.
    fn loopback() -> Result<(Bound, Port)> {
        let a = Port::alloc_unbound(DOMID_SELF)?;
        let b = Port::bind_interdomain(DOMID_SELF, a.number())?;
        let a = KBox::pin_init(
            Registration::new(a, c"rust-xen-resume-kunit", Seen::new()),
            GFP_KERNEL,
        )?;
        Ok((a, b))
    }

    /// The port of IRQ `irq`, which the caller keeps bound.
    fn port(irq: u32) -> u32 {
        let i = info(irq);
        // SAFETY: `i` lives while the caller keeps `irq` bound.
        unsafe { (*i).evtchn }
    }

    /// The `irq_info` port `port` is mapped to, or null.
    fn mapped(port: u32) -> *mut bindings::irq_info {
        // SAFETY: Any port may be looked up.
        unsafe { bindings::xen_evtchn_to_info(port) }
    }

    /// How many times IRQ `irq` (bound, kept by the caller) is disabled.
    fn depth(irq: u32) -> u32 {
        // SAFETY: A bound IRQ has a descriptor, which lives while it is bound.
        unsafe { (*bindings::irq_to_desc(irq)).depth }
    }

    /// Closes port `port`, one the test opened and no IRQ owns.
    fn close(port: u32) -> Result {
        let mut close = bindings::evtchn_close { port };
        // SAFETY: `close` is this operation's argument.
        unsafe { evtchn_op(bindings::EVTCHNOP_close, &mut close) }
    }

    /// Binds IRQ `irq` to port `port` (the test's caller holds the IRQ).
    fn rebind(port: u32, irq: u32) {
        // SAFETY: The caller keeps `irq` bound; `port` is open, or the call is to be refused.
        unsafe { rebind_evtchn_irq(port, irq as c_int) };
    }

    /// The online CPUs.
    fn online() -> &'static Cpumask {
        // SAFETY: `__cpu_online_mask` is a kernel global that lives for ever; it is only read.
        unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) }
    }

    #[test]
    fn a_drivers_irq_is_rebound_to_a_new_port() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let (a, b) = loopback()?;
        let irq = a.irq();
        let old = port(irq);
        b.notify();
        assert!(wait_for(&a, 1));

        // The same channel's new port, as the other end would give it after a restore.
        let new = Port::alloc_unbound(DOMID_SELF)?;
        let b2 = Port::bind_interdomain(DOMID_SELF, new.number())?;
        let new_number = new.number();
        // The IRQ owns the port from here: unbinding it closes the port.
        core::mem::forget(new);
        rebind(new_number, irq);

        let i = info(irq);
        assert_eq!(port(irq), new_number);
        assert_eq!(mapped(new_number), i);
        // SAFETY: Any port may be looked up.
        assert_eq!(unsafe { bindings::irq_from_evtchn(new_number) }, irq);
        // SAFETY: `i` lives while `a` holds the IRQ.
        assert_eq!(unsafe { (*i).cpu }, 0);
        assert_eq!(port_status(new_number)?.vcpu, 0);
        assert_eq!(depth(irq), 0);
        // The old port is no longer the IRQ's, but still open: the caller's to close.
        assert!(mapped(old).is_null());
        assert_eq!(port_status(old)?.status, bindings::EVTCHNSTAT_interdomain);
        // Events of the new port reach the handler.
        b2.notify();
        assert!(wait_for(&a, 2));

        close(old)?;
        drop(a);
        assert_eq!(port_status(new_number)?.status, bindings::EVTCHNSTAT_closed);
        assert!(mapped(new_number).is_null());
        Ok(())
    }

    #[test]
    fn a_taken_port_or_an_irq_of_another_kind_is_refused() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let (x, xb) = loopback()?;
        let (y, yb) = loopback()?;
        let (xp, yp) = (port(x.irq()), port(y.irq()));

        // A port mapped to another IRQ: both stay as they were, and enabled.
        rebind(yp, x.irq());
        assert_eq!(port(x.irq()), xp);
        assert_eq!(port(y.irq()), yp);
        assert_eq!(mapped(xp), info(x.irq()));
        assert_eq!(mapped(yp), info(y.irq()));
        assert_eq!(depth(x.irq()), 0);
        xb.notify();
        yb.notify();
        assert!(wait_for(&x, 1));
        assert!(wait_for(&y, 1));

        // CPU 0's timer VIRQ is not a driver's channel: it keeps its port.
        let mut timer_port = 0;
        // SAFETY: `timer_port` is valid for a write.
        let timer =
            unsafe { bindings::irq_evtchn_from_virq(0, bindings::VIRQ_TIMER, &mut timer_port) };
        let timer = c_uint::try_from(timer)?;
        let spare = Port::alloc_unbound(DOMID_SELF)?;
        rebind(spare.number(), timer);
        assert_eq!(port(timer), timer_port);
        assert!(mapped(spare.number()).is_null());
        assert_eq!(depth(timer), 0);

        // A port beyond the ABI's: the IRQ is left without a port, enabled, still bound.
        let beyond = max_channels();
        rebind(beyond, x.irq());
        assert_eq!(port(x.irq()), 0);
        assert!(mapped(xp).is_null());
        assert!(mapped(beyond).is_null());
        assert_eq!(depth(x.irq()), 0);
        // SAFETY: `x` holds its IRQ.
        assert_eq!(unsafe { bindings::xen_evtchn_from_irq(x.irq()) }, 0);
        // Its old port is the caller's to close; unbinding the IRQ has no port to close.
        close(xp)?;
        drop(x);
        drop(y);
        assert_eq!(port_status(yp)?.status, bindings::EVTCHNSTAT_closed);
        Ok(())
    }

    #[test]
    fn a_cpu_that_cannot_exist_is_refused() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let nr = kernel::cpu::nr_cpu_ids();
        assert_eq!(xen_evtchn_cpu_prepare(nr), EINVAL.to_errno());
        assert_eq!(xen_evtchn_cpu_dead(nr), EINVAL.to_errno());
        assert_eq!(xen_evtchn_cpu_prepare(c_uint::MAX), EINVAL.to_errno());
        #[cfg(CONFIG_X86)]
        assert_eq!(xen_set_upcall_vector(nr), EINVAL.to_errno());
        Ok(())
    }

    #[test]
    fn a_cpu_goes_down_and_comes_back_with_its_events() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let Some(cpu1) = CpuId::from_u32(1).filter(|cpu| online().test(*cpu)) else {
            // SAFETY: The reason is NUL-terminated; this runs in a KUnit test.
            unsafe { bindings::xen_kunit_skip(c"needs CPU 1 online".as_char_ptr()) };
            return Ok(());
        };
        // Down: the hotplug callbacks of the event core run (`xen_evtchn_cpu_dead()`), and
        // the IRQs on CPU 1 move off it.
        // SAFETY: Any task that may sleep may ask for a CPU to go down; the kernel moves the task
        // off it first, or refuses.
        to_result(unsafe { bindings::remove_cpu(1) })?;
        let down = !online().test(cpu1);
        // Up again (`xen_evtchn_cpu_prepare()`): given its late-EOI list and the ABI's state.
        // SAFETY: As above, for a CPU to come up.
        let up = to_result(unsafe { bindings::add_cpu(1) });
        assert!(down);
        up?;
        assert!(online().test(cpu1));

        // A channel moved onto CPU 1 has its events there.
        let (a, b) = loopback()?;
        let mut one = CpumaskVar::new_zero(GFP_KERNEL)?;
        one.set(cpu1);
        // SAFETY: `a` holds its IRQ; `one` outlives the call.
        to_result(unsafe { bindings::irq_set_affinity(a.irq(), one.as_raw()) })?;
        assert_eq!(port_status(port(a.irq()))?.vcpu, 1);
        b.notify();
        assert!(wait_for(&a, 1));
        assert_eq!(a.handler().cpu.load(Relaxed), 1);
        Ok(())
    }
}
