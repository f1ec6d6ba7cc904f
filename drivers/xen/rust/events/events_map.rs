// SPDX-License-Identifier: GPL-2.0

//! The Xen event channel core's maps, in Rust: event channel ports to IRQs, and IRQs to their
//! `struct irq_info`.
//!
//! This crate replaces `drivers/xen/events/events_map.c` when `XEN_EVENTS_RUST` is set. Every
//! event goes through it: the upcall loop finds the IRQ of each pending port with
//! [`xen_evtchn_to_info`], under `rcu_read_lock()`. `events_base.c` writes the map when it binds
//! and unbinds a port ([`xen_set_evtchn_to_irq`]), forgets every port on resume
//! ([`xen_clear_evtchn_to_irq_all`]) and records each IRQ's `irq_info`
//! ([`xen_set_info_for_irq`]).
//!
//! The port-to-IRQ map is a table of rows of a page each, allocated when the first port of the
//! row is bound and never freed, as in C. The table of rows is a fixed array sized for the
//! largest ABI (FIFO, 2^17 ports: 128 rows, 1 KiB), where C allocates one sized for the ABI in
//! use at boot. An IRQ's `irq_info` is the IRQ's chip data, except for the legacy IRQs, whose
//! descriptors belong to the architecture: those are kept here.
//!
//! Nothing here trusts a port number: a port outside the ABI's range, or in a row never
//! allocated, has no IRQ.

use core::ptr;

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_uint, //
    },
    prelude::*,
    sync::atomic::{
        Acquire,
        Atomic,
        Full,
        Relaxed,
        Release, //
    },
};

const __LOG_PREFIX: &[u8] = b"xen:events\0";

/// Ports (IRQ numbers) in a row: a page of `int`s, as in C.
const PER_ROW: usize = bindings::PAGE_SIZE / core::mem::size_of::<i32>();

/// The most ports any ABI has: FIFO's 2^17.
const MAX_PORTS: usize = 1 << bindings::EVTCHN_FIFO_LINK_BITS;

/// Rows of the largest map.
const MAX_ROWS: usize = MAX_PORTS.div_ceil(PER_ROW);

/// The legacy IRQs, whose `irq_info` is kept here rather than in their descriptor.
const NR_IRQS_LEGACY: usize = bindings::NR_IRQS_LEGACY as usize;

/// No IRQ.
const NO_IRQ: i32 = -1;

/// A row of the port-to-IRQ map: the IRQ of each port, or [`NO_IRQ`].
type Row = [Atomic<i32>; PER_ROW];

/// A map from event channel ports to IRQ numbers.
///
/// # Invariants
///
/// A non-null entry of `rows` points to a [`Row`] from [`KBox::into_raw`] that lives as long as
/// the map: a row, once installed, is never replaced or freed while the map lives.
struct PortMap {
    rows: [Atomic<*mut Row>; MAX_ROWS],
}

impl PortMap {
    const fn new() -> Self {
        Self {
            rows: [const { Atomic::new(ptr::null_mut()) }; MAX_ROWS],
        }
    }

    /// Where `port` is: its row and its column, if the map has room for it below `ports`.
    #[inline]
    fn locate(ports: usize, port: u32) -> Option<(usize, usize)> {
        let port = usize::try_from(port).ok()?;
        if port >= ports.min(MAX_PORTS) {
            return None;
        }
        Some((port / PER_ROW, port % PER_ROW))
    }

    /// The row at `row`, if it was allocated.
    #[inline]
    fn row(&self, row: usize) -> Option<&Row> {
        // Acquire: pairs with the cmpxchg that installed the row, so that its entries are seen
        // initialised.
        let p = self.rows.get(row)?.load(Acquire);
        // SAFETY: A non-null entry points to a row that lives as long as `self` (invariant).
        unsafe { p.as_ref() }
    }

    /// The IRQ of `port` for an ABI of `ports` ports, if it has one.
    #[inline]
    fn get(&self, ports: usize, port: u32) -> Option<u32> {
        let (row, col) = Self::locate(ports, port)?;
        let irq = self.row(row)?.get(col)?.load(Relaxed);
        u32::try_from(irq).ok()
    }

    /// Maps `port` to `irq` (`None`: to no IRQ) for an ABI of `ports` ports, allocating the row
    /// if need be. Concurrent callers for ports of one row race to install it; the loser frees
    /// its own.
    fn set(&self, ports: usize, port: u32, irq: Option<u32>) -> Result {
        let (row, col) = Self::locate(ports, port).ok_or(EINVAL)?;
        let value = match irq {
            // An IRQ number that does not fit in an `int` is C's -1 too.
            Some(irq) => i32::try_from(irq).unwrap_or(NO_IRQ),
            None => NO_IRQ,
        };
        let slot = self.rows.get(row).ok_or(EINVAL)?;
        let mut p = slot.load(Acquire);
        if p.is_null() {
            // A row never allocated has no IRQ for any port already.
            if value == NO_IRQ {
                return Ok(());
            }
            let new = KBox::into_raw(KBox::init(
                pin_init::init_array_from_fn(|_| Atomic::new(NO_IRQ)),
                GFP_KERNEL,
            )?);
            match slot.cmpxchg(ptr::null_mut(), new, Full) {
                Ok(_) => p = new,
                Err(theirs) => {
                    // SAFETY: `new` came from `KBox::into_raw` above and was not installed.
                    drop(unsafe { KBox::from_raw(new) });
                    p = theirs;
                }
            }
        }
        // SAFETY: `p` is an installed row, which lives as long as `self` (invariant).
        let row = unsafe { &*p };
        row.get(col).ok_or(EINVAL)?.store(value, Relaxed);
        Ok(())
    }

    /// Maps every port of the rows an ABI of `ports` ports uses to no IRQ; the rows stay.
    fn clear(&self, ports: usize) {
        for row in (0..ports.min(MAX_PORTS).div_ceil(PER_ROW)).filter_map(|r| self.row(r)) {
            for irq in row {
                irq.store(NO_IRQ, Relaxed);
            }
        }
    }
}

impl Drop for PortMap {
    fn drop(&mut self) {
        for slot in &self.rows {
            let p = slot.load(Relaxed);
            if !p.is_null() {
                // SAFETY: A non-null entry came from `KBox::into_raw`; the map is going away,
                // so nothing uses the row any more.
                drop(unsafe { KBox::from_raw(p) });
            }
        }
    }
}

/// The event channel core's port-to-IRQ map.
static MAP: PortMap = PortMap::new();

/// The `irq_info` of the legacy IRQs.
static LEGACY: [Atomic<*mut bindings::irq_info>; NR_IRQS_LEGACY] =
    [const { Atomic::new(ptr::null_mut()) }; NR_IRQS_LEGACY];

/// The number of ports of the event channel ABI in use.
/// None before `xen_init_IRQ()` has chosen it (and so in a kernel not running on Xen).
#[inline]
fn max_channels() -> usize {
    // SAFETY: The ABI is chosen in `xen_init_IRQ()` before the first port is bound or looked up,
    // and never changes after; its ops are static.
    let ops = unsafe { bindings::evtchn_ops };
    if ops.is_null() {
        return 0;
    }
    // SAFETY: `ops` is the ABI's, which is static.
    let max = unsafe { (*ops).max_channels };
    // SAFETY: The ABI's `max_channels` may be called at any time.
    max.map_or(0, |f| unsafe { f() }) as usize
}

/// The `irq_info` at IRQ `irq`'s legacy slot, if it is a legacy IRQ.
fn legacy(irq: c_uint) -> Option<&'static Atomic<*mut bindings::irq_info>> {
    // SAFETY: `nr_legacy_irqs()` only reads the architecture's legacy PIC description.
    let nr = unsafe { bindings::nr_legacy_irqs() };
    if i64::from(irq) >= i64::from(nr) {
        return None;
    }
    LEGACY.get(usize::try_from(irq).ok()?)
}

/// Allocates the map (`xen_init_IRQ()`). Nothing is allocated here: the table of rows is static
/// and sized for the largest ABI; an ABI with more ports than that fails the boot. Says that the
/// event channel core is the Rust one.
#[export]
pub extern "C" fn xen_evtchn_map_init() -> c_int {
    if max_channels() > MAX_PORTS {
        pr_err!(
            "xen: event channel ABI has {} ports, the map only {}\n",
            max_channels(),
            MAX_PORTS
        );
        return EINVAL.to_errno();
    }
    // The C core prints nothing here: this line is how a boot log shows which core runs.
    pr_info!("event channel core (Rust)\n");
    0
}

/// Maps port `evtchn` to IRQ `irq`; `irq` -1 (as an `unsigned int`, as C passes it) unmaps it.
/// Fails with `-EINVAL` for a port out of the ABI's range, `-ENOMEM` if its row cannot be
/// allocated.
#[export]
pub extern "C" fn xen_set_evtchn_to_irq(evtchn: bindings::evtchn_port_t, irq: c_uint) -> c_int {
    let irq = (irq != NO_IRQ as c_uint).then_some(irq);
    match MAP.set(max_channels(), evtchn, irq) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Maps every port to no IRQ (`xen_irq_resume()`: after a restore, no port is bound).
#[export]
pub extern "C" fn xen_clear_evtchn_to_irq_all() {
    MAP.clear(max_channels());
}

/// The `irq_info` of IRQ `irq`, or null.
///
/// # Safety
///
/// As C's: the result is freed after an RCU grace period once its IRQ is unbound; the caller
/// holds `rcu_read_lock()` or `irq_mapping_update_lock` to use it.
#[export]
pub unsafe extern "C" fn xen_info_for_irq(irq: c_uint) -> *mut bindings::irq_info {
    match legacy(irq) {
        Some(slot) => slot.load(Acquire),
        None => {
            // SAFETY: `irq_get_irq_data()` accepts any IRQ number, and returns null for one
            // without a descriptor.
            let data = unsafe { bindings::irq_get_irq_data(irq) };
            if data.is_null() {
                ptr::null_mut()
            } else {
                // SAFETY: `data` is the live descriptor's `irq_data`; the event core set its
                // chip data (`irq_get_chip_data()`).
                unsafe { (*data).chip_data.cast() }
            }
        }
    }
}

/// Records `info` as IRQ `irq`'s `irq_info` (null: none).
///
/// # Safety
///
/// `info` is null or a live `irq_info` for `irq`; the caller is `events_base.c`, which
/// serialises the writes for an IRQ.
#[export]
pub unsafe extern "C" fn xen_set_info_for_irq(irq: c_uint, info: *mut bindings::irq_info) {
    match legacy(irq) {
        Some(slot) => slot.store(info, Release),
        None => {
            // SAFETY: `irq_set_chip_data()` checks that `irq` has a descriptor; C ignores its
            // error as well (the IRQ was allocated by the caller).
            unsafe { bindings::irq_set_chip_data(irq, info.cast()) };
        }
    }
}

/// The `irq_info` of the IRQ port `evtchn` is bound to, or null.
///
/// # Safety
///
/// As [`xen_info_for_irq`].
#[export]
pub unsafe extern "C" fn xen_evtchn_to_info(
    evtchn: bindings::evtchn_port_t,
) -> *mut bindings::irq_info {
    match MAP.get(max_channels(), evtchn) {
        // SAFETY: The caller's guarantee is passed on.
        Some(irq) => unsafe { xen_info_for_irq(irq) },
        None => ptr::null_mut(),
    }
}

#[cfg(CONFIG_XEN_EVENTS_KUNIT_TEST)]
#[kunit_tests(rust_xen_events_map)]
mod tests {
    use super::*;

    /// FIFO's and 2-level's port counts on a 64-bit kernel.
    const FIFO: usize = MAX_PORTS;
    const TWO_LEVEL: usize = 64 * 64;

    fn map() -> Result<KBox<PortMap>> {
        Ok(KBox::new(PortMap::new(), GFP_KERNEL)?)
    }

    #[test]
    fn ports_map_to_irqs_and_back_to_none() -> Result {
        let m = map()?;
        assert_eq!(m.get(FIFO, 5), None);
        m.set(FIFO, 5, Some(42))?;
        assert_eq!(m.get(FIFO, 5), Some(42));
        // Neighbours, and the first port of the next row, are untouched.
        assert_eq!(m.get(FIFO, 4), None);
        assert_eq!(m.get(FIFO, 6), None);
        m.set(FIFO, PER_ROW as u32, Some(7))?;
        assert_eq!(m.get(FIFO, PER_ROW as u32), Some(7));
        assert_eq!(m.get(FIFO, PER_ROW as u32 - 1), None);
        assert_eq!(m.get(FIFO, 5), Some(42));
        m.set(FIFO, 5, None)?;
        assert_eq!(m.get(FIFO, 5), None);
        assert_eq!(m.get(FIFO, PER_ROW as u32), Some(7));
        Ok(())
    }

    #[test]
    fn unmapping_allocates_no_row() -> Result {
        let m = map()?;
        m.set(FIFO, 3 * PER_ROW as u32, None)?;
        assert!(m.row(3).is_none());
        m.set(FIFO, 3 * PER_ROW as u32, Some(1))?;
        assert!(m.row(3).is_some());
        Ok(())
    }

    #[test]
    fn ports_beyond_the_abi_have_no_irq() -> Result {
        let m = map()?;
        // The 2-level ABI's last port works; the next one does not, though FIFO has it.
        m.set(TWO_LEVEL, TWO_LEVEL as u32 - 1, Some(9))?;
        assert_eq!(m.get(TWO_LEVEL, TWO_LEVEL as u32 - 1), Some(9));
        assert_eq!(m.set(TWO_LEVEL, TWO_LEVEL as u32, Some(9)), Err(EINVAL));
        assert_eq!(m.get(TWO_LEVEL, TWO_LEVEL as u32), None);
        // Past the largest map, whatever the ABI says.
        assert_eq!(m.set(usize::MAX, MAX_PORTS as u32, Some(9)), Err(EINVAL));
        assert_eq!(m.get(usize::MAX, u32::MAX), None);
        assert_eq!(m.set(FIFO, u32::MAX, Some(9)), Err(EINVAL));
        Ok(())
    }

    #[test]
    fn an_irq_number_beyond_int_is_no_irq() -> Result {
        let m = map()?;
        m.set(FIFO, 1, Some(u32::MAX))?;
        assert_eq!(m.get(FIFO, 1), None);
        m.set(FIFO, 1, Some(i32::MAX as u32))?;
        assert_eq!(m.get(FIFO, 1), Some(i32::MAX as u32));
        Ok(())
    }

    #[test]
    fn clearing_forgets_every_port_and_keeps_the_rows() -> Result {
        let m = map()?;
        for port in [0, 1, PER_ROW as u32, FIFO as u32 - 1] {
            m.set(FIFO, port, Some(port + 100))?;
        }
        m.clear(FIFO);
        for port in [0, 1, PER_ROW as u32, FIFO as u32 - 1] {
            assert_eq!(m.get(FIFO, port), None);
        }
        assert!(m.row(0).is_some());
        assert!(m.row(MAX_ROWS - 1).is_some());
        // The rows are used again.
        m.set(FIFO, 1, Some(5))?;
        assert_eq!(m.get(FIFO, 1), Some(5));
        Ok(())
    }

    #[test]
    fn clearing_a_smaller_abi_keeps_the_ports_beyond_it() -> Result {
        let m = map()?;
        m.set(FIFO, 1, Some(1))?;
        m.set(FIFO, TWO_LEVEL as u32, Some(2))?;
        m.clear(TWO_LEVEL);
        assert_eq!(m.get(FIFO, 1), None);
        assert_eq!(m.get(FIFO, TWO_LEVEL as u32), Some(2));
        Ok(())
    }

    #[test]
    fn the_live_map_has_no_irq_beyond_the_abi() {
        // The first port past the ABI in use, and the last port number, have no IRQ in the live
        // map. (Port 0 may have one: a dom0's PIRQs map port 0 to their IRQ until started, in
        // C as here.)
        let past = u32::try_from(max_channels()).unwrap_or(u32::MAX);
        // SAFETY: Only looks the ports up; the results are compared with null, not used.
        assert!(unsafe { xen_evtchn_to_info(past) }.is_null());
        // SAFETY: As above.
        assert!(unsafe { xen_evtchn_to_info(u32::MAX) }.is_null());
    }
}
