// SPDX-License-Identifier: GPL-2.0

//! The Xen backend bus, in Rust.
//!
//! This crate replaces `drivers/xen/xenbus/xenbus_probe_backend.c` when `XEN_XENBUS_RUST` is
//! set. It is the `xen-backend` bus that backend drivers (blkback, netback, pciback, the demo
//! backends, `kernel::xen::xenbus` backends) register with through `__xenbus_register_backend`:
//! it finds the devices under the domain's `backend/<type>/<frontend-id>/<id>` in xenstore,
//! names them `<type>-<frontend-id>-<id>`, sends the uevents the hotplug scripts use
//! (`MODALIAS=xen-backend:<type>`, `XENBUS_TYPE`, `XENBUS_PATH`, `XENBUS_BASE_PATH`), follows
//! the frontend's state (at most one event pending per device), and asks drivers to give back
//! memory under memory pressure. The device model itself (probe, remove, the other end's watch)
//! is the xenbus core, `xenbus_probe.c`, which calls back into this crate through the bus's
//! `struct xen_bus_type`.
//!
//! `drivers/xen/rust/xenbus-backend-glue.c` holds what Rust in this kernel cannot express: the
//! `struct xen_bus_type`, the watch and the notifier (tables the driver core and xenstore keep
//! pointers to), the `__init` initcall and the exports.
//!
//! The `frontend` path a backend follows leads into another domain's tree, which that domain
//! writes. Unlike the C bus, this one refuses a `frontend` outside
//! `/local/domain/<frontend-id>/device/`, a `frontend-id` that is not a domain id or not the
//! one in the device's path, and a bus name that another device already has, and keeps probing
//! the other devices when one of them is bad, each with a line in the log.

use core::{
    ffi::c_void,
    ptr, //
};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int,
        c_ulong, //
    },
    prelude::*,
    str::CString,
    xen::xenstore::Xenstore, //
};

/// The prefix of this crate's messages: the same as `pr_fmt` gives `xenbus_probe_backend.c`,
/// part of `xenbus.o`.
const __LOG_PREFIX: &[u8] = b"xenbus\0";

/// The bus name a device may have: `XEN_BUS_ID_SIZE` bytes with the NUL.
const BUS_ID_SIZE: usize = bindings::XEN_BUS_ID_SIZE as usize;

/// The first domain id that is not a domain (`DOMID_FIRST_RESERVED`).
const DOMID_FIRST_RESERVED: u32 = 0x7ff0;

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
    &raw mut bindings::xen_xenbus_backend
}

/// The parts of `backend/<type>/<frontend-id>/<id>`: the type, the frontend domain as the
/// path names it, and the id (the last component).
fn split_nodename(node: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = node.split(|&c| c == b'/');
    let _root = parts.next()?;
    let ty = parts.next().filter(|t| !t.is_empty())?;
    let domid = parts.next()?;
    let id = node.rsplit(|&c| c == b'/').next()?;
    Some((ty, domid, id))
}

/// `backend/<type>/<frontend-id>/<id>` => `<type>-<frontend-id>-<id>` in `out`, with the
/// frontend's id read from `frontend-id`; the error says why not.
fn bus_id_of(node: &CStr, out: &mut [u8; BUS_ID_SIZE]) -> Result<(), (Error, &'static str)> {
    let (ty, path_domid, id) =
        split_nodename(node.to_bytes()).ok_or((EINVAL, "not backend/<type>/<domain>/<id>"))?;
    let domid = Xenstore::read_parsed::<u32>(node, c"frontend-id")
        .map_err(|e| (e, "frontend-id is missing or not a number"))?;
    if domid >= DOMID_FIRST_RESERVED {
        return Err((EINVAL, "frontend-id is not a domain"));
    }
    let mut digits = [0u8; 8];
    let mut w = kernel::str::Formatter::new(&mut digits);
    let _ = core::fmt::Write::write_fmt(&mut w, format_args!("{domid}"));
    let n = w.bytes_written();
    if digits.get(..n) != Some(path_domid) {
        return Err((EINVAL, "frontend-id is not the domain in the path"));
    }
    let frontend = Xenstore::read(node, c"frontend").map_err(|e| (e, "frontend is missing"))?;
    if frontend.as_bytes().is_empty() {
        return Err((ERANGE, "frontend is empty"));
    }
    let fe = CString::try_from_fmt(fmt!(
        "{}",
        frontend.as_str().map_err(|e| (e, "frontend is not text"))?
    ))
    .map_err(|e| (e, "out of memory"))?;
    if !Xenstore::exists(&fe, c"") {
        return Err((ENOENT, "frontend does not exist"));
    }
    // `<type>-<domid>-<id>` and its NUL must fit.
    let mut len = 0;
    let mut push = |bytes: &[u8]| match out.get_mut(len..len + bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            len += bytes.len();
            true
        }
        None => false,
    };
    let digits = digits.get(..n).unwrap_or_default();
    if push(ty) && push(b"-") && push(digits) && push(b"-") && push(id) && push(b"\0") {
        Ok(())
    } else {
        Err((ENOSPC, "the bus id would be too long"))
    }
}

/// The xenbus core's `get_bus_id`: `backend/<type>/<frontend-id>/<id>` =>
/// `<type>-<frontend-id>-<id>`.
///
/// # Safety
///
/// `bus_id` must be valid for writing `XEN_BUS_ID_SIZE` bytes and `nodename` must be a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_be_bus_id(
    bus_id: *mut c_char,
    nodename: *const c_char,
) -> c_int {
    // SAFETY: The caller passes a NUL-terminated `nodename`.
    let node = unsafe { CStr::from_char_ptr(nodename) };
    // SAFETY: The caller passes a buffer of `XEN_BUS_ID_SIZE` bytes, which nothing else uses
    // during the call.
    let out = unsafe { &mut *bus_id.cast::<[u8; BUS_ID_SIZE]>() };
    if let Err((err, why)) = bus_id_of(node, out) {
        pr_warn!("{}: not a backend device: {}\n", node, why);
        return err.to_errno();
    }
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

/// The xenbus core's `probe` for one frontend domain: every `backend/<type>/<domid>/<id>`.
///
/// # Safety
///
/// `bus` must be this bus, and `type_` and `domid` NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_be_probe(
    bus: *mut bindings::xen_bus_type,
    type_: *const c_char,
    domid: *const c_char,
) -> c_int {
    // SAFETY: The caller passes NUL-terminated strings.
    let (ty, domid) = unsafe { (CStr::from_char_ptr(type_), CStr::from_char_ptr(domid)) };
    let Ok(dir) = CString::try_from_fmt(fmt!("backend/{}/{}", ty, domid)) else {
        return ENOMEM.to_errno();
    };
    let ids = match Xenstore::directory(&dir, c"") {
        Ok(ids) => ids,
        Err(e) => return e.to_errno(),
    };
    for id in ids.iter() {
        let Ok(node) = CString::try_from_fmt(fmt!("{}/{}", &*dir, id)) else {
            return ENOMEM.to_errno();
        };
        // SAFETY: `bus`, `type_` and `node` are valid for the call.
        let err = unsafe { bindings::xenbus_probe_node(bus, type_, node.as_char_ptr()) };
        if err == ENOMEM.to_errno() {
            return err;
        }
        // One bad device must not hide the others: the C bus stopped at the first error.
        if err != 0 {
            pr_warn!("{}: not probed: error {}\n", &*node, err);
        }
    }
    0
}

/// The other end's watch: at most one event pending per device (a frontend changing its state
/// quickly must not queue events without bound in dom0).
///
/// # Safety
///
/// `watch` must be a registered watch.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_be_otherend_will_handle(
    watch: *mut bindings::xenbus_watch,
    _path: *const c_char,
    _token: *const c_char,
) -> bool {
    // SAFETY: `watch` is valid; xenbus_xs.c reads `nr_pending` under its lock when it calls this.
    unsafe { (*watch).nr_pending == 0 }
}

/// The frontend's state changed: the xenbus core tells the driver.
///
/// # Safety
///
/// `watch` must be the `otherend_watch` of a device of this bus; `path` and `token` are the
/// watch event's.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_be_otherend_changed(
    watch: *mut bindings::xenbus_watch,
    path: *const c_char,
    token: *const c_char,
) {
    // SAFETY: Forwarded as received; 0: a backend follows the frontend during shutdown too.
    unsafe { bindings::xenbus_otherend_changed(watch, path, token, 0) }
}

/// The bus's `uevent`: the module alias and what the hotplug scripts read.
///
/// # Safety
///
/// `dev` must be null or a device of this bus, and `env` a uevent environment.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_be_uevent(
    dev: *const bindings::device,
    env: *mut bindings::kobj_uevent_env,
) -> c_int {
    if dev.is_null() {
        return ENODEV.to_errno();
    }
    // SAFETY: `dev` is a device of this bus.
    let xdev = unsafe { to_xenbus_device(dev) };
    // SAFETY: `env` is valid; each format takes the one string given, which is the device's or
    // the bus's.
    let failed = unsafe {
        bindings::add_uevent_var(
            env,
            c"MODALIAS=xen-backend:%s".as_char_ptr(),
            (*xdev).devicetype,
        ) != 0
            || bindings::add_uevent_var(env, c"XENBUS_TYPE=%s".as_char_ptr(), (*xdev).devicetype)
                != 0
            || bindings::add_uevent_var(env, c"XENBUS_PATH=%s".as_char_ptr(), (*xdev).nodename) != 0
            || bindings::add_uevent_var(env, c"XENBUS_BASE_PATH=%s".as_char_ptr(), (*bus()).root)
                != 0
    };
    if failed {
        return ENOMEM.to_errno();
    }
    // SAFETY: `driver` is read once, as the C bus does: null or a registered driver of this
    // bus, which are `struct xenbus_driver`s.
    unsafe {
        let driver = (*dev).driver;
        if !driver.is_null() {
            let xdrv = kernel::container_of!(driver, bindings::xenbus_driver, driver);
            if let Some(uevent) = (*xdrv).uevent {
                return uevent(xdev, env);
            }
        }
    }
    0
}

/// The watch on `backend`: a device appeared, changed or vanished.
///
/// # Safety
///
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_be_root_changed(
    _watch: *mut bindings::xenbus_watch,
    path: *const c_char,
    _token: *const c_char,
) {
    // SAFETY: `path` is the event's path, and the bus is registered.
    unsafe { bindings::xenbus_dev_changed(path, bus()) }
}

/// Whether `path` is under `/local/domain/<domid>/device/`, with something after.
fn path_in_frontend(path: &[u8], domid: c_int) -> bool {
    let mut prefix = [0u8; 48];
    let mut w = kernel::str::Formatter::new(&mut prefix);
    let _ = core::fmt::Write::write_fmt(&mut w, format_args!("/local/domain/{domid}/device/"));
    let n = w.bytes_written();
    prefix
        .get(..n)
        .is_some_and(|p| path.len() > n && path.starts_with(p))
}

/// The driver's `read_otherend_details`: `frontend-id` and `frontend`, which must name a node
/// under that domain's device tree.
///
/// # Safety
///
/// `xdev` must be a device of this bus being probed or restored.
unsafe extern "C" fn read_frontend_details(xdev: *mut bindings::xenbus_device) -> c_int {
    // SAFETY: `xdev` is valid; the core takes the node names as `char *` but does not write them.
    let err = unsafe {
        bindings::xenbus_read_otherend_details(
            xdev,
            c"frontend-id".as_char_ptr().cast_mut(),
            c"frontend".as_char_ptr().cast_mut(),
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
    if u32::try_from(id).is_ok_and(|d| d < DOMID_FIRST_RESERVED)
        && path_in_frontend(otherend.to_bytes(), id)
    {
        return 0;
    }
    pr_warn!(
        "{}: frontend {} of domain {} is not under /local/domain/{}/device, refusing it\n",
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
            c"frontend is not in the frontend domain's device tree".as_char_ptr(),
        );
        bindings::kfree((*xdev).otherend.cast());
        (*xdev).otherend = ptr::null();
    }
    EINVAL.to_errno()
}

/// Whether the toolstack set the device's `online` node.
///
/// # Safety
///
/// `dev` must be a device of this bus.
#[export]
pub unsafe extern "C" fn xenbus_dev_is_online(dev: *mut bindings::xenbus_device) -> c_int {
    // SAFETY: `dev` is a device of this bus; its node name is a string.
    c_int::from(
        unsafe { bindings::xenbus_read_unsigned((*dev).nodename, c"online".as_char_ptr(), 0) } != 0,
    )
}

/// Registers a backend driver.
///
/// # Safety
///
/// `drv` must be a valid driver that lives until it is unregistered, and `owner` and `mod_name`
/// its module's.
#[export]
pub unsafe extern "C" fn __xenbus_register_backend(
    drv: *mut bindings::xenbus_driver,
    owner: *mut bindings::module,
    mod_name: *const c_char,
) -> c_int {
    // SAFETY: The caller gives a valid driver, not registered yet.
    unsafe {
        (*drv).read_otherend_details = Some(read_frontend_details);
        bindings::xenbus_register_driver_common(drv, bus(), owner, mod_name)
    }
}

/// The xenstore notifier: xenstore is up, so find the devices and watch for more.
///
/// # Safety
///
/// Called by the xenstore notifier chain.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_be_probe_and_watch(
    _nb: *mut bindings::notifier_block,
    _event: c_ulong,
    _data: *mut c_void,
) -> c_int {
    // SAFETY: The bus is registered; the watch lives in the glue forever.
    unsafe {
        bindings::xenbus_probe_devices(bus());
        bindings::register_xenbus_watch(&raw mut bindings::xen_xenbus_be_watch);
    }
    bindings::NOTIFY_DONE as c_int
}

/// `bus_for_each_dev` callback: asks the device's driver to give back memory, unless it is
/// being probed or removed.
///
/// # Safety
///
/// `dev` must be a device of this bus.
unsafe extern "C" fn reclaim_memory(dev: *mut bindings::device, _data: *mut c_void) -> c_int {
    // SAFETY: Called by `bus_for_each_dev` on this bus with a referenced device; its drivers
    // are `struct xenbus_driver`s.
    unsafe {
        let driver = (*dev).driver;
        if driver.is_null() {
            return 0;
        }
        let xdrv = kernel::container_of!(driver, bindings::xenbus_driver, driver);
        if let Some(reclaim) = (*xdrv).reclaim_memory {
            let xdev = to_xenbus_device(dev);
            // The probe and remove paths hold `reclaim_sem`; skip the device then.
            if bindings::down_trylock(&raw mut (*xdev).reclaim_sem) != 0 {
                return 0;
            }
            reclaim(xdev);
            bindings::up(&raw mut (*xdev).reclaim_sem);
        }
    }
    0
}

/// The shrinker's `count_objects`: memory pressure is only a signal to the drivers, so there
/// is never anything to count.
///
/// # Safety
///
/// Called by the shrinker core, once the bus is registered.
unsafe extern "C" fn shrink_memory_count(
    _shrinker: *mut bindings::shrinker,
    _sc: *mut bindings::shrink_control,
) -> c_ulong {
    // SAFETY: The bus is registered; the callback takes no data.
    unsafe {
        bindings::bus_for_each_dev(
            &raw const (*bus()).bus,
            ptr::null_mut(),
            ptr::null_mut(),
            Some(reclaim_memory),
        )
    };
    0
}

/// The `subsys_initcall`: registers the bus, finds its devices once xenstore is up, and
/// registers the shrinker.
///
/// # Safety
///
/// Called once, by the glue's initcall.
#[no_mangle]
pub unsafe extern "C" fn xen_xenbus_be_init() -> c_int {
    // SAFETY: The bus and the notifier live in the glue forever; called once. The shrinker's
    // name has no conversion.
    unsafe {
        let err = bindings::bus_register(&raw const (*bus()).bus);
        if err != 0 {
            return err;
        }
        bindings::register_xenstore_notifier(&raw mut bindings::xen_xenbus_be_notifier);
        pr_info!("backend bus xen-backend (Rust)\n");
        let shrinker = bindings::shrinker_alloc(0, c"xen-backend".as_char_ptr());
        if shrinker.is_null() {
            pr_warn!("shrinker allocation failed\n");
            return 0;
        }
        (*shrinker).count_objects = Some(shrink_memory_count);
        bindings::shrinker_register(shrinker);
    }
    0
}

#[cfg(CONFIG_XEN_XENBUS_KUNIT_TEST)]
#[kunit_tests(rust_xen_xenbus_backend)]
mod tests {
    use super::*;

    #[test]
    fn backend_nodes_split_into_type_domain_and_id() {
        let parts = |n: &'static [u8]| split_nodename(n);
        assert_eq!(
            parts(b"backend/vbd/5/51712"),
            Some((&b"vbd"[..], &b"5"[..], &b"51712"[..]))
        );
        assert_eq!(
            parts(b"backend/xrbad/6/aaaaaaaaaaaaaaaaaaaa"),
            Some((&b"xrbad"[..], &b"6"[..], &b"aaaaaaaaaaaaaaaaaaaa"[..]))
        );
        // No type, no domain.
        assert_eq!(parts(b"backend//5/1"), None);
        assert_eq!(parts(b"backend/vbd"), None);
        assert_eq!(parts(b"backend"), None);
        assert_eq!(parts(b""), None);
    }

    #[test]
    fn a_frontend_must_be_in_its_domains_device_tree() {
        assert!(path_in_frontend(b"/local/domain/5/device/vbd/51712", 5));
        assert!(path_in_frontend(b"/local/domain/0/device/vif/0", 0));
        assert!(!path_in_frontend(b"/local/domain/5/device/vbd/51712", 6));
        assert!(!path_in_frontend(b"/local/domain/5/data/xr-fake-end", 5));
        assert!(!path_in_frontend(b"/local/domain/5/device/", 5));
        assert!(!path_in_frontend(b"/local/domain/5/devices/vbd", 5));
        assert!(!path_in_frontend(b"/local/domain/55/device/vbd", 5));
        assert!(!path_in_frontend(b"device/vbd/51712", 5));
        assert!(!path_in_frontend(b"", 5));
    }
}
