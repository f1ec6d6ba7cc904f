// SPDX-License-Identifier: GPL-2.0

//! The `demo` protocol of `include/xen/interface/io/demo.h`, shared by the Rust demo frontend and
//! backend (each includes this file as a module).
//!
//! The request and response types are Rust mirrors of `struct demo_request` and
//! `struct demo_response`, with their layout checked against the C definitions at build time, so
//! that they can implement [`AsBytes`] and [`FromBytes`] for the shared ring.

use kernel::{
    bindings, device, fmt,
    prelude::*,
    str::CString,
    transmute::{AsBytes, FromBytes},
};

/// The protocol version both ends write as `protocol-version`.
pub(crate) const VERSION: u32 = bindings::XEN_DEMO_PROTOCOL_VERSION;
/// The only operation: answer with `status + 1`.
pub(crate) const OP_INCREMENT: u32 = bindings::XEN_DEMO_OP_INCREMENT;
/// The status of the answer to an unknown operation.
pub(crate) const STATUS_EOPNOTSUPP: u32 = bindings::XEN_DEMO_STATUS_EOPNOTSUPP;
/// Grant references below this are reserved (`GNTTAB_NR_RESERVED_ENTRIES`): never a ring.
pub(crate) const FIRST_GRANT_REF: u32 = bindings::GNTTAB_NR_RESERVED_ENTRIES;
/// Event channel ports are below this (the FIFO ABI's limit, `EVTCHN_FIFO_NR_CHANNELS`).
pub(crate) const PORT_LIMIT: u32 = 1 << 17;

/// `struct demo_request`.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct Request {
    pub(crate) id: u32,
    pub(crate) status: u32,
    pub(crate) operation: u32,
}

/// `struct demo_response`.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct Response {
    pub(crate) id: u32,
    pub(crate) status: u32,
    pub(crate) operation: u32,
}

// SAFETY: Three `u32`s: no padding, every byte initialised.
unsafe impl AsBytes for Request {}
// SAFETY: Any bit pattern is a valid `Request`.
unsafe impl FromBytes for Request {}
// SAFETY: Three `u32`s: no padding, every byte initialised.
unsafe impl AsBytes for Response {}
// SAFETY: Any bit pattern is a valid `Response`.
unsafe impl FromBytes for Response {}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Request>() == size_of::<bindings::demo_request>());
    assert!(offset_of!(Request, id) == offset_of!(bindings::demo_request, id));
    assert!(offset_of!(Request, status) == offset_of!(bindings::demo_request, status));
    assert!(offset_of!(Request, operation) == offset_of!(bindings::demo_request, operation));
    assert!(size_of::<Response>() == size_of::<bindings::demo_response>());
    assert!(offset_of!(Response, id) == offset_of!(bindings::demo_response, id));
    assert!(offset_of!(Response, status) == offset_of!(bindings::demo_response, status));
    assert!(offset_of!(Response, operation) == offset_of!(bindings::demo_response, operation));
};

/// The status a correct backend answers `operation` and `status` with.
pub(crate) fn answer(operation: u32, status: u32) -> u32 {
    if operation == OP_INCREMENT {
        status.wrapping_add(1)
    } else {
        STATUS_EOPNOTSUPP
    }
}

/// The device's name, for log lines, and the name of its debugfs directory, `xen-demo.<device>`.
pub(crate) fn device_names(dev: &device::Device) -> Result<(CString, CString)> {
    Ok((
        CString::try_from_fmt(fmt!("{}", dev.name()))?,
        CString::try_from_fmt(fmt!("xen-demo.{}", dev.name()))?,
    ))
}

/// Writes counters the way both ends' `stats` files show them: one `name value` line each.
pub(crate) fn write_counters(f: &mut fmt::Formatter<'_>, rows: &[(&str, u64)]) -> fmt::Result {
    for (name, value) in rows {
        writeln!(f, "{name} {value}")?;
    }
    Ok(())
}
