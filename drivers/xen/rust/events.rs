// SPDX-License-Identifier: GPL-2.0

//! The Xen event channel ABIs, in Rust.
//!
//! This crate replaces `drivers/xen/events/events_2l.c` and `events_fifo.c` when
//! `XEN_EVTCHN_ABI_RUST` is set. Each ABI is a set of `struct evtchn_ops` callbacks
//! (`drivers/xen/events/events_internal.h`) through which the event channel core,
//! `events_base.c`, sets, clears, masks and unmasks ports and finds the pending ones on an upcall:
//!
//! - [`two_level`]: the 2-level ABI, with the pending and mask bitmaps in `shared_info` and a
//!   per-vCPU selector word (what seed 003 describes);
//! - [`fifo`]: the FIFO ABI, with per-port event words in pages registered with
//!   `EVTCHNOP_expand_array` and per-vCPU queues in a control block registered with
//!   `EVTCHNOP_init_control`.
//!
//! `drivers/xen/rust/events-abi-glue.c` holds what Rust in this kernel cannot express: the
//! per-cpu state of both ABIs (there is no per-cpu support in the kernel crate), the two
//! `struct evtchn_ops` and the `__init` functions that `xen_init_IRQ` calls to pick one, and the
//! 2-level ABI's debug dump.
//!
//! Memory shared with the hypervisor (the bitmaps, the selector, the event words and control
//! blocks) is only ever accessed through atomics: a read-modify-write where C uses a `sync_*`
//! bit operation or `xchg` (locked instructions on x86, as Xen requires for words it also
//! writes), a relaxed load where C reads the word plainly. Nothing here sleeps, allocates or
//! panics on the upcall path, and no reference to per-cpu or shared state is held across a call
//! back into the core (`handle_irq_for_port` re-enters through the irq chip's `ack`, which clears
//! the port's pending bit).

use kernel::{
    bindings,
    prelude::*, //
};

#[path = "events/two_level.rs"]
pub mod two_level;

#[path = "events/fifo.rs"]
pub mod fifo;

#[cfg(CONFIG_XEN_EVTCHN_ABI_KUNIT_TEST)]
#[path = "events/tests.rs"]
mod tests;

/// The prefix of this crate's messages: the same as `pr_fmt` gives `events_2l.c`.
const __LOG_PREFIX: &[u8] = b"xen:events\0";

/// Whether `cpu` is in `mask`, one of the kernel's global cpumasks.
///
/// # Safety
///
/// `mask` must point to a cpumask that lives forever.
unsafe fn in_mask(mask: *const bindings::cpumask, cpu: u32) -> bool {
    let Some(id) = kernel::cpu::CpuId::from_u32(cpu) else {
        return false;
    };
    // SAFETY: The caller passes a cpumask that lives forever.
    unsafe { kernel::cpumask::Cpumask::from_raw(mask) }.test(id)
}

/// Whether `cpu` is possible (has a per-cpu area).
fn cpu_possible(cpu: u32) -> bool {
    // SAFETY: `__cpu_possible_mask` is a cpumask that lives forever.
    unsafe { in_mask(&raw const bindings::__cpu_possible_mask, cpu) }
}

/// Whether `cpu` is online.
fn cpu_online(cpu: u32) -> bool {
    // SAFETY: `__cpu_online_mask` is a cpumask that lives forever.
    unsafe { in_mask(&raw const bindings::__cpu_online_mask, cpu) }
}

/// `EVTCHNOP_unmask`: asks Xen to unmask `port`, which raises the event again if it is pending.
fn unmask_by_hypercall(port: u32) {
    let mut unmask = bindings::evtchn_unmask { port };
    // SAFETY: `unmask` is a valid `struct evtchn_unmask` for the duration of the call. As in C,
    // the result is ignored: Xen refuses only a port that is not the guest's, and the caller
    // unmasks ports the core bound.
    let _ = unsafe {
        bindings::HYPERVISOR_event_channel_op(
            bindings::EVTCHNOP_unmask as c_int,
            (&raw mut unmask).cast(),
        )
    };
}

/// Hands `port` to the event channel core (`handle_irq_for_port`), which runs its handler.
///
/// # Safety
///
/// `ctrl` must be the loop control the core passed to `handle_events`.
unsafe fn handle_port(port: u32, ctrl: *mut bindings::evtchn_loop_ctrl) {
    // SAFETY: The caller passes the core's loop control on. The core looks the port up in its own
    // table and ignores ports it has not bound.
    unsafe { bindings::handle_irq_for_port(port, ctrl) };
}
