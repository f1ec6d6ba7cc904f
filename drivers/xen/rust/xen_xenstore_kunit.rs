// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of `kernel::xen::xenstore` against a live xenstore.
//!
//! A module rather than boot-time tests: in dom0, xenstore is the xenstored daemon, which only
//! runs once user space has started it. The suite runs when the module is loaded.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    str::CStr,
    sync::{CondVar, Mutex},
    time::msecs_to_jiffies,
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

/// Counts watch events and lets the test wait for one, with a bound.
#[pin_data]
struct Events {
    #[pin]
    count: Mutex<u32>,
    #[pin]
    cv: CondVar,
}

impl WatchHandler for Events {
    fn changed(&self, _path: &CStr) {
        *self.count.lock() += 1;
        self.cv.notify_all();
    }
}

impl Events {
    /// Waits until more than `seen` events arrived, for at most 5 s; returns the new count.
    fn wait_past(&self, seen: u32) -> u32 {
        let mut n = self.count.lock();
        let mut tries = 0;
        while *n <= seen && tries < 50 {
            let _ = self
                .cv
                .wait_interruptible_timeout(&mut n, msecs_to_jiffies(100));
            tries += 1;
        }
        *n
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
        for bad in [c"", c"12x", c"-1", c" 7", c"7\n", c"99999999999", c"0x10"] {
            Xenstore::write(DIR, c"bad", bad)?;
            assert_eq!(Xenstore::read_parsed::<u32>(DIR, c"bad"), Err(EINVAL));
        }
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
        let w = KBox::pin_init(
            Watch::new(
                DIR,
                4,
                try_pin_init!(Events {
                    count <- new_mutex!(0),
                    cv <- new_condvar!(),
                }? Error),
            ),
            GFP_KERNEL,
        )?;
        // The initial event fires on registration; a write fires it again.
        let first = w.handler().wait_past(0);
        assert!(first >= 1);
        Xenstore::write(DIR, c"trigger", c"1")?;
        assert!(w.handler().wait_past(first) > first);
        assert!(w.delivered() >= 2);
        drop(w);
        Xenstore::remove(DIR, c"")?;
        Ok(())
    }
}
