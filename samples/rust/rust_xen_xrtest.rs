// SPDX-License-Identifier: GPL-2.0

//! Rust Xen sample: a frontend and a backend driver for the `xrtest` device type.
//!
//! The frontend grants a one-page ring to the backend's domain, allocates an event channel and
//! publishes both in xenstore (`ring-ref`, `event-channel`) in one transaction, then goes to
//! Initialised. The backend reads and checks them, maps the ring, binds the channel (late EOI) and
//! goes to Connected. The frontend then sends one request, `{ id, op, status }`; the backend
//! answers `status + 1`, and the frontend checks the answer. When either end goes away the other
//! closes. The test harness loads this in dom0 (backend) and in a domU (frontend).

use kernel::{
    device::{Bound, Core},
    driver,
    irq::IrqReturn,
    new_spinlock_irq,
    prelude::*,
    sync::{Mutex, SpinLockIrq},
    transmute::{AsBytes, FromBytes},
    xen::{
        events::{LateEoi, LateEoiHandler, LateEoiRegistration, Notifier, Registration},
        xenbus::{self, Backend, Device, Frontend, SharedBackRing, SharedFrontRing, State},
        xenstore::{self, Xenstore},
    },
    InPlaceModule,
};

kernel::xenbus_device_table!(XRTEST_IDS, [xenbus::DeviceId::new(c"xrtest")]);

/// A request or a response on the ring.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Msg {
    id: u32,
    op: u32,
    status: u32,
}
// SAFETY: Three `u32`s: no padding.
unsafe impl AsBytes for Msg {}
// SAFETY: Any bit pattern is a valid `Msg`.
unsafe impl FromBytes for Msg {}

const REQ: Msg = Msg {
    id: 1,
    op: 7,
    status: 41,
};

/// The frontend's event handler: takes responses off the ring and checks them.
#[pin_data]
struct FrontIrq {
    #[pin]
    ring: SpinLockIrq<SharedFrontRing<Msg, Msg>>,
}

impl kernel::xen::events::Handler for FrontIrq {
    fn handle(&self) -> IrqReturn {
        let mut ring = self.ring.lock();
        loop {
            loop {
                match ring.ring().next_response() {
                    Ok(Some(rsp)) if rsp.id == REQ.id && rsp.status == REQ.status + 1 => {
                        pr_info!(
                            "frontend got response id={} op={} status={}\n",
                            rsp.id,
                            rsp.op,
                            rsp.status
                        )
                    }
                    Ok(Some(rsp)) => pr_err!("frontend got a bad response id={}\n", rsp.id),
                    Ok(None) => break,
                    Err(e) => {
                        pr_err!("frontend: backend broke the ring protocol ({e:?})\n");
                        return IrqReturn::Handled;
                    }
                }
            }
            if !matches!(ring.ring().final_check_for_responses(), Ok(true)) {
                break;
            }
        }
        IrqReturn::Handled
    }
}

struct FrontData {
    irq: Pin<KBox<Registration<FrontIrq>>>,
}

struct XrFront;

impl XrFront {
    fn connect(dev: &Device<Core<'_>>) -> Result<FrontData> {
        let ring = SharedFrontRing::<Msg, Msg>::new(dev)?;
        let gref = ring.gref();
        let port = dev.alloc_evtchn()?;
        let evtchn = port.number();
        let irq = KBox::pin_init(
            Registration::new(
                port,
                c"rust_xen_xrtest",
                try_pin_init!(FrontIrq {
                    ring <- new_spinlock_irq!(ring),
                }? Error),
            ),
            GFP_KERNEL,
        )?;
        let node = dev.nodename();
        xenstore::transaction(|t| {
            t.write_fmt(node, c"ring-ref", fmt!("{gref}"))?;
            t.write_fmt(node, c"event-channel", fmt!("{evtchn}"))
        })?;
        dev.switch_state(State::Initialised)?;
        pr_info!("frontend {node}: ring-ref={gref} event-channel={evtchn}\n");
        Ok(FrontData { irq })
    }
}

#[vtable]
impl xenbus::Driver for XrFront {
    type Data<'bound> = FrontData;
    const ID_TABLE: xenbus::IdTable = &XRTEST_IDS;

    fn probe<'bound>(dev: &'bound Device<Core<'_>>) -> impl PinInit<FrontData, Error> + 'bound {
        pr_info!(
            "frontend probe {} (backend in domain {})\n",
            dev.nodename(),
            dev.otherend_id()
        );
        let r = Self::connect(dev);
        if let Err(e) = &r {
            dev.dev_fatal(*e, fmt!("setting up the ring"));
        }
        r
    }

    fn otherend_changed<'bound>(
        dev: &'bound Device<Bound>,
        data: Pin<&FrontData>,
        state: Result<State>,
    ) {
        match state {
            Ok(State::Connected) if dev.state() != Ok(State::Connected) => {
                if dev.switch_state(State::Connected).is_err() {
                    return;
                }
                pr_info!("frontend {} connected\n", dev.nodename());
                let notify = {
                    let mut ring = data.irq.handler().ring.lock();
                    let r = ring.ring();
                    r.push_request(&REQ).is_ok() && r.push_requests_and_check_notify()
                };
                pr_info!(
                    "frontend sent request id={} op={} status={}\n",
                    REQ.id,
                    REQ.op,
                    REQ.status
                );
                if notify {
                    data.irq.notify();
                }
            }
            Ok(State::Closing) | Ok(State::Closed) => {
                let _ = dev.switch_state(State::Closed);
            }
            Ok(_) => {}
            Err(e) => dev.dev_error(e, fmt!("backend wrote an unknown state")),
        }
    }

    fn unbind<'bound>(dev: &'bound Device<Core<'_>>, _data: Pin<&FrontData>) {
        pr_info!("frontend {} unbound\n", dev.nodename());
    }
}

/// The backend's event handler: answers each request with `status + 1`.
#[pin_data]
struct BackIrq {
    #[pin]
    ring: SpinLockIrq<SharedBackRing<Msg, Msg>>,
}

impl LateEoiHandler for BackIrq {
    fn handle(&self, peer: &Notifier) -> LateEoi {
        let mut ring = self.ring.lock();
        let mut work = false;
        loop {
            loop {
                match ring.ring().next_request() {
                    Ok(Some(req)) => {
                        work = true;
                        let rsp = Msg {
                            status: req.status.wrapping_add(1),
                            ..req
                        };
                        let _ = ring.ring().push_response(&rsp);
                        pr_info!(
                            "backend answered id={} op={} status={}\n",
                            rsp.id,
                            rsp.op,
                            rsp.status
                        );
                    }
                    Ok(None) => break,
                    Err(e) => {
                        pr_err!("backend: frontend broke the ring protocol ({e:?})\n");
                        return LateEoi::Spurious;
                    }
                }
            }
            if ring.ring().push_responses_and_check_notify() {
                peer.notify();
            }
            if !matches!(ring.ring().final_check_for_requests(), Ok(true)) {
                break;
            }
        }
        if work {
            LateEoi::Handled
        } else {
            LateEoi::Spurious
        }
    }
}

#[pin_data]
struct BackData {
    #[pin]
    conn: Mutex<Option<Pin<KBox<LateEoiRegistration<BackIrq>>>>>,
}

struct XrBack;

impl XrBack {
    fn connect(dev: &Device<Bound>) -> Result<Pin<KBox<LateEoiRegistration<BackIrq>>>> {
        let fe = dev.otherend();
        let gref: u32 = Xenstore::read_parsed(fe, c"ring-ref").inspect_err(|e| {
            dev.dev_fatal(*e, fmt!("reading {fe}/ring-ref"));
        })?;
        let evtchn: u32 = Xenstore::read_parsed(fe, c"event-channel").inspect_err(|e| {
            dev.dev_fatal(*e, fmt!("reading {fe}/event-channel"));
        })?;
        let ring = SharedBackRing::<Msg, Msg>::map(dev, gref).inspect_err(|e| {
            dev.dev_fatal(*e, fmt!("mapping ring-ref {gref}"));
        })?;
        let reg = KBox::pin_init(
            LateEoiRegistration::bind_interdomain(
                dev,
                evtchn,
                c"rust_xen_xrtest",
                try_pin_init!(BackIrq {
                    ring <- new_spinlock_irq!(ring),
                }? Error),
            ),
            GFP_KERNEL,
        )
        .inspect_err(|e| dev.dev_fatal(*e, fmt!("binding event-channel {evtchn}")))?;
        pr_info!(
            "backend {}: mapped ring-ref={gref}, bound event-channel={evtchn}\n",
            dev.nodename()
        );
        Ok(reg)
    }
}

#[vtable]
impl xenbus::Driver for XrBack {
    type Data<'bound> = BackData;
    const ID_TABLE: xenbus::IdTable = &XRTEST_IDS;

    fn probe<'bound>(dev: &'bound Device<Core<'_>>) -> impl PinInit<BackData, Error> + 'bound {
        pr_info!(
            "backend probe {} (frontend in domain {})\n",
            dev.nodename(),
            dev.otherend_id()
        );
        let r = dev.switch_state(State::InitWait);
        try_pin_init!(BackData {
            conn <- kernel::new_mutex!(None),
            _: { r?; },
        }? Error)
    }

    fn otherend_changed<'bound>(
        dev: &'bound Device<Bound>,
        data: Pin<&BackData>,
        state: Result<State>,
    ) {
        match state {
            Ok(State::Initialised) | Ok(State::Connected) => {
                let mut conn = data.conn.lock();
                if conn.is_some() {
                    return;
                }
                if let Ok(reg) = Self::connect(dev) {
                    *conn = Some(reg);
                    if dev.switch_state(State::Connected).is_ok() {
                        pr_info!("backend {} connected\n", dev.nodename());
                    }
                }
            }
            Ok(State::Closing) | Ok(State::Closed) => {
                // Unbind the channel and unmap the ring before saying Closed.
                drop(data.conn.lock().take());
                if dev.switch_state(State::Closed).is_ok() {
                    pr_info!("backend {} closed\n", dev.nodename());
                }
            }
            Ok(_) => {}
            Err(e) => dev.dev_fatal(e, fmt!("frontend wrote an unknown state")),
        }
    }
}

#[pin_data]
struct XrTest {
    #[pin]
    front: driver::Registration<xenbus::Adapter<XrFront, Frontend>>,
    #[pin]
    back: driver::Registration<xenbus::Adapter<XrBack, Backend>>,
}

impl InPlaceModule for XrTest {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            front <- driver::Registration::new(c"rust_xen_xrtest_front", module),
            back <- driver::Registration::new(c"rust_xen_xrtest_back", module),
        })
    }
}

module! {
    type: XrTest,
    name: "rust_xen_xrtest",
    authors: ["Rust for Xen contributors"],
    description: "Rust Xen sample: xenbus handshake and one ring exchange for xrtest devices",
    license: "GPL",
    alias: ["xen:xrtest", "xen-backend:xrtest"],
}
