// SPDX-License-Identifier: GPL-2.0

//! VIRQs and IPIs of the Xen event channel core, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_virq_ipi.c` when `XEN_EVENTS_RUST` is set. A
//! VIRQ (a virtual interrupt from Xen: the timer, the console, ...) or an IPI of a CPU is bound to
//! a port of Xen's choosing, and the port to an IRQ, once per CPU; per-cpu tables (defined in
//! `virq-ipi-glue.c`, as 7.3's kernel crate has no per-cpu support) find the IRQ of each, and for
//! IPIs the port:
//!
//! - [`bind_virq_to_irq`] binds VIRQ `virq` of a CPU (`EVTCHNOP_bind_virq`, or the port Xen has
//!   bound it to already) to an IRQ of the `xen-percpu` chip for a per-CPU VIRQ, of the `xen-dyn`
//!   chip for another; [`bind_virq_to_irqhandler`] also requests it;
//! - [`bind_ipi_to_irqhandler`] binds an IPI of a CPU (`EVTCHNOP_bind_ipi`) to an IRQ of the
//!   `xen-percpu` chip and requests it; [`xen_send_IPI_one`] sends one;
//! - [`xen_unbind_from_irq_locked`] unbinds an IRQ of any type: it drops a reference, and with the
//!   last clears the tables, closes the channel and frees the `irq_info` after a grace period;
//! - [`xen_restore_cpu_virqs`] and [`xen_restore_cpu_ipis`] bind a CPU's VIRQs and IPIs to new
//!   ports on resume; [`irq_evtchn_from_virq`] and [`xen_virq_move_cpu`] serve the 2-level ABI's
//!   debug output and the affinity of a moved global VIRQ.
//!
//! Their C names and behaviour are kept, so their callers do not change. What differs is for
//! numbers or states C trusts:
//!
//! - a VIRQ, IPI or CPU out of range fails with `-EINVAL` (C indexes its tables with it);
//! - a VIRQ whose port Xen says is bound already, and which this domain has bound as another
//!   IRQ (a privileged process's, through `/dev/xen/evtchn`), fails with `-EEXIST`; C binds it
//!   again, taking the port from the other IRQ;
//! - a handler variant whose request fails unbinds the IRQ only if it bound it: an IRQ the VIRQ
//!   or IPI was bound to already is its owner's (C unbinds it from under the owner);
//! - a table entry is cleared only while it names the IRQ being unbound, so a failed binding on
//!   one CPU cannot clear another CPU's entry (C clears the entry of the `irq_info`'s CPU, which
//!   is CPU 0 until the binding succeeds);
//! - where C calls `BUG()` (Xen refuses an IPI's port; a table names an IRQ of another type on
//!   resume; an IPI is sent to a CPU that has none), the binding fails, or the entry is skipped,
//!   with a warning.

use core::ptr::NonNull;
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
    evtchn_op,
    mapping_lock,
    max_channels, //
};

// Messages carry the prefix of the event core's other messages.
const __LOG_PREFIX: &[u8] = b"xen:events\0";

const IRQT_VIRQ: i16 = bindings::xen_irq_type_IRQT_VIRQ as i16;
const IRQT_IPI: i16 = bindings::xen_irq_type_IRQT_IPI as i16;
const IRQT_EVTCHN: i16 = bindings::xen_irq_type_IRQT_EVTCHN as i16;
const NR_VIRQS: usize = bindings::NR_VIRQS as usize;
const NR_IPIS: usize = bindings::ipi_vector_XEN_NR_IPIS as usize;
const DOMID_SELF: u16 = bindings::DOMID_SELF as u16;
const IRQF_PERCPU: c_ulong = bindings::IRQF_PERCPU as c_ulong;
const IRQF_IPI: c_ulong = (bindings::IRQF_NO_SUSPEND
    | bindings::IRQF_FORCE_RESUME
    | bindings::IRQF_EARLY_RESUME) as c_ulong;

/// An entry of the tables that no IRQ is bound to.
const UNBOUND: c_int = -1;

/// An entry of a CPU's VIRQ or IPI table.
///
/// # Invariants
///
/// `self.0` points to an entry of a possible CPU's tables, which live for ever.
#[derive(Clone, Copy)]
struct Entry<T: Copy>(NonNull<T>);

impl<T: Copy> Entry<T> {
    /// The entry's value. Changes are made under the mapping lock (or on resume, with the other
    /// CPUs stopped), but some readers do not take it ([`xen_send_IPI_one`]): the entry is read
    /// once, as `READ_ONCE()` would.
    fn get(self) -> T {
        // SAFETY: By the type invariant, the entry is valid; it is only accessed by value.
        unsafe { self.0.as_ptr().read_volatile() }
    }

    /// Sets the entry, once (as `WRITE_ONCE()` would).
    fn set(self, value: T) {
        // SAFETY: As above.
        unsafe { self.0.as_ptr().write_volatile(value) }
    }
}

/// CPU `cpu`'s tables, if it is a possible CPU.
fn tables(cpu: c_uint) -> Option<NonNull<bindings::xen_virq_ipi_cpu>> {
    // SAFETY: Any CPU number may be passed; the result is null, or the CPU's tables.
    NonNull::new(unsafe { bindings::xen_virq_ipi_cpu(cpu) })
}

/// The entry of CPU `cpu`'s VIRQ table for VIRQ `virq`, if both are in range.
fn virq_entry(cpu: c_uint, virq: c_uint) -> Option<Entry<c_int>> {
    let virq = usize::try_from(virq).ok().filter(|&virq| virq < NR_VIRQS)?;
    let t = tables(cpu)?.as_ptr();
    // SAFETY: `t` points to a possible CPU's tables, and `virq` is within the table: the entry
    // is valid for ever (the invariant of `Entry`). No reference is made.
    Some(Entry(unsafe {
        NonNull::new_unchecked(&raw mut (*t).virq_to_irq[virq])
    }))
}

/// The entries of CPU `cpu`'s IPI tables for IPI `ipi`: its IRQ and its port, if both are in
/// range.
fn ipi_entries(cpu: c_uint, ipi: c_uint) -> Option<(Entry<c_int>, Entry<bindings::evtchn_port_t>)> {
    let ipi = usize::try_from(ipi).ok().filter(|&ipi| ipi < NR_IPIS)?;
    let t = tables(cpu)?.as_ptr();
    // SAFETY: As in `virq_entry()`.
    Some(unsafe {
        (
            Entry(NonNull::new_unchecked(&raw mut (*t).ipi_to_irq[ipi])),
            Entry(NonNull::new_unchecked(&raw mut (*t).ipi_to_evtchn[ipi])),
        )
    })
}

/// Clears `entry` if it names IRQ `irq`; whether it did.
fn clear_if(entry: Entry<c_int>, irq: c_uint) -> bool {
    if c_uint::try_from(entry.get()) == Ok(irq) {
        entry.set(UNBOUND);
        return true;
    }
    false
}

/// Xen's number of CPU `cpu`'s vCPU.
fn xen_vcpu(cpu: c_uint) -> u32 {
    // SAFETY: The callers pass a possible CPU (it has tables); its vCPU number is a per-cpu
    // variable.
    unsafe { bindings::xen_vcpu_nr(cpu as c_int) }
}

/// The IRQ of `info`, an `irq_info` the caller holds.
///
/// # Safety
///
/// `info` must be live.
unsafe fn irq_of(info: *mut bindings::irq_info) -> c_uint {
    // SAFETY: The caller's guarantee.
    unsafe { (*info).irq }
}

/// Sets up `info` as the IRQ of VIRQ `virq` of CPU `cpu` on port `evtchn` (C's
/// `xen_irq_info_virq_setup()`), named in `entry`.
///
/// # Safety
///
/// `info` must be live, unbound or VIRQ `virq`'s (on resume), and `evtchn` bound to the VIRQ;
/// the mapping lock must be held, or the other CPUs stopped (resume).
unsafe fn virq_setup(
    info: *mut bindings::irq_info,
    entry: Entry<c_int>,
    evtchn: bindings::evtchn_port_t,
    virq: c_uint,
) -> c_int {
    // SAFETY: `info` is live and the caller's to set up.
    unsafe { (*info).u.virq = virq as u16 };
    // SAFETY: As above.
    entry.set(unsafe { irq_of(info) } as c_int);
    // SAFETY: As above; the port is bound to the VIRQ.
    unsafe {
        bindings::xen_irq_info_common_setup(info, bindings::xen_irq_type_IRQT_VIRQ, evtchn, 0)
    }
}

/// Sets up `info` as the IRQ of IPI `ipi` of a CPU on port `evtchn` (C's
/// `xen_irq_info_ipi_setup()`), named in `entries`.
///
/// # Safety
///
/// As [`virq_setup`], for an IPI.
unsafe fn ipi_setup(
    info: *mut bindings::irq_info,
    (irq_entry, port_entry): (Entry<c_int>, Entry<bindings::evtchn_port_t>),
    evtchn: bindings::evtchn_port_t,
    ipi: c_uint,
) -> c_int {
    // SAFETY: `info` is live and the caller's to set up.
    unsafe { (*info).u.ipi = ipi };
    // SAFETY: As above.
    irq_entry.set(unsafe { irq_of(info) } as c_int);
    port_entry.set(evtchn);
    // SAFETY: As above; the port is bound to the IPI.
    unsafe { bindings::xen_irq_info_common_setup(info, bindings::xen_irq_type_IRQT_IPI, evtchn, 0) }
}

/// A new IRQ of `chip` with `handler`, for a VIRQ or an IPI (`name`); `None` for want of memory.
///
/// # Safety
///
/// The mapping lock must be held.
unsafe fn new_irq(
    chip: *const bindings::irq_chip,
    handler: unsafe extern "C" fn(*mut bindings::irq_desc),
    name: &'static CStr,
) -> Option<*mut bindings::irq_info> {
    // SAFETY: The mapping lock is held.
    let info = unsafe { bindings::xen_allocate_irq_dynamic() };
    if info.is_null() {
        return None;
    }
    // SAFETY: `info` is new, and its IRQ has a descriptor; the chip and the name are static, the
    // flow handler the kernel's.
    unsafe {
        bindings::irq_set_chip_and_handler_name(
            irq_of(info),
            chip,
            Some(handler),
            name.as_char_ptr(),
        )
    };
    Some(info)
}

/// Unbinds IRQ `irq`, whose `irq_info` is `info` (or null, when only its descriptor was
/// allocated): drops a reference, and with the last clears the IRQ's table entries, closes its
/// channel (unless static) and frees the `irq_info` after a grace period.
///
/// # Safety
///
/// `info` must be null or `irq`'s live `irq_info`, with no handler left; the mapping lock must
/// be held.
#[export]
pub unsafe extern "C" fn xen_unbind_from_irq_locked(info: *mut bindings::irq_info, irq: c_uint) {
    if info.is_null() {
        // SAFETY: `irq` has only a descriptor, which the caller gives up.
        unsafe { bindings::xen_irq_free_desc(irq) };
        return;
    }
    // SAFETY: `info` is live; its count changes only under the mapping lock, which is held.
    let refcnt = unsafe { (*info).refcnt };
    if refcnt > 0 {
        // SAFETY: As above.
        unsafe { (*info).refcnt = refcnt - 1 };
        if refcnt > 1 {
            return;
        }
    }
    // SAFETY: As above; under the lock its binding does not change.
    let (evtchn, ty, cpu, is_static) = unsafe {
        (
            (*info).evtchn,
            (*info).type_,
            c_uint::from((*info).cpu),
            (*info).is_static,
        )
    };
    if evtchn != 0 {
        // SAFETY: As above.
        let irq = unsafe { irq_of(info) };
        match ty {
            IRQT_VIRQ => {
                // SAFETY: As above; a VIRQ's `irq_info` holds its VIRQ number.
                let virq = c_uint::from(unsafe { (*info).u.virq });
                if let Some(entry) = virq_entry(cpu, virq) {
                    clear_if(entry, irq);
                }
            }
            IRQT_IPI => {
                // SAFETY: As above; an IPI's `irq_info` holds its IPI number.
                let ipi = unsafe { (*info).u.ipi };
                if let Some((irq_entry, port_entry)) = ipi_entries(cpu, ipi) {
                    if clear_if(irq_entry, irq) {
                        port_entry.set(0);
                    }
                }
            }
            IRQT_EVTCHN => {
                // SAFETY: As above; an event channel's `irq_info` holds its xenbus device or
                // null, and the device outlives the binding.
                let dev = unsafe { (*info).u.interdomain };
                if !dev.is_null() {
                    // SAFETY: `dev` is live; `event_channels` is an `atomic_t`.
                    unsafe { bindings::atomic_dec(&raw mut (*dev).event_channels) };
                }
            }
            _ => {}
        }
        // SAFETY: `info` is bound, and the mapping lock held.
        unsafe { bindings::xen_irq_info_cleanup(info) };
        if !is_static {
            // SAFETY: The port was this IRQ's, and is unbound now.
            unsafe { bindings::xen_evtchn_close(evtchn) };
        }
    }
    // SAFETY: `info` is unbound; nothing refers to it but RCU readers, which it outlives.
    unsafe { bindings::xen_free_irq(info) };
}

/// Undoes a binding that failed after `info` was allocated: unbinds it (closing the port if it
/// was bound), and clears `entry` if it still names the IRQ.
///
/// # Safety
///
/// As [`xen_unbind_from_irq_locked`], for a new `info`.
unsafe fn undo(info: *mut bindings::irq_info, entry: Option<Entry<c_int>>) {
    // SAFETY: The caller's guarantee.
    let irq = unsafe { irq_of(info) };
    // SAFETY: As above.
    unsafe { xen_unbind_from_irq_locked(info, irq) };
    if let Some(entry) = entry {
        clear_if(entry, irq);
    }
}

/// Warns unless IRQ `irq`, found in a table, is bound as type `ty`.
///
/// # Safety
///
/// The mapping lock must be held.
unsafe fn warn_unless_bound_as(irq: c_int, ty: i16) {
    let Ok(irq) = c_uint::try_from(irq) else {
        return;
    };
    // SAFETY: Any IRQ number may be looked up; under the lock the result is live or null.
    let info = unsafe { bindings::xen_info_for_irq(irq) };
    let bad = info.is_null() || {
        // SAFETY: As above.
        (unsafe { (*info).type_ }) != ty
    };
    kernel::warn_on!(bad);
}

/// Binds IPI `ipi` of CPU `cpu` to an IRQ of the `xen-percpu` chip, or gives the IRQ it is bound
/// to already; returns the IRQ and whether it is new.
fn bind_ipi(ipi: c_uint, cpu: c_uint) -> Result<(c_int, bool)> {
    let entries = ipi_entries(cpu, ipi).ok_or(EINVAL)?;
    let _guard = mapping_lock().lock();
    let irq = entries.0.get();
    if irq != UNBOUND {
        // SAFETY: The mapping lock is held.
        unsafe { warn_unless_bound_as(irq, IRQT_IPI) };
        return Ok((irq, false));
    }
    // SAFETY: The mapping lock is held.
    let info = unsafe {
        new_irq(
            &raw const bindings::xen_percpu_chip,
            bindings::handle_percpu_irq,
            c"ipi",
        )
    }
    .ok_or(ENOMEM)?;
    let mut bind = bindings::evtchn_bind_ipi {
        vcpu: xen_vcpu(cpu),
        port: 0,
    };
    // SAFETY: `bind` is this operation's argument.
    if let Err(e) = unsafe { evtchn_op(bindings::EVTCHNOP_bind_ipi, &mut bind) } {
        // C calls `BUG()`.
        kernel::pr_warn!("binding IPI {} of CPU {} failed: {:?}\n", ipi, cpu, e);
        // SAFETY: `info` is new and unbound; the lock is held.
        unsafe { undo(info, None) };
        return Err(e);
    }
    // SAFETY: `info` is new; the port is bound to the IPI; the lock is held.
    let ret = unsafe { ipi_setup(info, entries, bind.port, ipi) };
    if ret < 0 {
        // SAFETY: As above. This closes the port.
        unsafe { undo(info, Some(entries.0)) };
        entries.1.set(0);
        return Err(Error::from_errno(ret));
    }
    // The affinity mask shows the CPU the IPI is for.
    // SAFETY: `info` is bound; the lock is held.
    unsafe { bindings::xen_bind_evtchn_to_cpu(info, cpu, true) };
    // SAFETY: As above.
    Ok((unsafe { irq_of(info) } as c_int, true))
}

/// The port Xen has bound VIRQ `virq` of CPU `cpu` to, by asking it of each port
/// (`EVTCHNOP_status`): `-EEXIST` if it is bound on another vCPU (for a VIRQ that is not per-CPU),
/// `-ENOENT` if on none.
fn find_virq(virq: c_uint, cpu: c_uint, percpu: bool) -> Result<bindings::evtchn_port_t> {
    let vcpu = xen_vcpu(cpu);
    let mut exists = false;
    for port in 0..max_channels() {
        let mut status: bindings::evtchn_status = pin_init::zeroed();
        status.dom = DOMID_SELF;
        status.port = port;
        // SAFETY: `status` is this operation's argument.
        if unsafe { evtchn_op(bindings::EVTCHNOP_status, &mut status) }.is_err() {
            continue;
        }
        // SAFETY: The status is a VIRQ's, whose member of the union Xen wrote.
        if status.status != bindings::EVTCHNSTAT_virq || unsafe { status.u.virq } != virq {
            continue;
        }
        if status.vcpu == vcpu {
            return Ok(port);
        }
        if !percpu {
            exists = true;
        }
    }
    Err(if exists { EEXIST } else { ENOENT })
}

/// Binds VIRQ `virq` of CPU `cpu` to an IRQ, or gives the IRQ it is bound to already; returns the
/// IRQ and whether it is new.
fn bind_virq(virq: c_uint, cpu: c_uint, percpu: bool) -> Result<(c_int, bool)> {
    let entry = virq_entry(cpu, virq).ok_or(EINVAL)?;
    let _guard = mapping_lock().lock();
    let irq = entry.get();
    if irq != UNBOUND {
        // SAFETY: The mapping lock is held.
        unsafe { warn_unless_bound_as(irq, IRQT_VIRQ) };
        return Ok((irq, false));
    }
    let (chip, handler) = if percpu {
        (
            &raw const bindings::xen_percpu_chip,
            bindings::handle_percpu_irq as unsafe extern "C" fn(_),
        )
    } else {
        (
            &raw const bindings::xen_dynamic_chip,
            bindings::handle_edge_irq as unsafe extern "C" fn(_),
        )
    };
    // SAFETY: The mapping lock is held.
    let info = unsafe { new_irq(chip, handler, c"virq") }.ok_or(ENOMEM)?;
    let mut bind = bindings::evtchn_bind_virq {
        virq,
        vcpu: xen_vcpu(cpu),
        port: 0,
    };
    // SAFETY: `bind` is this operation's argument.
    let port = match unsafe { evtchn_op(bindings::EVTCHNOP_bind_virq, &mut bind) } {
        Ok(()) => Ok(bind.port),
        // Bound already, by an earlier kernel (kexec) or a process of this domain.
        Err(e) if e == EEXIST => find_virq(virq, cpu, percpu).and_then(|port| {
            // SAFETY: Any port may be looked up; the lock is held.
            if unsafe { bindings::xen_evtchn_to_info(port) }.is_null() {
                Ok(port)
            } else {
                // Bound to another IRQ of this domain, which keeps it.
                Err(EEXIST)
            }
        }),
        Err(e) => Err(e),
    };
    let port = match port {
        Ok(port) => port,
        Err(e) => {
            // SAFETY: `info` is new and unbound; the lock is held.
            unsafe { undo(info, None) };
            return Err(e);
        }
    };
    // SAFETY: `info` is new; the port is bound to the VIRQ; the lock is held.
    let ret = unsafe { virq_setup(info, entry, port, virq) };
    if ret < 0 {
        // SAFETY: As above. This closes the port.
        unsafe { undo(info, Some(entry)) };
        return Err(Error::from_errno(ret));
    }
    // A per-CPU VIRQ's affinity mask shows its CPU.
    // SAFETY: `info` is bound; the lock is held.
    unsafe { bindings::xen_bind_evtchn_to_cpu(info, cpu, percpu) };
    // SAFETY: As above.
    Ok((unsafe { irq_of(info) } as c_int, true))
}

/// Binds VIRQ `virq` of CPU `cpu` to an IRQ of the `xen-percpu` chip if `percpu`, of the `xen-dyn`
/// chip if not, or gives the IRQ it is bound to already; returns the IRQ or a negative error.
#[export]
pub extern "C" fn bind_virq_to_irq(virq: c_uint, cpu: c_uint, percpu: bool) -> c_int {
    match bind_virq(virq, cpu, percpu) {
        Ok((irq, _)) => irq,
        Err(e) => e.to_errno(),
    }
}

/// Requests IRQ `irq` of a binding with the driver's handler; unbinds it if that fails and the
/// binding was `new`. Returns the IRQ or a negative error.
///
/// # Safety
///
/// As `request_irq()`'s, for `handler`, `devname` and `dev_id`.
unsafe fn request(
    bound: Result<(c_int, bool)>,
    handler: bindings::irq_handler_t,
    irqflags: c_ulong,
    devname: *const c_char,
    dev_id: *mut c_void,
) -> c_int {
    let (irq, new) = match bound {
        Ok(bound) => bound,
        Err(e) => return e.to_errno(),
    };
    let Ok(uirq) = c_uint::try_from(irq) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `irq` is bound; the rest is the caller's guarantee.
    let ret = unsafe { bindings::request_irq(uirq, handler, irqflags, devname, dev_id) };
    if ret != 0 {
        if new {
            // SAFETY: The binding is the caller's, and its request failed: it has no handler.
            unsafe { bindings::xen_unbind_from_irq(uirq) };
        }
        return ret;
    }
    irq
}

/// [`bind_virq_to_irq`] (per-CPU if `irqflags` has `IRQF_PERCPU`), then requests the IRQ with
/// `handler`; returns the IRQ or a negative error.
///
/// # Safety
///
/// As `request_irq()`'s, for `handler`, `devname` and `dev_id`.
#[export]
pub unsafe extern "C" fn bind_virq_to_irqhandler(
    virq: c_uint,
    cpu: c_uint,
    handler: bindings::irq_handler_t,
    irqflags: c_ulong,
    devname: *const c_char,
    dev_id: *mut c_void,
) -> c_int {
    let bound = bind_virq(virq, cpu, irqflags & IRQF_PERCPU != 0);
    // SAFETY: The caller's guarantee.
    unsafe { request(bound, handler, irqflags, devname, dev_id) }
}

/// Binds IPI `ipi` of CPU `cpu` to an IRQ of the `xen-percpu` chip (or gives the IRQ it is bound
/// to already), then requests the IRQ with `handler`, kept through suspend; returns the IRQ or a
/// negative error.
///
/// # Safety
///
/// As `request_irq()`'s, for `handler`, `devname` and `dev_id`.
#[export]
pub unsafe extern "C" fn bind_ipi_to_irqhandler(
    ipi: bindings::ipi_vector,
    cpu: c_uint,
    handler: bindings::irq_handler_t,
    irqflags: c_ulong,
    devname: *const c_char,
    dev_id: *mut c_void,
) -> c_int {
    let bound = bind_ipi(ipi, cpu);
    // SAFETY: The caller's guarantee.
    unsafe { request(bound, handler, irqflags | IRQF_IPI, devname, dev_id) }
}

/// Sends IPI `vector` to CPU `cpu`: an event on the port of its IPI, or for `XEN_NMI_VECTOR` an
/// NMI (`VCPUOP_send_nmi`). Warns if the CPU has no such IPI (C calls `BUG()`).
#[export]
pub extern "C" fn xen_send_IPI_one(cpu: c_uint, vector: bindings::ipi_vector) {
    #[cfg(CONFIG_X86)]
    if vector == bindings::ipi_vector_XEN_NMI_VECTOR {
        if tables(cpu).is_none() {
            kernel::warn_on!(true);
            return;
        }
        // SAFETY: `cpu` is a possible CPU; this operation takes no argument.
        let rc = unsafe {
            bindings::HYPERVISOR_vcpu_op(
                bindings::VCPUOP_send_nmi as c_int,
                xen_vcpu(cpu) as c_int,
                core::ptr::null_mut(),
            )
        };
        if rc < 0 {
            kernel::pr_warn!("Sending nmi to CPU{} failed (rc:{})\n", cpu, rc);
        }
        return;
    }
    let port = ipi_entries(cpu, vector).map_or(0, |(_, port)| port.get());
    if kernel::warn_on!(port == 0) {
        return;
    }
    // SAFETY: The port is the IPI's, bound while its entry names it; an event on a port closed
    // meanwhile (the IPI unbound under the sender) is refused by Xen, or lost.
    unsafe { bindings::notify_remote_via_evtchn(port) };
}

/// The IRQ of VIRQ `virq` of CPU `cpu` (-1 if none), with its port in `*evtchn` (0 if none).
///
/// # Safety
///
/// `evtchn` must be valid for a write.
#[export]
pub unsafe extern "C" fn irq_evtchn_from_virq(
    cpu: c_uint,
    virq: c_uint,
    evtchn: *mut bindings::evtchn_port_t,
) -> c_int {
    let irq = virq_entry(cpu, virq).map_or(UNBOUND, Entry::get);
    let port = match c_uint::try_from(irq) {
        // SAFETY: Any IRQ number may be looked up.
        Ok(irq) => unsafe { bindings::xen_evtchn_from_irq(irq) },
        Err(_) => 0,
    };
    // SAFETY: The caller's guarantee.
    unsafe { evtchn.write(port) };
    irq
}

/// Moves VIRQ `virq`'s entry from CPU `old_cpu`'s table to CPU `cpu`'s, once its channel has been
/// moved to `cpu`.
///
/// # Safety
///
/// The mapping lock must be held, or the VIRQ's IRQ otherwise kept bound.
#[export]
pub unsafe extern "C" fn xen_virq_move_cpu(virq: c_uint, old_cpu: c_uint, cpu: c_uint) {
    let (Some(old), Some(new)) = (virq_entry(old_cpu, virq), virq_entry(cpu, virq)) else {
        kernel::warn_on!(true);
        return;
    };
    let irq = old.get();
    old.set(UNBOUND);
    new.set(irq);
}

/// The `irq_info` of IRQ `irq`, found in a table on resume, if it is bound as type `ty` with `id`
/// (a VIRQ or an IPI number); warns if not (C calls `BUG()`).
///
/// # Safety
///
/// The other CPUs must be stopped (resume), or the mapping lock held.
unsafe fn restored(irq: c_int, ty: i16, id: c_uint) -> Option<*mut bindings::irq_info> {
    let irq = c_uint::try_from(irq).ok()?;
    // SAFETY: Any IRQ number may be looked up; the result is live or null (the caller's
    // guarantee).
    let info = unsafe { bindings::xen_info_for_irq(irq) };
    // SAFETY: As above.
    let ok = !info.is_null()
        && unsafe { (*info).type_ } == ty
        && match ty {
            // SAFETY: As above; the type says which member of the union is set.
            IRQT_VIRQ => c_uint::from(unsafe { (*info).u.virq }) == id,
            // SAFETY: As above.
            _ => (unsafe { (*info).u.ipi }) == id,
        };
    if kernel::warn_on!(!ok) {
        return None;
    }
    Some(info)
}

/// Binds CPU `cpu`'s VIRQs to new ports, on resume (their IRQs and handlers are kept).
///
/// # Safety
///
/// Only on resume, with the other CPUs stopped and the ports' map cleared.
#[export]
pub unsafe extern "C" fn xen_restore_cpu_virqs(cpu: c_uint) {
    for virq in 0..NR_VIRQS as c_uint {
        let Some(entry) = virq_entry(cpu, virq) else {
            return;
        };
        let irq = entry.get();
        if irq == UNBOUND {
            continue;
        }
        // SAFETY: The caller's guarantee.
        let Some(info) = (unsafe { restored(irq, IRQT_VIRQ, virq) }) else {
            continue;
        };
        let mut bind = bindings::evtchn_bind_virq {
            virq,
            vcpu: xen_vcpu(cpu),
            port: 0,
        };
        // SAFETY: `bind` is this operation's argument.
        if let Err(e) = unsafe { evtchn_op(bindings::EVTCHNOP_bind_virq, &mut bind) } {
            kernel::pr_warn!("rebinding VIRQ {} of CPU {} failed: {:?}\n", virq, cpu, e);
            continue;
        }
        // SAFETY: `info` is the VIRQ's; the port is bound to it; the caller's guarantee.
        unsafe { virq_setup(info, entry, bind.port, virq) };
        // The affinity mask is still valid.
        // SAFETY: As above.
        unsafe { bindings::xen_bind_evtchn_to_cpu(info, cpu, false) };
    }
}

/// Binds CPU `cpu`'s IPIs to new ports, on resume (their IRQs and handlers are kept).
///
/// # Safety
///
/// As [`xen_restore_cpu_virqs`].
#[export]
pub unsafe extern "C" fn xen_restore_cpu_ipis(cpu: c_uint) {
    for ipi in 0..NR_IPIS as c_uint {
        let Some(entries) = ipi_entries(cpu, ipi) else {
            return;
        };
        let irq = entries.0.get();
        if irq == UNBOUND {
            continue;
        }
        // SAFETY: The caller's guarantee.
        let Some(info) = (unsafe { restored(irq, IRQT_IPI, ipi) }) else {
            continue;
        };
        let mut bind = bindings::evtchn_bind_ipi {
            vcpu: xen_vcpu(cpu),
            port: 0,
        };
        // SAFETY: `bind` is this operation's argument.
        if let Err(e) = unsafe { evtchn_op(bindings::EVTCHNOP_bind_ipi, &mut bind) } {
            kernel::pr_warn!("rebinding IPI {} of CPU {} failed: {:?}\n", ipi, cpu, e);
            continue;
        }
        // SAFETY: `info` is the IPI's; the port is bound to it; the caller's guarantee.
        unsafe { ipi_setup(info, entries, bind.port, ipi) };
        // The affinity mask is still valid.
        // SAFETY: As above.
        unsafe { bindings::xen_bind_evtchn_to_cpu(info, cpu, false) };
    }
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_virq_ipi)]
mod tests {
    use super::*;
    use common::kunit::{
        chip_name,
        info,
        on_xen,
        port_status,
        wait_until, //
    };
    use kernel::{
        cpu::CpuId,
        cpumask::Cpumask,
        sync::atomic::{
            Atomic,
            Full,
            Relaxed, //
        },
    };

    const NAME: &CStr = c"rust-xen-virq-ipi-kunit";
    const PERCPU_FLAGS: c_ulong = (bindings::IRQF_PERCPU | bindings::IRQF_NOBALANCING) as c_ulong;
    /// A VIRQ per vCPU that nothing else binds: Xen's profiler, which Linux no longer uses.
    const VIRQ_PERCPU: c_uint = bindings::VIRQ_XENOPROF;
    /// A global VIRQ that nothing else binds while the tests run: the trace buffer's (xentrace is
    /// not started).
    const VIRQ_GLOBAL: c_uint = bindings::VIRQ_TBUF;
    /// The IPI entry that is never bound: NMIs are sent by `VCPUOP_send_nmi`.
    const IPI_FREE: c_uint = bindings::ipi_vector_XEN_NMI_VECTOR;

    /// The online CPUs.
    fn online_cpus() -> impl Iterator<Item = c_uint> {
        // SAFETY: `__cpu_online_mask` is a kernel global that lives for ever; it is only read.
        let online = unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) };
        (0..kernel::cpu::nr_cpu_ids())
            .filter_map(CpuId::from_u32)
            .filter(|cpu| online.test(*cpu))
            .map(|cpu| cpu.as_u32())
    }

    /// Counts its events, and remembers the CPU of the last.
    struct Seen {
        n: Atomic<u32>,
        cpu: Atomic<u32>,
    }

    /// Records an event in its `dev_id`, a [`Seen`].
    ///
    /// # Safety
    ///
    /// `data` must be a live [`Seen`].
    unsafe extern "C" fn seen(_irq: c_int, data: *mut c_void) -> bindings::irqreturn_t {
        // SAFETY: The caller's guarantee.
        let seen = unsafe { &*data.cast::<Seen>() };
        seen.cpu.store(CpuId::current().as_u32(), Relaxed);
        seen.n.fetch_add(1, Full);
        bindings::irqreturn::IRQ_HANDLED
    }

    fn new_seen() -> Result<KBox<Seen>> {
        Ok(KBox::new(
            Seen {
                n: Atomic::new(0),
                cpu: Atomic::new(u32::MAX),
            },
            GFP_KERNEL,
        )?)
    }

    fn data(seen: &Seen) -> *mut c_void {
        core::ptr::from_ref(seen).cast_mut().cast()
    }

    /// The IRQ of a binding's result.
    fn irq_of_result(irq: c_int) -> Result<c_uint> {
        c_uint::try_from(irq).map_err(|_| Error::from_errno(irq))
    }

    /// Binds VIRQ `virq` of CPU `cpu` to a new port, for the test, past the event core.
    fn raw_bind_virq(virq: c_uint, cpu: c_uint) -> Result<u32> {
        let mut bind = bindings::evtchn_bind_virq {
            virq,
            vcpu: xen_vcpu(cpu),
            port: 0,
        };
        // SAFETY: `bind` is this operation's argument.
        unsafe { evtchn_op(bindings::EVTCHNOP_bind_virq, &mut bind) }?;
        Ok(bind.port)
    }

    /// Closes port `port`.
    fn close(port: u32) {
        // SAFETY: The callers pass a port of the test's, which nothing has bound.
        unsafe { bindings::xen_evtchn_close(port) };
    }

    #[test]
    fn an_ipi_is_bound_on_its_cpu_and_its_events_run_there() -> Result {
        if !on_xen() {
            return Ok(());
        }
        for cpu in online_cpus() {
            let seen_ = new_seen()?;
            // SAFETY: `seen` is a valid handler for `data(&seen_)`, which outlives the binding.
            let irq = unsafe {
                bind_ipi_to_irqhandler(
                    IPI_FREE,
                    cpu,
                    Some(seen),
                    PERCPU_FLAGS,
                    NAME.as_char_ptr(),
                    data(&seen_),
                )
            };
            let irq = irq_of_result(irq)?;
            let test = || -> Result<u32> {
                let (irq_entry, port_entry) = ipi_entries(cpu, IPI_FREE).ok_or(EINVAL)?;
                assert_eq!(irq_entry.get(), irq as c_int);
                let port = port_entry.get();
                assert_eq!(chip_name(irq), c"xen-percpu");
                let i = info(irq);
                // SAFETY: `i` lives while `irq` is bound.
                unsafe {
                    assert_eq!((*i).type_, IRQT_IPI);
                    assert_eq!((*i).u.ipi, IPI_FREE);
                    assert_eq!((*i).evtchn, port);
                    assert_eq!(c_uint::from((*i).cpu), cpu);
                }
                let status = port_status(port)?;
                assert_eq!(status.status, bindings::EVTCHNSTAT_ipi);
                assert_eq!(status.vcpu, xen_vcpu(cpu));
                // Bound already: the same IRQ, which is not the caller's.
                assert!(bind_ipi(IPI_FREE, cpu)? == (irq as c_int, false));
                // An event on its port runs the handler on its CPU.
                // SAFETY: The port is bound to the IPI.
                unsafe { bindings::notify_remote_via_evtchn(port) };
                assert!(wait_until(|| seen_.n.load(Relaxed) >= 1));
                assert_eq!(seen_.cpu.load(Relaxed), cpu);
                Ok(port)
            };
            let result = test();
            // SAFETY: The IRQ was requested above with this `dev_id`.
            unsafe { bindings::unbind_from_irqhandler(irq, data(&seen_)) };
            let port = result?;
            // Unbinding clears both entries, and closes the port.
            let (irq_entry, port_entry) = ipi_entries(cpu, IPI_FREE).ok_or(EINVAL)?;
            assert_eq!(irq_entry.get(), UNBOUND);
            assert_eq!(port_entry.get(), 0);
            assert_eq!(port_status(port)?.status, bindings::EVTCHNSTAT_closed);
        }
        Ok(())
    }

    #[test]
    fn each_online_cpu_has_its_ipis_and_is_sent_them() -> Result {
        if !on_xen() {
            return Ok(());
        }
        for cpu in online_cpus() {
            // Bound at boot (or when the CPU came up) through this crate, on every SMP guest.
            for ipi in [
                bindings::ipi_vector_XEN_RESCHEDULE_VECTOR,
                bindings::ipi_vector_XEN_CALL_FUNCTION_VECTOR,
                bindings::ipi_vector_XEN_CALL_FUNCTION_SINGLE_VECTOR,
            ] {
                let (irq_entry, port_entry) = ipi_entries(cpu, ipi).ok_or(EINVAL)?;
                let irq = irq_of_result(irq_entry.get())?;
                let port = port_entry.get();
                assert_eq!(chip_name(irq), c"xen-percpu");
                // SAFETY: The IPI's IRQ stays bound while its CPU is online.
                unsafe {
                    assert_eq!((*info(irq)).type_, IRQT_IPI);
                    assert_eq!((*info(irq)).u.ipi, ipi);
                    assert_eq!((*info(irq)).evtchn, port);
                }
                let status = port_status(port)?;
                assert_eq!(status.status, bindings::EVTCHNSTAT_ipi);
                assert_eq!(status.vcpu, xen_vcpu(cpu));
            }
            // A reschedule IPI sent is handled on its CPU: its count there rises. (Other
            // reschedules only raise it too.)
            let irq = irq_of_result(
                ipi_entries(cpu, bindings::ipi_vector_XEN_RESCHEDULE_VECTOR)
                    .ok_or(EINVAL)?
                    .0
                    .get(),
            )?;
            // SAFETY: Any IRQ and possible CPU may be asked.
            let count = || unsafe { bindings::kstat_irqs_cpu(irq, cpu as c_int) };
            let before = count();
            xen_send_IPI_one(cpu, bindings::ipi_vector_XEN_RESCHEDULE_VECTOR);
            assert!(wait_until(|| count() > before));
        }
        Ok(())
    }

    #[test]
    fn a_per_cpu_virq_is_bound_once_on_each_cpu() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // The timer's, bound at boot through this crate, ticks.
        let mut ticks = 0u64;
        for cpu in online_cpus() {
            let mut port = 0;
            // SAFETY: `port` is valid for a write.
            let irq = irq_of_result(unsafe {
                irq_evtchn_from_virq(cpu, bindings::VIRQ_TIMER, &mut port)
            })?;
            assert_eq!(chip_name(irq), c"xen-percpu");
            // SAFETY: The timer's IRQ stays bound while its CPU is online.
            unsafe {
                assert_eq!((*info(irq)).type_, IRQT_VIRQ);
                assert_eq!((*info(irq)).evtchn, port);
            }
            assert_eq!(port_status(port)?.vcpu, xen_vcpu(cpu));
            // SAFETY: Any IRQ and possible CPU may be asked.
            ticks += u64::from(unsafe { bindings::kstat_irqs_cpu(irq, cpu as c_int) });
        }
        assert!(wait_until(|| {
            let now: u64 = online_cpus()
                .map(|cpu| {
                    let mut port = 0;
                    // SAFETY: As above.
                    let irq = unsafe { irq_evtchn_from_virq(cpu, bindings::VIRQ_TIMER, &mut port) };
                    // SAFETY: As above.
                    u64::from(unsafe { bindings::kstat_irqs_cpu(irq as c_uint, cpu as c_int) })
                })
                .sum();
            now > ticks
        }));
        // A VIRQ per vCPU, bound on each online CPU: an IRQ of its own on each.
        let seen_ = new_seen()?;
        let mut irqs = KVec::new();
        let mut result = Ok(());
        for cpu in online_cpus() {
            // SAFETY: `seen` is a valid handler for `data(&seen_)`, which outlives the bindings.
            let irq = unsafe {
                bind_virq_to_irqhandler(
                    VIRQ_PERCPU,
                    cpu,
                    Some(seen),
                    PERCPU_FLAGS,
                    NAME.as_char_ptr(),
                    data(&seen_),
                )
            };
            match irq_of_result(irq) {
                Ok(irq) => irqs.push((cpu, irq), GFP_KERNEL)?,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let mut ports = KVec::new();
        for &(cpu, irq) in irqs.iter() {
            let mut port = 0;
            // SAFETY: `port` is valid for a write.
            let got = unsafe { irq_evtchn_from_virq(cpu, VIRQ_PERCPU, &mut port) };
            assert_eq!(got, irq as c_int);
            assert_eq!(chip_name(irq), c"xen-percpu");
            // SAFETY: `irq` is bound until below.
            unsafe {
                assert_eq!((*info(irq)).type_, IRQT_VIRQ);
                assert_eq!(c_uint::from((*info(irq)).u.virq), VIRQ_PERCPU);
                assert_eq!(c_uint::from((*info(irq)).cpu), cpu);
            }
            let status = port_status(port)?;
            assert_eq!(status.status, bindings::EVTCHNSTAT_virq);
            assert_eq!(status.vcpu, xen_vcpu(cpu));
            assert!(irqs.iter().filter(|(_, other)| *other == irq).count() == 1);
            // Bound already: the same IRQ.
            assert_eq!(bind_virq_to_irq(VIRQ_PERCPU, cpu, true), irq as c_int);
            ports.push((cpu, port), GFP_KERNEL)?;
        }
        for &(_, irq) in irqs.iter() {
            // SAFETY: Requested above with this `dev_id`.
            unsafe { bindings::unbind_from_irqhandler(irq, data(&seen_)) };
        }
        // Unbinding clears the entries and closes the ports.
        for &(cpu, port) in ports.iter() {
            let mut none = 1;
            // SAFETY: `none` is valid for a write.
            let got = unsafe { irq_evtchn_from_virq(cpu, VIRQ_PERCPU, &mut none) };
            assert_eq!(got, UNBOUND);
            assert_eq!(none, 0);
            assert_eq!(port_status(port)?.status, bindings::EVTCHNSTAT_closed);
        }
        result
    }

    #[test]
    fn a_virq_xen_has_bound_already_is_found_or_refused() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let entry = virq_entry(0, VIRQ_PERCPU).ok_or(EINVAL)?;
        // Bound by Xen, not by this domain's core (a kernel before kexec): found, and bound.
        let port = raw_bind_virq(VIRQ_PERCPU, 0)?;
        let irq = bind_virq_to_irq(VIRQ_PERCPU, 0, true);
        let irq = match irq_of_result(irq) {
            Ok(irq) => irq,
            Err(e) => {
                close(port);
                return Err(e);
            }
        };
        // SAFETY: `irq` is bound until below.
        assert_eq!(unsafe { (*info(irq)).evtchn }, port);
        assert_eq!(entry.get(), irq as c_int);
        // SAFETY: The test bound `irq`, with no handler.
        unsafe { bindings::xen_unbind_from_irq(irq) };
        assert_eq!(entry.get(), UNBOUND);
        assert_eq!(port_status(port)?.status, bindings::EVTCHNSTAT_closed);

        // Bound by this domain to an IRQ of its own (as `/dev/xen/evtchn` binds a process's
        // VIRQ): refused, and the other IRQ keeps the port.
        let port = raw_bind_virq(VIRQ_PERCPU, 0)?;
        // SAFETY: `port` is open and the test's.
        let other = unsafe { bindings::bind_evtchn_to_irq(port) };
        let other = match irq_of_result(other) {
            Ok(other) => other,
            Err(e) => {
                close(port);
                return Err(e);
            }
        };
        let refused = bind_virq_to_irq(VIRQ_PERCPU, 0, true);
        // SAFETY: Any port may be looked up; `other` is bound until below.
        let kept = unsafe { bindings::xen_evtchn_to_info(port) } == info(other);
        // SAFETY: The test bound `other`, with no handler; this closes the port.
        unsafe { bindings::xen_unbind_from_irq(other) };
        assert_eq!(refused, EEXIST.to_errno());
        assert!(kept);
        assert_eq!(entry.get(), UNBOUND);

        // A global VIRQ Xen has bound on another vCPU: refused, for this CPU's.
        let Some(cpu) = online_cpus().find(|&cpu| cpu != 0) else {
            return Ok(());
        };
        let port = raw_bind_virq(VIRQ_GLOBAL, 0)?;
        let mut to = bindings::evtchn_bind_vcpu {
            port,
            vcpu: xen_vcpu(cpu),
        };
        // SAFETY: `to` is this operation's argument.
        let moved = unsafe { evtchn_op(bindings::EVTCHNOP_bind_vcpu, &mut to) };
        let refused = bind_virq_to_irq(VIRQ_GLOBAL, 0, false);
        close(port);
        moved?;
        assert_eq!(refused, EEXIST.to_errno());
        assert_eq!(virq_entry(0, VIRQ_GLOBAL).map(Entry::get), Some(UNBOUND));
        Ok(())
    }

    #[test]
    fn numbers_out_of_range_bind_nothing() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let cpus = kernel::cpu::nr_cpu_ids();
        assert_eq!(
            bind_virq_to_irq(NR_VIRQS as c_uint, 0, false),
            EINVAL.to_errno()
        );
        assert_eq!(bind_virq_to_irq(VIRQ_PERCPU, cpus, true), EINVAL.to_errno());
        let seen_ = new_seen()?;
        // SAFETY: Nothing is bound, so nothing is requested.
        let ret = unsafe {
            bind_ipi_to_irqhandler(
                NR_IPIS as c_uint,
                0,
                Some(seen),
                PERCPU_FLAGS,
                NAME.as_char_ptr(),
                data(&seen_),
            )
        };
        assert_eq!(ret, EINVAL.to_errno());
        let mut port = 1;
        // SAFETY: `port` is valid for a write.
        let got = unsafe { irq_evtchn_from_virq(cpus, VIRQ_PERCPU, &mut port) };
        assert_eq!(got, UNBOUND);
        assert_eq!(port, 0);
        // A request that fails (no handler) unbinds a new binding, not one that was there.
        // SAFETY: No handler is requested.
        let ret = unsafe {
            bind_virq_to_irqhandler(
                VIRQ_PERCPU,
                0,
                None,
                PERCPU_FLAGS,
                NAME.as_char_ptr(),
                core::ptr::null_mut(),
            )
        };
        assert_eq!(ret, EINVAL.to_errno());
        assert_eq!(virq_entry(0, VIRQ_PERCPU).map(Entry::get), Some(UNBOUND));
        let irq = irq_of_result(bind_virq_to_irq(VIRQ_PERCPU, 0, true))?;
        // SAFETY: As above.
        let ret = unsafe {
            bind_virq_to_irqhandler(
                VIRQ_PERCPU,
                0,
                None,
                PERCPU_FLAGS,
                NAME.as_char_ptr(),
                core::ptr::null_mut(),
            )
        };
        let kept = virq_entry(0, VIRQ_PERCPU).map(Entry::get) == Some(irq as c_int);
        // SAFETY: The test bound `irq`, with no handler.
        unsafe { bindings::xen_unbind_from_irq(irq) };
        assert_eq!(ret, EINVAL.to_errno());
        assert!(kept);
        Ok(())
    }
}
