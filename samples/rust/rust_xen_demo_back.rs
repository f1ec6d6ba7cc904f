// SPDX-License-Identifier: GPL-2.0

//! Rust Xen sample: the backend (dom0) end of the `demo` device.
//!
//! When the frontend is Initialised, the backend reads `ring-ref`, `event-channel` and
//! `protocol-version` from the frontend's xenstore directory, checks them, maps the ring, binds
//! the event channel (late EOI) and goes to Connected. Each request is copied out of the ring and
//! answered with `status + 1`. Everything the frontend wrote is untrusted: a bad value is reported
//! with `xenbus_dev_fatal()`, and a frontend that claims more requests than the ring holds loses
//! its ring until it reconnects. An interrupt answers at most 64 requests; the rest is answered
//! from a work item with the event channel still masked (`LateEoi::Deferred`), so a frontend that
//! produces requests without end cannot hold a dom0 CPU in interrupt context.
//!
//! The protocol is `include/xen/interface/io/demo.h`; the debugfs counters and the state machine
//! are described in `Documentation/rust/xen-demo.rst`. `samples/xen/xen_demo_back.c` is the same
//! driver in C.

use kernel::{
    debugfs::{Scope, ScopedDir},
    device::{Bound, Core},
    fmt, new_mutex, new_spinlock_irq,
    prelude::*,
    str::CString,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex, SpinLockIrq,
    },
    xen::{
        events::{LateEoi, LateEoiHandler, LateEoiRegistration, Notifier},
        xenbus::{self, Device, DeviceId, SharedBackRing, State},
        xenstore::Xenstore,
    },
};

#[path = "rust_xen_demo_proto.rs"]
mod proto;
use proto::{Request, Response};

kernel::xenbus_device_table!(DEMO_IDS, [xenbus::DeviceId::new(c"demo")]);

/// Counters, readable in debugfs; shared by the control files and the event handler.
struct Stats {
    name: CString,
    connected: Atomic<u32>,
    requests: Atomic<u64>,
    bad_requests: Atomic<u64>,
    overflows: Atomic<u64>,
    notifications: Atomic<u64>,
    /// Interrupts that left requests to the deferred part.
    deferred: Atomic<u64>,
    trace: Atomic<u32>,
}

impl Stats {
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            ("connected", u64::from(self.connected.load(Relaxed))),
            ("requests", self.requests.load(Relaxed)),
            ("bad_requests", self.bad_requests.load(Relaxed)),
            ("overflows", self.overflows.load(Relaxed)),
            ("notifications", self.notifications.load(Relaxed)),
            ("deferred", self.deferred.load(Relaxed)),
        ];
        proto::write_counters(f, &rows)
    }
}

/// The backend's end of one connection, under the handler's lock.
struct Link {
    ring: SharedBackRing<Request, Response>,
    /// Requests taken off the ring (the ring index of the next one).
    consumed: u32,
    /// The frontend overran the ring: it is not served again until it reconnects.
    broken: bool,
}

/// The backend's event handler: answers each request with `status + 1`.
#[pin_data]
struct BackIrq {
    #[pin]
    link: SpinLockIrq<Link>,
    stats: Arc<Stats>,
}

/// What one pass over the ring answered (at most [`BUDGET`] requests); added to [`Stats`] once
/// per pass, as the C twin does, instead of two atomic additions per request.
#[derive(Default)]
struct Pass {
    requests: u64,
    bad_requests: u64,
}

/// Logs a request answered at ring index `idx` (`trace` in debugfs), in the log format the C
/// twin and the kselftest share. Out of line and cold, so that the serving loop keeps its values
/// in registers.
#[cold]
#[inline(never)]
fn trace_answer(stats: &Stats, size: u32, idx: u32, req: Request, rsp_status: u32) {
    pr_info!(
        "xen-demo {}: slot {}: id={} op={} status={} -> status={}\n",
        &*stats.name,
        idx.checked_rem(size).unwrap_or(0),
        req.id,
        req.operation,
        req.status,
        rsp_status
    );
}

/// Requests answered per interrupt, or per run of the deferred part (as in the C twin).
const BUDGET: u32 = 64;

impl BackIrq {
    /// The frontend overran the ring: stop serving it until it reconnects.
    #[cold]
    fn abandon(&self, link: &mut Link, e: Error) {
        link.broken = true;
        self.stats.overflows.add(1, Relaxed);
        pr_warn!(
            "xen-demo {}: frontend overran the ring ({e:?}); not serving it\n",
            &*self.stats.name
        );
    }

    /// Answers at most [`BUDGET`] requests; returns how many, and whether requests are left.
    fn serve(&self, peer: &Notifier) -> (u32, bool) {
        let (done, more, pass) = self.serve_pass(peer);
        self.stats.requests.add(pass.requests, Relaxed);
        self.stats.bad_requests.add(pass.bad_requests, Relaxed);
        (done, more)
    }

    /// [`serve`](Self::serve)'s work, with its counts.
    fn serve_pass(&self, peer: &Notifier) -> (u32, bool, Pass) {
        let trace = self.stats.trace.load(Relaxed) != 0;
        let mut pass = Pass::default();
        let mut link = self.link.lock();
        let mut done = 0;
        let stats = &*self.stats;
        while !link.broken {
            let size = link.ring.size();
            let mut idx = link.consumed;
            // Each request is answered from its copy (it is never read from the ring again).
            let answered = link.ring.answer_requests(BUDGET - done, |req| {
                let status = proto::answer(req.operation, req.status);
                pass.requests += 1;
                if req.operation != proto::OP_INCREMENT {
                    pass.bad_requests += 1;
                }
                if trace {
                    trace_answer(stats, size, idx, req, status);
                }
                idx = idx.wrapping_add(1);
                Response {
                    id: req.id,
                    status,
                    operation: req.operation,
                }
            });
            done += idx.wrapping_sub(link.consumed);
            link.consumed = idx;
            if let Err(e) = answered {
                self.abandon(&mut link, e);
            }
            if link.ring.push_responses_and_check_notify() {
                peer.notify();
                self.stats.notifications.add(1, Relaxed);
            }
            if link.broken {
                break;
            }
            match link.ring.final_check_for_requests() {
                Ok(false) => break,
                // More requests: go on, or leave them to the deferred part.
                Ok(true) if done < BUDGET => {}
                Ok(true) => return (done, true, pass),
                Err(e) => self.abandon(&mut link, e),
            }
        }
        (done, false, pass)
    }
}

impl LateEoiHandler for BackIrq {
    /// Hard interrupt: at most [`BUDGET`] requests; the rest in process context.
    fn handle(&self, peer: &Notifier) -> LateEoi {
        match self.serve(peer) {
            (_, true) => {
                self.stats.deferred.add(1, Relaxed);
                LateEoi::Deferred
            }
            (0, false) => LateEoi::Spurious,
            (_, false) => LateEoi::Handled,
        }
    }

    /// Process context (a work item), with the channel still masked: [`BUDGET`] more requests
    /// per run, until the ring is empty; then the EOI.
    fn handle_deferred(&self, peer: &Notifier) -> LateEoi {
        match self.serve(peer) {
            (_, true) => LateEoi::Deferred,
            // The event carried work (the interrupt found more than a budget's worth).
            (_, false) => LateEoi::Handled,
        }
    }
}

type Conn = Pin<KBox<LateEoiRegistration<BackIrq>>>;

/// Per-device state, owned by the device's debugfs scope.
#[pin_data]
struct Back {
    stats: Arc<Stats>,
    #[pin]
    conn: Mutex<Option<Conn>>,
}

/// Reads `node` of the frontend's directory `fe` as a number; reports a missing or bad value.
fn read_number(dev: &Device<Bound>, fe: &CStr, node: &CStr) -> Result<u32> {
    let value = Xenstore::read(fe, node).inspect_err(|e| {
        dev.dev_fatal(*e, fmt!("reading {fe}/{node}"));
    })?;
    value.parse::<u32>().inspect_err(|e| match value.as_str() {
        Ok(s) => dev.dev_fatal(
            *e,
            // Quoted and escaped (`Debug`), as the C twin's `%pE`: the value is the peer's, and
            // may hold a NUL byte or control characters.
            fmt!("{fe}/{node} is not a 32-bit decimal number: {s:?}"),
        ),
        Err(_) => dev.dev_fatal(*e, fmt!("{fe}/{node} is not text")),
    })
}

impl Back {
    fn connect(dev: &Device<Bound>, fe: &CStr, stats: &Arc<Stats>) -> Result<Conn> {
        let version = read_number(dev, fe, c"protocol-version")?;
        if version != proto::VERSION {
            dev.dev_fatal(
                EPROTO,
                fmt!(
                    "{fe}/protocol-version {version} is not supported (want {})",
                    proto::VERSION
                ),
            );
            return Err(EPROTO);
        }
        let gref = read_number(dev, fe, c"ring-ref")?;
        if gref < proto::FIRST_GRANT_REF {
            dev.dev_fatal(
                ERANGE,
                fmt!("{fe}/ring-ref {gref} is a reserved grant reference"),
            );
            return Err(ERANGE);
        }
        let evtchn = read_number(dev, fe, c"event-channel")?;
        if evtchn == 0 || evtchn >= proto::PORT_LIMIT {
            dev.dev_fatal(ERANGE, fmt!("{fe}/event-channel {evtchn} is out of range"));
            return Err(ERANGE);
        }
        let ring = SharedBackRing::<Request, Response>::map(dev, gref).inspect_err(|e| {
            dev.dev_fatal(*e, fmt!("mapping ring-ref {gref}"));
        })?;
        let link = Link {
            ring,
            consumed: 0,
            broken: false,
        };
        let conn = KBox::pin_init(
            LateEoiRegistration::bind_interdomain(
                dev,
                evtchn,
                c"xen-demo-back",
                try_pin_init!(BackIrq {
                    link <- new_spinlock_irq!(link),
                    stats: stats.clone(),
                }? Error),
            ),
            GFP_KERNEL,
        )
        .inspect_err(|e| dev.dev_fatal(*e, fmt!("binding event-channel {evtchn}")))?;
        pr_info!(
            "xen-demo {}: connected (ring-ref {gref}, event-channel {evtchn})\n",
            &*stats.name
        );
        Ok(conn)
    }

    /// Unbinds the channel and unmaps the ring.
    fn disconnect(&self) {
        self.stats.connected.store(0, Relaxed);
        if self.conn.lock().take().is_some() {
            pr_info!("xen-demo {}: disconnected\n", &*self.stats.name);
        }
    }
}

fn stats_file(back: &Back, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    back.stats.show(f)
}

fn populate<'a>(back: &'a Back, dir: &ScopedDir<'a, '_>) {
    dir.read_callback_file(c"stats", back, &stats_file);
    dir.read_write_file(c"trace", &back.stats.trace);
}

#[pin_data]
struct BackData {
    /// The device's debugfs directory, which owns the device's state.
    ctl: Pin<KBox<Scope<Back>>>,
}

struct DemoBack;

#[vtable]
impl xenbus::Driver for DemoBack {
    type Data<'bound> = BackData;
    const ID_TABLE: xenbus::IdTable = &DEMO_IDS;

    fn probe<'bound>(
        dev: &'bound Device<Core<'_>>,
        _id: &DeviceId,
    ) -> impl PinInit<BackData, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let (name, dir) = proto::device_names(dev.as_ref())?;
            let stats = Arc::new(
                Stats {
                    name,
                    connected: Atomic::new(0),
                    requests: Atomic::new(0),
                    bad_requests: Atomic::new(0),
                    overflows: Atomic::new(0),
                    notifications: Atomic::new(0),
                    deferred: Atomic::new(0),
                    trace: Atomic::new(0),
                },
                GFP_KERNEL,
            )?;
            let ctl = KBox::pin_init(
                Scope::dir(
                    try_pin_init!(Back {
                        stats,
                        conn <- new_mutex!(None),
                    }? Error),
                    &dir,
                    populate,
                ),
                GFP_KERNEL,
            )?;
            Xenstore::write_fmt(
                dev.nodename(),
                c"protocol-version",
                fmt!("{}", proto::VERSION),
            )?;
            dev.switch_state(State::InitWait)?;
            Ok(try_pin_init!(BackData { ctl }? Error))
        })
    }

    fn otherend_changed<'bound>(
        dev: &'bound Device<Bound>,
        data: Pin<&BackData>,
        fe: &CStr,
        state: Result<State>,
    ) {
        let back: &Back = &data.ctl;
        match state {
            Ok(State::Initialised | State::Connected) => {
                let mut conn = back.conn.lock();
                if conn.is_some() || dev.state() == Ok(State::Closing) {
                    return;
                }
                if let Ok(c) = Back::connect(dev, fe, &back.stats) {
                    *conn = Some(c);
                    back.stats.connected.store(1, Relaxed);
                    let _ = dev.switch_state(State::Connected);
                }
            }
            Ok(State::Closing) => {
                back.disconnect();
                let _ = dev.switch_state(State::Closing);
            }
            // A frontend still Closed from before this driver bound the device: it reconnects
            // when it sees us in InitWait.
            Ok(State::Closed)
                if dev.state() == Ok(State::InitWait) && back.conn.lock().is_none() => {}
            Ok(State::Closed | State::Unknown) => {
                back.disconnect();
                let _ = dev.switch_state(State::Closed);
            }
            Ok(State::Initialising) if dev.state() == Ok(State::Closed) => {
                // A frontend that starts over (its driver was reloaded): be ready again.
                let _ = dev.switch_state(State::InitWait);
            }
            Ok(_) => {}
            Err(e) => dev.dev_fatal(e, fmt!("frontend wrote an unknown state")),
        }
    }

    fn unbind<'bound>(_dev: &'bound Device<Core<'_>>, data: Pin<&BackData>) {
        data.ctl.disconnect();
    }
}

kernel::module_xenbus_backend_driver! {
    type: DemoBack,
    name: "rust_xen_demo_back",
    authors: ["Rust for Xen contributors"],
    description: "Rust Xen sample: backend of the demo device",
    license: "GPL",
    alias: ["xen-backend:demo"],
}
