// SPDX-License-Identifier: GPL-2.0

//! Physical IRQs (PIRQs) of the Xen event channel core, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_pirq.c` when `XEN_EVENTS_RUST` is set. A GSI or
//! an MSI of a device, mapped by Xen to a PIRQ of this domain (`PHYSDEVOP_map_pirq`, done by the
//! caller), is bound to an IRQ of the `xen-pirq` chip; its port is bound (`EVTCHNOP_bind_pirq`)
//! only when the IRQ starts up, and closed when it shuts down:
//!
//! - [`xen_bind_pirq_gsi_to_irq`] binds a GSI's PIRQ (dom0's legacy IRQs and ACPI SCI at boot,
//!   pcifront's devices in a domU), [`xen_bind_pirq_msi_to_irq`] a device's MSIs (built with
//!   `PCI_MSI`), [`xen_destroy_irq`] unmaps and frees either; [`xen_irq_from_gsi`] and
//!   [`xen_pirq_from_irq`] look them up;
//! - the chip's EOI tells Xen a level-triggered PIRQ's handler is done (`PHYSDEVOP_eoi`) unless
//!   it needs none: a PV domain learns which do from a page shared with Xen, the PIRQ EOI map
//!   ([`xen_pirq_init_eoi_map`]), others from `PHYSDEVOP_irq_status_query` at startup;
//! - [`xen_restore_pirqs`] maps the GSIs again on resume and starts their IRQs up.
//!
//! Their C names and behaviour are kept, so their callers do not change. What differs is for
//! numbers or states C trusts:
//!
//! - a GSI or PIRQ that does not fit the `irq_info` (16 bits) is refused with `-EINVAL` (C
//!   truncates it), and a PIRQ beyond the EOI map's page falls back to the status Xen gave at
//!   startup (C reads past the page);
//! - [`xen_pirq_from_irq`] and [`xen_destroy_irq`] of an IRQ that is not a PIRQ return `-EINVAL`
//!   (C calls `BUG()`, or reads another type's `irq_info` as a PIRQ's);
//! - [`xen_destroy_irq`] returns 0 once it has freed the IRQ (C returns `-ENOENT` in a domU, and
//!   `-ESRCH` when the domain the PIRQ was mapped for has gone, though it freed the IRQ), and
//!   closes the port of an IRQ still started (C frees the `irq_info` under the port's map entry);
//! - [`xen_irq_from_gsi`] walks the list of `irq_info`s under the mapping lock (C walks it
//!   unlocked), and [`xen_restore_pirqs`] reads the next entry before it frees one (C reads the
//!   freed entry's poisoned link);
//! - a startup whose port cannot be set up unmaps the port before closing it (C leaves the IRQ
//!   naming the closed port); where C calls `BUG()` (a chip operation on an IRQ that is not a
//!   PIRQ), nothing is done; a GSI binding that cannot allocate its IRQ fails with `-ENOMEM` (C
//!   returns -1).

use core::ptr;
use kernel::{
    bindings,
    cpumask::Cpumask,
    ffi::{
        c_char,
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    irq::chip::{
        AffinitySet,
        Chip,
        ChipVtable,
        IrqData, //
    },
    prelude::*,
    sync::atomic::{
        Acquire,
        Atomic,
        Relaxed,
        Release, //
    },
};

mod common;
use common::{
    evtchn_op,
    for_each_info,
    mapping_lock,
    ops,
    LocalModule, //
};

// Messages carry the prefix of the event core's other messages.
const __LOG_PREFIX: &[u8] = b"xen:events\0";

const IRQT_PIRQ: i16 = bindings::xen_irq_type_IRQT_PIRQ as i16;
const DOMID_SELF: u16 = bindings::DOMID_SELF as u16;
const EXPLICIT: u8 = bindings::EVT_MASK_REASON_EXPLICIT as u8;

/// `irq_info::u.pirq.flags`: Xen wants an EOI (from `PHYSDEVOP_irq_status_query`).
const PIRQ_NEEDS_EOI: u8 = 1 << 0;
/// The PIRQ may be shared with another domain (it is level-triggered).
const PIRQ_SHAREABLE: u8 = 1 << 1;
/// An MSI of a group after the first: the group is unmapped with the first.
const PIRQ_MSI_GROUP: u8 = 1 << 2;

/// What [`xen_irq_from_gsi`] returns for a GSI without an IRQ.
const NO_IRQ: c_int = -1;

/// The bits of the PIRQ EOI map: one page.
const EOI_MAP_WORDS: usize = 4096 / core::mem::size_of::<c_ulong>();
const BITS_PER_WORD: usize = c_ulong::BITS as usize;

/// The page of the PIRQ EOI map: a bit per PIRQ, set by Xen while the PIRQ needs an EOI.
#[repr(C, align(4096))]
#[derive(pin_init::Zeroable)]
struct EoiMap([c_ulong; EOI_MAP_WORDS]);

/// The PIRQ EOI map Xen writes (PV), once registered; null before, or if Xen refused it. Never
/// freed once set.
static EOI_MAP: Atomic<*mut EoiMap> = Atomic::new(ptr::null_mut());

/// A physical operation on `arg`; 0 or a negative error, as Xen returns it.
///
/// # Safety
///
/// `arg` must be the argument structure of operation `cmd`.
unsafe fn physdev_op<T>(cmd: u32, arg: &mut T) -> c_int {
    // SAFETY: The caller's guarantee; `arg` outlives the call.
    unsafe { bindings::HYPERVISOR_physdev_op(cmd as c_int, ptr::from_mut(arg).cast()) }
}

/// IRQ `irq`'s `irq_info`, if it has one and it is a PIRQ's.
///
/// # Safety
///
/// The caller keeps the IRQ bound for as long as it uses the result (it holds the mapping lock,
/// or the IRQ's descriptor lock in a chip operation).
unsafe fn pirq_info(irq: c_uint) -> Option<*mut bindings::irq_info> {
    // SAFETY: Any IRQ number may be looked up.
    let info = unsafe { bindings::xen_info_for_irq(irq) };
    // SAFETY: A non-null `info` is live (the caller's guarantee).
    (!info.is_null() && unsafe { (*info).type_ } == IRQT_PIRQ).then_some(info)
}

/// The PIRQ of `info`.
///
/// # Safety
///
/// `info` must be a live PIRQ's `irq_info`.
unsafe fn pirq_of(info: *mut bindings::irq_info) -> u16 {
    // SAFETY: The caller's guarantee; a PIRQ's `irq_info` holds its PIRQ.
    unsafe { (*info).u.pirq.pirq }
}

/// Whether Xen wants an EOI for `info`'s PIRQ: its bit in the EOI map, once registered (if the
/// PIRQ is within the page); else what `PHYSDEVOP_irq_status_query` said at startup.
///
/// # Safety
///
/// As [`pirq_of`].
unsafe fn needs_eoi(info: *mut bindings::irq_info) -> bool {
    // SAFETY: The caller's guarantee.
    let pirq = usize::from(unsafe { pirq_of(info) });
    let map = EOI_MAP.load(Acquire);
    if !map.is_null() && pirq / BITS_PER_WORD < EOI_MAP_WORDS {
        // SAFETY: Once set, the map is a live page that is never freed; the word is within it.
        // Xen changes its bits at any time (atomically), so it is read atomically.
        let word = unsafe {
            Atomic::<c_ulong>::from_ptr(&raw mut (*map).0[pirq / BITS_PER_WORD]).load(Relaxed)
        };
        return word & (1 << (pirq % BITS_PER_WORD)) != 0;
    }
    // SAFETY: As above; the flags change only at startup, which the IRQ layer serialises with
    // the chip's other operations.
    (unsafe { (*info).u.pirq.flags }) & PIRQ_NEEDS_EOI != 0
}

/// Asks Xen whether `info`'s PIRQ needs an EOI, and records it in its flags.
///
/// # Safety
///
/// `info` must be a live PIRQ's `irq_info`, being bound or started up (its flags are not
/// changed meanwhile).
unsafe fn query_unmask(info: *mut bindings::irq_info) {
    let mut status = bindings::physdev_irq_status_query {
        // SAFETY: The caller's guarantee.
        irq: u32::from(unsafe { pirq_of(info) }),
        flags: 0,
    };
    // SAFETY: `status` is this operation's argument.
    if unsafe { physdev_op(bindings::PHYSDEVOP_irq_status_query, &mut status) } != 0 {
        status.flags = 0;
    }
    // SAFETY: The caller's guarantee.
    let flags = unsafe { &mut (*info).u.pirq.flags };
    *flags &= !PIRQ_NEEDS_EOI;
    if status.flags & bindings::XENIRQSTAT_needs_eoi != 0 {
        *flags |= PIRQ_NEEDS_EOI;
    }
}

/// Ends the event of `info`'s PIRQ, if it is started: clears it, and tells Xen if it wants an
/// EOI.
///
/// # Safety
///
/// As [`pirq_of`].
unsafe fn eoi(info: *mut bindings::irq_info) {
    // SAFETY: The caller's guarantee.
    if unsafe { (*info).evtchn } == 0 {
        return;
    }
    // SAFETY: As above.
    unsafe { bindings::xen_event_handler_exit(info) };
    // SAFETY: As above.
    if unsafe { needs_eoi(info) } {
        let mut eoi = bindings::physdev_eoi {
            // SAFETY: As above.
            irq: u32::from(unsafe { pirq_of(info) }),
        };
        // SAFETY: `eoi` is this operation's argument.
        let rc = unsafe { physdev_op(bindings::PHYSDEVOP_eoi, &mut eoi) };
        kernel::warn_on!(rc != 0);
    }
}

/// Binds `info`'s PIRQ to a port unless it has one, then unmasks the port and ends any event
/// pending. Failures are reported, not returned: the IRQ layer's startup cannot fail.
///
/// # Safety
///
/// `info` must be a live PIRQ's `irq_info`, whose IRQ is being started up (under its descriptor
/// lock), or resumed.
unsafe fn startup(info: *mut bindings::irq_info) {
    // SAFETY: The caller's guarantee.
    let (port, irq, flags) = unsafe { ((*info).evtchn, (*info).irq, (*info).u.pirq.flags) };
    if port == 0 {
        let mut bind = bindings::evtchn_bind_pirq {
            // SAFETY: The caller's guarantee.
            pirq: u32::from(unsafe { pirq_of(info) }),
            // Shared unless probing.
            flags: if flags & PIRQ_SHAREABLE != 0 {
                bindings::BIND_PIRQ__WILL_SHARE
            } else {
                0
            },
            port: 0,
        };
        // SAFETY: `bind` is this operation's argument.
        if unsafe { evtchn_op(bindings::EVTCHNOP_bind_pirq, &mut bind) }.is_err() {
            pr_warn!("Failed to obtain physical IRQ {}\n", irq);
            return;
        }
        let port = bind.port;
        // SAFETY: The caller's guarantee.
        unsafe { query_unmask(info) };
        // SAFETY: `irq` has a descriptor and this `irq_info`; the IRQ's binding is the caller's.
        let rc = unsafe { bindings::xen_set_evtchn_to_irq(port, irq) };
        if rc != 0 {
            pr_err!("irq{}: Failed to set port to irq mapping ({})\n", irq, rc);
            // SAFETY: The port was bound above, and is not mapped.
            unsafe { bindings::xen_evtchn_close(port) };
            return;
        }
        // SAFETY: As above; the port is mapped to the IRQ.
        unsafe {
            (*info).evtchn = port;
            bindings::xen_bind_evtchn_to_cpu(info, 0, false);
        }
        let rc = match ops().setup {
            // SAFETY: `port` is open and bound to this IRQ.
            Some(setup) => unsafe { setup(port) },
            None => 0,
        };
        if rc != 0 {
            pr_err!("irq{}: Failed to set port to irq mapping ({})\n", irq, rc);
            // SAFETY: `info` is bound to `port`, which is closed once unmapped.
            unsafe {
                bindings::xen_irq_info_cleanup(info);
                bindings::xen_evtchn_close(port);
            }
            return;
        }
    }
    // SAFETY: `info` is bound, so its lock is initialised.
    unsafe { bindings::xen_irq_do_unmask(info, EXPLICIT) };
    // SAFETY: The caller's guarantee.
    unsafe { eoi(info) };
}

/// `xen-pirq`: the chip of PIRQs. Their ports are bound when they start up; masking and moving
/// them are the event channels' (`events_irqchip`, `events_affinity`).
struct Pirq;

/// The PIRQ `irq_info` of the IRQ a chip operation is called for.
fn chip_info(irq: &IrqData) -> Option<*mut bindings::irq_info> {
    // SAFETY: The chip's operations run with the IRQ's descriptor lock held (or the IRQ otherwise
    // serialised), so an `irq_info` found stays alive throughout.
    unsafe { pirq_info(irq.irq()) }
}

#[vtable]
impl Chip for Pirq {
    const NAME: &'static CStr = c"xen-pirq";

    fn startup(irq: &IrqData) -> u32 {
        if let Some(info) = chip_info(irq) {
            // SAFETY: `info` is alive (see `chip_info`), and its IRQ starting up.
            unsafe { startup(info) };
        }
        0
    }

    fn shutdown(irq: &IrqData) {
        let Some(info) = chip_info(irq) else {
            return;
        };
        // SAFETY: `info` is alive (see `chip_info`).
        let port = unsafe { (*info).evtchn };
        if port == 0 {
            return;
        }
        // SAFETY: As above; `info` is bound to `port`, which is closed once unmapped.
        unsafe {
            bindings::xen_irq_do_mask(info, EXPLICIT);
            bindings::xen_irq_info_cleanup(info);
            bindings::xen_evtchn_close(port);
        }
    }

    fn enable(irq: &IrqData) {
        // SAFETY: `irq` is the IRQ layer's, valid for the call.
        unsafe { bindings::xen_enable_dynirq(irq.as_raw()) };
    }

    fn disable(irq: &IrqData) {
        // SAFETY: As above.
        unsafe { bindings::xen_disable_dynirq(irq.as_raw()) };
    }

    fn mask(irq: &IrqData) {
        // SAFETY: As above.
        unsafe { bindings::xen_disable_dynirq(irq.as_raw()) };
    }

    fn unmask(irq: &IrqData) {
        // SAFETY: As above.
        unsafe { bindings::xen_enable_dynirq(irq.as_raw()) };
    }

    fn ack(irq: &IrqData) {
        if let Some(info) = chip_info(irq) {
            // SAFETY: `info` is alive (see `chip_info`).
            unsafe { eoi(info) };
        }
    }

    fn eoi(irq: &IrqData) {
        Self::ack(irq);
    }

    fn mask_ack(irq: &IrqData) {
        if let Some(info) = chip_info(irq) {
            // SAFETY: `info` is alive (see `chip_info`).
            unsafe {
                bindings::xen_do_disable_dynirq(info);
                eoi(info);
            }
        }
    }

    fn set_affinity(irq: &IrqData, dest: &Cpumask, force: bool) -> Result<AffinitySet> {
        // SAFETY: The IRQ layer's `irq_data` and cpumask are valid for the call.
        let ret = unsafe { bindings::xen_set_affinity_irq(irq.as_raw(), dest.as_raw(), force) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(AffinitySet::Ok)
    }

    fn retrigger(irq: &IrqData) -> bool {
        // SAFETY: As in `enable`.
        (unsafe { bindings::xen_retrigger_dynirq(irq.as_raw()) }) != 0
    }
}

static PIRQ_CHIP: ChipVtable = ChipVtable::new::<Pirq>();

/// Sets up new `info` as PIRQ `pirq` (of GSI `gsi`, or 0 for an MSI) of domain `domid`, without
/// a port.
///
/// # Safety
///
/// `info` must be new and unbound; the mapping lock must be held.
unsafe fn pirq_setup(
    info: *mut bindings::irq_info,
    pirq: u16,
    gsi: u16,
    domid: u16,
    flags: u8,
) -> c_int {
    // SAFETY: The caller's guarantee.
    unsafe {
        (*info).u.pirq.pirq = pirq;
        (*info).u.pirq.gsi = gsi;
        (*info).u.pirq.domid = domid;
        (*info).u.pirq.flags = flags;
        bindings::xen_irq_info_common_setup(info, bindings::xen_irq_type_IRQT_PIRQ, 0, 0)
    }
}

/// The IRQ GSI `gsi` is bound to, or [`NO_IRQ`].
///
/// # Safety
///
/// The mapping lock must be held.
unsafe fn irq_from_gsi(gsi: c_uint) -> c_int {
    let mut found = NO_IRQ;
    let check = |info: *mut bindings::irq_info| {
        // SAFETY: `info` is live under the lock; a PIRQ's holds its GSI.
        let (ty, g, irq) = unsafe { ((*info).type_, (*info).u.pirq.gsi, (*info).irq) };
        if found == NO_IRQ && ty == IRQT_PIRQ && c_uint::from(g) == gsi {
            found = c_int::try_from(irq).unwrap_or(NO_IRQ);
        }
    };
    // SAFETY: The lock is held.
    unsafe { for_each_info(check) };
    found
}

/// The IRQ GSI `gsi` is bound to, or -1.
#[export]
pub extern "C" fn xen_irq_from_gsi(gsi: c_uint) -> c_int {
    let _guard = mapping_lock().lock();
    // SAFETY: The lock is held.
    unsafe { irq_from_gsi(gsi) }
}

/// Binds PIRQ `pirq` of GSI `gsi` (mapped by the caller) to an IRQ of the `xen-pirq` chip, or
/// gives the IRQ the GSI is bound to already; a `shareable` one is level-triggered (ends with an
/// EOI), another edge-triggered. Its port is bound when the IRQ starts up. Returns the IRQ or a
/// negative error.
///
/// # Safety
///
/// `name` must be a string that outlives the binding (the IRQ's handler name keeps it).
#[export]
pub unsafe extern "C" fn xen_bind_pirq_gsi_to_irq(
    gsi: c_uint,
    pirq: c_uint,
    shareable: c_int,
    name: *mut c_char,
) -> c_int {
    let (Ok(gsi16), Ok(pirq16)) = (u16::try_from(gsi), u16::try_from(pirq)) else {
        return EINVAL.to_errno();
    };
    let _guard = mapping_lock().lock();
    // SAFETY: The lock is held.
    let irq = unsafe { irq_from_gsi(gsi) };
    if irq != NO_IRQ {
        pr_info!(
            "xen_bind_pirq_gsi_to_irq: returning irq {} for gsi {}\n",
            irq,
            gsi
        );
        return irq;
    }
    // SAFETY: The lock is held; the GSI has no IRQ yet.
    let info = unsafe { bindings::xen_allocate_irq_gsi(gsi) };
    if info.is_null() {
        return ENOMEM.to_errno();
    }
    // SAFETY: `info` is new.
    let irq = unsafe { (*info).irq };
    // Only dom0 allocates the vector; a domU's pcifront has dom0 do it.
    // SAFETY: This only reads how the domain was started.
    if unsafe { bindings::xen_initial_domain() } {
        let mut op = bindings::physdev_irq { irq, vector: 0 };
        // SAFETY: `op` is this operation's argument.
        if unsafe { physdev_op(bindings::PHYSDEVOP_alloc_irq_vector, &mut op) } != 0 {
            // SAFETY: `info` is new and unbound; the lock is held.
            unsafe { bindings::xen_free_irq(info) };
            return ENOSPC.to_errno();
        }
    }
    let flags = if shareable != 0 { PIRQ_SHAREABLE } else { 0 };
    // SAFETY: `info` is new; the lock is held.
    let ret = unsafe { pirq_setup(info, pirq16, gsi16, DOMID_SELF, flags) };
    if ret < 0 {
        // SAFETY: As above; nothing else refers to `info`.
        unsafe { bindings::xen_unbind_from_irq_locked(info, irq) };
        return ret;
    }
    // SAFETY: `info` is a PIRQ's, being bound.
    unsafe { query_unmask(info) };
    // Xen does not deliver a PIRQ again before its EOI, whether it is level- or edge-triggered,
    // so the level-triggered ones take the fasteoi flow, as natively.
    let handler = if shareable != 0 {
        bindings::handle_fasteoi_irq as unsafe extern "C" fn(_)
    } else {
        bindings::handle_edge_irq as unsafe extern "C" fn(_)
    };
    // SAFETY: `irq` has a descriptor; the chip is static, the flow handler the kernel's, the name
    // the caller's to keep.
    unsafe {
        bindings::irq_set_chip_and_handler_name(irq, PIRQ_CHIP.as_raw(), Some(handler), name)
    };
    irq as c_int
}

/// A free PIRQ for an MSI of `dev` (`PHYSDEVOP_get_free_pirq`), or -1.
#[cfg(CONFIG_PCI_MSI)]
#[export]
pub extern "C" fn xen_allocate_pirq_msi(
    _dev: *mut bindings::pci_dev,
    _msidesc: *mut bindings::msi_desc,
) -> c_int {
    let mut op = bindings::physdev_get_free_pirq {
        type_: bindings::MAP_PIRQ_TYPE_MSI as c_int,
        pirq: 0,
    };
    // SAFETY: `op` is this operation's argument.
    let rc = unsafe { physdev_op(bindings::PHYSDEVOP_get_free_pirq, &mut op) };
    if rc == ENOSYS.to_errno() {
        kernel::pr_warn_once!(
            "hypervisor does not support the PHYSDEVOP_get_free_pirq interface\n"
        );
    }
    if rc != 0 {
        return NO_IRQ;
    }
    c_int::try_from(op.pirq).unwrap_or(NO_IRQ)
}

/// Binds PIRQs `pirq` to `pirq + nvec - 1` of domain `domid`, the MSIs of `msidesc` (mapped by
/// the caller), to `nvec` consecutive new IRQs of the `xen-pirq` chip; returns the first or a
/// negative error.
///
/// # Safety
///
/// `msidesc` must be a live MSI descriptor (or null), and `name` a string that outlives the
/// binding.
#[cfg(CONFIG_PCI_MSI)]
#[export]
pub unsafe extern "C" fn xen_bind_pirq_msi_to_irq(
    _dev: *mut bindings::pci_dev,
    msidesc: *mut bindings::msi_desc,
    pirq: c_int,
    nvec: c_int,
    name: *const c_char,
    domid: bindings::domid_t,
) -> c_int {
    let (Ok(first), Ok(n)) = (u16::try_from(pirq), u16::try_from(nvec)) else {
        return EINVAL.to_errno();
    };
    if n == 0 || first.checked_add(n - 1).is_none() {
        return EINVAL.to_errno();
    }
    let _guard = mapping_lock().lock();
    // `irq_alloc_descs(-1, 0, nvec, -1)`.
    // SAFETY: Allocating descriptors has no precondition.
    let irq = unsafe {
        bindings::__irq_alloc_descs(-1, 0, c_uint::from(n), -1, ptr::null_mut(), ptr::null())
    };
    let Ok(base) = c_uint::try_from(irq) else {
        return irq;
    };
    let undo = |ret: c_int| {
        for i in (0..c_uint::from(n)).rev() {
            // SAFETY: The IRQs are new, without handlers; the lock is held. Each has this
            // `irq_info` or none.
            unsafe {
                bindings::xen_unbind_from_irq_locked(bindings::xen_info_for_irq(base + i), base + i)
            };
        }
        ret
    };
    for i in 0..n {
        let this = base + c_uint::from(i);
        // SAFETY: `this` is a new descriptor without an `irq_info`; the lock is held.
        let info = unsafe { bindings::xen_irq_init(this) };
        if info.is_null() {
            return undo(ENOMEM.to_errno());
        }
        // SAFETY: `this` has a descriptor; the chip is static, the flow handler the kernel's, the
        // name the caller's to keep.
        unsafe {
            bindings::irq_set_chip_and_handler_name(
                this,
                PIRQ_CHIP.as_raw(),
                Some(bindings::handle_edge_irq),
                name,
            )
        };
        let flags = if i == 0 { 0 } else { PIRQ_MSI_GROUP };
        // SAFETY: `info` is new; the lock is held.
        let ret = unsafe { pirq_setup(info, first + i, 0, domid, flags) };
        if ret < 0 {
            return undo(ret);
        }
    }
    // SAFETY: `base` is the first IRQ of the MSIs, `msidesc` the caller's.
    let ret = unsafe { bindings::irq_set_msi_desc(base, msidesc) };
    if ret < 0 {
        return undo(ret);
    }
    irq
}

/// Unmaps IRQ `irq`'s PIRQ (in dom0, unless it is an MSI after the first of its group) and frees
/// the IRQ; returns 0, or the error Xen gave (the IRQ is kept then).
#[export]
pub extern "C" fn xen_destroy_irq(irq: c_int) -> c_int {
    let Ok(irq) = c_uint::try_from(irq) else {
        return EINVAL.to_errno();
    };
    let _guard = mapping_lock().lock();
    // SAFETY: The lock is held.
    let Some(info) = (unsafe { pirq_info(irq) }) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `info` is live under the lock.
    let (pirq, domid, flags, port) = unsafe {
        (
            (*info).u.pirq.pirq,
            (*info).u.pirq.domid,
            (*info).u.pirq.flags,
            (*info).evtchn,
        )
    };
    // SAFETY: This only reads how the domain was started.
    if unsafe { bindings::xen_initial_domain() } && flags & PIRQ_MSI_GROUP == 0 {
        let mut unmap = bindings::physdev_unmap_pirq {
            domid,
            pirq: c_int::from(pirq),
        };
        // SAFETY: `unmap` is this operation's argument.
        let rc = unsafe { physdev_op(bindings::PHYSDEVOP_unmap_pirq, &mut unmap) };
        // A domain that quits without disabling its MSIs has had its PIRQs freed by Xen.
        if rc == ESRCH.to_errno() && domid != DOMID_SELF {
            pr_info!("domain {} does not have {} anymore\n", domid, pirq);
        } else if rc != 0 {
            pr_warn!("unmap irq failed {}\n", rc);
            return rc;
        }
    }
    if port != 0 {
        // Still started: its handler was not freed. Its port must not name a freed `irq_info`.
        // SAFETY: `info` is bound to `port`; the lock is held.
        unsafe {
            bindings::xen_irq_info_cleanup(info);
            bindings::xen_evtchn_close(port);
        }
    }
    // SAFETY: `info` is unbound; nothing refers to it but RCU readers, which it outlives.
    unsafe { bindings::xen_free_irq(info) };
    0
}

/// The PIRQ of IRQ `irq`, or `-EINVAL` if it is not a PIRQ.
#[export]
pub extern "C" fn xen_pirq_from_irq(irq: c_uint) -> c_int {
    let _guard = mapping_lock().lock();
    // SAFETY: The lock is held.
    match unsafe { pirq_info(irq) } {
        // SAFETY: As above.
        Some(info) => c_int::from(unsafe { pirq_of(info) }),
        None => EINVAL.to_errno(),
    }
}

/// Maps each GSI's PIRQ again on resume (`PHYSDEVOP_map_pirq`), and starts its IRQ up; frees the
/// IRQ of one Xen refuses.
///
/// # Safety
///
/// Only on resume, with the other CPUs stopped and the ports' map cleared.
#[export]
pub unsafe extern "C" fn xen_restore_pirqs() {
    let restore = |info: *mut bindings::irq_info| {
        // SAFETY: `info` is live (the caller's guarantee); a PIRQ's holds its PIRQ and GSI.
        let (ty, pirq, gsi, irq) = unsafe {
            (
                (*info).type_,
                (*info).u.pirq.pirq,
                (*info).u.pirq.gsi,
                (*info).irq,
            )
        };
        // The devices of other PIRQs (passed through) are not saved and restored.
        if ty != IRQT_PIRQ || gsi == 0 {
            return;
        }
        let mut map = bindings::physdev_map_pirq {
            domid: DOMID_SELF,
            type_: bindings::MAP_PIRQ_TYPE_GSI as c_int,
            index: c_int::from(gsi),
            pirq: c_int::from(pirq),
            ..pin_init::zeroed()
        };
        // SAFETY: `map` is this operation's argument.
        let rc = unsafe { physdev_op(bindings::PHYSDEVOP_map_pirq, &mut map) };
        if rc != 0 {
            pr_warn!(
                "xen map irq failed gsi={} irq={} pirq={} rc={}\n",
                gsi,
                irq,
                pirq,
                rc
            );
            // SAFETY: `info` is unbound (resume cleared the ports); the walk has read the next
            // entry.
            unsafe { bindings::xen_free_irq(info) };
            return;
        }
        pr_debug!("--> irq={}, pirq={}\n", irq, map.pirq);
        // SAFETY: `info` is a PIRQ's; the caller's guarantee.
        unsafe { startup(info) };
    };
    // SAFETY: The caller's guarantee.
    unsafe { for_each_info(restore) };
}

/// Shares the PIRQ EOI map with Xen (`PHYSDEVOP_pirq_eoi_gmfn_v2`), at boot of a PV domain: from
/// then on a PIRQ's bit there says whether it needs an EOI. Without it (no memory, or Xen refuses),
/// the status Xen gives at startup does.
#[export]
pub extern "C" fn xen_pirq_init_eoi_map() {
    let Ok(map) = KBox::init(pin_init::init_zeroed::<EoiMap>(), GFP_KERNEL) else {
        return;
    };
    let map = KBox::into_raw(map);
    let mut op = bindings::physdev_pirq_eoi_gmfn {
        // SAFETY: `map` is a page of the kernel's direct map (a 4 KiB-aligned allocation of one
        // page).
        gmfn: unsafe { bindings::virt_to_gfn(map.cast::<c_void>()) },
    };
    // SAFETY: `op` is this operation's argument.
    if unsafe { physdev_op(bindings::PHYSDEVOP_pirq_eoi_gmfn_v2, &mut op) } != 0 {
        // SAFETY: `map` came from `KBox::into_raw()` above, and Xen did not take it.
        drop(unsafe { KBox::from_raw(map) });
        return;
    }
    EOI_MAP.store(map, Release);
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_pirq)]
mod tests {
    use super::*;
    use common::kunit::{
        chip_name,
        info,
        on_xen,
        port_status,
        wait_until, //
    };
    use kernel::sync::atomic::Full;

    const NAME: &CStr = c"rust-xen-pirq-kunit";
    /// A GSI of the emulated machine's I/O APIC (24 pins) that no device is wired to: its PCI
    /// slots are routed to ISA IRQs.
    const FREE_GSI: c_uint = 23;
    /// A PIRQ Xen has not given a domU, which it refuses to bind.
    const FOREIGN_PIRQ: c_uint = 1000;
    /// The legacy IRQs dom0 binds at boot (`pci_xen_initial_domain()`).
    const LEGACY: c_uint = 16;

    fn dom0() -> bool {
        // SAFETY: This only reads how the domain was started.
        unsafe { bindings::xen_initial_domain() }
    }

    /// Counts its events.
    struct Seen(Atomic<u32>);

    /// Records an event in its `dev_id`, a [`Seen`].
    ///
    /// # Safety
    ///
    /// `data` must be a live [`Seen`].
    unsafe extern "C" fn seen(_irq: c_int, data: *mut c_void) -> bindings::irqreturn_t {
        // SAFETY: The caller's guarantee.
        unsafe { &*data.cast::<Seen>() }.0.fetch_add(1, Full);
        bindings::irqreturn::IRQ_HANDLED
    }

    fn data(seen: &Seen) -> *mut c_void {
        ptr::from_ref(seen).cast_mut().cast()
    }

    /// Binds GSI `gsi` as PIRQ `pirq`; the IRQ or the error.
    fn bind(gsi: c_uint, pirq: c_uint, shareable: bool) -> Result<c_uint> {
        // SAFETY: The name is static.
        let irq = unsafe {
            xen_bind_pirq_gsi_to_irq(gsi, pirq, shareable.into(), NAME.as_char_ptr().cast_mut())
        };
        c_uint::try_from(irq).map_err(|_| Error::from_errno(irq))
    }

    /// The flow handler of IRQ `irq`, as an address.
    fn flow(irq: c_uint) -> Option<usize> {
        // SAFETY: The callers keep `irq` bound, so it has a descriptor.
        unsafe { (*bindings::irq_to_desc(irq)).handle_irq }.map(|f| f as *const () as usize)
    }

    /// Unmaps PIRQ `pirq` of this domain, past the event core.
    fn unmap(pirq: c_uint) -> c_int {
        let mut unmap = bindings::physdev_unmap_pirq {
            domid: DOMID_SELF,
            pirq: pirq as c_int,
        };
        // SAFETY: `unmap` is this operation's argument.
        unsafe { physdev_op(bindings::PHYSDEVOP_unmap_pirq, &mut unmap) }
    }

    #[test]
    fn the_gsis_bound_at_boot_are_pirqs() -> Result {
        if !on_xen() {
            return Ok(());
        }
        let (mut bound, mut started) = (0, 0);
        for gsi in 0..LEGACY {
            let irq = xen_irq_from_gsi(gsi);
            // Only dom0 has GSIs; a domU has none without pcifront.
            if !dom0() || irq == NO_IRQ {
                assert_eq!(irq, NO_IRQ);
                continue;
            }
            bound += 1;
            let irq = c_uint::try_from(irq)?;
            assert_eq!(chip_name(irq), c"xen-pirq");
            let i = info(irq);
            assert!(!i.is_null());
            // SAFETY: `i` lives while `irq` is bound, which boot IRQs are for ever.
            let (ty, g, domid, pirq, port) = unsafe {
                (
                    (*i).type_,
                    (*i).u.pirq.gsi,
                    (*i).u.pirq.domid,
                    (*i).u.pirq.pirq,
                    (*i).evtchn,
                )
            };
            assert_eq!(ty, IRQT_PIRQ);
            assert_eq!(c_uint::from(g), gsi);
            assert_eq!(domid, DOMID_SELF);
            // dom0 asks Xen for the PIRQ of the GSI's number.
            assert_eq!(xen_pirq_from_irq(irq), c_int::from(pirq));
            assert_eq!(c_uint::from(pirq), gsi);
            // Bound already: the same IRQ.
            assert_eq!(bind(gsi, c_uint::from(pirq), false)?, irq);
            if port != 0 {
                // Started (requested): its port is bound to the PIRQ, and mapped to the IRQ.
                started += 1;
                let status = port_status(port)?;
                assert_eq!(status.status, bindings::EVTCHNSTAT_pirq);
                // SAFETY: The status is a PIRQ's, whose member of the union Xen wrote.
                assert_eq!(unsafe { status.u.pirq }, u32::from(pirq));
                // SAFETY: Any IRQ may be looked up.
                assert_eq!(unsafe { bindings::xen_info_for_irq(irq) }, i);
                // SAFETY: Any port may be looked up.
                assert_eq!(unsafe { bindings::xen_evtchn_to_info(port) }, i);
            }
        }
        if dom0() {
            pr_info!("{} legacy GSIs bound, {} started\n", bound, started);
            // Some are requested at boot: the i8042 keyboard and mouse of the emulated machine.
            assert!(bound > 0 && started > 0);
        }
        Ok(())
    }

    #[test]
    fn the_eoi_map_is_shared_and_bounded() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // SAFETY: This only reads how the domain was started.
        if unsafe { bindings::xen_pv_domain() } {
            // Xen took the page at boot (`PHYSDEVOP_pirq_eoi_gmfn_v2`).
            assert!(!EOI_MAP.load(Acquire).is_null());
        }
        // A PIRQ beyond the map's page falls back to the status from startup.
        let mut fake = KBox::<bindings::irq_info>::new(pin_init::zeroed(), GFP_KERNEL)?;
        fake.type_ = IRQT_PIRQ;
        fake.u.pirq.pirq = u16::MAX;
        let f = &raw mut *fake;
        fake.u.pirq.flags = PIRQ_NEEDS_EOI;
        // SAFETY: `f` is a PIRQ's `irq_info`, alive for the call.
        assert!(unsafe { needs_eoi(f) });
        fake.u.pirq.flags = 0;
        // SAFETY: As above.
        assert!(!unsafe { needs_eoi(f) });
        Ok(())
    }

    #[test]
    fn a_gsi_is_bound_started_shut_down_and_destroyed() -> Result {
        if !on_xen() {
            return Ok(());
        }
        assert_eq!(xen_irq_from_gsi(FREE_GSI), NO_IRQ);
        // dom0 maps the GSI to a PIRQ first, as `xen_register_pirq()` does; a domU cannot, and
        // binds a PIRQ it has not been given.
        let pirq = if dom0() {
            let mut map = bindings::physdev_map_pirq {
                domid: DOMID_SELF,
                type_: bindings::MAP_PIRQ_TYPE_GSI as c_int,
                index: FREE_GSI as c_int,
                pirq: FREE_GSI as c_int,
                ..pin_init::zeroed()
            };
            // SAFETY: `map` is this operation's argument.
            let rc = unsafe { physdev_op(bindings::PHYSDEVOP_map_pirq, &mut map) };
            assert_eq!(rc, 0);
            c_uint::try_from(map.pirq)?
        } else {
            FOREIGN_PIRQ
        };
        let irq = match bind(FREE_GSI, pirq, dom0()) {
            Ok(irq) => irq,
            Err(e) => {
                if dom0() {
                    unmap(pirq);
                }
                return Err(e);
            }
        };
        let seen_ = KBox::new(Seen(Atomic::new(0)), GFP_KERNEL)?;
        let mut requested = false;
        let mut test = || -> Result<u32> {
            assert_eq!(xen_irq_from_gsi(FREE_GSI), irq as c_int);
            assert_eq!(xen_pirq_from_irq(irq), pirq as c_int);
            assert_eq!(chip_name(irq), c"xen-pirq");
            let i = info(irq);
            assert!(!i.is_null());
            // SAFETY: `i` lives while `irq` is bound.
            unsafe {
                assert_eq!((*i).type_, IRQT_PIRQ);
                assert_eq!(c_uint::from((*i).u.pirq.gsi), FREE_GSI);
                assert_eq!((*i).u.pirq.domid, DOMID_SELF);
                let shareable = (*i).u.pirq.flags & PIRQ_SHAREABLE != 0;
                assert_eq!(shareable, dom0());
                // Not started: no port yet.
                assert_eq!((*i).evtchn, 0);
            }
            // A level-triggered (shareable) PIRQ takes the fasteoi flow, another the edge flow.
            let expected = if dom0() {
                bindings::handle_fasteoi_irq as *const () as usize
            } else {
                bindings::handle_edge_irq as *const () as usize
            };
            assert_eq!(flow(irq), Some(expected));
            // Bound already: the same IRQ.
            assert_eq!(bind(FREE_GSI, pirq, dom0())?, irq);
            let flags = if dom0() {
                bindings::IRQF_SHARED as c_ulong
            } else {
                0
            };
            // SAFETY: `seen` is a valid handler for `data(&seen_)`, which outlives the request.
            let rc = unsafe {
                bindings::request_irq(irq, Some(seen), flags, NAME.as_char_ptr(), data(&seen_))
            };
            assert_eq!(rc, 0);
            requested = true;
            // SAFETY: As above.
            let port = unsafe { (*i).evtchn };
            // SAFETY: `irq` is bound, so it has a descriptor and its `irq_data`.
            let retriggered =
                unsafe { bindings::xen_retrigger_dynirq(bindings::irq_get_irq_data(irq)) };
            if !dom0() {
                // Xen refuses a PIRQ it has not given: the IRQ starts without a port, and cannot
                // be raised.
                assert_eq!(port, 0);
                assert_eq!(retriggered, 0);
                return Ok(0);
            }
            // Raised again on its port (masked, set pending, unmasked), the event goes through
            // the upcall, the fasteoi flow and the chip's EOI to the handler.
            assert_eq!(retriggered, 1);
            assert!(wait_until(|| seen_.0.load(Relaxed) >= 1));
            // Started: its port is bound to the PIRQ, and mapped to the IRQ.
            assert_ne!(port, 0);
            let status = port_status(port)?;
            assert_eq!(status.status, bindings::EVTCHNSTAT_pirq);
            // SAFETY: The status is a PIRQ's, whose member of the union Xen wrote.
            assert_eq!(unsafe { status.u.pirq }, pirq);
            // SAFETY: Any port may be looked up.
            assert_eq!(unsafe { bindings::xen_evtchn_to_info(port) }, i);
            Ok(port)
        };
        let result = test();
        if requested {
            // SAFETY: The IRQ was requested above with this `dev_id`.
            unsafe { bindings::free_irq(irq, data(&seen_)) };
        }
        let i = info(irq);
        // SAFETY: `i` lives while `irq` is bound (it is, until destroyed below).
        let port_after = unsafe { (*i).evtchn };
        let destroyed = xen_destroy_irq(irq as c_int);
        let port = result?;
        // Shutting it down closed and unmapped its port.
        assert_eq!(port_after, 0);
        if port != 0 {
            assert_eq!(port_status(port)?.status, bindings::EVTCHNSTAT_closed);
            // SAFETY: Any port may be looked up.
            assert!(unsafe { bindings::xen_evtchn_to_info(port) }.is_null());
        }
        // Destroying it freed the IRQ and, in dom0, unmapped the PIRQ: Xen has nothing left to
        // unmap.
        assert_eq!(destroyed, 0);
        assert_eq!(xen_irq_from_gsi(FREE_GSI), NO_IRQ);
        // The `irq_info` and the descriptor go after an RCU grace period.
        assert!(wait_until(|| info(irq).is_null()));
        if dom0() {
            assert_ne!(unmap(pirq), 0);
        }
        Ok(())
    }

    #[test]
    fn bad_numbers_and_other_irqs_are_refused() -> Result {
        if !on_xen() {
            return Ok(());
        }
        // Numbers that do not fit the `irq_info` bind nothing.
        assert_eq!(bind(0x10000 + FREE_GSI, 1, false), Err(EINVAL));
        assert_eq!(bind(FREE_GSI, 0x10000, false), Err(EINVAL));
        assert_eq!(xen_irq_from_gsi(FREE_GSI), NO_IRQ);
        assert_eq!(xen_irq_from_gsi(0x10000), NO_IRQ);
        assert_eq!(xen_destroy_irq(-1), EINVAL.to_errno());
        assert_eq!(xen_pirq_from_irq(c_uint::MAX), EINVAL.to_errno());
        // CPU 0's timer VIRQ is no PIRQ: neither looked up nor destroyed as one.
        let mut port = 0;
        // SAFETY: `port` is valid for a write.
        let timer = unsafe { bindings::irq_evtchn_from_virq(0, bindings::VIRQ_TIMER, &mut port) };
        let timer = c_uint::try_from(timer)?;
        assert_eq!(xen_pirq_from_irq(timer), EINVAL.to_errno());
        assert_eq!(xen_destroy_irq(timer as c_int), EINVAL.to_errno());
        let i = info(timer);
        assert!(!i.is_null());
        // SAFETY: `i` lives while the timer is bound, which it is for ever.
        unsafe {
            assert_eq!((*i).type_, bindings::xen_irq_type_IRQT_VIRQ as i16);
            assert_eq!((*i).evtchn, port);
        }
        Ok(())
    }
}
