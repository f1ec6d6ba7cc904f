// SPDX-License-Identifier: GPL-2.0

//! The xenstore bring-up, in Rust.
//!
//! This crate replaces `drivers/xen/xenbus/xenbus_probe.c` when `XEN_XENBUS_RUST` is set. It
//! finds the xenstore ring and event channel for the kind of domain this kernel is (`XS_PV`: a
//! PV guest, whose start info names both; `XS_LOCAL`: dom0 with xenstored as a process of its
//! own, for which it allocates both; `XS_HVM`: an HVM guest, through HVM parameters, possibly
//! late), starts the xenstore communication (`xs_init`, in `xenbus_xs.c`), and once xenstored
//! answers runs the xenstore notifier chain, on which the buses find their devices. For
//! `XS_LOCAL` (and an HVM xenstore that is not connected yet) that happens in a kernel thread
//! that waits for the first xenstore event. It also updates the event channel after a resume,
//! and sets the HVM callback vector for the platform PCI device.
//!
//! `drivers/xen/rust/xenbus-probe-glue.c` holds what Rust in this kernel cannot express: the
//! four data symbols other C files use, the notifier chain and the resume notifier, the
//! `__init` initcall shells and the exports.
//!
//! The HVM paths are compiled, and follow C line by line, but are not run by the tests here:
//! the test bed boots PV domains only.

use core::{
    ffi::c_void,
    ptr,
    sync::atomic::{
        AtomicI32,
        AtomicU64,
        Ordering, //
    }, //
};
use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_int,
        c_ulong, //
    },
    prelude::*,
};

/// The prefix of this crate's messages: `KBUILD_MODNAME` of the `xenbus` object, as C's.
const __LOG_PREFIX: &[u8] = b"xenbus\0";

/// HVM parameters (`xen/interface/hvm/params.h`, a header bindgen cannot take: it includes
/// `hvm_op.h`, whose guest handles of typedefs it turns into conflicting definitions).
const HVM_PARAM_CALLBACK_IRQ: c_int = 0;
const HVM_PARAM_STORE_PFN: c_int = 1;
const HVM_PARAM_STORE_EVTCHN: c_int = 2;

/// The IRQ bound to the xenstore event channel while an HVM domain waits for its xenstore to
/// be set up, or -1.
static XS_INIT_IRQ: AtomicI32 = AtomicI32::new(-1);

/// The frame of the xenstore ring.
static XEN_STORE_GFN: AtomicU64 = AtomicU64::new(0);

/// The kind of xenstore this domain has.
fn store_type() -> bindings::xenstore_init {
    // SAFETY: An aligned word, written only by `xen_xenbus_init` before anything reads it.
    unsafe { ptr::read_volatile(&raw const bindings::xen_store_domain_type) }
}

/// Sets the kind of xenstore; only `xen_xenbus_init` does, at boot.
fn set_store_type(t: bindings::xenstore_init) {
    // SAFETY: An aligned word; the postcore initcall runs before anything reads it.
    unsafe { ptr::write_volatile(&raw mut bindings::xen_store_domain_type, t) };
}

/// Sets the xenstore event channel (at boot, and after a resume before xenstore is resumed).
fn set_store_evtchn(port: c_int) {
    // SAFETY: An aligned word, read by the xenstore code once xenstore is (re)started.
    unsafe { ptr::write_volatile(&raw mut bindings::xen_store_evtchn, port) };
}

/// The xenstore ring, or null.
fn store_interface() -> *mut bindings::xenstore_domain_interface {
    // SAFETY: An aligned pointer, set at boot (or by `xenbus_probe` for a late HVM xenstore).
    unsafe { ptr::read_volatile(&raw const bindings::xen_store_interface) }
}

/// Sets the xenstore ring.
fn set_store_interface(iface: *mut bindings::xenstore_domain_interface) {
    // SAFETY: An aligned pointer; see `store_interface`.
    unsafe { ptr::write_volatile(&raw mut bindings::xen_store_interface, iface) };
}

/// Whether xenstored is up.
fn xenstored_ready() -> bool {
    // SAFETY: An aligned word.
    unsafe { ptr::read_volatile(&raw const bindings::xenstored_ready) > 0 }
}

/// Whether the ring is mapped and xenstored says it is connected (`XS_INTERFACE_READY`).
fn interface_ready() -> bool {
    let iface = store_interface();
    // SAFETY: A non-null `xen_store_interface` maps the ring page, which stays mapped; the
    // other end writes `connection`, so it is read once, as a volatile word.
    !iface.is_null()
        && unsafe { ptr::read_volatile(&raw const (*iface).connection) }
            == bindings::XENSTORE_CONNECTED
}

/// Maps the ring frame `gfn` as normal memory (HVM).
fn memremap_store(gfn: u64) -> *mut bindings::xenstore_domain_interface {
    // SAFETY: `memremap` maps the frame or returns null.
    unsafe {
        bindings::memremap(
            gfn << bindings::XEN_PAGE_SHIFT,
            1usize << bindings::XEN_PAGE_SHIFT,
            bindings::MEMREMAP_WB as c_ulong,
        )
        .cast()
    }
}

/// Registers `nb` on the xenstore notifier chain, or calls it at once if xenstore is up.
///
/// # Safety
///
/// `nb` must be a notifier block that lives until it is unregistered.
#[export]
pub unsafe extern "C" fn register_xenstore_notifier(nb: *mut bindings::notifier_block) -> c_int {
    if xenstored_ready() {
        // SAFETY: The caller passes a valid notifier block; its callback takes it.
        return unsafe {
            (*nb)
                .notifier_call
                .map_or(0, |call| call(nb, 0, ptr::null_mut()))
        };
    }
    // SAFETY: The chain lives in the glue forever; `nb` outlives its registration.
    unsafe {
        bindings::blocking_notifier_chain_register(&raw mut bindings::xen_xenbus_store_chain, nb)
    };
    0
}

/// Unregisters `nb` from the xenstore notifier chain.
///
/// # Safety
///
/// `nb` must be a notifier block registered (or not) on the chain.
#[export]
pub unsafe extern "C" fn unregister_xenstore_notifier(nb: *mut bindings::notifier_block) {
    // SAFETY: The chain lives in the glue forever; unregistering an unknown block does nothing.
    unsafe {
        bindings::blocking_notifier_chain_unregister(&raw mut bindings::xen_xenbus_store_chain, nb)
    };
}

/// Xenstore is up: maps a late ring, lets go of the IRQ used to wait for it, starts the
/// xenstore communication an HVM domain deferred, and tells the notifier chain.
fn xenbus_probe() {
    // SAFETY: An aligned word; the notifiers registered from now on are called at once.
    unsafe { ptr::write_volatile(&raw mut bindings::xenstored_ready, 1) };
    if store_interface().is_null() {
        set_store_interface(memremap_store(XEN_STORE_GFN.load(Ordering::Relaxed)));
    }
    // The IRQ of the late HVM set-up: freed without closing the event channel, which
    // `xb_init_comms` binds again (closing it would lose its events).
    let irq = XS_INIT_IRQ.swap(-1, Ordering::Relaxed);
    if irq >= 0 {
        // SAFETY: `irq` was bound with `xb_waitq` as its cookie, and is freed once.
        unsafe { bindings::free_irq(irq as u32, (&raw mut bindings::xb_waitq).cast()) };
    }
    if store_type() == bindings::xenstore_init_XS_HVM {
        // SAFETY: Deferred by `xen_xenbus_init` for HVM; run once, here.
        let err = unsafe { bindings::xs_init() };
        if err != 0 {
            pr_warn!("Error initializing xenstore comms: {}\n", err);
        }
    }
    // SAFETY: The chain lives in the glue forever.
    unsafe {
        bindings::blocking_notifier_call_chain(
            &raw mut bindings::xen_xenbus_store_chain,
            0,
            ptr::null_mut(),
        )
    };
}

/// Whether an HVM domain must wait for the platform PCI device's callback before xenstore
/// works (no vector callback).
#[cfg(CONFIG_X86)]
fn hvm_defer_init_for_callback() -> bool {
    // SAFETY: A boolean set at boot.
    let vector = unsafe { ptr::read_volatile(&raw const bindings::xen_have_vector_callback) };
    store_type() == bindings::xenstore_init_XS_HVM && !vector
}

/// Whether an HVM domain must wait for the platform PCI device's callback before xenstore
/// works: never, outside x86.
#[cfg(not(CONFIG_X86))]
fn hvm_defer_init_for_callback() -> bool {
    false
}

/// The probe thread: waits for the first xenstore event (xenstored, or an HVM xenstore, has
/// started), then probes.
///
/// # Safety
///
/// Called by the kthread code.
unsafe extern "C" fn xenbus_probe_thread(_unused: *mut c_void) -> c_int {
    // SAFETY: All-zero is a valid entry for `init_wait_entry` to set up.
    let mut wait: bindings::wait_queue_entry = unsafe { core::mem::zeroed() };
    // SAFETY: `wait` lives on this stack until `finish_wait` removes it from `xb_waitq`.
    unsafe {
        bindings::init_wait_entry(&mut wait, 0);
        bindings::prepare_to_wait(
            &raw mut bindings::xb_waitq,
            &mut wait,
            bindings::TASK_INTERRUPTIBLE as c_int,
        );
        bindings::schedule();
        bindings::finish_wait(&raw mut bindings::xb_waitq, &mut wait);
    }
    pr_debug!("xenbus_probe (xenbus_probe_thread) probing.\n");
    xenbus_probe();
    0
}

/// The device initcall: probes now if xenstore answers, else starts the thread that waits for
/// it.
///
/// # Safety
///
/// Called once, by the glue's initcall.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_probe_initcall() -> c_int {
    // SAFETY: Only reads the boot-time domain type.
    if !unsafe { bindings::xen_domain() } {
        return ENODEV.to_errno();
    }
    let t = store_type();
    if t == bindings::xenstore_init_XS_PV
        || (t == bindings::xenstore_init_XS_HVM
            && !hvm_defer_init_for_callback()
            && interface_ready())
    {
        xenbus_probe();
    }
    if t == bindings::xenstore_init_XS_LOCAL || !interface_ready() {
        // SAFETY: The thread function takes no data; the name is a plain string.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(xenbus_probe_thread),
                ptr::null_mut(),
                bindings::NUMA_NO_NODE,
                c"xenbus_probe".as_char_ptr(),
            )
        };
        match from_err_ptr(task) {
            // SAFETY: A new thread, not started yet.
            Ok(task) => unsafe {
                bindings::wake_up_process(task);
            },
            Err(e) => return e.to_errno(),
        }
    }
    0
}

/// Sets the HVM callback (`HVM_PARAM_CALLBACK_IRQ`), and probes xenstore if that waited for it.
///
/// # Safety
///
/// Called by the event channel core or the platform PCI device, in an HVM domain.
#[export]
pub unsafe extern "C" fn xen_set_callback_via(via: u64) -> c_int {
    // SAFETY: Sets a parameter of this domain; no memory is passed.
    let ret = unsafe { bindings::xen_hvm_set_parameter(HVM_PARAM_CALLBACK_IRQ, via) };
    if ret != 0 {
        return ret;
    }
    // If the device initcall deferred the probe for lack of a callback, it works now.
    if !xenstored_ready() && hvm_defer_init_for_callback() {
        xenbus_probe();
    }
    ret
}

/// An HVM parameter, or the error; logged by the C helper as `hvm_get_parameter` does.
fn hvm_param(index: c_int) -> Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: `v` is a valid out-pointer.
    to_result(unsafe { bindings::hvm_get_parameter(index, &mut v) })?;
    Ok(v)
}

/// The resume notifier: the xenstore event channel may have changed.
///
/// # Safety
///
/// Called by the resume notifier chain.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_resume_cb(
    _nb: *mut bindings::notifier_block,
    _action: c_ulong,
    _data: *mut c_void,
) -> c_int {
    // SAFETY: Only reads the boot-time domain type.
    if unsafe { bindings::xen_hvm_domain() } {
        match hvm_param(HVM_PARAM_STORE_EVTCHN) {
            Ok(v) if v != 0 => set_store_evtchn(v as c_int),
            other => {
                let err = other.err().map_or(0, |e| e.to_errno());
                pr_warn!("Cannot update xenstore event channel: {}\n", err);
                return err;
            }
        }
    } else {
        // SAFETY: A PV domain's start info is mapped for its whole life; the resume code
        // updated it.
        set_store_evtchn(unsafe { (*bindings::xen_start_info).store_evtchn } as c_int);
    }
    0
}

/// The IRQ handler of the late HVM set-up: once the toolstack set `HVM_PARAM_STORE_PFN`, wakes
/// the probe thread.
///
/// # Safety
///
/// Called by the IRQ core.
unsafe extern "C" fn xenbus_late_init(_irq: c_int, _data: *mut c_void) -> bindings::irqreturn_t {
    if let Ok(v) = hvm_param(HVM_PARAM_STORE_PFN) {
        if v != 0 && v != u64::MAX {
            XEN_STORE_GFN.store(v, Ordering::Relaxed);
            // SAFETY: `xb_waitq` lives forever.
            unsafe {
                bindings::__wake_up(
                    &raw mut bindings::xb_waitq,
                    bindings::TASK_INTERRUPTIBLE | bindings::TASK_UNINTERRUPTIBLE,
                    1,
                    ptr::null_mut(),
                )
            };
        }
    }
    bindings::irqreturn::IRQ_HANDLED
}

/// dom0 with xenstored as a process: allocates the ring page and an event channel xenstored
/// will bind to.
fn local_init() -> Result {
    // SAFETY: Allocates a zeroed page, or returns 0.
    let page = unsafe { bindings::get_zeroed_page_noprof(bindings::GFP_KERNEL) };
    if page == 0 {
        return Err(ENOMEM);
    }
    // SAFETY: `page` is a page of the direct map.
    let gfn = unsafe { bindings::virt_to_gfn(page as *mut c_void) };
    let mut alloc = bindings::evtchn_alloc_unbound {
        dom: bindings::DOMID_SELF as u16,
        remote_dom: bindings::DOMID_SELF as u16,
        port: 0,
    };
    // SAFETY: `alloc` is a valid argument of the call.
    let err = unsafe {
        bindings::HYPERVISOR_event_channel_op(
            bindings::EVTCHNOP_alloc_unbound as c_int,
            (&raw mut alloc).cast(),
        )
    };
    if err != 0 {
        // C stops (BUG_ON) unless the hypervisor has no event channels at all.
        pr_err!("cannot allocate the xenstore event channel: {}\n", err);
        // SAFETY: The page was allocated above and is not used.
        unsafe { bindings::free_pages(page, 0) };
        return Err(Error::from_errno(err));
    }
    XEN_STORE_GFN.store(gfn as u64, Ordering::Relaxed);
    set_store_evtchn(alloc.port as c_int);
    set_store_interface(page as *mut bindings::xenstore_domain_interface);
    Ok(())
}

/// The HVM set-up: the event channel and ring from the HVM parameters; if the ring is not
/// there or not connected yet, an IRQ on the event channel waits for it.
fn hvm_init() -> Result {
    let evtchn = hvm_param(HVM_PARAM_STORE_EVTCHN)?;
    set_store_evtchn(evtchn as c_int);
    let pfn = hvm_param(HVM_PARAM_STORE_PFN)?;
    // Zero is an unset parameter; all ones, one the toolstack will set later.
    if pfn == 0 {
        return Err(ENOENT);
    }
    let mut wait = pfn == u64::MAX;
    if !wait {
        if usize::BITS == 32 && pfn > u64::from(u32::MAX) {
            pr_err!(
                "xenbus_init: cannot handle HVM_PARAM_STORE_PFN={:x} > ULONG_MAX\n",
                pfn
            );
            return Err(EINVAL);
        }
        XEN_STORE_GFN.store(pfn, Ordering::Relaxed);
        let iface = memremap_store(pfn);
        if iface.is_null() {
            pr_err!("xenbus_init: cannot map HVM_PARAM_STORE_PFN={:x}\n", pfn);
            return Err(EINVAL);
        }
        set_store_interface(iface);
        wait = !interface_ready();
    }
    if wait {
        // SAFETY: The handler and its cookie (`xb_waitq`) live forever.
        let irq = unsafe {
            bindings::bind_evtchn_to_irqhandler(
                evtchn as u32,
                Some(xenbus_late_init),
                0,
                c"xenstore_late_init".as_char_ptr(),
                (&raw mut bindings::xb_waitq).cast(),
            )
        };
        if irq < 0 {
            pr_err!("xenstore_late_init couldn't bind irq err={}\n", irq);
            return Err(Error::from_errno(irq));
        }
        XS_INIT_IRQ.store(irq, Ordering::Relaxed);
    }
    Ok(())
}

/// The postcore initcall (after the glue's `xenbus_ring_ops_init`): finds the xenstore ring and
/// event channel for the kind of domain this is, and starts the xenstore communication.
///
/// # Safety
///
/// Called once, by the glue's initcall, in a Xen domain.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_init() -> c_int {
    match init() {
        Ok(()) => 0,
        Err(e) => {
            set_store_type(bindings::xenstore_init_XS_UNKNOWN);
            e.to_errno()
        }
    }
}

/// The body of [`xen_xenbus_init`].
fn init() -> Result {
    // SAFETY: These only read the boot-time domain type.
    let (pv, hvm) = unsafe { (bindings::xen_pv_domain(), bindings::xen_hvm_domain()) };
    // SAFETY: A PV domain's start info is mapped for its whole life.
    let pv_store = |f: fn(&bindings::start_info) -> u64| unsafe { f(&*bindings::xen_start_info) };
    let mut t = bindings::xenstore_init_XS_UNKNOWN;
    if pv {
        t = if pv_store(|s| u64::from(s.store_evtchn)) == 0 {
            bindings::xenstore_init_XS_LOCAL
        } else {
            // SAFETY: An aligned word; xenstore is up already for a PV domU.
            unsafe { ptr::write_volatile(&raw mut bindings::xenstored_ready, 1) };
            bindings::xenstore_init_XS_PV
        };
    }
    if hvm {
        t = bindings::xenstore_init_XS_HVM;
        let evtchn = hvm_param(HVM_PARAM_STORE_EVTCHN)?;
        // SAFETY: Only reads the boot-time domain type.
        if evtchn == 0 && unsafe { bindings::xen_initial_domain() } {
            t = bindings::xenstore_init_XS_LOCAL;
        }
    }
    set_store_type(t);
    match t {
        bindings::xenstore_init_XS_LOCAL => local_init()?,
        bindings::xenstore_init_XS_PV => {
            let (evtchn, mfn) = (
                pv_store(|s| u64::from(s.store_evtchn)),
                pv_store(|s| s.store_mfn as u64),
            );
            set_store_evtchn(evtchn as c_int);
            XEN_STORE_GFN.store(mfn, Ordering::Relaxed);
            // SAFETY: A PV domain's xenstore ring is in its direct map.
            set_store_interface(unsafe { bindings::xen_gfn_to_virt(mfn as c_ulong) }.cast());
        }
        bindings::xenstore_init_XS_HVM => hvm_init()?,
        _ => pr_warn!("Xenstore state unknown\n"),
    }
    // An HVM domain may not have a working callback yet: `xenbus_probe` starts xenstore then.
    if t != bindings::xenstore_init_XS_HVM {
        // SAFETY: The ring and event channel are set.
        let err = unsafe { bindings::xs_init() };
        if err != 0 {
            pr_warn!("Error initializing xenstore comms: {}\n", err);
            return Err(Error::from_errno(err));
        }
    }
    if t != bindings::xenstore_init_XS_LOCAL && t != bindings::xenstore_init_XS_UNKNOWN {
        // SAFETY: The notifier block lives in the glue forever.
        unsafe { bindings::xen_resume_notifier_register(&raw mut bindings::xen_xenbus_resume_nb) };
    }
    // The /proc/xen mount point that tools which expect xenfs there use (without PROC_FS,
    // `proc_create_mount_point` is an inline that does nothing).
    #[cfg(all(CONFIG_XEN_COMPAT_XENFS, CONFIG_PROC_FS))]
    {
        // SAFETY: Creates an empty directory in /proc, or nothing.
        unsafe { bindings::proc_create_mount_point(c"xen".as_char_ptr()) };
    }
    Ok(())
}
