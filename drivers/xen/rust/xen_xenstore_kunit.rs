// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of `kernel::xen::xenstore` against a live xenstore.
//!
//! A module rather than boot-time tests: in dom0, xenstore is the xenstored daemon, which only
//! runs once user space has started it. The suite runs when the module is loaded.

use kernel::{
    new_mutex,
    prelude::*,
    str::CStr,
    sync::{Arc, Mutex},
    time::{delay::fsleep, Delta},
    xen::xenstore::{self, Transaction, Watch, WatchHandler, Xenstore},
};

module! {
    type: XenstoreKunit,
    name: "xen_xenstore_kunit",
    authors: ["Rust for Xen contributors"],
    description: "KUnit tests of the Rust xenstore abstractions",
    license: "GPL",
}

struct XenstoreKunit;

impl kernel::Module for XenstoreKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(XenstoreKunit)
    }
}

/// Polls `cond` every 10 ms for at most `ms` milliseconds; returns whether it came true.
fn wait_ms(ms: u32, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..ms / 10 {
        if cond() {
            return true;
        }
        fsleep(Delta::from_millis(10));
    }
    cond()
}

/// [`wait_ms`] for 5 s.
fn wait_for(cond: impl FnMut() -> bool) -> bool {
    wait_ms(5000, cond)
}

struct EventsState {
    count: u32,
    /// While false, the handler holds the xenwatch thread (for at most 15 s).
    open: bool,
}

/// Counts watch events; outlives the watch, so that a test can look after the watch is gone.
#[pin_data]
struct Events {
    #[pin]
    state: Mutex<EventsState>,
}

impl Events {
    fn new(open: bool) -> impl PinInit<Self, Error> {
        try_pin_init!(Events {
            state <- new_mutex!(EventsState { count: 0, open }),
        }? Error)
    }

    fn count(&self) -> u32 {
        self.state.lock().count
    }

    fn open(&self) {
        self.state.lock().open = true;
    }
}

/// The handler: counts into shared `Events`.
#[pin_data]
struct Counter {
    events: Arc<Events>,
}

impl Counter {
    fn new(events: &Arc<Events>) -> impl PinInit<Self, Error> {
        let events = events.clone();
        try_pin_init!(Counter { events }? Error)
    }
}

impl WatchHandler for Counter {
    fn changed(&self, _path: &CStr) {
        self.events.state.lock().count += 1;
        // Bounded, so that a failing test cannot hold xenwatch for good.
        wait_ms(15000, || self.events.state.lock().open);
    }
}

#[kunit_tests(rust_xen_xenstore)]
mod tests {
    use super::*;

    const DIR: &CStr = c"data/rust-xenstore-kunit";

    #[test]
    fn xenstore_is_ready() {
        assert!(xenstore::is_ready());
    }

    #[test]
    fn write_read_parse_remove() -> Result {
        Xenstore::write(DIR, c"text", c"hello")?;
        Xenstore::write_fmt(DIR, c"num", fmt!("{}", 4242))?;
        assert_eq!(Xenstore::read(DIR, c"text")?.as_bytes(), b"hello");
        assert_eq!(Xenstore::read_parsed::<u32>(DIR, c"num")?, 4242);
        assert!(Xenstore::exists(DIR, c"num"));
        let d = Xenstore::directory(DIR, c"")?;
        assert!(d.contains(c"text") && d.contains(c"num"));
        assert_eq!(d.len(), 2);
        Xenstore::remove(DIR, c"")?;
        assert!(!Xenstore::exists(DIR, c"num"));
        assert_eq!(Xenstore::read(DIR, c"num").err(), Some(ENOENT));
        Ok(())
    }

    #[test]
    fn garbage_does_not_parse() -> Result {
        for bad in [
            c"", c"12x", c"-1", c" 7", c"7 ", c"7\n", c"+12", c"012", c"00", c"0x10", c"1e3",
        ] {
            Xenstore::write(DIR, c"bad", bad)?;
            assert_eq!(Xenstore::read_parsed::<u32>(DIR, c"bad"), Err(EINVAL));
        }
        Xenstore::write(DIR, c"bad", c"4294967296")?;
        assert_eq!(Xenstore::read_parsed::<u32>(DIR, c"bad"), Err(ERANGE));
        Xenstore::write(DIR, c"bad", c"0")?;
        assert_eq!(Xenstore::read_parsed::<u32>(DIR, c"bad"), Ok(0));
        Xenstore::write(DIR, c"bad", c"4294967295")?;
        assert_eq!(Xenstore::read_parsed::<u32>(DIR, c"bad"), Ok(u32::MAX));
        Xenstore::remove(DIR, c"")?;
        Ok(())
    }

    #[test]
    fn transaction_retries_on_conflict() -> Result {
        Xenstore::write(DIR, c"counter", c"0")?;
        let mut attempts = 0;
        xenstore::transaction(|t| {
            attempts += 1;
            let v: u32 = t.read_parsed(DIR, c"counter")?;
            if attempts == 1 {
                // Another writer changes the node under the transaction: the commit fails with
                // EAGAIN and the body runs again.
                Xenstore::write(DIR, c"counter", c"100")?;
            }
            t.write_fmt(DIR, c"counter", fmt!("{}", v + 1))
        })?;
        assert_eq!(attempts, 2);
        assert_eq!(Xenstore::read_parsed::<u32>(DIR, c"counter")?, 101);
        // A transaction dropped without commit leaves nothing behind.
        {
            let t = Transaction::start()?;
            t.write(DIR, c"aborted", c"1")?;
        }
        assert!(!Xenstore::exists(DIR, c"aborted"));
        Xenstore::remove(DIR, c"")?;
        Ok(())
    }

    #[test]
    fn watch_fires_and_stops_on_drop() -> Result {
        Xenstore::write(DIR, c"trigger", c"0")?;
        let events = Arc::pin_init(Events::new(true), GFP_KERNEL)?;
        let w = KBox::pin_init(Watch::new(DIR, 4, Counter::new(&events)), GFP_KERNEL)?;
        // The initial event fires on registration; a write fires it again.
        assert!(wait_for(|| events.count() == 1));
        Xenstore::write(DIR, c"trigger", c"1")?;
        assert!(wait_for(|| events.count() == 2));
        assert_eq!(w.delivered(), 2);
        drop(w);
        // A second watch on the same node sees the next write; the dropped one must not. Both
        // are served in order by the one xenwatch thread, so once the second has its events,
        // the first would have had its own.
        let witness = Arc::pin_init(Events::new(true), GFP_KERNEL)?;
        let w2 = KBox::pin_init(Watch::new(DIR, 4, Counter::new(&witness)), GFP_KERNEL)?;
        assert!(wait_for(|| witness.count() == 1));
        Xenstore::write(DIR, c"trigger", c"2")?;
        assert!(wait_for(|| witness.count() == 2));
        assert_eq!(events.count(), 2);
        drop(w2);
        Xenstore::remove(DIR, c"")?;
        Ok(())
    }

    #[test]
    fn watch_flood_is_bounded() -> Result {
        // XSA-349: a peer writing watched nodes faster than the handler drains them must not
        // make this domain queue events without bound.
        const WRITES: u32 = 20;
        const MAX_PENDING: u32 = 2;
        Xenstore::write(DIR, c"flood", c"0")?;
        let events = Arc::pin_init(Events::new(false), GFP_KERNEL)?;
        let w = KBox::pin_init(
            Watch::new(DIR, MAX_PENDING, Counter::new(&events)),
            GFP_KERNEL,
        )?;
        // The handler is now held in the initial event.
        assert!(wait_for(|| events.count() == 1));
        for i in 1..=WRITES {
            Xenstore::write_fmt(DIR, c"flood", fmt!("{i}"))?;
        }
        // Every write makes one event: MAX_PENDING of them wait, the others are dropped.
        assert!(wait_for(|| w.dropped() == WRITES - MAX_PENDING));
        events.open();
        assert!(wait_for(|| events.count() == 1 + MAX_PENDING));
        // Nothing else was queued: the next event is that of a new write.
        Xenstore::write(DIR, c"flood", c"last")?;
        assert!(wait_for(|| events.count() == 2 + MAX_PENDING));
        assert_eq!(w.delivered(), 2 + MAX_PENDING);
        assert_eq!(w.dropped(), WRITES - MAX_PENDING);
        drop(w);
        Xenstore::remove(DIR, c"")?;
        Ok(())
    }
}
