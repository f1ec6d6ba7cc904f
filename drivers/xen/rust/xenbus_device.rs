// SPDX-License-Identifier: GPL-2.0

//! The xenbus device model, in Rust.
//!
//! This crate replaces `drivers/xen/xenbus/xenbus_device.c` when `XEN_XENBUS_RUST` is set. It is
//! what both xenbus buses (`xen` and `xen-backend`) share: matching drivers to devices by type,
//! probing and removing devices (the other end's details and its watch, the driver's module
//! reference and its reclaim semaphore), creating a device for a xenstore directory
//! (`xenbus_probe_node`) and enumerating a bus's root, following the bus's watch as devices
//! appear, change and vanish (`xenbus_dev_changed`, with the detection of a backend that crashed
//! and came back), freeze/thaw/restore, and the sysfs attributes of every xenbus device.
//!
//! The buses (`xenbus_frontend.rs`, `xenbus_backend.rs`, or their C twins) call it through the
//! functions `xenbus.h` declares; `xenbus_probe.c` keeps the xenstore bring-up and the xenstore
//! notifier chain. `drivers/xen/rust/xenbus-device-glue.c` holds the sysfs attribute tables,
//! whose show and store are here, and the exports.
//!
//! Xenstore is written by other domains: the device directories, the `state`, `backend-id`
//! and `backend` (or `frontend-id` and `frontend`) nodes read here are untrusted. Where this
//! differs from C, it is stricter: a `state` or other-end id must be a plain decimal number
//! (C's `%d`/`%i` take `1x` as 1 and `0x1` as 1), and removing a whole type directory removes
//! its devices (C ignores that event and keeps them).

use core::{
    ffi::c_void,
    ptr, //
};
use kernel::{
    alloc::{
        allocator::Kmalloc,
        Allocator,
        NumaNode, //
    },
    bindings,
    device::Device,
    error::from_err_ptr,
    ffi::{
        c_char,
        c_int,
        c_uint, //
    },
    prelude::*,
    str::CString,
    xen::xenstore::Xenstore, //
};

use bindings::xenbus_state as State;

/// The prefix of this crate's messages: `KBUILD_MODNAME` of the `xenbus` object, as C's.
const __LOG_PREFIX: &[u8] = b"xenbus\0";

/// The bus name a device may have: `XEN_BUS_ID_SIZE` bytes with the NUL.
const BUS_ID_SIZE: usize = bindings::XEN_BUS_ID_SIZE as usize;

/// The transaction that is none (`XBT_NIL`).
const XBT_NIL: bindings::xenbus_transaction = bindings::xenbus_transaction { id: 0 };

/// The `struct xenbus_device` whose `dev` member `dev` is.
///
/// # Safety
///
/// `dev` must point to the `dev` member of a `struct xenbus_device`.
unsafe fn to_xenbus_device(dev: *const bindings::device) -> *mut bindings::xenbus_device {
    // SAFETY: The caller guarantees `dev` is inside a `struct xenbus_device`.
    unsafe { kernel::container_of!(dev.cast_mut(), bindings::xenbus_device, dev) }
}

/// The `struct xenbus_driver` whose `driver` member `drv` is.
///
/// # Safety
///
/// `drv` must point to the `driver` member of a `struct xenbus_driver`.
unsafe fn to_xenbus_driver(drv: *const bindings::device_driver) -> *mut bindings::xenbus_driver {
    // SAFETY: The caller guarantees `drv` is inside a `struct xenbus_driver`.
    unsafe { kernel::container_of!(drv.cast_mut(), bindings::xenbus_driver, driver) }
}

/// The device `xdev` as a [`Device`], for the `dev_*!` messages.
///
/// # Safety
///
/// `xdev` must be a registered device, alive for the returned lifetime.
unsafe fn device<'a>(xdev: *mut bindings::xenbus_device) -> &'a Device {
    // SAFETY: The caller guarantees `xdev` is alive and registered, so its `dev` is too.
    unsafe { Device::from_raw(&raw mut (*xdev).dev) }
}

/// The device's node name, `device/<type>/<id>` or `backend/<type>/<domid>/<id>`.
///
/// # Safety
///
/// `xdev` must be alive for the returned lifetime.
unsafe fn nodename<'a>(xdev: *const bindings::xenbus_device) -> &'a CStr {
    // SAFETY: `nodename` is set at creation to a string that lives as long as the device.
    unsafe { CStr::from_char_ptr((*xdev).nodename) }
}

/// The entry of `ids` (ended by an empty type) that names the type `devicetype`.
///
/// # Safety
///
/// `ids` must be null or a driver's table of ids, ended by an entry with an empty type.
unsafe fn match_device(
    mut ids: *const bindings::xenbus_device_id,
    devicetype: &CStr,
) -> *const bindings::xenbus_device_id {
    if ids.is_null() {
        return ptr::null();
    }
    loop {
        // SAFETY: `ids` points into the table, which is ended by an empty type: the loop stops
        // there. `devicetype` is a NUL-terminated array of the entry.
        let ty = unsafe { CStr::from_char_ptr((*ids).devicetype.as_ptr()) };
        if ty.is_empty() {
            return ptr::null();
        }
        if ty == devicetype {
            return ids;
        }
        // SAFETY: Not the last entry, so the next one is in the table.
        ids = unsafe { ids.add(1) };
    }
}

/// The bus's `match`: whether `drv` takes devices of `dev`'s type.
///
/// # Safety
///
/// `dev` and `drv` must be a device and a driver of a xenbus bus.
#[export]
pub unsafe extern "C" fn xenbus_match(
    dev: *mut bindings::device,
    drv: *const bindings::device_driver,
) -> c_int {
    // SAFETY: Both are the bus's; `devicetype` lives as long as the device.
    unsafe {
        let xdrv = to_xenbus_driver(drv);
        let ty = CStr::from_char_ptr((*to_xenbus_device(dev)).devicetype);
        c_int::from(!match_device((*xdrv).ids, ty).is_null())
    }
}

/// Frees the other end's path.
///
/// # Safety
///
/// `xdev` must be alive, and nothing else use its `otherend` during the call.
unsafe fn free_otherend_details(xdev: *mut bindings::xenbus_device) {
    // SAFETY: `otherend` is null or a string the core (or a bus refusing it) allocated.
    unsafe {
        bindings::kfree((*xdev).otherend.cast());
        (*xdev).otherend = ptr::null();
    }
}

/// Unregisters and frees the watch on the other end's state, if there is one.
///
/// # Safety
///
/// `xdev` must be alive, and nothing else change its `otherend_watch` during the call.
unsafe fn free_otherend_watch(xdev: *mut bindings::xenbus_device) {
    // SAFETY: A non-null `node` means `watch_otherend` registered the watch with a node it
    // allocated; unregistering waits for its callbacks to finish.
    unsafe {
        if !(*xdev).otherend_watch.node.is_null() {
            bindings::unregister_xenbus_watch(&raw mut (*xdev).otherend_watch);
            bindings::kfree((*xdev).otherend_watch.node.cast());
            (*xdev).otherend_watch.node = ptr::null();
        }
    }
}

/// Reads the other end's details again, as the driver's bus reads them.
///
/// # Safety
///
/// `xdev` must be a device bound to a driver (being probed or restored).
unsafe fn talk_to_otherend(xdev: *mut bindings::xenbus_device) -> c_int {
    // SAFETY: `xdev` is bound, so `driver` is a `struct xenbus_driver`.
    unsafe {
        let xdrv = to_xenbus_driver((*xdev).dev.driver);
        free_otherend_watch(xdev);
        free_otherend_details(xdev);
        match (*xdrv).read_otherend_details {
            Some(read) => read(xdev),
            // Set by `__xenbus_register_frontend/backend`; a driver registered otherwise has
            // no other end to follow.
            None => {
                dev_warn!(
                    device(xdev),
                    "xenbus: {}: the driver does not read other end details\n",
                    nodename(xdev)
                );
                ENODEV.to_errno()
            }
        }
    }
}

/// Watches the other end's `state`, with the bus's callbacks.
///
/// # Safety
///
/// `xdev` must be a device of a xenbus bus, bound, with its other end read.
unsafe fn watch_otherend(xdev: *mut bindings::xenbus_device) -> c_int {
    // SAFETY: `xdev` is a device of a xenbus bus, whose `bus_type` is inside a `xen_bus_type`;
    // `otherend` is set. The format takes the two strings given.
    unsafe {
        let bus = kernel::container_of!((*xdev).dev.bus.cast_mut(), bindings::xen_bus_type, bus);
        bindings::xenbus_watch_pathfmt(
            xdev,
            &raw mut (*xdev).otherend_watch,
            (*bus).otherend_will_handle,
            (*bus).otherend_changed,
            c"%s/%s".as_char_ptr(),
            (*xdev).otherend,
            c"state".as_char_ptr(),
        )
    }
}

/// Reports `err` in xenstore (the device's `error` node) and the log, and switches the device
/// to Closing: `xenbus_dev_fatal` with one string.
///
/// # Safety
///
/// `xdev` must be alive.
unsafe fn dev_fatal(xdev: *mut bindings::xenbus_device, err: c_int, msg: &CStr) {
    // SAFETY: `xdev` is alive; the format takes the one string given.
    unsafe { bindings::xenbus_dev_fatal(xdev, err, c"%s".as_char_ptr(), msg.as_char_ptr()) };
}

/// Reads the other end's domain (`id_node`, a decimal domain id) and path (`path_node`, a node
/// that must exist) into `otherend_id` and `otherend`.
///
/// # Safety
///
/// `xdev` must be a device being probed or restored, and `id_node` and `path_node`
/// NUL-terminated strings.
#[export]
pub unsafe extern "C" fn xenbus_read_otherend_details(
    xdev: *mut bindings::xenbus_device,
    id_node: *mut c_char,
    path_node: *mut c_char,
) -> c_int {
    // SAFETY: The caller passes a live device and NUL-terminated names.
    let (node, id_node) = unsafe { (nodename(xdev), CStr::from_char_ptr(id_node)) };
    let read = || -> Result<(u16, *mut c_char)> {
        let id = Xenstore::read_parsed::<u16>(node, id_node)?;
        // SAFETY: The strings are NUL-terminated; the result is a string the caller frees with
        // `kfree`, or an error pointer.
        let path = from_err_ptr(unsafe {
            bindings::xenbus_read(XBT_NIL, node.as_char_ptr(), path_node, ptr::null_mut())
        })?;
        Ok((id, path.cast()))
    };
    let (id, path) = match read() {
        Ok(v) => v,
        Err(e) => {
            let Ok(msg) = CString::try_from_fmt(fmt!("reading other end details from {}", node))
            else {
                return ENOMEM.to_errno();
            };
            // SAFETY: `xdev` is alive.
            unsafe { dev_fatal(xdev, e.to_errno(), &msg) };
            return e.to_errno();
        }
    };
    // SAFETY: `xdev` is alive; `path` is a NUL-terminated string now owned by it.
    unsafe {
        (*xdev).otherend_id = c_int::from(id);
        (*xdev).otherend = path;
    }
    // SAFETY: `path` is NUL-terminated.
    let other = unsafe { CStr::from_char_ptr(path) };
    if other.is_empty() || !Xenstore::exists(other, c"") {
        if let Ok(msg) = CString::try_from_fmt(fmt!(
            "unable to read other end from {}.  missing or inaccessible.",
            node
        )) {
            // SAFETY: `xdev` is alive.
            unsafe { dev_fatal(xdev, ENOENT.to_errno(), &msg) };
        }
        // SAFETY: `xdev` is alive and `otherend` is its own.
        unsafe { free_otherend_details(xdev) };
        return ENOENT.to_errno();
    }
    0
}

/// The state of the xenbus device at `dir`: `Unknown` unless `dir/state` is a decimal number.
fn read_state(dir: &CStr) -> State {
    Xenstore::read_parsed::<u32>(dir, c"state").map_or(State::XenbusStateUnknown, State)
}

/// The state at `dir` of `xdev` or its other end, as `xenbus_read_driver_state` reads it:
/// `Unknown` once the device vanished from xenstore.
///
/// # Safety
///
/// `xdev` must be alive.
unsafe fn read_dev_state(xdev: *const bindings::xenbus_device, dir: &CStr) -> State {
    // SAFETY: `xdev` is alive.
    if unsafe { (*xdev).vanished } {
        return State::XenbusStateUnknown;
    }
    read_state(dir)
}

/// The other end's state changed: tells the driver, unless the event is for an old other end
/// or the system is shutting down (then a Closing other end is answered by Closed if
/// `ignore_on_shutdown`, so that it does not wait for a driver that will not answer).
///
/// # Safety
///
/// `watch` must be the `otherend_watch` of a bound device; `path` is the event's path.
#[export]
pub unsafe extern "C" fn xenbus_otherend_changed(
    watch: *mut bindings::xenbus_watch,
    path: *const c_char,
    _token: *const c_char,
    ignore_on_shutdown: c_int,
) {
    // SAFETY: `watch` is the `otherend_watch` of a `struct xenbus_device`, which is bound while
    // its watch is registered.
    let (xdev, xdrv, path) = unsafe {
        let xdev = kernel::container_of!(watch, bindings::xenbus_device, otherend_watch);
        (
            xdev,
            to_xenbus_driver((*xdev).dev.driver),
            CStr::from_char_ptr(path),
        )
    };
    // SAFETY: `xdev` is alive; the watch is unregistered before `otherend` is freed.
    let other_ptr = unsafe { (*xdev).otherend };
    let other = if other_ptr.is_null() {
        None
    } else {
        // SAFETY: A non-null `otherend` is a NUL-terminated string.
        Some(unsafe { CStr::from_char_ptr(other_ptr) })
    };
    // An event on old details, say right after a resume changed them.
    let Some(other) = other.filter(|o| path.to_bytes().starts_with(o.to_bytes())) else {
        // SAFETY: `xdev` is registered.
        dev_dbg!(unsafe { device(xdev) }, "Ignoring watch at {}\n", path);
        return;
    };
    // SAFETY: `xdev` is alive.
    let state = unsafe { read_dev_state(xdev, other) };
    // SAFETY: `xdev` is registered.
    dev_dbg!(unsafe { device(xdev) }, "state is {}, {}\n", state.0, path);
    // Nothing that could fail (the root file system may be gone) during shutdown.
    // SAFETY: `system_state` is an aligned word the boot and shutdown code write.
    if unsafe { ptr::read_volatile(&raw const bindings::system_state) }
        > bindings::system_states_SYSTEM_RUNNING
    {
        if ignore_on_shutdown != 0 && state == State::XenbusStateClosing {
            // SAFETY: `xdev` is alive.
            unsafe { bindings::xenbus_frontend_closed(xdev) };
        }
        return;
    }
    // SAFETY: The driver is bound; its callback takes the device and the state.
    if let Some(changed) = unsafe { (*xdrv).otherend_changed } {
        // SAFETY: As above.
        unsafe { changed(xdev, state) };
    }
}

/// Calls the driver's `remove` under the device's reclaim semaphore.
///
/// # Safety
///
/// `xdev` must be bound to `xdrv`, and probed.
unsafe fn driver_remove(xdev: *mut bindings::xenbus_device, xdrv: *mut bindings::xenbus_driver) {
    // SAFETY: As the caller guarantees; `reclaim_sem` was initialised at creation.
    unsafe {
        if let Some(remove) = (*xdrv).remove {
            bindings::down(&raw mut (*xdev).reclaim_sem);
            remove(xdev);
            bindings::up(&raw mut (*xdev).reclaim_sem);
        }
    }
}

/// The bus's `probe`: reads the other end, takes the driver's module, probes the driver, then
/// watches the other end's state.
///
/// # Safety
///
/// `dev` must be a device of a xenbus bus, being bound by the driver core.
#[export]
pub unsafe extern "C" fn xenbus_dev_probe(dev: *mut bindings::device) -> c_int {
    // SAFETY: The driver core binds `dev` to a driver of its bus.
    let (xdev, xdrv) = unsafe { (to_xenbus_device(dev), to_xenbus_driver((*dev).driver)) };
    // SAFETY: `xdev` is being probed: alive and registered; `xdrv` is its driver.
    unsafe {
        let node = nodename(xdev);
        pr_debug!("xenbus_probe (xenbus_dev_probe) {}.\n", node);
        let err = 'fail: {
            let Some(probe) = (*xdrv).probe else {
                break 'fail ENODEV.to_errno();
            };
            let id = match_device((*xdrv).ids, CStr::from_char_ptr((*xdev).devicetype));
            if id.is_null() {
                break 'fail ENODEV.to_errno();
            }
            let err = talk_to_otherend(xdev);
            if err != 0 {
                dev_warn!(
                    device(xdev),
                    "xenbus: talk_to_otherend on {} failed.\n",
                    node
                );
                return err;
            }
            let owner = (*xdrv).driver.owner;
            if !bindings::try_module_get(owner) {
                dev_warn!(
                    device(xdev),
                    "xenbus: failed to acquire module reference on '{}'\n",
                    CStr::from_char_ptr((*xdrv).driver.name)
                );
                free_otherend_details(xdev);
                break 'fail ESRCH.to_errno();
            }
            bindings::down(&raw mut (*xdev).reclaim_sem);
            let err = probe(xdev, id);
            bindings::up(&raw mut (*xdev).reclaim_sem);
            if err != 0 {
                bindings::xen_module_put(owner);
                free_otherend_details(xdev);
                break 'fail err;
            }
            let err = watch_otherend(xdev);
            if err != 0 {
                dev_warn!(device(xdev), "xenbus: watch_otherend on {} failed.\n", node);
                driver_remove(xdev, xdrv);
                bindings::xen_module_put(owner);
                free_otherend_details(xdev);
                break 'fail err;
            }
            (*xdev).spurious_threshold = 1;
            if bindings::xen_sysfs_create_group(
                &raw mut (*dev).kobj,
                &raw const bindings::xen_xenbus_stat_group,
            ) != 0
            {
                dev_warn!(
                    device(xdev),
                    "xenbus: sysfs_create_group on {} failed.\n",
                    node
                );
            }
            return 0;
        };
        bindings::xenbus_dev_error(
            xdev,
            err,
            c"xenbus_dev_probe on %s".as_char_ptr(),
            node.as_char_ptr(),
        );
        err
    }
}

/// The bus's `remove`: stops following the other end, removes the driver, drops its module,
/// and closes the device if the toolstack asked for it or the driver cannot bind it again.
///
/// # Safety
///
/// `dev` must be a bound device of a xenbus bus, being unbound by the driver core.
#[export]
pub unsafe extern "C" fn xenbus_dev_remove(dev: *mut bindings::device) {
    // SAFETY: The driver core unbinds `dev` from its driver, which `xenbus_dev_probe` probed.
    unsafe {
        let xdev = to_xenbus_device(dev);
        let xdrv = to_xenbus_driver((*dev).driver);
        pr_debug!("xenbus_probe (xenbus_dev_remove) {}.\n", nodename(xdev));
        bindings::xen_sysfs_remove_group(
            &raw mut (*dev).kobj,
            &raw const bindings::xen_xenbus_stat_group,
        );
        free_otherend_watch(xdev);
        driver_remove(xdev, xdrv);
        bindings::xen_module_put((*xdrv).driver.owner);
        free_otherend_details(xdev);
        if !(*xdrv).allow_rebind
            || read_dev_state(xdev, nodename(xdev)) == State::XenbusStateClosing
        {
            bindings::xenbus_switch_state(xdev, State::XenbusStateClosed);
        }
    }
}

/// Registers `drv` on `bus`, named after its first type if it has no name.
///
/// # Safety
///
/// `drv` must be a driver that lives until it is unregistered, `bus` a registered xenbus bus,
/// and `owner` and `mod_name` the driver's module's.
#[export]
pub unsafe extern "C" fn xenbus_register_driver_common(
    drv: *mut bindings::xenbus_driver,
    bus: *mut bindings::xen_bus_type,
    owner: *mut bindings::module,
    mod_name: *const c_char,
) -> c_int {
    // SAFETY: The caller passes a driver not registered yet, and the bus.
    unsafe {
        let name = if !(*drv).name.is_null() {
            (*drv).name
        } else if !(*drv).ids.is_null() {
            (*(*drv).ids).devicetype.as_ptr()
        } else {
            pr_warn!("a xenbus driver with neither a name nor ids\n");
            return EINVAL.to_errno();
        };
        (*drv).driver.name = name;
        (*drv).driver.bus = &raw const (*bus).bus;
        (*drv).driver.owner = owner;
        (*drv).driver.mod_name = mod_name;
        bindings::driver_register(&raw mut (*drv).driver)
    }
}

/// Unregisters `drv`.
///
/// # Safety
///
/// `drv` must be a registered xenbus driver.
#[export]
pub unsafe extern "C" fn xenbus_unregister_driver(drv: *mut bindings::xenbus_driver) {
    // SAFETY: The caller passes a registered driver.
    unsafe { bindings::driver_unregister(&raw mut (*drv).driver) };
}

/// What [`find_device`] looks for and what it found.
struct Find<'a> {
    /// The node name to look for.
    path: &'a [u8],
    /// Whether devices below `path` match too.
    below: bool,
    /// The device found, referenced.
    found: *mut bindings::xenbus_device,
}

/// Whether a device named `node` is the one at `path`, or (if `below`) at or below it.
fn node_matches(node: &[u8], path: &[u8], below: bool) -> bool {
    if below {
        node.strip_prefix(path)
            .is_some_and(|rest| rest.is_empty() || rest.first() == Some(&b'/'))
    } else {
        node == path
    }
}

/// `bus_for_each_dev` callback of [`find_device`].
///
/// # Safety
///
/// `dev` must be a device of a xenbus bus and `data` a `Find`.
unsafe extern "C" fn find_one(dev: *mut bindings::device, data: *mut c_void) -> c_int {
    // SAFETY: As the caller guarantees; `bus_for_each_dev` holds a reference to `dev`.
    let (find, xdev) = unsafe { (&mut *data.cast::<Find<'_>>(), to_xenbus_device(dev)) };
    // SAFETY: `xdev` is alive.
    if !node_matches(unsafe { nodename(xdev) }.to_bytes(), find.path, find.below) {
        return 0;
    }
    find.found = xdev;
    // SAFETY: `dev` is alive; the caller of `find_device` drops this reference.
    unsafe { bindings::get_device(dev) };
    1
}

/// The device of `bus` at `path` (or, if `below`, at or below it), referenced.
fn find_device(
    bus: *mut bindings::xen_bus_type,
    path: &[u8],
    below: bool,
) -> *mut bindings::xenbus_device {
    let mut find = Find {
        path,
        below,
        found: ptr::null_mut(),
    };
    // SAFETY: `bus` is a registered xenbus bus; `find_one` takes a `Find`, which outlives the
    // call.
    unsafe {
        bindings::bus_for_each_dev(
            &raw const (*bus).bus,
            ptr::null_mut(),
            (&raw mut find).cast(),
            Some(find_one),
        )
    };
    find.found
}

/// Unregisters every device of `bus` at or below `path`, which vanished from xenstore.
fn cleanup_devices(bus: *mut bindings::xen_bus_type, path: &[u8]) {
    loop {
        let xdev = find_device(bus, path, true);
        if xdev.is_null() {
            return;
        }
        // SAFETY: `find_device` returned a referenced, registered device; this drops both the
        // registration and the reference.
        unsafe {
            dev_warn!(
                device(xdev),
                "xenbus: device forcefully removed from xenstore\n"
            );
            (*xdev).vanished = true;
            bindings::device_unregister(&raw mut (*xdev).dev);
            bindings::put_device(&raw mut (*xdev).dev);
        }
    }
}

/// The device's `release`: frees it with its strings, once the last reference is gone.
///
/// # Safety
///
/// `dev` must be the `dev` of a device `xenbus_probe_node` made, with no reference left.
unsafe extern "C" fn xenbus_dev_release(dev: *mut bindings::device) {
    // SAFETY: `dev` is inside a `struct xenbus_device` allocated with its strings by
    // `xenbus_probe_node`; nothing refers to it any more. `otherend` is null or its own.
    unsafe {
        let xdev = to_xenbus_device(dev);
        free_otherend_details(xdev);
        bindings::kfree(xdev.cast());
    }
}

/// Which of the xenbus device attributes `attr` is.
///
/// # Safety
///
/// `attr` must be one of the glue's xenbus device attributes.
unsafe fn attr_name<'a>(attr: *const bindings::device_attribute) -> &'a [u8] {
    // SAFETY: The glue's attributes have static names.
    unsafe { CStr::from_char_ptr((*attr).attr.name) }.to_bytes()
}

/// The `show` of every xenbus device attribute: `nodename`, `devtype`, `modalias`, `state`,
/// and in the `xenbus` group the event counters and `spurious_threshold`.
///
/// # Safety
///
/// `dev` must be a device of a xenbus bus, `attr` one of the glue's attributes, and `buf` a
/// sysfs page.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_attr_show(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    use core::fmt::Write;
    // SAFETY: sysfs hands `show` a page of its own, which may hold anything: it is zeroed first
    // so that the slice is of initialised bytes.
    let page = unsafe {
        ptr::write_bytes(buf.cast::<u8>(), 0, kernel::page::PAGE_SIZE);
        core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE)
    };
    let mut f = kernel::str::Formatter::new(page);
    // SAFETY: As the caller guarantees; the strings live as long as the device, and the
    // counters are atomics the event core updates, read once each as C's `atomic_read` does.
    let written = unsafe {
        let xdev = to_xenbus_device(dev);
        let counter = |a: *const bindings::atomic_t| ptr::read_volatile(&raw const (*a).counter);
        match attr_name(attr) {
            b"nodename" => f.write_fmt(fmt!("{}\n", nodename(xdev))),
            b"devtype" => f.write_fmt(fmt!("{}\n", CStr::from_char_ptr((*xdev).devicetype))),
            b"modalias" => f.write_fmt(fmt!(
                "{}:{}\n",
                CStr::from_char_ptr((*(*dev).bus).name),
                CStr::from_char_ptr((*xdev).devicetype)
            )),
            b"state" => f.write_fmt(fmt!(
                "{}\n",
                CStr::from_char_ptr(bindings::xenbus_strstate((*xdev).state))
            )),
            b"event_channels" => {
                f.write_fmt(fmt!("{}\n", counter(&raw const (*xdev).event_channels)))
            }
            b"events" => f.write_fmt(fmt!("{}\n", counter(&raw const (*xdev).events))),
            b"spurious_events" => {
                f.write_fmt(fmt!("{}\n", counter(&raw const (*xdev).spurious_events)))
            }
            b"jiffies_eoi_delayed" => f.write_fmt(fmt!(
                "{}\n",
                counter(&raw const (*xdev).jiffies_eoi_delayed)
            )),
            // C prints the unsigned threshold with `%d`.
            b"spurious_threshold" => f.write_fmt(fmt!(
                "{}\n",
                ptr::read_volatile(&raw const (*xdev).spurious_threshold) as c_int
            )),
            _ => return EIO.to_errno() as isize,
        }
    };
    match written {
        Ok(()) => f.bytes_written() as isize,
        // Only a node name longer than a page could: xenstore paths are at most 3072 bytes.
        Err(_) => EIO.to_errno() as isize,
    }
}

/// The `store` of `spurious_threshold`, the one writable attribute: a number as `kstrtouint`
/// reads it.
///
/// # Safety
///
/// `dev` must be a device of a xenbus bus, `attr` the glue's `spurious_threshold`, and `buf` a
/// NUL-terminated sysfs buffer of `count` bytes.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_attr_store(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: As the caller guarantees.
    if unsafe { attr_name(attr) } != b"spurious_threshold" {
        return EIO.to_errno() as isize;
    }
    let mut val: c_uint = 0;
    // SAFETY: `buf` is NUL-terminated; `val` is written on success only.
    let err = unsafe { bindings::kstrtouint(buf, 0, &mut val) };
    if err != 0 {
        return err as isize;
    }
    // SAFETY: `dev` is a device of a xenbus bus; the event core reads the threshold with plain
    // loads of one aligned word, as C's store is.
    unsafe { ptr::write_volatile(&raw mut (*to_xenbus_device(dev)).spurious_threshold, val) };
    count as isize
}

/// Creates and registers the device of `bus` at `nodename`, of type `type_`, if its `state`
/// is Initialising (a device in any other state is going away, or not a device).
///
/// # Safety
///
/// `bus` must be a registered xenbus bus, and `type_` and `nodename` NUL-terminated strings.
#[export]
pub unsafe extern "C" fn xenbus_probe_node(
    bus: *mut bindings::xen_bus_type,
    type_: *const c_char,
    nodename: *const c_char,
) -> c_int {
    // SAFETY: The caller passes NUL-terminated strings.
    let (ty, node) = unsafe { (CStr::from_char_ptr(type_), CStr::from_char_ptr(nodename)) };
    if read_state(node) != State::XenbusStateInitialising {
        return 0;
    }
    // One allocation: the device, then its node name and type, each with its NUL.
    let (name_len, type_len) = (node.to_bytes().len(), ty.to_bytes().len());
    let size = core::mem::size_of::<bindings::xenbus_device>() + name_len + 1 + type_len + 1;
    let Ok(layout) = core::alloc::Layout::from_size_align(
        size,
        core::mem::align_of::<bindings::xenbus_device>(),
    ) else {
        return ENOMEM.to_errno();
    };
    let Ok(mem) = Kmalloc::alloc(layout, GFP_KERNEL | __GFP_ZERO, NumaNode::NO_NODE) else {
        return ENOMEM.to_errno();
    };
    let xdev = mem.as_ptr().cast::<bindings::xenbus_device>();
    // SAFETY: `mem` is a zeroed allocation of `size` bytes, aligned for the device, with room
    // for both strings and their NULs (zero) after it; all-zero is a valid `xenbus_device`.
    unsafe {
        let names = xdev.add(1).cast::<u8>();
        ptr::copy_nonoverlapping(node.as_char_ptr().cast::<u8>(), names, name_len);
        ptr::copy_nonoverlapping(
            ty.as_char_ptr().cast::<u8>(),
            names.add(name_len + 1),
            type_len,
        );
        (*xdev).nodename = names.cast();
        (*xdev).devicetype = names.add(name_len + 1).cast();
        (*xdev).state = State::XenbusStateInitialising;
        bindings::init_completion(&raw mut (*xdev).down);
        (*xdev).dev.bus = &raw const (*bus).bus;
        (*xdev).dev.release = Some(xenbus_dev_release);
    }
    let mut devname: [c_char; BUS_ID_SIZE] = [0; BUS_ID_SIZE];
    // SAFETY: `bus` is a xenbus bus, whose `get_bus_id` writes at most `XEN_BUS_ID_SIZE` bytes.
    let mut err = unsafe {
        match (*bus).get_bus_id {
            Some(get) => get(devname.as_mut_ptr(), (*xdev).nodename),
            None => EINVAL.to_errno(),
        }
    };
    if err == 0 {
        // SAFETY: `get_bus_id` wrote a NUL-terminated name; the format takes it.
        err = unsafe {
            bindings::dev_set_name(&raw mut (*xdev).dev, c"%s".as_char_ptr(), devname.as_ptr())
        };
    }
    if err != 0 {
        // SAFETY: The device was not initialised, so nothing else refers to it.
        unsafe { bindings::kfree(xdev.cast()) };
        return err;
    }
    // SAFETY: `xdev` is fully set up; registration hands it to the driver core, which frees it
    // with `xenbus_dev_release` when the last reference goes, also when registration fails.
    unsafe {
        bindings::sema_init(&raw mut (*xdev).reclaim_sem, 1);
        let err = bindings::device_register(&raw mut (*xdev).dev);
        if err != 0 {
            bindings::put_device(&raw mut (*xdev).dev);
            return err;
        }
    }
    0
}

/// Probes the devices of one type: calls the bus's `probe` for each entry of `root/type_`,
/// stopping at the first error.
fn probe_device_type(bus: *mut bindings::xen_bus_type, root: &CStr, ty: &CStr) -> Result {
    let dir = Xenstore::directory(root, ty)?;
    // SAFETY: `bus` is a registered xenbus bus.
    let Some(probe) = (unsafe { (*bus).probe }) else {
        return Err(EINVAL);
    };
    for name in dir.iter() {
        // SAFETY: `bus` is the bus; the strings live during the call.
        let err = unsafe { probe(bus, ty.as_char_ptr(), name.as_char_ptr()) };
        if err != 0 {
            return Err(Error::from_errno(err));
        }
    }
    Ok(())
}

/// Probes every device under the bus's root, stopping at the first error (the buses decide
/// which of their devices' errors are errors).
///
/// # Safety
///
/// `bus` must be a registered xenbus bus.
#[export]
pub unsafe extern "C" fn xenbus_probe_devices(bus: *mut bindings::xen_bus_type) -> c_int {
    // SAFETY: The bus's root is a static string.
    let root = unsafe { CStr::from_char_ptr((*bus).root) };
    let result = Xenstore::directory(root, c"").and_then(|types| {
        types
            .iter()
            .try_for_each(|ty| probe_device_type(bus, root, ty))
    });
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The length of the first `levels + 1` components of `node`: `Some(len)` if it has at least
/// that many, the device directory a bus with `levels` levels below its root finds at `node`.
fn device_dir_len(node: &[u8], levels: usize) -> Option<usize> {
    let mut slashes = node.iter().enumerate().filter(|&(_, &c)| c == b'/');
    match slashes.nth(levels) {
        Some((i, _)) => Some(i),
        None => (node.iter().filter(|&&c| c == b'/').count() == levels).then_some(node.len()),
    }
}

/// Something changed at `node` under the bus's root: creates the device it belongs to if it is
/// new, removes the devices that vanished, and replaces a frontend device whose backend went
/// away without closing (its state was reset to Initialising, or its backend domain changed).
///
/// # Safety
///
/// `node` must be a NUL-terminated string and `bus` a registered xenbus bus.
#[export]
pub unsafe extern "C" fn xenbus_dev_changed(node: *const c_char, bus: *mut bindings::xen_bus_type) {
    // SAFETY: The caller passes NUL-terminated strings; the bus's root is static.
    let (path, root) = unsafe { (CStr::from_char_ptr(node), CStr::from_char_ptr((*bus).root)) };
    let bytes = path.to_bytes();
    let slashes = bytes.iter().filter(|&&c| c == b'/').count();
    // The root itself: nothing to do (a domain without devices may have no root at all).
    if slashes == 0 {
        return;
    }
    if !Xenstore::exists(path, c"") {
        // A device, or a part of one, or (C ignores this) a whole type of devices vanished.
        cleanup_devices(bus, bytes);
        return;
    }
    // A type directory that is there: its devices each have their own events.
    if slashes < 2 {
        return;
    }
    // SAFETY: `bus` is registered; `levels` is static.
    let levels = unsafe { (*bus).levels } as usize;
    let Some(dir_len) = device_dir_len(bytes, levels) else {
        return;
    };
    // `root/<type>/...`, the type truncated as C's buffer would.
    let ty_bytes = bytes.split(|&c| c == b'/').nth(1).unwrap_or_default();
    let ty_bytes = ty_bytes.get(..BUS_ID_SIZE - 1).unwrap_or(ty_bytes);
    // Xenstore paths are ASCII: xenstored refuses any other byte.
    let (Ok(dir), Ok(ty)) = (
        core::str::from_utf8(bytes.get(..dir_len).unwrap_or(bytes)),
        core::str::from_utf8(ty_bytes),
    ) else {
        return;
    };
    let (Ok(dir), Ok(ty)) = (
        CString::try_from_fmt(fmt!("{}", dir)),
        CString::try_from_fmt(fmt!("{}", ty)),
    ) else {
        return;
    };
    let mut xdev = find_device(bus, dir.to_bytes(), false);
    if !xdev.is_null() && root.to_bytes() == b"device" {
        // A backend domain that crashed removes the frontend without Closing; the toolstack
        // then writes the device again, Initialising. It may have crashed while Initialising
        // too: so a different backend domain also means a new device.
        // SAFETY: `xdev` is referenced by `find_device`.
        unsafe {
            let state = read_dev_state(xdev, &dir);
            let known = (*xdev).otherend_id;
            let backend =
                Xenstore::read_parsed::<u16>(&dir, c"backend-id").map_or(known, c_int::from);
            if state == State::XenbusStateInitialising
                && (state != (*xdev).state || (!(*xdev).otherend.is_null() && backend != known))
            {
                dev_warn!(
                    device(xdev),
                    "xenbus: state reset occurred (xenstore state {}, local state {}, xenstore backend {}, local backend {}), reconnecting\n",
                    state.0,
                    (*xdev).state.0,
                    backend,
                    known
                );
                (*xdev).vanished = true;
            }
            if (*xdev).vanished {
                bindings::device_unregister(&raw mut (*xdev).dev);
                bindings::put_device(&raw mut (*xdev).dev);
                xdev = ptr::null_mut();
            }
        }
    }
    if xdev.is_null() {
        // SAFETY: `bus` is registered and the strings live during the call. An error has been
        // reported where it happened.
        unsafe { xenbus_probe_node(bus, ty.as_char_ptr(), dir.as_char_ptr()) };
    } else {
        // SAFETY: Drops the reference `find_device` took.
        unsafe { bindings::put_device(&raw mut (*xdev).dev) };
    }
}

/// The bus's `freeze`: tells the driver the domain is being saved. A driver's error is
/// reported and ignored, as the save goes on anyway.
///
/// # Safety
///
/// `dev` must be a device of a xenbus bus.
#[export]
pub unsafe extern "C" fn xenbus_dev_freeze(dev: *mut bindings::device) -> c_int {
    // SAFETY: The PM core passes a device of the bus; `driver` is null or a xenbus driver.
    unsafe {
        let xdev = to_xenbus_device(dev);
        pr_debug!("xenbus_probe (xenbus_dev_freeze) {}.\n", nodename(xdev));
        if (*dev).driver.is_null() {
            return 0;
        }
        let xdrv = to_xenbus_driver((*dev).driver);
        if let Some(suspend) = (*xdrv).suspend {
            let err = suspend(xdev);
            if err != 0 {
                dev_warn!(device(xdev), "xenbus: freeze failed: {}\n", err);
            }
        }
    }
    0
}

/// The bus's `restore`: after a restore the other end is new; reads it again, resumes the
/// driver and watches the new other end.
///
/// # Safety
///
/// `dev` must be a device of a xenbus bus.
#[export]
pub unsafe extern "C" fn xenbus_dev_restore(dev: *mut bindings::device) -> c_int {
    // SAFETY: The PM core (or the frontend bus's work) passes a device of the bus; `driver` is
    // null or a xenbus driver.
    unsafe {
        let xdev = to_xenbus_device(dev);
        pr_debug!("xenbus_probe (xenbus_dev_restore) {}.\n", nodename(xdev));
        if (*dev).driver.is_null() {
            return 0;
        }
        let xdrv = to_xenbus_driver((*dev).driver);
        let err = talk_to_otherend(xdev);
        if err != 0 {
            dev_warn!(
                device(xdev),
                "xenbus: restore (talk_to_otherend) failed: {}\n",
                err
            );
            return err;
        }
        (*xdev).state = State::XenbusStateInitialising;
        if let Some(resume) = (*xdrv).resume {
            let err = resume(xdev);
            if err != 0 {
                dev_warn!(device(xdev), "xenbus: restore failed: {}\n", err);
                return err;
            }
        }
        let err = watch_otherend(xdev);
        if err != 0 {
            dev_warn!(
                device(xdev),
                "xenbus: restore (watch_otherend) failed: {}\n",
                err
            );
            return err;
        }
    }
    0
}

/// The bus's `thaw`: nothing to do, the other end did not change.
///
/// # Safety
///
/// Called by the PM core with a device of a xenbus bus.
#[export]
pub unsafe extern "C" fn xenbus_dev_thaw(_dev: *mut bindings::device) -> c_int {
    pr_debug!("xenbus_probe (xenbus_dev_thaw) thaw.\n");
    0
}

#[cfg(CONFIG_XEN_XENBUS_KUNIT_TEST)]
#[kunit_tests(rust_xen_xenbus_device)]
mod tests {
    use super::*;

    #[test]
    fn a_device_directory_is_the_buses_levels_below_its_root() {
        // The frontend bus: device/<type>/<id>.
        assert_eq!(device_dir_len(b"device/vbd/51712", 2), Some(16));
        assert_eq!(device_dir_len(b"device/vbd/51712/state", 2), Some(16));
        assert_eq!(device_dir_len(b"device/vbd/51712/a/b/c", 2), Some(16));
        assert_eq!(device_dir_len(b"device/vbd", 2), None);
        assert_eq!(device_dir_len(b"device", 2), None);
        // The backend bus: backend/<type>/<domid>/<id>.
        assert_eq!(device_dir_len(b"backend/vbd/5/51712/state", 3), Some(19));
        assert_eq!(device_dir_len(b"backend/vbd/5/51712", 3), Some(19));
        assert_eq!(device_dir_len(b"backend/vbd/5", 3), None);
        // Empty components are components, as in C.
        assert_eq!(device_dir_len(b"device//x/state", 2), Some(9));
        assert_eq!(device_dir_len(b"", 2), None);
    }

    #[test]
    fn a_device_is_found_by_its_name_or_a_node_below_it() {
        let below = |node: &[u8]| node_matches(node, b"device/vbd", true);
        assert!(below(b"device/vbd/51712"));
        assert!(below(b"device/vbd/51712/state"));
        assert!(below(b"device/vbd"));
        assert!(!below(b"device/vbdx/1"));
        assert!(!below(b"device/vb"));
        assert!(!below(b"device"));
        let exact = |node: &[u8]| node_matches(node, b"device/vbd/1", false);
        assert!(exact(b"device/vbd/1"));
        assert!(!exact(b"device/vbd/10"));
        assert!(!exact(b"device/vbd/1/x"));
        assert!(!exact(b"device/vbd"));
    }
}
