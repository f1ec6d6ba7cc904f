// SPDX-License-Identifier: GPL-2.0

//! Xenbus: split-driver devices, and frontend and backend drivers for them.
//!
//! C header: [`include/xen/xenbus.h`](srctree/include/xen/xenbus.h)
//!
//! A split device has a frontend in one domain (`device/<type>/<id>` in its xenstore home) and a
//! backend in another (`backend/<type>/<frontend-domid>/<id>`). Each side has a xenbus state in
//! xenstore and reacts to the other's: [`Driver::otherend_changed`] is called on every change of
//! the other end's state. Everything about the other end (its path, its domain, its state) comes
//! from xenstore and is only as trustworthy as that domain.
//!
//! Drivers are registered with [`module_xenbus_frontend_driver!`] or
//! [`module_xenbus_backend_driver!`], or with [`driver::Registration`] of an [`Adapter`] when a
//! module registers more than one driver.
//!
//! [`module_xenbus_frontend_driver!`]: crate::module_xenbus_frontend_driver
//! [`module_xenbus_backend_driver!`]: crate::module_xenbus_backend_driver

use crate::{
    bindings, device,
    device_id::RawDeviceId,
    driver,
    error::{from_result, to_result, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_int},
    prelude::*,
    str::{CStr, CString},
    sync::aref::ARef,
    transmute::{AsBytes, FromBytes},
    types::Opaque,
    xen::{
        events::{DomId, Port},
        grant_table::{GrantRef, GrantedPage},
        ring::{BackRing, FrontRing, RingIdx},
        SharedPage,
    },
    ThisModule,
};
use core::{
    ffi::c_void,
    fmt,
    marker::PhantomData,
    mem::offset_of,
    ops::Deref,
    ptr::{addr_of_mut, NonNull},
};

/// The state of one end of a split device (`enum xenbus_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    /// Unknown (also: the node does not exist).
    Unknown = bindings::xenbus_state::XenbusStateUnknown.0,
    /// Setting up.
    Initialising = bindings::xenbus_state::XenbusStateInitialising.0,
    /// Waiting for information from the other end (backends).
    InitWait = bindings::xenbus_state::XenbusStateInitWait.0,
    /// Its details are published (frontends).
    Initialised = bindings::xenbus_state::XenbusStateInitialised.0,
    /// Connected.
    Connected = bindings::xenbus_state::XenbusStateConnected.0,
    /// Going down.
    Closing = bindings::xenbus_state::XenbusStateClosing.0,
    /// Down.
    Closed = bindings::xenbus_state::XenbusStateClosed.0,
    /// Reconfiguring.
    Reconfiguring = bindings::xenbus_state::XenbusStateReconfiguring.0,
    /// Reconfigured.
    Reconfigured = bindings::xenbus_state::XenbusStateReconfigured.0,
}

impl State {
    const ALL: [State; 9] = [
        Self::Unknown,
        Self::Initialising,
        Self::InitWait,
        Self::Initialised,
        Self::Connected,
        Self::Closing,
        Self::Closed,
        Self::Reconfiguring,
        Self::Reconfigured,
    ];

    /// Converts a raw state, as read from the other end: a value out of range is `EINVAL`.
    pub fn from_raw(raw: bindings::xenbus_state) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| *s as u32 == raw.0)
            .ok_or(EINVAL)
    }

    fn as_raw(self) -> bindings::xenbus_state {
        bindings::xenbus_state(self as u32)
    }
}

/// A xenbus device id: the device type a driver handles.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::xenbus_device_id);

impl DeviceId {
    /// The id of device type `devicetype` (at most 31 bytes).
    #[inline(always)]
    pub const fn new(devicetype: &'static CStr) -> Self {
        let src = devicetype.to_bytes_with_nul();
        build_assert!(src.len() <= 32, "xenbus device type too long");
        let mut id: bindings::xenbus_device_id = bindings::xenbus_device_id {
            devicetype: [0; 32],
        };
        let mut i = 0;
        while i < src.len() {
            id.devicetype[i] = src[i] as c_char;
            i += 1;
        }
        Self(id)
    }

    /// The device type.
    pub fn devicetype(&self) -> &CStr {
        // SAFETY: `new` wrote a zero-terminated string into the array, and the table's
        // terminator is all zeroes.
        unsafe { CStr::from_char_ptr(self.0.devicetype.as_ptr()) }
    }
}

// SAFETY: `DeviceId` is a `#[repr(transparent)]` wrapper of `xenbus_device_id` and adds no
// invariant.
unsafe impl RawDeviceId for DeviceId {
    type RawType = bindings::xenbus_device_id;
}

/// A zero-terminated table of xenbus device ids.
pub type IdTable = &'static dyn crate::device_id::IdTable<DeviceId, ()>;

/// Declares a xenbus device id table.
///
/// # Examples
///
/// ```
/// use kernel::xen::xenbus::{DeviceId, IdTable};
///
/// kernel::xenbus_device_table!(DEMO_TABLE, [DeviceId::new(c"demo"), DeviceId::new(c"vbd")]);
///
/// // What the C core walks: the ids, then a zeroed terminator.
/// let table: IdTable = &DEMO_TABLE;
/// // SAFETY: The table holds two ids and the terminator.
/// let (first, last) = unsafe { (&*table.as_ptr(), &*table.as_ptr().add(2)) };
/// assert_eq!(&first.devicetype[..5], b"demo\0");
/// assert_eq!(last.devicetype[0], 0);
/// ```
#[macro_export]
macro_rules! xenbus_device_table {
    ($name:ident, [$($id:expr),+ $(,)?]) => {
        static $name: $crate::device_id::IdArray<
            $crate::xen::xenbus::DeviceId,
            (),
            { <[$crate::xen::xenbus::DeviceId]>::len(&[$($id,)+]) },
        > = $crate::device_id::IdArray::new_without_index([$($id,)+]);
    };
}

/// A xenbus driver. [`module_xenbus_frontend_driver!`] and [`module_xenbus_backend_driver!`]
/// register one with its bus.
///
/// # Examples
///
/// A frontend that handles "demo" devices and says it is initialised when it is bound:
///
/// ```
/// use kernel::{device::Core, prelude::*, xen::xenbus};
///
/// kernel::xenbus_device_table!(TABLE, [xenbus::DeviceId::new(c"demo")]);
///
/// struct DemoFront;
///
/// #[vtable]
/// impl xenbus::Driver for DemoFront {
///     type Data<'bound> = ();
///     const ID_TABLE: xenbus::IdTable = &TABLE;
///
///     fn probe<'bound>(
///         dev: &'bound xenbus::Device<Core<'_>>,
///         _id: &xenbus::DeviceId,
///     ) -> impl PinInit<(), Error> + 'bound {
///         dev.switch_state(xenbus::State::Initialised)
///     }
/// }
///
/// // The table the bus matches devices against: "demo", then the terminator.
/// let table = <DemoFront as xenbus::Driver>::ID_TABLE;
/// // SAFETY: The table holds one id and the terminator.
/// let (first, last) = unsafe { (&*table.as_ptr(), &*table.as_ptr().add(1)) };
/// assert_eq!(&first.devicetype[..5], b"demo\0");
/// assert_eq!(last.devicetype[0], 0);
/// ```
///
/// [`module_xenbus_frontend_driver!`]: crate::module_xenbus_frontend_driver
/// [`module_xenbus_backend_driver!`]: crate::module_xenbus_backend_driver
#[vtable]
pub trait Driver {
    /// The driver's data for a bound device.
    type Data<'bound>: Send + Sync + 'bound;

    /// The device types the driver handles.
    const ID_TABLE: IdTable;

    /// Whether unbinding leaves this end's xenstore state as it is, so that the driver (or a new
    /// instance of it) can bind again while the other end stays connected, as blkback and netback
    /// do (`allow_rebind`). Otherwise xenbus switches the device to Closed when it is unbound.
    const ALLOW_REBIND: bool = false;

    /// Whether the boot may go on without this frontend's devices connected, as for the console,
    /// keyboard and framebuffer frontends (`not_essential`): xenbus's wait for frontend devices
    /// to connect (late in boot, and when a frontend module registers) waits at most 30 s for
    /// them, against up to 5 minutes for the others. Backends leave it false.
    const NOT_ESSENTIAL: bool = false;

    /// Binds to a device; `id` is the entry of [`Self::ID_TABLE`] that matched it.
    fn probe<'bound>(
        dev: &'bound Device<device::Core<'_>>,
        id: &DeviceId,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound;

    /// The other end changed state. Called on the xenwatch thread, only while the device is
    /// bound; `otherend` is the other end's xenstore path, valid for the call, and `state` is
    /// what the other end wrote and may be anything it chose.
    ///
    /// It runs with `xenwatch_mutex` held, like every xenstore watch callback: it must not wait
    /// for a thread that drops a [`Watch`](crate::xen::xenstore::Watch) or (un)registers a xenbus
    /// driver, which would deadlock.
    fn otherend_changed<'bound>(
        dev: &'bound Device<device::Bound>,
        data: Pin<&Self::Data<'bound>>,
        otherend: &CStr,
        state: Result<State>,
    ) {
        let _ = (dev, data, otherend, state);
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The domain is being suspended (save or migration): quiesce the device. Called only while
    /// the device is bound.
    fn suspend<'bound>(
        dev: &'bound Device<device::Bound>,
        data: Pin<&Self::Data<'bound>>,
    ) -> Result {
        let _ = (dev, data);
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// The domain was resumed, possibly on another host with a new backend: reconnect. Called
    /// only while the device is bound.
    fn resume<'bound>(
        dev: &'bound Device<device::Bound>,
        data: Pin<&Self::Data<'bound>>,
    ) -> Result {
        let _ = (dev, data);
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Unbinds from a device; the data is dropped afterwards.
    fn unbind<'bound>(dev: &'bound Device<device::Core<'_>>, data: Pin<&Self::Data<'bound>>) {
        let _ = (dev, data);
    }
}

/// Which bus a driver registers with: [`Frontend`] or `Backend`. Sealed: [`Adapter`] relies on
/// `register` registering with a real xenbus bus, which it later unregisters from.
pub trait Kind: private::Sealed + Send + Sync + 'static {
    /// Registers `drv` with the frontend or backend bus.
    ///
    /// # Safety
    ///
    /// `drv` must be valid and stay pinned until unregistered.
    unsafe fn register(drv: *mut bindings::xenbus_driver, module: &'static ThisModule) -> c_int;
}

/// A frontend driver (devices under `device/` in this domain).
pub struct Frontend;
/// A backend driver (devices under `backend/` in this domain). The backend bus exists only in
/// kernels built with `CONFIG_XEN_BACKEND`.
#[cfg(CONFIG_XEN_BACKEND)]
pub struct Backend;

mod private {
    /// Only this module's bus kinds are [`super::Kind`]s.
    pub trait Sealed {}
}

impl private::Sealed for Frontend {}
#[cfg(CONFIG_XEN_BACKEND)]
impl private::Sealed for Backend {}

impl Kind for Frontend {
    unsafe fn register(drv: *mut bindings::xenbus_driver, module: &'static ThisModule) -> c_int {
        // SAFETY: The caller guarantees `drv` is valid and pinned; the name is set.
        unsafe { bindings::__xenbus_register_frontend(drv, module.as_ptr(), (*drv).name) }
    }
}

#[cfg(CONFIG_XEN_BACKEND)]
impl Kind for Backend {
    unsafe fn register(drv: *mut bindings::xenbus_driver, module: &'static ThisModule) -> c_int {
        // SAFETY: The caller guarantees `drv` is valid and pinned; the name is set.
        unsafe { bindings::__xenbus_register_backend(drv, module.as_ptr(), (*drv).name) }
    }
}

/// Connects a [`Driver`] to the frontend or backend xenbus.
pub struct Adapter<T: Driver, K: Kind>(T, PhantomData<K>);

// SAFETY: `xenbus_driver` is a C type embedding a `struct device_driver` at `driver`; `T::Data` is
// the driver's device private data.
unsafe impl<T: Driver + 'static, K: Kind> driver::DriverLayout for Adapter<T, K> {
    type DriverType = bindings::xenbus_driver;
    type DriverData<'bound> = T::Data<'bound>;
    const DEVICE_DRIVER_OFFSET: usize = offset_of!(bindings::xenbus_driver, driver);
}

// SAFETY: `unregister` is only called after a successful `register` of the same object.
unsafe impl<T: Driver + 'static, K: Kind> driver::RegistrationOps for Adapter<T, K> {
    unsafe fn register(
        drv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let d = drv.get();
        // SAFETY: Setting the fields of a `xenbus_driver` before registration is fine.
        unsafe {
            (*d).name = name.as_char_ptr();
            (*d).ids = T::ID_TABLE.as_ptr();
            (*d).allow_rebind = T::ALLOW_REBIND;
            (*d).not_essential = T::NOT_ESSENTIAL;
            (*d).probe = Some(Self::probe_callback);
            (*d).remove = Some(Self::remove_callback);
            (*d).otherend_changed = if T::HAS_OTHEREND_CHANGED {
                Some(Self::otherend_changed_callback)
            } else {
                None
            };
            (*d).suspend = if T::HAS_SUSPEND {
                Some(Self::suspend_callback)
            } else {
                None
            };
            (*d).resume = if T::HAS_RESUME {
                Some(Self::resume_callback)
            } else {
                None
            };
        }
        // SAFETY: `d` is valid and stays pinned until `unregister` (the caller's guarantee).
        to_result(unsafe { K::register(d, module) })
    }

    unsafe fn unregister(drv: &Opaque<Self::DriverType>) {
        // SAFETY: `drv` was registered (the caller's guarantee).
        unsafe { bindings::xenbus_unregister_driver(drv.get()) }
    }
}

impl<T: Driver + 'static, K: Kind> Adapter<T, K> {
    extern "C" fn probe_callback(
        xdev: *mut bindings::xenbus_device,
        id: *const bindings::xenbus_device_id,
    ) -> c_int {
        // SAFETY: The xenbus core calls probe with a valid device, for the duration of the call.
        let dev = unsafe { &*xdev.cast::<Device<device::CoreInternal<'_>>>() };
        if id.is_null() {
            return ENODEV.to_errno();
        }
        // SAFETY: `id` is the matching entry of the driver's table (`xenbus_match_id`), which is
        // `'static`; `DeviceId` is a transparent wrapper of `xenbus_device_id`.
        let id = unsafe { &*id.cast::<DeviceId>() };
        from_result(|| {
            let data = T::probe(dev, id);
            dev.as_ref().set_drvdata(data)?;
            Ok(0)
        })
    }

    extern "C" fn remove_callback(xdev: *mut bindings::xenbus_device) {
        // SAFETY: The xenbus core calls remove with a valid device, for the duration of the call.
        let dev = unsafe { &*xdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: remove only follows a successful probe, which set the driver data.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        T::unbind(dev, data);
    }

    extern "C" fn suspend_callback(xdev: *mut bindings::xenbus_device) -> c_int {
        // SAFETY: The xenbus core calls this with a valid device bound to this driver.
        let dev = unsafe { &*xdev.cast::<Device<device::BoundInternal>>() };
        // SAFETY: The device is bound, so probe set the driver data.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        from_result(|| T::suspend(dev, data).map(|()| 0))
    }

    extern "C" fn resume_callback(xdev: *mut bindings::xenbus_device) -> c_int {
        // SAFETY: The xenbus core calls this with a valid device bound to this driver.
        let dev = unsafe { &*xdev.cast::<Device<device::BoundInternal>>() };
        // SAFETY: The device is bound, so probe set the driver data.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        from_result(|| T::resume(dev, data).map(|()| 0))
    }

    extern "C" fn otherend_changed_callback(
        xdev: *mut bindings::xenbus_device,
        state: bindings::xenbus_state,
    ) {
        // SAFETY: The xenbus core calls this from the watch on the other end's state, which
        // `xenbus_dev_probe` registers only after `probe` returned successfully (so the driver
        // data is set), and which `xenbus_dev_remove` unregisters, waiting for a running
        // callback, before it calls `remove` (so the data is not dropped yet). In between the
        // device is valid and bound to this driver.
        let dev = unsafe { &*xdev.cast::<Device<device::BoundInternal>>() };
        // SAFETY: The device is bound and probe set the driver data (see above).
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        // SAFETY: `talk_to_otherend` set the path before the watch was registered; it is only
        // freed (remove) or replaced (restore) after the watch is unregistered, which waits for
        // this callback to return.
        let otherend = unsafe { dev.c_str((*xdev).otherend) };
        T::otherend_changed(dev, data, otherend, State::from_raw(state));
    }
}

/// Declares a module for a xenbus frontend driver.
///
/// The fields are those of `module!`. List the device types of the driver's
/// [`Driver::ID_TABLE`] as `alias: ["xen:<type>", ...]`: `xen:<type>` is the modalias the xenbus
/// frontend bus gives its devices, so the module is loaded when such a device appears (the C
/// drivers' `MODULE_ALIAS("xen:vbd")`).
///
/// # Examples
///
/// With `DemoFront` the [`Driver`] of that trait's example (`ignore`, as for
/// `module_pci_driver!`: a doctest cannot declare a module):
///
/// ```ignore
/// kernel::module_xenbus_frontend_driver! {
///     type: DemoFront,
///     name: "demo_front",
///     authors: ["Rust for Xen contributors"],
///     description: "Demo frontend",
///     license: "GPL",
///     alias: ["xen:demo"],
/// }
/// ```
///
/// [`Driver`]: crate::xen::xenbus::Driver
#[macro_export]
macro_rules! module_xenbus_frontend_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::xen::xenbus::Adapter<T, $crate::xen::xenbus::Frontend>, {
            $($f)*
        });
    };
}

/// Declares a module for a xenbus backend driver; see [`module_xenbus_frontend_driver!`]. Its
/// autoload aliases are `xen-backend:<type>`, the modalias of the xenbus backend bus.
///
/// [`module_xenbus_frontend_driver!`]: crate::module_xenbus_frontend_driver
#[macro_export]
macro_rules! module_xenbus_backend_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::xen::xenbus::Adapter<T, $crate::xen::xenbus::Backend>, {
            $($f)*
        });
    };
}

/// A xenbus device.
///
/// # Invariants
///
/// The wrapped `xenbus_device` is valid for the lifetime of the reference.
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::xenbus_device>,
    PhantomData<Ctx>,
);

impl<Ctx: device::DeviceContext> Device<Ctx> {
    pub(crate) fn as_raw(&self) -> *mut bindings::xenbus_device {
        self.0.get()
    }

    /// # Safety
    ///
    /// `p` must be null or a string that stays valid and unchanged while `self` is borrowed.
    unsafe fn c_str(&self, p: *const c_char) -> &CStr {
        if p.is_null() {
            return c"";
        }
        // SAFETY: The caller guarantees that the string lives as long as the borrow.
        unsafe { CStr::from_char_ptr(p) }
    }

    /// This end's xenstore path, e.g. `device/vbd/51712`.
    pub fn nodename(&self) -> &CStr {
        // SAFETY: The device is valid (type invariant); the string shares the device's
        // allocation and is never changed.
        unsafe { self.c_str((*self.as_raw()).nodename) }
    }

    /// The device type, e.g. `vbd`.
    pub fn devicetype(&self) -> &CStr {
        // SAFETY: As for `nodename`.
        unsafe { self.c_str((*self.as_raw()).devicetype) }
    }

    /// The other end's domain. A value that is not a domain id (the other end's `backend-id`
    /// key is written by the frontend's domain) reads as `DOMID_INVALID`, which no grant or
    /// event channel operation accepts.
    pub fn otherend_id(&self) -> DomId {
        // SAFETY: The device is valid (type invariant).
        let id = unsafe { (*self.as_raw()).otherend_id };
        DomId::try_from(id).unwrap_or(bindings::DOMID_INVALID as DomId)
    }

    /// This end's state, as last switched to.
    pub fn state(&self) -> Result<State> {
        // SAFETY: The device is valid (type invariant).
        State::from_raw(unsafe { (*self.as_raw()).state })
    }
}

impl Device<device::Core<'_>> {
    /// The other end's xenstore path, as this end's xenstore entry names it.
    ///
    /// Only in probe and unbind: xenbus frees the string when the device is removed and
    /// replaces it when the domain is restored, so it is stable only under the device lock
    /// (probe, remove and the PM callbacks hold it) or in [`Driver::otherend_changed`], which
    /// is given the path.
    pub fn otherend(&self) -> &CStr {
        // SAFETY: The device is valid (type invariant); the device lock is held (`Core`), so
        // `xenbus_dev_remove` and `xenbus_dev_restore` cannot free the string meanwhile.
        unsafe { self.c_str((*self.as_raw()).otherend) }
    }
}

impl Device<device::Bound> {
    /// Switches this end's state and writes it to xenstore (`xenbus_switch_state`).
    pub fn switch_state(&self, state: State) -> Result {
        // SAFETY: The device is valid and bound.
        to_result(unsafe { bindings::xenbus_switch_state(self.as_raw(), state.as_raw()) })
    }

    fn report(&self, fatal: bool, err: Error, args: fmt::Arguments<'_>) {
        let msg = CString::try_from_fmt(args);
        let msg: &CStr = match &msg {
            Ok(m) => m,
            Err(e) if *e == ENOMEM => c"(message lost: out of memory)",
            // A NUL byte inside, from a value quoted as it is: quote peer values with `{:?}`.
            Err(_) => c"(message lost: it held a NUL byte)",
        };
        let (dev, errno, fmt) = (self.as_raw(), err.to_errno(), c"%s".as_char_ptr());
        if fatal {
            // SAFETY: The device is valid; the format takes exactly one string argument, `msg`,
            // which is NUL-terminated and outlives the call.
            unsafe { bindings::xenbus_dev_fatal(dev, errno, fmt, msg.as_char_ptr()) };
        } else {
            // SAFETY: The device is valid; the format takes exactly one string argument, `msg`,
            // which is NUL-terminated and outlives the call.
            unsafe { bindings::xenbus_dev_error(dev, errno, fmt, msg.as_char_ptr()) };
        }
    }

    /// Reports a fatal error: logs it, writes it to the device's `error` node in xenstore for the
    /// toolstack, and switches the device to Closing (`xenbus_dev_fatal`).
    pub fn dev_fatal(&self, err: Error, args: fmt::Arguments<'_>) {
        self.report(true, err, args)
    }

    /// Reports an error without changing state (`xenbus_dev_error`).
    pub fn dev_error(&self, err: Error, args: fmt::Arguments<'_>) {
        self.report(false, err, args)
    }

    /// Allocates an event channel port for the other end to bind to (`xenbus_alloc_evtchn`).
    /// A failure is reported as for a C driver: xenbus logs it, writes it to the device's `error`
    /// node and switches the device to Closing (`xenbus_dev_fatal`), so the caller need not.
    /// [`Port::alloc_unbound`] is the same allocation without the report.
    pub fn alloc_evtchn(&self) -> Result<Port> {
        let mut port: bindings::evtchn_port_t = 0;
        // SAFETY: The device is valid and bound (this context), as `xenbus_dev_fatal` needs on
        // the failure path; `port` is valid for the result.
        to_result(unsafe { bindings::xenbus_alloc_evtchn(self.as_raw(), &mut port) })?;
        // SAFETY: The hypervisor has just allocated `port` for this call; nothing else closes it.
        Ok(unsafe { Port::from_raw(port) })
    }

    /// Maps the ring pages the other end granted with `grefs` (`xenbus_map_ring_valloc`); they
    /// are unmapped when the mapping is dropped. At most 16 pages; a reference the other end did
    /// not grant is an error, and nothing stays mapped then.
    pub fn map_ring(&self, grefs: &[GrantRef]) -> Result<RingMapping> {
        if grefs.is_empty() || grefs.len() > bindings::XENBUS_MAX_RING_GRANTS as usize {
            return Err(EINVAL);
        }
        let mut refs = [0 as GrantRef; bindings::XENBUS_MAX_RING_GRANTS as usize];
        for (d, s) in refs.iter_mut().zip(grefs) {
            *d = *s;
        }
        let mut vaddr: *mut c_void = core::ptr::null_mut();
        // SAFETY: The device is bound; `refs` holds `grefs.len()` references; `vaddr` is a valid
        // out-pointer.
        to_result(unsafe {
            bindings::xenbus_map_ring_valloc(
                self.as_raw(),
                refs.as_mut_ptr(),
                grefs.len() as u32,
                &mut vaddr,
            )
        })?;
        let vaddr = NonNull::new(vaddr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: Mapped just above for this device.
        Ok(RingMapping {
            dev: self.into(),
            vaddr,
            pages: grefs.len(),
        })
    }
}

/// Ring pages of the other end mapped into this domain; unmapped on drop.
///
/// Dropping it sleeps (`xenbus_unmap_ring_vfree` waits for the unmap): drop it in process
/// context, never under a spinlock or in an interrupt handler.
///
/// # Invariants
///
/// `vaddr` is a mapping made by `xenbus_map_ring_valloc` for `dev`, of `pages` pages.
pub struct RingMapping {
    dev: ARef<Device>,
    vaddr: NonNull<u8>,
    pages: usize,
}

// SAFETY: The mapping may be used and dropped from any thread.
unsafe impl Send for RingMapping {}
// SAFETY: Shared references only expose the address.
unsafe impl Sync for RingMapping {}

impl RingMapping {
    /// The address of the mapped pages. The memory is shared with the other end, which may
    /// change it at any time.
    pub fn as_ptr(&self) -> *mut u8 {
        self.vaddr.as_ptr()
    }

    /// The size of the mapping in bytes.
    pub fn len(&self) -> usize {
        // One kernel page per Xen frame (`kernel::xen` is for 4K-page kernels only).
        self.pages * crate::xen::XEN_PAGE_SIZE
    }

    /// Whether the mapping is empty (never: at least one page is mapped).
    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }
}

impl Drop for RingMapping {
    fn drop(&mut self) {
        // SAFETY: The mapping was made for `dev` and is unmapped once (type invariant).
        let r = unsafe {
            bindings::xenbus_unmap_ring_vfree(self.dev.as_raw(), self.vaddr.as_ptr().cast())
        };
        if r != 0 {
            pr_err!(
                "xen: unmapping a ring of {} failed ({r})\n",
                self.dev.nodename()
            );
        }
    }
}

/// A frontend's shared ring: one page, granted read-write to the other end, with the frontend's
/// end of the ring on it.
///
/// Dropping it ends the grant; if the backend still maps the page, the page is only freed once
/// it lets go (the deferred path), so a late backend never writes to reused memory (XSA-396).
///
/// # Invariants
///
/// `ring` was made over the page that `grant` owns, and is its only user on this side. `grant` is
/// declared after `ring`, so the page outlives the ring on drop; no `&mut` to either field is
/// handed out, so neither can be swapped for another ring's or grant's.
pub struct SharedFrontRing<Req, Rsp> {
    // Dropped before the grant that keeps the page alive.
    ring: FrontRing<Req, Rsp>,
    grant: GrantedPage,
}

impl<Req: AsBytes + Copy, Rsp: FromBytes + Copy> SharedFrontRing<Req, Rsp> {
    /// Allocates the ring page, initialises the ring and grants the page to the other end.
    pub fn new(dev: &Device<device::Bound>) -> Result<Self> {
        let grant = GrantedPage::new(SharedPage::alloc(GFP_KERNEL)?, dev.otherend_id(), false)?;
        // SAFETY: The page is owned by `grant`, which outlives `ring` (field order), and only
        // rings use it.
        let ring = unsafe { FrontRing::new(grant.page().as_ptr(), crate::xen::XEN_PAGE_SIZE)? };
        // INVARIANT: `ring` is over `grant`'s page, and nothing else on this side uses it.
        Ok(Self { ring, grant })
    }

    /// The grant reference to publish as `ring-ref`.
    pub fn gref(&self) -> GrantRef {
        self.grant.gref()
    }

    /// Queues a request ([`FrontRing::push_request`]).
    pub fn push_request(&mut self, req: &Req) -> Result<RingIdx> {
        self.ring.push_request(req)
    }

    /// Publishes the queued requests ([`FrontRing::push_requests_and_check_notify`]).
    pub fn push_requests_and_check_notify(&mut self) -> bool {
        self.ring.push_requests_and_check_notify()
    }

    /// Responses not yet consumed ([`FrontRing::unconsumed_responses`]).
    pub fn unconsumed_responses(&mut self) -> Result<u32> {
        self.ring.unconsumed_responses()
    }

    /// Consumes the next response ([`FrontRing::next_response`]).
    pub fn next_response(&mut self) -> Result<Option<Rsp>> {
        self.ring.next_response()
    }

    /// Asks for a notification on the next response ([`FrontRing::final_check_for_responses`]).
    pub fn final_check_for_responses(&mut self) -> Result<bool> {
        self.ring.final_check_for_responses()
    }

    /// Consumes every pending response ([`FrontRing::consume_responses`]).
    #[inline]
    pub fn consume_responses(&mut self, f: impl FnMut(Rsp) -> bool) -> Result<u32> {
        self.ring.consume_responses(f)
    }
}

/// The ring's read-only accessors. There is no `&mut` access to the ring itself: safe code could
/// then swap two rings (`mem::swap`) and leave each pointing into the other's page, which the
/// other frees when it is dropped.
impl<Req, Rsp> Deref for SharedFrontRing<Req, Rsp> {
    type Target = FrontRing<Req, Rsp>;

    fn deref(&self) -> &Self::Target {
        &self.ring
    }
}

/// A backend's shared ring: the frontend's ring page mapped here, with the backend's end of the
/// ring on it; unmapped on drop, which sleeps, as for [`RingMapping`]: drop it in process context.
///
/// # Invariants
///
/// `ring` was attached to the pages that `map` maps, and is their only user on this side. `map` is
/// declared after `ring`, so the mapping outlives the ring on drop; no `&mut` to either field is
/// handed out, so neither can be swapped for another ring's or mapping's.
pub struct SharedBackRing<Req, Rsp> {
    // Dropped before the mapping it points into.
    ring: BackRing<Req, Rsp>,
    map: RingMapping,
}

impl<Req: FromBytes + Copy, Rsp: AsBytes + Copy> SharedBackRing<Req, Rsp> {
    /// Maps the one-page ring the frontend granted with `gref` and carries on from its last
    /// response ([`BackRing::attach`]), as the C twin and blkback do.
    pub fn map(dev: &Device<device::Bound>, gref: GrantRef) -> Result<Self> {
        let map = dev.map_ring(&[gref])?;
        // SAFETY: The mapping outlives `ring` (field order) and is the frontend's ring page.
        let ring = unsafe { BackRing::attach(map.as_ptr(), map.len())? };
        // INVARIANT: `ring` is attached to `map`'s pages, and nothing else on this side uses them.
        Ok(Self { ring, map })
    }

    /// Consumes the next request ([`BackRing::next_request`]).
    pub fn next_request(&mut self) -> Result<Option<Req>> {
        self.ring.next_request()
    }

    /// Requests not yet consumed ([`BackRing::unconsumed_requests`]).
    pub fn unconsumed_requests(&mut self) -> Result<u32> {
        self.ring.unconsumed_requests()
    }

    /// Queues a response ([`BackRing::push_response`]).
    pub fn push_response(&mut self, rsp: &Rsp) -> Result<RingIdx> {
        self.ring.push_response(rsp)
    }

    /// Answers up to `max` requests in order ([`BackRing::answer_requests`]).
    #[inline]
    pub fn answer_requests(&mut self, max: u32, f: impl FnMut(Req) -> Rsp) -> Result<u32> {
        self.ring.answer_requests(max, f)
    }

    /// Publishes the queued responses ([`BackRing::push_responses_and_check_notify`]).
    pub fn push_responses_and_check_notify(&mut self) -> bool {
        self.ring.push_responses_and_check_notify()
    }

    /// Asks for a notification on the next request ([`BackRing::final_check_for_requests`]).
    pub fn final_check_for_requests(&mut self) -> Result<bool> {
        self.ring.final_check_for_requests()
    }

    /// The mapping of the frontend's ring page.
    pub fn mapping(&self) -> &RingMapping {
        &self.map
    }
}

/// The ring's read-only accessors; as for [`SharedFrontRing`], no `&mut` access to the ring.
impl<Req, Rsp> Deref for SharedBackRing<Req, Rsp> {
    type Target = BackRing<Req, Rsp>;

    fn deref(&self) -> &Self::Target {
        &self.ring
    }
}

// SAFETY: `Device` is a transparent wrapper of `xenbus_device`, whose `dev` field is the device.
unsafe impl<Ctx: device::DeviceContext> device::AsBusDevice<Ctx> for Device<Ctx> {
    const OFFSET: usize = offset_of!(bindings::xenbus_device, dev);
}

// SAFETY: `Device` is a transparent wrapper of a type that embeds `struct device`.
kernel::impl_device_context_deref!(unsafe { Device });
kernel::impl_device_context_into_aref!(Device);

// SAFETY: The reference count is the embedded `struct device`'s.
unsafe impl crate::sync::aref::AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: The device is valid.
        unsafe { bindings::get_device(addr_of_mut!((*self.as_raw()).dev)) };
    }

    unsafe fn dec_ref(obj: core::ptr::NonNull<Self>) {
        // SAFETY: The caller owns a reference.
        unsafe {
            bindings::put_device(addr_of_mut!(
                (*obj.cast::<bindings::xenbus_device>().as_ptr()).dev
            ))
        }
    }
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: The device is valid, so is its embedded `struct device`.
        let dev = unsafe { addr_of_mut!((*self.as_raw()).dev) };
        // SAFETY: `dev` points to a valid `struct device`.
        unsafe { device::Device::from_raw(dev) }
    }
}

// SAFETY: A xenbus device is reference counted through its `struct device`, which may be taken
// and put on any thread; nothing in it is tied to the thread that made it.
unsafe impl Send for Device {}
// SAFETY: The accessors only read fields fixed at creation or go through C functions that take
// their own locks (xenstore's, the device core's).
unsafe impl Sync for Device {}
// SAFETY: The same accessors as `Device`'s, plus the bound-only calls (`switch_state`, `dev_fatal`,
// `dev_error`, `alloc_evtchn`, `map_ring`), which C drivers make from their callbacks and work
// items at once: xenstore's lock and the ring mapping list's lock serialise them in C, and
// `switch_state`'s update of `dev->state` is a plain `int` store after the xenstore transaction,
// as it is for every C driver.
unsafe impl Sync for Device<device::Bound> {}
