// SPDX-License-Identifier: GPL-2.0

//! Shared request/response rings.
//!
//! A Rust counterpart of `DEFINE_RING_TYPES` and the macros of
//! [`include/xen/interface/io/ring.h`](srctree/include/xen/interface/io/ring.h). The layout of the
//! shared page is the C one: four indices, 48 bytes of padding, then a power-of-two number of
//! entries, each the union of a request and a response. A frontend and a backend written in C and
//! in Rust interoperate on the same page.
//!
//! The other end of a ring is another domain and is not trusted: every index read from the shared
//! page is checked before it is used, requests and responses are copied out of the page once before
//! they are looked at (no double fetch, XSA-155), and a peer that claims more work than can exist
//! gets an error, never a panic.
//!
//! Shared memory is only accessed with volatile reads and writes, ordered with the `virt_*`
//! barriers, which are real barriers even on a uniprocessor kernel: the peer is another domain,
//! which may run on another physical CPU.

use crate::{
    bindings,
    prelude::*,
    transmute::{AsBytes, FromBytes},
};
use core::{marker::PhantomData, mem::size_of, ptr::NonNull};

/// A ring index. Indices are free-running and wrap at `u32::MAX`; only their differences matter.
pub type RingIdx = u32;

/// Offset of the entries in the shared page: four indices and 48 bytes of padding.
pub const HEADER_SIZE: usize = 64;

const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;

/// Size of one ring entry: the union of a request and a response, as C lays it out.
pub const fn entry_size<Req, Rsp>() -> usize {
    let size = if size_of::<Req>() > size_of::<Rsp>() {
        size_of::<Req>()
    } else {
        size_of::<Rsp>()
    };
    let align = if core::mem::align_of::<Req>() > core::mem::align_of::<Rsp>() {
        core::mem::align_of::<Req>()
    } else {
        core::mem::align_of::<Rsp>()
    };
    size.div_ceil(align) * align
}

/// Number of entries of a ring of `bytes` bytes: `__CONST_RING_SIZE`, the largest power of two
/// that fits after the header. Zero if not even one entry fits.
pub const fn ring_entries<Req, Rsp>(bytes: usize) -> u32 {
    let esz = entry_size::<Req, Rsp>();
    if esz == 0 || bytes < HEADER_SIZE + esz {
        return 0;
    }
    let n = (bytes - HEADER_SIZE) / esz;
    let n = if n > u32::MAX as usize {
        u32::MAX
    } else {
        n as u32
    };
    // Round down to a power of two (`__RD32`).
    1u32 << (31 - n.leading_zeros())
}

/// The shared page of a ring, seen through a raw pointer.
///
/// # Invariants
///
/// `base` points to `HEADER_SIZE + nr_ents * entry_size::<Req, Rsp>()` bytes that stay valid for
/// reads and writes for the lifetime of this object, suitably aligned for `Req`, `Rsp` and `u32`;
/// `nr_ents` is a non-zero power of two. The peer may write the memory at any time.
struct Shared<Req, Rsp> {
    base: NonNull<u8>,
    nr_ents: u32,
    _p: PhantomData<(Req, Rsp)>,
}

impl<Req, Rsp> Shared<Req, Rsp> {
    /// # Safety
    ///
    /// `base` must point to `bytes` bytes, page aligned, valid for reads and writes for the
    /// lifetime of the returned object, and only accessed through rings (ours or the peer's).
    unsafe fn new(base: *mut u8, bytes: usize) -> Result<Self> {
        // Entries start at `HEADER_SIZE` and are `entry_size` apart, a multiple of the larger
        // alignment: both types' alignments (powers of two) must divide `HEADER_SIZE`.
        const {
            assert!(core::mem::align_of::<Req>() <= HEADER_SIZE);
            assert!(core::mem::align_of::<Rsp>() <= HEADER_SIZE);
        }
        let base = NonNull::new(base).ok_or(EINVAL)?;
        if base.as_ptr().align_offset(bindings::PAGE_SIZE) != 0 {
            return Err(EINVAL);
        }
        let nr_ents = ring_entries::<Req, Rsp>(bytes);
        if nr_ents == 0 {
            return Err(EINVAL);
        }
        // INVARIANT: `ring_entries` fits the entries in `bytes`, which the caller guarantees
        // valid; page alignment covers the indices, and with the assertion above the entries.
        Ok(Self {
            base,
            nr_ents,
            _p: PhantomData,
        })
    }

    fn idx_ptr(&self, off: usize) -> *mut u32 {
        // SAFETY: `off` is one of the four index offsets, inside the header (type invariant).
        unsafe { self.base.as_ptr().add(off).cast::<u32>() }
    }

    fn read_idx(&self, off: usize) -> RingIdx {
        // SAFETY: The index is valid and aligned (type invariant); the peer may write it
        // concurrently, hence the volatile access.
        unsafe { self.idx_ptr(off).read_volatile() }
    }

    fn write_idx(&self, off: usize, val: RingIdx) {
        // SAFETY: The index is valid for writes and aligned (type invariant); the peer may read or
        // write it concurrently, hence the volatile access.
        unsafe { self.idx_ptr(off).write_volatile(val) }
    }

    /// Pointer to the entry of index `idx` (taken modulo the ring size, so always in bounds).
    fn entry(&self, idx: RingIdx) -> *mut u8 {
        // `nr_ents` is not 0 (type invariant): the mask needs no overflow check.
        let slot = (idx & self.nr_ents.wrapping_sub(1)) as usize;
        // SAFETY: `slot < nr_ents`, so the entry is inside the shared area (type invariant).
        unsafe {
            self.base
                .as_ptr()
                .add(HEADER_SIZE + slot * entry_size::<Req, Rsp>())
        }
    }

    /// Publishes the producer index `new` at `prod` after the entries it covers, and returns
    /// whether the peer asked (through `event`) to be notified of them.
    fn publish(&self, prod: usize, event: usize, new: RingIdx) -> bool {
        let old = self.read_idx(prod);
        virt_wmb();
        self.write_idx(prod, new);
        virt_mb();
        needs_notify(old, new, self.read_idx(event))
    }

    fn init_header(&self) {
        self.write_idx(REQ_PROD, 0);
        self.write_idx(RSP_PROD, 0);
        self.write_idx(REQ_EVENT, 1);
        self.write_idx(RSP_EVENT, 1);
        for i in 16..HEADER_SIZE {
            // SAFETY: The padding is inside the header (type invariant).
            unsafe { self.base.as_ptr().add(i).write_volatile(0) };
        }
    }
}

// The barriers are inlined into the (generic, so driver-side) ring code, so that each costs one
// call into its C helper, not two.
#[inline]
fn virt_wmb() {
    // SAFETY: A barrier has no preconditions.
    unsafe { bindings::virt_wmb() }
}

#[inline]
fn virt_rmb() {
    // SAFETY: A barrier has no preconditions.
    unsafe { bindings::virt_rmb() }
}

#[inline]
fn virt_mb() {
    // SAFETY: A barrier has no preconditions.
    unsafe { bindings::virt_mb() }
}

/// Whether the peer asked to be notified of the indices `old..new`: `RING_PUSH_*_AND_CHECK_NOTIFY`.
#[inline]
fn needs_notify(old: RingIdx, new: RingIdx, event: RingIdx) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// The frontend's end of a ring: it produces requests and consumes responses.
///
/// # Examples
///
/// ```
/// use kernel::page::PAGE_SIZE;
/// use kernel::xen::{ring::{BackRing, FrontRing}, SharedPage};
///
/// #[derive(Clone, Copy, Default)]
/// #[repr(C)]
/// struct Req { id: u32, op: u32 }
/// // SAFETY: `Req` is two `u32`s: no padding bytes to leak.
/// unsafe impl kernel::transmute::AsBytes for Req {}
/// // SAFETY: `Req` is two `u32`s: any bit pattern is a valid value.
/// unsafe impl kernel::transmute::FromBytes for Req {}
///
/// let page = SharedPage::alloc(GFP_KERNEL)?;
/// let base = page.as_ptr();
/// // SAFETY: The page outlives both ends, which are the only users of it.
/// let mut front = unsafe { FrontRing::<Req, Req>::new(base, PAGE_SIZE)? };
/// // SAFETY: The same page, initialised by `front`; it outlives both ends.
/// let mut back = unsafe { BackRing::<Req, Req>::init(base, PAGE_SIZE)? };
///
/// front.push_request(&Req { id: 7, op: 1 })?;
/// front.push_requests_and_check_notify();
/// let req = back.next_request()?.ok_or(EIO)?;
/// back.push_response(&Req { id: req.id, op: req.op + 1 })?;
/// back.push_responses_and_check_notify();
/// let rsp = front.next_response()?.ok_or(EIO)?;
/// assert_eq!((rsp.id, rsp.op), (7, 2));
/// # Ok::<(), Error>(())
/// ```
pub struct FrontRing<Req, Rsp> {
    shared: Shared<Req, Rsp>,
    req_prod_pvt: RingIdx,
    rsp_cons: RingIdx,
    /// Responses the peer has published, checked, and not yet consumed.
    rsp_avail: RingIdx,
}

// SAFETY: The ring only holds a pointer to shared memory that is not tied to a thread.
unsafe impl<Req: Send, Rsp: Send> Send for FrontRing<Req, Rsp> {}

impl<Req: AsBytes + Copy, Rsp: FromBytes + Copy> FrontRing<Req, Rsp> {
    /// Initialises the shared page and the frontend's private state (`XEN_FRONT_RING_INIT`).
    ///
    /// # Safety
    ///
    /// `base` must point to `bytes` page-aligned bytes that stay valid for reads and writes while
    /// the returned ring exists, and that nothing but ring accessors (this ring, and the peer's
    /// backend ring) use meanwhile.
    pub unsafe fn new(base: *mut u8, bytes: usize) -> Result<Self> {
        // SAFETY: The caller's guarantee is the one `Shared::new` asks for.
        let shared = unsafe { Shared::new(base, bytes)? };
        shared.init_header();
        Ok(Self {
            shared,
            req_prod_pvt: 0,
            rsp_cons: 0,
            rsp_avail: 0,
        })
    }

    /// Number of entries of the ring (`RING_SIZE`).
    pub fn size(&self) -> u32 {
        self.shared.nr_ents
    }

    /// Requests that can still be queued before the ring is full (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        // At most `size()` requests are outstanding: `push_request` queues no more, and
        // `refresh` lets no more responses be consumed than were requested.
        self.size().wrapping_sub(self.outstanding())
    }

    /// Whether no request can be queued until responses are consumed (`RING_FULL`).
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Requests queued and not yet answered.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Queues a request in the next free slot; the peer sees it after
    /// [`push_requests_and_check_notify`](Self::push_requests_and_check_notify).
    ///
    /// Returns the ring index used, or `EBUSY` when the ring is full.
    pub fn push_request(&mut self, req: &Req) -> Result<RingIdx> {
        if self.is_full() {
            return Err(EBUSY);
        }
        let idx = self.req_prod_pvt;
        // SAFETY: The slot is inside the shared area and aligned for `Req` (`Shared`'s
        // invariants); it is free, since fewer than `size()` requests are outstanding.
        unsafe { self.shared.entry(idx).cast::<Req>().write_volatile(*req) };
        self.req_prod_pvt = idx.wrapping_add(1);
        Ok(idx)
    }

    /// Publishes the queued requests; returns whether the peer must be notified
    /// (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub fn push_requests_and_check_notify(&mut self) -> bool {
        self.shared.publish(REQ_PROD, REQ_EVENT, self.req_prod_pvt)
    }

    /// Reads the peer's response producer and checks it.
    ///
    /// Fails with `EPROTO` if the peer claims more responses than there are outstanding requests.
    fn refresh(&mut self) -> Result<u32> {
        let prod = self.shared.read_idx(RSP_PROD);
        virt_rmb();
        let avail = prod.wrapping_sub(self.rsp_cons);
        if avail > self.outstanding() {
            return Err(EPROTO);
        }
        self.rsp_avail = avail;
        Ok(avail)
    }

    /// Responses published by the peer and not yet consumed.
    ///
    /// Fails with `EPROTO` if the peer published more responses than there were requests.
    pub fn unconsumed_responses(&mut self) -> Result<u32> {
        self.refresh()
    }

    /// Copies the next response out of the ring and consumes it (`RING_COPY_RESPONSE`).
    ///
    /// Returns `Ok(None)` when no response is pending, `EPROTO` for a misbehaving peer.
    pub fn next_response(&mut self) -> Result<Option<Rsp>> {
        if self.rsp_avail == 0 && self.refresh()? == 0 {
            return Ok(None);
        }
        // SAFETY: The slot is inside the shared area and aligned for `Rsp` (`Shared`'s
        // invariants); `Rsp: FromBytes`, so whatever the peer wrote is a valid value. It is read
        // once, into a local copy.
        let rsp = unsafe {
            self.shared
                .entry(self.rsp_cons)
                .cast::<Rsp>()
                .read_volatile()
        };
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        // Not 0: checked above.
        self.rsp_avail = self.rsp_avail.wrapping_sub(1);
        Ok(Some(rsp))
    }

    /// Consumes every pending response in order, handing each to `f`, until none is left after
    /// the final check ([`final_check_for_responses`](Self::final_check_for_responses)) or `f`
    /// returns `false`. Returns how many were consumed.
    ///
    /// The same as calling [`next_response`](Self::next_response) in a loop, but the indices stay
    /// in registers while `f` runs: a frontend's interrupt handler, taking a batch of responses.
    ///
    /// Fails with `EPROTO` for a misbehaving peer, having consumed the responses before the lie.
    #[inline]
    pub fn consume_responses(&mut self, mut f: impl FnMut(Rsp) -> bool) -> Result<u32> {
        let mut taken = 0u32;
        loop {
            let mut avail = self.rsp_avail;
            if avail == 0 {
                avail = self.refresh()?;
                if avail == 0 {
                    // `refresh` just found nothing: the rest of the final check.
                    if !self.ask_for_event_and_recheck()? {
                        return Ok(taken);
                    }
                    continue;
                }
            }
            let mut cons = self.rsp_cons;
            let end = cons.wrapping_add(avail);
            while cons != end {
                // SAFETY: As in `next_response`: the slot is in the shared area and aligned for
                // `Rsp`, any bytes are a valid `Rsp`, and it is read once.
                let rsp = unsafe { self.shared.entry(cons).cast::<Rsp>().read_volatile() };
                cons = cons.wrapping_add(1);
                taken = taken.wrapping_add(1);
                if !f(rsp) {
                    self.rsp_cons = cons;
                    self.rsp_avail = end.wrapping_sub(cons);
                    return Ok(taken);
                }
            }
            self.rsp_cons = cons;
            self.rsp_avail = 0;
        }
    }

    /// After consuming all responses: asks the peer for a notification on the next one and
    /// checks once more (`RING_FINAL_CHECK_FOR_RESPONSES`). Returns whether more are pending.
    pub fn final_check_for_responses(&mut self) -> Result<bool> {
        if self.refresh()? != 0 {
            return Ok(true);
        }
        self.ask_for_event_and_recheck()
    }

    /// The second half of the final check, once no response is pending: asks the peer for a
    /// notification on the next one, then looks again for one published meanwhile.
    #[inline]
    fn ask_for_event_and_recheck(&mut self) -> Result<bool> {
        self.shared
            .write_idx(RSP_EVENT, self.rsp_cons.wrapping_add(1));
        virt_mb();
        Ok(self.refresh()? != 0)
    }
}

/// The backend's end of a ring: it consumes requests and produces responses.
///
/// See [`FrontRing`] for an example.
pub struct BackRing<Req, Rsp> {
    shared: Shared<Req, Rsp>,
    rsp_prod_pvt: RingIdx,
    req_cons: RingIdx,
    /// Requests the peer has published, checked, and not yet consumed.
    req_avail: RingIdx,
}

// SAFETY: The ring only holds a pointer to shared memory that is not tied to a thread.
unsafe impl<Req: Send, Rsp: Send> Send for BackRing<Req, Rsp> {}

impl<Req: FromBytes + Copy, Rsp: AsBytes + Copy> BackRing<Req, Rsp> {
    /// Takes the backend's end of a ring the frontend has just initialised: both private
    /// indices start at 0 (`BACK_RING_INIT`).
    ///
    /// # Safety
    ///
    /// As for [`FrontRing::new`].
    pub unsafe fn init(base: *mut u8, bytes: usize) -> Result<Self> {
        // SAFETY: The caller's guarantee is the one `Shared::new` asks for.
        let shared = unsafe { Shared::new(base, bytes)? };
        Ok(Self::starting_at(shared, 0))
    }

    /// Takes the backend's end of a ring that may already have been in use, carrying on from
    /// the last response published on it (`BACK_RING_ATTACH` at the shared `rsp_prod`, as
    /// blkback does): a backend that is bound again to a frontend that kept its ring continues
    /// where the last one stopped. On a fresh ring this is [`BackRing::init`].
    ///
    /// The starting index comes from the peer and is not trusted any more than later ones:
    /// every request producer is still checked against it.
    ///
    /// # Safety
    ///
    /// As for [`FrontRing::new`].
    pub unsafe fn attach(base: *mut u8, bytes: usize) -> Result<Self> {
        // SAFETY: The caller's guarantee is the one `Shared::new` asks for.
        let shared = unsafe { Shared::new(base, bytes)? };
        let start = shared.read_idx(RSP_PROD);
        Ok(Self::starting_at(shared, start))
    }

    fn starting_at(shared: Shared<Req, Rsp>, start: RingIdx) -> Self {
        Self {
            shared,
            rsp_prod_pvt: start,
            req_cons: start,
            req_avail: 0,
        }
    }

    /// Number of entries of the ring (`RING_SIZE`).
    pub fn size(&self) -> u32 {
        self.shared.nr_ents
    }

    /// Requests consumed and not answered yet.
    pub fn unanswered(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// Reads the peer's request producer and checks it.
    ///
    /// Fails with `EPROTO` if the peer claims more requests than the ring can hold
    /// (`RING_REQUEST_PROD_OVERFLOW`): a frontend lying about `req_prod`.
    fn refresh(&mut self) -> Result<u32> {
        let prod = self.shared.read_idx(REQ_PROD);
        virt_rmb();
        if prod.wrapping_sub(self.rsp_prod_pvt) > self.size() {
            return Err(EPROTO);
        }
        let avail = prod.wrapping_sub(self.req_cons);
        // Never more than the free slots: `RING_REQUEST_CONS_OVERFLOW`. At most `size()`
        // requests are unanswered: no more than that are consumed (this bound).
        let room = self.size().wrapping_sub(self.unanswered());
        self.req_avail = avail.min(room);
        Ok(self.req_avail)
    }

    /// Requests published by the peer and not yet consumed.
    ///
    /// Fails with `EPROTO` if the peer published more requests than the ring holds.
    pub fn unconsumed_requests(&mut self) -> Result<u32> {
        self.refresh()
    }

    /// Copies the next request out of the ring and consumes it (`RING_COPY_REQUEST`).
    ///
    /// The copy is the only read of the request: validate the returned value, never the ring.
    /// Returns `Ok(None)` when no request is pending, `EPROTO` for a misbehaving peer.
    pub fn next_request(&mut self) -> Result<Option<Req>> {
        if self.req_avail == 0 && self.refresh()? == 0 {
            return Ok(None);
        }
        // SAFETY: The slot is inside the shared area and aligned for `Req` (`Shared`'s
        // invariants); `Req: FromBytes`, so whatever the peer wrote is a valid value. It is read
        // once, into a local copy.
        let req = unsafe {
            self.shared
                .entry(self.req_cons)
                .cast::<Req>()
                .read_volatile()
        };
        self.req_cons = self.req_cons.wrapping_add(1);
        // Not 0: checked above.
        self.req_avail = self.req_avail.wrapping_sub(1);
        Ok(Some(req))
    }

    /// Consumes up to `max` pending requests in order and queues, for each, the response `f`
    /// makes of it: the loop of a backend that answers every request at once. Returns how many
    /// it answered; the peer sees the responses after
    /// [`push_responses_and_check_notify`](Self::push_responses_and_check_notify).
    ///
    /// The same as [`next_request`](Self::next_request) and
    /// [`push_response`](Self::push_response) in a loop, but the indices stay in registers while
    /// `f` runs. Each request is read once, into the copy `f` gets (validate that, never the
    /// ring). Fails with `EPROTO` for a misbehaving peer, having answered the requests before the
    /// lie.
    #[inline]
    pub fn answer_requests(&mut self, max: u32, mut f: impl FnMut(Req) -> Rsp) -> Result<u32> {
        let mut answered = 0u32;
        while answered < max {
            let mut avail = self.req_avail;
            if avail == 0 {
                avail = self.refresh()?;
                if avail == 0 {
                    break;
                }
            }
            let n = avail.min(max.wrapping_sub(answered));
            let (mut cons, mut prod) = (self.req_cons, self.rsp_prod_pvt);
            let end = cons.wrapping_add(n);
            while cons != end {
                // SAFETY: As in `next_request`: the slot is in the shared area and aligned for
                // `Req`, any bytes are a valid `Req`, and it is read once.
                let req = unsafe { self.shared.entry(cons).cast::<Req>().read_volatile() };
                cons = cons.wrapping_add(1);
                let rsp = f(req);
                // SAFETY: As in `push_response`: the slot is in the shared area and aligned for
                // `Rsp`, and its request (at `prod`, before `cons`) has been consumed.
                unsafe { self.shared.entry(prod).cast::<Rsp>().write_volatile(rsp) };
                prod = prod.wrapping_add(1);
            }
            self.req_cons = cons;
            self.rsp_prod_pvt = prod;
            // `n <= avail`.
            self.req_avail = avail.wrapping_sub(n);
            answered = answered.wrapping_add(n);
        }
        Ok(answered)
    }

    /// Queues a response to a consumed request; the peer sees it after
    /// [`push_responses_and_check_notify`](Self::push_responses_and_check_notify).
    ///
    /// `Rsp: AsBytes` means a response has no padding, so every byte written to the shared page
    /// is a byte of the response (XSA-216). Fails with `EINVAL` if every consumed request has
    /// been answered already.
    pub fn push_response(&mut self, rsp: &Rsp) -> Result<RingIdx> {
        if self.unanswered() == 0 {
            return Err(EINVAL);
        }
        let idx = self.rsp_prod_pvt;
        // SAFETY: The slot is inside the shared area and aligned for `Rsp` (`Shared`'s
        // invariants); its request was consumed, so the slot is ours to write.
        unsafe { self.shared.entry(idx).cast::<Rsp>().write_volatile(*rsp) };
        self.rsp_prod_pvt = idx.wrapping_add(1);
        Ok(idx)
    }

    /// Publishes the queued responses; returns whether the peer must be notified
    /// (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`).
    pub fn push_responses_and_check_notify(&mut self) -> bool {
        self.shared.publish(RSP_PROD, RSP_EVENT, self.rsp_prod_pvt)
    }

    /// After consuming all requests: asks the peer for a notification on the next one and checks
    /// once more (`RING_FINAL_CHECK_FOR_REQUESTS`). Returns whether more are pending.
    pub fn final_check_for_requests(&mut self) -> Result<bool> {
        if self.refresh()? != 0 {
            return Ok(true);
        }
        self.shared
            .write_idx(REQ_EVENT, self.req_cons.wrapping_add(1));
        virt_mb();
        Ok(self.refresh()? != 0)
    }
}

#[cfg(CONFIG_RUST_XEN_KUNIT_TEST)]
#[macros::kunit_tests(rust_xen_ring)]
mod tests {
    use super::*;
    use crate::{page::PAGE_SIZE, xen::SharedPage};

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    #[repr(C)]
    struct Msg {
        id: u32,
        op: u32,
        status: u32,
    }
    // SAFETY: Three `u32`s: no padding bytes to leak.
    unsafe impl AsBytes for Msg {}
    // SAFETY: Three `u32`s: any bit pattern is a valid value.
    unsafe impl FromBytes for Msg {}

    /// Ring geometry as the C macros compute it (`rust/helpers/xen.c`).
    fn c_geometry(proto: u32) -> (usize, usize, usize) {
        let mut g = [0usize; 3];
        // SAFETY: `g` has room for the three values the helper writes.
        unsafe { bindings::xen_ring_geometry(proto, g.as_mut_ptr()) };
        (g[0], g[1], g[2])
    }

    #[test]
    fn layout_matches_c_blkif() {
        let (entries, esz, off) = c_geometry(0);
        type Req = bindings::blkif_request;
        type Rsp = bindings::blkif_response;
        assert_eq!(ring_entries::<Req, Rsp>(PAGE_SIZE) as usize, entries);
        assert_eq!(entry_size::<Req, Rsp>(), esz);
        assert_eq!(HEADER_SIZE, off);
        assert_eq!(entries, 32);
    }

    #[test]
    fn layout_matches_c_netif() {
        let (entries, esz, off) = c_geometry(1);
        type Req = bindings::xen_netif_tx_request;
        type Rsp = bindings::xen_netif_tx_response;
        assert_eq!(ring_entries::<Req, Rsp>(PAGE_SIZE) as usize, entries);
        assert_eq!(entry_size::<Req, Rsp>(), esz);
        assert_eq!(HEADER_SIZE, off);
        let (entries, esz, _) = c_geometry(2);
        type RxReq = bindings::xen_netif_rx_request;
        type RxRsp = bindings::xen_netif_rx_response;
        assert_eq!(ring_entries::<RxReq, RxRsp>(PAGE_SIZE) as usize, entries);
        assert_eq!(entry_size::<RxReq, RxRsp>(), esz);
        // Multi-page rings (blkif's ring-page-order) keep the same rule.
        let (entries, _, _) = c_geometry(3);
        assert_eq!(
            ring_entries::<bindings::blkif_request, bindings::blkif_response>(4 * PAGE_SIZE)
                as usize,
            entries
        );
    }

    #[test]
    fn layout_matches_c_demo() {
        let (entries, esz, off) = c_geometry(4);
        type Req = bindings::demo_request;
        type Rsp = bindings::demo_response;
        assert_eq!(ring_entries::<Req, Rsp>(PAGE_SIZE) as usize, entries);
        assert_eq!(entry_size::<Req, Rsp>(), esz);
        assert_eq!(HEADER_SIZE, off);
        assert_eq!(entries, 256);
    }

    fn pair(page: &SharedPage) -> Result<(FrontRing<Msg, Msg>, BackRing<Msg, Msg>)> {
        let base = page.as_ptr();
        // SAFETY: The page outlives both rings in each test, and only they use it.
        let front = unsafe { FrontRing::new(base, PAGE_SIZE)? };
        // SAFETY: The same page, initialised by `front`; it outlives both rings.
        let back = unsafe { BackRing::init(base, PAGE_SIZE)? };
        Ok((front, back))
    }

    fn msg(id: u32) -> Msg {
        Msg {
            id,
            op: id ^ 0x55,
            status: id,
        }
    }

    #[test]
    fn round_trip_and_wrap_around() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        let (mut front, mut back) = pair(&page)?;
        let n = front.size();
        // Several times round the ring, with batches that straddle the wrap.
        let mut next = 0u32;
        for round in 0..(4 * n) {
            let batch = 1 + round % n;
            for _ in 0..batch {
                front.push_request(&msg(next.wrapping_add(front.outstanding())))?;
            }
            front.push_requests_and_check_notify();
            let mut seen = 0;
            while let Some(req) = back.next_request()? {
                back.push_response(&Msg {
                    status: req.status + 1,
                    ..req
                })?;
                seen += 1;
            }
            assert_eq!(seen, batch);
            back.push_responses_and_check_notify();
            while let Some(rsp) = front.next_response()? {
                assert_eq!(rsp.id, next);
                assert_eq!(rsp.status, next + 1);
                next += 1;
            }
            assert!(!front.final_check_for_responses()?);
            assert!(!back.final_check_for_requests()?);
        }
        // Rounds 0..4n sent 1 + round % n requests each: four times 1 + 2 + ... + n.
        assert_eq!(next, 4 * n * (n + 1) / 2);
        Ok(())
    }

    // `consume_responses` takes what `next_response` would, in order, across the wrap of the
    // ring; it stops where its callback says, and sets the event index as the final check does.
    #[test]
    fn consume_responses_in_batches() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        let (mut front, mut back) = pair(&page)?;
        let n = front.size();
        let mut next = 0u32;
        for round in 0..(3 * n) {
            let batch = 1 + (round * 7) % n;
            for i in 0..batch {
                front.push_request(&msg(next.wrapping_add(i)))?;
            }
            front.push_requests_and_check_notify();
            while let Some(req) = back.next_request()? {
                back.push_response(&Msg {
                    status: req.status + 1,
                    ..req
                })?;
            }
            back.push_responses_and_check_notify();
            // Every third round, stop after the first response, then take the rest.
            let stop_early = round % 3 == 0 && batch > 1;
            let mut seen = 0u32;
            let mut check = |rsp: Msg| {
                let good = rsp.id == next.wrapping_add(seen) && rsp.status == rsp.id + 1;
                seen += 1;
                good && !(stop_early && seen == 1)
            };
            let taken = front.consume_responses(&mut check)?;
            if stop_early {
                assert_eq!(taken, 1);
                assert_eq!(front.consume_responses(&mut check)?, batch - 1);
            } else {
                assert_eq!(taken, batch);
            }
            assert_eq!(seen, batch);
            next = next.wrapping_add(batch);
            assert_eq!(front.outstanding(), 0);
            // Nothing left, and the backend is asked to notify the next response.
            assert_eq!(front.consume_responses(|_| false)?, 0);
            assert_eq!(page_read_idx(&front, RSP_EVENT), next.wrapping_add(1));
        }
        // A backend that answers more than was asked is caught before anything is consumed.
        front.push_request(&msg(next))?;
        front.push_requests_and_check_notify();
        page_write_idx(&front, RSP_PROD, next.wrapping_add(2));
        assert_eq!(front.consume_responses(|_| true), Err(EPROTO));
        Ok(())
    }

    // `answer_requests` answers what `next_request` and `push_response` would, in order, never
    // more than asked for, across the wrap; a frontend claiming more than the ring holds is caught.
    #[test]
    fn answer_requests_in_batches() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        let (mut front, mut back) = pair(&page)?;
        let n = front.size();
        let mut next = 0u32;
        for round in 0..(3 * n) {
            let batch = 1 + (round * 5) % n;
            for i in 0..batch {
                front.push_request(&msg(next.wrapping_add(i)))?;
            }
            front.push_requests_and_check_notify();
            // A budget below the batch every other round: the rest in a second call.
            let max = if round % 2 == 0 { batch.div_ceil(2) } else { n };
            let mut seen = 0u32;
            let mut answer = |req: Msg| {
                assert_eq!(req.id, next.wrapping_add(seen));
                seen += 1;
                Msg {
                    status: req.status + 1,
                    ..req
                }
            };
            let first = back.answer_requests(max, &mut answer)?;
            assert_eq!(first, batch.min(max));
            assert_eq!(back.answer_requests(n, &mut answer)?, batch - first);
            assert_eq!(back.answer_requests(n, &mut answer)?, 0);
            assert_eq!(seen, batch);
            back.push_responses_and_check_notify();
            for i in 0..batch {
                let rsp = front.next_response()?.ok_or(EIO)?;
                assert_eq!((rsp.id, rsp.status), (next + i, next + i + 1));
            }
            next = next.wrapping_add(batch);
            assert!(!back.final_check_for_requests()?);
        }
        // A frontend that claims more requests than the ring holds.
        page_write_idx(&front, REQ_PROD, next.wrapping_add(n + 1));
        assert_eq!(back.answer_requests(1, |r| r), Err(EPROTO));
        Ok(())
    }

    #[test]
    fn indices_wrap_at_u32_max() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        let (mut front, mut back) = pair(&page)?;
        // Start both ends just below the wrap of the free-running indices.
        let start = u32::MAX - 3;
        front.req_prod_pvt = start;
        front.rsp_cons = start;
        back.req_cons = start;
        back.rsp_prod_pvt = start;
        page_write_idx(&front, REQ_PROD, start);
        page_write_idx(&front, RSP_PROD, start);
        for i in 0..8 {
            front.push_request(&msg(i))?;
        }
        front.push_requests_and_check_notify();
        for i in 0..8 {
            let req = back.next_request()?.ok_or(EIO)?;
            assert_eq!(req.id, i);
            back.push_response(&req)?;
        }
        back.push_responses_and_check_notify();
        for i in 0..8 {
            assert_eq!(front.next_response()?.ok_or(EIO)?.id, i);
        }
        assert_eq!(front.outstanding(), 0);
        Ok(())
    }

    #[test]
    fn attach_carries_on_from_the_last_response() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        // A first backend answers 300 requests (more than the ring holds), then goes away.
        let mut front = {
            let (mut front, mut back) = pair(&page)?;
            for i in 0..300 {
                front.push_request(&msg(i))?;
                front.push_requests_and_check_notify();
                let req = back.next_request()?.ok_or(EIO)?;
                back.push_response(&req)?;
                back.push_responses_and_check_notify();
                assert_eq!(front.next_response()?.ok_or(EIO)?.id, i);
            }
            front
        };
        // `init` on the same ring would take the 300 requests for new ones, more than the ring
        // holds: the frontend would look like a liar.
        {
            // SAFETY: The page outlives the ring; no other backend end uses it now.
            let mut fresh = unsafe { BackRing::<Msg, Msg>::init(page.as_ptr(), PAGE_SIZE)? };
            assert_eq!(fresh.next_request(), Err(EPROTO));
        }
        // `attach` starts at the shared `rsp_prod`: nothing is pending, and the next request is
        // the one after.
        // SAFETY: As above.
        let mut again = unsafe { BackRing::<Msg, Msg>::attach(page.as_ptr(), PAGE_SIZE)? };
        assert_eq!(again.unconsumed_requests()?, 0);
        front.push_request(&msg(300))?;
        front.push_requests_and_check_notify();
        let req = again.next_request()?.ok_or(EIO)?;
        assert_eq!(req.id, 300);
        again.push_response(&req)?;
        again.push_responses_and_check_notify();
        assert_eq!(front.next_response()?.ok_or(EIO)?.id, 300);
        assert_eq!(front.outstanding(), 0);
        Ok(())
    }

    fn page_write_idx(front: &FrontRing<Msg, Msg>, off: usize, val: u32) {
        front.shared.write_idx(off, val);
    }

    fn page_read_idx(front: &FrontRing<Msg, Msg>, off: usize) -> u32 {
        front.shared.read_idx(off)
    }

    #[test]
    fn full_ring_is_an_error() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        let (mut front, _back) = pair(&page)?;
        for i in 0..front.size() {
            front.push_request(&msg(i))?;
        }
        assert!(front.is_full());
        assert_eq!(front.push_request(&msg(0)), Err(EBUSY));
        Ok(())
    }

    #[test]
    fn lying_frontend_is_detected() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        let (front, mut back) = pair(&page)?;
        // A frontend claiming more requests than the ring holds.
        page_write_idx(&front, REQ_PROD, back.size() + 1);
        assert_eq!(back.next_request(), Err(EPROTO));
        assert_eq!(back.final_check_for_requests(), Err(EPROTO));
        // A full ring is fine, and never yields more than its size.
        page_write_idx(&front, REQ_PROD, back.size());
        let mut n = 0;
        while back.next_request()?.is_some() {
            n += 1;
        }
        assert_eq!(n, back.size());
        Ok(())
    }

    #[test]
    fn lying_backend_is_detected() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        let (mut front, _back) = pair(&page)?;
        front.push_request(&msg(1))?;
        front.push_requests_and_check_notify();
        // Two responses for one request.
        page_write_idx(&front, RSP_PROD, 2);
        assert_eq!(front.next_response(), Err(EPROTO));
        // A response with no request is rejected on the backend side (a ring of its own: a
        // second front ring over the first page would break `FrontRing::new`'s contract).
        let other = SharedPage::alloc(GFP_KERNEL)?;
        let (_f, mut back) = pair(&other)?;
        assert_eq!(back.push_response(&msg(0)), Err(EINVAL));
        Ok(())
    }

    #[test]
    fn notify_follows_event_index() -> Result {
        let page = SharedPage::alloc(GFP_KERNEL)?;
        let (mut front, mut back) = pair(&page)?;
        // req_event starts at 1: the first request notifies.
        front.push_request(&msg(0))?;
        assert!(front.push_requests_and_check_notify());
        // The backend has not re-armed: no notification for the second.
        front.push_request(&msg(1))?;
        assert!(!front.push_requests_and_check_notify());
        while back.next_request()?.is_some() {}
        assert!(!back.final_check_for_requests()?);
        // Re-armed: the next request notifies again.
        front.push_request(&msg(2))?;
        assert!(front.push_requests_and_check_notify());
        Ok(())
    }
}
