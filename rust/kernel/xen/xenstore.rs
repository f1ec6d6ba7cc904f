// SPDX-License-Identifier: GPL-2.0

//! Xenstore access: reads, writes, transactions and watches.
//!
//! C header: [`include/xen/xenbus.h`](srctree/include/xen/xenbus.h)
//!
//! Everything read from xenstore may have been written by another domain and is untrusted: values
//! come back as owned byte buffers, and [`Xenstore::read_parsed`] and friends turn malformed
//! values into errors instead of defaults.
//!
//! Paths are given as a directory and a node under it, as in C: `dir/node`, or `dir` itself when
//! `node` is empty (an empty `dir` with a non-empty `node` makes `/node`, an absolute path).
//! Relative paths are relative to this domain's home, `/local/domain/<domid>`.

use crate::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    ffi::{
        c_char,
        c_uint, //
    },
    prelude::*,
    str::{
        CStr,
        CStrExt,
        CString, //
    },
    types::Opaque, //
};
use core::{
    fmt,
    marker::PhantomPinned,
    ptr::NonNull,
    sync::atomic::{
        AtomicU32,
        Ordering, //
    },
};

/// Whether xenstore can be reached. In dom0 it cannot until the xenstored daemon has started;
/// until then every access would wait for it.
pub fn is_ready() -> bool {
    crate::xen::domain_kind() != crate::xen::DomainKind::Native
        // SAFETY: Reads a flag set once xenstore is reachable.
        && unsafe { bindings::xen_xenstored_ready() }
}

/// How often [`transaction`] retries a transaction that xenstore ended with `EAGAIN`.
pub const TRANSACTION_RETRIES: u32 = 64;

/// A value read from xenstore: bytes owned by the kernel allocator, freed on drop.
///
/// # Invariants
///
/// `ptr` points to a `kmalloc` allocation of at least `len + 1` bytes whose first `len` bytes are
/// the value and whose last is a NUL; it is owned by this object.
pub struct Value {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: The buffer is plain memory owned by this object.
unsafe impl Send for Value {}
// SAFETY: Only shared references to the bytes are handed out.
unsafe impl Sync for Value {}

impl Value {
    /// The raw bytes of the value (without the terminating NUL).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes while `self` lives (type invariant).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The value as UTF-8 text; `EINVAL` if it is not.
    pub fn as_str(&self) -> Result<&str> {
        core::str::from_utf8(self.as_bytes()).map_err(|_| EINVAL)
    }

    /// Parses the value as a `T`; see [`FromValue`] for what is accepted.
    pub fn parse<T: FromValue>(&self) -> Result<T> {
        T::from_value(self.as_bytes())
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a `kmalloc` allocation owned by this object (type invariant).
        unsafe { bindings::kfree(self.ptr.as_ptr().cast()) };
    }
}

/// A type a xenstore value can be parsed as, strictly: exactly the form the toolstack and
/// drivers write (`%u`), nothing that a lenient parser would also take.
///
/// For the unsigned integer types that is a decimal number made of ASCII digits only, without
/// a sign, surrounding whitespace, a trailing newline, leading zeros (`"0"` itself is fine) or a
/// radix prefix: `"+12"`, `" 12"`, `"012"`, `"0x1"`, `"12\n"`, `""` and a value with a NUL byte
/// inside (`"1\x002"`, which `strtoul` reads as 1) are `EINVAL`, and a number that does not fit
/// the type is `ERANGE`.
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::FromValue;
///
/// assert_eq!(u32::from_value(b"4294967295"), Ok(u32::MAX));
/// assert_eq!(u32::from_value(b"0"), Ok(0));
/// for bad in [&b"+12"[..], b" 12", b"012", b"0x1", b"12\n", b"", b"-1", b"1 2", b"1\x002"] {
///     assert_eq!(u32::from_value(bad), Err(EINVAL));
/// }
/// assert_eq!(u32::from_value(b"4294967296"), Err(ERANGE));
/// assert_eq!(u8::from_value(b"256"), Err(ERANGE));
/// ```
pub trait FromValue: Sized + private::Sealed {
    /// Parses `bytes`, a xenstore value without its terminating NUL.
    fn from_value(bytes: &[u8]) -> Result<Self>;
}

mod private {
    pub trait Sealed {}
}

impl private::Sealed for u64 {}

impl FromValue for u64 {
    fn from_value(bytes: &[u8]) -> Result<Self> {
        let digits_only = !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit);
        if !digits_only || (bytes.len() > 1 && bytes.first() == Some(&b'0')) {
            return Err(EINVAL);
        }
        bytes.iter().try_fold(0u64, |value, &digit| {
            value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .ok_or(ERANGE)
        })
    }
}

macro_rules! from_value_via_u64 {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}

        impl FromValue for $t {
            fn from_value(bytes: &[u8]) -> Result<Self> {
                <$t>::try_from(u64::from_value(bytes)?).map_err(|_| ERANGE)
            }
        }
    )*};
}

from_value_via_u64!(u8, u16, u32, usize);

/// The entries of a xenstore directory, freed on drop.
///
/// # Invariants
///
/// `ptr` is a `kmalloc` allocation returned by `xenbus_directory`, owned by this object, holding
/// `num` pointers to NUL-terminated strings that live in the same allocation.
pub struct Directory {
    ptr: NonNull<*mut c_char>,
    num: usize,
}

// SAFETY: The buffer is plain memory owned by this object.
unsafe impl Send for Directory {}
// SAFETY: Only shared references to the strings are handed out.
unsafe impl Sync for Directory {}

impl Directory {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.num
    }

    /// Whether the directory has no entries.
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// The entries, in the order xenstore returned them.
    pub fn iter(&self) -> impl Iterator<Item = &CStr> + '_ {
        (0..self.num).map(move |i| {
            // SAFETY: `i < num`, and the array holds `num` valid string pointers that live as
            // long as `self` (type invariant).
            unsafe { CStr::from_char_ptr(*self.ptr.as_ptr().add(i)) }
        })
    }

    /// Whether an entry is called `name`.
    pub fn contains(&self, name: &CStr) -> bool {
        self.iter().any(|e| e == name)
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a `kmalloc` allocation owned by this object (type invariant).
        unsafe { bindings::kfree(self.ptr.as_ptr().cast()) };
    }
}

/// The operations, shared by plain access ([`Xenstore`]) and [`Transaction`]s.
fn read_in(t: bindings::xenbus_transaction, dir: &CStr, node: &CStr) -> Result<Value> {
    let mut len: c_uint = 0;
    // SAFETY: `dir` and `node` are NUL-terminated; `len` is a valid out-pointer.
    let ptr = unsafe { bindings::xenbus_read(t, dir.as_char_ptr(), node.as_char_ptr(), &mut len) };
    let ptr = from_err_ptr(ptr)?;
    // INVARIANT: `xenbus_read` returns a `kmalloc`ed, NUL-terminated value of `len` bytes.
    Ok(Value {
        ptr: NonNull::new(ptr.cast()).ok_or(ENOMEM)?,
        len: len as usize,
    })
}

fn write_in(t: bindings::xenbus_transaction, dir: &CStr, node: &CStr, value: &CStr) -> Result {
    // SAFETY: All strings are NUL-terminated.
    to_result(unsafe {
        bindings::xenbus_write(
            t,
            dir.as_char_ptr(),
            node.as_char_ptr(),
            value.as_char_ptr(),
        )
    })
}

fn write_fmt_in(
    t: bindings::xenbus_transaction,
    dir: &CStr,
    node: &CStr,
    args: fmt::Arguments<'_>,
) -> Result {
    let value = CString::try_from_fmt(args)?;
    write_in(t, dir, node, &value)
}

fn exists_in(t: bindings::xenbus_transaction, dir: &CStr, node: &CStr) -> bool {
    // SAFETY: `dir` and `node` are NUL-terminated.
    unsafe { bindings::xenbus_exists(t, dir.as_char_ptr(), node.as_char_ptr()) != 0 }
}

fn remove_in(t: bindings::xenbus_transaction, dir: &CStr, node: &CStr) -> Result {
    // SAFETY: `dir` and `node` are NUL-terminated.
    to_result(unsafe { bindings::xenbus_rm(t, dir.as_char_ptr(), node.as_char_ptr()) })
}

fn directory_in(t: bindings::xenbus_transaction, dir: &CStr, node: &CStr) -> Result<Directory> {
    let mut num: c_uint = 0;
    // SAFETY: `dir` and `node` are NUL-terminated; `num` is a valid out-pointer.
    let ptr =
        unsafe { bindings::xenbus_directory(t, dir.as_char_ptr(), node.as_char_ptr(), &mut num) };
    let ptr = from_err_ptr(ptr)?;
    // INVARIANT: `xenbus_directory` returns one `kmalloc` allocation holding `num` pointers and
    // the strings they point to.
    Ok(Directory {
        ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        num: num as usize,
    })
}

const XBT_NIL: bindings::xenbus_transaction = bindings::xenbus_transaction { id: 0 };

/// Xenstore outside any transaction.
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::Xenstore;
///
/// // Compiled, not run: boot-time KUnit in dom0 runs before xenstored, so a run would pass
/// // without reading anything there. drivers/xen/rust/xen_xenstore_kunit.rs, loaded once
/// // xenstore is up, tests these calls.
/// # fn example() -> Result {
/// // Every domain can read its own name.
/// let name = Xenstore::read(c"name", c"")?;
/// pr_info!("this domain is {}\n", name.as_str()?);
/// # Ok(())
/// # }
/// ```
pub struct Xenstore;

impl Xenstore {
    /// Reads `dir/node`.
    pub fn read(dir: &CStr, node: &CStr) -> Result<Value> {
        read_in(XBT_NIL, dir, node)
    }

    /// Reads `dir/node` and parses it as a `T` ([`FromValue`]); a malformed value is `EINVAL`, one
    /// out of range `ERANGE`, a missing one `ENOENT`.
    pub fn read_parsed<T: FromValue>(dir: &CStr, node: &CStr) -> Result<T> {
        read_in(XBT_NIL, dir, node)?.parse()
    }

    /// Writes `value` to `dir/node`.
    pub fn write(dir: &CStr, node: &CStr, value: &CStr) -> Result {
        write_in(XBT_NIL, dir, node, value)
    }

    /// Writes a formatted value to `dir/node` (the Rust counterpart of `xenbus_printf`).
    pub fn write_fmt(dir: &CStr, node: &CStr, args: fmt::Arguments<'_>) -> Result {
        write_fmt_in(XBT_NIL, dir, node, args)
    }

    /// Whether `dir/node` exists.
    pub fn exists(dir: &CStr, node: &CStr) -> bool {
        exists_in(XBT_NIL, dir, node)
    }

    /// Removes `dir/node` and everything under it.
    pub fn remove(dir: &CStr, node: &CStr) -> Result {
        remove_in(XBT_NIL, dir, node)
    }

    /// Lists the entries of `dir/node`.
    pub fn directory(dir: &CStr, node: &CStr) -> Result<Directory> {
        directory_in(XBT_NIL, dir, node)
    }
}

/// A xenstore transaction. It is aborted on drop unless [`commit`](Self::commit)ted.
///
/// Prefer [`transaction`], which retries when xenstore reports a conflict.
///
/// # Invariants
///
/// `t` is a transaction started with `xenbus_transaction_start` and not ended yet.
pub struct Transaction {
    t: bindings::xenbus_transaction,
}

impl Transaction {
    /// Starts a transaction.
    pub fn start() -> Result<Self> {
        let mut t = XBT_NIL;
        // SAFETY: `t` is a valid out-pointer.
        to_result(unsafe { bindings::xenbus_transaction_start(&mut t) })?;
        // INVARIANT: Started just above.
        Ok(Self { t })
    }

    /// Commits the transaction. `EAGAIN` means another writer interfered: start again.
    pub fn commit(self) -> Result {
        let t = self.t;
        core::mem::forget(self);
        // SAFETY: `t` was started and not ended (type invariant); `self` is forgotten, so it is
        // ended exactly once.
        to_result(unsafe { bindings::xenbus_transaction_end(t, false) })
    }

    /// Reads `dir/node` within the transaction.
    pub fn read(&self, dir: &CStr, node: &CStr) -> Result<Value> {
        read_in(self.t, dir, node)
    }

    /// Reads and parses `dir/node` within the transaction.
    pub fn read_parsed<T: FromValue>(&self, dir: &CStr, node: &CStr) -> Result<T> {
        read_in(self.t, dir, node)?.parse()
    }

    /// Writes `value` to `dir/node` within the transaction.
    pub fn write(&self, dir: &CStr, node: &CStr, value: &CStr) -> Result {
        write_in(self.t, dir, node, value)
    }

    /// Writes a formatted value to `dir/node` within the transaction.
    pub fn write_fmt(&self, dir: &CStr, node: &CStr, args: fmt::Arguments<'_>) -> Result {
        write_fmt_in(self.t, dir, node, args)
    }

    /// Whether `dir/node` exists, as the transaction sees it.
    pub fn exists(&self, dir: &CStr, node: &CStr) -> bool {
        exists_in(self.t, dir, node)
    }

    /// Removes `dir/node` within the transaction.
    pub fn remove(&self, dir: &CStr, node: &CStr) -> Result {
        remove_in(self.t, dir, node)
    }

    /// Lists the entries of `dir/node`, as the transaction sees it.
    pub fn directory(&self, dir: &CStr, node: &CStr) -> Result<Directory> {
        directory_in(self.t, dir, node)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: `t` was started and not ended (type invariant); `commit` forgets `self`.
        unsafe { bindings::xenbus_transaction_end(self.t, true) };
    }
}

/// Runs `body` in a transaction and commits it, starting again when xenstore reports a conflict
/// (`EAGAIN`), at most [`TRANSACTION_RETRIES`] times. An error from `body` aborts the transaction
/// and is returned.
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::{self, Xenstore};
///
/// // Compiled, not run (see [`Xenstore`]'s example).
/// # fn example() -> Result {
/// xenstore::transaction(|t| {
///     t.write(c"data", c"rust-doc-a", c"1")?;
///     t.write_fmt(c"data", c"rust-doc-b", fmt!("{}", 2))
/// })?;
/// assert_eq!(Xenstore::read_parsed::<u32>(c"data", c"rust-doc-b")?, 2);
/// Xenstore::remove(c"data", c"rust-doc-a")?;
/// Xenstore::remove(c"data", c"rust-doc-b")?;
/// # Ok(())
/// # }
/// ```
pub fn transaction<T>(mut body: impl FnMut(&Transaction) -> Result<T>) -> Result<T> {
    for _ in 0..TRANSACTION_RETRIES {
        let t = Transaction::start()?;
        let value = body(&t)?;
        match t.commit() {
            Err(e) if e == EAGAIN => continue,
            Err(e) => return Err(e),
            Ok(()) => return Ok(value),
        }
    }
    Err(EAGAIN)
}

/// What a [`Watch`] calls when the watched node or something under it changes.
pub trait WatchHandler: Sync {
    /// Called in process context, by the xenwatch thread, with `xenwatch_mutex` held (it
    /// serialises every watch callback and driver state change of the xenbus core). `path` is
    /// the node that changed; it is under the watched node but otherwise chosen by whoever
    /// wrote it.
    ///
    /// The handler must not wait for anything that itself waits for xenwatch: for instance for
    /// another thread that is dropping a [`Watch`] or unregistering a xenbus driver, which would
    /// deadlock.
    fn changed(&self, path: &CStr);
}

/// A registered xenstore watch; unregistered on drop.
///
/// At most `max_pending` events wait for the handler; further events are dropped until the
/// handler catches up (XSA-349: another domain must not be able to make this domain queue events
/// without bound). The first event fires right after registration, as xenstore does.
///
/// # Invariants
///
/// `watch` is registered with `register_xenbus_watch` for as long as the object lives, and its
/// `node` points into `path`.
#[pin_data(PinnedDrop)]
pub struct Watch<H: WatchHandler> {
    #[pin]
    watch: Opaque<bindings::xenbus_watch>,
    path: CString,
    max_pending: u32,
    delivered: AtomicU32,
    dropped: AtomicU32,
    #[pin]
    handler: H,
    #[pin]
    _pin: PhantomPinned,
}

impl<H: WatchHandler> Watch<H> {
    /// Watches `path` (and everything under it).
    pub fn new(
        path: &CStr,
        max_pending: u32,
        handler: impl PinInit<H, Error>,
    ) -> impl PinInit<Self, Error> {
        let path = path.to_cstring();
        try_pin_init!(&this in Self {
            watch: Opaque::zeroed(),
            path: path?,
            max_pending: max_pending.max(1),
            delivered: AtomicU32::new(0),
            dropped: AtomicU32::new(0),
            handler <- handler,
            _pin: PhantomPinned,
            _: {
                // SAFETY: `this` is pinned and every field is initialised.
                let me = unsafe { &*this.as_ptr() };
                let w = me.watch.get();
                // SAFETY: `w` is valid for writes; the watch is not registered yet.
                unsafe {
                    (*w).node = me.path.as_char_ptr();
                    (*w).will_handle = Some(will_handle_callback::<H>);
                    (*w).callback = Some(changed_callback::<H>);
                }
                // SAFETY: `w` is fully initialised, pinned, and stays registered until `drop`
                // unregisters it, before the memory goes away.
                to_result(unsafe { bindings::register_xenbus_watch(w) })?;
            },
        }? Error)
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Events handed to the handler so far.
    pub fn delivered(&self) -> u32 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Events dropped because `max_pending` were already waiting.
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// # Safety
///
/// `w` must be the `watch` field of a live `Watch<H>`.
unsafe fn watch_of<'a, H: WatchHandler>(w: *mut bindings::xenbus_watch) -> &'a Watch<H> {
    // SAFETY: `Opaque<T>` is `repr(transparent)` over `T`, so `w` is the address of the field;
    // the caller guarantees it is inside a live `Watch<H>`.
    unsafe { &*crate::container_of!(w.cast::<Opaque<bindings::xenbus_watch>>(), Watch<H>, watch) }
}

// SAFETY: Shared references only reach atomics and the handler, which is `Sync`; the xenbus
// watch inside is only touched by xenbus, under its own locks, and by drop, which may run on any
// thread (in process context).
unsafe impl<H: WatchHandler + Send> Send for Watch<H> {}
// SAFETY: See `Send`.
unsafe impl<H: WatchHandler> Sync for Watch<H> {}

/// # Safety
///
/// `w` must be the `watch` field of a live `Watch<H>`, and xenbus' `watches_lock` held (as in
/// `xs_watch_msg`, which queues the event if this returns `true`).
unsafe extern "C" fn will_handle_callback<H: WatchHandler>(
    w: *mut bindings::xenbus_watch,
    _path: *const c_char,
    _token: *const c_char,
) -> bool {
    // SAFETY: xenbus calls this only for registered watches, which are live `Watch<H>`s.
    let me = unsafe { watch_of::<H>(w) };
    // `nr_pending` is raised under `watches_lock` by the only thread that calls this, so it
    // cannot grow between this read and the queueing; the xenwatch thread lowers it under
    // `watch_events_lock` only. A racing decrement may make the value read stale (one event
    // dropped that would have fit), never let the queue grow past `max_pending`.
    // SAFETY: `w` is valid (see above); the volatile read is the `READ_ONCE` of a field another
    // thread writes.
    let pending = unsafe { core::ptr::read_volatile(&raw const (*w).nr_pending) };
    if pending >= me.max_pending {
        me.dropped.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// # Safety
///
/// `w` must be the `watch` field of a live `Watch<H>`, and `path` a NUL-terminated string.
unsafe extern "C" fn changed_callback<H: WatchHandler>(
    w: *mut bindings::xenbus_watch,
    path: *const c_char,
    _token: *const c_char,
) {
    // SAFETY: xenbus calls this only for registered watches, which are live `Watch<H>`s.
    let me = unsafe { watch_of::<H>(w) };
    // SAFETY: xenbus passes a NUL-terminated path valid for the duration of the call.
    let path = unsafe { CStr::from_char_ptr(path) };
    me.delivered.fetch_add(1, Ordering::Relaxed);
    me.handler.changed(path);
}

#[pinned_drop]
impl<H: WatchHandler> PinnedDrop for Watch<H> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The watch is registered (type invariant). `unregister_xenbus_watch` discards
        // pending events and waits for a running callback, so none runs after it returns.
        unsafe { bindings::unregister_xenbus_watch(self.watch.get()) };
    }
}
