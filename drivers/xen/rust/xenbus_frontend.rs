// SPDX-License-Identifier: GPL-2.0

//! The Xen frontend bus, in Rust.
//!
//! This crate replaces `drivers/xen/xenbus/xenbus_probe_frontend.c` when `XEN_XENBUS_RUST` is
//! set. It is the `xen` bus that frontend drivers (blkfront, netfront, hvc, the demo frontends,
//! `kernel::xen::xenbus` frontends) register with through `__xenbus_register_frontend`: it finds
//! the devices under the domain's `device/<type>/<id>` in xenstore, names them `<type>-<id>`,
//! sends `MODALIAS=xen:<type>` uevents, follows the backend's state, restores devices after a
//! save, closes connected devices on shutdown, and at boot waits for the devices to connect.
//! The device model itself (probe, remove, the other end's watch) is the xenbus core,
//! `xenbus_probe.c`, which calls back into this crate through the bus's `struct xen_bus_type`.
//!
//! `drivers/xen/rust/xenbus-frontend-glue.c` holds what Rust in this kernel cannot express: the
//! `struct xen_bus_type`, the watch and the notifier (tables the driver core and xenstore keep
//! pointers to), the `__init` initcalls, the export, and the HVM reset's wait queue.
//!
//! Xenstore is written by other domains: the device names, the `backend` path and
//! `backend-id`, and the states read here are untrusted. Unlike the C bus, this one refuses a
//! `backend` outside `/local/domain/<backend-id>/backend/` (a frontend would otherwise watch and
//! read another domain's nodes), a bus name that another device already has, and keeps probing
//! the other devices when one of them is bad, each with a line in the log.

use core::{
    ffi::c_void,
    ptr,
    sync::atomic::{
        AtomicBool,
        Ordering, //
    }, //
};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int,
        c_long,
        c_ulong, //
    },
    prelude::*,
    str::CString,
    time::msecs_to_jiffies,
    xen::xenstore::Xenstore, //
};

use bindings::xenbus_state as State;

/// The prefix of this crate's messages: the same as `pr_fmt` gives `xenbus_probe_frontend.c`.
const __LOG_PREFIX: &[u8] = b"xenbus_probe_frontend\0";

/// The bus name a device may have: `XEN_BUS_ID_SIZE` bytes with the NUL.
const BUS_ID_SIZE: usize = bindings::XEN_BUS_ID_SIZE as usize;

/// The first domain id that is not a domain (`DOMID_FIRST_RESERVED`).
const DOMID_FIRST_RESERVED: c_int = 0x7ff0;

/// Whether the HVM reset and the boot-time wait may run: set by the `late_initcall`.
static READY_TO_WAIT_FOR_DEVICES: AtomicBool = AtomicBool::new(false);

/// The `struct xenbus_device` whose `dev` member `dev` is.
///
/// # Safety
///
/// `dev` must point to the `dev` member of a `struct xenbus_device`.
unsafe fn to_xenbus_device(dev: *const bindings::device) -> *mut bindings::xenbus_device {
    // SAFETY: The caller guarantees `dev` is inside a `struct xenbus_device`.
    unsafe { kernel::container_of!(dev.cast_mut(), bindings::xenbus_device, dev) }
}

/// The bus's `struct xen_bus_type`, which lives in the glue.
fn bus() -> *mut bindings::xen_bus_type {
    // Only the address is taken; the driver core and the xenbus core own the contents.
    &raw mut bindings::xen_xenbus_frontend
}

/// `device/<type>/<id>` => `<type>-<id>`, in `out`; `None` if it is too long or has no `/`
/// after the type.
fn bus_id_of(nodename: &[u8], out: &mut [u8; BUS_ID_SIZE]) -> Option<()> {
    let slash = nodename.iter().position(|&c| c == b'/')?;
    let rest = nodename.get(slash + 1..)?;
    if rest.len() >= BUS_ID_SIZE {
        return None;
    }
    let sep = rest.iter().position(|&c| c == b'/')?;
    for (i, (o, &c)) in out.iter_mut().zip(rest).enumerate() {
        *o = if i == sep { b'-' } else { c };
    }
    *out.get_mut(rest.len())? = 0;
    Some(())
}

/// The xenbus core's `get_bus_id`: `device/<type>/<id>` => `<type>-<id>`.
///
/// # Safety
///
/// `bus_id` must be valid for writing `XEN_BUS_ID_SIZE` bytes and `nodename` must be a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_bus_id(
    bus_id: *mut c_char,
    nodename: *const c_char,
) -> c_int {
    // SAFETY: The caller passes a NUL-terminated `nodename`.
    let node = unsafe { CStr::from_char_ptr(nodename) };
    // SAFETY: The caller passes a buffer of `XEN_BUS_ID_SIZE` bytes, which nothing else uses
    // during the call.
    let out = unsafe { &mut *bus_id.cast::<[u8; BUS_ID_SIZE]>() };
    if bus_id_of(node.to_bytes(), out).is_none() {
        pr_warn!("bad frontend {}\n", node);
        return EINVAL.to_errno();
    }
    // Two devices may map to one name (`device/a-b/c` and `device/a/b-c`): say which, rather
    // than let the driver core fail with a duplicate sysfs name.
    // SAFETY: The bus is registered before anything is probed on it, and `out` is
    // NUL-terminated.
    let other = unsafe {
        bindings::bus_find_device(
            &raw const (*bus()).bus,
            ptr::null_mut(),
            out.as_ptr().cast(),
            Some(bindings::device_match_name),
        )
    };
    if !other.is_null() {
        // SAFETY: `other` is a device of this bus, referenced by `bus_find_device`.
        let other_node = unsafe { CStr::from_char_ptr((*to_xenbus_device(other)).nodename) };
        // SAFETY: `out` is NUL-terminated.
        let name = unsafe { CStr::from_char_ptr(out.as_ptr().cast()) };
        pr_warn!(
            "{}: bus id {} is taken by {}, ignoring it\n",
            node,
            name,
            other_node
        );
        // SAFETY: Drops the reference `bus_find_device` took.
        unsafe { bindings::put_device(other) };
        return EEXIST.to_errno();
    }
    0
}

/// The xenbus core's `probe` for one device: `device/<type>/<name>`.
///
/// # Safety
///
/// `bus` must be this bus, and `type_` and `name` NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_probe(
    bus: *mut bindings::xen_bus_type,
    type_: *const c_char,
    name: *const c_char,
) -> c_int {
    // SAFETY: The caller passes NUL-terminated strings.
    let (ty, name) = unsafe { (CStr::from_char_ptr(type_), CStr::from_char_ptr(name)) };
    // Xen's old toolstacks write a console/0 that no driver should take (C compares prefixes).
    if ty.to_bytes().starts_with(b"console") && name.to_bytes().starts_with(b"0") {
        pr_debug!("Ignoring buggy device entry console/0\n");
        return 0;
    }
    let Ok(nodename) = CString::try_from_fmt(fmt!("device/{}/{}", ty, name)) else {
        return ENOMEM.to_errno();
    };
    // SAFETY: `bus`, `type_` and `nodename` are valid for the call.
    let err = unsafe { bindings::xenbus_probe_node(bus, type_, nodename.as_char_ptr()) };
    // One bad device must not hide the others: the xenbus core stops at the first error.
    if err != 0 && err != ENOMEM.to_errno() {
        pr_warn!("{}: not probed: error {}\n", &*nodename, err);
        return 0;
    }
    err
}

/// The bus's `uevent`: `MODALIAS=xen:<type>`, for module autoloading.
///
/// # Safety
///
/// `dev` must be a device of this bus and `env` a uevent environment.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_uevent(
    dev: *const bindings::device,
    env: *mut bindings::kobj_uevent_env,
) -> c_int {
    // SAFETY: `dev` is a device of this bus.
    let xdev = unsafe { to_xenbus_device(dev) };
    // SAFETY: `env` is valid, and the format takes the one string argument given.
    if unsafe {
        bindings::add_uevent_var(env, c"MODALIAS=xen:%s".as_char_ptr(), (*xdev).devicetype)
    } != 0
    {
        return ENOMEM.to_errno();
    }
    0
}

/// The backend's state changed: the xenbus core tells the driver.
///
/// # Safety
///
/// `watch` must be the `otherend_watch` of a device of this bus; `path` and `token` are the
/// watch event's.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_otherend_changed(
    watch: *mut bindings::xenbus_watch,
    path: *const c_char,
    token: *const c_char,
) {
    // SAFETY: Forwarded as received; 1 makes the core close a Closing device on shutdown.
    unsafe { bindings::xenbus_otherend_changed(watch, path, token, 1) }
}

/// Restores a device after a save, from the workqueue (xenstored in this domain).
///
/// # Safety
///
/// `work` must be the `work` member of a device of this bus.
unsafe extern "C" fn delayed_restore(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` member of a `struct xenbus_device`.
    let xdev = unsafe { kernel::container_of!(work, bindings::xenbus_device, work) };
    // SAFETY: The work was queued by this device's restore, and the device is not unregistered
    // before the resume it belongs to is over (what the C bus relies on too).
    unsafe { bindings::xenbus_dev_restore(&raw mut (*xdev).dev) };
}

/// The bus's `restore`: at once, or later if xenstored runs in this domain (and so cannot
/// answer yet).
///
/// # Safety
///
/// `dev` must be a device of this bus.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_dev_restore(dev: *mut bindings::device) -> c_int {
    if store_is_local() {
        // SAFETY: `dev` is a device of this bus, whose `work` was initialised at probe.
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                bindings::system_percpu_wq,
                &raw mut (*to_xenbus_device(dev)).work,
            )
        };
        return 0;
    }
    // SAFETY: `dev` is a device of this bus.
    unsafe { bindings::xenbus_dev_restore(dev) }
}

/// Whether xenstored runs in this domain (`XS_LOCAL`).
fn store_is_local() -> bool {
    // SAFETY: Written once by the xenbus core's `postcore_initcall`, before any bus exists.
    let store = unsafe { ptr::read(&raw const bindings::xen_store_domain_type) };
    store == bindings::xenstore_init_XS_LOCAL
}

/// The bus's `probe`.
///
/// # Safety
///
/// `dev` must be a device of this bus.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_dev_probe(dev: *mut bindings::device) -> c_int {
    if store_is_local() {
        // SAFETY: `dev` is a device of this bus, not probed yet, so its `work` is unused.
        unsafe {
            bindings::init_work_with_key(
                &raw mut (*to_xenbus_device(dev)).work,
                Some(delayed_restore),
                false,
                c"xenbus_frontend_delayed_restore".as_char_ptr(),
                kernel::static_lock_class!().as_ptr(),
            )
        };
    }
    // SAFETY: `dev` is a device of this bus.
    unsafe { bindings::xenbus_dev_probe(dev) }
}

/// The name of `state`, as `xenbus_strstate` gives it.
fn strstate(state: bindings::xenbus_state) -> &'static CStr {
    // SAFETY: `xenbus_strstate` returns a static string for every value.
    unsafe { CStr::from_char_ptr(bindings::xenbus_strstate(state)) }
}

/// The bus's `shutdown`: a connected device is closed, waiting at most 5 seconds for the
/// backend.
///
/// # Safety
///
/// `dev` must be a device of this bus.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_dev_shutdown(dev: *mut bindings::device) {
    // SAFETY: `dev` is a device of this bus.
    let xdev = unsafe { to_xenbus_device(dev) };
    // SAFETY: `dev` is alive; the reference keeps it so until the end.
    unsafe { bindings::get_device(dev) };
    // SAFETY: `xdev` is alive.
    let (state, node) = unsafe { ((*xdev).state, CStr::from_char_ptr((*xdev).nodename)) };
    if state != State::XenbusStateConnected {
        pr_info!(
            "xenbus_frontend_dev_shutdown: {}: {} != Connected, skipping\n",
            node,
            strstate(state)
        );
    } else {
        // SAFETY: `xdev` is alive; `down` is completed by the driver when it closes.
        let left = unsafe {
            bindings::xenbus_switch_state(xdev, State::XenbusStateClosing);
            bindings::wait_for_completion_timeout(&raw mut (*xdev).down, msecs_to_jiffies(5000))
        };
        if left == 0 {
            pr_info!(
                "xenbus_frontend_dev_shutdown: {} timeout closing device\n",
                node
            );
        }
    }
    // SAFETY: Drops the reference taken above.
    unsafe { bindings::put_device(dev) };
}

/// The watch on `device`: a device appeared, changed or vanished.
///
/// # Safety
///
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_root_changed(
    _watch: *mut bindings::xenbus_watch,
    path: *const c_char,
    _token: *const c_char,
) {
    // SAFETY: `path` is the event's path, and the bus is registered.
    unsafe { bindings::xenbus_dev_changed(path, bus()) }
}

/// Whether `path` is under `/local/domain/<domid>/<tree>/`, with something after.
fn path_in_domain(path: &[u8], domid: c_int, tree: &str) -> bool {
    let mut prefix = [0u8; 48];
    let mut w = kernel::str::Formatter::new(&mut prefix);
    let _ = core::fmt::Write::write_fmt(&mut w, format_args!("/local/domain/{domid}/{tree}/"));
    let n = w.bytes_written();
    prefix
        .get(..n)
        .is_some_and(|p| path.len() > n && path.starts_with(p))
}

/// The driver's `read_otherend_details`: `backend-id` and `backend`, which must name a node
/// under that domain's backend tree.
///
/// # Safety
///
/// `xdev` must be a device of this bus being probed or restored.
unsafe extern "C" fn read_backend_details(xdev: *mut bindings::xenbus_device) -> c_int {
    // SAFETY: `xdev` is valid; the core takes the node names as `char *` but does not write them.
    let err = unsafe {
        bindings::xenbus_read_otherend_details(
            xdev,
            c"backend-id".as_char_ptr().cast_mut(),
            c"backend".as_char_ptr().cast_mut(),
        )
    };
    if err != 0 {
        return err;
    }
    // SAFETY: On success the core set `otherend` to a string it allocated.
    let (id, otherend, node) = unsafe {
        (
            (*xdev).otherend_id,
            CStr::from_char_ptr((*xdev).otherend),
            CStr::from_char_ptr((*xdev).nodename),
        )
    };
    if (0..DOMID_FIRST_RESERVED).contains(&id) && path_in_domain(otherend.to_bytes(), id, "backend")
    {
        return 0;
    }
    pr_warn!(
        "{}: backend {} of domain {} is not under /local/domain/{}/backend, refusing it\n",
        node,
        otherend,
        id,
        id
    );
    // SAFETY: `xdev` is valid; the format takes the one string given. `otherend` is the core's
    // allocation, freed and cleared as the core does when it refuses one.
    unsafe {
        bindings::xenbus_dev_fatal(
            xdev,
            EINVAL.to_errno(),
            c"%s".as_char_ptr(),
            c"backend is not in the backend domain's backend tree".as_char_ptr(),
        );
        bindings::kfree((*xdev).otherend.cast());
        (*xdev).otherend = ptr::null();
    }
    EINVAL.to_errno()
}

/// Whether `dev` (of `drv`, if given) is still connecting, ignoring the drivers that do not
/// hold up the boot if `ignore_nonessential`.
///
/// # Safety
///
/// `dev` must be a device of this bus and `drv` null or a driver of this bus.
unsafe fn is_device_connecting(
    dev: *mut bindings::device,
    drv: *mut bindings::device_driver,
    ignore_nonessential: bool,
) -> bool {
    // SAFETY: `dev` is a device of this bus, referenced by `bus_for_each_dev`.
    let driver = unsafe { (*dev).driver };
    // A device with no driver never connects.
    if driver.is_null() || (!drv.is_null() && driver != drv) {
        return false;
    }
    // SAFETY: The drivers of this bus are `struct xenbus_driver`s.
    let xdrv = unsafe { kernel::container_of!(driver, bindings::xenbus_driver, driver) };
    // SAFETY: `xdrv` is a registered driver, and `dev` a device of this bus.
    unsafe {
        if ignore_nonessential && (*xdrv).not_essential {
            return false;
        }
        let xdev = to_xenbus_device(dev);
        let state = (*xdev).state;
        state.0 < State::XenbusStateConnected.0
            || (state == State::XenbusStateConnected
                && (*xdrv).is_ready.is_some_and(|ready| ready(xdev) == 0))
    }
}

/// `bus_for_each_dev` callback: stops at a connecting device of an essential driver.
///
/// # Safety
///
/// `dev` must be a device of this bus and `data` null or a driver of this bus.
unsafe extern "C" fn essential_device_connecting(
    dev: *mut bindings::device,
    data: *mut c_void,
) -> c_int {
    // SAFETY: Called by `bus_for_each_dev` on this bus with the driver (or null) as `data`.
    c_int::from(unsafe { is_device_connecting(dev, data.cast(), true) })
}

/// `bus_for_each_dev` callback: stops at any connecting device.
///
/// # Safety
///
/// `dev` must be a device of this bus and `data` null or a driver of this bus.
unsafe extern "C" fn non_essential_device_connecting(
    dev: *mut bindings::device,
    data: *mut c_void,
) -> c_int {
    // SAFETY: Called by `bus_for_each_dev` on this bus with the driver (or null) as `data`.
    c_int::from(unsafe { is_device_connecting(dev, data.cast(), false) })
}

/// `bus_for_each_dev` callback: says why a device did not connect.
///
/// # Safety
///
/// `dev` must be a device of this bus and `data` null or a driver of this bus.
unsafe extern "C" fn print_device_status(dev: *mut bindings::device, data: *mut c_void) -> c_int {
    // SAFETY: Called by `bus_for_each_dev` on this bus, with a referenced device.
    let (xdev, driver) = unsafe { (to_xenbus_device(dev), (*dev).driver) };
    if !data.is_null() && driver != data.cast() {
        return 0;
    }
    // SAFETY: `xdev` is referenced; `otherend` is null or the core's string.
    unsafe {
        let node = CStr::from_char_ptr((*xdev).nodename);
        if driver.is_null() {
            pr_info!("Device with no driver: {}\n", node);
        } else if (*xdev).state.0 < State::XenbusStateConnected.0 {
            let remote = if (*xdev).otherend.is_null() {
                State::XenbusStateUnknown
            } else {
                bindings::xenbus_read_driver_state(xdev, (*xdev).otherend)
            };
            pr_warn!(
                "Timeout connecting to device: {} (local state {}, remote state {})\n",
                node,
                (*xdev).state.0,
                remote.0
            );
        }
    }
    0
}

/// Whether a device (of `drv`, if not null) is still connecting.
fn exists_connecting_device(drv: *mut bindings::device_driver, essential_only: bool) -> bool {
    let f = if essential_only {
        essential_device_connecting
    } else {
        non_essential_device_connecting
    };
    // SAFETY: The bus is registered; `f` takes `drv` as its data.
    unsafe {
        bindings::bus_for_each_dev(
            &raw const (*bus()).bus,
            ptr::null_mut(),
            drv.cast(),
            Some(f),
        ) != 0
    }
}

/// The jiffies counter.
fn jiffies() -> c_ulong {
    // SAFETY: `jiffies` is always valid; one aligned load, as the C macro reads it.
    unsafe { ptr::read_volatile(&raw const bindings::jiffies) }
}

/// One tenth of a second of waiting, with a progress line every 5 seconds; true once
/// `max_delay` seconds have passed since `start`.
fn wait_loop(start: c_ulong, max_delay: u32, seconds_waited: &mut u32) -> bool {
    let hz = msecs_to_jiffies(1000);
    let deadline = start.wrapping_add(
        c_ulong::try_from(*seconds_waited + 5)
            .unwrap_or(c_ulong::MAX)
            .wrapping_mul(hz),
    );
    // `time_after(jiffies, deadline)`.
    if (deadline.wrapping_sub(jiffies()) as c_long) < 0 {
        if *seconds_waited == 0 {
            pr_warn!("Waiting for devices to initialise: ");
        }
        *seconds_waited += 5;
        kernel::pr_cont!("{}s...", max_delay.saturating_sub(*seconds_waited));
        if *seconds_waited >= max_delay {
            kernel::pr_cont!("\n");
            return true;
        }
    }
    // SAFETY: Sleeping is allowed: this runs in an initcall or a driver's registration.
    unsafe { bindings::schedule_timeout_interruptible(msecs_to_jiffies(100) as c_long) };
    false
}

/// Waits (at most 5 minutes) for the devices of `drv`, or all, to connect, so that the root
/// file system and the network are there before the boot goes on.
fn wait_for_devices(drv: *mut bindings::device_driver) {
    // SAFETY: `xen_domain()` only reads the boot-time domain type.
    if !READY_TO_WAIT_FOR_DEVICES.load(Ordering::Acquire) || !unsafe { bindings::xen_domain() } {
        return;
    }
    let start = jiffies();
    let mut seconds_waited = 0;
    while exists_connecting_device(drv, false) {
        if wait_loop(start, 30, &mut seconds_waited) {
            break;
        }
    }
    // Keyboard and framebuffer frontends are not essential.
    while exists_connecting_device(drv, true) {
        if wait_loop(start, 270, &mut seconds_waited) {
            break;
        }
    }
    if seconds_waited != 0 {
        kernel::pr_cont!("\n");
    }
    // SAFETY: The bus is registered; the callback takes `drv` as its data.
    unsafe {
        bindings::bus_for_each_dev(
            &raw const (*bus()).bus,
            ptr::null_mut(),
            drv.cast(),
            Some(print_device_status),
        )
    };
}

/// Registers a frontend driver, and waits for its devices if it is a module loaded after boot.
///
/// # Safety
///
/// `drv` must be a valid driver that lives until it is unregistered, and `owner` and `mod_name`
/// its module's.
#[export]
pub unsafe extern "C" fn __xenbus_register_frontend(
    drv: *mut bindings::xenbus_driver,
    owner: *mut bindings::module,
    mod_name: *const c_char,
) -> c_int {
    // SAFETY: The caller gives a valid driver, not registered yet.
    let ret = unsafe {
        (*drv).read_otherend_details = Some(read_backend_details);
        bindings::xenbus_register_driver_common(drv, bus(), owner, mod_name)
    };
    if ret != 0 {
        return ret;
    }
    // SAFETY: `drv` is registered.
    wait_for_devices(unsafe { &raw mut (*drv).driver });
    0
}

/// The HVM reset's watch on the backend's state.
///
/// # Safety
///
/// `path` must be a NUL-terminated string.
unsafe extern "C" fn reset_backend_state_changed(
    _watch: *mut bindings::xenbus_watch,
    path: *const c_char,
    _token: *const c_char,
) {
    // SAFETY: `path` is the event's NUL-terminated path.
    let path = unsafe { CStr::from_char_ptr(path) };
    let state = Xenstore::read_parsed::<u32>(path, c"").map_or(State::XenbusStateUnknown, State);
    pr_debug!("XENBUS: backend {} {}\n", path, strstate(state));
    // SAFETY: Plain C function.
    unsafe { bindings::xen_xenbus_fe_reset_state_seen(state.0 as c_int) };
}

/// Resets a frontend found Connected or Closed (after kexec or in a kdump kernel): walks its
/// state back to Initialising, waiting for the backend at each step.
fn reset_frontend(fe: &CStr, be: &CStr, be_state: State) {
    pr_debug!("XENBUS: backend {} {}\n", be, strstate(be_state));
    let Ok(node) = CString::try_from_fmt(fmt!("{}/state", be)) else {
        return;
    };
    // SAFETY: All-zero is a valid unregistered watch.
    let mut watch: bindings::xenbus_watch = unsafe { core::mem::zeroed() };
    watch.node = node.as_char_ptr();
    watch.callback = Some(reset_backend_state_changed);
    // SAFETY: Plain C function.
    unsafe { bindings::xen_xenbus_fe_reset_state_seen(State::XenbusStateUnknown.0 as c_int) };
    pr_info!("triggering reconnect on {}\n", be);
    // SAFETY: `watch` and its node live until it is unregistered below.
    unsafe { bindings::register_xenbus_watch(&mut watch) };
    let step = |to: State, wait_for: State| {
        // A failed write shows as the backend not following, below.
        let _ = Xenstore::write_fmt(fe, c"state", fmt!("{}", to.0));
        // SAFETY: Plain C function.
        if !unsafe { bindings::xen_xenbus_fe_reset_wait(wait_for.0 as c_int) } {
            pr_info!("backend {} timed out\n", be);
        }
    };
    // Forward the backend to Initialising, from wherever it is.
    if be_state == State::XenbusStateConnected {
        step(State::XenbusStateClosing, State::XenbusStateClosing);
    }
    if be_state == State::XenbusStateConnected || be_state == State::XenbusStateClosing {
        step(State::XenbusStateClosed, State::XenbusStateClosed);
    }
    if be_state == State::XenbusStateConnected
        || be_state == State::XenbusStateClosing
        || be_state == State::XenbusStateClosed
    {
        step(State::XenbusStateInitialising, State::XenbusStateInitWait);
    }
    // SAFETY: Registered above.
    unsafe { bindings::unregister_xenbus_watch(&mut watch) };
    pr_info!("reconnect done on {}\n", be);
}

/// Resets `device/<class>/<dev>` if it was left Connected or Closed.
fn check_frontend(class: &CStr, dev: &CStr) -> Result {
    let fe = CString::try_from_fmt(fmt!("device/{}/{}", class, dev))?;
    let fe_state = State(Xenstore::read_parsed::<u32>(&fe, c"state")?);
    if fe_state != State::XenbusStateConnected && fe_state != State::XenbusStateClosed {
        return Ok(());
    }
    pr_debug!("XENBUS: frontend {} {}\n", &*fe, strstate(fe_state));
    let backend = Xenstore::read(&fe, c"backend")?;
    let be = CString::try_from_fmt(fmt!("{}", backend.as_str()?))?;
    let be_state = State(Xenstore::read_parsed::<u32>(&be, c"state")?);
    reset_frontend(&fe, &be, be_state);
    Ok(())
}

/// The HVM reset of every frontend left connected by a previous kernel.
fn reset_state() {
    let Ok(classes) = Xenstore::directory(c"device", c"") else {
        return;
    };
    for class in classes.iter() {
        let Ok(devs) = Xenstore::directory(c"device", class) else {
            continue;
        };
        for dev in devs.iter() {
            // A device that cannot be read is left as it is, as C does.
            let _ = check_frontend(class, dev);
        }
    }
}

/// The xenstore notifier: xenstore is up, so find the devices and watch for more.
///
/// # Safety
///
/// Called by the xenstore notifier chain.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_probe_and_watch(
    _nb: *mut bindings::notifier_block,
    _event: c_ulong,
    _data: *mut c_void,
) -> c_int {
    // SAFETY: `xen_hvm_domain()` only reads the boot-time domain type.
    if unsafe { bindings::xen_hvm_domain() } {
        reset_state();
    }
    // SAFETY: The bus is registered; the watch lives in the glue forever.
    unsafe {
        bindings::xenbus_probe_devices(bus());
        bindings::register_xenbus_watch(&raw mut bindings::xen_xenbus_fe_watch);
    }
    bindings::NOTIFY_DONE as c_int
}

/// The `subsys_initcall`: registers the bus, and finds its devices once xenstore is up.
///
/// # Safety
///
/// Called once, by the glue's initcall.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_init() -> c_int {
    // SAFETY: The bus and the notifier live in the glue forever; called once.
    unsafe {
        let err = bindings::bus_register(&raw const (*bus()).bus);
        if err != 0 {
            return err;
        }
        bindings::register_xenstore_notifier(&raw mut bindings::xen_xenbus_fe_notifier);
    }
    pr_info!("frontend bus xen (Rust)\n");
    0
}

/// The `late_initcall`: from now on drivers wait for their devices; wait for those found at
/// boot.
///
/// # Safety
///
/// Called once, by the glue's initcall.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_fe_boot_wait() {
    READY_TO_WAIT_FOR_DEVICES.store(true, Ordering::Release);
    wait_for_devices(ptr::null_mut());
}

#[cfg(CONFIG_XEN_XENBUS_KUNIT_TEST)]
#[kunit_tests(rust_xen_xenbus_frontend)]
mod tests {
    use super::*;

    /// The bus id of `node`, as a string, or `None`.
    fn bus_id(node: &[u8]) -> Option<KVec<u8>> {
        let mut out = [0xffu8; BUS_ID_SIZE];
        bus_id_of(node, &mut out)?;
        let len = out.iter().position(|&c| c == 0)?;
        let mut v = KVec::new();
        v.extend_from_slice(out.get(..len)?, GFP_KERNEL).ok()?;
        Some(v)
    }

    #[test]
    fn bus_ids_are_type_dash_id() {
        assert_eq!(
            bus_id(b"device/vbd/51712").as_deref(),
            Some(&b"vbd-51712"[..])
        );
        assert_eq!(bus_id(b"device/demo/0").as_deref(), Some(&b"demo-0"[..]));
        assert_eq!(
            bus_id(b"device/xrbad/ok_1@x-y").as_deref(),
            Some(&b"xrbad-ok_1@x-y"[..])
        );
        // Only the first slash after the type becomes a dash, as in C.
        assert_eq!(bus_id(b"device/a/b/c").as_deref(), Some(&b"a-b/c"[..]));
    }

    #[test]
    fn bus_ids_that_do_not_fit_or_have_no_id_are_refused() {
        // 19 bytes and the NUL fit; 20 do not.
        assert_eq!(
            bus_id(b"device/abcdefghi/123456789").as_deref(),
            Some(&b"abcdefghi-123456789"[..])
        );
        assert_eq!(bus_id(b"device/abcdefghi/1234567890"), None);
        assert_eq!(bus_id(b"device/xrbad/aaaaaaaaaaaaaaaaaaaaaaaa"), None);
        assert_eq!(bus_id(b"device/vbd"), None);
        assert_eq!(bus_id(b"device"), None);
        assert_eq!(bus_id(b""), None);
    }

    #[test]
    fn an_other_end_must_be_in_its_domains_tree() {
        let ok = |p: &[u8], d| path_in_domain(p, d, "backend");
        assert!(ok(b"/local/domain/0/backend/vbd/5/51712", 0));
        assert!(ok(b"/local/domain/32752/backend/x", 32752));
        // Another domain's tree, another tree, the tree itself, a longer name, relative paths.
        assert!(!ok(b"/local/domain/5/backend/vbd/5/51712", 0));
        assert!(!ok(b"/local/domain/0/device/vbd/51712", 0));
        assert!(!ok(b"/local/domain/0/data/xr-fake-end", 0));
        assert!(!ok(b"/local/domain/0/backend/", 0));
        assert!(!ok(b"/local/domain/0/backend", 0));
        assert!(!ok(b"/local/domain/0/backendx/vbd", 0));
        assert!(!ok(b"/local/domain/00/backend/vbd", 0));
        assert!(!ok(b"/local/domain/10/backend/vbd", 1));
        assert!(!ok(b"local/domain/0/backend/vbd", 0));
        assert!(!ok(b"backend/vbd/5/51712", 0));
        assert!(!ok(b"", 0));
    }
}
