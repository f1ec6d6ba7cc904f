// SPDX-License-Identifier: GPL-2.0

//! The FIFO event channel ABI (`events_fifo.c`).
//!
//! Every port has a 32-bit event word: PENDING, MASKED, LINKED and BUSY bits and a 17-bit link to
//! the next port of its queue. The words live in pages the guest gives Xen one at a time with
//! `EVTCHNOP_expand_array`, as ports above the current array are bound ([`xen_evtchn_fifo_setup`]).
//! Each vCPU has a control block (`EVTCHNOP_init_control`) with a `ready` bit and a `head` port
//! for each of its 16 priority queues. When Xen raises an event, it links the port at the tail
//! of its queue, sets the queue's `ready` bit and calls the vCPU back; the guest walks the ready
//! queues, highest priority (lowest number) first, one port at a time ([`consume`]), unlinking
//! each port and handling it if it is pending and not masked.
//!
//! Xen's words can change at any time; everything read from them is checked before it is used
//! as an index (a port outside the array ends its queue with a warning instead of reading
//! outside the pages).

use super::{
    cpu_online,
    cpu_possible,
    handle_port,
    unmask_by_hypercall, //
};
use core::{
    ptr,
    sync::atomic::{
        fence,
        AtomicBool,
        AtomicPtr,
        AtomicU32,
        Ordering, //
    },
};
use kernel::{
    bindings,
    prelude::*, //
};

/// The number of ports of the ABI (`EVTCHN_FIFO_NR_CHANNELS`): what a link can name.
pub(crate) const NR_CHANNELS: u32 = bindings::EVTCHN_FIFO_NR_CHANNELS;

/// Priority queues per vCPU.
pub(crate) const QUEUES: u32 = bindings::EVTCHN_FIFO_MAX_QUEUES;

/// The `ready` bits that name a queue.
const READY_MASK: u32 = (1 << QUEUES) - 1;

pub(crate) const PENDING: u32 = 1 << bindings::EVTCHN_FIFO_PENDING;
pub(crate) const MASKED: u32 = 1 << bindings::EVTCHN_FIFO_MASKED;
pub(crate) const LINKED: u32 = 1 << bindings::EVTCHN_FIFO_LINKED;
pub(crate) const BUSY: u32 = 1 << bindings::EVTCHN_FIFO_BUSY;
pub(crate) const LINK_MASK: u32 = bindings::EVTCHN_FIFO_LINK_MASK;

/// The size of a Xen page, which is what an event array page and a control block are.
const XEN_PAGE_SIZE: usize = 1 << bindings::XEN_PAGE_SHIFT;

/// Event words per array page.
const WORDS_PER_PAGE: u32 = (XEN_PAGE_SIZE / core::mem::size_of::<bindings::event_word_t>()) as u32;

/// Array pages for every port the links can name.
const MAX_PAGES: usize = (NR_CHANNELS / WORDS_PER_PAGE) as usize;

const _: () = assert!(core::mem::size_of::<bindings::event_word_t>() == 4);
const _: () = assert!(QUEUES <= 32 && QUEUES as usize == bindings::EVTCHN_FIFO_MAX_QUEUES as usize);
const _: () = assert!(XEN_PAGE_SIZE <= kernel::page::PAGE_SIZE);

/// The event array: the pages given to Xen, in order. A page stays here once allocated, also
/// across a resume (which starts the array from 0 again and gives the same pages back).
///
/// Written only by [`xen_evtchn_fifo_setup`] and [`xen_evtchn_fifo_resume`], which the core
/// serialises (its mapping mutex, or the stopped machine); read from the upcall.
static EVENT_ARRAY: [AtomicPtr<u32>; MAX_PAGES] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_PAGES];

/// How many pages of [`EVENT_ARRAY`] Xen has: ports below this times [`WORDS_PER_PAGE`] exist.
/// Stored with release after the page's pointer, loaded with acquire before it.
static EVENT_ARRAY_PAGES: AtomicU32 = AtomicU32::new(0);

/// Set once a bad port has been reported, so that a misbehaving peer cannot flood the log.
static WARNED: AtomicBool = AtomicBool::new(false);

#[cold]
#[inline(never)]
fn warn_once(what: &str, value: u32) {
    if !WARNED.swap(true, Ordering::Relaxed) {
        pr_warn!("FIFO ABI: {} {} ignored (reported once)\n", what, value);
    }
}

/// The event word of `port`, or `None` if the array does not have it.
fn event_word(port: u32) -> Option<&'static AtomicU32> {
    let page = port / WORDS_PER_PAGE;
    if page >= EVENT_ARRAY_PAGES.load(Ordering::Acquire) {
        return None;
    }
    let p = EVENT_ARRAY.get(page as usize)?.load(Ordering::Relaxed);
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is an array page that is never freed while it counts in `EVENT_ARRAY_PAGES`,
    // and `port % WORDS_PER_PAGE` is within it. Its words are aligned `u32`s that the guest and
    // Xen only access atomically.
    Some(unsafe { AtomicU32::from_ptr(p.add((port % WORDS_PER_PAGE) as usize)) })
}

/// The event word of a port the core passes in; a port outside the array is reported and
/// ignored.
fn word_of(port: u32) -> Option<&'static AtomicU32> {
    let w = event_word(port);
    if w.is_none() {
        warn_once("port outside the event array", port);
    }
    w
}

/// `virt_to_gfn`.
fn virt_to_gfn(p: *mut u32) -> u64 {
    // SAFETY: `p` is a page of the kernel's direct map (from `__get_free_pages`).
    unsafe { bindings::virt_to_gfn(p.cast()) as u64 }
}

/// A page from the page allocator (`__get_free_page(GFP_KERNEL)`), or null.
fn alloc_page() -> *mut u32 {
    // SAFETY: `alloc_pages` may sleep; every caller runs in process context (the core's binding
    // path under its mutex, a CPU coming up, the boot).
    let page = unsafe { bindings::alloc_pages(bindings::GFP_KERNEL, 0) };
    if page.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `page` is a lowmem page (no `__GFP_HIGHMEM`; and 64-bit has no highmem), so it has
    // an address in the direct map.
    unsafe { bindings::xen_page_address(page) }.cast()
}

/// Gives a page back to the page allocator.
///
/// # Safety
///
/// `p` must be from [`alloc_page`] and no longer used by anyone, Xen included.
unsafe fn free_page(p: *mut u32) {
    // SAFETY: The caller passes a page of order 0 from the page allocator.
    unsafe { bindings::free_pages(p as usize, 0) };
}

/// `max_channels`: [`NR_CHANNELS`].
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_max_channels() -> c_uint {
    NR_CHANNELS
}

/// `nr_channels`: the ports the event array has now.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_nr_channels() -> c_uint {
    EVENT_ARRAY_PAGES.load(Ordering::Acquire) * WORDS_PER_PAGE
}

/// Frees the pages above the array's size (after a failed expansion).
fn free_unused_array_pages() {
    let pages = EVENT_ARRAY_PAGES.load(Ordering::Relaxed) as usize;
    for slot in EVENT_ARRAY.iter().skip(pages) {
        let p = slot.swap(ptr::null_mut(), Ordering::Relaxed);
        if p.is_null() {
            break;
        }
        // SAFETY: The page is above the array's size, so Xen did not take it and no port reads it.
        unsafe { free_page(p) };
    }
}

/// `setup`: before `port` is used, grows the event array until it has the port's word.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_setup(port: bindings::evtchn_port_t) -> c_int {
    let wanted = port / WORDS_PER_PAGE + 1;
    if wanted as usize > MAX_PAGES {
        return EINVAL.to_errno();
    }
    // The core serialises `setup`, so the size does not change under this loop.
    loop {
        let pages = EVENT_ARRAY_PAGES.load(Ordering::Relaxed);
        if pages >= wanted {
            return 0;
        }
        if let Err(e) = expand(pages as usize) {
            return expand_failed(pages, e.to_errno());
        }
        // Publishes the page: `event_word` loads the size with acquire before the pointer.
        EVENT_ARRAY_PAGES.store(pages + 1, Ordering::Release);
    }
}

/// Gives Xen page `index` of the event array, with every event in it masked.
fn expand(index: usize) -> Result {
    let slot = EVENT_ARRAY.get(index).ok_or(EINVAL)?;
    // After a resume, the page is already there.
    let mut page = slot.load(Ordering::Relaxed);
    if page.is_null() {
        page = alloc_page();
        if page.is_null() {
            return Err(ENOMEM);
        }
        slot.store(page, Ordering::Relaxed);
    }
    for i in 0..WORDS_PER_PAGE as usize {
        // SAFETY: `page` is a page of `WORDS_PER_PAGE` words that Xen does not have yet (a new
        // page, or one it dropped at the resume).
        unsafe { AtomicU32::from_ptr(page.add(i)) }.store(MASKED, Ordering::Relaxed);
    }
    let mut expand = bindings::evtchn_expand_array {
        array_gfn: virt_to_gfn(page),
    };
    // SAFETY: `expand` is a valid `struct evtchn_expand_array` for the duration of the call, and
    // the page stays allocated for as long as Xen may use it (for ever, or until a resume).
    let ret = unsafe {
        bindings::HYPERVISOR_event_channel_op(
            bindings::EVTCHNOP_expand_array as c_int,
            (&raw mut expand).cast(),
        )
    };
    kernel::error::to_result(ret)
}

#[cold]
#[inline(never)]
fn expand_failed(pages: u32, ret: c_int) -> c_int {
    if pages == 0 {
        // As in C: without its first page the ABI has no ports, and no interrupt would ever work.
        // SAFETY: The format takes one `int`.
        unsafe {
            bindings::panic(
                c"xen: unable to expand event array with initial page (%d)\n"
                    .as_char_ptr()
                    .cast(),
                ret,
            )
        };
    }
    pr_err!("unable to expand event array ({})\n", ret);
    free_unused_array_pages();
    ret
}

/// `bind_to_cpu`: nothing to do; Xen queues the port on the vCPU it is bound to.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_bind_to_cpu(
    _port: bindings::evtchn_port_t,
    _cpu: c_uint,
    _old_cpu: c_uint,
) {
}

/// `clear_pending`: clears `port`'s PENDING bit.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_clear_pending(port: bindings::evtchn_port_t) {
    if let Some(w) = word_of(port) {
        // SeqCst: a locked instruction, as `sync_clear_bit`, because Xen changes the word too.
        w.fetch_and(!PENDING, Ordering::SeqCst);
    }
}

/// `set_pending`: sets `port`'s PENDING bit.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_set_pending(port: bindings::evtchn_port_t) {
    if let Some(w) = word_of(port) {
        // SeqCst: a locked instruction, as `sync_set_bit`.
        w.fetch_or(PENDING, Ordering::SeqCst);
    }
}

/// `is_pending`: whether `port`'s PENDING bit is set.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_is_pending(port: bindings::evtchn_port_t) -> bool {
    // Relaxed: a plain read, as `sync_test_bit`.
    word_of(port).is_some_and(|w| w.load(Ordering::Relaxed) & PENDING != 0)
}

/// `mask`: sets `port`'s MASKED bit.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_mask(port: bindings::evtchn_port_t) {
    if let Some(w) = word_of(port) {
        // SeqCst: a locked instruction, as `sync_set_bit`.
        w.fetch_or(MASKED, Ordering::SeqCst);
    }
}

/// Clears MASKED unless PENDING is set, waiting while Xen holds the word BUSY (it sets BUSY while
/// it links the port into a queue). Returns whether the word is now unmasked
/// (`clear_masked_cond`).
pub(crate) fn clear_masked_cond(w: &AtomicU32) -> bool {
    let mut old = w.load(Ordering::Relaxed);
    loop {
        if old & MASKED == 0 {
            return true;
        }
        if old & PENDING != 0 {
            return false;
        }
        // Expecting the word without BUSY makes the exchange fail, and so wait, while Xen has
        // it. SeqCst, as `sync_try_cmpxchg`.
        let expected = old & !BUSY;
        match w.compare_exchange(
            expected,
            expected & !MASKED,
            Ordering::SeqCst,
            Ordering::Relaxed,
        ) {
            Ok(_) => return true,
            Err(now) => {
                old = now;
                core::hint::spin_loop();
            }
        }
    }
}

/// `unmask`: clears `port`'s MASKED bit; if the port is pending, `EVTCHNOP_unmask` has Xen
/// unmask it and link it, so that the event is not lost.
///
/// Called by the glue's `unmask`, which says whether interrupts are off (Rust cannot ask).
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_unmask_on(port: bindings::evtchn_port_t, irqs_off: bool) {
    // The core calls this with interrupts off (C: `BUG_ON(!irqs_disabled())`); the hypercall is
    // correct from any context, so a caller that breaks it only gets the warning.
    kernel::warn_on!(!irqs_off);
    match word_of(port) {
        Some(w) if clear_masked_cond(w) => {}
        _ => unmask_by_hypercall(port),
    }
}

/// `clear_linked`: unlinks the word, and returns the port that was linked after it (0: none).
pub(crate) fn clear_linked(w: &AtomicU32) -> u32 {
    // One locked read-modify-write, as C's `sync_try_cmpxchg` loop: Xen may set PENDING or BUSY
    // meanwhile, and those bits are kept.
    w.fetch_and(!(LINKED | LINK_MASK), Ordering::SeqCst) & LINK_MASK
}

/// What a walk of the queues needs from the control block, the event array, the CPU's queue
/// heads and the core. The upcall uses [`Cpu`]; the KUnit tests use a fake control block.
pub(crate) trait Queues {
    /// Takes the control block's `ready` word (and leaves it 0).
    fn take_ready(&self) -> u32;
    /// The control block's head of queue `q` (below [`QUEUES`]).
    fn xen_head(&self, q: u32) -> u32;
    /// The next port of queue `q` as far as this CPU has walked it (0: none, read Xen's head).
    fn local_head(&self, q: u32) -> u32;
    /// Records the next port of queue `q`.
    fn set_local_head(&self, q: u32, head: u32);
    /// The event word of `port`, if the array has it.
    fn word(&self, port: u32) -> Option<&AtomicU32>;
    /// Hands `port`, which is pending and not masked, to the core.
    fn handle(&self, port: u32);
    /// Reports a word of Xen's that is ignored: `what` and its value.
    fn ignored(&self, what: &str, value: u32);
}

/// The upcall's walk (`__evtchn_fifo_handle_events`): one port at a time from the ready queue of
/// highest priority, taking Xen's new `ready` bits after each, until no queue is ready.
pub(crate) fn consume<Q: Queues>(q: &Q) {
    let mut ready = take_ready(q);
    while ready != 0 {
        // `ready` only has bits below `QUEUES`.
        consume_one(q, ready.trailing_zeros(), &mut ready);
        ready |= take_ready(q);
    }
}

/// The control block's `ready` bits that name a queue.
fn take_ready<Q: Queues>(q: &Q) -> u32 {
    let ready = q.take_ready();
    if ready & !READY_MASK != 0 {
        q.ignored(
            "ready bits for queues that do not exist:",
            ready & !READY_MASK,
        );
    }
    ready & READY_MASK
}

/// Takes the port at the head of queue `prio` (`consume_one_event`).
fn consume_one<Q: Queues>(q: &Q, prio: u32, ready: &mut u32) {
    let mut head = q.local_head(prio);
    // Reached the tail last time? Read the new head from the control block.
    if head == 0 {
        head = q.xen_head(prio);
    }
    let port = head;
    let Some(w) = q.word(port) else {
        // Xen named a port the array does not have: end the queue rather than read outside it.
        q.ignored("queue head outside the event array:", port);
        *ready &= !(1 << prio);
        q.set_local_head(prio, 0);
        return;
    };
    let next = clear_linked(w);
    // No link: the queue is empty (until Xen sets its ready bit again).
    if next == 0 {
        *ready &= !(1 << prio);
    }
    let word = w.load(Ordering::Relaxed);
    if word & PENDING != 0 && word & MASKED == 0 {
        q.handle(port);
    }
    q.set_local_head(prio, next);
}

/// The upcall's view of one CPU: its control block and queue heads, the event array, and the
/// core's loop control (null while a dead CPU's queues are drained).
struct Cpu {
    state: *mut bindings::xen_evtchn_fifo_cpu,
    control_block: *mut bindings::evtchn_fifo_control_block,
    ctrl: *mut bindings::evtchn_loop_ctrl,
}

impl Cpu {
    /// The view of the CPU whose per-cpu state is `state`, if it has a control block.
    ///
    /// # Safety
    ///
    /// `state` must be a CPU's per-cpu state, and that CPU's upcall or teardown the caller.
    unsafe fn new(
        state: *mut bindings::xen_evtchn_fifo_cpu,
        ctrl: *mut bindings::evtchn_loop_ctrl,
    ) -> Option<Self> {
        // SAFETY: The caller passes a CPU's state; the pointer is written only while the CPU is
        // down or the machine is stopped.
        let control_block = unsafe { (*state).control_block };
        (!control_block.is_null()).then_some(Cpu {
            state,
            control_block,
            ctrl,
        })
    }
}

impl Queues for Cpu {
    fn take_ready(&self) -> u32 {
        // SAFETY: The control block is a page registered with Xen that lives while the CPU is up;
        // `ready` is an aligned `u32` that Xen and the guest only access atomically.
        let ready = unsafe { AtomicU32::from_ptr(ptr::addr_of_mut!((*self.control_block).ready)) };
        // `xchg`: a full barrier.
        ready.swap(0, Ordering::SeqCst)
    }

    fn xen_head(&self, q: u32) -> u32 {
        // `virt_rmb`: the event words read after this must not be older than the head.
        fence(Ordering::Acquire);
        // SAFETY: As in `take_ready`; `q` is below `QUEUES`, the length of `head`.
        let heads = unsafe { ptr::addr_of_mut!((*self.control_block).head) }.cast::<u32>();
        // SAFETY: `q` is within `head`, an array of aligned `u32`s that Xen writes.
        unsafe { AtomicU32::from_ptr(heads.add(q as usize)) }.load(Ordering::Relaxed)
    }

    fn local_head(&self, q: u32) -> u32 {
        // SAFETY: `state` is this CPU's per-cpu area; only its upcall (interrupts off) or the
        // teardown of the dead CPU uses the heads, and no reference to them is held.
        unsafe { (*self.state).head.get(q as usize).copied().unwrap_or(0) }
    }

    fn set_local_head(&self, q: u32, head: u32) {
        // SAFETY: As in `local_head`.
        if let Some(h) = unsafe { (*self.state).head.get_mut(q as usize) } {
            *h = head;
        }
    }

    fn word(&self, port: u32) -> Option<&AtomicU32> {
        event_word(port)
    }

    fn ignored(&self, what: &str, value: u32) {
        warn_once(what, value);
    }

    fn handle(&self, port: u32) {
        if self.ctrl.is_null() {
            pr_warn!("Dropping pending event for port {}\n", port);
        } else {
            // SAFETY: `ctrl` is the core's loop control, passed to `handle_events`.
            unsafe { handle_port(port, self.ctrl) };
        }
    }
}

/// `handle_events`: the upcall on the CPU whose per-cpu state is `state` (passed in by the glue's
/// `handle_events`: Rust cannot reach per-cpu variables).
///
/// # Safety
///
/// The caller must run on the CPU `state` belongs to, with interrupts off, and `ctrl` must be the
/// loop control the event channel core passes to `handle_events`.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_walk(
    state: *mut bindings::xen_evtchn_fifo_cpu,
    ctrl: *mut bindings::evtchn_loop_ctrl,
) {
    // SAFETY: The caller passes its CPU's state and runs that CPU's upcall.
    if let Some(this) = unsafe { Cpu::new(state, ctrl) } {
        consume(&this);
    }
}

/// Clears a control block and the CPU's queue heads, and registers the block with Xen for `cpu`.
///
/// # Safety
///
/// `state` must be `cpu`'s per-cpu area and `control_block` a page that no one else uses.
unsafe fn init_control_block(
    cpu: u32,
    state: *mut bindings::xen_evtchn_fifo_cpu,
    control_block: *mut u32,
) -> c_int {
    // SAFETY: The caller passes a page nobody else uses (Xen dropped it at the resume, or it is
    // new), and `cpu`'s state, which only this CPU's upcall uses, and that not while the CPU is
    // down or the machine stopped.
    unsafe {
        ptr::write_bytes(control_block.cast::<u8>(), 0, XEN_PAGE_SIZE);
        (*state).head = [0; QUEUES as usize];
    }
    let mut init = bindings::evtchn_init_control {
        control_gfn: virt_to_gfn(control_block),
        offset: 0,
        // SAFETY: `xen_evtchn_vcpu_nr` only reads the per-cpu vCPU number of a possible CPU.
        vcpu: unsafe { bindings::xen_evtchn_vcpu_nr(cpu) },
        ..Default::default()
    };
    // SAFETY: `init` is a valid `struct evtchn_init_control` for the duration of the call; the
    // page stays allocated for as long as Xen uses it.
    unsafe {
        bindings::HYPERVISOR_event_channel_op(
            bindings::EVTCHNOP_init_control as c_int,
            (&raw mut init).cast(),
        )
    }
}

/// `percpu_init`: gives `cpu` a control block, unless it has one (from before it went down).
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_percpu_init(cpu: c_uint) -> c_int {
    if !cpu_possible(cpu) {
        return EINVAL.to_errno();
    }
    // SAFETY: `cpu` is possible, so it has a per-cpu area.
    let state = unsafe { bindings::xen_evtchn_fifo_cpu(cpu) };
    // SAFETY: The CPU is not up yet (or this is the boot CPU at boot): nothing else uses `state`.
    if !unsafe { (*state).control_block }.is_null() {
        return 0;
    }
    let page = alloc_page();
    if page.is_null() {
        return ENOMEM.to_errno();
    }
    // SAFETY: `state` is `cpu`'s and `page` is new.
    let ret = unsafe { init_control_block(cpu, state, page) };
    if ret < 0 {
        // SAFETY: Xen refused the page, so nobody uses it.
        unsafe { free_page(page) };
        return ret;
    }
    // SAFETY: As above; the upcall on `cpu` reads the pointer once the CPU is up.
    unsafe { (*state).control_block = page.cast() };
    0
}

/// `percpu_deinit`: `cpu` is down; drops the events left in its queues.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_percpu_deinit(cpu: c_uint) -> c_int {
    if !cpu_possible(cpu) {
        return 0;
    }
    // SAFETY: `cpu` is possible, so it has a per-cpu area; it is down, so its upcall does not run
    // and this teardown is the only user of its queues.
    if let Some(this) = unsafe { Cpu::new(bindings::xen_evtchn_fifo_cpu(cpu), ptr::null_mut()) } {
        consume(&this);
    }
    0
}

/// `resume`: Xen forgot the control blocks and the event array. Registers the online CPUs'
/// blocks again, frees the offline CPUs' (they get new ones when they come up), and starts the
/// array from 0: the core binds the ports again, and `setup` gives Xen the same pages back.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_fifo_resume() {
    for cpu in 0..kernel::cpu::nr_cpu_ids() {
        if !cpu_possible(cpu) {
            continue;
        }
        // SAFETY: `cpu` is possible, so it has a per-cpu area.
        let state = unsafe { bindings::xen_evtchn_fifo_cpu(cpu) };
        // SAFETY: The machine is stopped: nothing else uses the state.
        let block = unsafe { (*state).control_block }.cast::<u32>();
        if block.is_null() {
            continue;
        }
        if !cpu_online(cpu) {
            // SAFETY: As above; Xen forgot the block at the resume.
            unsafe {
                (*state).control_block = ptr::null_mut();
                free_page(block);
            }
            continue;
        }
        // SAFETY: `state` is `cpu`'s, and Xen forgot the block.
        let ret = unsafe { init_control_block(cpu, state, block) };
        if ret < 0 {
            // C stops the machine here (`BUG_ON`); this CPU will get no events, but the others
            // and the log still work.
            pr_crit!(
                "cannot register CPU {}'s control block again ({})\n",
                cpu,
                ret
            );
            kernel::warn_on!(true);
        }
    }
    EVENT_ARRAY_PAGES.store(0, Ordering::Release);
}
