/* SPDX-License-Identifier: MIT */
/******************************************************************************
 * demo.h
 *
 * The "demo" split-driver protocol: a minimal request/response exchange over
 * one granted page, used by the Rust and C sample drivers (samples/rust and
 * samples/xen) to show and test the xenbus lifecycle, grants, event channels
 * and shared rings.
 *
 * The frontend sends requests {id, status, operation}; the backend answers
 * each with the same id and operation and status + 1.
 */

#ifndef __XEN_PUBLIC_IO_DEMO_H__
#define __XEN_PUBLIC_IO_DEMO_H__

#include <xen/interface/io/ring.h>
#include <xen/interface/grant_table.h>

/*
 * Device type (the xenstore directory name under device/ and backend/):
 *   "demo"
 *
 * Backend xenstore keys (backend/demo/<frontend domid>/<devid>/):
 *   protocol-version   Written by the backend before it enters InitWait:
 *                      the protocol version it speaks (decimal).
 *   (plus the generic frontend, frontend-id, online and state keys)
 *
 * Frontend xenstore keys (device/demo/<devid>/), written by the frontend in
 * one transaction before it enters Initialised:
 *   ring-ref           The grant reference (decimal) of the one page that
 *                      holds the shared ring, granted read-write to the
 *                      backend domain (read from the frontend's backend-id
 *                      key, never assumed to be 0).
 *   event-channel      The unbound event channel port (decimal) allocated
 *                      for the backend domain.
 *   protocol-version   The protocol version the frontend speaks (decimal).
 *                      The backend refuses any other than
 *                      XEN_DEMO_PROTOCOL_VERSION.
 *   (plus the generic backend, backend-id and state keys)
 *
 * The backend treats every frontend key as untrusted. A missing key, a value
 * that is not a decimal number, a number out of range, a grant it cannot map
 * or a port it cannot bind is reported with xenbus_dev_fatal() (the message
 * appears in error/backend/demo/... and the backend goes to Closing); the
 * backend driver stays loaded and accepts the next good device.
 *
 * State machine (XenbusState*):
 *
 *   Frontend                          Backend
 *   Initialising                      Initialising
 *                                     probe: write protocol-version
 *                                     -> InitWait
 *   backend in InitWait: grant the ring page, allocate the event
 *   channel, write ring-ref, event-channel and protocol-version in one
 *   transaction -> Initialised
 *                                     read and check the keys, map the
 *                                     ring, bind the event channel
 *                                     -> Connected
 *   backend Connected -> Connected
 *
 *   Either end going to Closing or Closed makes the other end tear down its
 *   ring and event channel and go to Closed. A frontend that is Closed and
 *   sees the backend come back (InitWait) sets up a fresh ring and channel
 *   and goes to Initialised again: the backend sees a new connection. A
 *   frontend starting over writes Initialising, and a Closed backend
 *   answers with InitWait.
 *
 * Ring: one page, DEFINE_RING_TYPES(demo, ...). With 12-byte entries that is
 * 256 slots. The frontend has at most 256 requests outstanding; a backend
 * that sees req_prod run more than a ring's worth ahead of its consumer
 * index stops serving the ring (an overflow).
 *
 * Notifications use the standard ring hold-off: RING_PUSH_REQUESTS_AND_CHECK_NOTIFY
 * / RING_FINAL_CHECK_FOR_RESPONSES on the frontend,
 * RING_PUSH_RESPONSES_AND_CHECK_NOTIFY / RING_FINAL_CHECK_FOR_REQUESTS on the
 * backend.
 */

#define XEN_DEMO_PROTOCOL_VERSION	1

/*
 * Operations. The only one is "increment": the response carries the
 * request's status + 1 (modulo 2^32). A request with any other operation is
 * answered with status XEN_DEMO_STATUS_EOPNOTSUPP and counted as a bad
 * request by the backend.
 */
#define XEN_DEMO_OP_INCREMENT		0
#define XEN_DEMO_STATUS_EOPNOTSUPP	0xffffffffU

struct demo_request {
	uint32_t id;		/* private frontend value, echoed in the response */
	uint32_t status;	/* the value to increment */
	uint32_t operation;	/* XEN_DEMO_OP_* */
};

struct demo_response {
	uint32_t id;		/* copied from the request */
	uint32_t status;	/* request status + 1, or XEN_DEMO_STATUS_* */
	uint32_t operation;	/* copied from the request */
};

DEFINE_RING_TYPES(demo, struct demo_request, struct demo_response);

#define XEN_DEMO_RING_SIZE __CONST_RING_SIZE(demo, XEN_PAGE_SIZE)

#endif /* __XEN_PUBLIC_IO_DEMO_H__ */
