// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the ABIs' arithmetic: the 2-level scan against a model of what it must do, and
//! the FIFO queue walk on a fake control block and event array that a fake Xen links ports into.
//!
//! They run the same generic code the upcall runs ([`two_level::scan`], [`fifo::consume`]), with
//! the bitmaps and queues in ordinary memory instead of `shared_info` and the pages given to Xen.

use super::{
    fifo,
    two_level, //
};
use core::{
    cell::{
        Cell,
        RefCell, //
    },
    sync::atomic::{
        AtomicU32,
        Ordering, //
    },
};
use kernel::{
    alloc::flags::GFP_KERNEL,
    prelude::*, //
};

/// A small deterministic generator (xorshift64), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// The 2-level bitmaps of a fake CPU: `active` is pending & !masked & bound, one word per word.
struct Levels2 {
    active: [Cell<u64>; two_level::WORDS as usize],
    selector: Cell<u64>,
    pos: Cell<(u32, u32)>,
    handled: RefCell<KVec<u32>>,
    /// A port that fires again every time it is handled, as Xen would set it (and its selector
    /// bit) again.
    storm: Option<u32>,
}

impl Levels2 {
    fn new(storm: Option<u32>) -> Result<Self> {
        Ok(Self {
            active: core::array::from_fn(|_| Cell::new(0)),
            selector: Cell::new(0),
            pos: Cell::new((0, 0)),
            handled: RefCell::new(KVec::with_capacity(
                2 * two_level::NR_CHANNELS as usize,
                GFP_KERNEL,
            )?),
            storm,
        })
    }

    /// Xen raises `port`: pending, and its word selected.
    fn raise(&self, port: u32) {
        let (w, b) = (port / 64, port % 64);
        if let Some(a) = self.active.get(w as usize) {
            a.set(a.get() | 1 << b);
            self.selector.set(self.selector.get() | 1 << w);
        }
    }

    fn is_active(&self, port: u32) -> bool {
        self.active
            .get((port / 64) as usize)
            .is_some_and(|a| a.get() & 1 << (port % 64) != 0)
    }
}

impl two_level::Levels for Levels2 {
    fn take_selector(&self) -> u64 {
        self.selector.replace(0)
    }
    fn active(&self, w: u32) -> u64 {
        self.active.get(w as usize).map_or(0, Cell::get)
    }
    fn start(&self) -> (u32, u32) {
        self.pos.get()
    }
    fn save(&self, word: u32, bit: u32) {
        self.pos.set((word, bit));
    }
    fn handle(&self, port: u32) {
        // The core's ack clears the pending bit.
        if let Some(a) = self.active.get((port / 64) as usize) {
            a.set(a.get() & !(1 << (port % 64)));
        }
        // Capacity is reserved for twice every port; a scan that handles more fails below.
        let _ = self.handled.borrow_mut().push_within_capacity(port);
        if self.storm == Some(port) {
            self.raise(port);
        }
    }
}

/// What the scan must do, written the obvious way: every active port of a selected word, once, in
/// port order from the saved position, wrapping around.
fn model(l: &Levels2) -> Result<KVec<u32>> {
    let n = two_level::NR_CHANNELS;
    let (w, b) = l.pos.get();
    let start = w * 64 + b;
    let sel = l.selector.get();
    let mut out = KVec::new();
    for i in 0..n {
        let port = (start + i) % n;
        if sel & 1 << (port / 64) != 0 && l.is_active(port) {
            out.push(port, GFP_KERNEL)?;
        }
    }
    Ok(out)
}

/// The position after `port`, as the scan saves it.
fn after(port: u32) -> (u32, u32) {
    let next = (port + 1) % two_level::NR_CHANNELS;
    (next / 64, next % 64)
}

/// A fake Xen and guest for the FIFO ABI: a control block, an event array of `words.len()`
/// ports and the CPU's queue heads. `link` does what Xen does when it raises an event.
struct Fifo {
    ready: AtomicU32,
    heads: [AtomicU32; fifo::QUEUES as usize],
    tails: [Cell<u32>; fifo::QUEUES as usize],
    local: [Cell<u32>; fifo::QUEUES as usize],
    words: KVec<AtomicU32>,
    handled: RefCell<KVec<u32>>,
    /// While handling the first port, Xen links the second into the queue of the third.
    on_handle: Cell<Option<(u32, u32, u32)>>,
    /// How many of Xen's words the walk ignored.
    ignored: Cell<u32>,
}

impl Fifo {
    fn new(ports: usize) -> Result<Self> {
        let mut words = KVec::with_capacity(ports, GFP_KERNEL)?;
        for _ in 0..ports {
            words.push(AtomicU32::new(fifo::MASKED), GFP_KERNEL)?;
        }
        Ok(Self {
            ready: AtomicU32::new(0),
            heads: core::array::from_fn(|_| AtomicU32::new(0)),
            tails: core::array::from_fn(|_| Cell::new(0)),
            local: core::array::from_fn(|_| Cell::new(0)),
            words,
            handled: RefCell::new(KVec::with_capacity(4 * ports, GFP_KERNEL)?),
            on_handle: Cell::new(None),
            ignored: Cell::new(0),
        })
    }

    fn word_bits(&self, port: u32) -> u32 {
        self.words
            .get(port as usize)
            .map_or(0, |w| w.load(Ordering::Relaxed))
    }

    fn unmask(&self, port: u32) {
        if let Some(w) = self.words.get(port as usize) {
            w.fetch_and(!fifo::MASKED, Ordering::Relaxed);
        }
    }

    /// Xen raises `port` on queue `q`: PENDING, then (unless masked or already linked) linked at
    /// the tail, or as the head if the tail is no longer linked, and the queue made ready.
    fn link(&self, q: u32, port: u32) {
        let (Some(w), Some(tail), Some(head)) = (
            self.words.get(port as usize),
            self.tails.get(q as usize),
            self.heads.get(q as usize),
        ) else {
            return;
        };
        let old = w.fetch_or(fifo::PENDING, Ordering::Relaxed);
        if old & (fifo::MASKED | fifo::LINKED) != 0 {
            return;
        }
        w.fetch_or(fifo::LINKED, Ordering::Relaxed);
        let t = tail.get();
        match self.words.get(t as usize) {
            Some(tw) if t != 0 && tw.load(Ordering::Relaxed) & fifo::LINKED != 0 => {
                tw.fetch_or(port, Ordering::Relaxed);
            }
            _ => head.store(port, Ordering::Relaxed),
        }
        tail.set(port);
        self.ready.fetch_or(1 << q, Ordering::Relaxed);
    }

    fn handled(&self) -> KVec<u32> {
        let mut out = KVec::new();
        for p in self.handled.borrow().iter() {
            if out.push(*p, GFP_KERNEL).is_err() {
                break;
            }
        }
        out
    }
}

impl fifo::Queues for Fifo {
    fn take_ready(&self) -> u32 {
        self.ready.swap(0, Ordering::SeqCst)
    }
    fn xen_head(&self, q: u32) -> u32 {
        self.heads
            .get(q as usize)
            .map_or(0, |h| h.load(Ordering::Relaxed))
    }
    fn local_head(&self, q: u32) -> u32 {
        self.local.get(q as usize).map_or(0, Cell::get)
    }
    fn set_local_head(&self, q: u32, head: u32) {
        if let Some(h) = self.local.get(q as usize) {
            h.set(head);
        }
    }
    fn word(&self, port: u32) -> Option<&AtomicU32> {
        self.words.get(port as usize)
    }
    fn ignored(&self, _what: &str, _value: u32) {
        self.ignored.set(self.ignored.get() + 1);
    }
    fn handle(&self, port: u32) {
        // The core's ack clears PENDING.
        if let Some(w) = self.words.get(port as usize) {
            w.fetch_and(!fifo::PENDING, Ordering::Relaxed);
        }
        let _ = self.handled.borrow_mut().push_within_capacity(port);
        if let Some((first, second, q)) = self.on_handle.get() {
            if first == port {
                self.on_handle.set(None);
                self.link(q, second);
            }
        }
    }
}

#[kunit_tests(rust_xen_evtchn_abi)]
mod cases {
    use super::*;
    use two_level::scan;

    /// Fills the bitmaps at random: each word none, sparse, dense or full; random selector bits,
    /// some of them over empty words and some words active without their selector bit.
    fn fill(l: &Levels2, rng: &mut Rng) {
        for a in l.active.iter() {
            a.set(match rng.below(4) {
                0 => 0,
                1 => rng.next() & rng.next() & rng.next(),
                2 => rng.next() | rng.next(),
                _ => u64::MAX,
            });
        }
        l.selector.set(rng.next() | rng.next());
        l.pos.set((rng.below(64), rng.below(64)));
    }

    #[test]
    fn two_level_scan_matches_the_model() -> Result {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..500 {
            let l = Levels2::new(None)?;
            fill(&l, &mut rng);
            let want = model(&l)?;
            let pos = l.pos.get();
            let sel = l.selector.get();
            scan(&l);
            let got = l.handled.borrow();
            assert_eq!(&got[..], &want[..]);
            // The next scan starts after the last port handled (or where this one started).
            assert_eq!(l.pos.get(), want.last().map_or(pos, |p| after(*p)));
            // Ports of unselected words stay pending for the next scan, the others are done.
            for (w, a) in l.active.iter().enumerate() {
                if sel & 1 << w != 0 {
                    assert_eq!(a.get(), 0);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn two_level_scan_of_every_port_wraps_from_the_last_one() -> Result {
        let l = Levels2::new(None)?;
        for p in 0..two_level::NR_CHANNELS {
            l.raise(p);
        }
        l.pos.set((63, 63));
        scan(&l);
        let got = l.handled.borrow();
        assert_eq!(got.len(), two_level::NR_CHANNELS as usize);
        // 4095 first, then 0, 1, ... 4094.
        for (i, p) in got.iter().enumerate() {
            assert_eq!(
                *p as usize,
                (i + two_level::NR_CHANNELS as usize - 1) % 4096
            );
        }
        assert_eq!(l.pos.get(), (63, 63));
        Ok(())
    }

    #[test]
    fn two_level_storming_port_does_not_starve_the_others() -> Result {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for storm in [0, 1, 63, 64, 1000, 2047, 4095] {
            let l = Levels2::new(Some(storm))?;
            l.raise(storm);
            // 64 upcalls, each with one other port newly raised: each is handled in its upcall,
            // and the storm port at most twice per upcall (its word may be the start word).
            for _ in 0..64 {
                let mut other = rng.below(two_level::NR_CHANNELS);
                if other == storm {
                    other = (other + 1) % two_level::NR_CHANNELS;
                }
                l.raise(other);
                l.handled.borrow_mut().clear();
                scan(&l);
                let got = l.handled.borrow();
                assert_eq!(got.iter().filter(|p| **p == other).count(), 1);
                assert!(got.iter().filter(|p| **p == storm).count() <= 2);
                assert!(!l.is_active(other));
            }
        }
        Ok(())
    }

    #[test]
    fn fifo_walks_the_queues_by_priority_and_in_order() -> Result {
        let f = Fifo::new(64)?;
        for p in [3, 5, 6, 7, 9, 10] {
            f.unmask(p);
        }
        for (q, p) in [(7, 5), (7, 6), (0, 9), (15, 3), (7, 7), (0, 10)] {
            f.link(q, p);
        }
        fifo::consume(&f);
        assert_eq!(&f.handled()[..], &[9, 10, 5, 6, 7, 3]);
        for p in 0..64 {
            assert_eq!(f.word_bits(p) & (fifo::LINKED | fifo::LINK_MASK), 0);
        }
        assert_eq!(f.ready.load(Ordering::Relaxed), 0);
        assert!(f.local.iter().all(|h| h.get() == 0));
        Ok(())
    }

    #[test]
    fn fifo_unlinks_but_skips_masked_and_handled_ports() -> Result {
        let f = Fifo::new(64)?;
        for p in [4, 5, 6] {
            f.unmask(p);
        }
        for p in [4, 5, 6] {
            f.link(7, p);
        }
        // The core masks 5 and handles 6 (clearing PENDING) before the upcall walks the queue.
        if let Some(w) = f.words.get(5) {
            w.fetch_or(fifo::MASKED, Ordering::Relaxed);
        }
        if let Some(w) = f.words.get(6) {
            w.fetch_and(!fifo::PENDING, Ordering::Relaxed);
        }
        fifo::consume(&f);
        assert_eq!(&f.handled()[..], &[4]);
        for p in [4, 5, 6] {
            assert_eq!(f.word_bits(p) & fifo::LINKED, 0);
        }
        // 5 stays pending (and masked) for its unmask.
        assert_eq!(f.word_bits(5) & fifo::PENDING, fifo::PENDING);
        Ok(())
    }

    #[test]
    fn fifo_takes_ports_linked_while_it_walks() -> Result {
        // Xen links 8 into the same queue while 5, its last port, is handled: the queue was empty,
        // so 8 becomes the head and the queue ready again.
        let f = Fifo::new(64)?;
        for p in [5, 6, 7, 8, 20] {
            f.unmask(p);
        }
        f.link(7, 5);
        f.on_handle.set(Some((5, 8, 7)));
        fifo::consume(&f);
        assert_eq!(&f.handled()[..], &[5, 8]);

        // A port raised at a higher priority while a lower queue is walked goes first.
        let f = Fifo::new(64)?;
        for p in [5, 6, 7, 20] {
            f.unmask(p);
        }
        for p in [5, 6, 7] {
            f.link(7, p);
        }
        f.on_handle.set(Some((5, 20, 0)));
        fifo::consume(&f);
        assert_eq!(&f.handled()[..], &[5, 20, 6, 7]);
        Ok(())
    }

    #[test]
    fn fifo_survives_a_lying_control_block() -> Result {
        let f = Fifo::new(64)?;
        f.unmask(5);
        // A head outside the event array ends the queue without a read outside it.
        f.heads[3].store(100_000, Ordering::Relaxed);
        f.ready.store(1 << 3, Ordering::Relaxed);
        fifo::consume(&f);
        assert!(f.handled().is_empty());
        assert_eq!(f.local[3].get(), 0);
        assert_eq!(f.ignored.get(), 1);
        // Ready bits for queues that do not exist are dropped.
        f.ready.store(1 << 20 | 1 << 31, Ordering::Relaxed);
        fifo::consume(&f);
        assert!(f.handled().is_empty());
        assert_eq!(f.ignored.get(), 2);
        // A port linked to itself is handled once: unlinking it ends the loop.
        if let Some(w) = f.words.get(5) {
            w.store(fifo::PENDING | fifo::LINKED | 5, Ordering::Relaxed);
        }
        f.heads[7].store(5, Ordering::Relaxed);
        f.ready.store(1 << 7, Ordering::Relaxed);
        fifo::consume(&f);
        assert_eq!(&f.handled()[..], &[5]);
        // Two ports linked to each other: each once more at most, then the links are gone.
        f.handled.borrow_mut().clear();
        for (p, next) in [(5, 6), (6, 5)] {
            f.unmask(p);
            if let Some(w) = f.words.get(p as usize) {
                w.store(fifo::PENDING | fifo::LINKED | next, Ordering::Relaxed);
            }
        }
        f.local[7].set(0);
        f.heads[7].store(5, Ordering::Relaxed);
        f.ready.store(1 << 7, Ordering::Relaxed);
        fifo::consume(&f);
        assert_eq!(&f.handled()[..], &[5, 6]);
        Ok(())
    }

    #[test]
    fn fifo_unmask_leaves_a_pending_port_to_xen() -> Result {
        let w = AtomicU32::new(fifo::MASKED);
        assert!(fifo::clear_masked_cond(&w));
        assert_eq!(w.load(Ordering::Relaxed), 0);
        // Pending: the guest must not unmask it itself (Xen must link it): left masked.
        let w = AtomicU32::new(fifo::MASKED | fifo::PENDING);
        assert!(!fifo::clear_masked_cond(&w));
        assert_eq!(w.load(Ordering::Relaxed), fifo::MASKED | fifo::PENDING);
        // Not masked: nothing to do; the link bits are kept.
        let w = AtomicU32::new(fifo::LINKED | 9);
        assert!(fifo::clear_masked_cond(&w));
        assert_eq!(w.load(Ordering::Relaxed), fifo::LINKED | 9);
        // `clear_linked` returns the link and keeps PENDING and MASKED.
        let w = AtomicU32::new(fifo::PENDING | fifo::MASKED | fifo::LINKED | 77);
        assert_eq!(fifo::clear_linked(&w), 77);
        assert_eq!(w.load(Ordering::Relaxed), fifo::PENDING | fifo::MASKED);
        Ok(())
    }
}
