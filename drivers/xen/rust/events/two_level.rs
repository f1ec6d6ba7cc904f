// SPDX-License-Identifier: GPL-2.0

//! The 2-level event channel ABI (`events_2l.c`).
//!
//! Xen keeps two bitmaps of [`NR_CHANNELS`] bits in `shared_info`: `evtchn_pending` (the event
//! happened) and `evtchn_mask` (do not tell the guest). When it sets a pending bit that is not
//! masked, it sets the bit of the port's word in the selector of the vCPU the port is bound to
//! (`vcpu_info.evtchn_pending_sel`), then that vCPU's `evtchn_upcall_pending`, and calls it
//! back. The guest takes the selector, and scans the words it names for ports that are pending,
//! not masked and bound to this CPU (the per-cpu `bound` bitmap, which Linux keeps because Xen
//! does not say which vCPU a port belongs to).
//!
//! The scan ([`scan`]) is fair: each CPU remembers where it stopped and starts the next scan
//! after the last port it handled, so a port that keeps firing cannot starve the ports after it.

use super::{
    cpu_possible,
    handle_port,
    unmask_by_hypercall, //
};
use core::{
    ptr,
    sync::atomic::{
        fence,
        AtomicU64,
        AtomicU8,
        Ordering, //
    },
};
use kernel::{
    bindings,
    prelude::*, //
};

/// Bits in a bitmap word (`BITS_PER_EVTCHN_WORD`).
pub(crate) const WORD_BITS: u32 = bindings::XEN_EVTCHN_2L_WORD_BITS;

/// Words in each bitmap; the selector has one bit per word.
pub(crate) const WORDS: u32 = bindings::XEN_EVTCHN_2L_WORDS;

/// The number of ports of the ABI (`EVTCHN_2L_NR_CHANNELS`).
pub(crate) const NR_CHANNELS: u32 = WORDS * WORD_BITS;

// The words are `xen_ulong_t`, which the bitmaps below access as `AtomicU64`, and the selector
// has a bit for every word.
const _: () = assert!(core::mem::size_of::<bindings::xen_ulong_t>() == 8);
const _: () = assert!(WORD_BITS == 64 && WORDS <= 64);

/// The word `i` of a bitmap of `xen_ulong_t`s.
///
/// # Safety
///
/// `map` must point to a bitmap of at least `i + 1` words that is valid for the rest of the
/// kernel's life (`shared_info`, `vcpu_info` or a per-cpu variable), and is only accessed
/// atomically (by this CPU, other CPUs and Xen).
unsafe fn word<'a>(map: *mut bindings::xen_ulong_t, i: u32) -> &'a AtomicU64 {
    // SAFETY: The caller guarantees that word `i` exists, lives forever, is aligned (it is a
    // `xen_ulong_t` of 8 bytes) and is only accessed atomically.
    unsafe { AtomicU64::from_ptr(map.add(i as usize).cast()) }
}

/// The word and the bit of `port` in a bitmap, or `None` for a port the ABI does not have.
///
/// The core only passes ports it bound, which Xen gave it below [`NR_CHANNELS`]; a bad one is
/// ignored with a warning rather than touching memory outside the bitmaps.
fn split(port: u32) -> Option<(u32, u64)> {
    if port < NR_CHANNELS {
        Some((port / WORD_BITS, 1u64 << (port % WORD_BITS)))
    } else {
        bad_port(port);
        None
    }
}

#[cold]
#[inline(never)]
fn bad_port(port: u32) {
    pr_warn!("2-level ABI: port {} is out of range, ignored\n", port);
}

/// `HYPERVISOR_shared_info`.
fn shared_info() -> *mut bindings::shared_info {
    // SAFETY: The pointer is set up before the event channel core starts and only changes while
    // the machine is stopped (suspend and resume); reading it is a plain load.
    unsafe { ptr::addr_of!(bindings::HYPERVISOR_shared_info).read() }
}

/// Word `i` of `shared_info.evtchn_pending`.
fn pending_word<'a>(i: u32) -> &'a AtomicU64 {
    // SAFETY: `shared_info` is mapped for the kernel's life, its `evtchn_pending` has `WORDS`
    // words (`split` and the scan keep `i` below that), and the guest and Xen only access it
    // atomically.
    unsafe { word(ptr::addr_of_mut!((*shared_info()).evtchn_pending).cast(), i) }
}

/// Word `i` of `shared_info.evtchn_mask`.
fn mask_word<'a>(i: u32) -> &'a AtomicU64 {
    // SAFETY: As for `pending_word`.
    unsafe { word(ptr::addr_of_mut!((*shared_info()).evtchn_mask).cast(), i) }
}

/// Word `i` of the bitmap of ports bound to `cpu`, or `None` for a CPU that does not exist.
fn bound_word<'a>(cpu: u32, i: u32) -> Option<&'a AtomicU64> {
    if !cpu_possible(cpu) {
        return None;
    }
    // SAFETY: `cpu` is possible, so it has a per-cpu area.
    let state = unsafe { bindings::xen_evtchn_2l_cpu(cpu) };
    // SAFETY: Per-cpu variables live forever, `bound` has `WORDS` words and `i` is below that
    // (callers get it from `split` or the scan). Every access to `bound` is atomic (C uses
    // `set_bit` and `clear_bit` on it).
    Some(unsafe { word(ptr::addr_of_mut!((*state).bound).cast(), i) })
}

/// The selector word of a `vcpu_info`, and its `evtchn_upcall_pending`.
///
/// # Safety
///
/// `v` must be the `vcpu_info` of an online CPU (registered with Xen; it lives in the kernel's
/// memory or in `shared_info` for as long as the CPU is online).
unsafe fn vcpu<'a>(v: *mut bindings::vcpu_info) -> (&'a AtomicU64, &'a AtomicU8) {
    // SAFETY: The selector is an aligned `xen_ulong_t` that the guest and Xen only access
    // atomically; `evtchn_upcall_pending` is a byte Xen sets and the guest clears.
    unsafe {
        (
            AtomicU64::from_ptr(ptr::addr_of_mut!((*v).evtchn_pending_sel).cast()),
            AtomicU8::from_ptr(ptr::addr_of_mut!((*v).evtchn_upcall_pending)),
        )
    }
}

/// `max_channels` and `nr_channels`: [`NR_CHANNELS`].
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_max_channels() -> c_uint {
    NR_CHANNELS
}

/// `remove`: `port` is no longer bound to `cpu`.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_remove(port: bindings::evtchn_port_t, cpu: c_uint) {
    if let Some((w, bit)) = split(port) {
        if let Some(b) = bound_word(cpu, w) {
            b.fetch_and(!bit, Ordering::Relaxed);
        }
    }
}

/// `bind_to_cpu`: `port`'s events go to `cpu` instead of `old_cpu`.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_bind_to_cpu(
    port: bindings::evtchn_port_t,
    cpu: c_uint,
    old_cpu: c_uint,
) {
    let Some((w, bit)) = split(port) else {
        return;
    };
    // Relaxed, as C's `clear_bit` and `set_bit`: the core orders the move against the port's
    // handler with its own locks, and a scan that sees neither bit leaves the event pending for
    // the next one (Xen raises it again on the new vCPU when the core unmasks it).
    if let Some(b) = bound_word(old_cpu, w) {
        b.fetch_and(!bit, Ordering::Relaxed);
    }
    if let Some(b) = bound_word(cpu, w) {
        b.fetch_or(bit, Ordering::Relaxed);
    }
}

/// `clear_pending`: clears `port`'s pending bit (`sync_clear_bit`).
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_clear_pending(port: bindings::evtchn_port_t) {
    if let Some((w, bit)) = split(port) {
        // SeqCst: a locked instruction, as `sync_clear_bit`, because Xen sets other bits of the
        // word at the same time.
        pending_word(w).fetch_and(!bit, Ordering::SeqCst);
    }
}

/// `set_pending`: sets `port`'s pending bit (`sync_set_bit`); the core calls it to retrigger.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_set_pending(port: bindings::evtchn_port_t) {
    if let Some((w, bit)) = split(port) {
        // SeqCst: a locked instruction, as `sync_set_bit`.
        pending_word(w).fetch_or(bit, Ordering::SeqCst);
    }
}

/// `is_pending`: whether `port`'s pending bit is set (`sync_test_bit`).
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_is_pending(port: bindings::evtchn_port_t) -> bool {
    // Relaxed: a plain read of the word, as `sync_test_bit`.
    split(port).is_some_and(|(w, bit)| pending_word(w).load(Ordering::Relaxed) & bit != 0)
}

/// `mask`: sets `port`'s mask bit (`sync_set_bit`).
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_mask(port: bindings::evtchn_port_t) {
    if let Some((w, bit)) = split(port) {
        // SeqCst: a locked instruction, as `sync_set_bit`; Xen reads the mask when it raises an
        // event, so the bit must be in memory before the caller goes on.
        mask_word(w).fetch_or(bit, Ordering::SeqCst);
    }
}

/// `unmask`: clears `port`'s mask bit, and makes sure an event that became pending while it was
/// masked is not lost.
///
/// For a port bound to this CPU, the guest clears the bit itself and, if the port is pending,
/// sets its selector bit and `evtchn_upcall_pending` so that the upcall runs when interrupts come
/// back on (what a real IO-APIC's `hw_resend_irq` does). For a port bound to another CPU, or in an
/// HVM guest with the port pending (HVM has no `irq_enable` hook that would look at
/// `evtchn_upcall_pending`), `EVTCHNOP_unmask` asks Xen to do it.
///
/// Called by the glue's `unmask` with what Rust cannot find out itself: the CPU it runs on,
/// that CPU's `vcpu_info`, and whether interrupts are off.
///
/// # Safety
///
/// `cpu` must be the CPU this runs on, with preemption off, and `vcpu` its `vcpu_info`.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_unmask_on(
    port: bindings::evtchn_port_t,
    cpu: c_uint,
    vcpu_info: *mut bindings::vcpu_info,
    irqs_off: bool,
) {
    let Some((w, bit)) = split(port) else {
        return;
    };
    // The core calls this with interrupts off (C: `BUG_ON(!irqs_disabled())`), which keeps the
    // selector update below from racing with the upcall. If a caller breaks that, the hypercall
    // is correct from any context.
    if !irqs_off {
        kernel::warn_on!(true);
        unmask_by_hypercall(port);
        return;
    }

    // All writes before the unmask must be visible before the event can be handled (`smp_wmb`).
    fence(Ordering::Release);

    // SAFETY: `cpu_from_evtchn` only reads the core's table; it returns 0 for an unbound port.
    if cpu != unsafe { bindings::cpu_from_evtchn(port) } {
        unmask_by_hypercall(port);
        return;
    }

    // Clear the mask before checking pending, to not miss an event that becomes pending in
    // between (SeqCst: both are locked instructions in C, and the read must not move above the
    // clear).
    mask_word(w).fetch_and(!bit, Ordering::SeqCst);
    if pending_word(w).load(Ordering::SeqCst) & bit == 0 {
        return;
    }
    // SAFETY: `xen_hvm_domain` has no preconditions.
    if unsafe { bindings::xen_hvm_domain() } {
        // `EVTCHNOP_unmask` only raises an upcall if the mask bit was set: set it again.
        mask_word(w).fetch_or(bit, Ordering::SeqCst);
        unmask_by_hypercall(port);
        return;
    }
    // SAFETY: The caller passes this CPU's `vcpu_info`, and this CPU is online: it runs this code.
    let (selector, upcall_pending) = unsafe { vcpu(vcpu_info) };
    // `sync_test_and_set_bit`: if the word was not selected, select it and flag the upcall.
    let sel_bit = 1u64 << w;
    if selector.fetch_or(sel_bit, Ordering::SeqCst) & sel_bit == 0 {
        upcall_pending.store(1, Ordering::Relaxed);
    }
}

/// What a scan needs from the bitmaps, the CPU's scan position and the core. The upcall uses
/// [`Cpu`]; the KUnit tests use a model.
pub(crate) trait Levels {
    /// Takes the selector (and leaves it 0): the words that have had events since the last take.
    fn take_selector(&self) -> u64;
    /// The ports of word `w` (below [`WORDS`]) that are pending, not masked and bound to this CPU.
    fn active(&self, w: u32) -> u64;
    /// Where this CPU's last scan stopped: the word and the bit after the last port it handled.
    fn start(&self) -> (u32, u32);
    /// Records where the next scan is to start.
    fn save(&self, word: u32, bit: u32);
    /// Hands `port` to the core.
    fn handle(&self, port: u32);
}

/// `MASK_LSBS`: `w` without its `i` least significant bits (`i` below 64).
fn mask_lsbs(w: u64, i: u32) -> u64 {
    w & u64::MAX.checked_shl(i).unwrap_or(0)
}

/// The upcall's scan (`evtchn_2l_handle_events` after the timer): every port that is active in a
/// selected word, in port order, starting after the last port the previous scan handled and
/// wrapping around.
///
/// The word where the scan starts is scanned twice: first from the saved bit up, then, after the
/// other words, whole. A port in it that fired again meanwhile is handled again, as in C; every
/// other word is scanned once, so the scan ends after at most `WORDS + 2` words.
pub(crate) fn scan<L: Levels>(l: &L) {
    // Taking the selector clears it; `xchg` is a full barrier, and Xen sets a selector bit before
    // the upcall flag that the core has already cleared, so no event set after this point is lost.
    let mut pending_words = l.take_selector() & selector_mask();
    let (start_word, start_bit) = l.start();
    // The position is this code's own, but keep a bad one from leaving the bitmaps.
    let (start_word, start_bit) = (start_word % WORDS, start_bit % WORD_BITS);
    let mut word_idx = start_word;
    let mut first = true;

    while pending_words != 0 {
        let words = mask_lsbs(pending_words, word_idx);
        if words == 0 {
            // Nothing from here up: wrap around.
            word_idx = 0;
            first = false;
            continue;
        }
        // `words` is not 0 and has only selector bits, so this is below `WORDS`.
        word_idx = words.trailing_zeros();

        let pending_bits = l.active(word_idx);
        // The start word is scanned from the saved bit the first time, whole the second.
        let mut bit_idx = if word_idx == start_word && first {
            start_bit
        } else {
            0
        };
        loop {
            let bits = mask_lsbs(pending_bits, bit_idx);
            if bits == 0 {
                break;
            }
            bit_idx = bits.trailing_zeros();
            l.handle(word_idx * WORD_BITS + bit_idx);

            // The next scan starts after this port.
            bit_idx = (bit_idx + 1) % WORD_BITS;
            if bit_idx == 0 {
                l.save((word_idx + 1) % WORDS, 0);
                break;
            }
            l.save(word_idx, bit_idx);
        }

        // Scan the start word twice, all others once.
        if word_idx != start_word || !first {
            pending_words &= !(1u64 << word_idx);
        }
        word_idx = (word_idx + 1) % WORDS;
        first = false;
    }
}

/// The selector bits that name a word of the bitmaps.
const fn selector_mask() -> u64 {
    if WORDS == 64 {
        u64::MAX
    } else {
        (1u64 << WORDS) - 1
    }
}

/// The upcall's view of one CPU: the real bitmaps in `shared_info`, its `vcpu_info`, its per-cpu
/// state and the core's loop control.
struct Cpu {
    state: *mut bindings::xen_evtchn_2l_cpu,
    vcpu_info: *mut bindings::vcpu_info,
    ctrl: *mut bindings::evtchn_loop_ctrl,
}

impl Cpu {
    fn bound(&self, w: u32) -> u64 {
        // SAFETY: `state` is this CPU's per-cpu area, which lives forever; `bound` has `WORDS`
        // words and `w` is below that (the scan's invariant); it is only accessed atomically.
        unsafe { word(ptr::addr_of_mut!((*self.state).bound).cast(), w) }.load(Ordering::Relaxed)
    }

    fn active_word(&self, w: u32) -> u64 {
        // Plain reads, as `active_evtchns`: a bit that changes meanwhile is seen by the next scan
        // (Xen sets the selector again), or was handled already.
        pending_word(w).load(Ordering::Relaxed)
            & !mask_word(w).load(Ordering::Relaxed)
            & self.bound(w)
    }
}

impl Levels for Cpu {
    fn take_selector(&self) -> u64 {
        // SAFETY: `vcpu_info` is the `vcpu_info` of the CPU the upcall runs on.
        let (selector, _) = unsafe { vcpu(self.vcpu_info) };
        // `xchg_xen_ulong`: a full barrier, so that the core's clearing of the upcall flag comes
        // before the clearing of the selector.
        selector.swap(0, Ordering::SeqCst)
    }

    fn active(&self, w: u32) -> u64 {
        self.active_word(w)
    }

    fn start(&self) -> (u32, u32) {
        // SAFETY: `state` is this CPU's per-cpu area; only this CPU's upcall, with interrupts
        // off, reads and writes the position, and no reference to it is held.
        unsafe { ((*self.state).word_idx, (*self.state).bit_idx) }
    }

    fn save(&self, word: u32, bit: u32) {
        // SAFETY: As in `start`.
        unsafe {
            (*self.state).word_idx = word;
            (*self.state).bit_idx = bit;
        }
    }

    fn handle(&self, port: u32) {
        // SAFETY: `ctrl` is the core's loop control, passed to `handle_events`.
        unsafe { handle_port(port, self.ctrl) };
    }
}

/// `handle_events`: the upcall on `cpu`. The timer's port first, then a [`scan`].
///
/// Called by the glue's `handle_events` with what Rust cannot reach itself: the CPU's per-cpu
/// state and `vcpu_info`.
///
/// # Safety
///
/// The caller must run on `cpu` with interrupts off; `state` and `vcpu_info` must be that CPU's,
/// and `ctrl` the loop control the event channel core passes to `handle_events`.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_scan(
    cpu: c_uint,
    state: *mut bindings::xen_evtchn_2l_cpu,
    vcpu_info: *mut bindings::vcpu_info,
    ctrl: *mut bindings::evtchn_loop_ctrl,
) {
    let this = Cpu {
        state,
        vcpu_info,
        ctrl,
    };

    // The timer has the highest priority.
    let mut timer_port: bindings::evtchn_port_t = 0;
    // SAFETY: `irq_evtchn_from_virq` only reads the core's per-cpu VIRQ table and writes the port
    // through the valid pointer it is given.
    let irq =
        unsafe { bindings::irq_evtchn_from_virq(cpu, bindings::VIRQ_TIMER, &raw mut timer_port) };
    if irq != -1 && timer_port < NR_CHANNELS {
        let bit = 1u64 << (timer_port % WORD_BITS);
        if this.active_word(timer_port / WORD_BITS) & bit != 0 {
            // SAFETY: The core gave `irq` for the timer's port: it is a valid IRQ. As in C, the
            // result is ignored (the IRQ has a descriptor while the VIRQ is bound).
            let _ = unsafe { bindings::generic_handle_irq(irq as c_uint) };
        }
    }

    scan(&this);
}

/// Clears the bitmap of ports bound to `cpu`.
fn clear_bound(cpu: u32) {
    for w in 0..WORDS {
        if let Some(b) = bound_word(cpu, w) {
            b.store(0, Ordering::Relaxed);
        }
    }
}

/// `resume`: after a restore, no port is bound anywhere yet; the core binds them again.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_resume() {
    // C clears the online CPUs'; the others were cleared when they went down
    // (`percpu_deinit`), so clearing every possible CPU's is the same (`bound_word` skips the
    // impossible ones).
    for cpu in 0..kernel::cpu::nr_cpu_ids() {
        clear_bound(cpu);
    }
}

/// `percpu_deinit`: `cpu` is going down; no port is bound to it any more.
///
/// # Safety
///
/// Always safe to call; `unsafe` for the C ABI's type.
#[export]
pub unsafe extern "C" fn xen_evtchn_2l_percpu_deinit(cpu: c_uint) -> c_int {
    clear_bound(cpu);
    0
}
