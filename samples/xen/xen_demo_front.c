// SPDX-License-Identifier: GPL-2.0-only
/*
 * Xen "demo" split-driver sample: the frontend.
 *
 * The frontend grants one zeroed page holding a demo ring to its backend
 * domain, allocates an event channel for that domain and publishes both in
 * xenstore (ring-ref, event-channel, protocol-version, in one transaction)
 * before it switches to Initialised.  When the backend is Connected, requests
 * {id, status, operation} can be sent through debugfs; every response must
 * carry the id of an outstanding request, its operation and status + 1.
 *
 * Per device, /sys/kernel/debug/xen-demo.<device>/ holds:
 *   send   (write) "N [B [OP]]": send N requests, at most B outstanding
 *   stats  (read)  the counters, one "name value" pair per line
 *   trace  (read/write) "1" logs every request and response
 *   inject (write) "req-prod-overflow": lie about the request producer
 *          index, to test that a backend detects it (C frontend only)
 *
 * The wire protocol is defined in include/xen/interface/io/demo.h.  The
 * xenstore keys, the state machine, the debugfs interface and the log
 * formats are described in Documentation/rust/xen-demo.rst; the Rust sample
 * samples/rust/rust_xen_demo_front.rs behaves the same way.
 *
 * Nothing the backend writes is trusted: responses are copied out of the
 * shared page before use and matched against a table of outstanding
 * requests.  A backend that answers with an id that is not outstanding, the
 * wrong operation or the wrong status, or that produces more responses than
 * there were requests, breaks the ring: the frontend counts and logs it,
 * stops reading the ring and fails every send with -EIO until the next
 * connection (as blkfront and netfront do since XSA-391).  The event channel
 * is bound with late EOI, and an event that brought no response is reported
 * spurious, so that a backend flooding notifications is throttled by the
 * event core.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/ctype.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include <xen/events.h>
#include <xen/grant_table.h>
#include <xen/xen.h>
#include <xen/xenbus.h>
#include <xen/interface/io/demo.h>

#include "xen_demo.h"

/* A request id is (generation << XEN_DEMO_SLOT_BITS) | shadow slot. */
#define XEN_DEMO_SLOT_BITS	8

static_assert(XEN_DEMO_RING_SIZE == 1U << XEN_DEMO_SLOT_BITS);

#define XEN_DEMO_MAX_REQUESTS	1000000
#define XEN_DEMO_MAX_BATCH	4096
#define XEN_DEMO_TIMEOUT	(5 * HZ)

/**
 * struct xen_demo_front_shadow - the frontend's copy of a request
 * @id: the id sent, (@generation << XEN_DEMO_SLOT_BITS) | slot
 * @status: the status sent
 * @operation: the operation sent
 * @generation: incremented each time the slot is freed, so that a response
 *	carrying the id of an earlier use of the slot is recognised as stale
 * @run: the send run the request belongs to
 * @in_use: the request is outstanding
 */
struct xen_demo_front_shadow {
	u32 id;
	u32 status;
	u32 operation;
	u32 generation;
	u64 run;
	bool in_use;
};

/**
 * struct xen_demo_front_stats - the counters shown in the stats file
 * @sent: requests pushed on the ring
 * @completed: responses accepted
 * @bad_responses: responses rejected, and rings abandoned because the
 *	backend produced more responses than there were requests
 * @ring_full_waits: times a send waited for a free slot
 * @notifications: event channel notifications sent to the backend
 * @interrupts: event channel upcalls handled
 * @spurious: upcalls that brought no response
 * @last_run_requests: requests of the last successful send
 * @last_run_ns: time from the first request to the last response of the
 *	last successful send
 */
struct xen_demo_front_stats {
	u64 sent;
	u64 completed;
	u64 bad_responses;
	u64 ring_full_waits;
	u64 notifications;
	u64 interrupts;
	u64 spurious;
	u64 last_run_requests;
	u64 last_run_ns;
};

/**
 * struct xen_demo_front - per-device state of the frontend
 * @dev: the xenbus device
 * @debugfs: the device's debugfs directory
 * @send_lock: serialises the writers of the send file
 * @wq: woken whenever @progress changes
 * @up: the keys are published and the frontend went to Initialised; only
 *	used by the connection changes
 * @trace: log every request and response
 * @lock: protects the members below; taken by the interrupt handler
 * @ring: the front ring, valid while @live
 * @sring: the granted page, NULL when there is none
 * @ring_ref: the grant reference of @sring
 * @evtchn: the event channel allocated for the backend, 0 if none
 * @irq: the irq bound to @evtchn, 0 if none
 * @live: the ring and the irq are set up; the handler may read responses
 * @connected: both ends are Connected; requests may be sent
 * @broken: the backend broke the protocol (a bad response, or more
 *	responses than there were requests); the ring is not read again until
 *	the next connection
 * @epoch: incremented on every connection and disconnection
 * @progress: incremented on every accepted response, on disconnection and
 *	when the ring breaks
 * @shadow: the requests, indexed by slot
 * @free_slots: stack of the free slots of @shadow
 * @nr_free: number of entries on @free_slots
 * @run: number of the current (or last) send run
 * @run_sent: requests pushed by the current run
 * @run_completed: responses accepted for the current run
 * @stats: the counters
 *
 * Connecting and tearing down happen in probe, otherend_changed and remove,
 * which the xenbus core serialises.  Senders only touch the ring with @lock
 * held and @connected set, and the teardown clears @live and @connected under
 * @lock before it unbinds the irq and ends access to the page.
 */
struct xen_demo_front {
	struct xenbus_device *dev;
	struct dentry *debugfs;
	struct mutex send_lock; /* serialises the senders */
	wait_queue_head_t wq;
	bool up;
	bool trace;

	spinlock_t lock; /* protects the ring, the shadow table and the stats */
	struct demo_front_ring ring;
	struct demo_sring *sring;
	grant_ref_t ring_ref;
	evtchn_port_t evtchn;
	unsigned int irq;
	bool live;
	bool connected;
	bool broken;
	unsigned long epoch;
	unsigned long progress;
	struct xen_demo_front_shadow shadow[XEN_DEMO_RING_SIZE];
	u8 free_slots[XEN_DEMO_RING_SIZE];
	unsigned int nr_free;
	u64 run;
	u32 run_sent;
	u32 run_completed;
	struct xen_demo_front_stats stats;
};

static const char *xen_demo_front_name(const struct xen_demo_front *info)
{
	return dev_name(&info->dev->dev);
}

/* Record progress; the caller wakes the senders up. */
static void xen_demo_front_progress(struct xen_demo_front *info)
{
	lockdep_assert_held(&info->lock);

	WRITE_ONCE(info->progress, info->progress + 1);
}

/* Forget every outstanding request; slot 0 is handed out first. */
static void xen_demo_front_reset_shadow(struct xen_demo_front *info)
{
	unsigned int i;

	lockdep_assert_held(&info->lock);

	for (i = 0; i < XEN_DEMO_RING_SIZE; i++) {
		info->shadow[i].in_use = false;
		info->free_slots[i] = XEN_DEMO_RING_SIZE - 1 - i;
	}
	info->nr_free = XEN_DEMO_RING_SIZE;
}

/**
 * xen_demo_front_queue() - put one request on the ring
 * @info: the device
 * @op: the operation to request
 *
 * Takes a free shadow slot, records the request in it and writes it at the
 * ring's private producer index.  The caller pushes the requests.
 *
 * Context: @info->lock held, @info->connected set, a free slot and a free
 * ring entry available.
 */
static void xen_demo_front_queue(struct xen_demo_front *info, u32 op)
{
	RING_IDX idx = info->ring.req_prod_pvt;
	struct xen_demo_front_shadow *sh;
	struct demo_request *req;
	unsigned int slot;

	lockdep_assert_held(&info->lock);

	slot = info->free_slots[--info->nr_free];
	sh = &info->shadow[slot];
	sh->id = (sh->generation << XEN_DEMO_SLOT_BITS) | slot;
	sh->status = sh->id * 10;
	sh->operation = op;
	sh->run = info->run;
	sh->in_use = true;

	req = RING_GET_REQUEST(&info->ring, idx);
	req->id = sh->id;
	req->status = sh->status;
	req->operation = sh->operation;
	info->ring.req_prod_pvt = idx + 1;

	info->stats.sent++;
	info->run_sent++;

	if (READ_ONCE(info->trace))
		pr_info("xen-demo %s: sent slot %u: id=%u op=%u status=%u\n",
			xen_demo_front_name(info), idx & XEN_DEMO_SLOT_MASK,
			sh->id, sh->operation, sh->status);
}

/**
 * xen_demo_front_complete() - match a response with its request
 * @info: the device
 * @rsp: the response, copied out of the shared page
 *
 * A response is accepted if its id names an outstanding request, it echoes
 * the request's operation and its status is the request's status + 1 (for
 * XEN_DEMO_OP_INCREMENT) or XEN_DEMO_STATUS_EOPNOTSUPP (for any other
 * operation).  An accepted response frees the request's slot.
 *
 * Context: @info->lock held.
 * Return: true if the response was accepted.
 */
static bool xen_demo_front_complete(struct xen_demo_front *info,
				    const struct demo_response *rsp)
{
	struct xen_demo_front_shadow *sh;
	unsigned int slot;
	u32 expected;

	lockdep_assert_held(&info->lock);

	slot = rsp->id & XEN_DEMO_SLOT_MASK;
	sh = &info->shadow[slot];
	if (!sh->in_use || sh->id != rsp->id || sh->operation != rsp->operation)
		return false;

	if (sh->operation == XEN_DEMO_OP_INCREMENT)
		expected = sh->status + 1;
	else
		expected = XEN_DEMO_STATUS_EOPNOTSUPP;
	if (rsp->status != expected)
		return false;

	sh->in_use = false;
	sh->generation++;
	info->free_slots[info->nr_free++] = slot;

	info->stats.completed++;
	xen_demo_front_progress(info);
	if (sh->run == info->run)
		info->run_completed++;
	return true;
}

/**
 * xen_demo_front_interrupt() - consume the backend's responses
 * @irq: the irq bound to the event channel
 * @dev_id: the device
 *
 * Reads the response producer index once per pass and checks it before
 * looking at any response: a backend can never have answered more requests
 * than were sent, so an index beyond that marks the ring broken.  Each
 * response is copied out of the shared page, then validated; the first bad
 * one marks the ring broken too.  Ends the event with xen_irq_lateeoi(),
 * flagged spurious if no response was taken off the ring.
 *
 * Context: hard interrupt.
 * Return: IRQ_HANDLED.
 */
static irqreturn_t xen_demo_front_interrupt(int irq, void *dev_id)
{
	struct xen_demo_front *info = dev_id;
	const char *name = xen_demo_front_name(info);
	unsigned long progress, flags;
	unsigned int taken = 0;
	RING_IDX cons, prod;
	int more = 0;

	spin_lock_irqsave(&info->lock, flags);
	info->stats.interrupts++;
	if (!info->live || info->broken)
		goto out;

	progress = info->progress;
	do {
		prod = READ_ONCE(info->ring.sring->rsp_prod);
		virt_rmb(); /* Read the responses only after rsp_prod. */
		cons = info->ring.rsp_cons;

		if (RING_RESPONSE_PROD_OVERFLOW(&info->ring, prod) ||
		    prod - cons > info->ring.req_prod_pvt - cons) {
			info->broken = true;
			info->stats.bad_responses++;
			xen_demo_front_progress(info);
			pr_warn_ratelimited("xen-demo %s: backend produced %u responses for %u requests, ring abandoned\n",
					    name, prod - cons,
					    info->ring.req_prod_pvt - cons);
			break;
		}

		for (; cons != prod; cons++) {
			struct demo_response rsp;

			RING_COPY_RESPONSE(&info->ring, cons, &rsp);
			taken++;
			if (READ_ONCE(info->trace))
				pr_info("xen-demo %s: received slot %u: id=%u op=%u status=%u\n",
					name, cons & XEN_DEMO_SLOT_MASK,
					rsp.id, rsp.operation, rsp.status);

			if (!xen_demo_front_complete(info, &rsp)) {
				info->broken = true;
				info->stats.bad_responses++;
				xen_demo_front_progress(info);
				pr_warn_ratelimited("xen-demo %s: bad response: id=%u op=%u status=%u, ring abandoned\n",
						    name, rsp.id, rsp.operation,
						    rsp.status);
				break;
			}
		}
		info->ring.rsp_cons = cons;
		if (info->broken)
			break;

		RING_FINAL_CHECK_FOR_RESPONSES(&info->ring, more);
	} while (more);

	if (info->progress != progress)
		wake_up(&info->wq);
out:
	if (!taken)
		info->stats.spurious++;
	spin_unlock_irqrestore(&info->lock, flags);
	xen_irq_lateeoi(irq, taken ? 0 : XEN_EOI_FLAG_SPURIOUS);
	return IRQ_HANDLED;
}

/**
 * xen_demo_front_teardown() - drop the ring and the event channel
 * @info: the device
 *
 * Stops senders and the interrupt handler from using the ring, unbinds the
 * irq (which closes the event channel and waits for a running handler), then
 * ends the backend's access to the page and frees it.  If the backend still
 * maps the page, the grant table code frees it once the backend unmaps it.
 * Does nothing for the parts that are not set up.  Logs the disconnection if
 * the ring had been offered to the backend.
 *
 * Context: process context, serialised with the other connection changes.
 */
static void xen_demo_front_teardown(struct xen_demo_front *info)
{
	bool was_up;
	void *addr;

	was_up = info->up;
	info->up = false;

	spin_lock_irq(&info->lock);
	info->connected = false;
	info->live = false;
	info->epoch++;
	xen_demo_front_progress(info);
	spin_unlock_irq(&info->lock);
	wake_up_all(&info->wq);

	if (info->irq) {
		unbind_from_irqhandler(info->irq, info);
		info->irq = 0;
		info->evtchn = 0;
	} else if (info->evtchn) {
		xenbus_free_evtchn(info->dev, info->evtchn);
		info->evtchn = 0;
	}

	if (info->sring) {
		addr = info->sring;
		info->sring = NULL;
		xenbus_teardown_ring(&addr, 1, &info->ring_ref);
	}

	if (was_up)
		pr_info("xen-demo %s: disconnected\n", xen_demo_front_name(info));
}

/**
 * xen_demo_front_publish() - write the frontend's keys to xenstore
 * @info: the device, with its ring and event channel set up
 *
 * Writes ring-ref, event-channel and protocol-version in one transaction,
 * which is retried when xenstore answers -EAGAIN.
 *
 * Return: 0 on success, or a negative errno reported with xenbus_dev_fatal().
 */
static int xen_demo_front_publish(struct xen_demo_front *info)
{
	struct xenbus_device *dev = info->dev;
	const struct {
		const char *key;
		unsigned int value;
	} keys[] = {
		{ "ring-ref", info->ring_ref },
		{ "event-channel", info->evtchn },
		{ "protocol-version", XEN_DEMO_PROTOCOL_VERSION },
	};
	struct xenbus_transaction xbt;
	unsigned int i;
	int err;

	do {
		err = xenbus_transaction_start(&xbt);
		if (err) {
			xenbus_dev_fatal(dev, err, "starting transaction");
			return err;
		}

		for (i = 0; i < ARRAY_SIZE(keys); i++) {
			err = xenbus_printf(xbt, dev->nodename, keys[i].key,
					    "%u", keys[i].value);
			if (err) {
				xenbus_transaction_end(xbt, true);
				xenbus_dev_fatal(dev, err, "writing %s/%s",
						 dev->nodename, keys[i].key);
				return err;
			}
		}

		err = xenbus_transaction_end(xbt, false);
	} while (err == -EAGAIN);

	if (err)
		xenbus_dev_fatal(dev, err, "completing transaction");
	return err;
}

/**
 * xen_demo_front_connect() - set up a fresh ring and event channel
 * @info: the device, with nothing set up
 *
 * Grants a zeroed page to the backend domain (named by the frontend's
 * backend-id key), allocates an event channel for that domain and binds it,
 * publishes ring-ref, event-channel and protocol-version, then switches to
 * Initialised.
 *
 * Context: process context, serialised with the other connection changes.
 * Return: 0 on success, or a negative errno reported with xenbus_dev_fatal()
 * after everything set up so far has been undone.
 */
static int xen_demo_front_connect(struct xen_demo_front *info)
{
	struct xenbus_device *dev = info->dev;
	evtchn_port_t evtchn;
	void *addr;
	int err;

	err = xenbus_setup_ring(dev, GFP_KERNEL, &addr, 1, &info->ring_ref);
	if (err) {
		xenbus_dev_fatal(dev, err, "granting the ring page to domain %d",
				 dev->otherend_id);
		return err;
	}
	info->sring = addr;

	/* Reports its own errors. */
	err = xenbus_alloc_evtchn(dev, &evtchn);
	if (err)
		goto fail;
	info->evtchn = evtchn;

	err = bind_evtchn_to_irqhandler_lateeoi(evtchn, xen_demo_front_interrupt,
						0, "xen-demo-front", info);
	if (err < 0) {
		xenbus_dev_fatal(dev, err, "binding event channel %u", evtchn);
		goto fail;
	}
	info->irq = err;

	spin_lock_irq(&info->lock);
	XEN_FRONT_RING_INIT(&info->ring, info->sring, XEN_PAGE_SIZE);
	xen_demo_front_reset_shadow(info);
	info->broken = false;
	info->live = true;
	info->epoch++;
	spin_unlock_irq(&info->lock);

	err = xen_demo_front_publish(info);
	if (err)
		goto fail;

	/* Reports its own errors. */
	err = xenbus_switch_state(dev, XenbusStateInitialised);
	if (err)
		goto fail;

	info->up = true;
	return 0;

fail:
	xen_demo_front_teardown(info);
	return err;
}

/**
 * xen_demo_front_run() - send requests and wait for their responses
 * @info: the device
 * @n: how many requests to send
 * @batch: how many may be outstanding at once
 * @op: the operation to request
 *
 * Keeps up to @batch requests of this run outstanding, limited by the free
 * ring entries and shadow slots, until @n responses have been accepted.
 * Each wait for progress is limited to XEN_DEMO_TIMEOUT.
 *
 * Context: process context, @info->send_lock held.
 * Return: 0 on success; -ENOTCONN if the device is not connected or
 * disconnects, -EIO if the backend breaks the ring, -ETIMEDOUT if no
 * response arrives in time, -EINTR if a signal interrupts the wait.
 */
static int xen_demo_front_run(struct xen_demo_front *info, u32 n, u32 batch,
			      u32 op)
{
	unsigned long epoch, progress;
	bool started = false;
	u64 start_ns = 0;
	int err = 0;
	long left;
	int notify;

	spin_lock_irq(&info->lock);
	if (!info->connected) {
		err = -ENOTCONN;
		goto out;
	}
	if (info->broken) {
		err = -EIO;
		goto out;
	}
	epoch = info->epoch;
	info->run++;
	info->run_sent = 0;
	info->run_completed = 0;

	for (;;) {
		bool pushed = false;

		while (info->run_sent < n &&
		       info->run_sent - info->run_completed < batch &&
		       !RING_FULL(&info->ring) && info->nr_free) {
			if (!started) {
				start_ns = ktime_get_ns();
				started = true;
			}
			xen_demo_front_queue(info, op);
			pushed = true;
		}
		if (pushed) {
			RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&info->ring, notify);
			if (notify) {
				notify_remote_via_irq(info->irq);
				info->stats.notifications++;
			}
		}

		if (info->run_completed == n) {
			info->stats.last_run_requests = n;
			/* As the Rust sample: until the sender sees the end. */
			info->stats.last_run_ns = ktime_get_ns() - start_ns;
			break;
		}

		/* More are wanted and allowed, but the ring has no room. */
		if (info->run_sent < n &&
		    info->run_sent - info->run_completed < batch)
			info->stats.ring_full_waits++;

		progress = info->progress;
		spin_unlock_irq(&info->lock);

		left = wait_event_interruptible_timeout(info->wq,
							READ_ONCE(info->progress) != progress,
							XEN_DEMO_TIMEOUT);

		spin_lock_irq(&info->lock);
		if (left < 0) {
			/* Do not restart: that would send everything again. */
			err = -EINTR;
			break;
		}
		if (!info->connected || info->epoch != epoch) {
			err = -ENOTCONN;
			break;
		}
		if (info->broken) {
			err = -EIO;
			break;
		}
		if (!left) {
			err = -ETIMEDOUT;
			break;
		}
	}
out:
	spin_unlock_irq(&info->lock);
	return err;
}

/**
 * xen_demo_front_parse_send() - parse the send command "N [B [OP]]"
 * @buf: the command; modified
 * @n: set to N, 1 to XEN_DEMO_MAX_REQUESTS
 * @batch: set to B, 1 to XEN_DEMO_MAX_BATCH, default 1
 * @op: set to OP, default XEN_DEMO_OP_INCREMENT
 *
 * The numbers are decimal and separated by spaces or tabs.
 *
 * Return: 0 on success, -EINVAL on anything else.
 */
static int xen_demo_front_parse_send(char *buf, u32 *n, u32 *batch, u32 *op)
{
	u32 vals[3] = { 0, 1, XEN_DEMO_OP_INCREMENT };
	unsigned int nr = 0;
	char *tok;

	while ((tok = strsep(&buf, " \t"))) {
		if (!*tok)
			continue;
		if (nr == ARRAY_SIZE(vals) || xen_demo_parse_u32(tok, &vals[nr]))
			return -EINVAL;
		nr++;
	}

	if (!nr || vals[0] < 1 || vals[0] > XEN_DEMO_MAX_REQUESTS ||
	    vals[1] < 1 || vals[1] > XEN_DEMO_MAX_BATCH)
		return -EINVAL;

	*n = vals[0];
	*batch = vals[1];
	*op = vals[2];
	return 0;
}

static ssize_t xen_demo_front_send_write(struct file *file,
					 const char __user *ubuf, size_t count,
					 loff_t *ppos)
{
	struct xen_demo_front *info = file->private_data;
	char buf[XEN_DEMO_INPUT_MAX];
	u32 n, batch, op;
	int err;

	err = xen_demo_copy_input(buf, sizeof(buf), ubuf, count);
	if (err)
		return err;
	err = xen_demo_front_parse_send(buf, &n, &batch, &op);
	if (err)
		return err;

	if (mutex_lock_interruptible(&info->send_lock))
		return -EINTR;
	err = xen_demo_front_run(info, n, batch, op);
	mutex_unlock(&info->send_lock);

	return err ? err : count;
}

static const struct file_operations xen_demo_front_send_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = xen_demo_front_send_write,
};

static int xen_demo_front_stats_show(struct seq_file *m, void *unused)
{
	struct xen_demo_front *info = m->private;
	struct xen_demo_front_stats stats;
	bool connected;

	spin_lock_irq(&info->lock);
	connected = info->connected;
	stats = info->stats;
	spin_unlock_irq(&info->lock);

	seq_printf(m, "connected %u\n", connected);
	seq_printf(m, "sent %llu\n", stats.sent);
	seq_printf(m, "completed %llu\n", stats.completed);
	seq_printf(m, "bad_responses %llu\n", stats.bad_responses);
	seq_printf(m, "ring_full_waits %llu\n", stats.ring_full_waits);
	seq_printf(m, "notifications %llu\n", stats.notifications);
	seq_printf(m, "interrupts %llu\n", stats.interrupts);
	seq_printf(m, "spurious %llu\n", stats.spurious);
	seq_printf(m, "last_run_requests %llu\n", stats.last_run_requests);
	seq_printf(m, "last_run_ns %llu\n", stats.last_run_ns);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(xen_demo_front_stats);

/**
 * xen_demo_front_inject_write() - misbehave on purpose, to test backends
 * @file: the inject file
 * @ubuf: the command: "req-prod-overflow"
 * @count: its length
 * @ppos: unused
 *
 * "req-prod-overflow" publishes a request producer index a ring and a half
 * ahead of the requests really produced, as a lying frontend would, and
 * notifies the backend.  A correct backend counts an overflow and stops
 * serving the ring; the frontend has to reconnect to talk to it again.
 *
 * Return: @count, -EINVAL for another command, -ENOTCONN when not connected.
 */
static ssize_t xen_demo_front_inject_write(struct file *file,
					   const char __user *ubuf,
					   size_t count, loff_t *ppos)
{
	struct xen_demo_front *info = file->private_data;
	char buf[XEN_DEMO_INPUT_MAX];
	int err;

	err = xen_demo_copy_input(buf, sizeof(buf), ubuf, count);
	if (err)
		return err;
	if (strcmp(buf, "req-prod-overflow"))
		return -EINVAL;

	spin_lock_irq(&info->lock);
	if (!info->connected) {
		spin_unlock_irq(&info->lock);
		return -ENOTCONN;
	}
	/* Ordered as RING_PUSH_REQUESTS orders a real producer update. */
	virt_wmb();
	WRITE_ONCE(info->ring.sring->req_prod,
		   info->ring.req_prod_pvt + XEN_DEMO_RING_SIZE +
		   XEN_DEMO_RING_SIZE / 2);
	notify_remote_via_irq(info->irq);
	spin_unlock_irq(&info->lock);
	return count;
}

static const struct file_operations xen_demo_front_inject_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = xen_demo_front_inject_write,
};

/**
 * xen_demo_front_backend_changed() - follow the backend's state
 * @dev: the xenbus device
 * @backend_state: the backend's new state
 *
 * InitWait starts the handshake: the frontend sets up a fresh ring and
 * event channel and offers them (Initialised), unless an offer is already
 * out; seen while Connected, Closing or Closed it means the backend started
 * over.  Connected completes the handshake.  Closing and Closed tear the
 * connection down.  A Closed backend is ignored while the frontend is
 * Initialising or Initialised: it is left over from an earlier connection
 * and answers the new state with InitWait, Connected or Closing.
 *
 * Context: the xenwatch thread.
 */
static void xen_demo_front_backend_changed(struct xenbus_device *dev,
					   enum xenbus_state backend_state)
{
	struct xen_demo_front *info = dev_get_drvdata(&dev->dev);

	switch (backend_state) {
	case XenbusStateInitWait:
		/* Our offer stands until the backend answers it. */
		if (dev->state == XenbusStateInitialised)
			break;
		xen_demo_front_teardown(info);
		xen_demo_front_connect(info);
		break;

	case XenbusStateConnected:
		if (dev->state != XenbusStateInitialised)
			break;
		if (xenbus_switch_state(dev, XenbusStateConnected))
			break;
		spin_lock_irq(&info->lock);
		info->connected = true;
		spin_unlock_irq(&info->lock);
		pr_info("xen-demo %s: connected (ring-ref %u, event-channel %u)\n",
			dev_name(&dev->dev), info->ring_ref, info->evtchn);
		break;

	case XenbusStateClosing:
		xen_demo_front_teardown(info);
		xenbus_frontend_closed(dev);
		break;

	case XenbusStateClosed:
		/* A backend still Closed from before: it restarts for our new offer. */
		if (dev->state == XenbusStateInitialised ||
		    dev->state == XenbusStateInitialising)
			break;
		xen_demo_front_teardown(info);
		if (dev->state != XenbusStateClosed)
			xenbus_switch_state(dev, XenbusStateClosed);
		break;

	default:
		break;
	}
}

static int xen_demo_front_probe(struct xenbus_device *dev,
				const struct xenbus_device_id *id)
{
	struct xen_demo_front *info;
	char name[64];
	int err;

	info = kzalloc_obj(*info);
	if (!info) {
		xenbus_dev_fatal(dev, -ENOMEM, "allocating device state");
		return -ENOMEM;
	}
	info->dev = dev;
	mutex_init(&info->send_lock);
	init_waitqueue_head(&info->wq);
	spin_lock_init(&info->lock);
	info->ring_ref = INVALID_GRANT_REF;
	dev_set_drvdata(&dev->dev, info);

	snprintf(name, sizeof(name), "xen-demo.%s", dev_name(&dev->dev));
	info->debugfs = debugfs_create_dir(name, NULL);
	debugfs_create_file("send", 0200, info->debugfs, info,
			    &xen_demo_front_send_fops);
	debugfs_create_file("stats", 0400, info->debugfs, info,
			    &xen_demo_front_stats_fops);
	debugfs_create_file("trace", 0600, info->debugfs, &info->trace,
			    &xen_demo_trace_fops);
	debugfs_create_file("inject", 0200, info->debugfs, info,
			    &xen_demo_front_inject_fops);

	/*
	 * Connect when the backend is in InitWait (backend_changed), not here:
	 * probe can run in insmod's context while the xenwatch thread still
	 * handles the events that created the device, and xenbus takes a state
	 * written in between for a device reset and removes the device.  A
	 * device whose driver was reloaded is still Closed: going back to
	 * Initialising tells the backend, left Closed too, to start over.
	 */
	err = xenbus_switch_state(dev, XenbusStateInitialising);
	if (err) {
		/* xenbus_switch_state() reported it. */
		debugfs_remove(info->debugfs);
		dev_set_drvdata(&dev->dev, NULL);
		mutex_destroy(&info->send_lock);
		kfree(info);
	}
	return err;
}

static void xen_demo_front_remove(struct xenbus_device *dev)
{
	struct xen_demo_front *info = dev_get_drvdata(&dev->dev);

	/* Fails a send in progress, so that removing debugfs does not wait. */
	xen_demo_front_teardown(info);
	debugfs_remove(info->debugfs);
	dev_set_drvdata(&dev->dev, NULL);
	mutex_destroy(&info->send_lock);
	kfree(info);
}

/*
 * A restored domain may run on another host, with a new backend that never
 * saw our ring: drop the old one (its event channel died with the old
 * domain) and offer a new one when the backend is in InitWait, as blkfront
 * does.  xenbus has already set our state back to Initialising.
 */
static int xen_demo_front_resume(struct xenbus_device *dev)
{
	struct xen_demo_front *info = dev_get_drvdata(&dev->dev);

	xen_demo_front_teardown(info);
	pr_info("xen-demo %s: resumed\n", dev_name(&dev->dev));
	return 0;
}

static const struct xenbus_device_id xen_demo_front_ids[] = {
	{ "demo" },
	{ "" }
};

static struct xenbus_driver xen_demo_front_driver = {
	.name = "xen_demo_front",
	.ids = xen_demo_front_ids,
	.probe = xen_demo_front_probe,
	.otherend_changed = xen_demo_front_backend_changed,
	.remove = xen_demo_front_remove,
	.resume = xen_demo_front_resume,
};

static int __init xen_demo_front_init(void)
{
	if (!xen_domain())
		return -ENODEV;
	return xenbus_register_frontend(&xen_demo_front_driver);
}
module_init(xen_demo_front_init);

static void __exit xen_demo_front_exit(void)
{
	xenbus_unregister_driver(&xen_demo_front_driver);
}
module_exit(xen_demo_front_exit);

MODULE_DESCRIPTION("Xen demo split-driver sample: frontend");
MODULE_LICENSE("GPL");
MODULE_ALIAS("xen:demo");
