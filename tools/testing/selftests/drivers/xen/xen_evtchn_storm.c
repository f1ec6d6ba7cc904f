// SPDX-License-Identifier: GPL-2.0
/*
 * xen_evtchn_storm: an event channel storm between two domains, through /dev/xen/evtchn, for
 * xen_pv.sh.
 *
 *   xen_evtchn_storm listen DOMID SECONDS
 *	The victim. Allocates a port for DOMID to bind and prints "port N", then takes the events
 *	on it, unmasking each at once, for SECONDS after the first. Meanwhile it sends itself a
 *	probe every PROBE_MS on a second, looped-back port and times how long the probe takes to
 *	come back: the event channel core must keep handling other ports during the storm. With
 *	two or more CPUs it also moves the storm's IRQ (its /proc/irq/N/smp_affinity) from CPU 0
 *	to CPU 1 and back, and checks in /proc/interrupts that the events follow it.
 *	Prints "storm: ..." lines; exits 1 if no storm came, a probe was lost, or the events did
 *	not follow their IRQ.
 *
 *   xen_evtchn_storm flood DOMID PORT SECONDS
 *	The flooder. Binds DOMID's PORT and notifies it in a loop from one thread per online CPU,
 *	each pinned to its CPU, for SECONDS or until SIGTERM. Prints "flood: N notifications".
 *
 *   xen_evtchn_storm self SECONDS
 *	The bench's storm, inside one domain: a port looped back to this domain, flooded from one
 *	thread per online CPU while the main thread takes the events and unmasks the port at once,
 *	for SECONDS. Prints "# bench: storm=self events=N ns=T", the events taken and the time
 *	(make bench compares the Rust and the C event channel ABIs with it).
 *
 * The limits are a hang detector, not a performance test: PROBE_LIMIT_MS (5 s) is orders of
 * magnitude above a probe's normal time even under QEMU TCG.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
/* <xen/evtchn.h> uses domid_t without defining it. */
typedef uint16_t domid_t;
#include <xen/evtchn.h>

#define DOMID_SELF 0x7FF0U
#define PROBE_MS 50
#define PROBE_LIMIT_MS 5000
#define FIRST_EVENT_LIMIT_MS 120000
#define MAX_CPUS 64

static const char *prog = "xen_evtchn_storm";

static void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	exit(1);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static unsigned int parse(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v > 0xFFFFFFFFUL) {
		fprintf(stderr, "%s: bad %s: %s\n", prog, what, s);
		exit(2);
	}
	return v;
}

/* --- The victim ---------------------------------------------------------------------------- */

/*
 * The storm IRQ's count on each CPU from /proc/interrupts, found by the name the evtchn device
 * gives it ("evtchn:" and the binder's command name). Returns the number of CPUs, or 0.
 */
static int irq_counts(unsigned int irq, unsigned long long *count, int max)
{
	char line[4096];
	FILE *f = fopen("/proc/interrupts", "r");
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;

		if (strtoul(p, &end, 10) != irq || end == p || *end != ':')
			continue;
		p = end + 1;
		for (n = 0; n < max; n++) {
			unsigned long long v = strtoull(p, &end, 10);

			if (end == p)
				break;
			count[n] = v;
			p = end;
		}
		break;
	}
	fclose(f);
	return n;
}

/*
 * The IRQ of our storm port. Each of our three ports has an IRQ named after us; the storm port was
 * bound first, and the event channel core gives each new port the lowest free IRQ, so it is the
 * lowest of the three.
 */
static unsigned int find_irq(void)
{
	char line[4096];
	FILE *f = fopen("/proc/interrupts", "r");
	unsigned int irq = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned int n = strtoul(line, NULL, 10);

		if (strstr(line, "evtchn:xen_evtchn_st") && (!irq || n < irq))
			irq = n;
	}
	fclose(f);
	return irq;
}

static int set_affinity(unsigned int irq, int cpu)
{
	char path[64];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/irq/%u/smp_affinity_list", irq);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ok = fprintf(f, "%d\n", cpu) > 0;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

struct victim {
	int fd;
	unsigned int storm, probe_rx, probe_tx;
	unsigned long long events;
	unsigned long probes_sent, probes_back;
	long long probe_at, slowest;
	int probe_out;
};

/* Takes what the device has, unmasks it at once; counts storm events and answered probes. */
static int take_events(struct victim *v, int timeout_ms)
{
	struct pollfd pfd = { .fd = v->fd, .events = POLLIN };
	unsigned int ports[64];
	ssize_t n;
	int i;

	if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
		die("poll");
	if (!(pfd.revents & POLLIN))
		return 0;
	n = read(v->fd, ports, sizeof(ports));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		die("read /dev/xen/evtchn");
	}
	for (i = 0; i < n / (ssize_t)sizeof(ports[0]); i++) {
		if (ports[i] == v->storm) {
			v->events++;
		} else if (ports[i] == v->probe_rx && v->probe_out) {
			long long t = now_ms() - v->probe_at;

			v->probes_back++;
			v->probe_out = 0;
			if (t > v->slowest)
				v->slowest = t;
		}
	}
	if (n > 0 && write(v->fd, ports, n) != n)
		die("write /dev/xen/evtchn (unmask)");
	return n / sizeof(ports[0]);
}

/* Runs the storm for ms milliseconds, probing; returns -1 if a probe is lost. */
static int storm_for(struct victim *v, long long ms)
{
	long long end = now_ms() + ms, next_probe = now_ms();

	while (now_ms() < end) {
		long long t = now_ms();

		if (!v->probe_out && t >= next_probe) {
			struct ioctl_evtchn_notify nfy = { .port = v->probe_tx };

			if (ioctl(v->fd, IOCTL_EVTCHN_NOTIFY, &nfy) < 0)
				die("notify the probe port");
			v->probe_out = 1;
			v->probe_at = t;
			v->probes_sent++;
			next_probe = t + PROBE_MS;
		}
		if (v->probe_out && t - v->probe_at > PROBE_LIMIT_MS) {
			printf("storm: FAIL: a probe sent %lld ms ago never came back\n", t - v->probe_at);
			return -1;
		}
		take_events(v, 10);
	}
	return 0;
}

/*
 * With the storm's IRQ bound to cpu: after a few events to settle, run a phase of ms and return
 * how many of the IRQ's interrupts each CPU took in it (in delta[]).
 */
static int phase(struct victim *v, unsigned int irq, int cpu, long long ms,
		 unsigned long long *delta, int ncpu)
{
	unsigned long long before[MAX_CPUS], after[MAX_CPUS];
	unsigned long long settle = v->events + 3;
	long long give_up = now_ms() + PROBE_LIMIT_MS;
	int i;

	if (set_affinity(irq, cpu) < 0) {
		printf("storm: FAIL: cannot bind IRQ %u to CPU %d: %s\n", irq, cpu, strerror(errno));
		return -1;
	}
	while (v->events < settle && now_ms() < give_up)
		take_events(v, 10);
	if (irq_counts(irq, before, MAX_CPUS) != ncpu)
		return -1;
	if (storm_for(v, ms) < 0)
		return -1;
	if (irq_counts(irq, after, MAX_CPUS) != ncpu)
		return -1;
	for (i = 0; i < ncpu; i++)
		delta[i] = after[i] - before[i];
	return 0;
}

static int listen_storm(unsigned int domid, unsigned int seconds)
{
	struct ioctl_evtchn_bind_unbound_port ub = { .remote_domain = domid };
	struct ioctl_evtchn_bind_unbound_port self = { .remote_domain = DOMID_SELF };
	struct ioctl_evtchn_bind_interdomain loop = { .remote_domain = DOMID_SELF };
	unsigned long long c[MAX_CPUS], d0[MAX_CPUS], d1[MAX_CPUS], d2[MAX_CPUS];
	struct victim v = { 0 };
	long long start, give_up, ms = seconds * 1000LL;
	unsigned int irq;
	int ncpu, ret, fail = 0;

	v.fd = open("/dev/xen/evtchn", O_RDWR | O_NONBLOCK);
	if (v.fd < 0)
		die("open /dev/xen/evtchn");
	ret = ioctl(v.fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, &ub);
	if (ret < 0)
		die("allocate the storm port");
	v.storm = ret;
	/* The probe: a port looped back to this domain; a notification on one end arrives on the other. */
	ret = ioctl(v.fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, &self);
	if (ret < 0)
		die("allocate the probe port");
	v.probe_rx = ret;
	loop.remote_port = v.probe_rx;
	ret = ioctl(v.fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &loop);
	if (ret < 0)
		die("bind the probe port");
	v.probe_tx = ret;
	printf("port %u\n", v.storm);
	fflush(stdout);

	give_up = now_ms() + FIRST_EVENT_LIMIT_MS;
	while (!v.events && now_ms() < give_up)
		take_events(&v, 100);
	if (!v.events) {
		printf("storm: FAIL: no event from domain %u in %d s\n", domid, FIRST_EVENT_LIMIT_MS / 1000);
		return 1;
	}
	start = now_ms();
	irq = find_irq();
	ncpu = irq ? irq_counts(irq, c, MAX_CPUS) : 0;
	if (ncpu >= 2) {
		/* A third of the time on CPU 0, a third on CPU 1, a third on CPU 0 again. */
		if (phase(&v, irq, 0, ms / 3, d0, ncpu) < 0 || phase(&v, irq, 1, ms / 3, d1, ncpu) < 0 ||
		    phase(&v, irq, 0, ms / 3, d2, ncpu) < 0) {
			fail = 1;
		} else {
			printf("storm: IRQ %u on CPU 0: %llu/%llu interrupts on CPU 0/1; on CPU 1: %llu/%llu; on CPU 0 again: %llu/%llu\n",
			       irq, d0[0], d0[1], d1[0], d1[1], d2[0], d2[1]);
			if (!d0[0] || d0[1] || d1[0] || !d1[1] || !d2[0] || d2[1]) {
				printf("storm: FAIL: the interrupts did not follow the IRQ's affinity\n");
				fail = 1;
			}
		}
	} else {
		printf("storm: one CPU (or IRQ %u not found): affinity not tested\n", irq);
		fail = storm_for(&v, ms) < 0;
	}
	ms = now_ms() - start;
	printf("storm: %llu events in %lld ms (%llu/s); %lu probes sent, %lu back, slowest %lld ms\n",
	       v.events, ms, ms ? v.events * 1000 / ms : 0, v.probes_sent, v.probes_back, v.slowest);
	if (!v.probes_back) {
		printf("storm: FAIL: no probe came back\n");
		fail = 1;
	}
	close(v.fd);
	return fail;
}

/* --- The flooder --------------------------------------------------------------------------- */

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	stop = 1;
}

struct flooder {
	pthread_t thread;
	int fd, cpu;
	unsigned int port;
	long long end;
	unsigned long long sent;
	int err;
};

static void *flood_thread(void *arg)
{
	struct flooder *f = arg;
	struct ioctl_evtchn_notify nfy = { .port = f->port };
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(f->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	while (!stop && now_ms() < f->end) {
		int i;

		for (i = 0; i < 256; i++) {
			if (ioctl(f->fd, IOCTL_EVTCHN_NOTIFY, &nfy) < 0) {
				f->err = errno;
				return NULL;
			}
			f->sent++;
		}
	}
	return NULL;
}

static struct flooder flooders[MAX_CPUS];
static long nr_flooders;

/* Starts one flooder of port on fd per online CPU, for seconds or until stop. */
static void start_flooders(int fd, unsigned int port, unsigned int seconds)
{
	long i;

	nr_flooders = sysconf(_SC_NPROCESSORS_ONLN);
	if (nr_flooders < 1)
		nr_flooders = 1;
	if (nr_flooders > MAX_CPUS)
		nr_flooders = MAX_CPUS;
	for (i = 0; i < nr_flooders; i++) {
		flooders[i] = (struct flooder){ .fd = fd, .cpu = i, .port = port,
						.end = now_ms() + seconds * 1000LL };
		if (pthread_create(&flooders[i].thread, NULL, flood_thread, &flooders[i]))
			die("pthread_create");
	}
}

/* Waits for the flooders; returns the notifications they sent, or -1 if one failed. */
static long long join_flooders(void)
{
	unsigned long long sent = 0;
	int fail = 0;
	long i;

	for (i = 0; i < nr_flooders; i++) {
		pthread_join(flooders[i].thread, NULL);
		sent += flooders[i].sent;
		if (flooders[i].err) {
			errno = flooders[i].err;
			fprintf(stderr, "%s: notify from CPU %ld: %s\n", prog, i, strerror(errno));
			fail = 1;
		}
	}
	return fail ? -1 : (long long)sent;
}

static int flood(unsigned int domid, unsigned int port, unsigned int seconds)
{
	struct ioctl_evtchn_bind_interdomain bind = { .remote_domain = domid, .remote_port = port };
	long long sent;
	int fd, ret;

	signal(SIGTERM, on_term);
	fd = open("/dev/xen/evtchn", O_RDWR);
	if (fd < 0)
		die("open /dev/xen/evtchn");
	ret = ioctl(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &bind);
	if (ret < 0)
		die("bind the victim's port");
	start_flooders(fd, ret, seconds);
	sent = join_flooders();
	printf("flood: %lld notifications from %ld CPUs\n", sent, nr_flooders);
	close(fd);
	return sent <= 0;
}

/* --- The bench: a storm inside one domain --------------------------------------------------- */

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int self_storm(unsigned int seconds)
{
	struct ioctl_evtchn_bind_unbound_port self = { .remote_domain = DOMID_SELF };
	struct ioctl_evtchn_bind_interdomain loop = { .remote_domain = DOMID_SELF };
	struct victim v = { 0 };
	long long t0, t1;
	int ret, tx_fd;

	v.fd = open("/dev/xen/evtchn", O_RDWR | O_NONBLOCK);
	tx_fd = open("/dev/xen/evtchn", O_RDWR);
	if (v.fd < 0 || tx_fd < 0)
		die("open /dev/xen/evtchn");
	/* Taken on v.fd, sent on tx_fd: the flooders do not wait for the taker's lock. */
	ret = ioctl(v.fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, &self);
	if (ret < 0)
		die("allocate the storm port");
	v.storm = ret;
	loop.remote_port = v.storm;
	ret = ioctl(tx_fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &loop);
	if (ret < 0)
		die("bind the storm port");
	t0 = now_ns();
	start_flooders(tx_fd, ret, seconds);
	while (now_ns() - t0 < seconds * 1000000000LL)
		take_events(&v, 10);
	t1 = now_ns();
	stop = 1;
	if (join_flooders() <= 0)
		return 1;
	printf("# bench: storm=self events=%llu ns=%lld\n", v.events, t1 - t0);
	close(tx_fd);
	close(v.fd);
	return !v.events;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "listen"))
		return listen_storm(parse(argv[2], "domain"), parse(argv[3], "seconds"));
	if (argc == 5 && !strcmp(argv[1], "flood"))
		return flood(parse(argv[2], "domain"), parse(argv[3], "port"), parse(argv[4], "seconds"));
	if (argc == 3 && !strcmp(argv[1], "self"))
		return self_storm(parse(argv[2], "seconds"));
	fprintf(stderr, "usage: %s listen DOMID SECONDS\n       %s flood DOMID PORT SECONDS\n"
		"       %s self SECONDS\n", prog, prog, prog);
	return 2;
}
