// SPDX-License-Identifier: GPL-2.0

//! Rust Xen sample: the frontend (domU) end of the `demo` device.
//!
//! When the backend waits (InitWait), the frontend grants a one-page ring to the backend's domain,
//! allocates an event channel and publishes both in one xenstore transaction, then waits for the
//! backend to connect. Requests
//! are sent from debugfs (`/sys/kernel/debug/xen-demo.<device>/send`); every response is checked
//! against the request it claims to answer. When the backend goes away the frontend closes, and
//! when it comes back the frontend sets up a fresh ring and reconnects.
//!
//! A backend that answers with an id that is not outstanding, the wrong operation or status, or
//! more responses than there were requests, breaks the ring: the frontend counts and logs it,
//! reads nothing more from it and fails every `send` with `EIO` until the next connection, as
//! blkfront and netfront do since XSA-391. The event channel is bound with late EOI and an event
//! that brought no response is reported spurious, so that a backend flooding notifications is
//! throttled by the event core.
//!
//! `flood` (debugfs) is a hostile-peer aid for tests, the other way round: it notifies the
//! backend for a given time without pushing any request, as a guest attacking its backend would,
//! so that a test can check that the backend's domain throttles it (XSA-332): a backend that finds
//! no request reports the event spurious and the event core delays its EOI.
//!
//! The protocol is `include/xen/interface/io/demo.h`; the debugfs interface and the state machine
//! are described in `Documentation/rust/xen-demo.rst`. `samples/xen/xen_demo_front.c` is the same
//! driver in C.

use kernel::{
    debugfs::{Scope, ScopedDir},
    device::{Bound, Core},
    fmt, new_condvar, new_mutex, new_spinlock_irq,
    prelude::*,
    str::CString,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, CondVarTimeoutResult, Mutex, SpinLockIrq,
    },
    time::{delay::fsleep, msecs_to_jiffies, Delta, Instant, Monotonic},
    uaccess::UserSliceReader,
    xen::{
        events::{LateEoi, LateEoiHandler, LateEoiRegistration, Notifier, Port},
        grant_table::GrantRef,
        xenbus::{self, Device, DeviceId, SharedFrontRing, State},
        xenstore,
    },
};

// The backend's value checks use the rest of the protocol definitions.
#[expect(dead_code)]
#[path = "rust_xen_demo_proto.rs"]
mod proto;
use proto::{Request, Response};

kernel::xenbus_device_table!(DEMO_IDS, [xenbus::DeviceId::new(c"demo")]);

/// Slots of the one-page ring (and of the table of outstanding requests).
const SLOTS: usize = 256;
/// Requests a single `send` may ask for.
const MAX_REQUESTS: u32 = 1_000_000;
/// Outstanding requests a single `send` may ask for; above [`SLOTS`] it waits for free slots.
const MAX_BATCH: u32 = 4096;
/// A `send` fails with `ETIMEDOUT` when no response arrives for this long.
const PROGRESS_TIMEOUT_MS: u32 = 5000;
/// Broken rings logged per device; the rest are only counted.
const LOGGED_BAD_RESPONSES: u64 = 10;
/// The longest `flood`, in milliseconds.
const MAX_FLOOD_MS: u32 = 60_000;
/// Notifications a `flood` sends between two sleeps.
const FLOOD_BURST: u64 = 256;

/// Counters, readable in debugfs; shared by the control files and the event handler.
#[pin_data]
struct Stats {
    name: CString,
    connected: Atomic<u32>,
    sent: Atomic<u64>,
    completed: Atomic<u64>,
    bad_responses: Atomic<u64>,
    ring_full_waits: Atomic<u64>,
    notifications: Atomic<u64>,
    /// Notifications sent by `flood`, without requests.
    flood_notifications: Atomic<u64>,
    interrupts: Atomic<u64>,
    /// Events that brought no response.
    spurious: Atomic<u64>,
    last_run_requests: Atomic<u64>,
    last_run_ns: Atomic<u64>,
    trace: Atomic<u32>,
    /// The current connection's end of the ring, shared by `send` and the event handler.
    /// `disconnect` clears `connected` under this lock, so that a sender that saw it set is
    /// already waiting on `progress` when it is woken.
    #[pin]
    link: SpinLockIrq<Option<Link>>,
    /// Signalled, with `link` locked, when a response completes a request or the connection
    /// goes away.
    #[pin]
    progress: CondVar,
}

impl Stats {
    fn tracing(&self) -> bool {
        self.trace.load(Relaxed) != 0
    }

    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("connected", u64::from(self.connected.load(Relaxed))),
            ("sent", self.sent.load(Relaxed)),
            ("completed", self.completed.load(Relaxed)),
            ("bad_responses", self.bad_responses.load(Relaxed)),
            ("ring_full_waits", self.ring_full_waits.load(Relaxed)),
            ("notifications", self.notifications.load(Relaxed)),
            (
                "flood_notifications",
                self.flood_notifications.load(Relaxed),
            ),
            ("interrupts", self.interrupts.load(Relaxed)),
            ("spurious", self.spurious.load(Relaxed)),
            ("last_run_requests", self.last_run_requests.load(Relaxed)),
            ("last_run_ns", self.last_run_ns.load(Relaxed)),
        ];
        proto::write_counters(f, &rows)
    }
}

/// A request sent and not yet answered.
#[derive(Clone, Copy, Default)]
struct Outstanding {
    busy: bool,
    req: Request,
}

/// The frontend's end of one connection, under the handler's lock.
struct Link {
    ring: SharedFrontRing<Request, Response>,
    /// Outstanding requests by slot; a request's id is `generation << 8 | slot`.
    table: KVec<Outstanding>,
    free: KVec<u16>,
    generation: u32,
    /// Responses taken off the ring (the ring index of the next one).
    received: u32,
    /// Responses that completed a request.
    completed: u64,
    /// The backend broke the protocol (a bad response, or more responses than requests):
    /// nothing more is read from the ring.
    broken: bool,
}

impl Link {
    fn new(ring: SharedFrontRing<Request, Response>) -> Result<Self> {
        let mut table = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        let mut free = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        for slot in (0..SLOTS as u16).rev() {
            table.push(Outstanding::default(), GFP_KERNEL)?;
            free.push(slot, GFP_KERNEL)?;
        }
        Ok(Self {
            ring,
            table,
            free,
            generation: 0,
            received: 0,
            completed: 0,
            broken: false,
        })
    }

    fn in_flight(&self) -> usize {
        SLOTS - self.free.len()
    }

    /// Queues one request; `false` when the ring or the table is full. `trace` is
    /// [`Stats::tracing`], read once per burst.
    fn queue(&mut self, operation: u32, stats: &Stats, trace: bool) -> Result<bool> {
        let Some(slot) = self.free.pop() else {
            return Ok(false);
        };
        let generation = self.generation.wrapping_add(1) & 0x00ff_ffff;
        let id = (generation << 8) | u32::from(slot);
        let req = Request {
            id,
            status: id.wrapping_mul(10),
            operation,
        };
        let idx = match self.ring.push_request(&req) {
            Ok(idx) => idx,
            Err(e) => {
                // The ring is full (`EBUSY`): the slot stays free. It was just taken, so there
                // is room for it.
                self.free.push_within_capacity(slot).map_err(|_| EINVAL)?;
                return if e == EBUSY { Ok(false) } else { Err(e) };
            }
        };
        self.generation = generation;
        if let Some(entry) = self.table.get_mut(usize::from(slot)) {
            *entry = Outstanding { busy: true, req };
        }
        if trace {
            trace_request(stats, "sent", idx, req.id, req.operation, req.status);
        }
        Ok(true)
    }

    /// Checks a response against the request it names and completes that request if it
    /// matches; `false` if it does not (the caller breaks the ring).
    ///
    /// A field of [`Link`] each, so that it can run while the ring is borrowed. `free` has
    /// room for every slot (allocated in [`Link::new`]), so a slot that was busy always goes
    /// back without allocating.
    #[inline]
    fn complete(table: &mut KVec<Outstanding>, free: &mut KVec<u16>, rsp: Response) -> bool {
        let slot = rsp.id & 0xff;
        let Some(o) = table.get_mut(slot as usize) else {
            return false;
        };
        if !(o.busy
            && o.req.id == rsp.id
            && o.req.operation == rsp.operation
            && rsp.status == proto::answer(o.req.operation, o.req.status))
        {
            return false;
        }
        o.busy = false;
        free.push_within_capacity(slot as u16).is_ok()
    }

    /// Stops reading the ring for good (until the next connection), counting and logging why.
    #[cold]
    fn break_ring(&mut self, stats: &Stats, why: fmt::Arguments<'_>) {
        self.broken = true;
        if stats.bad_responses.fetch_add(1, Relaxed) < LOGGED_BAD_RESPONSES {
            pr_warn!("xen-demo {}: {why}, ring abandoned\n", &*stats.name);
        }
    }
}

/// Logs a request sent or a response received at ring index `idx` (`trace` in debugfs): the
/// log format the C twin and the kselftest share. Out of line and cold, so that the send and
/// receive loops keep their values in registers.
#[cold]
#[inline(never)]
fn trace_request(stats: &Stats, what: &str, idx: u32, id: u32, operation: u32, status: u32) {
    pr_info!(
        "xen-demo {}: {what} slot {}: id={id} op={operation} status={status}\n",
        &*stats.name,
        idx as usize % SLOTS
    );
}

/// The frontend's event handler: takes responses off the ring and checks them.
#[pin_data]
struct FrontIrq {
    stats: Arc<Stats>,
}

impl LateEoiHandler for FrontIrq {
    /// Takes every response off the ring; an event that brought none is spurious.
    fn handle(&self, _peer: &Notifier) -> LateEoi {
        let stats = &*self.stats;
        stats.interrupts.add(1, Relaxed);
        let mut guard = stats.link.lock();
        let Some(link) = (*guard).as_mut() else {
            stats.spurious.add(1, Relaxed);
            return LateEoi::Spurious;
        };
        if link.broken {
            stats.spurious.add(1, Relaxed);
            return LateEoi::Spurious;
        }
        let trace = stats.tracing();
        let first = link.received;
        let mut next = first;
        let mut bad = None;
        // Every response up to the final check, unless one does not match its request.
        let outcome = link.ring.consume_responses(|rsp| {
            if trace {
                trace_request(stats, "received", next, rsp.id, rsp.operation, rsp.status);
            }
            next = next.wrapping_add(1);
            if Link::complete(&mut link.table, &mut link.free, rsp) {
                return true;
            }
            bad = Some(rsp);
            false
        });
        link.received = next;
        let taken = next.wrapping_sub(first);
        if let Some(rsp) = bad {
            link.break_ring(
                stats,
                fmt!(
                    "bad response: id={} op={} status={}",
                    rsp.id,
                    rsp.operation,
                    rsp.status
                ),
            );
        } else if let Err(e) = outcome {
            link.break_ring(stats, fmt!("more responses than requests ({e:?})"));
        }
        // Responses that completed a request: all taken but a bad one.
        let good = u64::from(taken) - u64::from(bad.is_some());
        if good != 0 {
            link.completed += good;
            // One atomic add per pass, not per response (C's counters are plain `u64`s under
            // its ring lock); under `link`'s lock, so a woken sender sees the total.
            stats.completed.add(good, Relaxed);
        }
        if good != 0 || link.broken {
            stats.progress.notify_all();
        }
        if taken == 0 {
            stats.spurious.add(1, Relaxed);
            return LateEoi::Spurious;
        }
        LateEoi::Handled
    }
}

type Conn = Pin<KBox<LateEoiRegistration<FrontIrq>>>;

/// Per-device state, owned by the device's debugfs scope.
#[pin_data]
struct Front {
    stats: Arc<Stats>,
    /// The current connection; held for the whole of a `send`.
    #[pin]
    conn: Mutex<Option<Conn>>,
}

impl Front {
    /// Sets up a ring and an event channel for the backend and publishes them.
    fn connect(dev: &Device<Bound>, stats: &Arc<Stats>) -> Result<Conn> {
        let ring = SharedFrontRing::<Request, Response>::new(dev)
            .inspect_err(|e| dev.dev_fatal(*e, fmt!("granting the ring")))?;
        if ring.size() as usize != SLOTS {
            dev.dev_fatal(EINVAL, fmt!("unexpected ring size"));
            return Err(EINVAL);
        }
        let gref = ring.gref();
        // A failure is reported by xenbus (`xenbus_alloc_evtchn`).
        let port = dev.alloc_evtchn()?;
        let evtchn = port.number();
        let link = Link::new(ring)?;
        *stats.link.lock() = Some(link);
        Self::bind_and_offer(dev, stats, port, gref, evtchn).inspect_err(|_| {
            // The handler, if it was bound, is unbound: the ring's grant can end.
            let link = stats.link.lock().take();
            drop(link);
        })
    }

    /// Binds the event channel to the handler and publishes the ring and the channel.
    fn bind_and_offer(
        dev: &Device<Bound>,
        stats: &Arc<Stats>,
        port: Port,
        gref: GrantRef,
        evtchn: u32,
    ) -> Result<Conn> {
        let conn = KBox::pin_init(
            LateEoiRegistration::new(
                port,
                c"xen-demo-front",
                try_pin_init!(FrontIrq {
                    stats: stats.clone(),
                }? Error),
            ),
            GFP_KERNEL,
        )
        .inspect_err(|e| dev.dev_fatal(*e, fmt!("binding event-channel {evtchn}")))?;
        let node = dev.nodename();
        xenstore::transaction(|t| {
            t.write_fmt(node, c"ring-ref", fmt!("{gref}"))?;
            t.write_fmt(node, c"event-channel", fmt!("{evtchn}"))?;
            t.write_fmt(node, c"protocol-version", fmt!("{}", proto::VERSION))
        })
        .inspect_err(|e| dev.dev_fatal(*e, fmt!("writing ring-ref and event-channel")))?;
        dev.switch_state(State::Initialised)?;
        pr_info!(
            "xen-demo {}: initialised (ring-ref {gref}, event-channel {evtchn})\n",
            &*stats.name
        );
        Ok(conn)
    }

    /// Tears the connection down: a sender is woken, the handler is unbound, then the ring's
    /// grant ends.
    fn disconnect(&self) {
        {
            let _link = self.stats.link.lock();
            self.stats.connected.store(0, Relaxed);
            self.stats.progress.notify_all();
        }
        // Waits for a sender to return.
        let conn = self.conn.lock().take();
        if let Some(conn) = conn {
            drop(conn);
            let link = self.stats.link.lock().take();
            drop(link);
            pr_info!("xen-demo {}: disconnected\n", &*self.stats.name);
        }
    }

    /// `send`: `N [B [OP]]`.
    fn send(&self, n: u32, batch: u32, operation: u32) -> Result {
        let stats = &*self.stats;
        let guard = self.conn.lock();
        let conn = (*guard).as_ref().ok_or(ENOTCONN)?;
        if stats.connected.load(Relaxed) == 0 {
            return Err(ENOTCONN);
        }
        let mut guard = stats.link.lock();
        let trace = stats.tracing();
        let start = Instant::<Monotonic>::now();
        let target = (*guard).as_ref().ok_or(ENOTCONN)?.completed + u64::from(n);
        let mut queued = 0u32;
        let wait = msecs_to_jiffies(PROGRESS_TIMEOUT_MS);
        loop {
            let link = (*guard).as_mut().ok_or(ENOTCONN)?;
            if link.completed >= target {
                break;
            }
            let mut pushed = 0u64;
            let mut queued_all = Ok(());
            while queued < n && (link.in_flight() as u32) < batch {
                match link.queue(operation, stats, trace) {
                    Ok(true) => {
                        queued += 1;
                        pushed += 1;
                    }
                    Ok(false) => {
                        // The ring is full: wait for responses below.
                        stats.ring_full_waits.add(1, Relaxed);
                        break;
                    }
                    Err(e) => {
                        queued_all = Err(e);
                        break;
                    }
                }
            }
            if pushed != 0 {
                // One atomic add per burst, as `completed` is counted once per pass.
                stats.sent.add(pushed, Relaxed);
            }
            queued_all?;
            if pushed != 0 && link.ring.push_requests_and_check_notify() {
                conn.notify();
                stats.notifications.add(1, Relaxed);
            }
            let before = link.completed;
            loop {
                let link = (*guard).as_mut().ok_or(ENOTCONN)?;
                if link.completed != before || link.completed >= target {
                    break;
                }
                if link.broken {
                    return Err(EIO);
                }
                if stats.connected.load(Relaxed) == 0 {
                    return Err(ENOTCONN);
                }
                match stats.progress.wait_interruptible_timeout(&mut guard, wait) {
                    CondVarTimeoutResult::Timeout => return Err(ETIMEDOUT),
                    // Not ERESTARTSYS: a restarted write() would send every request again.
                    CondVarTimeoutResult::Signal { .. } => return Err(EINTR),
                    CondVarTimeoutResult::Woken { .. } => {}
                }
            }
        }
        let ns = start.elapsed().as_nanos();
        stats.last_run_requests.store(u64::from(n), Relaxed);
        stats
            .last_run_ns
            .store(u64::try_from(ns).unwrap_or(0), Relaxed);
        Ok(())
    }

    /// `flood`: `MS`. Notifies the backend without pushing a request until `ms` milliseconds
    /// have passed, in bursts of [`FLOOD_BURST`] with a sleep after each, so that this domain
    /// stays usable (the kernel crate has no `cond_resched()`; without high-resolution timers
    /// the sleep is a jiffy or more).
    fn flood(&self, ms: u32) -> Result {
        let stats = &*self.stats;
        // Held for the whole flood, as by `send`, so that the channel stays bound;
        // `disconnect` clears `connected` before it waits for the lock, which ends the flood.
        let guard = self.conn.lock();
        let conn = (*guard).as_ref().ok_or(ENOTCONN)?;
        let start = Instant::<Monotonic>::now();
        let length = Delta::from_millis(i64::from(ms));
        loop {
            if stats.connected.load(Relaxed) == 0 {
                return Err(ENOTCONN);
            }
            // Not ERESTARTSYS, as in `send`: a restarted write() would flood for `ms` again.
            if kernel::current!().signal_pending() {
                return Err(EINTR);
            }
            for _ in 0..FLOOD_BURST {
                conn.notify();
            }
            stats.flood_notifications.add(FLOOD_BURST, Relaxed);
            if start.elapsed() >= length {
                return Ok(());
            }
            fsleep(Delta::from_millis(1));
        }
    }
}

/// Reads a control file's input, at most `buf.len()` bytes of text.
fn read_input<'b>(reader: &mut UserSliceReader, buf: &'b mut [u8]) -> Result<&'b str> {
    let len = reader.len();
    let buf = buf.get_mut(..len).ok_or(EINVAL)?;
    reader.read_slice(buf)?;
    core::str::from_utf8(buf).map_err(|_| EINVAL)
}

/// Parses the `send` control input `N [B [OP]]`.
fn parse_send(input: &str) -> Result<(u32, u32, u32)> {
    let mut words = input.split_ascii_whitespace();
    let mut next = |default: Option<u32>| -> Result<u32> {
        match words.next() {
            Some(w) => w.parse::<u32>().map_err(|_| EINVAL),
            None => default.ok_or(EINVAL),
        }
    };
    let n = next(None)?;
    let batch = next(Some(1))?;
    let op = next(Some(proto::OP_INCREMENT))?;
    if words.next().is_some()
        || !(1..=MAX_REQUESTS).contains(&n)
        || !(1..=MAX_BATCH).contains(&batch)
    {
        return Err(EINVAL);
    }
    Ok((n, batch, op))
}

fn send_file(front: &Front, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 64];
    let (n, batch, op) = parse_send(read_input(reader, &mut buf)?)?;
    front.send(n, batch, op)
}

/// Parses the `flood` control input `MS`, 1 to [`MAX_FLOOD_MS`].
fn parse_flood(input: &str) -> Result<u32> {
    let mut words = input.split_ascii_whitespace();
    let ms = words
        .next()
        .ok_or(EINVAL)?
        .parse::<u32>()
        .map_err(|_| EINVAL)?;
    if words.next().is_some() || !(1..=MAX_FLOOD_MS).contains(&ms) {
        return Err(EINVAL);
    }
    Ok(ms)
}

/// `flood` (write-only): `MS` notifies the backend through the event channel, without any
/// request, for `MS` milliseconds (1 to 60000). A hostile-peer aid for tests: it makes this
/// frontend a guest that floods its backend with events that bring no work (XSA-332). Fails with
/// `ENOTCONN` when not connected (or on a disconnect), `EINTR` on a signal and `EINVAL` on bad
/// input; `flood_notifications` in `stats` counts the notifications sent.
fn flood_file(front: &Front, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    front.flood(parse_flood(read_input(reader, &mut buf)?)?)
}

fn stats_file(front: &Front, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    front.stats.show(f)
}

fn populate<'a>(front: &'a Front, dir: &ScopedDir<'a, '_>) {
    dir.write_only_callback_file(c"send", front, &send_file);
    dir.write_only_callback_file(c"flood", front, &flood_file);
    dir.read_callback_file(c"stats", front, &stats_file);
    dir.read_write_file(c"trace", &front.stats.trace);
}

#[pin_data]
struct FrontData {
    /// The device's debugfs directory, which owns the device's state.
    ctl: Pin<KBox<Scope<Front>>>,
}

struct DemoFront;

#[vtable]
impl xenbus::Driver for DemoFront {
    type Data<'bound> = FrontData;
    const ID_TABLE: xenbus::IdTable = &DEMO_IDS;

    fn probe<'bound>(
        dev: &'bound Device<Core<'_>>,
        _id: &DeviceId,
    ) -> impl PinInit<FrontData, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let (name, dir) = proto::device_names(dev.as_ref())?;
            let stats = Arc::pin_init(
                try_pin_init!(Stats {
                    name,
                    connected: Atomic::new(0),
                    sent: Atomic::new(0),
                    completed: Atomic::new(0),
                    bad_responses: Atomic::new(0),
                    ring_full_waits: Atomic::new(0),
                    notifications: Atomic::new(0),
                    flood_notifications: Atomic::new(0),
                    interrupts: Atomic::new(0),
                    spurious: Atomic::new(0),
                    last_run_requests: Atomic::new(0),
                    last_run_ns: Atomic::new(0),
                    trace: Atomic::new(0),
                    link <- new_spinlock_irq!(None),
                    progress <- new_condvar!(),
                }? Error),
                GFP_KERNEL,
            )?;
            // Connect when the backend is in InitWait (`otherend_changed`), not here: probe can
            // run in insmod's context while the xenwatch thread still handles the events that
            // created the device, and xenbus takes a state written in between for a device
            // reset and removes the device. A device whose driver was reloaded is still Closed:
            // going back to Initialising tells the backend, left Closed too, to start over.
            dev.switch_state(State::Initialising)?;
            let ctl = KBox::pin_init(
                Scope::dir(
                    try_pin_init!(Front {
                        stats,
                        conn <- new_mutex!(None),
                    }? Error),
                    &dir,
                    populate,
                ),
                GFP_KERNEL,
            )?;
            Ok(try_pin_init!(FrontData { ctl }? Error))
        })
    }

    fn otherend_changed<'bound>(
        dev: &'bound Device<Bound>,
        data: Pin<&FrontData>,
        _backend: &CStr,
        state: Result<State>,
    ) {
        let front: &Front = &data.ctl;
        match state {
            Ok(State::Connected) if dev.state() == Ok(State::Initialised) => {
                if dev.switch_state(State::Connected).is_ok() {
                    front.stats.connected.store(1, Relaxed);
                    pr_info!("xen-demo {}: connected\n", &*front.stats.name);
                }
            }
            // The backend waits for an offer: make one, with a fresh ring and event channel,
            // unless one is out. Seen while Connected, Closing or Closed, the backend started
            // over (its driver was reloaded; we may not even have seen it close).
            Ok(State::InitWait) if dev.state() != Ok(State::Initialised) => {
                front.disconnect();
                if let Ok(conn) = Front::connect(dev, &front.stats) {
                    *front.conn.lock() = Some(conn);
                }
            }
            // A backend still Closed from an earlier connection answers our new state itself.
            Ok(State::Closed)
                if matches!(dev.state(), Ok(State::Initialising | State::Initialised)) => {}
            Ok(State::Closing | State::Closed | State::Unknown) => {
                front.disconnect();
                if dev.state() != Ok(State::Closed) {
                    let _ = dev.switch_state(State::Closed);
                }
            }
            Ok(_) => {}
            Err(e) => dev.dev_error(e, fmt!("backend wrote an unknown state")),
        }
    }

    /// A restored domain may run on another host, with a new backend that never saw our ring:
    /// drop the old one (its event channel died with the old domain) and offer a new one when
    /// the backend is in InitWait, as blkfront does. xenbus has already set our state back to
    /// Initialising.
    fn resume<'bound>(_dev: &'bound Device<Bound>, data: Pin<&FrontData>) -> Result {
        data.ctl.disconnect();
        pr_info!("xen-demo {}: resumed\n", &*data.ctl.stats.name);
        Ok(())
    }

    fn unbind<'bound>(_dev: &'bound Device<Core<'_>>, data: Pin<&FrontData>) {
        data.ctl.disconnect();
    }
}

kernel::module_xenbus_frontend_driver! {
    type: DemoFront,
    name: "rust_xen_demo_front",
    authors: ["Rust for Xen contributors"],
    description: "Rust Xen sample: frontend of the demo device",
    license: "GPL",
    alias: ["xen:demo"],
}
