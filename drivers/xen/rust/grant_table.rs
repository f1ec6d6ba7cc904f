// SPDX-License-Identifier: GPL-2.0

//! The Xen grant table core, in Rust.
//!
//! This crate replaces the core of `drivers/xen/grant-table.c` when `XEN_GRANT_TABLE_RUST` is
//! set, and exports the same C API (`include/xen/grant_table.h`), so that every C driver (hvc,
//! xenbus, blkfront/blkback, netfront/netback, gntdev, gntalloc) and `kernel::xen` run on it
//! unchanged. It holds:
//!
//! - the free list of grant references with its bitmap and sequential allocation
//!   (`gnttab_alloc_grant_reference_seq`), the callers' private lists
//!   (`gnttab_claim_grant_reference` and friends) and the free callbacks;
//! - granting and ending foreign access on the shared entries, for the v1 and the v2 layout;
//! - the deferred list of references the peer still had mapped when they were ended, retried
//!   once a second from a timer;
//! - the table's growth (`GNTTABOP_setup_table` and the arch back end), version negotiation,
//!   init, suspend and resume, and the auto-translated frames of HVM and PVH guests.
//!
//! The page, map, unmap and copy helpers, which share no state with this core, are in [`pages`]
//! (C keeps them in `drivers/xen/grant-table-pages.c`). `drivers/xen/rust/grant-table-glue.c`
//! holds what Rust in this kernel cannot express: the initcall at its level, the module
//! parameters under their C names, the `EXPORT_SYMBOL_GPL` lines, the deferred timer (there is no
//! `timer_list` abstraction), a ratelimited warning and the debugfs file.
//!
//! Unlike the C core, no caller can corrupt the free list: a reference that is out of range, is
//! already free, or is not allocated is reported with a warning and refused, and every access to
//! the free list and the shared entries is bounds-checked. Nothing here sleeps, allocates with
//! `GFP_KERNEL` or panics on the paths that run in interrupt context.

use core::{
    cell::UnsafeCell,
    marker::PhantomData,
    mem::MaybeUninit,
    ptr,
    sync::atomic::{
        fence,
        AtomicBool,
        AtomicI64,
        AtomicPtr,
        AtomicU16,
        AtomicU32,
        AtomicU64,
        AtomicUsize,
        Ordering, //
    },
};
use kernel::{
    alloc::{
        flags::{
            GFP_ATOMIC,
            GFP_KERNEL, //
        },
        Flags,
    },
    bindings,
    bitmap::BitmapVec,
    ffi::{
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    warn_on, //
};

#[path = "grant_table/pages.rs"]
pub mod pages;

/// The prefix of this crate's messages: the same as `pr_fmt` gives grant-table.c.
const __LOG_PREFIX: &[u8] = b"xen:grant_table\0";

/// The end of a list of grant references (`GNTTAB_LIST_END`).
const LIST_END: u32 = 0xffff_ffff;

/// References below this number are reserved (for xenstore and the console) and never free.
const NR_RESERVED: u32 = bindings::GNTTAB_NR_RESERVED_ENTRIES;

/// Link words per chunk of the free list: one page of them, as `RPP` in grant-table.c.
const RPP: usize = PAGE_SIZE / core::mem::size_of::<u32>();

/// Status words per page of the v2 status frames (`SPP`).
const SPP: u32 = (PAGE_SIZE / core::mem::size_of::<bindings::grant_status_t>()) as u32;

/// The size of a Xen page, which is what a grant frame is.
const XEN_PAGE_SIZE: usize = 1 << bindings::XEN_PAGE_SHIFT;

/// `GTF_reading | GTF_writing`: the peer has the entry mapped.
const GTF_IN_USE: u16 = (bindings::GTF_reading | bindings::GTF_writing) as u16;

// Provided by grant-table-glue.c.
unsafe extern "C" {
    /// `grant_table.version`: the grant table version asked for on the command line (0: auto).
    static xen_gnttab_version_param: c_uint;
    /// `grant_table.free_per_iteration`: deferred entries handled per timer run (0: all).
    static xen_gnttab_free_per_iteration: c_uint;
    /// Arms the deferred timer for a second from now unless it is pending.
    fn xen_gnttab_arm_deferred_timer();
    /// Whether the caller runs in atomic context or with interrupts off.
    fn xen_gnttab_in_atomic() -> bool;
}

/// A chunk of link words: the next reference of each of `RPP` references.
type Chunk = [AtomicU32; RPP];

/// The link words of every grant reference: the free list and the callers' private lists
/// (`gnttab_alloc_grant_references` hands out a chain) are linked through them.
///
/// They are reached without the lock, as in C: a caller walks its own private list with
/// `gnttab_claim_grant_reference` and `gnttab_release_grant_reference`, and only the owner of an
/// allocated reference touches its link. So the words are atomics (plain loads and stores on
/// every architecture) and the chunks are published with release stores.
///
/// # Invariants
///
/// `table` is null or points to `len` `AtomicPtr`s that are never freed. Each of those is null
/// or points to a [`Chunk`] that is never freed. Both only go from null to non-null.
struct Links {
    table: AtomicPtr<AtomicPtr<Chunk>>,
    len: AtomicUsize,
}

static LINKS: Links = Links {
    table: AtomicPtr::new(ptr::null_mut()),
    len: AtomicUsize::new(0),
};

impl Links {
    /// The link word of `gref`, if its chunk exists.
    #[inline]
    fn slot(&self, gref: u32) -> Option<&'static AtomicU32> {
        let idx = gref as usize / RPP;
        let table = self.table.load(Ordering::Acquire);
        if table.is_null() || idx >= self.len.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: By the type invariant, `table` points to `len` entries that are never freed,
        // and `idx < len`.
        let chunk = unsafe { &*table.add(idx) }.load(Ordering::Acquire);
        if chunk.is_null() {
            return None;
        }
        // SAFETY: By the type invariant, a published chunk is never freed; `gref % RPP < RPP`.
        Some(unsafe { &(*chunk)[gref as usize % RPP] })
    }

    /// The reference after `gref`, or `LIST_END` (with a warning) if `gref` has no chunk.
    #[inline]
    fn next(&self, gref: u32) -> u32 {
        match self.slot(gref) {
            Some(s) => s.load(Ordering::Relaxed),
            None => {
                no_link_word(gref);
                LIST_END
            }
        }
    }

    /// Sets the reference after `gref`; false (with a warning) if `gref` has no chunk.
    #[inline]
    fn set_next(&self, gref: u32, next: u32) -> bool {
        match self.slot(gref) {
            Some(s) => {
                s.store(next, Ordering::Relaxed);
                true
            }
            None => {
                no_link_word(gref);
                false
            }
        }
    }

    /// Makes sure that chunk `idx` exists, allocating it with `flags`.
    ///
    /// Callers hold the grant table lock, so there is one writer at a time.
    fn ensure_chunk(&self, idx: usize, flags: Flags) -> Result {
        let table = self.table.load(Ordering::Acquire);
        if table.is_null() || idx >= self.len.load(Ordering::Acquire) {
            return Err(ENOSPC);
        }
        // SAFETY: By the type invariant, `table` has `len` entries and `idx < len`.
        let entry = unsafe { &*table.add(idx) };
        if !entry.load(Ordering::Acquire).is_null() {
            return Ok(());
        }
        let chunk = KBox::<Chunk>::new_uninit(flags)?;
        let raw = KBox::into_raw(chunk).cast::<Chunk>();
        // SAFETY: `raw` is a fresh allocation of one `Chunk`; all-zero bytes are a valid
        // `[AtomicU32; RPP]`.
        unsafe { ptr::write_bytes(raw, 0, 1) };
        // INVARIANT: The chunk is initialised, and it is never freed from here on.
        entry.store(raw, Ordering::Release);
        Ok(())
    }

    /// Installs a table of `len` empty chunk pointers, once.
    fn install(&self, len: usize) -> Result {
        if !self.table.load(Ordering::Acquire).is_null() {
            return if self.len.load(Ordering::Acquire) == len {
                Ok(())
            } else {
                Err(EINVAL)
            };
        }
        let mut table = KVec::<AtomicPtr<Chunk>>::with_capacity(len, GFP_KERNEL)?;
        for _ in 0..len {
            table.push(AtomicPtr::new(ptr::null_mut()), GFP_KERNEL)?;
        }
        let (raw, _len, _cap) = KVec::into_raw_parts(table);
        // INVARIANT: `raw` has `len` null entries and is never freed. A reader that sees the new
        // `len` also sees `table` (stored first, with release ordering, while `len` was 0).
        self.table.store(raw, Ordering::Release);
        self.len.store(len, Ordering::Release);
        Ok(())
    }
}

/// Reports a reference without a link word: a broken invariant, or a caller's garbage. Out of
/// line, so that the paths that find one stay short.
#[cold]
fn no_link_word(gref: u32) {
    pr_err!("g.e. {:#x} has no link word\n", gref);
    warn_on!(true);
}

/// Where `gnttab_free_tail_ptr` points: the start of the run of consecutive free references that
/// ends with `last_free` is the value of this link.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// No such run is known (`NULL`).
    None,
    /// The free list's head (`&gnttab_free_head`).
    Head,
    /// The link word of a reference (`__gnttab_entry(ref)`).
    Link(u32),
}

/// One reference on the deferred list, waiting for the peer to unmap it.
struct Deferred {
    gref: u32,
    warn_delay: u16,
    page: *mut bindings::page,
    next: Option<KBox<Deferred>>,
}

/// The deferred list: a queue of boxed entries, as two stacks, so that neither adding nor
/// removing an entry allocates or walks the list.
struct DeferredQueue {
    /// Entries to take next, the oldest first.
    front: Option<KBox<Deferred>>,
    /// Entries added since, the newest first.
    back: Option<KBox<Deferred>>,
}

impl DeferredQueue {
    const fn new() -> Self {
        Self {
            front: None,
            back: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.front.is_none() && self.back.is_none()
    }

    fn push_back(&mut self, mut e: KBox<Deferred>) {
        e.next = self.back.take();
        self.back = Some(e);
    }

    fn push_front(&mut self, mut e: KBox<Deferred>) {
        e.next = self.front.take();
        self.front = Some(e);
    }

    fn pop_front(&mut self) -> Option<KBox<Deferred>> {
        if self.front.is_none() {
            // Reverse the newest-first stack onto the front: relinks, does not allocate.
            while let Some(mut e) = self.back.take() {
                self.back = e.next.take();
                e.next = self.front.take();
                self.front = Some(e);
            }
        }
        let mut e = self.front.take()?;
        self.front = e.next.take();
        Some(e)
    }
}

/// The grant table's state that `gnttab_list_lock` protects in C.
///
/// # Invariants
///
/// `free_words` is null, or points to the words of `free_bits`' bitmap, which has `free_nbits`
/// bits; `free_bits` is set once (by `init`) and never replaced or dropped after that.
struct State {
    /// One bit per reference, set when it is on the free list.
    free_bits: Option<BitmapVec>,
    /// The words of `free_bits`, reached directly on the allocation and free paths (the
    /// kernel crate's accessors are calls into another crate).
    free_words: *mut usize,
    /// The number of bits of `free_bits`.
    free_nbits: usize,
    /// Number of references in the table (`gnttab_size`).
    size: u32,
    /// Number of grant frames set up (`nr_grant_frames`).
    nr_frames: u32,
    /// Number of references on the free list.
    free_count: u32,
    /// First free reference.
    head: u32,
    /// The free reference added last at the end of the list (`gnttab_last_free`).
    last_free: u32,
    /// See [`Tail`].
    tail: Tail,
    /// Callers waiting for free references (`gnttab_free_callback_list`).
    callbacks: *mut bindings::gnttab_free_callback,
    /// References ended while the peer still had them mapped.
    deferred: DeferredQueue,
}

// SAFETY: The raw pointers in `State` (the callback list, the deferred pages, the bitmap's
// words) are owned by the grant table while it holds them and are only used under its lock; none
// is tied to a thread.
unsafe impl Send for State {}

/// A spinlock taken with `spin_lock_irqsave()`, as grant-table.c takes `gnttab_list_lock`.
///
/// Not `kernel::sync::SpinLockIrq`: that one nests interrupt disabling through a per-CPU count
/// (`local_interrupt_disable()`) and reaches the lock through calls into the kernel crate, which
/// is not inlined across crates; on a grant cycle, which takes the lock twice, that was a good
/// part of the Rust core's gap to C in `make bench`. This is the plain C lock, for one static.
///
/// # Invariants
///
/// `lock` is initialised by [`IrqSaveLock::init`] before [`IrqSaveLock::lock`] is first called,
/// and `data` is only reached through a guard, with `lock` held.
struct IrqSaveLock<T> {
    /// Not an `Opaque`: its accessor is a call into the kernel crate on this path.
    lock: UnsafeCell<MaybeUninit<bindings::spinlock_t>>,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is only reached with the lock held (type invariant), and `T: Send` may be used
// from any thread.
unsafe impl<T: Send> Sync for IrqSaveLock<T> {}

impl<T> IrqSaveLock<T> {
    const fn new(data: T) -> Self {
        Self {
            lock: UnsafeCell::new(MaybeUninit::uninit()),
            data: UnsafeCell::new(data),
        }
    }

    #[inline]
    fn raw(&self) -> *mut bindings::spinlock_t {
        self.lock.get().cast()
    }

    /// Initialises the lock.
    ///
    /// # Safety
    ///
    /// Called once, before any [`IrqSaveLock::lock`], and not concurrently with anything else
    /// on this lock.
    unsafe fn init(&'static self) {
        // SAFETY: The lock is not in use (the caller's guarantee); the name and class are static.
        unsafe {
            bindings::__spin_lock_init(
                self.raw(),
                c"gnttab_list_lock".as_char_ptr(),
                kernel::static_lock_class!().as_ptr(),
            )
        };
    }

    /// Takes the lock with interrupts off; they are restored when the guard goes.
    #[inline]
    fn lock(&self) -> IrqSaveGuard<'_, T> {
        // SAFETY: The lock is initialised (type invariant).
        let flags = unsafe { bindings::xen_spin_lock_irqsave(self.raw()) };
        IrqSaveGuard {
            lock: self,
            flags,
            _not_send: PhantomData,
        }
    }
}

/// The holder of an [`IrqSaveLock`]: it must be dropped on the CPU that took it, with the
/// interrupt state it saved, hence not `Send`.
struct IrqSaveGuard<'a, T> {
    lock: &'a IrqSaveLock<T>,
    flags: c_ulong,
    _not_send: PhantomData<*mut ()>,
}

impl<T> core::ops::Deref for IrqSaveGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: The lock is held while the guard lives, so nothing else reaches `data`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> core::ops::DerefMut for IrqSaveGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: As above, and `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for IrqSaveGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: The lock is held by this guard, with these saved flags.
        unsafe { bindings::spin_unlock_irqrestore(self.lock.raw(), self.flags) };
    }
}

/// The grant table's state and its lock. `gnttab_init` initialises the lock before anything else
/// uses it: every other entry point checks `READY` (or `LOCK_READY`), which is set after that.
static GNTTAB: IrqSaveLock<State> = IrqSaveLock::new(State {
    free_bits: None,
    free_words: ptr::null_mut(),
    free_nbits: 0,
    size: 0,
    nr_frames: 0,
    free_count: 0,
    head: LIST_END,
    last_free: LIST_END,
    tail: Tail::None,
    callbacks: ptr::null_mut(),
    deferred: DeferredQueue::new(),
});

/// Set once the lock is initialised and the table is set up.
static READY: AtomicBool = AtomicBool::new(false);
/// Set once the lock is initialised.
static LOCK_READY: AtomicBool = AtomicBool::new(false);

/// The table size, readable without the lock (it only grows).
static SIZE: AtomicU32 = AtomicU32::new(0);

/// The layout of the shared entries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The negotiated version: 0 before negotiation, then 1 or 2.
static VERSION: AtomicU32 = AtomicU32::new(0);
/// The shared entries (`gnttab_shared.addr`).
static SHARED: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
/// The v2 status words (`grstatus`).
static GRSTATUS: AtomicPtr<bindings::grant_status_t> = AtomicPtr::new(ptr::null_mut());

static DEFERRED_COUNT: AtomicI64 = AtomicI64::new(0);
static LEAKED_COUNT: AtomicI64 = AtomicI64::new(0);

#[inline]
fn version() -> Version {
    if VERSION.load(Ordering::Acquire) == 2 {
        Version::V2
    } else {
        Version::V1
    }
}

impl Version {
    fn number(self) -> u32 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }

    /// Grant references per grant frame.
    fn grefs_per_frame(self) -> u32 {
        let entry = match self {
            Version::V1 => core::mem::size_of::<bindings::grant_entry_v1>(),
            Version::V2 => core::mem::size_of::<bindings::grant_entry_v2>(),
        };
        (XEN_PAGE_SIZE / entry) as u32
    }
}

/// `DIV_ROUND_UP(frames * grefs_per_frame, align)`, saturating.
fn frames_to_units(frames: u32, per_frame: u32, align: u32) -> u32 {
    let n = u64::from(frames) * u64::from(per_frame);
    let units = n.div_ceil(u64::from(align.max(1)));
    u32::try_from(units).unwrap_or(u32::MAX)
}

fn nr_status_frames(nr_grant_frames: u32) -> u32 {
    frames_to_units(nr_grant_frames, version().grefs_per_frame(), SPP)
}

/// Whether `gref` is an entry of the table as it is now.
#[inline]
fn in_table(gref: u32) -> bool {
    gref < SIZE.load(Ordering::Acquire)
}

// ---------------------------------------------------------------------------------------------
// The shared entries.

/// Writes a valid entry granting `domid` access to `frame`: domid and frame first, then the
/// flags with release ordering, so that Xen never sees the flags before the rest.
#[inline]
fn update_entry(gref: u32, domid: u16, frame: c_ulong, flags: u16) {
    let shared = SHARED.load(Ordering::Acquire);
    if shared.is_null() || !in_table(gref) {
        not_in_table("granting", gref);
        return;
    }
    match version() {
        Version::V1 => {
            // SAFETY: `shared` maps `SIZE` v1 entries and `gref < SIZE`.
            let e = unsafe { shared.cast::<bindings::grant_entry_v1>().add(gref as usize) };
            // SAFETY: `e` is a valid entry; Xen reads it concurrently, hence volatile writes
            // and an atomic for the flags.
            unsafe {
                ptr::write_volatile(ptr::addr_of_mut!((*e).domid), domid);
                // The v1 frame field is 32 bits wide, as in C.
                ptr::write_volatile(ptr::addr_of_mut!((*e).frame), frame as u32);
                AtomicU16::from_ptr(ptr::addr_of_mut!((*e).flags)).store(flags, Ordering::Release);
            }
        }
        Version::V2 => {
            // SAFETY: `shared` maps `SIZE` v2 entries and `gref < SIZE`.
            let e = unsafe { shared.cast::<bindings::grant_entry_v2>().add(gref as usize) };
            // SAFETY: As above; `hdr` and `full_page` are the union's views of the same entry.
            unsafe {
                ptr::write_volatile(ptr::addr_of_mut!((*e).hdr.domid), domid);
                ptr::write_volatile(ptr::addr_of_mut!((*e).full_page.frame), frame as u64);
                AtomicU16::from_ptr(ptr::addr_of_mut!((*e).hdr.flags)).store(
                    bindings::GTF_permit_access as u16 | flags,
                    Ordering::Release,
                );
            }
        }
    }
}

/// Reports a reference outside the table, which the caller then refuses. Out of line and cold,
/// so that the grant and end paths do not pay for formatting a message they never print.
#[cold]
#[inline(never)]
fn not_in_table(what: &str, gref: u32) {
    pr_err!("{} g.e. {:#x}: not in the table\n", what, gref);
    warn_on!(true);
}

/// Ends foreign access to `gref` unless the peer has it mapped; true if it ended.
#[inline]
fn end_access(gref: u32) -> bool {
    let shared = SHARED.load(Ordering::Acquire);
    if shared.is_null() || !in_table(gref) {
        not_in_table("ending", gref);
        return false;
    }
    match version() {
        Version::V1 => {
            // SAFETY: `shared` maps `SIZE` v1 entries and `gref < SIZE`.
            let e = unsafe { shared.cast::<bindings::grant_entry_v1>().add(gref as usize) };
            // SAFETY: The flags word is a valid, aligned `u16` that Xen accesses atomically too.
            let flags = unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*e).flags)) };
            let mut cur = flags.load(Ordering::Relaxed);
            loop {
                if cur & GTF_IN_USE != 0 {
                    return false;
                }
                // A full barrier, as `sync_try_cmpxchg`.
                match flags.compare_exchange(cur, 0, Ordering::SeqCst, Ordering::Relaxed) {
                    Ok(_) => return true,
                    Err(now) => cur = now,
                }
            }
        }
        Version::V2 => {
            let status = GRSTATUS.load(Ordering::Acquire);
            if status.is_null() {
                return false;
            }
            // SAFETY: `shared` maps `SIZE` v2 entries and `gref < SIZE`.
            let e = unsafe { shared.cast::<bindings::grant_entry_v2>().add(gref as usize) };
            // SAFETY: As above.
            unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*e).hdr.flags)) }
                .store(0, Ordering::Relaxed);
            // The flags store must be visible before the status is read (`mb()` in C).
            fence(Ordering::SeqCst);
            // SAFETY: The status frames map one word per reference of the table.
            let st = unsafe { AtomicU16::from_ptr(status.add(gref as usize)) };
            // Acquire: nothing of the page is touched before the status says it is free.
            st.load(Ordering::Acquire) & GTF_IN_USE == 0
        }
    }
}

/// The frame `gref` grants.
fn read_frame(gref: u32) -> Option<c_ulong> {
    let shared = SHARED.load(Ordering::Acquire);
    if shared.is_null() || !in_table(gref) {
        return None;
    }
    match version() {
        Version::V1 => {
            // SAFETY: `shared` maps `SIZE` v1 entries and `gref < SIZE`.
            let e = unsafe { shared.cast::<bindings::grant_entry_v1>().add(gref as usize) };
            // SAFETY: A valid entry; the frame is only written by this domain.
            Some(unsafe { ptr::read_volatile(ptr::addr_of!((*e).frame)) } as c_ulong)
        }
        Version::V2 => {
            // SAFETY: `shared` maps `SIZE` v2 entries and `gref < SIZE`.
            let e = unsafe { shared.cast::<bindings::grant_entry_v2>().add(gref as usize) };
            // SAFETY: As above.
            Some(unsafe { ptr::read_volatile(ptr::addr_of!((*e).full_page.frame)) } as c_ulong)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The free list. Every function here runs with the lock held (it takes `&mut State`).

impl State {
    /// Sets the free bitmap, once.
    fn set_bits(&mut self, bits: BitmapVec) {
        if self.free_bits.is_some() {
            return;
        }
        let bits = self.free_bits.insert(bits);
        self.free_nbits = bits.len();
        // The words stay where they are from now on: `free_bits` is never replaced.
        self.free_words = bits.as_mut_ptr();
    }

    /// Whether `gref` is on the free list.
    #[inline]
    fn is_free(&self, gref: u32) -> bool {
        let i = gref as usize;
        if self.free_words.is_null() || i >= self.free_nbits {
            return false;
        }
        // SAFETY: `i < free_nbits`, so the word holding bit `i` is inside the bitmap
        // `free_words` points to (type invariant).
        let word = unsafe { *self.free_words.add(i / usize::BITS as usize) };
        word & (1 << (i % usize::BITS as usize)) != 0
    }

    /// Marks `gref` free or not in the bitmap. A plain read-modify-write of its word: the bitmap
    /// is only touched with the lock held.
    #[inline]
    fn mark(&mut self, gref: u32, free: bool) {
        let i = gref as usize;
        if self.free_words.is_null() || i >= self.free_nbits {
            return;
        }
        // SAFETY: `i < free_nbits`, so the word holding bit `i` is inside the bitmap (type
        // invariant), which `&mut self` gives this function alone.
        let word = unsafe { &mut *self.free_words.add(i / usize::BITS as usize) };
        let bit = 1 << (i % usize::BITS as usize);
        if free {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }

    fn tail_value(&self) -> u32 {
        match self.tail {
            Tail::None => LIST_END,
            Tail::Head => self.head,
            Tail::Link(r) => LINKS.next(r),
        }
    }

    fn set_at(&mut self, at: Tail, value: u32) {
        match at {
            Tail::None => {}
            Tail::Head => self.head = value,
            Tail::Link(r) => {
                LINKS.set_next(r, value);
            }
        }
    }

    /// Takes one reference off the head of the free list: `get_free_entries(1)` without its
    /// loop, for the allocations of one reference, the common case.
    #[inline(always)]
    fn get_free_entry(&mut self) -> Result<u32> {
        let head = self.head;
        if self.free_count == 0 || head == LIST_END {
            return self.get_free_entries(1);
        }
        self.take(head);
        self.cut_after(head, 1);
        Ok(head)
    }

    /// Marks `gref`, on the free list, as taken (the first steps of taking it off the list).
    #[inline(always)]
    fn take(&mut self, gref: u32) {
        self.mark(gref, false);
        if self.tail == Tail::Link(gref) {
            self.tail = Tail::Head;
        }
    }

    /// Ends the run of `count` references taken from the head of the free list at `last`: the
    /// list goes on after it, and the run ends at `LIST_END`.
    #[inline(always)]
    fn cut_after(&mut self, last: u32, count: u32) {
        self.free_count = self.free_count.saturating_sub(count);
        self.head = LINKS.next(last);
        LINKS.set_next(last, LIST_END);
        if self.free_count == 0 {
            self.last_free = LIST_END;
            self.tail = Tail::None;
        }
    }

    /// Takes `count` references off the head of the free list, growing the table if needed.
    /// Returns the first; they stay linked, the last one to `LIST_END`.
    #[inline(never)]
    fn get_free_entries(&mut self, count: u32) -> Result<u32> {
        if count == 0 {
            return Err(EINVAL);
        }
        if self.free_count < count {
            self.expand(count - self.free_count)?;
        }
        if self.free_count < count {
            return Err(ENOSPC);
        }
        let first = self.head;
        let mut head = self.head;
        let mut left = count;
        while left > 0 {
            left -= 1;
            if head == LIST_END {
                // Cannot happen while `free_count` is right; refuse rather than corrupt.
                warn_on!(true);
                return Err(ENOSPC);
            }
            self.take(head);
            if left > 0 {
                head = LINKS.next(head);
            }
        }
        self.cut_after(head, count);
        Ok(first)
    }

    fn seq_entry_count(&self) -> u32 {
        if self.last_free == LIST_END || self.tail == Tail::None {
            return 0;
        }
        let start = self.tail_value();
        if start == LIST_END || start > self.last_free {
            return 0;
        }
        self.last_free - start + 1
    }

    /// Rebuilds the free list in order and takes `count` consecutive references from it, if
    /// there is such a run (`get_free_seq`).
    fn get_free_seq(&mut self, count: u32) -> Result<u32> {
        let size = self.size;
        let mut found: Option<u32> = None;
        self.tail = Tail::Head;
        let mut last = Tail::Head;
        let mut from = self.next_free_bit(0);
        while from < size {
            let mut to = self.next_zero_bit(from + 1);
            if to > size {
                to = size;
            }
            if found.is_none() && to - from >= count {
                found = Some(from);
                for r in from..from + count {
                    self.mark(r, false);
                }
                from += count;
                self.free_count = self.free_count.saturating_sub(count);
                if from == to {
                    from = self.next_free_bit(to + 1);
                    continue;
                }
            }
            // Relink the run in order, so that the free tail is as long as it can be.
            while from < to {
                self.set_at(last, from);
                last = Tail::Link(from);
                self.last_free = from;
                from += 1;
            }
            if to < size {
                self.tail = Tail::Link(to - 1);
            }
            from = self.next_free_bit(to + 1);
        }
        self.set_at(last, LIST_END);
        if self.last_free != size.wrapping_sub(1) {
            self.tail = Tail::None;
        }
        found.ok_or(ENOSPC)
    }

    fn next_free_bit(&self, start: u32) -> u32 {
        match &self.free_bits {
            Some(b) if (start as usize) < b.len() && start < self.size => b
                .next_bit(start as usize)
                .map_or(self.size, |i| i as u32)
                .min(self.size),
            _ => self.size,
        }
    }

    fn next_zero_bit(&self, start: u32) -> u32 {
        match &self.free_bits {
            Some(b) if (start as usize) < b.len() && start < self.size => b
                .next_zero_bit(start as usize)
                .map_or(self.size, |i| i as u32)
                .min(self.size),
            _ => self.size,
        }
    }

    fn get_free_entries_seq(&mut self, count: u32) -> Result<u32> {
        if count == 0 {
            return Err(EINVAL);
        }
        if self.free_count < count {
            self.expand(count - self.free_count)?;
        }
        if self.seq_entry_count() < count {
            if let Ok(first) = self.get_free_seq(count) {
                return Ok(first);
            }
            self.expand(count - self.seq_entry_count())?;
        }
        let first = self.tail_value();
        let last = first.checked_add(count - 1).ok_or(ENOSPC)?;
        if first == LIST_END || last >= self.size {
            warn_on!(true);
            return Err(ENOSPC);
        }
        let after = LINKS.next(last);
        let tail = self.tail;
        self.set_at(tail, after);
        self.free_count = self.free_count.saturating_sub(count);
        if self.free_count == 0 {
            self.tail = Tail::None;
        }
        for r in first..=last {
            self.mark(r, false);
        }
        Ok(first)
    }

    #[cold]
    fn do_free_callbacks(&mut self) {
        let mut cb = self.callbacks;
        self.callbacks = ptr::null_mut();
        while !cb.is_null() {
            // SAFETY: A callback stays valid while it is on the list: its owner may only free it
            // after it ran or after `gnttab_cancel_free_callback`, which takes the lock.
            let c = unsafe { &mut *cb };
            let next = c.next;
            if self.free_count >= u32::from(c.count) {
                c.next = ptr::null_mut();
                if let Some(f) = c.fn_ {
                    // SAFETY: The owner registered `f` with `arg` for exactly this call.
                    unsafe { f(c.arg) };
                }
            } else {
                c.next = self.callbacks;
                self.callbacks = cb;
            }
            cb = next;
        }
    }

    #[inline]
    fn check_free_callbacks(&mut self) {
        if !self.callbacks.is_null() {
            self.do_free_callbacks();
        }
    }

    /// Puts `gref` back on the free list. Reserved references are ignored, as in C; references
    /// outside the table or already free are refused with a warning (false).
    #[inline]
    fn put_free_entry(&mut self, gref: u32) -> bool {
        if gref < NR_RESERVED {
            return true;
        }
        if gref >= self.size || self.is_free(gref) {
            self.refuse_free(gref);
            return false;
        }
        if !LINKS.set_next(gref, self.head) {
            return false;
        }
        self.head = gref;
        if self.free_count == 0 {
            self.last_free = gref;
        }
        if self.tail == Tail::Head {
            self.tail = Tail::Link(gref);
        }
        self.free_count = self.free_count.saturating_add(1);
        self.mark(gref, true);
        true
    }

    /// Says why `put_free_entry` refuses `gref`.
    #[cold]
    fn refuse_free(&self, gref: u32) {
        if gref >= self.size {
            pr_err!(
                "freeing g.e. {:#x}: not in the table of {}\n",
                gref,
                self.size
            );
        } else {
            pr_err!("freeing g.e. {:#x}: already free\n", gref);
        }
        warn_on!(true);
    }

    /// Adds the `n` new references from `start` to the end of the free list.
    fn set_free(&mut self, start: u32, n: u32) {
        let Some(end) = n.checked_sub(1).and_then(|n1| start.checked_add(n1)) else {
            return;
        };
        for r in start..end {
            LINKS.set_next(r, r + 1);
        }
        LINKS.set_next(end, LIST_END);
        if self.free_count == 0 {
            self.head = start;
            self.tail = Tail::Head;
        } else {
            LINKS.set_next(self.last_free, start);
        }
        self.free_count = self.free_count.saturating_add(n);
        self.last_free = end;
        for r in start..=end {
            self.mark(r, true);
        }
    }

    /// Grows the free list by `more_frames` grant frames' worth of references.
    fn grow_list(&mut self, more_frames: u32) -> Result {
        let per_frame = version().grefs_per_frame();
        let new_frames = self.nr_frames.checked_add(more_frames).ok_or(ENOSPC)?;
        let extra = more_frames.checked_mul(per_frame).ok_or(ENOSPC)?;
        let have = frames_to_units(self.nr_frames, per_frame, RPP as u32);
        let want = frames_to_units(new_frames, per_frame, RPP as u32);
        for idx in have..want {
            LINKS.ensure_chunk(idx as usize, GFP_ATOMIC)?;
        }
        let bits = self.free_bits.as_ref().map_or(0, |b| b.len());
        if u64::from(self.size) + u64::from(extra) > bits as u64 {
            return Err(ENOSPC);
        }
        let old = self.size;
        self.set_free(old, extra);
        if self.tail == Tail::None {
            self.tail = Tail::Link(old);
        }
        self.nr_frames = new_frames;
        self.size += extra;
        SIZE.store(self.size, Ordering::Release);
        self.check_free_callbacks();
        Ok(())
    }

    /// Adds grant frames for at least `req_entries` more references (`gnttab_expand`).
    fn expand(&mut self, req_entries: u32) -> Result {
        let per_frame = version().grefs_per_frame();
        let cur = self.nr_frames;
        let extra = req_entries.div_ceil(per_frame);
        let limit = gnttab_max_grant_frames_now();
        if u64::from(cur) + u64::from(extra) > u64::from(limit) {
            if ratelimit() {
                pr_warn!(
                    "xen/grant-table: max_grant_frames reached cur={} extra={} limit={} gnttab_free_count={} req_entries={}\n",
                    cur,
                    extra,
                    limit,
                    self.free_count,
                    req_entries
                );
            }
            return Err(ENOSPC);
        }
        if extra == 0 {
            return Ok(());
        }
        map_frames(cur, cur + extra - 1)?;
        self.grow_list(extra)
    }
}

/// At most 10 messages in 5 seconds, as `pr_warn_ratelimited`.
fn ratelimit() -> bool {
    static BEGIN: AtomicU64 = AtomicU64::new(0);
    static PRINTED: AtomicU32 = AtomicU32::new(0);
    // SAFETY: `jiffies` is always readable.
    let now = unsafe { ptr::read_volatile(ptr::addr_of!(bindings::jiffies)) } as u64;
    let hz = u64::from(bindings::HZ);
    let begin = BEGIN.load(Ordering::Relaxed);
    if begin == 0 || now.wrapping_sub(begin) > 5 * hz {
        BEGIN.store(now, Ordering::Relaxed);
        PRINTED.store(1, Ordering::Relaxed);
        return true;
    }
    PRINTED.fetch_add(1, Ordering::Relaxed) < 10
}

// ---------------------------------------------------------------------------------------------
// Table setup: the hypercalls and the arch back end.

fn hypervisor_grant_table_op<T>(cmd: u32, op: &mut T) -> c_int {
    // SAFETY: `op` is a valid argument structure of `cmd`, and the count is 1.
    unsafe { bindings::HYPERVISOR_grant_table_op(cmd, ptr::from_mut(op).cast(), 1) }
}

fn query_max_frames() -> u32 {
    let mut query = bindings::gnttab_query_size {
        dom: bindings::DOMID_SELF as u16,
        ..Default::default()
    };
    let rc = hypervisor_grant_table_op(bindings::GNTTABOP_query_size, &mut query);
    if rc < 0 || query.status != bindings::GNTST_okay as i16 {
        // The legacy maximum.
        return 4;
    }
    query.max_nr_frames
}

/// The boot-time maximum, read once.
static BOOT_MAX_FRAMES: AtomicU32 = AtomicU32::new(0);

/// `gnttab_max_grant_frames()`: Xen's current maximum, but never more than at boot.
fn gnttab_max_grant_frames_now() -> u32 {
    let xen_max = query_max_frames();
    let mut boot = BOOT_MAX_FRAMES.load(Ordering::Relaxed);
    if boot == 0 {
        boot = query_max_frames();
        BOOT_MAX_FRAMES.store(boot, Ordering::Relaxed);
    }
    xen_max.min(boot)
}

fn map_shared(frames: &mut [c_ulong]) -> Result {
    let mut addr = SHARED.load(Ordering::Acquire);
    // SAFETY: `frames` holds `frames.len()` frame numbers from Xen; `addr` is the current
    // mapping or null, which the arch back end replaces by its mapping of the maximum size.
    let rc = unsafe {
        bindings::arch_gnttab_map_shared(
            frames.as_mut_ptr(),
            frames.len() as c_ulong,
            (gnttab_max_grant_frames_now()) as c_ulong,
            &mut addr,
        )
    };
    if rc != 0 {
        pr_err!("mapping the grant frames failed: {}\n", rc);
        return Err(Error::from_errno(rc));
    }
    SHARED.store(addr, Ordering::Release);
    Ok(())
}

fn map_status(nr_gframes: u32) -> Result {
    let nr = nr_status_frames(nr_gframes);
    let mut sframes = KVec::<u64>::with_capacity(nr as usize, GFP_ATOMIC)?;
    sframes.resize(nr as usize, 0, GFP_ATOMIC)?;
    let mut get = bindings::gnttab_get_status_frames {
        nr_frames: nr,
        dom: bindings::DOMID_SELF as u16,
        status: 0,
        frame_list: sframes.as_mut_ptr(),
    };
    let rc = hypervisor_grant_table_op(bindings::GNTTABOP_get_status_frames, &mut get);
    if rc == -(bindings::ENOSYS as c_int) {
        return Err(ENOSYS);
    }
    if rc != 0 || get.status != 0 {
        pr_err!(
            "GNTTABOP_get_status_frames failed: {} status {}\n",
            rc,
            get.status
        );
        return Err(EIO);
    }
    let mut addr = GRSTATUS.load(Ordering::Acquire);
    // SAFETY: `sframes` holds `nr` status frames from Xen; `addr` is the current mapping or null.
    let rc = unsafe {
        bindings::arch_gnttab_map_status(
            sframes.as_mut_ptr(),
            (nr) as c_ulong,
            (nr_status_frames(gnttab_max_grant_frames_now())) as c_ulong,
            &mut addr,
        )
    };
    if rc != 0 {
        pr_err!("mapping the status frames failed: {}\n", rc);
        return Err(Error::from_errno(rc));
    }
    GRSTATUS.store(addr, Ordering::Release);
    Ok(())
}

/// Sets up grant frames `start..=end` with Xen and maps the table (`gnttab_map`).
fn map_frames(start: u32, end: u32) -> Result {
    let nr = end.checked_add(1).ok_or(EINVAL)?;
    // SAFETY: Reads a flag set up at boot.
    if !unsafe { bindings::xen_pv_domain() } {
        // Auto-translated: place the frames at the guest frames the platform set aside.
        // SAFETY: `xen_auto_xlat_grant_frames` is written only by the two functions below, before
        // the table is set up or after it is torn down.
        let frames = unsafe { &*ptr::addr_of!(bindings::xen_auto_xlat_grant_frames) };
        if frames.count < nr || frames.pfn.is_null() {
            pr_err!(
                "only {} auto-translated grant frames for {}\n",
                frames.count,
                nr
            );
            return Err(ENOSPC);
        }
        // Backwards, so that the first hypercall has the largest index and the table grows
        // once.
        let mut i = end;
        loop {
            // SAFETY: `i < nr <= count`, the length of `pfn`.
            let gpfn = unsafe { *frames.pfn.add(i as usize) };
            let mut xatp = bindings::xen_add_to_physmap {
                domid: bindings::DOMID_SELF as u16,
                idx: (i) as c_ulong,
                space: bindings::XENMAPSPACE_grant_table,
                gpfn,
                ..Default::default()
            };
            // SAFETY: `xatp` is a valid `XENMEM_add_to_physmap` argument.
            let rc = unsafe {
                bindings::HYPERVISOR_memory_op(
                    bindings::XENMEM_add_to_physmap,
                    ptr::from_mut(&mut xatp).cast(),
                )
            };
            if rc != 0 {
                pr_warn!("grant table add_to_physmap failed, err={}\n", rc);
                return Err(Error::from_errno(rc));
            }
            if i == start {
                return Ok(());
            }
            i -= 1;
        }
    }

    let mut frames = KVec::<c_ulong>::with_capacity(nr as usize, GFP_ATOMIC)?;
    frames.resize(nr as usize, 0, GFP_ATOMIC)?;
    let mut setup = bindings::gnttab_setup_table {
        dom: bindings::DOMID_SELF as u16,
        nr_frames: nr,
        status: 0,
        frame_list: frames.as_mut_ptr(),
    };
    let rc = hypervisor_grant_table_op(bindings::GNTTABOP_setup_table, &mut setup);
    if rc == -(bindings::ENOSYS as c_int) {
        return Err(ENOSYS);
    }
    if rc != 0 || setup.status != 0 {
        // grant-table.c BUG()s here; the table just does not grow.
        pr_err!(
            "GNTTABOP_setup_table failed: {} status {}\n",
            rc,
            setup.status
        );
        warn_on!(true);
        return Err(EIO);
    }
    if version() == Version::V2 {
        map_status(nr)?;
    }
    map_shared(&mut frames)
}

#[cfg(CONFIG_HIBERNATE_CALLBACKS)]
fn unmap_frames(nr_frames: u32) {
    let shared = SHARED.load(Ordering::Acquire);
    // SAFETY: `shared` is the arch back end's mapping of the table, `nr_frames` big.
    unsafe { bindings::arch_gnttab_unmap(shared, (nr_frames) as c_ulong) };
    if version() == Version::V2 {
        let status = GRSTATUS.load(Ordering::Acquire);
        // SAFETY: As above, for the status frames.
        unsafe {
            bindings::arch_gnttab_unmap(status.cast(), (nr_status_frames(nr_frames)) as c_ulong)
        };
    }
}

/// Whether this machine needs the v2 layout: frame numbers wider than v1's 32 bits.
fn need_v2() -> bool {
    // SAFETY: Reads a flag set up at boot.
    if unsafe { bindings::xen_pv_domain() } {
        return pv_machine_address_width().is_some_and(|w| w > 32 + PAGE_SHIFT as u32);
    }
    // SAFETY: `max_possible_pfn` is set up by memblock at boot and only read afterwards.
    (unsafe { ptr::read_volatile(ptr::addr_of!(bindings::max_possible_pfn)) } >> 32) != 0
}

/// The machine address width Xen reports to a PV guest in its CPUID leaves, if it does.
#[cfg(CONFIG_X86)]
fn pv_machine_address_width() -> Option<u32> {
    // SAFETY: CPUID is always available to a PV guest.
    let base = unsafe { bindings::xen_cpuid_base() };
    // SAFETY: As above; `base` is Xen's first leaf.
    if unsafe { bindings::cpuid_eax(base) } < 5 {
        return None;
    }
    // SAFETY: As above; Xen has leaf `base + 5`.
    Some(unsafe { bindings::cpuid_ebx(base + 5) } & bindings::XEN_CPUID_MACHINE_ADDRESS_WIDTH_MASK)
}

/// Only x86 has PV guests.
#[cfg(not(CONFIG_X86))]
fn pv_machine_address_width() -> Option<u32> {
    None
}

fn request_version() {
    let mut gsv = bindings::gnttab_set_version {
        version: if need_v2() { 2 } else { 1 },
    };
    // SAFETY: A module parameter, written only at boot.
    let param = unsafe { ptr::read_volatile(ptr::addr_of!(xen_gnttab_version_param)) };
    if param == 1 || param == 2 {
        gsv.version = param;
    }
    let rc = hypervisor_grant_table_op(bindings::GNTTABOP_set_version, &mut gsv);
    let v = if rc == 0 && gsv.version == 2 {
        Version::V2
    } else {
        Version::V1
    };
    VERSION.store(v.number(), Ordering::Release);
    pr_info!("Grant tables using version {} layout\n", v.number());
}

fn setup(nr_frames: u32) -> Result {
    if gnttab_max_grant_frames_now() < nr_frames {
        return Err(ENOSYS);
    }
    // SAFETY: Reads a flag set up at boot.
    if !unsafe { bindings::xen_pv_domain() } && SHARED.load(Ordering::Acquire).is_null() {
        // SAFETY: See `map_frames`.
        let vaddr = unsafe { (*ptr::addr_of!(bindings::xen_auto_xlat_grant_frames)).vaddr };
        if vaddr.is_null() {
            pr_warn!("gnttab share frames is not mapped!\n");
            return Err(ENOMEM);
        }
        SHARED.store(vaddr, Ordering::Release);
    }
    map_frames(0, nr_frames.checked_sub(1).ok_or(EINVAL)?)
}

fn init() -> Result {
    if !LOCK_READY.swap(true, Ordering::AcqRel) {
        // SAFETY: Called once, by the first `gnttab_init`, before the lock's first use.
        unsafe { GNTTAB.init() };
    }
    if READY.load(Ordering::Acquire) {
        return Err(EBUSY);
    }
    request_version();
    let per_frame = version().grefs_per_frame();
    let max_frames = gnttab_max_grant_frames_now();
    let max_grefs = max_frames.checked_mul(per_frame).ok_or(EINVAL)?;
    // Rounded up: grant-table.c rounds down, and with an odd maximum of v1 frames its growth
    // writes one chunk pointer past the array.
    let max_chunks = max_grefs.div_ceil(RPP as u32) as usize;
    LINKS.install(max_chunks)?;
    let first_chunks = frames_to_units(1, per_frame, RPP as u32);
    for idx in 0..first_chunks {
        LINKS.ensure_chunk(idx as usize, GFP_KERNEL)?;
    }
    let bits = BitmapVec::new(max_grefs as usize, GFP_KERNEL)?;

    // SAFETY: The arch back end sizes its mappings for these maxima.
    let rc = unsafe {
        bindings::arch_gnttab_init(
            (max_frames) as c_ulong,
            (nr_status_frames(max_frames)) as c_ulong,
        )
    };
    if rc < 0 {
        return Err(Error::from_errno(rc));
    }
    if setup(1).is_err() {
        return Err(ENODEV);
    }

    let mut guard = GNTTAB.lock();
    let st = &mut *guard;
    st.set_bits(bits);
    st.nr_frames = 1;
    st.size = per_frame;
    SIZE.store(per_frame, Ordering::Release);
    st.set_free(NR_RESERVED, per_frame.saturating_sub(NR_RESERVED));
    drop(guard);
    READY.store(true, Ordering::Release);
    pr_info!("Grant table initialized (Rust)\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The deferred list.

/// Timer callback body: retries ending the deferred references (`gnttab_handle_deferred`).
///
/// # Safety
///
/// Called by the deferred timer in grant-table-glue.c only.
#[no_mangle]
pub unsafe extern "C" fn xen_gnttab_handle_deferred() {
    if !READY.load(Ordering::Acquire) {
        return;
    }
    // SAFETY: A module parameter, read as `READ_ONCE`.
    let mut nr = unsafe { ptr::read_volatile(ptr::addr_of!(xen_gnttab_free_per_iteration)) };
    let ignore_limit = nr == 0;
    let mut first: *const Deferred = ptr::null();
    let mut freed = 0usize;
    let mut st = GNTTAB.lock();
    loop {
        if !ignore_limit {
            if nr == 0 {
                break;
            }
            nr -= 1;
        }
        let Some(mut entry) = st.deferred.pop_front() else {
            break;
        };
        if ptr::eq(&*entry, first) {
            st.deferred.push_front(entry);
            break;
        }
        drop(st);
        if end_access(entry.gref) {
            let left = DEFERRED_COUNT.fetch_sub(1, Ordering::Relaxed) - 1;
            put_free(entry.gref);
            pr_debug!("freeing g.e. {:#x}, {} remaining\n", entry.gref, left);
            if !entry.page.is_null() {
                // SAFETY: The deferred entry holds a reference to the page.
                unsafe { bindings::put_page(entry.page) };
            }
            freed += 1;
            drop(entry);
            st = GNTTAB.lock();
        } else {
            entry.warn_delay = entry.warn_delay.wrapping_sub(1);
            if entry.warn_delay == 0 {
                pr_info!("g.e. {:#x} still pending\n", entry.gref);
            }
            if first.is_null() {
                first = &*entry;
            }
            st = GNTTAB.lock();
            st.deferred.push_back(entry);
        }
    }
    if st.deferred.is_empty() {
        warn_on!(DEFERRED_COUNT.load(Ordering::Relaxed) != 0);
    } else {
        // SAFETY: Arms the glue's timer; allowed in any context.
        unsafe { xen_gnttab_arm_deferred_timer() };
    }
    drop(st);
    pr_debug!("Freed {} references\n", freed);
}

fn add_deferred(gref: u32, mut page: *mut bindings::page) {
    // SAFETY: Reads the caller's context.
    let flags = if unsafe { xen_gnttab_in_atomic() } {
        GFP_ATOMIC
    } else {
        GFP_KERNEL
    };
    let entry = KBox::new(
        Deferred {
            gref,
            warn_delay: 60,
            page: ptr::null_mut(),
            next: None,
        },
        flags,
    );
    if page.is_null() {
        if let Some(frame) = read_frame(gref) {
            // SAFETY: The entry grants a frame of this domain's memory, so it has a page.
            page = unsafe { bindings::pfn_to_page(bindings::gfn_to_pfn(frame)) };
            // SAFETY: `page` is a valid page; the deferred entry holds this reference.
            unsafe { bindings::get_page(page) };
        }
    }
    match entry {
        Ok(mut e) => {
            e.page = page;
            let mut st = GNTTAB.lock();
            st.deferred.push_back(e);
            // Counted with the lock held, so that the timer never sees the entry uncounted (and
            // warns that the list is empty while the count is not).
            let deferred = DEFERRED_COUNT.fetch_add(1, Ordering::Relaxed) + 1;
            // SAFETY: Arms the glue's timer; allowed in any context.
            unsafe { xen_gnttab_arm_deferred_timer() };
            drop(st);
            pr_debug!(
                "deferring g.e. {:#x} (total deferred {}, total leaked {})\n",
                gref,
                deferred,
                LEAKED_COUNT.load(Ordering::Relaxed)
            );
        }
        Err(_) => {
            let leaked = LEAKED_COUNT.fetch_add(1, Ordering::Relaxed) + 1;
            pr_warn!(
                "leaking g.e. {:#x} (total deferred {}, total leaked {})\n",
                gref,
                DEFERRED_COUNT.load(Ordering::Relaxed),
                leaked
            );
        }
    }
}

fn put_free(gref: u32) {
    let mut guard = GNTTAB.lock();
    let st = &mut *guard;
    st.put_free_entry(gref);
    st.check_free_callbacks();
}

/// The figures of the debugfs `refs` file: table size, free references, deferred references.
///
/// # Safety
///
/// The pointers must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn xen_gnttab_refs(size: *mut c_uint, free: *mut c_uint, deferred: *mut i64) {
    let (s, f) = if READY.load(Ordering::Acquire) {
        let guard = GNTTAB.lock();
        let st = &*guard;
        (st.size, st.free_count)
    } else {
        (0, 0)
    };
    // SAFETY: The caller passes valid pointers.
    unsafe {
        *size = s;
        *free = f;
        *deferred = DEFERRED_COUNT.load(Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// The C API (include/xen/grant_table.h). Exported by grant-table-glue.c.

/// Grants `domid` access to `frame` through the allocated reference `gref`.
///
/// # Safety
///
/// `gref` must be allocated by the caller.
#[export]
pub unsafe extern "C" fn gnttab_grant_foreign_access_ref(
    gref: bindings::grant_ref_t,
    domid: bindings::domid_t,
    frame: c_ulong,
    readonly: c_int,
) {
    let ro = if readonly != 0 {
        bindings::GTF_readonly as u16
    } else {
        0
    };
    update_entry(gref, domid, frame, bindings::GTF_permit_access as u16 | ro);
}

/// Allocates a reference and grants `domid` access to `frame`; returns it or `-ENOSPC`.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn gnttab_grant_foreign_access(
    domid: bindings::domid_t,
    frame: c_ulong,
    readonly: c_int,
) -> c_int {
    let gref = match alloc_one() {
        Ok(r) => r,
        Err(_) => return -(bindings::ENOSPC as c_int),
    };
    // SAFETY: `gref` was just allocated.
    unsafe { gnttab_grant_foreign_access_ref(gref, domid, frame, readonly) };
    gref as c_int
}

fn alloc_one() -> Result<u32> {
    if !READY.load(Ordering::Acquire) {
        return Err(ENOSPC);
    }
    GNTTAB.lock().get_free_entry()
}

/// Ends foreign access through `gref`; 1 if it ended, 0 if the peer still has it mapped.
///
/// # Safety
///
/// `gref` must be allocated by the caller.
#[export]
pub unsafe extern "C" fn gnttab_end_foreign_access_ref(gref: bindings::grant_ref_t) -> c_int {
    if end_access(gref) {
        return 1;
    }
    still_in_use(gref);
    0
}

#[cold]
#[inline(never)]
fn still_in_use(gref: u32) {
    pr_warn!("WARNING: g.e. {:#x} still in use!\n", gref);
}

/// Ends foreign access and frees `gref` if the peer let go; 1 if so, 0 otherwise.
///
/// # Safety
///
/// `gref` must be allocated by the caller, which gives it up if this returns 1.
#[export]
pub unsafe extern "C" fn gnttab_try_end_foreign_access(gref: bindings::grant_ref_t) -> c_int {
    if !end_access(gref) {
        return 0;
    }
    put_free(gref);
    1
}

/// Ends foreign access, frees `gref` and puts `page` (if not null), now or once the peer lets go.
///
/// # Safety
///
/// `gref` must be allocated by the caller, which gives it up, and the reference to `page`
/// with it.
#[export]
pub unsafe extern "C" fn gnttab_end_foreign_access(
    gref: bindings::grant_ref_t,
    page: *mut bindings::page,
) {
    if !in_table(gref) {
        // Nothing to end, and nothing to retry: deferring it would warn every second. The page
        // may be granted under the reference the caller meant, so it is leaked, not freed.
        pr_err!(
            "ending g.e. {:#x}: not in the table; its page is leaked\n",
            gref
        );
        warn_on!(true);
        return;
    }
    // SAFETY: The caller's guarantees are this function's.
    if unsafe { gnttab_try_end_foreign_access(gref) } != 0 {
        if !page.is_null() {
            // SAFETY: The caller gives up its reference to `page`.
            unsafe { bindings::put_page(page) };
        }
    } else {
        add_deferred(gref, page);
    }
}

/// Frees the allocated reference `gref`.
///
/// # Safety
///
/// `gref` must be allocated by the caller, which gives it up.
#[export]
pub unsafe extern "C" fn gnttab_free_grant_reference(gref: bindings::grant_ref_t) {
    if READY.load(Ordering::Acquire) {
        put_free(gref);
    }
}

/// Frees a private list of references (from `gnttab_alloc_grant_references`).
///
/// # Safety
///
/// `head` must start a private list of the caller's.
#[export]
pub unsafe extern "C" fn gnttab_free_grant_references(head: bindings::grant_ref_t) {
    if !READY.load(Ordering::Acquire) {
        return;
    }
    let mut guard = GNTTAB.lock();
    let st = &mut *guard;
    let mut head = head;
    // A list longer than the table has a loop: stop instead of spinning with the lock held.
    let mut budget = st.size;
    while head != LIST_END {
        if budget == 0 || head >= st.size {
            pr_err!("freeing a list of grant references: bad g.e. {:#x}\n", head);
            warn_on!(true);
            break;
        }
        budget -= 1;
        let next = LINKS.next(head);
        if !st.put_free_entry(head) {
            // Already free: the list loops back, or runs into the free list.
            break;
        }
        head = next;
    }
    st.check_free_callbacks();
}

/// Frees `count` consecutive references from `head`.
///
/// # Safety
///
/// The references must be allocated by the caller.
#[export]
pub unsafe extern "C" fn gnttab_free_grant_reference_seq(
    head: bindings::grant_ref_t,
    count: c_uint,
) {
    if !READY.load(Ordering::Acquire) {
        return;
    }
    let mut guard = GNTTAB.lock();
    let st = &mut *guard;
    match head.checked_add(count) {
        Some(end) if end <= st.size => {
            for i in (0..count).rev() {
                st.put_free_entry(head + i);
            }
        }
        _ => {
            pr_err!(
                "freeing {} grant references from {:#x}: not in the table\n",
                count,
                head
            );
            warn_on!(true);
        }
    }
    st.check_free_callbacks();
}

/// Allocates `count` references as a private list in `*head`; 0 or `-ENOSPC`.
///
/// # Safety
///
/// `head` must be valid for writes.
#[export]
pub unsafe extern "C" fn gnttab_alloc_grant_references(
    count: u16,
    head: *mut bindings::grant_ref_t,
) -> c_int {
    if !READY.load(Ordering::Acquire) {
        return -(bindings::ENOSPC as c_int);
    }
    match GNTTAB.lock().get_free_entries(u32::from(count)) {
        Ok(h) => {
            // SAFETY: The caller passes a valid pointer.
            unsafe { *head = h };
            0
        }
        Err(_) => -(bindings::ENOSPC as c_int),
    }
}

/// Allocates `count` consecutive references, the first in `*first`; 0 or `-ENOSPC`.
///
/// # Safety
///
/// `first` must be valid for writes.
#[export]
pub unsafe extern "C" fn gnttab_alloc_grant_reference_seq(
    count: c_uint,
    first: *mut bindings::grant_ref_t,
) -> c_int {
    if !READY.load(Ordering::Acquire) {
        return -(bindings::ENOSPC as c_int);
    }
    let r = {
        let mut st = GNTTAB.lock();
        if count == 1 {
            st.get_free_entry()
        } else {
            st.get_free_entries_seq(count)
        }
    };
    match r {
        Ok(h) => {
            // SAFETY: The caller passes a valid pointer.
            unsafe { *first = h };
            0
        }
        Err(_) => -(bindings::ENOSPC as c_int),
    }
}

/// Whether the private list in `*head` is empty.
///
/// # Safety
///
/// `head` must be valid for reads.
#[export]
pub unsafe extern "C" fn gnttab_empty_grant_references(
    head: *const bindings::grant_ref_t,
) -> c_int {
    // SAFETY: The caller passes a valid pointer.
    c_int::from(unsafe { *head } == LIST_END)
}

/// Takes the first reference off the private list in `*head`; it or `-ENOSPC`.
///
/// # Safety
///
/// `head` must be valid for reads and writes and hold a private list of the caller's.
#[export]
pub unsafe extern "C" fn gnttab_claim_grant_reference(head: *mut bindings::grant_ref_t) -> c_int {
    // SAFETY: The caller passes a valid pointer.
    let g = unsafe { *head };
    if g == LIST_END {
        return -(bindings::ENOSPC as c_int);
    }
    let Some(slot) = LINKS.slot(g).filter(|_| in_table(g)) else {
        not_in_table("claiming", g);
        return -(bindings::ENOSPC as c_int);
    };
    // SAFETY: As above.
    unsafe { *head = slot.load(Ordering::Relaxed) };
    g as c_int
}

/// Puts `release` back on the private list in `*head`.
///
/// # Safety
///
/// `head` must be valid for reads and writes; `release` must be allocated by the caller.
#[export]
pub unsafe extern "C" fn gnttab_release_grant_reference(
    head: *mut bindings::grant_ref_t,
    release: bindings::grant_ref_t,
) {
    let Some(slot) = LINKS.slot(release).filter(|_| in_table(release)) else {
        not_in_table("releasing", release);
        return;
    };
    // SAFETY: The caller passes a valid pointer.
    slot.store(unsafe { *head }, Ordering::Relaxed);
    // SAFETY: As above.
    unsafe { *head = release };
}

/// Calls `f(arg)` once `count` references are free (at once if they are).
///
/// # Safety
///
/// `callback` must stay valid until `f` ran or `gnttab_cancel_free_callback` returned.
#[export]
pub unsafe extern "C" fn gnttab_request_free_callback(
    callback: *mut bindings::gnttab_free_callback,
    f: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
    count: u16,
) {
    if callback.is_null() || !LOCK_READY.load(Ordering::Acquire) {
        return;
    }
    let mut guard = GNTTAB.lock();
    let st = &mut *guard;
    let mut cb = st.callbacks;
    while !cb.is_null() {
        if cb == callback {
            return;
        }
        // SAFETY: Callbacks on the list are valid (see `do_free_callbacks`).
        cb = unsafe { (*cb).next };
    }
    // SAFETY: The caller passes a valid callback that is not on the list.
    unsafe {
        (*callback).fn_ = f;
        (*callback).arg = arg;
        (*callback).count = count;
        (*callback).next = st.callbacks;
    }
    st.callbacks = callback;
    st.check_free_callbacks();
}

/// Takes `callback` off the list of free callbacks, if it is on it.
///
/// # Safety
///
/// `callback` must be a callback passed to `gnttab_request_free_callback`, or not on the list.
#[export]
pub unsafe extern "C" fn gnttab_cancel_free_callback(
    callback: *mut bindings::gnttab_free_callback,
) {
    if !LOCK_READY.load(Ordering::Acquire) {
        return;
    }
    let mut guard = GNTTAB.lock();
    let st = &mut *guard;
    let mut prev: *mut bindings::gnttab_free_callback = ptr::null_mut();
    let mut cb = st.callbacks;
    while !cb.is_null() {
        // SAFETY: Callbacks on the list are valid.
        let next = unsafe { (*cb).next };
        if cb == callback {
            if prev.is_null() {
                st.callbacks = next;
            } else {
                // SAFETY: `prev` is on the list.
                unsafe { (*prev).next = next };
            }
            break;
        }
        prev = cb;
        cb = next;
    }
}

/// The number of grant frames this domain may have.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn gnttab_max_grant_frames() -> c_uint {
    gnttab_max_grant_frames_now()
}

/// Maps the frames the platform set aside for an auto-translated guest's grant table.
///
/// # Safety
///
/// Called once by the platform code, before `gnttab_init`.
#[export]
pub unsafe extern "C" fn gnttab_setup_auto_xlat_frames(addr: bindings::phys_addr_t) -> c_int {
    // SAFETY: Only this function and the one below write it, at setup or teardown.
    let frames = unsafe { &mut *ptr::addr_of_mut!(bindings::xen_auto_xlat_grant_frames) };
    if frames.count != 0 {
        return -(bindings::EINVAL as c_int);
    }
    let max = query_max_frames();
    // SAFETY: Maps `max` frames of memory Xen set aside at `addr`.
    let vaddr = unsafe {
        bindings::memremap(
            addr,
            XEN_PAGE_SIZE * max as usize,
            bindings::MEMREMAP_WB as c_ulong,
        )
    };
    if vaddr.is_null() {
        pr_warn!(
            "Failed to ioremap gnttab share frames (addr={:#x})!\n",
            addr
        );
        return -(bindings::ENOMEM as c_int);
    }
    let mut pfn = match KVec::<bindings::xen_pfn_t>::with_capacity(max as usize, GFP_KERNEL) {
        Ok(v) => v,
        Err(_) => {
            // SAFETY: `vaddr` was mapped above.
            unsafe { bindings::memunmap(vaddr) };
            return -(bindings::ENOMEM as c_int);
        }
    };
    let first = (addr >> bindings::XEN_PAGE_SHIFT) as bindings::xen_pfn_t;
    for i in 0..max {
        // Cannot fail: the capacity is there.
        if pfn
            .push(first.wrapping_add(i as bindings::xen_pfn_t), GFP_KERNEL)
            .is_err()
        {
            break;
        }
    }
    let (raw, _, _) = KVec::into_raw_parts(pfn);
    frames.vaddr = vaddr;
    frames.pfn = raw;
    frames.count = max;
    0
}

/// Unmaps and frees what `gnttab_setup_auto_xlat_frames` set up.
///
/// # Safety
///
/// Only after the grant table stopped using the frames.
#[export]
pub unsafe extern "C" fn gnttab_free_auto_xlat_frames() {
    // SAFETY: See `gnttab_setup_auto_xlat_frames`.
    let frames = unsafe { &mut *ptr::addr_of_mut!(bindings::xen_auto_xlat_grant_frames) };
    if frames.count == 0 {
        return;
    }
    // SAFETY: `pfn` and `count` come from `KVec::into_raw_parts` above, with the capacity
    // `count`.
    drop(unsafe { KVec::from_raw_parts(frames.pfn, frames.count as usize, frames.count as usize) });
    // SAFETY: `vaddr` was mapped by `gnttab_setup_auto_xlat_frames`.
    unsafe { bindings::memunmap(frames.vaddr) };
    frames.pfn = ptr::null_mut();
    frames.count = 0;
    frames.vaddr = ptr::null_mut();
}

/// Sets up the grant table: version, first frame, free list.
///
/// # Safety
///
/// Called once at boot (by the initcall, or by the PV-on-HVM platform device).
#[export]
pub unsafe extern "C" fn gnttab_init() -> c_int {
    match init() {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Unmaps the table before a suspend (PV).
///
/// # Safety
///
/// Called by `xen_suspend()` only, under `stop_machine`.
#[cfg(CONFIG_HIBERNATE_CALLBACKS)]
#[export]
pub unsafe extern "C" fn gnttab_suspend() -> c_int {
    // SAFETY: Reads a flag set up at boot.
    if unsafe { bindings::xen_pv_domain() } {
        let nr = if READY.load(Ordering::Acquire) {
            GNTTAB.lock().nr_frames
        } else {
            0
        };
        unmap_frames(nr);
    }
    0
}

/// Sets the table up again after a resume, in the new Xen's version and frames.
///
/// # Safety
///
/// Called by `xen_suspend()` only, under `stop_machine`.
#[cfg(CONFIG_HIBERNATE_CALLBACKS)]
#[export]
pub unsafe extern "C" fn gnttab_resume() -> c_int {
    request_version();
    let nr = if READY.load(Ordering::Acquire) {
        GNTTAB.lock().nr_frames
    } else {
        0
    };
    match setup(nr) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
