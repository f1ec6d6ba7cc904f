// SPDX-License-Identifier: GPL-2.0

//! Rust Xen sample: a frontend and a backend driver for the `xrtest` device type.
//!
//! The two ends go through the xenbus handshake and nothing else: the backend waits in InitWait,
//! the frontend publishes Initialised, the backend answers Connected and the frontend follows.
//! When either end goes away the other closes. The test harness loads it in dom0 (backend) and in
//! a domU (frontend) for a device it creates the way the toolstack creates generic devices.

use kernel::{
    device::Core,
    driver,
    prelude::*,
    xen::xenbus::{self, Backend, Device, Frontend, State},
    InPlaceModule,
};

kernel::xenbus_device_table!(XRTEST_IDS, [xenbus::DeviceId::new(c"xrtest")]);

struct XrFront;

#[vtable]
impl xenbus::Driver for XrFront {
    type Data<'bound> = ();
    const ID_TABLE: xenbus::IdTable = &XRTEST_IDS;

    fn probe<'bound>(dev: &'bound Device<Core<'_>>) -> impl PinInit<(), Error> + 'bound {
        pr_info!(
            "frontend probe {} (backend in domain {})\n",
            dev.nodename(),
            dev.otherend_id()
        );
        dev.switch_state(State::Initialised)
    }

    fn otherend_changed<'bound>(
        dev: &'bound Device<kernel::device::Bound>,
        _data: Pin<&()>,
        state: Result<State>,
    ) {
        match state {
            Ok(State::Connected) if dev.state() != Ok(State::Connected) => {
                if dev.switch_state(State::Connected).is_ok() {
                    pr_info!("frontend {} connected\n", dev.nodename());
                }
            }
            Ok(State::Closing) | Ok(State::Closed) => {
                let _ = dev.switch_state(State::Closed);
            }
            Ok(_) => {}
            Err(e) => dev.dev_error(e, fmt!("backend wrote an unknown state")),
        }
    }

    fn unbind<'bound>(dev: &'bound Device<Core<'_>>, _data: Pin<&()>) {
        pr_info!("frontend {} unbound\n", dev.nodename());
    }
}

struct XrBack;

#[vtable]
impl xenbus::Driver for XrBack {
    type Data<'bound> = ();
    const ID_TABLE: xenbus::IdTable = &XRTEST_IDS;

    fn probe<'bound>(dev: &'bound Device<Core<'_>>) -> impl PinInit<(), Error> + 'bound {
        pr_info!(
            "backend probe {} (frontend in domain {})\n",
            dev.nodename(),
            dev.otherend_id()
        );
        dev.switch_state(State::InitWait)
    }

    fn otherend_changed<'bound>(
        dev: &'bound Device<kernel::device::Bound>,
        _data: Pin<&()>,
        state: Result<State>,
    ) {
        match state {
            Ok(State::Initialised) | Ok(State::Connected) => {
                if dev.state() != Ok(State::Connected) && dev.switch_state(State::Connected).is_ok()
                {
                    pr_info!("backend {} connected\n", dev.nodename());
                }
            }
            Ok(State::Closing) | Ok(State::Closed) => {
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
    description: "Rust Xen sample: xenbus handshake for the xrtest device type",
    license: "GPL",
    alias: ["xen:xrtest", "xen-backend:xrtest"],
}
