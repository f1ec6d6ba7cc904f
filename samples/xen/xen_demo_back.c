// SPDX-License-Identifier: GPL-2.0-only
/*
 * Xen "demo" split-driver sample: the backend.
 *
 * The backend advertises the protocol version it speaks and waits
 * (InitWait) for the frontend to publish a ring and an event channel.  It
 * then maps the frontend's page, binds the event channel with late EOI and
 * answers each request {id, status, operation} with the same id and
 * operation and status + 1; an unknown operation is answered with
 * XEN_DEMO_STATUS_EOPNOTSUPP.
 *
 * Per device, /sys/kernel/debug/xen-demo.<device>/ holds:
 *   stats  (read)  the counters, one "name value" pair per line
 *   trace  (read/write) "1" logs every request
 *   misbehave (read/write) a hostile mode, to test frontends against a
 *          backend that breaks the protocol (C backend only): one of
 *          "none", "unknown-id", "duplicate-id", "bad-status",
 *          "rsp-prod-ahead", "silent" or "notify-flood"
 *
 * The wire protocol is defined in include/xen/interface/io/demo.h.  The
 * xenstore keys, the state machine, the debugfs interface and the log
 * formats are described in Documentation/rust/xen-demo.rst; the Rust sample
 * samples/rust/rust_xen_demo_back.rs behaves the same way.
 *
 * Nothing the frontend writes is trusted.  Its xenstore keys must be plain
 * decimal numbers in range, or the device is failed with xenbus_dev_fatal()
 * and the driver waits for the next one.  Every request is copied out of
 * the shared page before use, every response is written whole, and a
 * frontend whose request producer index runs more than a ring ahead of the
 * backend is never served again on that ring.  An interrupt handles at most
 * a ring's worth of requests; the rest is left to a work item, so that a
 * frontend producing requests without end cannot hold a CPU in interrupt
 * context.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include <xen/events.h>
#include <xen/grant_table.h>
#include <xen/xen.h>
#include <xen/xenbus.h>
#include <xen/interface/io/demo.h>

#include "xen_demo.h"

/* Event channel ports are below 2^17 (the FIFO ABI's limit). */
#define XEN_DEMO_MAX_PORTS	BIT(17)
/*
 * Requests handled per interrupt, or per run of the work item: a quarter of
 * the ring, so that a frontend filling the ring always takes the deferred
 * path (the kselftest checks that it ran).
 */
#define XEN_DEMO_BUDGET		64
/* How much of an untrusted value to quote in an error message. */
#define XEN_DEMO_QUOTE_MAX	32U
/* Notifications sent per run of the flood work item. */
#define XEN_DEMO_FLOOD_BURST	256

/*
 * The hostile modes (debugfs "misbehave"), each breaking one rule a
 * frontend must not rely on a backend to keep (XSA-391).  The first four
 * break one response and then fall back to XEN_DEMO_MISBEHAVE_NONE, so that
 * a test can show the frontend recovering on its next connection; the last
 * two last until the mode is changed.
 * @XEN_DEMO_MISBEHAVE_UNKNOWN_ID: answer with an id that was never sent
 * @XEN_DEMO_MISBEHAVE_DUPLICATE_ID: answer with the previous response again
 *	(the id of a request already answered), so the request goes unanswered
 * @XEN_DEMO_MISBEHAVE_BAD_STATUS: answer with status + 2
 * @XEN_DEMO_MISBEHAVE_RSP_PROD_AHEAD: after a pass of good responses,
 *	publish a response producer index one beyond the requests
 * @XEN_DEMO_MISBEHAVE_SILENT: take requests off the ring, never answer
 * @XEN_DEMO_MISBEHAVE_NOTIFY_FLOOD: answer correctly, and meanwhile notify
 *	the frontend without end, with no responses, from a work item
 */
enum xen_demo_misbehave {
	XEN_DEMO_MISBEHAVE_NONE,
	XEN_DEMO_MISBEHAVE_UNKNOWN_ID,
	XEN_DEMO_MISBEHAVE_DUPLICATE_ID,
	XEN_DEMO_MISBEHAVE_BAD_STATUS,
	XEN_DEMO_MISBEHAVE_RSP_PROD_AHEAD,
	XEN_DEMO_MISBEHAVE_SILENT,
	XEN_DEMO_MISBEHAVE_NOTIFY_FLOOD,
};

static const char *const xen_demo_misbehave_names[] = {
	[XEN_DEMO_MISBEHAVE_NONE] = "none",
	[XEN_DEMO_MISBEHAVE_UNKNOWN_ID] = "unknown-id",
	[XEN_DEMO_MISBEHAVE_DUPLICATE_ID] = "duplicate-id",
	[XEN_DEMO_MISBEHAVE_BAD_STATUS] = "bad-status",
	[XEN_DEMO_MISBEHAVE_RSP_PROD_AHEAD] = "rsp-prod-ahead",
	[XEN_DEMO_MISBEHAVE_SILENT] = "silent",
	[XEN_DEMO_MISBEHAVE_NOTIFY_FLOOD] = "notify-flood",
};

/**
 * struct xen_demo_back_stats - the counters shown in the stats file
 * @requests: requests answered
 * @bad_requests: requests with an unknown operation
 * @overflows: rings abandoned because the frontend's req_prod ran more
 *	than a ring ahead of the backend
 * @notifications: event channel notifications sent to the frontend
 * @deferred: interrupts that left requests to the work item
 * @hostile: responses broken, withheld or followed by a lying index on
 *	purpose (the misbehave file)
 * @flood_notifications: notifications without responses sent in the
 *	notify-flood mode
 */
struct xen_demo_back_stats {
	u64 requests;
	u64 bad_requests;
	u64 overflows;
	u64 notifications;
	u64 deferred;
	u64 hostile;
	u64 flood_notifications;
};

/**
 * struct xen_demo_back - per-device state of the backend
 * @dev: the xenbus device
 * @debugfs: the device's debugfs directory
 * @ring: the back ring, valid while @sring is set
 * @sring: the frontend's page mapped here, NULL when not mapped
 * @irq: the irq bound to the frontend's event channel, 0 if none
 * @broken: the ring overflowed and is not served again
 * @work: continues serving the ring when an interrupt's budget ran out
 * @trace: log every request
 * @misbehave: the hostile mode, an enum xen_demo_misbehave
 * @last_rsp: the last correct response, for the duplicate-id mode
 * @have_last: @last_rsp is set
 * @flood_work: the notify-flood mode's notifications
 * @lock: protects the members below; taken by the interrupt handler
 * @connected: the ring is mapped, the event channel bound and the backend
 *	Connected
 * @stopping: the connection is being torn down: @work and @flood_work must
 *	not be queued
 * @stats: the counters
 *
 * Connecting and disconnecting happen in probe, otherend_changed and remove,
 * which the xenbus core serialises.  The ring is served by the interrupt
 * handler or by @work, never both at once: the event channel stays masked
 * from the interrupt until xen_irq_lateeoi(), which whoever finishes the
 * work calls.
 */
struct xen_demo_back {
	struct xenbus_device *dev;
	struct dentry *debugfs;
	struct demo_back_ring ring;
	struct demo_sring *sring;
	unsigned int irq;
	bool broken;
	struct work_struct work;
	bool trace;
	int misbehave;
	struct demo_response last_rsp;
	bool have_last;
	struct work_struct flood_work;

	spinlock_t lock; /* protects connected, stopping and stats */
	bool connected;
	bool stopping;
	struct xen_demo_back_stats stats;
};

static const char *xen_demo_back_name(const struct xen_demo_back *be)
{
	return dev_name(&be->dev->dev);
}

/**
 * xen_demo_back_misbehave() - break a response on purpose
 * @be: the device
 * @mode: the hostile mode, not XEN_DEMO_MISBEHAVE_NONE
 * @rsp: the correct response, changed as @mode says
 *
 * Context: the interrupt handler or @be->work, never both at once.
 * Return: true if the response was broken (or is to be withheld).
 */
static bool xen_demo_back_misbehave(struct xen_demo_back *be, int mode,
				    struct demo_response *rsp)
{
	struct demo_response good = *rsp;
	bool broken = true, once = true;

	switch (mode) {
	case XEN_DEMO_MISBEHAVE_UNKNOWN_ID:
		rsp->id ^= 0x80000000U;
		break;
	case XEN_DEMO_MISBEHAVE_DUPLICATE_ID:
		/* The first response is correct: there is nothing to repeat. */
		broken = be->have_last;
		if (broken)
			*rsp = be->last_rsp;
		break;
	case XEN_DEMO_MISBEHAVE_BAD_STATUS:
		rsp->status += 1;
		break;
	case XEN_DEMO_MISBEHAVE_SILENT:
		once = false;
		break;
	default:
		broken = false;
		once = false;
		break;
	}
	be->last_rsp = good;
	be->have_last = true;
	/* Unless the mode was changed meanwhile. */
	if (broken && once)
		cmpxchg(&be->misbehave, mode, XEN_DEMO_MISBEHAVE_NONE);
	return broken;
}

/**
 * xen_demo_back_serve() - answer the requests on the ring
 * @be: the device
 * @more: set if requests are left because the budget ran out
 *
 * Reads the request producer index once per pass and checks it against the
 * consumer index before looking at any request.  Each request is copied out
 * of the shared page, answered with a fully initialised response, and the
 * responses are pushed (notifying the frontend if it asked for it) at the
 * end of each pass.  At most XEN_DEMO_BUDGET requests are answered.
 *
 * Context: the interrupt handler or @be->work, never both at once.
 * Return: the number of requests answered.
 */
static unsigned int xen_demo_back_serve(struct xen_demo_back *be, bool *more)
{
	struct demo_back_ring *ring = &be->ring;
	struct xen_demo_back_stats delta = {};
	const char *name = xen_demo_back_name(be);
	bool trace = READ_ONCE(be->trace);
	int misbehave = XEN_DEMO_MISBEHAVE_NONE; /* Read per request, below. */
	unsigned int done = 0;
	unsigned long flags;
	RING_IDX cons, prod;
	int notify, again;

	*more = false;
	if (be->broken)
		return 0;

	for (;;) {
		prod = READ_ONCE(ring->sring->req_prod);
		virt_rmb(); /* Read the requests only after req_prod. */
		cons = ring->req_cons;

		if (prod - cons > RING_SIZE(ring)) {
			be->broken = true;
			delta.overflows++;
			pr_warn_ratelimited("xen-demo %s: req_prod %u is %u requests ahead of req_cons %u, ring abandoned\n",
					    name, prod, prod - cons, cons);
			break;
		}

		for (; cons != prod && done < XEN_DEMO_BUDGET; cons++, done++) {
			struct demo_request req;
			struct demo_response rsp;

			misbehave = READ_ONCE(be->misbehave);

			RING_COPY_REQUEST(ring, cons, &req);

			/* Every byte of the response is written: no leaks. */
			rsp = (struct demo_response) {
				.id = req.id,
				.operation = req.operation,
			};
			if (req.operation == XEN_DEMO_OP_INCREMENT) {
				rsp.status = req.status + 1;
			} else {
				rsp.status = XEN_DEMO_STATUS_EOPNOTSUPP;
				delta.bad_requests++;
			}
			delta.requests++;

			if (trace)
				pr_info("xen-demo %s: slot %u: id=%u op=%u status=%u -> status=%u\n",
					name, cons & XEN_DEMO_SLOT_MASK, req.id,
					req.operation, req.status, rsp.status);

			if (misbehave != XEN_DEMO_MISBEHAVE_NONE &&
			    xen_demo_back_misbehave(be, misbehave, &rsp))
				delta.hostile++;
			if (misbehave == XEN_DEMO_MISBEHAVE_SILENT)
				continue;

			memcpy(RING_GET_RESPONSE(ring, ring->rsp_prod_pvt),
			       &rsp, sizeof(rsp));
			ring->rsp_prod_pvt++;
		}
		ring->req_cons = cons;

		RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(ring, notify);
		if (misbehave == XEN_DEMO_MISBEHAVE_RSP_PROD_AHEAD && done &&
		    cmpxchg(&be->misbehave, misbehave,
			    XEN_DEMO_MISBEHAVE_NONE) == misbehave) {
			/* One response more than there were requests. */
			virt_wmb();
			WRITE_ONCE(ring->sring->rsp_prod, ring->rsp_prod_pvt + 1);
			delta.hostile++;
			notify = 1;
		}
		if (notify) {
			notify_remote_via_irq(be->irq);
			delta.notifications++;
		}

		if (cons != prod) {
			*more = true;
			break;
		}
		RING_FINAL_CHECK_FOR_REQUESTS(ring, again);
		if (!again)
			break;
		if (done >= XEN_DEMO_BUDGET) {
			*more = true;
			break;
		}
	}

	spin_lock_irqsave(&be->lock, flags);
	be->stats.requests += delta.requests;
	be->stats.bad_requests += delta.bad_requests;
	be->stats.overflows += delta.overflows;
	be->stats.notifications += delta.notifications;
	be->stats.hostile += delta.hostile;
	spin_unlock_irqrestore(&be->lock, flags);

	return done;
}

/**
 * xen_demo_back_continue() - hand the rest of the work to @be->work
 * @be: the device
 *
 * Return: true if the work item was queued and will call xen_irq_lateeoi(),
 * false if the connection is being torn down.
 */
static bool xen_demo_back_continue(struct xen_demo_back *be)
{
	unsigned long flags;
	bool queued;

	spin_lock_irqsave(&be->lock, flags);
	queued = !be->stopping;
	if (queued)
		queue_work(system_dfl_wq, &be->work);
	spin_unlock_irqrestore(&be->lock, flags);
	return queued;
}

static void xen_demo_back_work(struct work_struct *work)
{
	struct xen_demo_back *be = container_of(work, struct xen_demo_back,
						work);
	bool more;

	xen_demo_back_serve(be, &more);
	if (more && xen_demo_back_continue(be))
		return;
	xen_irq_lateeoi(be->irq, 0);
}

/*
 * The notify-flood mode: notifications that carry no responses, in bursts,
 * until the mode changes or the connection is torn down.
 */
static void xen_demo_back_flood(struct work_struct *work)
{
	struct xen_demo_back *be = container_of(work, struct xen_demo_back,
						flood_work);
	unsigned int i;

	for (i = 0; i < XEN_DEMO_FLOOD_BURST; i++)
		notify_remote_via_irq(be->irq);

	spin_lock_irq(&be->lock);
	be->stats.flood_notifications += XEN_DEMO_FLOOD_BURST;
	if (!be->stopping &&
	    READ_ONCE(be->misbehave) == XEN_DEMO_MISBEHAVE_NOTIFY_FLOOD)
		queue_work(system_dfl_wq, &be->flood_work);
	spin_unlock_irq(&be->lock);
}

/**
 * xen_demo_back_interrupt() - the frontend has new requests
 * @irq: the irq bound to the event channel
 * @dev_id: the device
 *
 * Serves the ring, then signals the end of the event with
 * xen_irq_lateeoi(), flagged spurious if there was nothing to do so that
 * an event storm is throttled.  If the budget ran out, the work item
 * continues and signals the end of the event instead.
 *
 * Context: hard interrupt.
 * Return: IRQ_HANDLED.
 */
static irqreturn_t xen_demo_back_interrupt(int irq, void *dev_id)
{
	struct xen_demo_back *be = dev_id;
	unsigned int done;
	bool more;

	done = xen_demo_back_serve(be, &more);
	if (more && xen_demo_back_continue(be)) {
		spin_lock(&be->lock);
		be->stats.deferred++;
		spin_unlock(&be->lock);
		return IRQ_HANDLED;
	}

	xen_irq_lateeoi(irq, done ? 0 : XEN_EOI_FLAG_SPURIOUS);
	return IRQ_HANDLED;
}

/**
 * xen_demo_back_disconnect() - unbind the event channel and unmap the ring
 * @be: the device
 *
 * Stops the work item, unbinds the irq (which closes the event channel and
 * waits for a running handler) and unmaps the frontend's page.  Logs the
 * disconnection if the device was connected.  Does nothing if nothing is
 * set up.
 *
 * Context: process context, serialised with the other connection changes.
 */
static void xen_demo_back_disconnect(struct xen_demo_back *be)
{
	bool was_connected;

	if (!be->sring)
		return;

	spin_lock_irq(&be->lock);
	was_connected = be->connected;
	be->connected = false;
	be->stopping = true;
	spin_unlock_irq(&be->lock);

	cancel_work_sync(&be->work);
	cancel_work_sync(&be->flood_work);
	if (be->irq) {
		unbind_from_irqhandler(be->irq, be);
		be->irq = 0;
	}
	xenbus_unmap_ring_vfree(be->dev, be->sring);
	be->sring = NULL;

	if (was_connected)
		pr_info("xen-demo %s: disconnected\n", xen_demo_back_name(be));
}

/**
 * xen_demo_back_read_key() - read an unsigned number from the frontend
 * @dev: the xenbus device
 * @key: the key under the frontend's directory
 * @val: set to the number
 *
 * Unlike xenbus_scanf(), accepts only a plain decimal number that fits:
 * "12abc", " 12", "+12", "0x12" and "" are errors.
 *
 * Return: 0 on success, or a negative errno reported with xenbus_dev_fatal().
 */
static int xen_demo_back_read_key(struct xenbus_device *dev, const char *key,
				  u32 *val)
{
	unsigned int len;
	char *str;
	int err;

	str = xenbus_read(XBT_NIL, dev->otherend, key, &len);
	if (IS_ERR(str)) {
		err = PTR_ERR(str);
		xenbus_dev_fatal(dev, err, "reading %s/%s", dev->otherend, key);
		return err;
	}

	/* A NUL byte inside the value is not part of a number either. */
	err = strlen(str) == len ? xen_demo_parse_u32(str, val) : -EINVAL;
	if (err)
		xenbus_dev_fatal(dev, err,
				 "%s/%s is not a decimal number that fits: \"%*pE\"%s",
				 dev->otherend, key,
				 (int)min(len, XEN_DEMO_QUOTE_MAX), str,
				 len > XEN_DEMO_QUOTE_MAX ? "..." : "");
	kfree(str);
	return err;
}

/**
 * xen_demo_back_connect() - connect to the ring the frontend published
 * @be: the device, not connected
 *
 * Reads and checks the frontend's ring-ref (at least
 * GNTTAB_NR_RESERVED_ENTRIES), event-channel (1 to below 2^17) and
 * protocol-version (XEN_DEMO_PROTOCOL_VERSION), maps the ring, binds the
 * event channel with late EOI and switches to Connected.
 *
 * Context: process context, serialised with the other connection changes.
 * Return: 0 on success, or a negative errno reported with xenbus_dev_fatal()
 * after everything set up so far has been undone.
 */
static int xen_demo_back_connect(struct xen_demo_back *be)
{
	struct xenbus_device *dev = be->dev;
	unsigned int ring_ref, evtchn, version;
	grant_ref_t gref;
	void *addr;
	int err;

	err = xen_demo_back_read_key(dev, "ring-ref", &ring_ref);
	if (err)
		return err;
	err = xen_demo_back_read_key(dev, "event-channel", &evtchn);
	if (err)
		return err;
	err = xen_demo_back_read_key(dev, "protocol-version", &version);
	if (err)
		return err;

	if (ring_ref < GNTTAB_NR_RESERVED_ENTRIES) {
		xenbus_dev_fatal(dev, -EINVAL,
				 "%s/ring-ref %u is a reserved grant reference (must be at least %u)",
				 dev->otherend, ring_ref,
				 GNTTAB_NR_RESERVED_ENTRIES);
		return -EINVAL;
	}
	/* Port 0 is never a bound event channel. */
	if (!evtchn || evtchn >= XEN_DEMO_MAX_PORTS) {
		xenbus_dev_fatal(dev, -EINVAL,
				 "%s/event-channel %u is out of range (must be 1 to below %lu)",
				 dev->otherend, evtchn, XEN_DEMO_MAX_PORTS);
		return -EINVAL;
	}
	if (version != XEN_DEMO_PROTOCOL_VERSION) {
		xenbus_dev_fatal(dev, -EPROTONOSUPPORT,
				 "%s/protocol-version %u is not supported (expected %u)",
				 dev->otherend, version,
				 XEN_DEMO_PROTOCOL_VERSION);
		return -EPROTONOSUPPORT;
	}

	gref = ring_ref;
	err = xenbus_map_ring_valloc(dev, &gref, 1, &addr);
	if (err) {
		xenbus_dev_fatal(dev, err, "mapping ring-ref %u of domain %d",
				 ring_ref, dev->otherend_id);
		return err;
	}
	be->sring = addr;

	/*
	 * Carry on from the frontend's last response: a fresh ring is all
	 * zeroes, and a frontend that kept its ring (the backend was reloaded)
	 * continues from where it is.  A lying req_prod is an overflow.
	 */
	BACK_RING_ATTACH(&be->ring, be->sring,
			 READ_ONCE(be->sring->rsp_prod), XEN_PAGE_SIZE);
	be->broken = false;
	be->have_last = false;
	spin_lock_irq(&be->lock);
	be->stopping = false;
	spin_unlock_irq(&be->lock);

	err = bind_interdomain_evtchn_to_irqhandler_lateeoi(dev, evtchn,
							    xen_demo_back_interrupt,
							    0, "xen-demo-back",
							    be);
	if (err < 0) {
		xenbus_dev_fatal(dev, err,
				 "binding event-channel %u of domain %d",
				 evtchn, dev->otherend_id);
		goto fail;
	}
	be->irq = err;

	/* Reports its own errors. */
	err = xenbus_switch_state(dev, XenbusStateConnected);
	if (err)
		goto fail;

	spin_lock_irq(&be->lock);
	be->connected = true;
	if (READ_ONCE(be->misbehave) == XEN_DEMO_MISBEHAVE_NOTIFY_FLOOD)
		queue_work(system_dfl_wq, &be->flood_work);
	spin_unlock_irq(&be->lock);
	pr_info("xen-demo %s: connected (ring-ref %u, event-channel %u)\n",
		dev_name(&dev->dev), ring_ref, evtchn);
	return 0;

fail:
	xen_demo_back_disconnect(be);
	return err;
}

/**
 * xen_demo_back_frontend_changed() - follow the frontend's state
 * @dev: the xenbus device
 * @frontend_state: the frontend's new state
 *
 * Initialised or Connected while not connected: connect.  Closing:
 * disconnect and go to Closing.  Closed, or the frontend gone (Unknown):
 * disconnect and go to Closed.  A Closed frontend is ignored while the
 * backend waits (InitWait) without a connection: that is the state a
 * frontend keeps after an earlier backend went away, and it comes back
 * with Initialised when it sees InitWait.  As blkback does, a frontend
 * that starts over (Initialising) while the backend is Closed makes the
 * backend wait for it again (InitWait).
 *
 * Context: the xenwatch thread.
 */
static void xen_demo_back_frontend_changed(struct xenbus_device *dev,
					   enum xenbus_state frontend_state)
{
	struct xen_demo_back *be = dev_get_drvdata(&dev->dev);

	switch (frontend_state) {
	case XenbusStateInitialising:
		if (dev->state == XenbusStateClosed)
			xenbus_switch_state(dev, XenbusStateInitWait);
		break;

	case XenbusStateInitialised:
	case XenbusStateConnected:
		if (!be->sring)
			xen_demo_back_connect(be);
		break;

	case XenbusStateClosing:
		xen_demo_back_disconnect(be);
		xenbus_switch_state(dev, XenbusStateClosing);
		break;

	case XenbusStateClosed:
		if (dev->state == XenbusStateInitWait && !be->sring)
			break;
		fallthrough;
	case XenbusStateUnknown:
		xen_demo_back_disconnect(be);
		xenbus_switch_state(dev, XenbusStateClosed);
		break;

	default:
		break;
	}
}

static int xen_demo_back_stats_show(struct seq_file *m, void *unused)
{
	struct xen_demo_back *be = m->private;
	struct xen_demo_back_stats stats;
	bool connected;

	spin_lock_irq(&be->lock);
	connected = be->connected;
	stats = be->stats;
	spin_unlock_irq(&be->lock);

	seq_printf(m, "connected %u\n", connected);
	seq_printf(m, "requests %llu\n", stats.requests);
	seq_printf(m, "bad_requests %llu\n", stats.bad_requests);
	seq_printf(m, "overflows %llu\n", stats.overflows);
	seq_printf(m, "notifications %llu\n", stats.notifications);
	seq_printf(m, "deferred %llu\n", stats.deferred);
	seq_printf(m, "hostile %llu\n", stats.hostile);
	seq_printf(m, "flood_notifications %llu\n", stats.flood_notifications);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xen_demo_back_stats);

static int xen_demo_misbehave_show(struct seq_file *m, void *unused)
{
	struct xen_demo_back *be = m->private;

	seq_printf(m, "%s\n",
		   xen_demo_misbehave_names[READ_ONCE(be->misbehave)]);
	return 0;
}

/*
 * Sets the hostile mode; it applies from the next request on.  Entering
 * notify-flood while connected starts the flood at once (otherwise on the
 * next connection); leaving it stops the flood.
 */
static ssize_t xen_demo_misbehave_write(struct file *file,
					const char __user *ubuf, size_t count,
					loff_t *ppos)
{
	struct xen_demo_back *be = file_inode(file)->i_private;
	char buf[XEN_DEMO_INPUT_MAX];
	int err, mode;

	err = xen_demo_copy_input(buf, sizeof(buf), ubuf, count);
	if (err)
		return err;
	mode = match_string(xen_demo_misbehave_names,
			    ARRAY_SIZE(xen_demo_misbehave_names), buf);
	if (mode < 0)
		return -EINVAL;

	spin_lock_irq(&be->lock);
	WRITE_ONCE(be->misbehave, mode);
	if (mode == XEN_DEMO_MISBEHAVE_NOTIFY_FLOOD && be->connected &&
	    !be->stopping)
		queue_work(system_dfl_wq, &be->flood_work);
	spin_unlock_irq(&be->lock);
	pr_info("xen-demo %s: misbehave %s\n", xen_demo_back_name(be), buf);
	return count;
}
DEFINE_SHOW_STORE_ATTRIBUTE(xen_demo_misbehave);

static int xen_demo_back_probe(struct xenbus_device *dev,
			       const struct xenbus_device_id *id)
{
	struct xen_demo_back *be;
	char name[64];
	int err;

	be = kzalloc_obj(*be);
	if (!be) {
		xenbus_dev_fatal(dev, -ENOMEM, "allocating device state");
		return -ENOMEM;
	}
	be->dev = dev;
	spin_lock_init(&be->lock);
	INIT_WORK(&be->work, xen_demo_back_work);
	INIT_WORK(&be->flood_work, xen_demo_back_flood);
	dev_set_drvdata(&dev->dev, be);

	err = xenbus_printf(XBT_NIL, dev->nodename, "protocol-version", "%u",
			    XEN_DEMO_PROTOCOL_VERSION);
	if (err) {
		xenbus_dev_fatal(dev, err, "writing %s/protocol-version",
				 dev->nodename);
		goto fail;
	}

	snprintf(name, sizeof(name), "xen-demo.%s", dev_name(&dev->dev));
	be->debugfs = debugfs_create_dir(name, NULL);
	debugfs_create_file("stats", 0400, be->debugfs, be,
			    &xen_demo_back_stats_fops);
	debugfs_create_file("trace", 0600, be->debugfs, &be->trace,
			    &xen_demo_trace_fops);
	debugfs_create_file("misbehave", 0600, be->debugfs, be,
			    &xen_demo_misbehave_fops);

	/* Reports its own errors. */
	err = xenbus_switch_state(dev, XenbusStateInitWait);
	if (err)
		goto fail_debugfs;

	return 0;

fail_debugfs:
	debugfs_remove(be->debugfs);
fail:
	dev_set_drvdata(&dev->dev, NULL);
	kfree(be);
	return err;
}

static void xen_demo_back_remove(struct xenbus_device *dev)
{
	struct xen_demo_back *be = dev_get_drvdata(&dev->dev);

	xen_demo_back_disconnect(be);
	debugfs_remove(be->debugfs);
	dev_set_drvdata(&dev->dev, NULL);
	kfree(be);
}

static const struct xenbus_device_id xen_demo_back_ids[] = {
	{ "demo" },
	{ "" }
};

static struct xenbus_driver xen_demo_back_driver = {
	.name = "xen_demo_back",
	.ids = xen_demo_back_ids,
	.probe = xen_demo_back_probe,
	.otherend_changed = xen_demo_back_frontend_changed,
	.remove = xen_demo_back_remove,
};

static int __init xen_demo_back_init(void)
{
	if (!xen_domain())
		return -ENODEV;
	return xenbus_register_backend(&xen_demo_back_driver);
}
module_init(xen_demo_back_init);

static void __exit xen_demo_back_exit(void)
{
	xenbus_unregister_driver(&xen_demo_back_driver);
}
module_exit(xen_demo_back_exit);

MODULE_DESCRIPTION("Xen demo split-driver sample: backend");
MODULE_LICENSE("GPL");
MODULE_ALIAS("xen-backend:demo");
